//! The serverless chat backend: everything but the Lambda entry points.
//!
//! API Gateway WebSocket routes and an HTTP API invoke the handlers in
//! [`handlers`]; state lives in DynamoDB ([`store`]); new messages reach
//! recipients through the Messages stream, Inbox rows and the Management API
//! ([`push`]). Each `functions/*` binary only builds its dependencies with
//! [`init`] and runs one handler.
//!
//! # Layout
//!
//! - [`config`]: environment variables, read once at init.
//! - [`tables`]: table schemas, and their creation on a DynamoDB-compatible server.
//! - [`domain`]: domain types, ids and limits; nothing here knows DynamoDB.
//! - [`protocol`]: the WebSocket frames.
//! - [`error`]: the error codes clients see, and their HTTP statuses.
//! - [`store`]: the tables, with the item mapping of every domain type.
//! - [`push`]: posts to connections through the Management API.
//! - [`auth`]: bearer token verification.
//! - [`attachments`]: attachment checks, object keys and presigned S3 URLs.
//! - [`clock`]: time and ids, replaceable in tests.
//! - [`aws`]: SDK configuration with the rustls HTTPS client.
//! - [`handlers`]: one module per function.
//! - [`init`]: builds each function's dependencies from the environment.

pub mod attachments;
pub mod auth;
pub mod aws;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod init;
pub mod protocol;
pub mod push;
pub mod store;
pub mod tables;
