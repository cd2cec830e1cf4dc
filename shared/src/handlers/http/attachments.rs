//! `POST /chats/{chat_id}/attachments` and `GET /chats/{chat_id}/attachments/{message_id}`.
//!
//! An attachment is a message like any other: it is appended in the same
//! transaction as a text message, so it takes the chat's next `seq`, and
//! members see it through the stream as `message` with `upload_status:
//! "pending"`. Its `content` is the file name. The client then uploads the
//! file to S3 with the presigned URL, and `upload-complete` marks the message
//! `uploaded` or `failed`, which members see as `message-updated`.

use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{json, json_body};
use crate::attachments::{
    PresignedUpload, object_key, upload_status_at, validate_content_type, validate_file_name,
    validate_size,
};
use crate::clock::new_ulid;
use crate::domain::{Attachment, Message, UploadStatus, validate_token_id};
use crate::error::{ChatError, ErrorCode};
use crate::handlers::HttpDeps;
use crate::store::AppendOutcome;

/// The body of `POST /chats/{chat_id}/attachments`.
#[derive(Debug, Deserialize)]
struct CreateAttachment {
    file_name: String,
    content_type: String,
    size: u64,
}

#[derive(Debug, Serialize)]
struct CreatedAttachment {
    message: Message,
    upload: PresignedUpload,
}

/// Writes a `pending` attachment message and returns it with a presigned
/// upload URL that S3 accepts only for the declared type and size.
pub(super) async fn create(
    deps: &HttpDeps,
    request: &Request,
    chat_id: &str,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    validate_token_id("chat_id", chat_id)?;
    let body: CreateAttachment = json_body(request)?;
    let file_name = validate_file_name(&body.file_name)?;
    let content_type = validate_content_type(&body.content_type)?;
    let size = validate_size(body.size)?;
    require_member(deps, user_id, chat_id).await?;

    let now = deps.clock.now();
    // The append assigns the final message id, and with it the object key.
    let message_id = new_ulid(now);
    let message = Message {
        chat_id: chat_id.to_owned(),
        seq: 0,
        sender_id: user_id.to_owned(),
        content: file_name.clone(),
        created_at: now,
        client_message_id: None,
        attachment: Some(Attachment {
            upload_status: UploadStatus::Pending,
            s3_key: object_key(chat_id, &message_id, &file_name),
            file_name,
            content_type: content_type.clone(),
            size,
            s3_bucket: deps.attachments.name().to_owned(),
        }),
        message_id,
    };
    let message = append(deps, message).await?;
    let s3_key = message
        .attachment
        .as_ref()
        .map(|file| file.s3_key.clone())
        .unwrap_or_default();
    // Presigning sends no request, so it cannot fail for the store's
    // reasons. Should it fail, the message reads as failed once its
    // upload window has passed.
    let upload = deps
        .attachments
        .presign_upload(&s3_key, &content_type, size, now)
        .await?;
    info!(
        chat_id,
        message_id = %message.message_id,
        seq = message.seq,
        size,
        "attachment message stored, upload pending"
    );
    json(201, &CreatedAttachment { message, upload })
}

/// Returns a presigned download URL, once the attachment is `uploaded`.
pub(super) async fn download(
    deps: &HttpDeps,
    chat_id: &str,
    message_id: &str,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    validate_token_id("chat_id", chat_id)?;
    validate_token_id("message_id", message_id)?;
    require_member(deps, user_id, chat_id).await?;

    let message = deps.store.message(chat_id, message_id).await?;
    let Some((attachment, created_at)) =
        message.and_then(|m| m.attachment.map(|attachment| (attachment, m.created_at)))
    else {
        return Err(ChatError::client(
            ErrorCode::NotFound,
            format!("chat {chat_id} has no attachment {message_id}"),
        ));
    };
    let now = deps.clock.now();
    match upload_status_at(&attachment, created_at, now) {
        UploadStatus::Uploaded => {}
        UploadStatus::Pending => {
            return Err(ChatError::client(
                ErrorCode::UploadPending,
                "the attachment has not been uploaded yet",
            ));
        }
        UploadStatus::Failed => {
            return Err(ChatError::client(
                ErrorCode::UploadFailed,
                "the attachment's upload failed or never arrived",
            ));
        }
    }
    let url = deps
        .attachments
        .presign_download(&attachment.s3_key, now)
        .await?;
    info!(chat_id, message_id, "download URL issued");
    json(200, &url)
}

/// Appends `message` with the chat's next `seq`, as text messages are appended.
async fn append(deps: &HttpDeps, message: Message) -> Result<Message, ChatError> {
    let chat_id = message.chat_id.clone();
    let now = message.created_at;
    match deps.store.append_message(message, now).await? {
        AppendOutcome::Appended(message) => Ok(message),
        AppendOutcome::ChatMissing => Err(ChatError::client(
            ErrorCode::NotFound,
            format!("chat {chat_id} does not exist"),
        )),
        AppendOutcome::Contended => {
            warn!(
                chat_id,
                "gave up appending an attachment after repeated seq conflicts"
            );
            Err(ChatError::client(
                ErrorCode::Conflict,
                "the chat is busy; request the upload again",
            ))
        }
        // Only a message with a `client_message_id` can be a duplicate, and
        // attachment messages have none.
        AppendOutcome::Duplicate(first) => Err(ChatError::Internal(
            format!(
                "an attachment message was taken for a resend of {}",
                first.message_id
            )
            .into(),
        )),
    }
}

async fn require_member(deps: &HttpDeps, user_id: &str, chat_id: &str) -> Result<(), ChatError> {
    match deps.store.membership(user_id, chat_id).await? {
        Some(_) => Ok(()),
        None => Err(ChatError::not_member(chat_id)),
    }
}
