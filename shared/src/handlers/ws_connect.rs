//! `$connect`: consumes the connect ticket and stores the connection.
//!
//! It never posts to the connection: API Gateway opens it only after this
//! handler returns 200, so a post now would fail with 410.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use sha2::{Digest, Sha256};
use tracing::{info, instrument};

use super::WsDeps;
use super::websocket::{connection_id, log_error, response};
use crate::domain::{CONNECTION_LIFETIME, Connection, Timestamp};
use crate::error::ChatError;

/// The query-string parameter that carries the ticket.
pub const TICKET_PARAMETER: &str = "ticket";

/// Handles `$connect`: 200 stores the connection; a missing, unknown, used or
/// expired ticket gets 401, and API Gateway then rejects the upgrade.
#[instrument(skip_all, fields(connection_id))]
pub async fn handle(
    deps: &WsDeps,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, lambda_runtime::Error> {
    match connect(deps, &event).await {
        Ok(connection) => {
            info!(
                connection_id = %connection.connection_id,
                user_id = %connection.user_id,
                "connection stored"
            );
            Ok(response(200, None))
        }
        Err(err) => {
            log_error(&err);
            let body = serde_json::json!({
                "error": { "code": err.code().as_str(), "message": err.to_string() }
            });
            Ok(response(err.status(), Some(body.to_string())))
        }
    }
}

async fn connect(
    deps: &WsDeps,
    event: &ApiGatewayWebsocketProxyRequest,
) -> Result<Connection, ChatError> {
    let connection_id = connection_id(event)?;
    tracing::Span::current().record("connection_id", connection_id);
    let ticket = event
        .query_string_parameters
        .first(TICKET_PARAMETER)
        .filter(|ticket| !ticket.is_empty())
        .ok_or_else(|| {
            ChatError::unauthorized("missing ticket: call POST /connect-ticket first")
        })?;

    let now = deps.clock.now();
    let ticket = deps
        .store
        .consume_ticket(&hash_ticket(ticket), now)
        .await?
        .ok_or_else(|| ChatError::unauthorized("the ticket is unknown, used or expired"))?;

    let connected_at = chrono::DateTime::from_timestamp_millis(event.request_context.connected_at)
        .filter(|_| event.request_context.connected_at > 0)
        .map_or(now, Timestamp::new);
    let connection = Connection {
        connection_id: connection_id.to_owned(),
        user_id: ticket.user_id,
        connected_at,
        expires_at: connected_at.plus(CONNECTION_LIFETIME),
    };
    deps.store.put_connection(&connection).await?;
    Ok(connection)
}

/// Hashes a ticket for storage (hex SHA-256), so a leaked table contains no usable ticket.
pub fn hash_ticket(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}
