//! Starting and stopping the whole local stack, in dependency order.
//!
//! Start: the data folder and its lock, then the listeners, so that a port in
//! use fails at once and port 0 is resolved before anything needs the URLs.
//! Then DynamoDB, the tables, S3 and its bucket, the handlers' dependencies,
//! the two API emulators and the stream poller. Stop runs the other way round,
//! so that every `$disconnect` and every batch in flight still reaches
//! DynamoDB.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aws_smithy_types::error::display::DisplayErrorContext;
use shared::attachments::{AttachmentBucket, s3_client};
use shared::auth::Authenticator;
use shared::clock::SystemClock;
use shared::config::TableNames;
use shared::init;
use tokio::net::TcpListener;
use tracing::info;

use crate::aws::{self, LocalEndpoints};
use crate::dynamodb::EmbeddedDynamoDb;
use crate::functions::Functions;
use crate::http_api::{HttpOptions, HttpServer};
use crate::s3::{EmbeddedS3, S3Options, create_bucket};
use crate::streams::checkpoints::Checkpoints;
use crate::streams::delivery::RetryPolicy;
use crate::streams::{StreamOptions, StreamPoller, stream_arn};
use crate::websocket::{WebSocketOptions, WebSocketServer};

/// The WebSocket API's stage.
pub const STAGE: &str = "local";
/// `apiId` of the WebSocket API's events, as in the `events/` payloads.
pub const WEBSOCKET_API_ID: &str = "localapi01";
/// `apiId` of the HTTP API's events, as in the `events/` payloads.
pub const HTTP_API_ID: &str = "localapi02";
/// `accountId` of the HTTP API's events.
pub const ACCOUNT_ID: &str = "123456789012";
/// The lock file of the data folder: one stack per folder.
pub const LOCK_FILE: &str = "chat-local.lock";

/// Everything the stack can be configured with; [`crate::cli::Args`] fills it.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// WebSocket API port (0: any free port).
    pub ws_port: u16,
    /// HTTP API port (0: any free port).
    pub http_port: u16,
    /// Embedded S3 port (0: any free port).
    pub s3_port: u16,
    /// Embedded DynamoDB port (0: any free port).
    pub dynamodb_port: u16,
    /// The data folder; `None` keeps nothing.
    pub data_dir: Option<PathBuf>,
    /// The origin CORS allows, or `*`.
    pub allowed_origin: String,
    /// Idle timeout of WebSocket connections.
    pub idle_timeout: Duration,
    /// Maximum age of WebSocket connections.
    pub max_connection_age: Duration,
    /// Whether `$disconnect` events are dropped from the start.
    pub drop_disconnects: bool,
    /// Retries of a failing stream record.
    pub stream_max_retries: u32,
    /// Prefix of the table names.
    pub table_prefix: String,
    /// The attachments bucket.
    pub bucket: String,
    /// Region of clients and events.
    pub region: String,
    /// HS256 secret of bearer tokens.
    pub jwt_secret: Vec<u8>,
    /// An outside DynamoDB server, instead of the embedded one.
    pub dynamodb_endpoint: Option<String>,
    /// Its Streams endpoint, when not the same.
    pub dynamodb_streams_endpoint: Option<String>,
    /// An outside S3 server, instead of the embedded one.
    pub s3_endpoint: Option<String>,
}

/// The URLs and ports of a running stack.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StackUrls {
    /// `ws://127.0.0.1:{port}/local`.
    pub websocket_url: String,
    /// The Management API, `http://127.0.0.1:{port}/local` (`WEBSOCKET_ENDPOINT`).
    pub management_endpoint: String,
    /// `http://127.0.0.1:{port}`.
    pub http_url: String,
    /// The S3 endpoint in use.
    pub s3_endpoint: String,
    /// The DynamoDB endpoint in use.
    pub dynamodb_endpoint: String,
    /// The DynamoDB Streams endpoint in use.
    pub dynamodb_streams_endpoint: String,
    /// WebSocket API port.
    pub ws_port: u16,
    /// HTTP API port.
    pub http_port: u16,
    /// Prefix of the table names.
    pub table_prefix: String,
    /// The attachments bucket.
    pub bucket: String,
    /// The data folder, or `None` in memory.
    pub data_dir: Option<PathBuf>,
    /// Whether DynamoDB is the embedded dynoxide.
    pub embedded_dynamodb: bool,
    /// Whether S3 is the embedded server.
    pub embedded_s3: bool,
}

/// A running stack.
pub struct Stack {
    urls: StackUrls,
    http: HttpServer,
    websocket: WebSocketServer,
    poller: StreamPoller,
    s3: Option<EmbeddedS3>,
    dynamodb: Option<EmbeddedDynamoDb>,
    _storage: Storage,
}

/// The folders the stack keeps open: the locked data folder, or a temporary
/// S3 folder removed when the stack is dropped.
enum Storage {
    Persistent { dir: PathBuf, _lock: File },
    Temporary(TemporaryFolder),
}

impl Storage {
    /// Returns the folder of the S3 objects.
    fn s3_root(&self) -> PathBuf {
        match self {
            Self::Persistent { dir, .. } => dir.join("s3"),
            Self::Temporary(folder) => folder.path.clone(),
        }
    }
}

struct TemporaryFolder {
    path: PathBuf,
}

impl Drop for TemporaryFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl Stack {
    /// Starts every part of the stack.
    ///
    /// # Errors
    ///
    /// When the data folder is locked or unusable, a port is taken, or a
    /// server, table or bucket cannot be set up.
    pub async fn start(options: StackOptions) -> Result<Self> {
        let storage = open_storage(options.data_dir.as_deref())?;
        let ws_listener = bind("WebSocket API", options.ws_port).await?;
        let http_listener = bind("HTTP API", options.http_port).await?;
        let ws_port = ws_listener.local_addr()?.port();
        let http_port = http_listener.local_addr()?.port();
        let (s3_listener, s3_endpoint) = match &options.s3_endpoint {
            Some(endpoint) => (None, endpoint.clone()),
            None => {
                let listener = bind("S3 server", options.s3_port).await?;
                let endpoint = format!("http://{}", listener.local_addr()?);
                (Some(listener), endpoint)
            }
        };
        let (dynamodb, dynamodb_endpoint) = match &options.dynamodb_endpoint {
            Some(endpoint) => (None, endpoint.clone()),
            None => {
                let embedded =
                    EmbeddedDynamoDb::start(options.dynamodb_port, options.data_dir.as_deref())
                        .await?;
                let endpoint = embedded.endpoint();
                (Some(embedded), endpoint)
            }
        };
        let endpoints = LocalEndpoints {
            dynamodb_streams: options
                .dynamodb_streams_endpoint
                .clone()
                .unwrap_or_else(|| dynamodb_endpoint.clone()),
            dynamodb: dynamodb_endpoint,
            s3: s3_endpoint,
        };
        let sdk_config = aws::sdk_config(&options.region, endpoints.clone()).await;

        let tables = TableNames::with_prefix(&options.table_prefix);
        let dynamodb_client = aws_sdk_dynamodb::Client::new(&sdk_config);
        shared::tables::create_missing(&dynamodb_client, &tables)
            .await
            .map_err(|err| {
                anyhow!(
                    "creating the tables on {} failed: {}",
                    endpoints.dynamodb,
                    DisplayErrorContext(&err)
                )
            })?;
        info!(prefix = %options.table_prefix, "tables ready");

        let management_endpoint = format!("http://127.0.0.1:{ws_port}/{STAGE}");
        let attachments = AttachmentBucket::new(
            s3_client(&sdk_config, Some(&endpoints.s3)),
            options.bucket.clone(),
        );
        let functions = Arc::new(build_functions(
            &sdk_config,
            &tables,
            &management_endpoint,
            &options.jwt_secret,
            attachments.clone(),
        )?);

        let s3 = match s3_listener {
            Some(listener) => Some(EmbeddedS3::start(
                listener,
                &storage.s3_root(),
                &S3Options {
                    region: options.region.clone(),
                    allowed_origin: options.allowed_origin.clone(),
                },
                functions.clone(),
            )?),
            None => None,
        };
        create_bucket(attachments.client(), &options.bucket).await?;

        let websocket = WebSocketServer::start(
            ws_listener,
            functions.clone(),
            WebSocketOptions {
                stage: STAGE.to_owned(),
                api_id: WEBSOCKET_API_ID.to_owned(),
                idle_timeout: options.idle_timeout,
                max_connection_age: options.max_connection_age,
                drop_disconnects: options.drop_disconnects,
            },
        )?;
        let http = HttpServer::start(
            http_listener,
            functions.clone(),
            HttpOptions {
                api_id: HTTP_API_ID.to_owned(),
                account_id: ACCOUNT_ID.to_owned(),
                allowed_origin: options.allowed_origin.clone(),
                jwt_secret: options.jwt_secret.clone(),
            },
        )?;

        let stream = stream_arn(&dynamodb_client, &tables.messages).await?;
        let checkpoints = match &options.data_dir {
            Some(dir) => Checkpoints::load(dir, &stream)?,
            None => Checkpoints::in_memory(&stream),
        };
        let stream_options = StreamOptions {
            retry: RetryPolicy {
                max_retries: options.stream_max_retries,
                ..StreamOptions::default().retry
            },
            ..StreamOptions::default()
        };
        let poller = StreamPoller::start(
            aws::streams_client(&sdk_config),
            stream,
            functions,
            checkpoints,
            stream_options,
        );

        let urls = StackUrls {
            websocket_url: format!("ws://127.0.0.1:{ws_port}/{STAGE}"),
            management_endpoint,
            http_url: format!("http://127.0.0.1:{http_port}"),
            s3_endpoint: endpoints.s3,
            dynamodb_endpoint: endpoints.dynamodb,
            dynamodb_streams_endpoint: endpoints.dynamodb_streams,
            ws_port,
            http_port,
            table_prefix: options.table_prefix,
            bucket: options.bucket,
            data_dir: options.data_dir,
            embedded_dynamodb: dynamodb.is_some(),
            embedded_s3: s3.is_some(),
        };
        Ok(Self {
            urls,
            http,
            websocket,
            poller,
            s3,
            dynamodb,
            _storage: storage,
        })
    }

    /// Returns the URLs and ports of the stack.
    pub fn urls(&self) -> &StackUrls {
        &self.urls
    }

    /// Stops every part, the emulators first and DynamoDB last.
    pub async fn stop(self) {
        self.http.stop().await;
        self.poller.stop().await;
        self.websocket.stop().await;
        if let Some(s3) = self.s3 {
            s3.stop().await;
        }
        if let Some(dynamodb) = self.dynamodb {
            dynamodb.stop().await;
        }
    }
}

/// Builds the handlers, with dependencies from `shared::init` on the local endpoints.
fn build_functions(
    sdk_config: &aws_config::SdkConfig,
    tables: &TableNames,
    management_endpoint: &str,
    jwt_secret: &[u8],
    attachments: AttachmentBucket,
) -> Result<Functions> {
    let clock = Arc::new(SystemClock);
    let auth = Authenticator::hs256(jwt_secret).context("the JWT secret is unusable")?;
    Ok(Functions::new(
        init::ws_deps(sdk_config, tables.clone(), clock.clone()),
        init::http_deps(
            sdk_config,
            tables.clone(),
            management_endpoint,
            auth,
            attachments.clone(),
            clock.clone(),
        ),
        init::fanout_deps(
            sdk_config,
            tables.clone(),
            management_endpoint,
            clock.clone(),
        ),
        init::upload_deps(sdk_config, tables.clone(), attachments, clock),
    ))
}

async fn bind(what: &str, port: u16) -> Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("binding the {what} to 127.0.0.1:{port} failed; is another chat-local running?")
        })
}

/// Creates and locks the data folder, or makes a temporary S3 folder.
fn open_storage(data_dir: Option<&Path>) -> Result<Storage> {
    let Some(dir) = data_dir else {
        let path = std::env::temp_dir().join(format!(
            "chat-local-s3-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("creating {} failed", path.display()))?;
        return Ok(Storage::Temporary(TemporaryFolder { path }));
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data folder {} failed", dir.display()))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {} failed", lock_path.display()))?;
    lock.try_lock().map_err(|_| {
        anyhow!(
            "the data folder {} is in use by another chat-local; stop it or pass another --data-dir",
            dir.display()
        )
    })?;
    Ok(Storage::Persistent {
        dir: dir.to_path_buf(),
        _lock: lock,
    })
}
