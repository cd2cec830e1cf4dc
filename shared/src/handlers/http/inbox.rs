//! `POST /connect-ticket` and `GET /inbox/sync`.

use lambda_http::{Body, Request, Response};
use serde_json::json;
use tracing::{info, warn};

use super::{PageBody, json, page_limit, query};
use crate::attachments::as_seen_at;
use crate::clock::random_token;
use crate::domain::{TICKET_LIFETIME, Ticket};
use crate::error::ChatError;
use crate::handlers::HttpDeps;
use crate::handlers::ws_connect::hash_ticket;
use crate::store::Store;

/// Issues a random single-use ticket for one WebSocket connect, valid 60 s.
/// Only its hash is stored.
pub(super) async fn connect_ticket(
    deps: &HttpDeps,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    let ticket = random_token();
    let expires_at = deps.clock.now().plus(TICKET_LIFETIME);
    deps.store
        .put_ticket(&Ticket {
            ticket_hash: hash_ticket(&ticket),
            user_id: user_id.to_owned(),
            expires_at,
        })
        .await?;
    info!(user_id, "connect ticket issued");
    json(200, &json!({ "ticket": ticket, "expires_at": expires_at }))
}

/// Returns a page of the caller's unacknowledged messages, oldest first.
pub(super) async fn sync(
    deps: &HttpDeps,
    request: &Request,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    let limit = page_limit(request)?;
    let cursor = query(request, "cursor")
        .filter(|text| !text.is_empty())
        .map(Store::inbox_cursor)
        .transpose()?;

    let page = deps
        .store
        .inbox_page(user_id, limit, cursor.as_ref(), deps.clock.now())
        .await?;
    let keys: Vec<(String, String)> = page
        .items
        .iter()
        .map(|entry| (entry.chat_id.clone(), entry.message_id.clone()))
        .collect();
    let messages = deps.store.messages_by_keys(&keys).await?;
    if messages.len() < keys.len() {
        warn!(
            user_id,
            missing = keys.len() - messages.len(),
            "inbox rows name messages that do not exist"
        );
    }
    let now = deps.clock.now();
    let messages = messages
        .into_iter()
        .map(|message| as_seen_at(message, now))
        .collect();
    json(200, &PageBody::from_page(page, messages))
}
