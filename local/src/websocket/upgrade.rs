//! The WebSocket upgrade: `$connect` runs before the handshake completes, and
//! only a 2xx response lets it complete.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tracing::{error, info, warn};

use super::connection::{self, Closure, ConnectionInfo};
use super::{WebSocketGateway, events};
use crate::ids;

/// Commands that may wait for a connection's task.
const COMMAND_QUEUE: usize = 64;

/// Handles a request on the stage path: an upgrade runs `$connect`; anything
/// else gets 426.
pub(super) async fn upgrade(
    State(gateway): State<Arc<WebSocketGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let key = match websocket_key(request.method(), request.headers()) {
        Ok(key) => key,
        Err((status, message)) => return message_response(status, message),
    };
    let Some(guard) = gateway.tasks.track() else {
        return message_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the stack is shutting down",
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let headers = request.headers();
    let host =
        header_text(headers, header::HOST).unwrap_or_else(|| format!("127.0.0.1:{}", gateway.port));
    let info = Arc::new(ConnectionInfo::new(
        ids::connection_id(),
        peer.ip().to_string(),
        header_text(headers, header::USER_AGENT),
        host,
    ));
    let event = events::connect(
        &gateway.options,
        &info,
        headers,
        request.uri().query(),
        gateway.port,
    );

    let started = Instant::now();
    let result = gateway.functions.invoke("$connect", event).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let connect_response = match result {
        Ok(response) => response,
        Err(err) => {
            error!(
                connection_id = %info.connection_id,
                error = %err,
                cause = ?std::error::Error::source(&err),
                duration_ms,
                "$connect failed; upgrade rejected"
            );
            return message_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
    };
    let status = u16::try_from(connect_response.status_code)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    if !status.is_success() {
        info!(
            connection_id = %info.connection_id,
            status = status.as_u16(),
            duration_ms,
            "connect rejected"
        );
        return rejection(status, connect_response);
    }

    let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
    gateway.register(Arc::clone(&info), commands.clone());
    info!(
        connection_id = %info.connection_id,
        source_ip = %info.source_ip,
        status = status.as_u16(),
        duration_ms,
        "connected"
    );
    let protocol = connect_response
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .cloned();
    tokio::spawn(async move {
        let _guard = guard;
        let closure = match on_upgrade.await {
            Ok(upgraded) => connection::serve(&gateway, &info, upgraded, receiver, commands).await,
            Err(err) => {
                warn!(connection_id = %info.connection_id, error = %err, "WebSocket upgrade failed");
                Closure::abnormal()
            }
        };
        gateway.unregister(&info.connection_id);
        gateway.disconnect(&info, &closure).await;
    });
    switching_protocols(&key, protocol)
}

/// Returns the `Sec-WebSocket-Key` of a valid upgrade request, or the status
/// and message that reject the request.
fn websocket_key(
    method: &Method,
    headers: &HeaderMap,
) -> Result<String, (StatusCode, &'static str)> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .unwrap_or_default()
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    };
    if method != Method::GET
        || !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
    {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket API: connect with a WebSocket client",
        ));
    }
    if header_text(headers, header::SEC_WEBSOCKET_VERSION).as_deref() != Some("13") {
        return Err((StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13"));
    }
    header_text(headers, header::SEC_WEBSOCKET_KEY)
        .ok_or((StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing"))
}

fn switching_protocols(key: &str, protocol: Option<HeaderValue>) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

/// Builds the response to a rejected upgrade: the status and body that
/// `$connect` returned.
fn rejection(
    status: StatusCode,
    connect_response: aws_lambda_events::apigw::ApiGatewayProxyResponse,
) -> Response {
    let body = match connect_response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => Body::from(text),
        Some(aws_lambda_events::encodings::Body::Binary(bytes)) => Body::from(bytes),
        _ => Body::empty(),
    };
    let content_type = connect_response
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `{"message": ...}` with `status`, the shape of API Gateway's own errors.
pub(super) fn message_response(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
