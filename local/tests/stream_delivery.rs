//! Lambda's retry rules for stream batches, through the poller's delivery
//! step and a function that fails on purpose.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chat_local::functions::{FunctionError, Invocation, StreamFunction};
use chat_local::streams::delivery::{RetryPolicy, deliver};
use serde_json::{Value, json};
use tokio::sync::watch;

/// How a record of the fake function fails.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// Reported in `batchItemFailures`, this many more times.
    Reported(u32),
    /// Makes the whole invocation fail, this many more times.
    FunctionError(u32),
}

/// Handles records in order and stops at the first failing one, as
/// `stream-fanout` does, recording what it handled and every invocation.
#[derive(Default)]
struct FakeFanout {
    failures: Mutex<HashMap<String, Failure>>,
    handled: Mutex<Vec<String>>,
    invocations: Mutex<Vec<Vec<String>>>,
}

impl FakeFanout {
    fn failing(failures: &[(&str, Failure)]) -> Self {
        let fake = Self::default();
        for (id, failure) in failures {
            fake.failures
                .lock()
                .unwrap()
                .insert((*id).to_owned(), *failure);
        }
        fake
    }

    fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }

    fn invocations(&self) -> Vec<Vec<String>> {
        self.invocations.lock().unwrap().clone()
    }
}

impl StreamFunction for FakeFanout {
    fn invoke(&self, event: Value) -> Invocation<'_, DynamoDbEventResponse> {
        Box::pin(async move {
            let records = event["Records"].as_array().cloned().unwrap_or_default();
            let ids: Vec<String> = records
                .iter()
                .map(|record| {
                    record["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            self.invocations.lock().unwrap().push(ids.clone());

            let mut failures = self.failures.lock().unwrap();
            if ids
                .iter()
                .any(|id| matches!(failures.get(id), Some(Failure::FunctionError(n)) if *n > 0))
            {
                for id in &ids {
                    if let Some(Failure::FunctionError(n)) = failures.get_mut(id) {
                        *n = n.saturating_sub(1);
                    }
                }
                return Err(FunctionError::Panicked {
                    function: "stream-fanout",
                });
            }
            let mut response = DynamoDbEventResponse::default();
            for id in ids {
                if let Some(Failure::Reported(n)) = failures.get_mut(&id)
                    && *n > 0
                {
                    *n -= 1;
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = Some(id);
                    response.batch_item_failures.push(failure);
                    break;
                }
                self.handled.lock().unwrap().push(id);
            }
            Ok(response)
        })
    }
}

fn records(ids: &[&str]) -> Vec<Value> {
    ids.iter()
        .map(|id| {
            json!({
                "eventID": format!("event-{id}"),
                "eventName": "INSERT",
                "dynamodb": {
                    "Keys": { "chat_id": { "S": "c" }, "message_id": { "S": format!("m{id}") } },
                    "SequenceNumber": id,
                },
            })
        })
        .collect()
}

fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        backoff: Duration::from_millis(1),
    }
}

fn ids(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

#[tokio::test]
async fn retry_starts_at_the_failed_record() {
    let fake = FakeFanout::failing(&[("3", Failure::Reported(1))]);
    let (_stop, mut shutdown) = watch::channel(false);
    let report = deliver(
        &fake,
        "shard",
        records(&["1", "2", "3", "4", "5"]),
        &policy(3),
        &mut shutdown,
    )
    .await;

    assert_eq!(
        fake.invocations(),
        [ids(&["1", "2", "3", "4", "5"]), ids(&["3", "4", "5"])],
        "the retry starts at the failed record and sends every record after it"
    );
    assert_eq!(
        fake.handled(),
        ids(&["1", "2", "3", "4", "5"]),
        "each record once, in order"
    );
    assert!(report.discarded.is_empty());
    assert!(!report.interrupted);
}

#[tokio::test]
async fn record_past_the_retry_cap_is_discarded() {
    let fake = FakeFanout::failing(&[("3", Failure::Reported(u32::MAX))]);
    let (_stop, mut shutdown) = watch::channel(false);
    let report = deliver(
        &fake,
        "shard",
        records(&["1", "2", "3", "4", "5"]),
        &policy(2),
        &mut shutdown,
    )
    .await;

    assert_eq!(
        fake.invocations(),
        [
            ids(&["1", "2", "3", "4", "5"]),
            ids(&["3", "4", "5"]),
            ids(&["3", "4", "5"]),
            ids(&["4", "5"]),
        ],
        "the first attempt and two retries, then the records after it"
    );
    assert_eq!(fake.handled(), ids(&["1", "2", "4", "5"]));
    assert_eq!(report.discarded, ids(&["3"]));
}

#[tokio::test]
async fn unknown_failure_retries_the_whole_batch() {
    struct Unknown(Mutex<u32>);
    impl StreamFunction for Unknown {
        fn invoke(&self, _event: Value) -> Invocation<'_, DynamoDbEventResponse> {
            Box::pin(async move {
                let mut calls = self.0.lock().unwrap();
                *calls += 1;
                let mut response = DynamoDbEventResponse::default();
                if *calls == 1 {
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = Some("not-in-the-batch".to_owned());
                    response.batch_item_failures.push(failure);
                }
                Ok(response)
            })
        }
    }
    let function = Unknown(Mutex::new(0));
    let (_stop, mut shutdown) = watch::channel(false);
    let report = deliver(
        &function,
        "shard",
        records(&["1", "2"]),
        &policy(3),
        &mut shutdown,
    )
    .await;
    assert_eq!(report.invocations, 2);
    assert!(report.discarded.is_empty());
}

#[tokio::test]
async fn function_error_bisects_the_batch() {
    let fake = FakeFanout::failing(&[("3", Failure::FunctionError(1))]);
    let (_stop, mut shutdown) = watch::channel(false);
    deliver(
        &fake,
        "shard",
        records(&["1", "2", "3", "4"]),
        &policy(3),
        &mut shutdown,
    )
    .await;

    assert_eq!(
        fake.invocations(),
        [
            ids(&["1", "2", "3", "4"]),
            ids(&["1", "2"]),
            ids(&["3", "4"])
        ],
        "the failed batch is split in two halves, first half first"
    );
    assert_eq!(fake.handled(), ids(&["1", "2", "3", "4"]));
}

#[tokio::test]
async fn shutdown_interrupts_a_retry_wait() {
    let fake = FakeFanout::failing(&[("1", Failure::Reported(u32::MAX))]);
    let (stop, mut shutdown) = watch::channel(false);
    stop.send(true).unwrap();
    let slow = RetryPolicy {
        max_retries: 10,
        backoff: Duration::from_secs(60),
    };
    let report = deliver(&fake, "shard", records(&["1"]), &slow, &mut shutdown).await;
    assert!(report.interrupted);
    assert_eq!(report.invocations, 1);
}
