//! Configuration read from the environment once, during a function's init.
//!
//! Every variable a function reads is listed in [`FUNCTION_ENVIRONMENT`], and
//! `template.yaml` sets exactly those; a test compares the two.

use std::env;

/// Variable names, as `template.yaml` sets them.
pub mod var {
    /// Connections table name.
    pub const CONNECTIONS_TABLE: &str = "CONNECTIONS_TABLE";
    /// Subscriptions table name.
    pub const SUBSCRIPTIONS_TABLE: &str = "SUBSCRIPTIONS_TABLE";
    /// Chats table name.
    pub const CHATS_TABLE: &str = "CHATS_TABLE";
    /// Memberships table name.
    pub const MEMBERSHIPS_TABLE: &str = "MEMBERSHIPS_TABLE";
    /// Messages table name.
    pub const MESSAGES_TABLE: &str = "MESSAGES_TABLE";
    /// Inbox table name.
    pub const INBOX_TABLE: &str = "INBOX_TABLE";
    /// Tickets table name.
    pub const TICKETS_TABLE: &str = "TICKETS_TABLE";
    /// ClientMessages table name.
    pub const CLIENT_MESSAGES_TABLE: &str = "CLIENT_MESSAGES_TABLE";
    /// Management API endpoint: `https://{api_id}.execute-api.{region}.amazonaws.com/{stage}`.
    pub const WEBSOCKET_ENDPOINT: &str = "WEBSOCKET_ENDPOINT";
    /// HS256 secret of at least 32 bytes; empty turns HS256 off.
    pub const JWT_SECRET: &str = "JWT_SECRET";
    /// URL (or `file://` path) of an OpenID provider's JWKS; empty turns RS256 off.
    pub const JWKS_URL: &str = "JWKS_URL";
    /// Expected `iss` of RS256 tokens.
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    /// Expected `aud` (or Cognito `client_id`) of RS256 tokens.
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    /// Name of the S3 bucket that contains attachments.
    pub const ATTACHMENTS_BUCKET: &str = "ATTACHMENTS_BUCKET";
}

/// The table-name variables, which every function reads.
pub const TABLE_VARIABLES: &[&str] = &[
    var::CONNECTIONS_TABLE,
    var::SUBSCRIPTIONS_TABLE,
    var::CHATS_TABLE,
    var::MEMBERSHIPS_TABLE,
    var::MESSAGES_TABLE,
    var::INBOX_TABLE,
    var::TICKETS_TABLE,
    var::CLIENT_MESSAGES_TABLE,
];

/// The variables each function reads besides [`TABLE_VARIABLES`], by function name.
pub const FUNCTION_ENVIRONMENT: &[(&str, &[&str])] = &[
    ("ws-connect", &[]),
    ("ws-disconnect", &[]),
    ("ws-message", &[]),
    ("ws-subscribe", &[]),
    ("ws-ack", &[]),
    ("ws-default", &[]),
    ("stream-fanout", &[var::WEBSOCKET_ENDPOINT]),
    (
        "http-api",
        &[
            var::WEBSOCKET_ENDPOINT,
            var::JWT_SECRET,
            var::JWKS_URL,
            var::JWT_ISSUER,
            var::JWT_AUDIENCE,
            var::ATTACHMENTS_BUCKET,
        ],
    ),
    ("upload-complete", &[var::ATTACHMENTS_BUCKET]),
];

/// A variable that is missing or has an invalid value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set, or is set to an empty string where a value is required.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// The variable is set to a value that cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// Variable name.
        name: &'static str,
        /// The problem with its value.
        reason: String,
    },
}

/// Reads a variable that must be set and not empty.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// Reads a variable that may be unset; an empty value counts as unset.
pub fn optional(name: &'static str) -> Option<String> {
    env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// The names of the eight tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// Connections: one row per open WebSocket connection.
    pub connections: String,
    /// Subscriptions: which connection listens to which chat.
    pub subscriptions: String,
    /// Chats: name, creator and the `last_seq` counter.
    pub chats: String,
    /// Memberships: who belongs to which chat.
    pub memberships: String,
    /// Messages: every message of every chat, with a stream.
    pub messages: String,
    /// Inbox: messages a recipient has not acknowledged.
    pub inbox: String,
    /// Tickets: single-use connect tickets, stored hashed.
    pub tickets: String,
    /// ClientMessages: `client_message_id` deduplication.
    pub client_messages: String,
}

impl TableNames {
    /// Reads every table name from [`TABLE_VARIABLES`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            connections: required(var::CONNECTIONS_TABLE)?,
            subscriptions: required(var::SUBSCRIPTIONS_TABLE)?,
            chats: required(var::CHATS_TABLE)?,
            memberships: required(var::MEMBERSHIPS_TABLE)?,
            messages: required(var::MESSAGES_TABLE)?,
            inbox: required(var::INBOX_TABLE)?,
            tickets: required(var::TICKETS_TABLE)?,
            client_messages: required(var::CLIENT_MESSAGES_TABLE)?,
        })
    }

    /// Names every table `{prefix}{Table}`, as the local stack and the tests do.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            connections: format!("{prefix}Connections"),
            subscriptions: format!("{prefix}Subscriptions"),
            chats: format!("{prefix}Chats"),
            memberships: format!("{prefix}Memberships"),
            messages: format!("{prefix}Messages"),
            inbox: format!("{prefix}Inbox"),
            tickets: format!("{prefix}Tickets"),
            client_messages: format!("{prefix}ClientMessages"),
        }
    }
}
