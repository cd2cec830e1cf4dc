//! The serverless chat backend: everything but the Lambda entry points.
//!
//! # Layout
//!
//! - [`config`]: environment variables, read once at init.
//! - [`tables`]: table schemas and their creation on a DynamoDB-compatible server.
pub mod config;
pub mod tables;
