//! The API Gateway WebSocket API emulator, on one loopback port:
//!
//! - `ws://127.0.0.1:{port}/{stage}` (and `/`): each upgrade runs `$connect`
//!   before it completes, and a non-2xx response rejects it with that status.
//!   Each text frame is routed by `$request.body.type`, and the function's
//!   `body` is sent back on the connection. A close, or a connection lost
//!   without one, runs `$disconnect`;
//! - `/{stage}/@connections/{id}`: the Management API ([`management`]);
//! - `POST /{stage}/_control/drop-disconnects`: a fault switch that drops
//!   `$disconnect` events, which API Gateway delivers only on a best-effort
//!   basis.
//!
//! API Gateway's limits apply: 32 KB per frame and 128 KB per message (close
//! code 1009), no binary frames (1003), an idle timeout and a maximum
//! connection age (1001).

mod connection;
pub mod events;
mod management;
mod upgrade;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_lambda_events::encodings::Body;
use axum::Router;
use axum::routing::{any, get};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::Message;
use tracing::{error, info, warn};

pub use self::connection::{
    Closure, Command, ConnectionInfo, MAX_IN_FLIGHT_PER_CONNECTION, reason, websocket_config,
};
use shared::handlers::websocket::{ROUTES, Route};

use crate::functions::WebSocketFunctions;
use crate::tasks::TaskTracker;

/// API Gateway's maximum WebSocket frame size.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway's maximum WebSocket message size, also the maximum
/// `PostToConnection` payload.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// How long the stack waits at shutdown for connections to close and their
/// `$disconnect` to run.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the emulated API.
#[derive(Debug, Clone)]
pub struct WebSocketOptions {
    /// Stage name, the first path segment: `local`.
    pub stage: String,
    /// `apiId` of the events.
    pub api_id: String,
    /// A connection that sends nothing this long is closed (API Gateway: 10 minutes).
    pub idle_timeout: Duration,
    /// A connection is closed this long after it opened (API Gateway: 2 hours).
    pub max_connection_age: Duration,
    /// Whether `$disconnect` events are dropped from the start.
    pub drop_disconnects: bool,
}

/// The emulator's state, shared by the HTTP routes and the connection tasks.
pub struct WebSocketGateway {
    functions: Arc<dyn WebSocketFunctions>,
    options: WebSocketOptions,
    port: u16,
    drop_disconnects: AtomicBool,
    connections: Mutex<HashMap<String, ConnectionHandle>>,
    tasks: TaskTracker,
}

#[derive(Clone)]
struct ConnectionHandle {
    commands: mpsc::Sender<Command>,
    info: Arc<ConnectionInfo>,
}

impl WebSocketGateway {
    /// Returns whether `$disconnect` events are dropped now.
    pub fn drops_disconnects(&self) -> bool {
        self.drop_disconnects.load(Ordering::SeqCst)
    }

    /// Turns dropping of `$disconnect` events on or off.
    pub fn set_drop_disconnects(&self, enabled: bool) {
        self.drop_disconnects.store(enabled, Ordering::SeqCst);
        info!(enabled, "$disconnect drop switched");
    }

    /// Returns the ids of the open connections.
    pub fn connection_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn connection(&self, connection_id: &str) -> Option<ConnectionHandle> {
        self.lock().get(connection_id).cloned()
    }

    fn register(&self, info: Arc<ConnectionInfo>, commands: mpsc::Sender<Command>) {
        self.lock().insert(
            info.connection_id.clone(),
            ConnectionHandle { commands, info },
        );
    }

    fn unregister(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ConnectionHandle>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Routes a text frame, invokes its function and returns the frame to
    /// send back, if any.
    async fn invoke_route(&self, info: &ConnectionInfo, body: &str) -> Option<Message> {
        let route = select_route(body);
        let route_key = route.key;
        let event = events::message(&self.options, info, route_key, body);
        let request_id = event["requestContext"]["requestId"].clone();
        let started = Instant::now();
        match self.functions.invoke(route_key, event).await {
            Ok(response) => {
                info!(
                    connection_id = %info.connection_id,
                    route = route_key,
                    status = response.status_code,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "route invoked"
                );
                // Only a two-way route's return value goes back to the client.
                match response.body.filter(|_| route.two_way) {
                    Some(Body::Text(text)) => Some(Message::text(text)),
                    Some(Body::Binary(bytes)) => Some(Message::binary(bytes)),
                    _ => None,
                }
            }
            Err(err) => {
                error!(
                    connection_id = %info.connection_id,
                    route = route_key,
                    error = %err,
                    cause = ?std::error::Error::source(&err),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "route invocation failed"
                );
                // What API Gateway sends back when a two-way route's integration fails.
                let body = json!({
                    "message": "Internal server error",
                    "connectionId": info.connection_id,
                    "requestId": request_id,
                });
                Some(Message::text(body.to_string()))
            }
        }
    }

    /// Runs `$disconnect` for a connection that ended with `closure`, unless
    /// the fault switch drops it.
    async fn disconnect(&self, info: &ConnectionInfo, closure: &Closure) {
        if self.drops_disconnects() {
            info!(
                connection_id = %info.connection_id,
                status_code = closure.status_code,
                "disconnected; $disconnect dropped by the fault switch"
            );
            return;
        }
        let event = events::disconnect(&self.options, info, closure.status_code, &closure.reason);
        let started = Instant::now();
        match self.functions.invoke("$disconnect", event).await {
            Ok(response) => info!(
                connection_id = %info.connection_id,
                status_code = closure.status_code,
                reason = %closure.reason,
                status = response.status_code,
                duration_ms = started.elapsed().as_millis() as u64,
                "disconnected"
            ),
            Err(err) => error!(
                connection_id = %info.connection_id,
                status_code = closure.status_code,
                error = %err,
                cause = ?std::error::Error::source(&err),
                "$disconnect failed"
            ),
        }
    }
}

/// Selects the route of a frame: its `type` when that is a string naming a
/// route key of [`ROUTES`], else `$default`, also for a body that is not JSON.
/// `$connect` and `$disconnect` are never selected by a frame.
pub fn select_route(body: &str) -> &'static Route {
    let frame_type = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| value.get("type").and_then(Value::as_str).map(str::to_owned));
    let selectable = |route: &&Route| !matches!(route.key, "$connect" | "$disconnect" | "$default");
    frame_type
        .and_then(|name| {
            ROUTES
                .iter()
                .filter(selectable)
                .find(|route| route.key == name)
        })
        .unwrap_or(&DEFAULT_ROUTE)
}

/// `$default`, as [`ROUTES`] declares it.
const DEFAULT_ROUTE: Route = Route {
    key: "$default",
    function: "ws-default",
    two_way: true,
};

/// A running emulator.
pub struct WebSocketServer {
    address: SocketAddr,
    gateway: Arc<WebSocketGateway>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl WebSocketServer {
    /// Serves the emulator on `listener`, invoking `functions`.
    ///
    /// # Errors
    ///
    /// When the listener has no local address.
    pub fn start(
        listener: TcpListener,
        functions: Arc<dyn WebSocketFunctions>,
        options: WebSocketOptions,
    ) -> Result<Self> {
        let address = listener
            .local_addr()
            .context("the WebSocket listener has no address")?;
        let gateway = Arc::new(WebSocketGateway {
            functions,
            drop_disconnects: AtomicBool::new(options.drop_disconnects),
            options,
            port: address.port(),
            connections: Mutex::new(HashMap::new()),
            tasks: TaskTracker::default(),
        });
        let app = router(Arc::clone(&gateway));
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
                warn!(error = %err, "the WebSocket emulator stopped with an error");
            }
        });
        info!(%address, stage = %gateway.options.stage, "WebSocket API started");
        Ok(Self {
            address,
            gateway,
            stop: Some(stop),
            server,
        })
    }

    /// Returns the bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Returns the shared state, which has the fault switch and the open connections.
    pub fn gateway(&self) -> &Arc<WebSocketGateway> {
        &self.gateway
    }

    /// Closes every connection with 1001 (running `$disconnect` unless it is
    /// switched off), waits for them, and stops serving.
    pub async fn stop(mut self) {
        let handles: Vec<ConnectionHandle> = self.gateway.lock().values().cloned().collect();
        for handle in handles {
            let close = Command::Close {
                code: 1001,
                reason: reason::GOING_AWAY,
                done: None,
            };
            let _ = handle.commands.send(close).await;
        }
        if !self.gateway.tasks.close_and_wait(SHUTDOWN_TIMEOUT).await {
            warn!(
                "connections still open after {} s; stopping anyway",
                SHUTDOWN_TIMEOUT.as_secs()
            );
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
        info!("WebSocket API stopped");
    }
}

fn router(gateway: Arc<WebSocketGateway>) -> Router {
    let stage = format!("/{}", gateway.options.stage);
    let connections = any(management::connection);
    Router::new()
        .route("/", any(upgrade::upgrade))
        .route(&stage, any(upgrade::upgrade))
        .route(&format!("{stage}/"), any(upgrade::upgrade))
        .route(&format!("{stage}/@connections/{{id}}"), connections.clone())
        .route("/@connections/{id}", connections)
        .route(
            &format!("{stage}/_control/drop-disconnects"),
            get(management::drop_disconnects_state).post(management::set_drop_disconnects),
        )
        .fallback(management::forbidden)
        .with_state(gateway)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_route_matches_route_keys_exactly() {
        let key = |body: &str| select_route(body).key;
        assert_eq!(key(r#"{"type":"message"}"#), "message");
        assert_eq!(key(r#"{"type":"subscribe"}"#), "subscribe");
        assert_eq!(key(r#"{"type":"unsubscribe"}"#), "unsubscribe");
        assert_eq!(
            key(r#"{"type":"ack-message-received"}"#),
            "ack-message-received"
        );
        assert_eq!(key(r#"{"type":"Message"}"#), "$default");
        assert_eq!(key(r#"{"type":"ping"}"#), "$default");
        assert_eq!(key(r#"{"type":"$connect"}"#), "$default");
        assert_eq!(key(r#"{"type":"$disconnect"}"#), "$default");
        assert_eq!(key(r#"{"type":7}"#), "$default");
        assert_eq!(key(r#"{"chat_id":"c"}"#), "$default");
        assert_eq!(key(r#"["message"]"#), "$default");
        assert_eq!(key("{not json"), "$default");
        assert_eq!(key(""), "$default");
    }

    #[test]
    fn default_route_is_in_the_route_table() {
        assert!(ROUTES.contains(&DEFAULT_ROUTE));
    }
}
