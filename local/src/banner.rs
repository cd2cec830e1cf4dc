//! The output of `chat-local` on standard output once the stack is ready: a
//! machine-readable line for tests and scripts, then a banner for people,
//! with commands to paste to connect as two users.

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use shared::domain::Timestamp;

use crate::http_api::dev_token::TOKEN_LIFETIME;
use crate::stack::StackUrls;

/// The first word of the machine-readable line; a JSON object of
/// [`StackUrls`] follows it.
pub const READY_PREFIX: &str = "CHAT_LOCAL_READY";

/// The users the banner prints tokens for.
pub const DEMO_USERS: &[&str] = &["alice", "bob"];

/// Builds the machine-readable line `CHAT_LOCAL_READY {...}`: the URLs and
/// ports as one line of JSON.
///
/// # Errors
///
/// Never in practice: the URLs are plain strings.
pub fn ready_line(urls: &StackUrls) -> Result<String> {
    Ok(format!("{READY_PREFIX} {}", serde_json::to_string(urls)?))
}

/// Builds the banner, with a token for each of [`DEMO_USERS`] signed with `jwt_secret`.
///
/// # Errors
///
/// When a token cannot be signed.
pub fn banner(urls: &StackUrls, jwt_secret: &[u8], startup: Duration) -> Result<String> {
    let http = &urls.http_url;
    let expires_at = Timestamp::new(Utc::now()).plus(TOKEN_LIFETIME);
    let mut text = String::new();
    let mut line = |value: String| {
        text.push_str(&value);
        text.push('\n');
    };

    line(format!(
        "chat-local is ready ({:.1} s)",
        startup.as_secs_f64()
    ));
    line(String::new());
    line(format!("  WebSocket API   {}", urls.websocket_url));
    line(format!(
        "  Management API  {}/@connections/{{id}}",
        urls.management_endpoint
    ));
    line(format!("  HTTP API        {http}"));
    line(format!(
        "  S3              {} (bucket {}, access key local / local-secret{})",
        urls.s3_endpoint,
        urls.bucket,
        if urls.embedded_s3 {
            ""
        } else {
            ", outside server"
        }
    ));
    line(format!(
        "  DynamoDB        {} (tables {}*{})",
        urls.dynamodb_endpoint,
        urls.table_prefix,
        if urls.embedded_dynamodb {
            ""
        } else {
            ", outside server"
        }
    ));
    line(match &urls.data_dir {
        Some(dir) => format!("  Data            {} (kept across restarts)", dir.display()),
        None => "  Data            in memory (nothing is kept)".to_owned(),
    });
    line(String::new());
    line(format!(
        "Tokens (HS256, valid until {expires_at}); more with:\n  curl -s -X POST {http}/dev/token \
         -H 'content-type: application/json' -d '{{\"user_id\":\"carol\"}}'"
    ));
    line(String::new());
    for user in DEMO_USERS {
        let token = shared::auth::issue_hs256(jwt_secret, user, expires_at)?;
        line(format!("{user}:"));
        line(format!("  {user}_token={token}"));
        line(format!(
            "  ticket=$(curl -s -X POST {http}/connect-ticket -H \"authorization: Bearer ${user}_token\" \
             | sed 's/.*\"ticket\":\"\\([^\"]*\\)\".*/\\1/') && npx wscat -c \"{}?ticket=$ticket\"",
            urls.websocket_url
        ));
        line(String::new());
    }
    line("A chat of both, made by alice (its chat_id is in the response):".to_owned());
    line(format!(
        "  curl -s -X POST {http}/chats -H \"authorization: Bearer $alice_token\" \
         -H 'content-type: application/json' -d '{{\"name\":\"alice and bob\",\"member_ids\":[\"bob\"]}}'"
    ));
    line("then, in each wscat:".to_owned());
    line("  {\"type\":\"subscribe\",\"chat_id\":\"CHAT_ID\"}".to_owned());
    line("  {\"type\":\"message\",\"chat_id\":\"CHAT_ID\",\"content\":\"hello\"}".to_owned());
    line(String::new());
    line("Ctrl-C stops the stack.".to_owned());
    Ok(text)
}
