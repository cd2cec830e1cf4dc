//! The Management API (`@connections`) and the `$disconnect` fault switch.
//!
//! Errors are shaped as API Gateway sends them, for the restJson1 protocol of
//! `aws-sdk-apigatewaymanagement`: the status, an `x-amzn-ErrorType` header
//! naming the exception (the SDK reads the error code from it first), and a
//! JSON body with `message`. A closed or unknown connection is 410
//! `GoneException`, which the SDK reports as `is_gone_exception()`.
//! Signatures are not checked: any credentials are accepted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::Message;

use super::connection::{Command, reason};
use super::upgrade::message_response;
use super::{MAX_MESSAGE_BYTES, WebSocketGateway};
use crate::ids::request_id;

/// How long a post or delete waits for the connection's task.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST`, `GET` and `DELETE /@connections/{id}`.
pub(super) async fn connection(
    State(gateway): State<Arc<WebSocketGateway>>,
    Path(connection_id): Path<String>,
    method: Method,
    body: Bytes,
) -> Response {
    match method {
        Method::POST => post_to_connection(&gateway, &connection_id, body).await,
        Method::GET => get_connection(&gateway, &connection_id),
        Method::DELETE => delete_connection(&gateway, &connection_id).await,
        _ => service_error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            json!("Forbidden"),
        ),
    }
}

/// Sends `body` as one frame: text when it is UTF-8, else binary.
async fn post_to_connection(
    gateway: &WebSocketGateway,
    connection_id: &str,
    body: Bytes,
) -> Response {
    let Some(connection) = gateway.connection(connection_id) else {
        return gone();
    };
    if body.len() > MAX_MESSAGE_BYTES {
        return service_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            json!(format!(
                "the payload is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
                body.len()
            )),
        );
    }
    let message = match std::str::from_utf8(&body) {
        Ok(text) => Message::text(text),
        Err(_) => Message::binary(body),
    };
    let (done, written) = oneshot::channel();
    let command = Command::Send {
        message,
        done: Some(done),
    };
    let delivered = tokio::time::timeout(COMMAND_TIMEOUT, async {
        connection.commands.send(command).await.is_ok() && written.await.unwrap_or(false)
    })
    .await;
    match delivered {
        Ok(true) => with_request_id(StatusCode::OK.into_response()),
        Ok(false) => gone(),
        Err(_) => service_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            json!("the connection did not take the message in time"),
        ),
    }
}

/// `{"connectedAt", "identity": {"sourceIp", "userAgent"}, "lastActiveAt"}`.
fn get_connection(gateway: &WebSocketGateway, connection_id: &str) -> Response {
    let Some(connection) = gateway.connection(connection_id) else {
        return gone();
    };
    let info = &connection.info;
    let mut identity = json!({ "sourceIp": info.source_ip });
    if let Some(user_agent) = &info.user_agent {
        identity["userAgent"] = json!(user_agent);
    }
    let body = json!({
        "connectedAt": info.connected_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "identity": identity,
        "lastActiveAt": info.last_active_at().to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    with_request_id(axum::Json(body).into_response())
}

/// Closes the connection with 1000; 204 once the close frame is sent.
async fn delete_connection(gateway: &WebSocketGateway, connection_id: &str) -> Response {
    let Some(connection) = gateway.connection(connection_id) else {
        return gone();
    };
    let (done, sent) = oneshot::channel();
    let command = Command::Close {
        code: 1000,
        reason: reason::NORMAL,
        done: Some(done),
    };
    let closed = tokio::time::timeout(COMMAND_TIMEOUT, async {
        connection.commands.send(command).await.is_ok() && sent.await.is_ok()
    })
    .await;
    match closed {
        Ok(true) => with_request_id(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => gone(),
        Err(_) => service_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            json!("the connection did not close in time"),
        ),
    }
}

/// 410 as API Gateway sends it for a connection that is closed or unknown.
fn gone() -> Response {
    service_error(StatusCode::GONE, "GoneException", Value::Null)
}

fn service_error(status: StatusCode, error_type: &'static str, message: Value) -> Response {
    let mut response = (status, axum::Json(json!({ "message": message }))).into_response();
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(error_type));
    with_request_id(response)
}

fn with_request_id(mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&request_id()) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

#[derive(Debug, Deserialize)]
struct DropSwitch {
    enabled: bool,
}

/// `GET /{stage}/_control/drop-disconnects`: `{"enabled": bool}`.
pub(super) async fn drop_disconnects_state(
    State(gateway): State<Arc<WebSocketGateway>>,
) -> Response {
    axum::Json(json!({ "enabled": gateway.drops_disconnects() })).into_response()
}

/// `POST /{stage}/_control/drop-disconnects {"enabled": bool}`, from loopback only.
pub(super) async fn set_drop_disconnects(
    State(gateway): State<Arc<WebSocketGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    if !peer.ip().is_loopback() {
        return message_response(
            StatusCode::FORBIDDEN,
            "the control routes answer loopback only",
        );
    }
    let switch: DropSwitch = match serde_json::from_slice(&body) {
        Ok(switch) => switch,
        Err(err) => {
            return message_response(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"enabled\": true|false}}: {err}"),
            );
        }
    };
    gateway.set_drop_disconnects(switch.enabled);
    let mut response = axum::Json(json!({ "enabled": switch.enabled })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Any other path: API Gateway returns 403 `{"message":"Forbidden"}`.
pub(super) async fn forbidden() -> Response {
    message_response(StatusCode::FORBIDDEN, "Forbidden")
}
