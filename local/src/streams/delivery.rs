//! Delivering one batch of a shard to the function, with Lambda's retry rules
//! for an event source mapping with `ReportBatchItemFailures` and
//! `BisectBatchOnFunctionError`:
//!
//! - `batchItemFailures` retries from the lowest failed sequence number and
//!   sends every record after it again. A failure that names no record of
//!   the batch retries the whole batch;
//! - a function error (an error result, a panic or a timeout) splits the
//!   batch in two halves, retried in order;
//! - a record that keeps failing is discarded after `max_retries` retries,
//!   with an `error` log line naming it, and delivery goes on after it.
//!
//! Records are handed on in order and none is dropped but by that discard,
//! so the records of a shard are never lost or reordered.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::records::sequence_number;
use crate::functions::StreamFunction;

/// The retry settings of failing records.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of one record before it is discarded.
    pub max_retries: u32,
    /// The wait before the first retry; it doubles with each retry of the
    /// same record, up to [`MAX_BACKOFF`].
    pub backoff: Duration,
}

/// The maximum wait between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The outcome of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Invocations made.
    pub invocations: u32,
    /// Sequence numbers of the records discarded after their retries.
    pub discarded: Vec<String>,
    /// Whether shutdown stopped the delivery before every record was handed
    /// on; the caller must not move its checkpoint past the batch then.
    pub interrupted: bool,
}

/// Delivers `records` (in `lambda_record` form) of `shard_id` to `function`.
pub async fn deliver(
    function: &dyn StreamFunction,
    shard_id: &str,
    records: Vec<Value>,
    policy: &RetryPolicy,
    shutdown: &mut watch::Receiver<bool>,
) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    // Sub-batches still to deliver, in stream order, each with the retries
    // its first record has had.
    let mut pending: VecDeque<(Vec<Value>, u32)> = VecDeque::from([(records, 0)]);
    while let Some((batch, retries)) = pending.pop_front() {
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let result = function.invoke(json!({ "Records": batch })).await;
        report.invocations += 1;
        let duration_ms = started.elapsed().as_millis() as u64;

        let (retry_from, function_error) = match result {
            Ok(response) => {
                let failed: Vec<Option<String>> = response
                    .batch_item_failures
                    .iter()
                    .map(|failure| failure.item_identifier.clone())
                    .collect();
                info!(
                    shard_id,
                    records = batch.len(),
                    failures = failed.len(),
                    duration_ms,
                    "stream batch delivered"
                );
                if failed.is_empty() {
                    continue;
                }
                (lowest_failed_index(&batch, &failed), false)
            }
            Err(err) => {
                warn!(
                    shard_id,
                    records = batch.len(),
                    error = %err,
                    cause = ?std::error::Error::source(&err),
                    duration_ms,
                    "stream-fanout failed; the batch is retried"
                );
                (0, true)
            }
        };

        if function_error && batch.len() > 1 {
            let mut first = batch;
            let second = first.split_off(first.len() / 2);
            pending.push_front((second, 0));
            pending.push_front((first, 0));
            continue;
        }

        // Records before `retry_from` succeeded; a new first record starts
        // its count of retries.
        let retries = if retry_from == 0 { retries + 1 } else { 1 };
        let mut rest = batch;
        rest.drain(..retry_from);
        if retries > policy.max_retries {
            let record = rest.remove(0);
            log_discarded(shard_id, &record, retries - 1);
            report
                .discarded
                .push(sequence_number(&record).unwrap_or_default().to_owned());
            pending.push_front((rest, 0));
            continue;
        }
        pending.push_front((rest, retries));
        if wait_or_shutdown(backoff(policy, retries), shutdown).await {
            report.interrupted = true;
            return report;
        }
    }
    report
}

/// Returns the index of the first record of `batch` whose sequence number is
/// in `failed`. It is 0 (the whole batch) when an identifier is missing or
/// names no record of the batch, as Lambda treats it.
fn lowest_failed_index(batch: &[Value], failed: &[Option<String>]) -> usize {
    let mut lowest = usize::MAX;
    for identifier in failed {
        let position = identifier
            .as_deref()
            .filter(|id| !id.is_empty())
            .and_then(|id| {
                batch
                    .iter()
                    .position(|record| sequence_number(record) == Some(id))
            });
        match position {
            Some(position) => lowest = lowest.min(position),
            None => return 0,
        }
    }
    lowest
}

fn backoff(policy: &RetryPolicy, retries: u32) -> Duration {
    let factor = 2u32.saturating_pow(retries.saturating_sub(1));
    policy.backoff.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Sleeps for `duration`; returns `true` when shutdown came first.
async fn wait_or_shutdown(duration: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => false,
        _ = shutdown.changed() => true,
    }
}

fn log_discarded(shard_id: &str, record: &Value, retries: u32) {
    let keys = &record["dynamodb"]["Keys"];
    error!(
        shard_id,
        event_id = record["eventID"].as_str().unwrap_or_default(),
        event_name = record["eventName"].as_str().unwrap_or_default(),
        sequence_number = sequence_number(record).unwrap_or_default(),
        chat_id = keys["chat_id"]["S"].as_str().unwrap_or_default(),
        message_id = keys["message_id"]["S"].as_str().unwrap_or_default(),
        retries,
        "stream record discarded after its retries; its recipients get no inbox row or push"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence: &str) -> Value {
        json!({ "dynamodb": { "SequenceNumber": sequence } })
    }

    #[test]
    fn lowest_failed_index_picks_the_earliest_named_record() {
        let batch: Vec<Value> = ["1", "2", "3", "4"].into_iter().map(record).collect();
        let failed = |ids: &[&str]| -> Vec<Option<String>> {
            ids.iter().map(|id| Some((*id).to_owned())).collect()
        };
        assert_eq!(lowest_failed_index(&batch, &failed(&["3"])), 2);
        assert_eq!(lowest_failed_index(&batch, &failed(&["4", "2"])), 1);
        assert_eq!(lowest_failed_index(&batch, &failed(&["9"])), 0);
        assert_eq!(lowest_failed_index(&batch, &failed(&[""])), 0);
        assert_eq!(lowest_failed_index(&batch, &[None]), 0);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let policy = RetryPolicy {
            max_retries: 3,
            backoff: Duration::from_millis(100),
        };
        assert_eq!(backoff(&policy, 1), Duration::from_millis(100));
        assert_eq!(backoff(&policy, 3), Duration::from_millis(400));
        assert_eq!(backoff(&policy, 30), MAX_BACKOFF);
    }
}
