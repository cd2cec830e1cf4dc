//! `message`: validates a new message, checks membership and appends it.
//!
//! The reply is `message-accepted`; the message itself reaches subscribers
//! through the Messages stream and `stream-fanout`.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::{info, instrument, warn};

use super::WsDeps;
use super::websocket::{caller, error_reply, reply};
use crate::clock::new_ulid;
use crate::domain::{MAX_CONTENT_BYTES, Message, validate_token_id};
use crate::error::{ChatError, ErrorCode};
use crate::protocol::{RawFrame, SendMessage, ServerFrame};
use crate::store::AppendOutcome;

/// Handles a `message` frame. The sender is the connection's user, never a
/// field of the frame. A resend with the same `client_message_id` writes
/// nothing and gets the first send's id and `seq`.
#[instrument(skip_all, fields(connection_id = event.request_context.connection_id.as_deref()))]
pub async fn handle(
    deps: &WsDeps,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, lambda_runtime::Error> {
    let frame = match RawFrame::parse(event.body.as_deref()) {
        Ok(frame) => frame,
        Err(err) => return Ok(error_reply(&err, None)),
    };
    match send(deps, &event, &frame).await {
        Ok(answer) => Ok(reply(&answer)),
        Err(err) => Ok(error_reply(&err, Some(&frame))),
    }
}

/// Checks a frame's fields before anything is read or written.
pub fn validate(message: &SendMessage) -> Result<(), ChatError> {
    validate_token_id("chat_id", &message.chat_id)?;
    if let Some(id) = &message.client_message_id {
        validate_token_id("client_message_id", id)?;
    }
    if message.content.trim().is_empty() {
        return Err(ChatError::invalid_field("content", "must not be empty"));
    }
    if message.content.len() > MAX_CONTENT_BYTES {
        return Err(ChatError::client(
            ErrorCode::ContentTooLarge,
            format!(
                "content is {} bytes; the limit is {MAX_CONTENT_BYTES}",
                message.content.len()
            ),
        ));
    }
    Ok(())
}

async fn send(
    deps: &WsDeps,
    event: &ApiGatewayWebsocketProxyRequest,
    frame: &RawFrame,
) -> Result<ServerFrame, ChatError> {
    let request: SendMessage = frame.fields()?;
    validate(&request)?;
    let connection = caller(deps, event).await?;
    let store = &deps.store;
    if store
        .membership(&connection.user_id, &request.chat_id)
        .await?
        .is_none()
    {
        return Err(ChatError::not_member(&request.chat_id));
    }

    let now = deps.clock.now();
    let message = Message {
        message_id: new_ulid(now),
        chat_id: request.chat_id.clone(),
        seq: 0,
        sender_id: connection.user_id.clone(),
        content: request.content,
        created_at: now,
        client_message_id: request.client_message_id.clone(),
        attachment: None,
    };
    match store.append_message(message, now).await? {
        AppendOutcome::Appended(message) => {
            info!(
                chat_id = %message.chat_id,
                message_id = %message.message_id,
                seq = message.seq,
                "message stored"
            );
            Ok(ServerFrame::MessageAccepted {
                client_message_id: request.client_message_id,
                message_id: message.message_id,
                chat_id: message.chat_id,
                seq: message.seq,
                created_at: message.created_at,
            })
        }
        AppendOutcome::Duplicate(first) if first.chat_id == request.chat_id => {
            info!(
                chat_id = %first.chat_id,
                message_id = %first.message_id,
                "resend answered with the first message"
            );
            Ok(ServerFrame::MessageAccepted {
                client_message_id: Some(first.client_message_id),
                message_id: first.message_id,
                chat_id: first.chat_id,
                seq: first.seq,
                created_at: first.created_at,
            })
        }
        AppendOutcome::Duplicate(first) => Err(ChatError::client(
            ErrorCode::Conflict,
            format!(
                "client_message_id {} was already used for a message to chat {}",
                first.client_message_id, first.chat_id
            ),
        )),
        AppendOutcome::ChatMissing => Err(ChatError::client(
            ErrorCode::NotFound,
            format!("chat {} does not exist", request.chat_id),
        )),
        AppendOutcome::Contended => {
            warn!(chat_id = %request.chat_id, "gave up appending after repeated seq conflicts");
            Err(ChatError::client(
                ErrorCode::Conflict,
                "the chat is busy; send the message again",
            ))
        }
    }
}
