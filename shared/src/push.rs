//! Posting frames to connections through the API Gateway Management API.

use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::StreamExt;
use tracing::{info, warn};

use chrono::TimeDelta;

use crate::domain::Timestamp;
use crate::protocol::ServerFrame;
use crate::store::Store;

/// How long after `$connect` a 410 does not delete the connection: API
/// Gateway returns 410 for a post that arrives before it has opened the
/// connection, which `$connect` stored a moment earlier.
pub const GONE_GRACE: TimeDelta = TimeDelta::seconds(5);

/// Posts in flight at once for one frame.
pub const PUSH_CONCURRENCY: usize = 32;

/// A failed post.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// 410: the connection is closed; its rows should be deleted.
    #[error("connection {0} is gone")]
    Gone(String),
    /// Any other failure: the recipient still has its Inbox row.
    #[error("posting to connection {connection_id} failed")]
    Failed {
        /// The connection.
        connection_id: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The outcome of one frame's posts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Posts that succeeded.
    pub delivered: usize,
    /// Connections that were gone, and were deleted with their subscriptions.
    pub gone: usize,
    /// Posts that failed otherwise.
    pub failed: usize,
}

/// Posts to connections through the Management API at `WEBSOCKET_ENDPOINT`.
#[derive(Debug, Clone)]
pub struct Pusher {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl Pusher {
    /// Creates a pusher through `client`, whose endpoint is the API's stage URL.
    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        Self { client }
    }

    /// Posts `data` to one connection.
    pub async fn post(&self, connection_id: &str, data: &str) -> Result<(), PushError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(err)) if err.err().is_gone_exception() => {
                Err(PushError::Gone(connection_id.to_owned()))
            }
            Err(err) => Err(PushError::Failed {
                connection_id: connection_id.to_owned(),
                source: Box::new(err),
            }),
        }
    }

    /// Posts `frame` to every connection of `connection_ids`, [`PUSH_CONCURRENCY`]
    /// at a time. A gone connection is deleted with its subscriptions, unless
    /// it opened less than [`GONE_GRACE`] before `now`; other failures are
    /// logged and counted.
    pub async fn push(
        &self,
        store: &Store,
        connection_ids: &[String],
        frame: &ServerFrame,
        now: Timestamp,
    ) -> PushReport {
        let data = frame.to_json();
        let data = data.as_str();
        let results: Vec<Result<(), PushError>> =
            futures::stream::iter(connection_ids.iter().cloned())
                .map(|connection_id: String| async move { self.post(&connection_id, data).await })
                .buffer_unordered(PUSH_CONCURRENCY)
                .collect()
                .await;

        let mut report = PushReport::default();
        for result in results {
            match result {
                Ok(()) => report.delivered += 1,
                Err(PushError::Gone(connection_id)) => {
                    report.gone += 1;
                    let opened_before = now.plus(-GONE_GRACE);
                    match store
                        .delete_gone_connection(&connection_id, opened_before)
                        .await
                    {
                        Ok(Some(subscriptions)) => info!(
                            connection_id = %connection_id,
                            subscriptions,
                            "deleted gone connection"
                        ),
                        Ok(None) => info!(
                            connection_id = %connection_id,
                            "kept a gone connection that is still opening"
                        ),
                        Err(err) => warn!(
                            connection_id = %connection_id,
                            error = %err,
                            "deleting gone connection failed"
                        ),
                    }
                }
                Err(err @ PushError::Failed { .. }) => {
                    report.failed += 1;
                    warn!(error = %err, source = ?std::error::Error::source(&err), "push failed");
                }
            }
        }
        report
    }
}
