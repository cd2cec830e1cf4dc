//! `subscribe` and `unsubscribe`: start or stop a connection's live pushes of a chat.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::{info, instrument};

use super::WsDeps;
use super::websocket::{caller, error_reply, reply};
use crate::domain::{Subscription, validate_token_id};
use crate::error::{ChatError, ErrorCode};
use crate::protocol::{ChatRef, RawFrame, ServerFrame, frame_type};

/// Handles `subscribe` (members only) and `unsubscribe`, telling them apart
/// by the route key.
#[instrument(skip_all, fields(connection_id = event.request_context.connection_id.as_deref()))]
pub async fn handle(
    deps: &WsDeps,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, lambda_runtime::Error> {
    let frame = match RawFrame::parse(event.body.as_deref()) {
        Ok(frame) => frame,
        Err(err) => return Ok(error_reply(&err, None)),
    };
    match subscribe(deps, &event, &frame).await {
        Ok(answer) => Ok(reply(&answer)),
        Err(err) => Ok(error_reply(&err, Some(&frame))),
    }
}

async fn subscribe(
    deps: &WsDeps,
    event: &ApiGatewayWebsocketProxyRequest,
    frame: &RawFrame,
) -> Result<ServerFrame, ChatError> {
    let route = event
        .request_context
        .route_key
        .as_deref()
        .or(frame.frame_type.as_deref());
    let ChatRef { chat_id } = frame.fields()?;
    validate_token_id("chat_id", &chat_id)?;
    let connection = caller(deps, event).await?;

    match route {
        Some(frame_type::SUBSCRIBE) => {
            if deps
                .store
                .membership(&connection.user_id, &chat_id)
                .await?
                .is_none()
            {
                return Err(ChatError::not_member(&chat_id));
            }
            deps.store
                .put_subscription(&Subscription {
                    chat_id: chat_id.clone(),
                    connection_id: connection.connection_id.clone(),
                    user_id: connection.user_id.clone(),
                    expires_at: connection.expires_at,
                })
                .await?;
            info!(connection_id = %connection.connection_id, chat_id = %chat_id, "subscribed");
            Ok(ServerFrame::Subscribed { chat_id })
        }
        Some(frame_type::UNSUBSCRIBE) => {
            // Anyone may drop their own subscription, members or not: a member
            // who was removed still needs to stop listening.
            deps.store
                .delete_subscription(&chat_id, &connection.connection_id)
                .await?;
            info!(connection_id = %connection.connection_id, chat_id = %chat_id, "unsubscribed");
            Ok(ServerFrame::Unsubscribed { chat_id })
        }
        other => Err(ChatError::client(
            ErrorCode::UnknownType,
            format!("this route serves subscribe and unsubscribe, not {other:?}"),
        )),
    }
}
