//! The embedded S3 server: s3s on a folder (s3s-fs), path-style, on its own
//! loopback port.
//!
//! Every request must carry a valid SigV4 signature, in headers or as a
//! presigned URL, for the one local key pair ([`crate::aws::ACCESS_KEY_ID`],
//! [`crate::aws::SECRET_ACCESS_KEY`]). A tampered or expired URL gets 403.
//! The bucket follows its CORS configuration in the template ([`cors`]) and
//! sends `ObjectCreated` notifications ([`notify`]).

pub mod cors;
pub mod notify;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use aws_smithy_types::error::display::DisplayErrorContext;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use self::cors::BucketCors;
use self::notify::{NotifyingStore, SourceIp, deliver_notifications};
use crate::aws::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::functions::UploadFunction;
use crate::tasks::TaskTracker;

/// How long shutdown waits for notifications still being delivered.
const NOTIFICATION_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the embedded server.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// The region in notifications.
    pub region: String,
    /// The origin the bucket's CORS rule allows, or `*`.
    pub allowed_origin: String,
}

#[derive(Clone)]
struct S3State {
    service: S3Service,
    cors: BucketCors,
}

/// A running embedded server.
pub struct EmbeddedS3 {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    notifier: JoinHandle<()>,
    notifications: Arc<TaskTracker>,
}

impl EmbeddedS3 {
    /// Serves the objects under `root` on `listener`; notifications go to `function`.
    ///
    /// # Errors
    ///
    /// When `root` cannot be opened.
    pub fn start(
        listener: TcpListener,
        root: &Path,
        options: &S3Options,
        function: Arc<dyn UploadFunction>,
    ) -> Result<Self> {
        let address = listener
            .local_addr()
            .context("the S3 listener has no address")?;
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the S3 folder {} failed", root.display()))?;
        let file_system = s3s_fs::FileSystem::new(root)
            .map_err(|err| anyhow!("opening the S3 folder {} failed: {err:?}", root.display()))?;

        let (sender, receiver) = mpsc::unbounded_channel();
        let notifications = Arc::new(TaskTracker::default());
        let notifier = tokio::spawn(deliver_notifications(
            receiver,
            function,
            Arc::clone(&notifications),
        ));

        let mut builder =
            S3ServiceBuilder::new(NotifyingStore::new(file_system, &options.region, sender));
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let state = S3State {
            service: builder.build(),
            cors: BucketCors::new(&options.allowed_origin),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(err) = axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
            {
                warn!(error = %err, "the S3 server stopped with an error");
            }
        });
        info!(%address, root = %root.display(), "S3 started");
        Ok(Self {
            address,
            stop: Some(stop),
            server,
            notifier,
            notifications,
        })
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops serving, then waits for the notifications still being delivered.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
        // The server's store held the queue's sender, so the queue is closed now.
        let drained = tokio::time::timeout(NOTIFICATION_SHUTDOWN_TIMEOUT, &mut self.notifier)
            .await
            .is_ok();
        let delivered = self
            .notifications
            .close_and_wait(NOTIFICATION_SHUTDOWN_TIMEOUT)
            .await;
        if !drained || !delivered {
            self.notifier.abort();
            warn!("upload notifications still queued or running at shutdown; dropped");
        }
        info!("S3 stopped");
    }
}

/// Serves one request. The log line leaves out the query string, which
/// contains the signature of a presigned URL.
async fn handle(
    State(state): State<S3State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    if BucketCors::is_preflight(&method, &headers) {
        return state.cors.preflight(&headers);
    }
    request.extensions_mut().insert(SourceIp(peer.ip()));
    let request = request.map(s3s::Body::http_body_unsync);
    let mut response = match state.service.call(request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(err) => {
            warn!(%method, path, error = ?err, "the S3 server failed a request");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    };
    state.cors.apply(&method, &headers, &mut response);
    info!(
        %method,
        path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        "s3 request"
    );
    response
}

/// Creates `bucket` through `client` unless it exists.
///
/// # Errors
///
/// When the server rejects the request for another reason.
pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => {
            info!(bucket, "bucket created");
            Ok(())
        }
        Err(err) => {
            let exists = err.as_service_error().is_some_and(|service| {
                service.is_bucket_already_owned_by_you() || service.is_bucket_already_exists()
            });
            if exists {
                Ok(())
            } else {
                Err(anyhow!(
                    "creating bucket {bucket} failed: {}",
                    DisplayErrorContext(&err)
                ))
            }
        }
    }
}
