//! Domain types and the limits the service enforces.
//!
//! Nothing here depends on DynamoDB: the item mapping lives in [`crate::store`].

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::ChatError;

/// Maximum `content` of a text message, in UTF-8 bytes. API Gateway allows
/// 32 KB per frame, which leaves room for the frame's other fields and the
/// usual JSON escaping.
// NOTE: content made mostly of control characters, which JSON escapes as
// six bytes each, can still exceed 32 KB; API Gateway then closes the
// connection with 1009 before any handler runs.
pub const MAX_CONTENT_BYTES: usize = 8 * 1024;
/// Maximum members of one chat.
pub const MAX_MEMBERS: usize = 256;
/// Users one `POST /chats/{chat_id}/members` may add: the memberships and the
/// chat's member count fit one DynamoDB transaction, so an add is all or nothing.
pub const MAX_MEMBERS_ADDED_AT_ONCE: usize = 99;
/// Maximum length of a chat name, in characters.
pub const MAX_CHAT_NAME_CHARS: usize = 100;
/// Maximum length of a user id, chat id, message id or client message id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// How long a connect ticket can be used.
pub const TICKET_LIFETIME: TimeDelta = TimeDelta::seconds(60);
/// API Gateway closes a WebSocket connection after two hours.
pub const CONNECTION_LIFETIME: TimeDelta = TimeDelta::hours(2);
/// How long an unacknowledged message stays in a recipient's inbox.
pub const INBOX_LIFETIME: TimeDelta = TimeDelta::days(30);
/// How long a `client_message_id` is remembered for deduplication.
pub const CLIENT_MESSAGE_LIFETIME: TimeDelta = TimeDelta::days(1);
/// Default page size of every paginated route.
pub const DEFAULT_PAGE_LIMIT: usize = 50;
/// Maximum page size of every paginated route.
pub const MAX_PAGE_LIMIT: usize = 100;
/// Maximum size of an attachment, in bytes (25 MiB).
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;
/// Maximum length of an attachment's file name, in UTF-8 bytes.
pub const MAX_FILE_NAME_BYTES: usize = 200;
/// The content types an attachment may have, lowercase and without parameters.
pub const ATTACHMENT_CONTENT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "video/mp4",
    "video/webm",
    "video/quicktime",
];
/// How long a presigned upload or download URL works. S3 checks the expiry itself.
pub const ATTACHMENT_URL_LIFETIME: TimeDelta = TimeDelta::minutes(5);
/// Age after which an attachment still `pending` is reported as `failed`: its
/// upload URL expired long before, so no upload can still start.
pub const PENDING_UPLOAD_TIMEOUT: TimeDelta = TimeDelta::minutes(15);

/// A point in time, written in JSON as RFC 3339 in UTC with milliseconds
/// (`2026-12-04T13:47:06.123Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Creates a timestamp truncated to milliseconds, so that it survives a round trip through JSON.
    pub fn new(time: DateTime<Utc>) -> Self {
        let millis = time.timestamp_millis();
        Self(DateTime::from_timestamp_millis(millis).unwrap_or(time))
    }

    /// Parses an RFC 3339 string.
    pub fn parse(text: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|time| Self::new(time.with_timezone(&Utc)))
    }

    /// Returns the time as a `chrono` value.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Seconds since the Unix epoch, the unit of DynamoDB TTL attributes.
    pub fn epoch_seconds(&self) -> i64 {
        self.0.timestamp()
    }

    /// Milliseconds since the Unix epoch.
    pub fn epoch_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// This time plus `delta`.
    pub fn plus(&self, delta: TimeDelta) -> Self {
        Self(self.0 + delta)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Checks a user id against `[A-Za-z0-9._@-]{1,128}`.
pub fn validate_user_id(field: &str, value: &str) -> Result<(), ChatError> {
    validate_id(field, value, |c| {
        c.is_ascii_alphanumeric() || "._@-".contains(c)
    })
}

/// Checks a chat, message or client message id: 1 to 128 bytes of
/// `[A-Za-z0-9._:-]`.
pub fn validate_token_id(field: &str, value: &str) -> Result<(), ChatError> {
    validate_id(field, value, |c| {
        c.is_ascii_alphanumeric() || "._:-".contains(c)
    })
}

fn validate_id(field: &str, value: &str, allowed: impl Fn(char) -> bool) -> Result<(), ChatError> {
    if value.is_empty() {
        return Err(ChatError::invalid_field(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(ChatError::invalid_field(
            field,
            format_args!("must be at most {MAX_ID_BYTES} bytes"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(ChatError::invalid_field(
            field,
            format_args!("contains the character {bad:?}, which is not allowed"),
        ));
    }
    Ok(())
}

/// A member's role in a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The creator, who may remove other members.
    Owner,
    /// Anyone else in the chat.
    Member,
}

impl Role {
    /// Returns the role as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    /// Parses a stored role.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// The state of an attachment's upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// The upload URL was issued; the object has not arrived.
    Pending,
    /// The object arrived with the declared size and type.
    Uploaded,
    /// The object differed from what was declared, or never arrived.
    Failed,
}

impl UploadStatus {
    /// Returns the status as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Uploaded => "uploaded",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored status.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "uploaded" => Some(Self::Uploaded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// An open WebSocket connection, bound to a user at `$connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// API Gateway's connection id.
    pub connection_id: String,
    /// The user the connect ticket was issued to.
    pub user_id: String,
    /// When the connection was opened.
    pub connected_at: Timestamp,
    /// When API Gateway closes it at the latest (`connected_at` + 2 h).
    pub expires_at: Timestamp,
}

/// A connection's wish to receive a chat's messages live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The chat.
    pub chat_id: String,
    /// The listening connection.
    pub connection_id: String,
    /// The connection's user.
    pub user_id: String,
    /// The connection's expiry: a subscription never outlives its connection.
    pub expires_at: Timestamp,
}

/// A chat, without its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    /// Server-chosen id.
    pub chat_id: String,
    /// Display name, at most [`MAX_CHAT_NAME_CHARS`] characters.
    pub name: String,
    /// The creator's user id.
    pub created_by: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Time of the newest message, if any.
    pub last_message_at: Option<Timestamp>,
    /// `seq` of the newest message; 0 before the first.
    pub last_seq: u64,
}

impl Chat {
    /// Returns the time the chat was last active: its newest message, or its creation.
    pub fn last_activity(&self) -> Timestamp {
        self.last_message_at.unwrap_or(self.created_at)
    }
}

/// A user's membership of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// The member.
    pub user_id: String,
    /// The chat.
    #[serde(skip)]
    pub chat_id: String,
    /// The member's role.
    pub role: Role,
    /// When the member joined.
    pub joined_at: Timestamp,
}

/// A chat with its members, as every response and frame sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatView {
    /// Server-chosen id.
    pub chat_id: String,
    /// Display name.
    pub name: String,
    /// The creator's user id.
    pub created_by: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Time of the newest message, or `null` before the first.
    pub last_message_at: Option<Timestamp>,
    /// Every member.
    pub members: Vec<Membership>,
}

impl ChatView {
    /// `chat` with `members`.
    pub fn new(chat: Chat, members: Vec<Membership>) -> Self {
        Self {
            chat_id: chat.chat_id,
            name: chat.name,
            created_by: chat.created_by,
            created_at: chat.created_at,
            last_message_at: chat.last_message_at,
            members,
        }
    }
}

/// The file of an attachment message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The state of the upload.
    pub upload_status: UploadStatus,
    /// The sanitised file name.
    pub file_name: String,
    /// The declared content type.
    pub content_type: String,
    /// The declared size in bytes.
    pub size: u64,
    /// The bucket that contains the object.
    pub s3_bucket: String,
    /// The object's key, chosen by the server.
    pub s3_key: String,
}

/// A message of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// A ULID, so that a chat's messages sort by creation time.
    pub message_id: String,
    /// The chat.
    pub chat_id: String,
    /// The chat's own counter, with no gaps.
    pub seq: u64,
    /// The user bound to the sending connection.
    pub sender_id: String,
    /// The text; for an attachment, its file name, so that a client that
    /// shows only `content` still shows something.
    pub content: String,
    /// When the server accepted it.
    pub created_at: Timestamp,
    /// The sender's deduplication id, if it sent one. Not part of the message object.
    #[serde(skip)]
    pub client_message_id: Option<String>,
    /// The file, for an attachment message.
    #[serde(flatten)]
    pub attachment: Option<Attachment>,
}

impl Message {
    /// Gives the message the id `message_id`. An attachment's object key
    /// contains the id, so it changes with it.
    pub fn set_id(&mut self, message_id: String) {
        if let Some(file) = &mut self.attachment {
            file.s3_key =
                crate::attachments::object_key(&self.chat_id, &message_id, &file.file_name);
        }
        self.message_id = message_id;
    }
}

/// A message waiting for a recipient's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The recipient.
    pub recipient_id: String,
    /// The message.
    pub message_id: String,
    /// The message's chat, to find the message.
    pub chat_id: String,
    /// The message's creation time.
    pub created_at: Timestamp,
    /// When the entry is dropped unacknowledged.
    pub expires_at: Timestamp,
}

impl InboxEntry {
    /// Creates the entry that gives `recipient_id` the message `message`.
    pub fn for_message(recipient_id: &str, message: &Message) -> Self {
        Self {
            recipient_id: recipient_id.to_owned(),
            message_id: message.message_id.clone(),
            chat_id: message.chat_id.clone(),
            created_at: message.created_at,
            expires_at: message.created_at.plus(INBOX_LIFETIME),
        }
    }
}

/// A single-use connect ticket, as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Hex SHA-256 of the ticket.
    pub ticket_hash: String,
    /// The user it was issued to.
    pub user_id: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// The record of a message sent with a `client_message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// The sender.
    pub sender_id: String,
    /// The sender's deduplication id.
    pub client_message_id: String,
    /// The chat the first send went to.
    pub chat_id: String,
    /// The first send's message id.
    pub message_id: String,
    /// The first send's `seq`.
    pub seq: u64,
    /// The first send's creation time.
    pub created_at: Timestamp,
    /// When the record is forgotten.
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_writes_utc_with_milliseconds() {
        let time = Timestamp::parse("2026-12-04T14:47:06.123456+01:00").unwrap();
        assert_eq!(time.to_string(), "2026-12-04T13:47:06.123Z");
        assert_eq!(
            serde_json::to_string(&time).unwrap(),
            "\"2026-12-04T13:47:06.123Z\""
        );
    }

    #[test]
    fn user_id_rules() {
        for good in ["alice", "a.b_c-d@example.com", &"x".repeat(128)] {
            assert!(validate_user_id("user_id", good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "slash/", &"x".repeat(129), "ümlaut"] {
            assert!(validate_user_id("user_id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_json_flattens_attachment_and_hides_client_id() {
        let message = Message {
            message_id: "01JEXAMPLE0000000000000001".into(),
            chat_id: "c1".into(),
            seq: 3,
            sender_id: "alice".into(),
            content: String::new(),
            created_at: Timestamp::parse("2026-12-04T13:47:06.123Z").unwrap(),
            client_message_id: Some("c-1".into()),
            attachment: Some(Attachment {
                upload_status: UploadStatus::Pending,
                file_name: "a.png".into(),
                content_type: "image/png".into(),
                size: 10,
                s3_bucket: "b".into(),
                s3_key: "chats/c1/x/a.png".into(),
            }),
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["upload_status"], "pending");
        assert_eq!(json["seq"], 3);
        assert!(json.get("client_message_id").is_none());
        assert!(json.get("attachment").is_none());
    }
}
