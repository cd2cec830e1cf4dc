//! DynamoDB access: one [`Store`] over the eight tables, with the item
//! mapping of every domain type.
//!
//! The same code runs against AWS, dynoxide and moto's server; only the
//! endpoint differs. Reads of tables with a TTL filter out expired rows
//! themselves, because DynamoDB deletes them lazily (up to two days late).

mod batch;
mod chats;
mod connections;
mod inbox;
mod items;
mod messages;
mod tickets;
mod uploads;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::TransactWriteItem;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::TableNames;
use crate::domain::Timestamp;
use crate::error::ChatError;

pub use batch::{BATCH_RETRIES, backoff};
pub use chats::MembershipChange;
pub use inbox::{DynamoInboxWriter, InboxWriter, put_inbox_entries};
pub use messages::{APPEND_DEADLINE, AppendOutcome};

/// An item in the SDK's representation.
pub type Item = HashMap<String, AttributeValue>;

/// Maximum items of one BatchWriteItem request (a DynamoDB limit).
pub const BATCH_WRITE_MAX_ITEMS: usize = 25;
/// Maximum keys of one BatchGetItem request (a DynamoDB limit).
pub const BATCH_GET_MAX_KEYS: usize = 100;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An item lacks an attribute or has it with the wrong type: the data is
    /// not what this code wrote, so it is never replaced by a default.
    #[error("item {key} of table {table}: attribute {attribute} {problem}")]
    Corrupt {
        /// Logical table name (`Messages`, ...).
        table: &'static str,
        /// The item's key, as `name=value` pairs.
        key: String,
        /// The attribute at fault.
        attribute: &'static str,
        /// The problem with the attribute.
        problem: String,
    },
    /// DynamoDB throttled the request and the SDK's retries ran out.
    #[error("{operation} on table {table} was throttled")]
    Throttled {
        /// Table name.
        table: String,
        /// The DynamoDB operation.
        operation: &'static str,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request failed.
    #[error("{operation} on table {table} failed")]
    Request {
        /// Table name.
        table: String,
        /// The DynamoDB operation.
        operation: &'static str,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A batch still had unprocessed items after every retry.
    #[error("{operation} on table {table} left {remaining} items unprocessed after retries")]
    Unprocessed {
        /// Table name.
        table: String,
        /// The DynamoDB operation.
        operation: &'static str,
        /// How many items were left.
        remaining: usize,
    },
    /// A request could not be built.
    #[error("invalid {operation} request for table {table}")]
    Build {
        /// Table name.
        table: String,
        /// The DynamoDB operation.
        operation: &'static str,
        /// The builder's error.
        #[source]
        source: aws_sdk_dynamodb::error::BuildError,
    },
}

impl StoreError {
    /// Wraps an SDK error of `operation` on `table`, telling throttling apart.
    pub(crate) fn request<E>(table: &str, operation: &'static str, err: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let throttled = matches!(
            err.code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
            )
        );
        if throttled {
            Self::Throttled {
                table: table.to_owned(),
                operation,
                source: Box::new(err),
            }
        } else {
            Self::Request {
                table: table.to_owned(),
                operation,
                source: Box::new(err),
            }
        }
    }

    pub(crate) fn build(
        table: &str,
        operation: &'static str,
        source: aws_sdk_dynamodb::error::BuildError,
    ) -> Self {
        Self::Build {
            table: table.to_owned(),
            operation,
            source,
        }
    }
}

/// The tables, reached through one SDK client.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    tables: Arc<TableNames>,
}

impl Store {
    /// Creates a store over `tables` through `client`.
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self {
            client,
            tables: Arc::new(tables),
        }
    }

    /// Returns the table names.
    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    /// Returns the SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Store {
    /// Runs a TransactWriteItems of `items`. When DynamoDB cancels it, returns
    /// for each item whether its condition failed; the list is empty when
    /// the server gave no cancellation reasons.
    pub(crate) async fn transact(
        &self,
        table: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<bool>>, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(err)) => match err.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => Ok(Some(
                    cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|reason| reason.code() == Some("ConditionalCheckFailed"))
                        .collect(),
                )),
                _ => Err(StoreError::request(
                    table,
                    "TransactWriteItems",
                    SdkError::ServiceError(err),
                )),
            },
            Err(err) => Err(StoreError::request(table, "TransactWriteItems", err)),
        }
    }
}

/// One paginated Query: a partition, a direction and a cursor's attributes.
pub(crate) struct PageQuery<'a> {
    pub(crate) table: &'a str,
    /// The partition key's name and value.
    pub(crate) partition: (&'a str, &'a str),
    /// The sort-key attributes a cursor holds; the partition is never in it.
    pub(crate) cursor_names: &'static [&'static str],
    /// Ascending sort key order when `true`.
    pub(crate) forward: bool,
    /// When given, rows whose `expires_at` is not after it are filtered out.
    pub(crate) live_at: Option<Timestamp>,
}

impl Store {
    /// Reads one page of `query`, `limit` rows at most, after `after`.
    ///
    /// `limit` bounds the rows DynamoDB reads, so a filtered page can be
    /// short; `next` comes from `LastEvaluatedKey` only.
    pub(crate) async fn query_page<T>(
        &self,
        query: PageQuery<'_>,
        limit: usize,
        after: Option<&Cursor>,
    ) -> Result<Page<T>, StoreError>
    where
        T: for<'i> TryFrom<&'i Item, Error = StoreError>,
    {
        let mut request = self
            .client
            .query()
            .table_name(query.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", query.partition.0)
            .expression_attribute_values(":pk", s(query.partition.1))
            .scan_index_forward(query.forward)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(|cursor| cursor.to_key(query.partition)));
        if let Some(now) = query.live_at {
            request = request
                .filter_expression("#exp > :now")
                .expression_attribute_names("#exp", items::attr::EXPIRES_AT)
                .expression_attribute_values(":now", n(now.epoch_seconds()));
        }
        let output = request
            .send()
            .await
            .map_err(|err| StoreError::request(query.table, "Query", err))?;
        let items = output
            .items
            .unwrap_or_default()
            .iter()
            .map(T::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = output
            .last_evaluated_key
            .filter(|key| !key.is_empty())
            .and_then(|key| Cursor::from_key(&key, query.cursor_names));
        Ok(Page { items, next })
    }
}

/// A page of results with the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The results, possibly fewer than the limit when rows were filtered.
    pub items: Vec<T>,
    /// The start of the next page, when DynamoDB reported more.
    pub next: Option<Cursor>,
}

/// An opaque pagination cursor: string key attributes, base64url-encoded JSON.
///
/// A cursor names only the attributes the caller cannot choose, never the
/// partition key, so a cursor cannot lead into another user's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub(crate) Vec<(String, String)>);

impl Cursor {
    /// Encodes the cursor as it is sent to clients.
    pub fn encode(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect();
        URL_SAFE_NO_PAD.encode(serde_json::Value::Object(map).to_string())
    }

    /// Decodes a client's cursor that must hold exactly the string attributes `names`.
    ///
    /// # Errors
    ///
    /// `invalid_request` naming `field` when the text is not such a cursor.
    pub fn decode(field: &str, text: &str, names: &[&str]) -> Result<Self, ChatError> {
        let invalid = || ChatError::invalid_field(field, "is not a cursor this service issued");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let map = value.as_object().ok_or_else(invalid)?;
        if map.len() != names.len() {
            return Err(invalid());
        }
        let mut pairs = Vec::with_capacity(names.len());
        for name in names {
            let value = map
                .get(*name)
                .and_then(|v| v.as_str())
                .ok_or_else(invalid)?;
            if value.is_empty() || value.len() > 1024 {
                return Err(invalid());
            }
            pairs.push(((*name).to_owned(), value.to_owned()));
        }
        Ok(Self(pairs))
    }

    /// Returns the value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Creates a cursor of these pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    /// Builds the DynamoDB key of this cursor plus `partition` (name, value).
    pub(crate) fn to_key(&self, partition: (&str, &str)) -> Item {
        let mut key: Item = self
            .0
            .iter()
            .map(|(name, value)| (name.clone(), AttributeValue::S(value.clone())))
            .collect();
        key.insert(
            partition.0.to_owned(),
            AttributeValue::S(partition.1.to_owned()),
        );
        key
    }

    /// Builds the cursor of `last_evaluated`, keeping only `names`.
    pub(crate) fn from_key(last_evaluated: &Item, names: &[&str]) -> Option<Self> {
        let pairs: Option<Vec<(String, String)>> = names
            .iter()
            .map(|name| match last_evaluated.get(*name) {
                Some(AttributeValue::S(value)) => Some(((*name).to_owned(), value.clone())),
                _ => None,
            })
            .collect();
        pairs.map(Self)
    }
}

/// Builds the string attribute value `value`.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Builds the number attribute value `value`.
pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let cursor = Cursor::from_pairs(&[("message_id", "01JEXAMPLE0000000000000001")]);
        let text = cursor.encode();
        let back = Cursor::decode("cursor", &text, &["message_id"]).unwrap();
        assert_eq!(back, cursor);
    }

    #[test]
    fn cursor_with_other_attributes_is_rejected() {
        let foreign = Cursor::from_pairs(&[("recipient_id", "bob"), ("message_id", "m")]);
        assert!(Cursor::decode("cursor", &foreign.encode(), &["message_id"]).is_err());
        assert!(Cursor::decode("cursor", "!!!", &["message_id"]).is_err());
        assert!(Cursor::decode("cursor", "", &["message_id"]).is_err());
    }
}
