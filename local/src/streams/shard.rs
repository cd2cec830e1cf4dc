//! Reading one shard: `GetShardIterator` at the checkpoint (or the trim
//! horizon), then `GetRecords` until the shard is closed and read to its end,
//! handing each page to [`super::delivery`] before reading the next.

use std::time::Duration;

use aws_sdk_dynamodbstreams::error::SdkError;
use aws_sdk_dynamodbstreams::operation::get_records::{GetRecordsError, GetRecordsOutput};
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::Value;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::PollerContext;
use super::delivery::deliver;
use super::records::{lambda_record, passes_filter};

/// The wait after a failed Streams call.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

enum Step {
    Records(GetRecordsOutput),
    /// The iterator expired (after 15 minutes in DynamoDB): get a new one.
    Expired,
    /// The shard or its records are gone.
    Gone,
    Failed,
}

/// Reads `shard_id` until it ends or shutdown. Returns `true` when the shard
/// is closed and every record of it was handed on.
pub(super) async fn read(
    context: &PollerContext,
    shard_id: &str,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    debug!(shard_id, "reading shard");
    let mut iterator: Option<String> = None;
    loop {
        if *shutdown.borrow() {
            return false;
        }
        let current = match iterator.take() {
            Some(iterator) => iterator,
            None => match shard_iterator(context, shard_id).await {
                Ok(Some(iterator)) => iterator,
                Ok(None) => return true,
                Err(()) => {
                    if pause(ERROR_BACKOFF, &mut shutdown).await {
                        return false;
                    }
                    continue;
                }
            },
        };

        let output = match get_records(context, shard_id, &current).await {
            Step::Records(output) => output,
            Step::Expired => continue,
            Step::Gone => return true,
            Step::Failed => {
                iterator = Some(current);
                if pause(ERROR_BACKOFF, &mut shutdown).await {
                    return false;
                }
                continue;
            }
        };

        let records = output.records.unwrap_or_default();
        if let Some(last) = records
            .last()
            .and_then(|record| record.dynamodb.as_ref())
            .and_then(|change| change.sequence_number.clone())
        {
            let batch: Vec<Value> = records
                .iter()
                .filter(|record| passes_filter(record))
                .map(|record| lambda_record(record, &context.stream_arn))
                .collect();
            if !batch.is_empty() {
                let report = deliver(
                    context.function.as_ref(),
                    shard_id,
                    batch,
                    &context.options.retry,
                    &mut shutdown,
                )
                .await;
                if report.interrupted {
                    return false;
                }
            }
            if let Err(err) = context.checkpoints.advance(shard_id, &last) {
                warn!(shard_id, error = %err, "storing the stream checkpoint failed");
            }
        }

        match output.next_shard_iterator {
            // No next iterator: the shard is closed and this was its last page.
            None => return true,
            Some(next) => iterator = Some(next),
        }
        if records.is_empty() && pause(context.options.poll_interval, &mut shutdown).await {
            return false;
        }
    }
}

/// Gets an iterator after the checkpoint, or at the trim horizon. Returns
/// `Ok(None)` when the shard no longer exists.
async fn shard_iterator(context: &PollerContext, shard_id: &str) -> Result<Option<String>, ()> {
    let checkpoint = context.checkpoints.sequence_number(shard_id);
    let request = context
        .client
        .get_shard_iterator()
        .stream_arn(&context.stream_arn)
        .shard_id(shard_id);
    let request = match &checkpoint {
        Some(sequence_number) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(sequence_number),
        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    match request.send().await {
        Ok(output) => Ok(output.shard_iterator),
        Err(SdkError::ServiceError(err))
            if matches!(
                err.err(),
                GetShardIteratorError::ResourceNotFoundException(_)
            ) =>
        {
            info!(shard_id, "shard no longer exists");
            Ok(None)
        }
        Err(SdkError::ServiceError(err))
            if matches!(
                err.err(),
                GetShardIteratorError::TrimmedDataAccessException(_)
            ) =>
        {
            warn!(
                shard_id,
                checkpoint = checkpoint.as_deref().unwrap_or_default(),
                "records after the checkpoint were trimmed; reading from the trim horizon"
            );
            // Forget the position, so that the next call requests the trim horizon.
            if let Err(err) = context.checkpoints.reset(shard_id) {
                warn!(shard_id, error = %err, "storing the stream checkpoint failed");
            }
            Err(())
        }
        Err(err) => {
            warn!(shard_id, error = %DisplayErrorContext(&err), "GetShardIterator failed");
            Err(())
        }
    }
}

async fn get_records(context: &PollerContext, shard_id: &str, iterator: &str) -> Step {
    let result = context
        .client
        .get_records()
        .shard_iterator(iterator)
        .limit(context.options.batch_size)
        .send()
        .await;
    match result {
        Ok(output) => Step::Records(output),
        Err(SdkError::ServiceError(err)) => match err.err() {
            GetRecordsError::ExpiredIteratorException(_) => {
                debug!(shard_id, "shard iterator expired; getting a new one");
                Step::Expired
            }
            GetRecordsError::ResourceNotFoundException(_) => {
                info!(shard_id, "shard no longer exists");
                Step::Gone
            }
            GetRecordsError::TrimmedDataAccessException(_) => {
                warn!(shard_id, "records were trimmed before they were read");
                Step::Expired
            }
            other => {
                warn!(shard_id, error = %DisplayErrorContext(other), "GetRecords failed");
                Step::Failed
            }
        },
        Err(err) => {
            warn!(shard_id, error = %DisplayErrorContext(&err), "GetRecords failed");
            Step::Failed
        }
    }
}

/// Sleeps for `duration`; returns `true` when shutdown came first.
async fn pause(duration: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => false,
        _ = shutdown.changed() => true,
    }
}
