//! Attachments in S3: the checks of what a client declares, the object keys,
//! presigned upload and download URLs, and the metadata S3 stored.
//!
//! The server chooses every key, `chats/{chat_id}/{message_id}/{file_name}`,
//! so a client can never write outside its own attachment. A presigned upload
//! URL signs the declared `Content-Type` and `Content-Length`, so S3 rejects
//! an upload that differs from the declaration. `upload-complete` checks the
//! stored object again, for S3-compatible servers that do not verify signatures.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use chrono::TimeDelta;
use serde::Serialize;

use crate::domain::{
    ATTACHMENT_CONTENT_TYPES, ATTACHMENT_URL_LIFETIME, Attachment, MAX_ATTACHMENT_BYTES,
    MAX_FILE_NAME_BYTES, PENDING_UPLOAD_TIMEOUT, Timestamp, UploadStatus, validate_token_id,
};
use crate::error::{ChatError, ErrorCode};

/// The first segment of every attachment key.
const KEY_PREFIX: &str = "chats";

/// An S3 client and the bucket that contains attachments.
#[derive(Debug, Clone)]
pub struct AttachmentBucket {
    client: aws_sdk_s3::Client,
    name: String,
}

/// A failed S3 operation or presigning step.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The presigning settings were rejected, for example an expiry over 7 days.
    #[error("invalid presigning settings")]
    PresignConfig(#[source] aws_sdk_s3::presigning::PresigningConfigError),
    /// The request failed, or could not be built or signed.
    #[error("{operation} of s3://{bucket}/{key} failed")]
    Request {
        /// The S3 operation.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<S3Error> for ChatError {
    fn from(err: S3Error) -> Self {
        ChatError::Internal(Box::new(err))
    }
}

/// A presigned `PUT`: the URL, the headers the client must send with it,
/// and its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresignedUpload {
    /// The URL, with the signature in its query string.
    pub url: String,
    /// Always `PUT`.
    pub method: &'static str,
    /// Every signed header besides `host`: `content-type` and `content-length`.
    /// Browsers set `content-length` from the body themselves.
    pub headers: BTreeMap<String, String>,
    /// When S3 stops accepting the URL.
    pub expires_at: Timestamp,
}

/// A presigned `GET` and its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresignedDownload {
    /// The URL, with the signature in its query string.
    pub url: String,
    /// When S3 stops accepting the URL.
    pub expires_at: Timestamp,
}

/// The metadata S3 returns for a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// `Content-Length`, if S3 sent one.
    pub size: Option<u64>,
    /// `Content-Type`, if S3 sent one.
    pub content_type: Option<String>,
}

impl StoredObject {
    /// Returns whether the object has exactly the size and content type that
    /// `attachment` declared.
    pub fn matches(&self, attachment: &Attachment) -> bool {
        self.size == Some(attachment.size)
            && self.content_type.as_deref() == Some(attachment.content_type.as_str())
    }
}

/// The parts of an attachment key `chats/{chat_id}/{message_id}/{file_name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectKey<'a> {
    /// The chat.
    pub chat_id: &'a str,
    /// The attachment's message.
    pub message_id: &'a str,
    /// The file name.
    pub file_name: &'a str,
}

impl<'a> ObjectKey<'a> {
    /// Splits `key` into its parts, or `None` when it is not a key this service chooses.
    pub fn parse(key: &'a str) -> Option<Self> {
        let mut segments = key.split('/');
        let (Some(KEY_PREFIX), Some(chat_id), Some(message_id), Some(file_name), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return None;
        };
        let valid = validate_token_id("chat_id", chat_id).is_ok()
            && validate_token_id("message_id", message_id).is_ok()
            && validate_file_name(file_name).is_ok_and(|name| name == file_name);
        valid.then_some(Self {
            chat_id,
            message_id,
            file_name,
        })
    }
}

/// Builds the key of an attachment. `file_name` must have passed [`validate_file_name`].
pub fn object_key(chat_id: &str, message_id: &str, file_name: &str) -> String {
    format!("{KEY_PREFIX}/{chat_id}/{message_id}/{file_name}")
}

/// Decodes an object key as S3 event notifications write it: URL-encoded as
/// in an HTML form, so `+` is a space and `%2B` a plus sign. `None` when the
/// result is not UTF-8.
pub fn decode_event_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    urlencoding::decode(&spaced)
        .ok()
        .map(|key| key.into_owned())
}

/// Checks a declared file name and returns it without surrounding whitespace.
///
/// The name is rejected rather than rewritten, so that the stored name is the
/// one the user chose.
///
/// # Errors
///
/// `invalid_request` when the name is empty, longer than
/// [`MAX_FILE_NAME_BYTES`], `.`, or contains `/`, `\`, `..`, a control
/// character or a bidirectional formatting character (which can make
/// `photo<U+202E>gnp.exe` display as `photoexe.png`).
pub fn validate_file_name(raw: &str) -> Result<String, ChatError> {
    let name = raw.trim();
    let invalid = |problem: &str| Err(ChatError::invalid_field("file_name", problem));
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(ChatError::invalid_field(
            "file_name",
            format_args!("must be at most {MAX_FILE_NAME_BYTES} bytes"),
        ));
    }
    if name.contains(['/', '\\']) {
        return invalid("must not contain a path separator");
    }
    if name == "." || name.contains("..") {
        return invalid("must not be . or contain ..");
    }
    if let Some(bad) = name.chars().find(|c| c.is_control() || is_bidi_control(*c)) {
        return Err(ChatError::invalid_field(
            "file_name",
            format_args!("contains the character {bad:?}, which is not allowed"),
        ));
    }
    Ok(name.to_owned())
}

/// Unicode's bidirectional formatting characters (UAX #9), which reorder how
/// the rest of a name is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Checks a declared content type and returns it lowercase.
///
/// # Errors
///
/// `attachment_type_not_allowed` unless it is one of
/// [`ATTACHMENT_CONTENT_TYPES`], which have no parameters (so
/// `text/plain; charset=utf-8` is rejected).
pub fn validate_content_type(raw: &str) -> Result<String, ChatError> {
    let content_type = raw.trim().to_ascii_lowercase();
    if ATTACHMENT_CONTENT_TYPES.contains(&content_type.as_str()) {
        return Ok(content_type);
    }
    Err(ChatError::client(
        ErrorCode::AttachmentTypeNotAllowed,
        format!(
            "content_type {raw:?} is not allowed; allowed types are {}",
            ATTACHMENT_CONTENT_TYPES.join(", ")
        ),
    ))
}

/// Checks a declared size in bytes.
///
/// # Errors
///
/// `invalid_request` for 0, `content_too_large` over [`MAX_ATTACHMENT_BYTES`].
pub fn validate_size(size: u64) -> Result<u64, ChatError> {
    if size == 0 {
        return Err(ChatError::invalid_field("size", "must be at least 1 byte"));
    }
    if size > MAX_ATTACHMENT_BYTES {
        return Err(ChatError::client(
            ErrorCode::ContentTooLarge,
            format!("size is {size} bytes; the limit is {MAX_ATTACHMENT_BYTES}"),
        ));
    }
    Ok(size)
}

/// Returns the status a client sees at `now`: a `pending` attachment older
/// than [`PENDING_UPLOAD_TIMEOUT`] is reported as `failed`. The stored status is
/// not changed, so a notification that arrives later still marks it `uploaded`.
pub fn upload_status_at(
    attachment: &Attachment,
    created_at: Timestamp,
    now: Timestamp,
) -> UploadStatus {
    match attachment.upload_status {
        UploadStatus::Pending if now > created_at.plus(PENDING_UPLOAD_TIMEOUT) => {
            UploadStatus::Failed
        }
        status => status,
    }
}

/// Returns `message` as a client sees it at `now`, with the attachment's
/// status from [`upload_status_at`].
pub fn as_seen_at(mut message: crate::domain::Message, now: Timestamp) -> crate::domain::Message {
    let created_at = message.created_at;
    if let Some(attachment) = &mut message.attachment {
        attachment.upload_status = upload_status_at(attachment, created_at, now);
    }
    message
}

/// Builds an S3 client for `sdk_config`. With an `endpoint` (an S3-compatible server
/// such as moto's or the local stack's) it sends every request there with
/// path-style addressing (`{endpoint}/{bucket}/{key}`), because such servers
/// do not resolve a bucket name as a host name. Without one it uses AWS's
/// virtual-hosted-style addressing (`{bucket}.s3.{region}.amazonaws.com`).
pub fn s3_client(sdk_config: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(sdk_config);
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

impl AttachmentBucket {
    /// Creates the bucket `name`, reached through `client`. Nothing is sent to S3.
    pub fn new(client: aws_sdk_s3::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// Returns the bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the S3 client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Presigns a `PUT` of `key` that S3 accepts only with exactly this
    /// `Content-Type` and `Content-Length`, from `now` for [`ATTACHMENT_URL_LIFETIME`].
    ///
    /// Presigning is computed locally and sends no request.
    pub async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        now: Timestamp,
    ) -> Result<PresignedUpload, S3Error> {
        let length =
            i64::try_from(size).map_err(|err| self.request_error("PutObject", key, err))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .presigned(presigning_config(now)?)
            .await
            .map_err(|err| self.request_error("PutObject", key, err))?;
        Ok(PresignedUpload {
            url: request.uri().to_owned(),
            method: "PUT",
            headers: signed_headers(&request),
            expires_at: now.plus(ATTACHMENT_URL_LIFETIME),
        })
    }

    /// Presigns a `GET` of `key`, from `now` for [`ATTACHMENT_URL_LIFETIME`].
    pub async fn presign_download(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<PresignedDownload, S3Error> {
        let request = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .presigned(presigning_config(now)?)
            .await
            .map_err(|err| self.request_error("GetObject", key, err))?;
        Ok(PresignedDownload {
            url: request.uri().to_owned(),
            expires_at: now.plus(ATTACHMENT_URL_LIFETIME),
        })
    }

    /// Reads the stored object's size and content type with HeadObject, or
    /// returns `None` on 404. Without `s3:ListBucket`, S3 returns 403 for a
    /// missing object, which is an error here like any other.
    pub async fn head(&self, key: &str) -> Result<Option<StoredObject>, S3Error> {
        let result = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(StoredObject {
                size: output
                    .content_length()
                    .and_then(|length| u64::try_from(length).ok()),
                content_type: output.content_type().map(str::to_owned),
            })),
            Err(SdkError::ServiceError(err)) if err.err().is_not_found() => Ok(None),
            Err(err) => Err(self.request_error("HeadObject", key, err)),
        }
    }

    fn request_error(
        &self,
        operation: &'static str,
        key: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> S3Error {
        S3Error::Request {
            operation,
            bucket: self.name.clone(),
            key: key.to_owned(),
            source: Box::new(source),
        }
    }
}

/// Presigning from `now` for [`ATTACHMENT_URL_LIFETIME`], so that the
/// returned `expires_at` is the one S3 enforces.
fn presigning_config(now: Timestamp) -> Result<PresigningConfig, S3Error> {
    let millis = u64::try_from(now.epoch_millis()).unwrap_or(0);
    PresigningConfig::builder()
        .start_time(SystemTime::UNIX_EPOCH + Duration::from_millis(millis))
        .expires_in(std_duration(ATTACHMENT_URL_LIFETIME))
        .build()
        .map_err(S3Error::PresignConfig)
}

fn std_duration(delta: TimeDelta) -> Duration {
    Duration::from_millis(delta.num_milliseconds().unsigned_abs())
}

/// The headers of `request` that the client must send, `host` excepted
/// because every HTTP client sends it from the URL.
fn signed_headers(request: &PresignedRequest) -> BTreeMap<String, String> {
    request
        .headers()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn file_name_keeps_ordinary_names() {
        for (raw, expected) in [
            ("photo.png", "photo.png"),
            ("  report 2026.pdf ", "report 2026.pdf"),
            (".profile", ".profile"),
            ("ümlaut ☃.txt", "ümlaut ☃.txt"),
            ("a+b%20c.txt", "a+b%20c.txt"),
        ] {
            assert_eq!(validate_file_name(raw).unwrap(), expected, "{raw:?}");
        }
        let longest = "x".repeat(MAX_FILE_NAME_BYTES);
        assert_eq!(validate_file_name(&longest).unwrap(), longest);
    }

    #[test]
    fn file_name_rejects_paths_controls_and_long_names() {
        let too_long = "x".repeat(MAX_FILE_NAME_BYTES + 1);
        for raw in [
            "",
            "   ",
            ".",
            "..",
            "../../etc/passwd",
            "a/b",
            "a\\b",
            "..hidden",
            "name..txt",
            "line\nbreak.txt",
            "nul\0.txt",
            "tab\t.txt",
            "photo\u{202E}gnp.exe",
            "delete\u{7F}.txt",
            too_long.as_str(),
        ] {
            let err = validate_file_name(raw).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{raw:?}");
        }
    }

    #[test]
    fn content_type_allow_list() {
        assert_eq!(validate_content_type("image/png").unwrap(), "image/png");
        assert_eq!(validate_content_type(" Image/JPEG ").unwrap(), "image/jpeg");
        for raw in [
            "text/html",
            "image/svg+xml",
            "application/octet-stream",
            "text/plain; charset=utf-8",
            "",
        ] {
            let err = validate_content_type(raw).unwrap_err();
            assert_eq!(err.code(), ErrorCode::AttachmentTypeNotAllowed, "{raw:?}");
        }
    }

    #[test]
    fn size_bounds() {
        assert_eq!(validate_size(1).unwrap(), 1);
        assert_eq!(
            validate_size(MAX_ATTACHMENT_BYTES).unwrap(),
            MAX_ATTACHMENT_BYTES
        );
        assert_eq!(
            validate_size(0).unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            validate_size(MAX_ATTACHMENT_BYTES + 1).unwrap_err().code(),
            ErrorCode::ContentTooLarge
        );
    }

    #[test]
    fn key_round_trips_through_parse() {
        let key = object_key("chat-1", "01JEXAMPLE0000000000000001", "photo 1.png");
        assert_eq!(key, "chats/chat-1/01JEXAMPLE0000000000000001/photo 1.png");
        assert_eq!(
            ObjectKey::parse(&key),
            Some(ObjectKey {
                chat_id: "chat-1",
                message_id: "01JEXAMPLE0000000000000001",
                file_name: "photo 1.png",
            })
        );
    }

    #[test]
    fn parse_rejects_foreign_keys() {
        for key in [
            "",
            "chats",
            "chats/c/m",
            "chats/c/m/",
            "chats/c/m/a/b",
            "other/c/m/a.png",
            "chats//m/a.png",
            "chats/c/m/../a.png",
            "chats/c d/m/a.png",
            "chats/c/m/ a.png",
        ] {
            assert_eq!(ObjectKey::parse(key), None, "{key:?}");
        }
    }

    #[test]
    fn event_key_is_form_decoded() {
        assert_eq!(
            decode_event_key("chats/c/m/photo+1%2B2.png").as_deref(),
            Some("chats/c/m/photo 1+2.png")
        );
        assert_eq!(
            decode_event_key("chats/c/m/%C3%BC.txt").as_deref(),
            Some("chats/c/m/ü.txt")
        );
        assert_eq!(decode_event_key("chats/c/m/%FF.txt"), None);
    }

    #[test]
    fn stale_pending_reads_as_failed() {
        let created = at("2026-12-04T13:00:00.000Z");
        let attachment = Attachment {
            upload_status: UploadStatus::Pending,
            file_name: "a.png".into(),
            content_type: "image/png".into(),
            size: 3,
            s3_bucket: "b".into(),
            s3_key: "chats/c/m/a.png".into(),
        };
        let fresh = created.plus(PENDING_UPLOAD_TIMEOUT);
        let stale = fresh.plus(TimeDelta::milliseconds(1));
        assert_eq!(
            upload_status_at(&attachment, created, fresh),
            UploadStatus::Pending
        );
        assert_eq!(
            upload_status_at(&attachment, created, stale),
            UploadStatus::Failed
        );
        let uploaded = Attachment {
            upload_status: UploadStatus::Uploaded,
            ..attachment
        };
        assert_eq!(
            upload_status_at(&uploaded, created, stale),
            UploadStatus::Uploaded
        );
    }

    #[test]
    fn stored_object_must_match_declaration() {
        let attachment = Attachment {
            upload_status: UploadStatus::Pending,
            file_name: "a.png".into(),
            content_type: "image/png".into(),
            size: 3,
            s3_bucket: "b".into(),
            s3_key: "chats/c/m/a.png".into(),
        };
        let exact = StoredObject {
            size: Some(3),
            content_type: Some("image/png".into()),
        };
        assert!(exact.matches(&attachment));
        let bigger = StoredObject {
            size: Some(4),
            ..exact.clone()
        };
        assert!(!bigger.matches(&attachment));
        let other_type = StoredObject {
            content_type: Some("image/gif".into()),
            ..exact.clone()
        };
        assert!(!other_type.matches(&attachment));
        let unknown = StoredObject {
            size: None,
            content_type: None,
        };
        assert!(!unknown.matches(&attachment));
    }
}
