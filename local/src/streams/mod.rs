//! Lambda's event source mapping for the Messages stream, through the
//! DynamoDB Streams API (`DescribeStream`, `GetShardIterator`, `GetRecords`).
//!
//! Each shard is read by a task of its own, one batch at a time, so that the
//! records of a shard reach `stream-fanout` in order. A shard is read only
//! once its parent is read to its end (or has left the shard list), as Lambda
//! does after a shard split. The shard list is read again every
//! [`StreamOptions::describe_interval`] and whenever a shard ends. A batch is
//! one `GetRecords` page of at most [`StreamOptions::batch_size`] records,
//! filtered as the mapping's `FilterCriteria` does, and delivered with the
//! retry rules of [`delivery`]. Reading starts at the trim horizon, the
//! mapping's `StartingPosition`, unless a checkpoint records where it stopped.

pub mod checkpoints;
pub mod delivery;
pub mod records;
mod shard;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aws_sdk_dynamodbstreams::types::Shard;
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

use self::checkpoints::Checkpoints;
use self::delivery::RetryPolicy;
use crate::functions::StreamFunction;

/// Settings of the event source mapping.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Records per batch (`BatchSize` in `template.yaml`).
    pub batch_size: i32,
    /// How often an open shard with no new records is read again.
    pub poll_interval: Duration,
    /// How often the shard list is read again.
    pub describe_interval: Duration,
    /// Retries of failing records.
    pub retry: RetryPolicy,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            batch_size: 100,
            // Lambda reads each shard four times a second.
            poll_interval: Duration::from_millis(250),
            describe_interval: Duration::from_secs(10),
            retry: RetryPolicy {
                max_retries: 3,
                backoff: Duration::from_millis(200),
            },
        }
    }
}

/// The clients, function and settings that a shard's reader uses.
struct PollerContext {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    function: Arc<dyn StreamFunction>,
    checkpoints: Checkpoints,
    options: StreamOptions,
}

/// A running poller.
pub struct StreamPoller {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl StreamPoller {
    /// Starts reading `stream_arn` into `function`.
    pub fn start(
        client: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
        function: Arc<dyn StreamFunction>,
        checkpoints: Checkpoints,
        options: StreamOptions,
    ) -> Self {
        let (stop, shutdown) = watch::channel(false);
        let context = Arc::new(PollerContext {
            client,
            stream_arn,
            function,
            checkpoints,
            options,
        });
        let task = tokio::spawn(coordinate(context, shutdown));
        Self { stop, task }
    }

    /// Stops reading. A batch being delivered is finished first; one waiting
    /// for a retry is left for the next start.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        info!("stream poller stopped");
    }
}

/// Returns the stream ARN of `table`.
///
/// # Errors
///
/// When the table cannot be described or has no stream.
pub async fn stream_arn(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<String> {
    let output = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|err| {
            anyhow!(
                "DescribeTable {table} failed: {}",
                DisplayErrorContext(&err)
            )
        })?;
    output
        .table
        .and_then(|table| table.latest_stream_arn)
        .with_context(|| format!("table {table} has no stream"))
}

/// Starts a reader for every shard whose parent is done, and restarts the
/// scan when one ends, until shutdown.
async fn coordinate(context: Arc<PollerContext>, mut shutdown: watch::Receiver<bool>) {
    info!(stream_arn = %context.stream_arn, "stream poller started");
    let mut readers: JoinSet<(String, bool)> = JoinSet::new();
    let mut running: HashSet<String> = HashSet::new();
    loop {
        match list_shards(&context).await {
            Ok(shards) => {
                for shard_id in ready_shards(&shards, &context.checkpoints, &running) {
                    running.insert(shard_id.clone());
                    let context = Arc::clone(&context);
                    let shutdown = shutdown.clone();
                    readers.spawn(async move {
                        let finished = shard::read(&context, &shard_id, shutdown).await;
                        (shard_id, finished)
                    });
                }
            }
            Err(err) => warn!(error = %err, "reading the shard list failed; retrying"),
        }

        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(context.options.describe_interval) => {}
            Some(ended) = readers.join_next(), if !readers.is_empty() => {
                if let Ok((shard_id, finished)) = ended {
                    running.remove(&shard_id);
                    if finished {
                        if let Err(err) = context.checkpoints.finish(&shard_id) {
                            warn!(shard_id, error = %err, "storing the shard's end failed");
                        }
                        info!(shard_id, "shard read to its end");
                    }
                }
            }
        }
    }
    while readers.join_next().await.is_some() {}
}

/// Lists every shard of the stream, across `DescribeStream` pages.
async fn list_shards(context: &PollerContext) -> Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let output = context
            .client
            .describe_stream()
            .stream_arn(&context.stream_arn)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .map_err(|err| anyhow!("DescribeStream failed: {}", DisplayErrorContext(&err)))?;
        let Some(description) = output.stream_description else {
            return Ok(shards);
        };
        shards.extend(description.shards.unwrap_or_default());
        match description.last_evaluated_shard_id {
            // A server that repeats the last page would loop forever here.
            Some(last) if start.as_ref() != Some(&last) => start = Some(last),
            _ => return Ok(shards),
        }
    }
}

/// Selects the shards to start reading now, in list order: not finished, not being
/// read, and with no parent or a parent that is finished or no longer listed.
fn ready_shards(
    shards: &[Shard],
    checkpoints: &Checkpoints,
    running: &HashSet<String>,
) -> Vec<String> {
    let listed: HashMap<&str, &Shard> = shards
        .iter()
        .filter_map(|shard| shard.shard_id.as_deref().map(|id| (id, shard)))
        .collect();
    shards
        .iter()
        .filter_map(|shard| shard.shard_id.clone())
        .filter(|id| !running.contains(id) && !checkpoints.is_finished(id))
        .filter(|id| {
            let parent = listed[id.as_str()].parent_shard_id.as_deref();
            match parent {
                None => true,
                Some(parent) => !listed.contains_key(parent) || checkpoints.is_finished(parent),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>) -> Shard {
        Shard::builder()
            .shard_id(id)
            .set_parent_shard_id(parent.map(str::to_owned))
            .build()
    }

    #[test]
    fn ready_shards_waits_for_parents() {
        let checkpoints = Checkpoints::in_memory("arn");
        let shards = vec![
            shard("a", None),
            shard("b", Some("a")),
            shard("c", Some("gone")),
        ];
        let none = HashSet::new();
        assert_eq!(ready_shards(&shards, &checkpoints, &none), vec!["a", "c"]);

        let running = HashSet::from(["a".to_owned()]);
        assert_eq!(ready_shards(&shards, &checkpoints, &running), vec!["c"]);

        checkpoints.finish("a").unwrap();
        assert_eq!(ready_shards(&shards, &checkpoints, &none), vec!["b", "c"]);
    }
}
