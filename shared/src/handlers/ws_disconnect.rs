//! `$disconnect`: deletes the connection and every subscription of it.
//!
//! API Gateway sends this event on a best-effort basis, so rows can outlive
//! their connection; `stream-fanout` deletes those when a post answers 410,
//! and TTL removes the rest.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::{info, instrument};

use super::WsDeps;
use super::websocket::{connection_id, log_error, no_reply};

/// Handles `$disconnect`.
///
/// # Errors
///
/// A store failure, so that Lambda records it.
#[instrument(skip_all, fields(connection_id))]
pub async fn handle(
    deps: &WsDeps,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, lambda_runtime::Error> {
    let connection_id = match connection_id(&event) {
        Ok(id) => id,
        Err(err) => {
            log_error(&err);
            return Ok(super::websocket::response(err.status(), None));
        }
    };
    tracing::Span::current().record("connection_id", connection_id);
    let subscriptions = deps.store.delete_connection(connection_id).await?;
    info!(connection_id, subscriptions, "connection deleted");
    Ok(no_reply())
}
