//! BatchWriteItem and BatchGetItem in chunks of the DynamoDB limits, retrying
//! what DynamoDB leaves unprocessed with bounded, jittered backoff.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{KeysAndAttributes, WriteRequest};
use rand::Rng;

use super::{BATCH_GET_MAX_KEYS, BATCH_WRITE_MAX_ITEMS, Item, Store, StoreError};

/// Retries of one batch's unprocessed items before giving up.
pub const BATCH_RETRIES: u32 = 6;
/// First backoff; each retry doubles it, up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(25);
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// The pause before retry `attempt` (1 for the first): "full jitter", a random
/// time up to the exponential bound, so that retrying writers spread out.
pub fn backoff(attempt: u32) -> Duration {
    let bound = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(10))
        .min(BACKOFF_CAP);
    let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

impl Store {
    /// Writes `requests` to `table` in chunks of 25, retrying unprocessed items.
    pub(crate) async fn batch_write(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE_MAX_ITEMS) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt > 0 {
                    if attempt > BATCH_RETRIES {
                        return Err(StoreError::Unprocessed {
                            table: table.to_owned(),
                            operation: "BatchWriteItem",
                            remaining: pending.len(),
                        });
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|err| StoreError::request(table, "BatchWriteItem", err))?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut unprocessed| unprocessed.remove(table))
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(())
    }

    /// Reads `keys` from `table` in chunks of 100, retrying unprocessed keys.
    /// The items come back in no particular order; keys that do not exist are absent.
    pub(crate) async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX_KEYS) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt > 0 {
                    if attempt > BATCH_RETRIES {
                        return Err(StoreError::Unprocessed {
                            table: table.to_owned(),
                            operation: "BatchGetItem",
                            remaining: pending.len(),
                        });
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|err| StoreError::build(table, "BatchGetItem", err))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|err| StoreError::request(table, "BatchGetItem", err))?;
                let mut responses: HashMap<String, Vec<Item>> =
                    output.responses.unwrap_or_default();
                found.extend(responses.remove(table).unwrap_or_default());
                pending = output
                    .unprocessed_keys
                    .and_then(|mut unprocessed| unprocessed.remove(table))
                    .map(|keys| keys.keys)
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..20 {
            assert!(backoff(attempt) <= BACKOFF_CAP);
        }
    }
}
