//! The local stack: the whole chat backend on one machine, with no AWS account.
//!
//! `chat-local` runs every handler of `shared` in-process, unchanged, behind
//! emulators of the services that invoke them in AWS, and embeds the servers
//! that hold the state:
//!
//! - [`websocket`]: the API Gateway WebSocket API (routes, limits, timeouts)
//!   and its Management API (`@connections`);
//! - [`http_api`]: the API Gateway HTTP API (payload 2.0 events, CORS) and
//!   `POST /dev/token`, which exists only here;
//! - [`streams`]: Lambda's event source mapping for the Messages stream;
//! - [`dynamodb`]: dynoxide, a DynamoDB and DynamoDB Streams server on SQLite;
//! - [`s3`]: an S3 server on a folder (s3s), which checks SigV4 signatures and
//!   sends `ObjectCreated` notifications.
//!
//! # Layout
//!
//! - [`cli`]: the command line, and [`StackOptions`](stack::StackOptions) from it.
//! - [`stack`]: starts and stops every part in order.
//! - [`functions`]: the traits through which the emulators invoke functions,
//!   and [`Functions`](functions::Functions), which runs the real handlers.
//! - [`aws`]: the SDK configuration that points every client at local servers.
//! - [`ids`]: ids and timestamps in API Gateway's formats.
//! - [`banner`]: what the binary prints once the stack is ready.
//! - [`tasks`]: waiting for spawned tasks at shutdown.

pub mod aws;
pub mod banner;
pub mod cli;
pub mod dynamodb;
pub mod functions;
pub mod http_api;
pub mod ids;
pub mod s3;
pub mod stack;
pub mod streams;
pub mod tasks;
pub mod websocket;
