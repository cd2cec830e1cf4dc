//! `ack-message-received`: deletes the caller's Inbox row for a message.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::{debug, instrument};

use super::WsDeps;
use super::websocket::{caller, error_reply, no_reply};
use crate::domain::validate_token_id;
use crate::error::ChatError;
use crate::protocol::{Ack, RawFrame};

/// Handles an acknowledgement. An unknown message id is not an error, so that
/// acknowledging twice is harmless. A success sends nothing back.
#[instrument(skip_all, fields(connection_id = event.request_context.connection_id.as_deref()))]
pub async fn handle(
    deps: &WsDeps,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, lambda_runtime::Error> {
    let frame = match RawFrame::parse(event.body.as_deref()) {
        Ok(frame) => frame,
        Err(err) => return Ok(error_reply(&err, None)),
    };
    match acknowledge(deps, &event, &frame).await {
        Ok(()) => Ok(no_reply()),
        Err(err) => Ok(error_reply(&err, Some(&frame))),
    }
}

async fn acknowledge(
    deps: &WsDeps,
    event: &ApiGatewayWebsocketProxyRequest,
    frame: &RawFrame,
) -> Result<(), ChatError> {
    let Ack { message_id } = frame.fields()?;
    validate_token_id("message_id", &message_id)?;
    let connection = caller(deps, event).await?;
    deps.store
        .delete_inbox_entry(&connection.user_id, &message_id)
        .await?;
    debug!(user_id = %connection.user_id, message_id = %message_id, "inbox entry acknowledged");
    Ok(())
}
