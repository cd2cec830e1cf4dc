//! `$default`: every frame no other route matched. `ping` gets `pong`; anything
//! else gets an `error` frame, and the connection stays open.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::instrument;

use super::websocket::{error_reply, reply};
use crate::error::{ChatError, ErrorCode};
use crate::protocol::{RawFrame, ServerFrame, frame_type};

/// Handles a frame that matched no route. It needs no store: a `ping` only
/// keeps the connection from API Gateway's 10-minute idle timeout.
#[instrument(skip_all, fields(connection_id = event.request_context.connection_id.as_deref()))]
pub async fn handle(
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, lambda_runtime::Error> {
    let frame = match RawFrame::parse(event.body.as_deref()) {
        Ok(frame) => frame,
        Err(err) => return Ok(error_reply(&err, None)),
    };
    let err = match frame.frame_type.as_deref() {
        Some(frame_type::PING) => return Ok(reply(&ServerFrame::Pong)),
        Some(other) => ChatError::client(
            ErrorCode::UnknownType,
            format!("unknown frame type {other:?}"),
        ),
        None if frame.value.get("type").is_some() => {
            ChatError::invalid_field("type", "must be a string")
        }
        None if frame.value.is_object() => ChatError::invalid_field("type", "is missing"),
        None => ChatError::client(ErrorCode::InvalidRequest, "a frame must be a JSON object"),
    };
    Ok(error_reply(&err, Some(&frame)))
}
