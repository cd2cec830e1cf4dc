//! `upload-complete`: marks an attachment's message `uploaded` or `failed`
//! when S3 reports that its object was created.
//!
//! It handles each `ObjectCreated:*` record of the attachments bucket whose
//! key is `chats/{chat_id}/{message_id}/{file_name}`. It loads the message and
//! reads the stored object's size and content type with HeadObject. A
//! conditional update then sets the status: `uploaded` when both match what
//! the client declared, `failed` otherwise. The update applies only while the
//! message is `pending` and names that key, because S3 delivers
//! notifications at least once and sometimes late. The MODIFY then goes
//! through the Messages stream, and `stream-fanout` pushes `message-updated`.

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use tracing::{Instrument, error, info, info_span, instrument, warn};

use super::UploadDeps;
use crate::attachments::{ObjectKey, S3Error, decode_event_key};
use crate::domain::{Attachment, Timestamp, UploadStatus};
use crate::store::StoreError;

/// The prefix of every event name this handler acts on.
const OBJECT_CREATED: &str = "ObjectCreated:";

/// The result of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The message's status changed to this one.
    Finished(UploadStatus),
    /// The message is no longer `pending` (a repeated or late notification),
    /// or another notification finished it first: nothing changed.
    AlreadyFinished(UploadStatus),
    /// The record is not about an attachment of this service: another
    /// event, another bucket, a foreign key, or a message that does not
    /// exist or does not name this object. Logged at `warn`.
    Skipped,
}

/// A fault that Lambda should retry: the store or S3 failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Reading or updating the message failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// HeadObject failed.
    #[error(transparent)]
    S3(#[from] S3Error),
}

/// Handles one S3 notification. Every record is tried, even after one fails.
///
/// # Errors
///
/// The first store or S3 fault, after the other records are done, so that
/// Lambda retries the event; retrying records that succeeded changes
/// nothing. Records that are not about an attachment are skipped, never an error.
#[instrument(skip_all, fields(records = event.records.len()))]
pub async fn handle(deps: &UploadDeps, event: S3Event) -> Result<(), lambda_runtime::Error> {
    let mut first_fault = None;
    for record in &event.records {
        let key = record.s3.object.key.as_deref().unwrap_or_default();
        let span = info_span!("record", key = %key);
        // Boxed, because without it the layout of the Lambda's future, which
        // nests the SDK's request futures several calls deep, overflows
        // rustc's query depth limit (128) with the workspace's full features.
        let result = Box::pin(handle_record(deps, record)).instrument(span).await;
        if let Err(err) = result {
            error!(
                key = %key,
                error = %err,
                cause = ?std::error::Error::source(&err),
                "upload check failed; the event will be retried"
            );
            first_fault.get_or_insert(err);
        }
    }
    match first_fault {
        Some(err) => Err(Box::new(err)),
        None => Ok(()),
    }
}

/// Handles one record.
///
/// # Errors
///
/// When the message could not be read or updated, or HeadObject failed.
pub async fn handle_record(
    deps: &UploadDeps,
    record: &S3EventRecord,
) -> Result<UploadOutcome, UploadError> {
    let event_name = record.event_name.as_deref().unwrap_or_default();
    if !event_name.starts_with(OBJECT_CREATED) {
        info!(event_name, "skipping an event that is not ObjectCreated");
        return Ok(UploadOutcome::Skipped);
    }
    let bucket = record.s3.bucket.name.as_deref().unwrap_or_default();
    if bucket != deps.attachments.name() {
        warn!(
            bucket,
            expected = deps.attachments.name(),
            "skipping an event of another bucket"
        );
        return Ok(UploadOutcome::Skipped);
    }
    let raw_key = record.s3.object.key.as_deref().unwrap_or_default();
    let Some(key) = decode_event_key(raw_key) else {
        warn!(raw_key, "skipping a key that is not URL-encoded UTF-8");
        return Ok(UploadOutcome::Skipped);
    };
    let Some(parts) = ObjectKey::parse(&key) else {
        warn!(
            key = %key,
            "skipping a key that is not chats/{{chat_id}}/{{message_id}}/{{file_name}}"
        );
        return Ok(UploadOutcome::Skipped);
    };

    check_upload(deps, &key, parts).await
}

async fn check_upload(
    deps: &UploadDeps,
    key: &str,
    parts: ObjectKey<'_>,
) -> Result<UploadOutcome, UploadError> {
    let ObjectKey {
        chat_id,
        message_id,
        ..
    } = parts;
    let Some((attachment, created_at)) = named_attachment(deps, key, parts).await? else {
        return Ok(UploadOutcome::Skipped);
    };
    if attachment.upload_status != UploadStatus::Pending {
        info!(
            chat_id,
            message_id,
            status = attachment.upload_status.as_str(),
            "upload already finished; nothing changed"
        );
        return Ok(UploadOutcome::AlreadyFinished(attachment.upload_status));
    }

    let stored = deps.attachments.head(key).await?;
    let status = match &stored {
        Some(object) if object.matches(&attachment) => UploadStatus::Uploaded,
        _ => UploadStatus::Failed,
    };
    let updated = deps
        .store
        .finish_upload(chat_id, message_id, key, status)
        .await?;
    if updated.is_none() {
        info!(
            chat_id,
            message_id, "another notification finished the upload first; nothing changed"
        );
        let current = named_attachment(deps, key, parts).await?;
        let status = current.map_or(status, |(attachment, _)| attachment.upload_status);
        return Ok(UploadOutcome::AlreadyFinished(status));
    }

    let since_request_ms = deps.clock.now().epoch_millis() - created_at.epoch_millis();
    match &stored {
        Some(_) if status == UploadStatus::Uploaded => {
            info!(
                chat_id,
                message_id, since_request_ms, "upload marked uploaded"
            );
        }
        Some(object) => warn!(
            chat_id,
            message_id,
            declared_size = attachment.size,
            declared_type = %attachment.content_type,
            stored_size = ?object.size,
            stored_type = ?object.content_type,
            "stored object differs from the declaration; upload marked failed"
        ),
        None => warn!(chat_id, message_id, "object is gone; upload marked failed"),
    }
    Ok(UploadOutcome::Finished(status))
}

/// Reads the attachment of the message that `parts` names, with the message's
/// creation time, if that message exists and names `key` in this bucket.
/// `None` is logged.
async fn named_attachment(
    deps: &UploadDeps,
    key: &str,
    parts: ObjectKey<'_>,
) -> Result<Option<(Attachment, Timestamp)>, StoreError> {
    let ObjectKey {
        chat_id,
        message_id,
        ..
    } = parts;
    let message = deps.store.message(chat_id, message_id).await?;
    let Some((attachment, created_at)) =
        message.and_then(|m| m.attachment.map(|attachment| (attachment, m.created_at)))
    else {
        warn!(
            chat_id,
            message_id, "skipping an object whose attachment message does not exist"
        );
        return Ok(None);
    };
    if attachment.s3_key != key || attachment.s3_bucket != deps.attachments.name() {
        warn!(
            chat_id,
            message_id, "skipping an object that its message does not name"
        );
        return Ok(None);
    }
    Ok(Some((attachment, created_at)))
}
