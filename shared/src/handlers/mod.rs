//! One module per Lambda function; each exposes `handle`.
//!
//! Handlers take their dependencies as arguments, so tests run them against
//! a local DynamoDB-compatible server with a fixed clock, and the local stack
//! runs them in-process unchanged.

pub mod http;
pub mod stream_fanout;
pub mod upload_complete;
pub mod websocket;
pub mod ws_ack;
pub mod ws_connect;
pub mod ws_default;
pub mod ws_disconnect;
pub mod ws_message;
pub mod ws_subscribe;

use std::sync::Arc;

use crate::attachments::AttachmentBucket;
use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::push::Pusher;
use crate::store::{InboxWriter, Store};

/// Dependencies of the WebSocket route handlers.
#[derive(Clone)]
pub struct WsDeps {
    /// The tables.
    pub store: Store,
    /// The current time.
    pub clock: Arc<dyn Clock>,
}

/// Dependencies of `stream-fanout`.
#[derive(Clone)]
pub struct FanoutDeps {
    /// The tables.
    pub store: Store,
    /// The current time.
    pub clock: Arc<dyn Clock>,
    /// Posts frames to connections.
    pub pusher: Pusher,
    /// Writes Inbox rows; [`crate::store::DynamoInboxWriter`] outside tests.
    pub inbox: Arc<dyn InboxWriter>,
}

/// Dependencies of `http-api`.
#[derive(Clone)]
pub struct HttpDeps {
    /// The tables.
    pub store: Store,
    /// The current time.
    pub clock: Arc<dyn Clock>,
    /// Posts `chat-created` to members' connections.
    pub pusher: Pusher,
    /// Verifies bearer tokens.
    pub auth: Authenticator,
    /// Presigns attachment uploads and downloads.
    pub attachments: AttachmentBucket,
}

/// Dependencies of `upload-complete`.
#[derive(Clone)]
pub struct UploadDeps {
    /// The tables.
    pub store: Store,
    /// The bucket the notifications come from, to read the stored objects.
    pub attachments: AttachmentBucket,
    /// The current time.
    pub clock: Arc<dyn Clock>,
}
