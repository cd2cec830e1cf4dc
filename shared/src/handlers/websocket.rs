//! Helpers of the WebSocket route handlers: reading the event, finding the
//! caller's connection, and building the reply that API Gateway sends back
//! on the same connection. Every route but `$connect` and `$disconnect` is
//! two-way.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use tracing::{error, info};

use super::WsDeps;
use crate::domain::Connection;
use crate::error::ChatError;
use crate::protocol::{RawFrame, ServerFrame, frame_type};

/// A route of the WebSocket API and the function behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The route key: `$connect`, `$disconnect`, `$default`, or a frame `type`.
    pub key: &'static str,
    /// The function that serves it.
    pub function: &'static str,
    /// Whether the function's return value is sent back to the caller.
    pub two_way: bool,
}

/// Every route of the WebSocket API, as `template.yaml` declares them and
/// the local stack routes frames.
pub const ROUTES: &[Route] = &[
    Route {
        key: "$connect",
        function: "ws-connect",
        two_way: false,
    },
    Route {
        key: "$disconnect",
        function: "ws-disconnect",
        two_way: false,
    },
    Route {
        key: frame_type::MESSAGE,
        function: "ws-message",
        two_way: true,
    },
    Route {
        key: frame_type::SUBSCRIBE,
        function: "ws-subscribe",
        two_way: true,
    },
    Route {
        key: frame_type::UNSUBSCRIBE,
        function: "ws-subscribe",
        two_way: true,
    },
    Route {
        key: frame_type::ACK,
        function: "ws-ack",
        two_way: true,
    },
    Route {
        key: "$default",
        function: "ws-default",
        two_way: true,
    },
];

/// Returns the event's connection id.
///
/// # Errors
///
/// `invalid_request` when the event has none, which API Gateway never sends.
pub fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Result<&str, ChatError> {
    event
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ChatError::invalid_field("requestContext.connectionId", "is missing"))
}

/// Reads the live connection that sent `event`.
///
/// # Errors
///
/// `unauthorized` when the connection is unknown or expired: the client
/// should reconnect with a new ticket.
pub async fn caller(
    deps: &WsDeps,
    event: &ApiGatewayWebsocketProxyRequest,
) -> Result<Connection, ChatError> {
    let connection_id = connection_id(event)?;
    deps.store
        .connection(connection_id, deps.clock.now())
        .await?
        .ok_or_else(|| {
            ChatError::unauthorized(
                "this connection is not registered; reconnect with a new ticket",
            )
        })
}

/// Builds a reply carrying `frame`.
pub fn reply(frame: &ServerFrame) -> ApiGatewayProxyResponse {
    response(200, Some(frame.to_json()))
}

/// Builds a reply with no frame, so API Gateway sends nothing back.
pub fn no_reply() -> ApiGatewayProxyResponse {
    response(200, None)
}

/// Builds the `error` frame for `err` and logs it: faults at error level,
/// client mistakes at info.
pub fn error_reply(err: &ChatError, request: Option<&RawFrame>) -> ApiGatewayProxyResponse {
    log_error(err);
    response(
        err.status(),
        Some(ServerFrame::error(err, request).to_json()),
    )
}

/// Logs `err`: a fault at error level with its source, a client mistake at info.
pub fn log_error(err: &ChatError) {
    match err {
        ChatError::Internal(source) => {
            error!(error = %source, cause = ?source.source(), "request failed")
        }
        ChatError::Client { code, message } => {
            info!(code = %code, message = %message, "request rejected")
        }
    }
}

/// Builds a response with `status` and `body`.
pub fn response(status: u16, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.body = body.map(Body::Text);
    response
}
