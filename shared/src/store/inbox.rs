//! Inbox: one row per recipient and message until it is acknowledged.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::future::BoxFuture;

use super::batch::backoff;
use super::items::attr;
use super::{
    BATCH_RETRIES, BATCH_WRITE_MAX_ITEMS, Cursor, Item, Page, PageQuery, Store, StoreError, s,
};
use crate::domain::{InboxEntry, Message, Timestamp};

/// One BatchWriteItem of Inbox rows. A trait so that tests can inject
/// `UnprocessedItems` and failures; [`DynamoInboxWriter`] is the implementation.
pub trait InboxWriter: Send + Sync {
    /// Puts at most 25 `entries` in one request and returns those DynamoDB
    /// left unprocessed.
    fn put_batch<'a>(
        &'a self,
        entries: &'a [InboxEntry],
    ) -> BoxFuture<'a, Result<Vec<InboxEntry>, StoreError>>;
}

/// Writes Inbox rows to the Inbox table.
#[derive(Debug, Clone)]
pub struct DynamoInboxWriter {
    store: Store,
}

impl DynamoInboxWriter {
    /// Creates a writer to the Inbox table of `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl InboxWriter for DynamoInboxWriter {
    fn put_batch<'a>(
        &'a self,
        entries: &'a [InboxEntry],
    ) -> BoxFuture<'a, Result<Vec<InboxEntry>, StoreError>> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(Vec::new());
            }
            let table = &self.store.tables.inbox;
            let requests = entries
                .iter()
                .map(|entry| {
                    let put = PutRequest::builder()
                        .set_item(Some(Item::from(entry)))
                        .build()
                        .map_err(|err| StoreError::build(table, "BatchWriteItem", err))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let output = self
                .store
                .client
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .map_err(|err| StoreError::request(table, "BatchWriteItem", err))?;
            let unprocessed = output
                .unprocessed_items
                .and_then(|mut items| items.remove(table))
                .unwrap_or_default();
            unprocessed
                .iter()
                .filter_map(|request| request.put_request.as_ref())
                .map(|put| InboxEntry::try_from(&put.item))
                .collect()
        })
    }
}

/// Writes every entry through `writer`, 25 at a time, retrying unprocessed
/// ones with bounded, jittered backoff. Putting a row twice leaves one row.
///
/// # Errors
///
/// [`StoreError::Unprocessed`] when rows remain after [`BATCH_RETRIES`] retries,
/// or the first request error.
pub async fn put_inbox_entries(
    writer: &dyn InboxWriter,
    entries: &[InboxEntry],
) -> Result<(), StoreError> {
    for chunk in entries.chunks(BATCH_WRITE_MAX_ITEMS) {
        let mut pending = chunk.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            if attempt > 0 {
                if attempt > BATCH_RETRIES {
                    return Err(StoreError::Unprocessed {
                        table: "Inbox".to_owned(),
                        operation: "BatchWriteItem",
                        remaining: pending.len(),
                    });
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            pending = writer.put_batch(&pending).await?;
            attempt += 1;
        }
    }
    Ok(())
}

/// The cursor attributes of an inbox page: the recipient is always the caller.
const INBOX_CURSOR: &[&str] = &[attr::MESSAGE_ID];

impl Store {
    /// Reads a page of `recipient_id`'s unexpired inbox rows at `now`, oldest first.
    ///
    /// `limit` bounds the rows DynamoDB reads, so a page can be short when
    /// expired rows were filtered; `next` comes from `LastEvaluatedKey` only.
    pub async fn inbox_page(
        &self,
        recipient_id: &str,
        limit: usize,
        after: Option<&Cursor>,
        now: Timestamp,
    ) -> Result<Page<InboxEntry>, StoreError> {
        let query = PageQuery {
            table: &self.tables.inbox,
            partition: (attr::RECIPIENT_ID, recipient_id),
            cursor_names: INBOX_CURSOR,
            forward: true,
            live_at: Some(now),
        };
        self.query_page(query, limit, after).await
    }

    /// Decodes an inbox cursor from a client.
    pub fn inbox_cursor(text: &str) -> Result<Cursor, crate::error::ChatError> {
        Cursor::decode("cursor", text, INBOX_CURSOR)
    }

    /// Deletes `recipient_id`'s row for `message_id`; an unknown row is no error.
    pub async fn delete_inbox_entry(
        &self,
        recipient_id: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        let table = &self.tables.inbox;
        self.client
            .delete_item()
            .table_name(table)
            .key(attr::RECIPIENT_ID, s(recipient_id))
            .key(attr::MESSAGE_ID, s(message_id))
            .send()
            .await
            .map_err(|err| StoreError::request(table, "DeleteItem", err))?;
        Ok(())
    }

    /// Reads the messages named by `keys` (chat id, message id) and returns
    /// them in the order of `keys`. Keys without a message are left out.
    pub async fn messages_by_keys(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<Message>, StoreError> {
        let table = &self.tables.messages;
        let mut unique: Vec<Item> = Vec::with_capacity(keys.len());
        let mut seen = std::collections::HashSet::new();
        for (chat_id, message_id) in keys {
            // BatchGetItem rejects a request that names one key twice.
            if seen.insert((chat_id.as_str(), message_id.as_str())) {
                unique.push(Item::from([
                    (attr::CHAT_ID.to_owned(), s(chat_id)),
                    (attr::MESSAGE_ID.to_owned(), s(message_id)),
                ]));
            }
        }
        let found = self.batch_get(table, unique).await?;
        let mut by_key: HashMap<(String, String), Message> = HashMap::with_capacity(found.len());
        for item in &found {
            let message = Message::try_from(item)?;
            by_key.insert(
                (message.chat_id.clone(), message.message_id.clone()),
                message,
            );
        }
        Ok(keys
            .iter()
            .filter_map(|key| by_key.get(key).cloned())
            .collect())
    }
}
