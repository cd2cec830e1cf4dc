//! The embedded DynamoDB and DynamoDB Streams server: dynoxide, on a SQLite
//! file of the data folder or in memory, served on a loopback port.
//!
//! dynoxide stores TTL settings but deletes nothing by itself, so a sweep
//! runs every [`TTL_SWEEP_INTERVAL`], as DynamoDB's own background deletion
//! would. Its deletions are stream REMOVE records with the DynamoDB service
//! as `userIdentity`, which the stream filter drops before `stream-fanout`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Time between two TTL sweeps.
pub const TTL_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The SQLite file of the embedded server, in the data folder.
pub const DATABASE_FILE: &str = "dynamodb.sqlite";

/// A running embedded server.
#[derive(Debug)]
pub struct EmbeddedDynamoDb {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

impl EmbeddedDynamoDb {
    /// Starts dynoxide on `127.0.0.1:{port}` (0 picks a free port), on
    /// `data_dir/dynamodb.sqlite`, or in memory when `data_dir` is `None`.
    ///
    /// # Errors
    ///
    /// When the database cannot be opened or the port cannot be bound.
    pub async fn start(port: u16, data_dir: Option<&Path>) -> Result<Self> {
        let database = match data_dir {
            Some(dir) => {
                let path = dir.join(DATABASE_FILE);
                let text = path
                    .to_str()
                    .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
                dynoxide::Database::new(text).with_context(|| {
                    format!("opening dynoxide database {} failed", path.display())
                })?
            }
            None => dynoxide::Database::memory().context("opening an in-memory dynoxide failed")?,
        };
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding DynamoDB to 127.0.0.1:{port} failed"))?;
        let address = listener.local_addr()?;

        let (stop, stopped) = oneshot::channel::<()>();
        let served = database.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(err) =
                dynoxide::server::serve_with_shutdown(listener, served, shutdown).await
            {
                warn!(error = %err, "dynoxide stopped with an error");
            }
        });
        let sweeper = tokio::spawn(sweep_ttl(database));
        info!(%address, persistent = data_dir.is_some(), "DynamoDB (dynoxide) started");
        Ok(Self {
            address,
            stop: Some(stop),
            server,
            sweeper,
        })
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server and waits until it has closed its database.
    pub async fn stop(mut self) {
        self.sweeper.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
        info!("DynamoDB (dynoxide) stopped");
    }
}

async fn sweep_ttl(database: dynoxide::Database) {
    let mut interval = tokio::time::interval(TTL_SWEEP_INTERVAL);
    // The first tick fires at once; the tables may not exist yet.
    interval.tick().await;
    loop {
        interval.tick().await;
        let database = database.clone();
        match tokio::task::spawn_blocking(move || database.sweep_ttl()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(deleted)) => debug!(deleted, "TTL sweep deleted expired items"),
            Ok(Err(err)) => warn!(error = %err, "TTL sweep failed"),
            Err(err) => warn!(error = %err, "TTL sweep panicked"),
        }
    }
}
