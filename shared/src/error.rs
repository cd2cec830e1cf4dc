//! The errors a client can see, with their stable codes and HTTP statuses.
//!
//! Every handler reports a client mistake as a [`ChatError`]; the WebSocket
//! handlers turn it into an `error` frame and `http-api` into
//! `{ "error": { "code", "message" } }` with [`ChatError::status`].

use std::fmt;

use crate::store::StoreError;

/// The stable error codes, the same in frames and HTTP bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not JSON.
    InvalidJson,
    /// A field is missing, of the wrong type or out of range.
    InvalidRequest,
    /// The frame's `type` is not one the server handles.
    UnknownType,
    /// No token, a bad token, or a connection the server does not know.
    Unauthorized,
    /// The caller is not a member of the chat.
    NotMember,
    /// The caller is a member but may not do this.
    Forbidden,
    /// The chat, message or route does not exist.
    NotFound,
    /// The content, body or file is over its size limit.
    ContentTooLarge,
    /// The attachment's content type is not on the allow-list.
    AttachmentTypeNotAllowed,
    /// The attachment has not been uploaded yet.
    UploadPending,
    /// The attachment's upload failed or never arrived.
    UploadFailed,
    /// The request conflicts with the current state; retrying may succeed.
    Conflict,
    /// Too many requests.
    Throttled,
    /// A fault of the service itself.
    Internal,
}

impl ErrorCode {
    /// Returns the code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::UnknownType => "unknown_type",
            Self::Unauthorized => "unauthorized",
            Self::NotMember => "not_member",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::ContentTooLarge => "content_too_large",
            Self::AttachmentTypeNotAllowed => "attachment_type_not_allowed",
            Self::UploadPending => "upload_pending",
            Self::UploadFailed => "upload_failed",
            Self::Conflict => "conflict",
            Self::Throttled => "throttled",
            Self::Internal => "internal",
        }
    }

    /// Returns the HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidJson
            | Self::InvalidRequest
            | Self::UnknownType
            | Self::AttachmentTypeNotAllowed => 400,
            Self::Unauthorized => 401,
            Self::NotMember | Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::UploadPending | Self::UploadFailed | Self::Conflict => 409,
            Self::ContentTooLarge => 413,
            Self::Throttled => 429,
            Self::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request that failed, either through the client's mistake or a fault of the service.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A client mistake: its code and a message for people.
    #[error("{message}")]
    Client {
        /// The stable code.
        code: ErrorCode,
        /// A description of the mistake, for people.
        message: String,
    },
    /// A fault of the service. Clients see only a generic message; the source is logged.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ChatError {
    /// Creates a client mistake with `code` and `message`.
    pub fn client(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Client {
            code,
            message: message.into(),
        }
    }

    /// `invalid_request` for `field`, saying what is wrong with it.
    pub fn invalid_field(field: &str, problem: impl fmt::Display) -> Self {
        Self::client(ErrorCode::InvalidRequest, format!("{field}: {problem}"))
    }

    /// `not_member` for `chat_id`.
    pub fn not_member(chat_id: &str) -> Self {
        Self::client(
            ErrorCode::NotMember,
            format!("you are not a member of chat {chat_id}"),
        )
    }

    /// `unauthorized` with `message`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::Unauthorized, message)
    }

    /// Returns the stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Client { code, .. } => *code,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Returns the HTTP status of [`Self::code`].
    pub fn status(&self) -> u16 {
        self.code().status()
    }

    /// Returns whether this is a fault of the service, which is logged as an error.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Internal(_))
    }
}

impl From<StoreError> for ChatError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Throttled { .. } => Self::client(
                ErrorCode::Throttled,
                "the service is busy, retry in a moment",
            ),
            other => Self::Internal(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_wire_name_and_status() {
        let cases = [
            (ErrorCode::InvalidJson, "invalid_json", 400),
            (ErrorCode::InvalidRequest, "invalid_request", 400),
            (ErrorCode::UnknownType, "unknown_type", 400),
            (ErrorCode::Unauthorized, "unauthorized", 401),
            (ErrorCode::NotMember, "not_member", 403),
            (ErrorCode::Forbidden, "forbidden", 403),
            (ErrorCode::NotFound, "not_found", 404),
            (ErrorCode::ContentTooLarge, "content_too_large", 413),
            (
                ErrorCode::AttachmentTypeNotAllowed,
                "attachment_type_not_allowed",
                400,
            ),
            (ErrorCode::UploadPending, "upload_pending", 409),
            (ErrorCode::UploadFailed, "upload_failed", 409),
            (ErrorCode::Conflict, "conflict", 409),
            (ErrorCode::Throttled, "throttled", 429),
            (ErrorCode::Internal, "internal", 500),
        ];
        for (code, name, status) in cases {
            assert_eq!(code.as_str(), name);
            assert_eq!(code.status(), status, "{name}");
        }
    }

    #[test]
    fn internal_error_hides_its_source() {
        let err = ChatError::Internal("table Messages is gone".into());
        assert_eq!(err.to_string(), "internal error");
        assert!(err.is_internal());
    }
}
