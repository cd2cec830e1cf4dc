//! `stream-fanout`: turns Messages stream records into Inbox rows and pushes.
//!
//! Records are handled in order. An INSERT writes one Inbox row per member
//! but the sender, then pushes `message` to the chat's subscribed
//! connections. A MODIFY whose `upload_status` changed pushes
//! `message-updated`.
//!
//! The Inbox writes are the durable part. At the first record whose writes
//! still fail after retries, that record alone is reported in
//! `batchItemFailures` and the records after it are not touched, because
//! Lambda retries from the lowest reported sequence number and sends them
//! again. Replaying a record writes the same rows again.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use tracing::{Instrument, info, info_span, warn};

use super::FanoutDeps;
use crate::domain::{InboxEntry, Message};
use crate::protocol::ServerFrame;
use crate::push::PushReport;
use crate::store::{StoreError, put_inbox_entries};

/// The outcome of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A new message: Inbox rows written and `message` pushed.
    Delivered {
        /// Inbox rows written.
        inbox_rows: usize,
        /// The pushes.
        push: PushReport,
    },
    /// An attachment's status changed: `message-updated` pushed.
    Updated(PushReport),
    /// Nothing to do: another MODIFY, a REMOVE, a TTL removal or not a message.
    Skipped,
}

/// Handles one batch of stream records.
///
/// # Errors
///
/// None: per-record failures go into `batchItemFailures`.
pub async fn handle(
    deps: &FanoutDeps,
    event: Event,
) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
    let mut response = DynamoDbEventResponse::default();
    let total = event.records.len();
    for (index, record) in event.records.iter().enumerate() {
        let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
        let span =
            info_span!("record", event_id = %record.event_id, sequence_number = %sequence_number);
        match handle_record(deps, record).instrument(span).await {
            Ok(_) => {}
            Err(err) => {
                warn!(
                    event_id = %record.event_id,
                    sequence_number = %sequence_number,
                    error = %err,
                    left_for_retry = total - index - 1,
                    "inbox writes failed; reporting the record for retry"
                );
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence_number);
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    Ok(response)
}

/// Handles one record.
///
/// # Errors
///
/// When the Inbox rows of a new message could not be written.
pub async fn handle_record(
    deps: &FanoutDeps,
    record: &EventRecord,
) -> Result<RecordOutcome, StoreError> {
    match record.event_name.as_str() {
        "INSERT" => {
            let Some(message) = image_message(record, &record.change.new_image) else {
                return Ok(RecordOutcome::Skipped);
            };
            deliver(deps, &message).await
        }
        "MODIFY" => {
            let (Some(new), Some(old)) = (
                image_message(record, &record.change.new_image),
                image_message(record, &record.change.old_image),
            ) else {
                return Ok(RecordOutcome::Skipped);
            };
            let status = |message: &Message| message.attachment.as_ref().map(|a| a.upload_status);
            if status(&new) == status(&old) {
                return Ok(RecordOutcome::Skipped);
            }
            let push = push(
                deps,
                &new.chat_id,
                &ServerFrame::MessageUpdated(new.clone()),
            )
            .await;
            info!(chat_id = %new.chat_id, message_id = %new.message_id, ?push, "message update pushed");
            Ok(RecordOutcome::Updated(push))
        }
        // REMOVE, TTL removals included, needs nothing.
        _ => Ok(RecordOutcome::Skipped),
    }
}

async fn deliver(deps: &FanoutDeps, message: &Message) -> Result<RecordOutcome, StoreError> {
    let members = deps.store.members_of_chat(&message.chat_id).await?;
    let entries: Vec<InboxEntry> = members
        .iter()
        .filter(|member| member.user_id != message.sender_id)
        .map(|member| InboxEntry::for_message(&member.user_id, message))
        .collect();
    put_inbox_entries(deps.inbox.as_ref(), &entries).await?;

    let push = push(
        deps,
        &message.chat_id,
        &ServerFrame::Message(message.clone()),
    )
    .await;
    info!(
        chat_id = %message.chat_id,
        message_id = %message.message_id,
        seq = message.seq,
        inbox_rows = entries.len(),
        delivered = push.delivered,
        gone = push.gone,
        failed = push.failed,
        "message fanned out"
    );
    Ok(RecordOutcome::Delivered {
        inbox_rows: entries.len(),
        push,
    })
}

/// Pushes `frame` to every live subscription of `chat_id`. A failed read of
/// the subscriptions is logged: the recipients still have their Inbox rows.
async fn push(deps: &FanoutDeps, chat_id: &str, frame: &ServerFrame) -> PushReport {
    let now = deps.clock.now();
    let subscriptions = match deps.store.subscriptions_of_chat(chat_id, now).await {
        Ok(subscriptions) => subscriptions,
        Err(err) => {
            warn!(chat_id, error = %err, "reading subscriptions failed; nothing pushed");
            return PushReport::default();
        }
    };
    let connection_ids: Vec<String> = subscriptions
        .into_iter()
        .map(|subscription| subscription.connection_id)
        .collect();
    deps.pusher
        .push(&deps.store, &connection_ids, frame, now)
        .await
}

/// Reads the message in `image`, or `None` (logged) when the image is empty or not a message.
fn image_message(record: &EventRecord, image: &serde_dynamo::Item) -> Option<Message> {
    if image.is_empty() {
        return None;
    }
    let item: HashMap<String, AttributeValue> = image.clone().into();
    match Message::try_from(&item) {
        Ok(message) => Some(message),
        Err(err) => {
            warn!(event_id = %record.event_id, error = %err, "skipping a record that is not a message");
            None
        }
    }
}
