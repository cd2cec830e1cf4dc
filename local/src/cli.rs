//! The command line of `chat-local`, and the [`StackOptions`] it gives.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;
use shared::auth::MIN_SECRET_BYTES;

use crate::stack::StackOptions;

/// The HS256 secret when `JWT_SECRET` is not set; `events/README.md`
/// documents it, and the tokens of the `events/` payloads are signed with it.
pub const DEVELOPMENT_SECRET: &str = "local-development-secret-0123456789abcdef";

/// The region when `AWS_REGION` is not set.
pub const DEFAULT_REGION: &str = "us-east-1";

const ENVIRONMENT_HELP: &str = "\
Environment:
  JWT_SECRET                         HS256 secret of bearer tokens (at least 32 bytes);
                                     unset or empty: the development secret
                                     local-development-secret-0123456789abcdef
  AWS_ENDPOINT_URL_DYNAMODB          use this DynamoDB-compatible server (moto's server,
                                     DynamoDB Local, LocalStack) instead of the embedded one
  AWS_ENDPOINT_URL_DYNAMODB_STREAMS  its Streams endpoint, when not the same server
  AWS_ENDPOINT_URL_S3                use this S3-compatible server instead of the embedded
                                     one (it sends no upload notifications)
  AWS_REGION                         region of every client and event (default us-east-1)
  RUST_LOG                           log filter (default: info; the SDK at warn, the
                                     embedded servers' own logs at error or off)

Every server binds 127.0.0.1 only. The WebSocket API's stage is `local`; the handlers'
WEBSOCKET_ENDPOINT is http://127.0.0.1:{ws-port}/local. The embedded S3 server checks
SigV4 signatures (presigned URLs too) against the access key `local` with the secret
key `local-secret`; every AWS client of the stack signs with that pair.
Ctrl-C or SIGTERM stops everything; the data folder keeps chats, messages and inboxes
for the next start.";

/// Runs the serverless chat backend on this machine: API Gateway emulators,
/// DynamoDB with Streams, S3, and every handler in-process.
#[derive(Debug, Parser)]
#[command(name = "chat-local", version, after_help = ENVIRONMENT_HELP)]
pub struct Args {
    /// Port of the WebSocket API and its Management API on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 3001)]
    pub ws_port: u16,

    /// Port of the HTTP API on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 3000)]
    pub http_port: u16,

    /// Port of the embedded S3 server on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 3002)]
    pub s3_port: u16,

    /// Port of the embedded DynamoDB server on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub dynamodb_port: u16,

    /// Folder of DynamoDB's SQLite file, the S3 objects and the stream checkpoints.
    #[arg(long, value_name = "DIR", default_value = ".chat-local")]
    pub data_dir: PathBuf,

    /// Keep nothing: DynamoDB in memory, S3 objects in a temporary folder removed at exit.
    #[arg(long)]
    pub in_memory: bool,

    /// Origin allowed by the HTTP API's and the bucket's CORS rules, or `*`.
    #[arg(long, value_name = "ORIGIN", default_value = "*")]
    pub allowed_origin: String,

    /// Seconds without a frame from the client before a connection is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub idle_timeout: u64,

    /// Seconds after which a connection is closed, however active.
    #[arg(long, value_name = "SECONDS", default_value_t = 7200)]
    pub max_connection_age: u64,

    /// Start with `$disconnect` events dropped, as API Gateway may drop them
    /// (switch at runtime with POST /local/_control/drop-disconnects {"enabled": bool}).
    #[arg(long)]
    pub drop_disconnects: bool,

    /// Retries of a failing stream record before it is discarded and logged.
    #[arg(long, value_name = "COUNT", default_value_t = 3)]
    pub stream_max_retries: u32,

    /// Prefix of the table names.
    #[arg(long, value_name = "PREFIX", default_value = "chat-local-")]
    pub table_prefix: String,

    /// Name of the attachments bucket, created at start.
    #[arg(long, value_name = "NAME", default_value = "chat-attachments-local")]
    pub bucket: String,

    /// Region of every client and event.
    #[arg(
        long,
        env = "AWS_REGION",
        value_name = "REGION",
        hide_env_values = true,
        default_value = DEFAULT_REGION
    )]
    pub region: String,

    /// HS256 secret of bearer tokens, at least 32 bytes.
    #[arg(
        long,
        env = "JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// Endpoint of an outside DynamoDB-compatible server; the embedded one is not started.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL_DYNAMODB",
        value_name = "URL",
        hide_env_values = true
    )]
    pub dynamodb_endpoint: Option<String>,

    /// Endpoint of its Streams API (default: the DynamoDB endpoint).
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
        value_name = "URL",
        hide_env_values = true
    )]
    pub dynamodb_streams_endpoint: Option<String>,

    /// Endpoint of an outside S3-compatible server; the embedded one is not started.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL_S3",
        value_name = "URL",
        hide_env_values = true
    )]
    pub s3_endpoint: Option<String>,
}

impl Args {
    /// Converts the arguments into the stack's options.
    ///
    /// # Errors
    ///
    /// When a timeout is 0 or the JWT secret is shorter than 32 bytes.
    pub fn into_options(self) -> Result<StackOptions> {
        if self.idle_timeout == 0 || self.max_connection_age == 0 {
            bail!("--idle-timeout and --max-connection-age must be at least 1 second");
        }
        let jwt_secret =
            non_empty(self.jwt_secret).unwrap_or_else(|| DEVELOPMENT_SECRET.to_owned());
        if jwt_secret.len() < MIN_SECRET_BYTES {
            bail!(
                "JWT_SECRET is {} bytes; it must be at least {MIN_SECRET_BYTES}, or unset for the \
                 development secret",
                jwt_secret.len()
            );
        }
        Ok(StackOptions {
            ws_port: self.ws_port,
            http_port: self.http_port,
            s3_port: self.s3_port,
            dynamodb_port: self.dynamodb_port,
            data_dir: (!self.in_memory).then_some(self.data_dir),
            allowed_origin: self.allowed_origin,
            idle_timeout: Duration::from_secs(self.idle_timeout),
            max_connection_age: Duration::from_secs(self.max_connection_age),
            drop_disconnects: self.drop_disconnects,
            stream_max_retries: self.stream_max_retries,
            table_prefix: self.table_prefix,
            bucket: self.bucket,
            region: non_empty(Some(self.region)).unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            jwt_secret: jwt_secret.into_bytes(),
            dynamodb_endpoint: non_empty(self.dynamodb_endpoint),
            dynamodb_streams_endpoint: non_empty(self.dynamodb_streams_endpoint),
            s3_endpoint: non_empty(self.s3_endpoint),
        })
    }
}

/// `None` for an unset or blank value, as the SDK treats an empty variable.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn args_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn short_secret_is_rejected() {
        let args = Args::parse_from(["chat-local", "--jwt-secret", "short"]);
        let err = args.into_options().unwrap_err().to_string();
        assert!(err.contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn empty_secret_means_the_development_secret() {
        let args = Args::parse_from(["chat-local", "--jwt-secret", "", "--in-memory"]);
        let options = args.into_options().unwrap();
        assert_eq!(options.jwt_secret, DEVELOPMENT_SECRET.as_bytes());
        assert!(options.data_dir.is_none());
    }
}
