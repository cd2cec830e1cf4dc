//! The WebSocket wire protocol: one JSON object a frame, identified by its `type`.
//!
//! Client frames are parsed by the route that API Gateway chose from
//! `$request.body.type`; server frames are [`ServerFrame`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::{ChatView, Message, Timestamp};
use crate::error::{ChatError, ErrorCode};

/// Frame types the client sends.
pub mod frame_type {
    /// A new message.
    pub const MESSAGE: &str = "message";
    /// Start receiving a chat's messages live.
    pub const SUBSCRIBE: &str = "subscribe";
    /// Stop receiving a chat's messages live.
    pub const UNSUBSCRIBE: &str = "unsubscribe";
    /// A message was received and stored.
    pub const ACK: &str = "ack-message-received";
    /// Keep-alive.
    pub const PING: &str = "ping";
}

/// A `message` frame from the client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SendMessage {
    /// The chat to send to.
    pub chat_id: String,
    /// The text.
    pub content: String,
    /// The client's id for deduplicating resends.
    #[serde(default)]
    pub client_message_id: Option<String>,
}

/// A `subscribe` or `unsubscribe` frame.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ChatRef {
    /// The chat.
    pub chat_id: String,
}

/// An `ack-message-received` frame.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Ack {
    /// The message that was received.
    pub message_id: String,
}

/// A client frame's body, parsed as far as its `type`.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// The JSON object.
    pub value: Value,
    /// Its `type`, when it is a string.
    pub frame_type: Option<String>,
    /// Its `client_message_id`, when it is a string, to echo in an error.
    pub client_message_id: Option<String>,
}

impl RawFrame {
    /// Parses a frame body as JSON.
    ///
    /// # Errors
    ///
    /// `invalid_json` when the body is missing or not JSON.
    pub fn parse(body: Option<&str>) -> Result<Self, ChatError> {
        let body = body.unwrap_or_default();
        let value: Value = serde_json::from_str(body).map_err(|err| {
            ChatError::client(
                ErrorCode::InvalidJson,
                format!("the frame is not valid JSON: {err}"),
            )
        })?;
        let text_field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Self {
            frame_type: text_field("type"),
            client_message_id: text_field("client_message_id"),
            value,
        })
    }

    /// Reads the frame as `T`.
    ///
    /// # Errors
    ///
    /// `invalid_request` when a field is missing or has the wrong type.
    pub fn fields<T: DeserializeOwned>(&self) -> Result<T, ChatError> {
        if !self.value.is_object() {
            return Err(ChatError::client(
                ErrorCode::InvalidRequest,
                "a frame must be a JSON object",
            ));
        }
        serde_json::from_value(self.value.clone()).map_err(|err| {
            ChatError::client(ErrorCode::InvalidRequest, format!("invalid frame: {err}"))
        })
    }
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerFrame {
    /// A new message of a subscribed chat.
    Message(Message),
    /// A message whose attachment's `upload_status` changed.
    MessageUpdated(Message),
    /// The subscription is stored.
    Subscribed {
        /// The chat.
        chat_id: String,
    },
    /// The subscription is deleted.
    Unsubscribed {
        /// The chat.
        chat_id: String,
    },
    /// The message is stored.
    MessageAccepted {
        /// Echoed from the frame, when it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_message_id: Option<String>,
        /// The stored message's id.
        message_id: String,
        /// The chat.
        chat_id: String,
        /// The message's `seq`.
        seq: u64,
        /// When it was stored.
        created_at: Timestamp,
    },
    /// The user was made a member of a chat.
    ChatCreated(ChatView),
    /// The reply to `ping`.
    Pong,
    /// A frame that could not be handled.
    Error {
        /// The stable code.
        code: ErrorCode,
        /// A description of the problem, for people.
        message: String,
        /// The failed frame's `type`, or `null` when it had none.
        request_type: Option<String>,
        /// Echoed from the failed frame, when it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_message_id: Option<String>,
    },
}

impl ServerFrame {
    /// Builds the `error` frame for `err`, caused by the frame `request`.
    pub fn error(err: &ChatError, request: Option<&RawFrame>) -> Self {
        Self::Error {
            code: err.code(),
            message: err.to_string(),
            request_type: request.and_then(|frame| frame.frame_type.clone()),
            client_message_id: request.and_then(|frame| frame.client_message_id.clone()),
        }
    }

    /// Serialises the frame as JSON text.
    pub fn to_json(&self) -> String {
        // A frame contains only strings, numbers and options, so serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"error\"}"))
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frame_echoes_type_and_client_message_id() {
        let frame = RawFrame::parse(Some(
            r#"{"type":"message","chat_id":"c","client_message_id":"m-1"}"#,
        ))
        .unwrap();
        let err = frame.fields::<SendMessage>().unwrap_err();
        let json: Value =
            serde_json::from_str(&ServerFrame::error(&err, Some(&frame)).to_json()).unwrap();
        assert_eq!(json["type"], "error");
        assert_eq!(json["code"], "invalid_request");
        assert_eq!(json["request_type"], "message");
        assert_eq!(json["client_message_id"], "m-1");
        assert!(json["message"].as_str().unwrap().contains("content"));
    }

    #[test]
    fn body_that_is_not_json_is_invalid_json() {
        let err = RawFrame::parse(Some("{not json")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidJson);
    }

    #[test]
    fn frame_that_is_not_an_object_is_invalid_request() {
        let frame = RawFrame::parse(Some("[1, 2]")).unwrap();
        let err = frame.fields::<ChatRef>().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn server_frames_carry_kebab_case_types() {
        let cases = [
            (ServerFrame::Pong, "pong"),
            (
                ServerFrame::Subscribed {
                    chat_id: "c".into(),
                },
                "subscribed",
            ),
            (
                ServerFrame::MessageAccepted {
                    client_message_id: None,
                    message_id: "m".into(),
                    chat_id: "c".into(),
                    seq: 1,
                    created_at: Timestamp::parse("2026-12-04T13:47:06.123Z").unwrap(),
                },
                "message-accepted",
            ),
        ];
        for (frame, name) in cases {
            let json: Value = serde_json::from_str(&frame.to_json()).unwrap();
            assert_eq!(json["type"], name);
        }
    }
}
