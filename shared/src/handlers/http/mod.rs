//! `http-api`: the HTTP API's routes behind one Lambda function.
//!
//! Routes work on the `$default` stage and on a named stage, whose name
//! prefixes the path. Every route needs `Authorization: Bearer {jwt}`. CORS
//! is API Gateway's job, so no CORS headers are sent here.

mod attachments;
mod chats;
mod inbox;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, instrument};

use super::HttpDeps;
use super::websocket::log_error;
use crate::domain::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use crate::error::{ChatError, ErrorCode};
use crate::store::Page;

/// Maximum request body, in bytes. Every body this API takes is small JSON.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route: method and path pattern, as `template.yaml` declares them.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/connect-ticket"),
    ("GET", "/inbox/sync"),
    ("POST", "/chats"),
    ("GET", "/chats"),
    ("GET", "/chats/{chat_id}"),
    ("GET", "/chats/{chat_id}/messages"),
    ("POST", "/chats/{chat_id}/members"),
    ("DELETE", "/chats/{chat_id}/members/{user_id}"),
    ("POST", "/chats/{chat_id}/attachments"),
    ("GET", "/chats/{chat_id}/attachments/{message_id}"),
];

/// A matched route with its path parameters.
enum Route<'a> {
    ConnectTicket,
    InboxSync,
    CreateChat,
    ListChats,
    GetChat(&'a str),
    History(&'a str),
    AddMembers(&'a str),
    RemoveMember(&'a str, &'a str),
    CreateAttachment(&'a str),
    GetAttachment(&'a str, &'a str),
}

/// Handles one HTTP API request. Every failure is a JSON error response;
/// faults are 500 with a generic message and logged with their cause.
#[instrument(skip_all, fields(method = %request.method(), path = %request.uri().path()))]
pub async fn handle(
    deps: &HttpDeps,
    request: Request,
) -> Result<Response<Body>, lambda_runtime::Error> {
    let response = match route(deps, &request).await {
        Ok(response) => response,
        Err(err) => {
            log_error(&err);
            error_response(&err)
        }
    };
    info!(status = response.status().as_u16(), "request handled");
    Ok(response)
}

async fn route(deps: &HttpDeps, request: &Request) -> Result<Response<Body>, ChatError> {
    let path = route_path(request);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().as_str();
    let route = match (method, segments.as_slice()) {
        ("POST", ["connect-ticket"]) => Route::ConnectTicket,
        ("GET", ["inbox", "sync"]) => Route::InboxSync,
        ("POST", ["chats"]) => Route::CreateChat,
        ("GET", ["chats"]) => Route::ListChats,
        ("GET", ["chats", chat_id]) => Route::GetChat(chat_id),
        ("GET", ["chats", chat_id, "messages"]) => Route::History(chat_id),
        ("POST", ["chats", chat_id, "members"]) => Route::AddMembers(chat_id),
        ("DELETE", ["chats", chat_id, "members", user_id]) => Route::RemoveMember(chat_id, user_id),
        ("POST", ["chats", chat_id, "attachments"]) => Route::CreateAttachment(chat_id),
        ("GET", ["chats", chat_id, "attachments", message_id]) => {
            Route::GetAttachment(chat_id, message_id)
        }
        _ => {
            return Err(ChatError::client(
                ErrorCode::NotFound,
                format!("no route {method} {path}"),
            ));
        }
    };

    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let user_id = deps.auth.verify_header(authorization).await?;

    match route {
        Route::ConnectTicket => inbox::connect_ticket(deps, &user_id).await,
        Route::InboxSync => inbox::sync(deps, request, &user_id).await,
        Route::CreateChat => chats::create(deps, request, &user_id).await,
        Route::ListChats => chats::list(deps, request, &user_id).await,
        Route::GetChat(chat_id) => chats::get(deps, &decode(chat_id)?, &user_id).await,
        Route::History(chat_id) => chats::history(deps, request, &decode(chat_id)?, &user_id).await,
        Route::AddMembers(chat_id) => {
            chats::add_members(deps, request, &decode(chat_id)?, &user_id).await
        }
        Route::RemoveMember(chat_id, member) => {
            chats::remove_member(deps, &decode(chat_id)?, &decode(member)?, &user_id).await
        }
        Route::CreateAttachment(chat_id) => {
            attachments::create(deps, request, &decode(chat_id)?, &user_id).await
        }
        Route::GetAttachment(chat_id, message_id) => {
            attachments::download(deps, &decode(chat_id)?, &decode(message_id)?, &user_id).await
        }
    }
}

/// Returns the request path without the stage prefix of a named stage.
fn route_path(request: &Request) -> String {
    let path = request.uri().path();
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    match stage.as_deref() {
        Some(stage) if stage != "$default" => {
            let prefix = format!("/{stage}");
            match path.strip_prefix(&prefix) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
                _ => path.to_owned(),
            }
        }
        _ => path.to_owned(),
    }
}

/// Percent-decodes a path segment.
fn decode(segment: &str) -> Result<String, ChatError> {
    urlencoding::decode(segment)
        .map(|text| text.into_owned())
        .map_err(|_| ChatError::client(ErrorCode::InvalidRequest, "the path is not valid UTF-8"))
}

/// Parses the JSON body as `T`.
///
/// # Errors
///
/// `content_too_large` over [`MAX_BODY_BYTES`], `invalid_json` when it is not
/// JSON, `invalid_request` when a field is missing or of the wrong type.
pub(crate) fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ChatError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ChatError::client(
            ErrorCode::ContentTooLarge,
            format!(
                "the body is {} bytes; the limit is {MAX_BODY_BYTES}",
                bytes.len()
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        ChatError::client(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {err}"),
        )
    })?;
    if !value.is_object() {
        return Err(ChatError::client(
            ErrorCode::InvalidRequest,
            "the body must be a JSON object",
        ));
    }
    serde_json::from_value(value)
        .map_err(|err| ChatError::client(ErrorCode::InvalidRequest, format!("invalid body: {err}")))
}

/// Returns the query parameter `name`, if given.
pub(crate) fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query_string_parameters_ref()
        .and_then(|parameters| parameters.first(name))
}

/// Parses the `limit` query parameter: [`DEFAULT_PAGE_LIMIT`] when absent, at most [`MAX_PAGE_LIMIT`].
pub(crate) fn page_limit(request: &Request) -> Result<usize, ChatError> {
    let Some(text) = query(request, "limit") else {
        return Ok(DEFAULT_PAGE_LIMIT);
    };
    match text.parse::<usize>() {
        Ok(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(ChatError::invalid_field(
            "limit",
            format_args!("must be a whole number from 1 to {MAX_PAGE_LIMIT}, not {text:?}"),
        )),
    }
}

/// Builds a JSON response.
pub(crate) fn json<T: Serialize>(status: u16, value: &T) -> Result<Response<Body>, ChatError> {
    let body = serde_json::to_string(value).map_err(|err| ChatError::Internal(Box::new(err)))?;
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body))
        .map_err(|err| ChatError::Internal(Box::new(err)))
}

/// Builds a response with no body.
pub(crate) fn empty(status: u16) -> Result<Response<Body>, ChatError> {
    Response::builder()
        .status(status)
        .body(Body::Empty)
        .map_err(|err| ChatError::Internal(Box::new(err)))
}

/// `{ "items", "next_cursor", "has_more" }`.
#[derive(Debug, Serialize)]
pub(crate) struct PageBody<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
    has_more: bool,
}

impl<T> PageBody<T> {
    pub(crate) fn new(items: Vec<T>, next_cursor: Option<String>) -> Self {
        Self {
            has_more: next_cursor.is_some(),
            items,
            next_cursor,
        }
    }

    pub(crate) fn from_page<U>(page: Page<U>, items: Vec<T>) -> Self {
        Self::new(items, page.next.map(|cursor| cursor.encode()))
    }
}

/// `{ "error": { "code", "message" } }` with the error's status.
pub fn error_response(err: &ChatError) -> Response<Body> {
    let body = serde_json::json!({
        "error": { "code": err.code().as_str(), "message": err.to_string() }
    });
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() =
        http::StatusCode::from_u16(err.status()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
