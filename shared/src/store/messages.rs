//! Messages and ClientMessages, and the one transaction that appends a message.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::batch::backoff;
use super::items::attr;
use super::{Item, Store, StoreError, n, s};
use chrono::TimeDelta;

use crate::clock::new_ulid;
use crate::domain::{CLIENT_MESSAGE_LIFETIME, ClientMessage, Message, Timestamp};

/// How long [`Store::append_message`] keeps retrying when other senders take
/// the next `seq` first. It stays well inside `ws-message`'s 10-second Lambda
/// timeout, so a busy chat gets `conflict` rather than a timed-out function.
pub const APPEND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(4);
/// Maximum pause between two attempts.
const APPEND_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_millis(200);

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The message is stored with this `seq`.
    Appended(Message),
    /// The sender already sent this `client_message_id`: nothing was written,
    /// and this is the first send.
    Duplicate(ClientMessage),
    /// The chat does not exist.
    ChatMissing,
    /// Other senders took every `seq` this call tried; nothing was written.
    Contended,
}

/// The reason one transaction attempt was cancelled.
enum Cancelled {
    /// Another message took the `seq`, or another transaction touched the chat.
    SeqTaken,
    /// The ClientMessages row exists.
    Duplicate,
}

impl Store {
    /// Appends `message` to its chat: in one TransactWriteItems, the chat's
    /// `last_seq` goes from n−1 to n on condition that it still is n−1, with
    /// `last_message_at`; the message is put with `seq` n; and, when it has a
    /// `client_message_id`, the ClientMessages row is put on condition that
    /// no live one exists. A lost race on `last_seq` is retried with backoff,
    /// so seqs have no gaps and no repeats.
    ///
    /// This assigns `seq`, `created_at` and `message_id`: each message of a
    /// chat is at least a millisecond later than the one before, and its id
    /// is a ULID of that time, so a chat's message ids sort by `seq`.
    pub async fn append_message(
        &self,
        mut message: Message,
        now: Timestamp,
    ) -> Result<AppendOutcome, StoreError> {
        let deadline = tokio::time::Instant::now() + APPEND_DEADLINE;
        for attempt in 0u32.. {
            if attempt > 0 {
                let pause = backoff(attempt).min(APPEND_BACKOFF_CAP);
                if tokio::time::Instant::now() + pause >= deadline {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            let Some(chat) = self.chat(&message.chat_id).await? else {
                return Ok(AppendOutcome::ChatMissing);
            };
            message.seq = chat.last_seq + 1;
            let after_last = chat
                .last_message_at
                .map(|last| last.plus(TimeDelta::milliseconds(1)));
            message.created_at = after_last.map_or(now, |floor| floor.max(now));
            message.set_id(new_ulid(message.created_at));
            match self.try_append(&message, chat.last_seq, now).await? {
                None => return Ok(AppendOutcome::Appended(message)),
                Some(Cancelled::SeqTaken) => continue,
                Some(Cancelled::Duplicate) => {
                    let Some(id) = &message.client_message_id else {
                        continue;
                    };
                    if let Some(first) = self.client_message(&message.sender_id, id, now).await? {
                        return Ok(AppendOutcome::Duplicate(first));
                    }
                    // The row expired between the condition and the read: try again.
                }
            }
        }
        Ok(AppendOutcome::Contended)
    }

    async fn try_append(
        &self,
        message: &Message,
        previous_seq: u64,
        now: Timestamp,
    ) -> Result<Option<Cancelled>, StoreError> {
        let tables = &self.tables;
        let build = |table: &str, err| StoreError::build(table, "TransactWriteItems", err);

        let advance = Update::builder()
            .table_name(&tables.chats)
            .key(attr::CHAT_ID, s(&message.chat_id))
            .update_expression("SET #seq = :next, #last = :at")
            .condition_expression("#seq = :previous")
            .expression_attribute_names("#seq", attr::LAST_SEQ)
            .expression_attribute_names("#last", attr::LAST_MESSAGE_AT)
            .expression_attribute_values(":next", n(message.seq))
            .expression_attribute_values(":previous", n(previous_seq))
            .expression_attribute_values(":at", s(message.created_at.to_string()))
            .build()
            .map_err(|err| build(&tables.chats, err))?;
        let put_message = Put::builder()
            .table_name(&tables.messages)
            .set_item(Some(Item::from(message)))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", attr::MESSAGE_ID)
            .build()
            .map_err(|err| build(&tables.messages, err))?;
        let mut items = vec![
            TransactWriteItem::builder().update(advance).build(),
            TransactWriteItem::builder().put(put_message).build(),
        ];
        if let Some(client_message_id) = &message.client_message_id {
            let record = ClientMessage {
                sender_id: message.sender_id.clone(),
                client_message_id: client_message_id.clone(),
                chat_id: message.chat_id.clone(),
                message_id: message.message_id.clone(),
                seq: message.seq,
                created_at: message.created_at,
                expires_at: now.plus(CLIENT_MESSAGE_LIFETIME),
            };
            // An expired row is as good as none: TTL may not have removed it yet.
            let put_record = Put::builder()
                .table_name(&tables.client_messages)
                .set_item(Some(Item::from(&record)))
                .condition_expression("attribute_not_exists(#id) OR #exp <= :now")
                .expression_attribute_names("#id", attr::CLIENT_MESSAGE_ID)
                .expression_attribute_names("#exp", attr::EXPIRES_AT)
                .expression_attribute_values(":now", n(now.epoch_seconds()))
                .build()
                .map_err(|err| build(&tables.client_messages, err))?;
            items.push(TransactWriteItem::builder().put(put_record).build());
        }

        let Some(failed) = self.transact(&tables.messages, items).await? else {
            return Ok(None);
        };
        if failed.get(2) == Some(&true) {
            Ok(Some(Cancelled::Duplicate))
        } else if failed.is_empty() && message.client_message_id.is_some() {
            // Without reasons the cause is unknown: look for the row.
            Ok(Some(Cancelled::Duplicate))
        } else {
            Ok(Some(Cancelled::SeqTaken))
        }
    }

    /// Reads the live record of `sender_id`'s `client_message_id` at `now`, if any.
    pub async fn client_message(
        &self,
        sender_id: &str,
        client_message_id: &str,
        now: Timestamp,
    ) -> Result<Option<ClientMessage>, StoreError> {
        let table = &self.tables.client_messages;
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(attr::SENDER_ID, s(sender_id))
            .key(attr::CLIENT_MESSAGE_ID, s(client_message_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::request(table, "GetItem", err))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let record = ClientMessage::try_from(&item)?;
        Ok((record.expires_at > now).then_some(record))
    }

    /// Reads the message `message_id` of `chat_id`, if it exists.
    pub async fn message(
        &self,
        chat_id: &str,
        message_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let table = &self.tables.messages;
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(attr::CHAT_ID, s(chat_id))
            .key(attr::MESSAGE_ID, s(message_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::request(table, "GetItem", err))?;
        output.item.as_ref().map(Message::try_from).transpose()
    }
}

/// The cursor attributes of a history page: the chat is always the one asked for.
const HISTORY_CURSOR: &[&str] = &[attr::MESSAGE_ID];

impl Store {
    /// Reads a page of `chat_id`'s messages, newest first, starting after `before`.
    pub async fn history_page(
        &self,
        chat_id: &str,
        limit: usize,
        before: Option<&super::Cursor>,
    ) -> Result<super::Page<Message>, StoreError> {
        let query = super::PageQuery {
            table: &self.tables.messages,
            partition: (attr::CHAT_ID, chat_id),
            cursor_names: HISTORY_CURSOR,
            forward: false,
            live_at: None,
        };
        self.query_page(query, limit, before).await
    }

    /// Decodes a history cursor from a client.
    pub fn history_cursor(text: &str) -> Result<super::Cursor, crate::error::ChatError> {
        super::Cursor::decode("before", text, HISTORY_CURSOR)
    }
}
