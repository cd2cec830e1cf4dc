//! The API Gateway HTTP API emulator: every request becomes a payload 2.0
//! event for `http-api` ([`event`]), CORS responses follow the API's
//! `CorsConfiguration` ([`cors`]), and `POST /dev/token` issues
//! development tokens ([`dev_token`]).

pub mod cors;
pub mod dev_token;
pub mod event;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use self::cors::Cors;
use self::event::{EventSource, http_event};
use crate::functions::{FunctionError, HttpFunction, HttpResponse};

/// API Gateway's maximum HTTP API request payload.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Settings of the emulated API.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `requestContext.apiId`.
    pub api_id: String,
    /// `requestContext.accountId`.
    pub account_id: String,
    /// The origin CORS allows, or `*`.
    pub allowed_origin: String,
    /// The HS256 secret `POST /dev/token` signs with.
    pub jwt_secret: Vec<u8>,
}

struct HttpGateway {
    function: Arc<dyn HttpFunction>,
    options: HttpOptions,
    cors: Cors,
    port: u16,
}

/// A running emulator.
pub struct HttpServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl HttpServer {
    /// Serves the emulator on `listener`, invoking `function`.
    ///
    /// # Errors
    ///
    /// When the listener has no local address.
    pub fn start(
        listener: TcpListener,
        function: Arc<dyn HttpFunction>,
        options: HttpOptions,
    ) -> Result<Self> {
        let address = listener
            .local_addr()
            .context("the HTTP listener has no address")?;
        let gateway = Arc::new(HttpGateway {
            function,
            cors: Cors::new(&options.allowed_origin),
            options,
            port: address.port(),
        });
        let app = Router::new().fallback(handle).with_state(gateway);
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
                warn!(error = %err, "the HTTP API emulator stopped with an error");
            }
        });
        info!(%address, "HTTP API started");
        Ok(Self {
            address,
            stop: Some(stop),
            server,
        })
    }

    /// Returns the bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving, after the requests in progress.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
        info!("HTTP API stopped");
    }
}

async fn handle(
    State(gateway): State<Arc<HttpGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    if Cors::is_preflight(&parts.method, &parts.headers) {
        return gateway.cors.preflight(&parts.headers);
    }

    let mut response = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Err(_) => message_response(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        Ok(body) if parts.uri.path() == dev_token::PATH => {
            if parts.method == Method::POST {
                dev_token::issue(&gateway.options.jwt_secret, &body)
            } else {
                message_response(StatusCode::NOT_FOUND, "Not Found")
            }
        }
        Ok(body) => {
            let source = EventSource {
                account_id: gateway.options.account_id.clone(),
                api_id: gateway.options.api_id.clone(),
                source_ip: peer.ip().to_string(),
                port: gateway.port,
            };
            let event = http_event(&parts, &body, &source);
            match gateway.function.invoke(event).await {
                Ok(response) => into_axum_response(response),
                Err(err) => function_failure(&err),
            }
        }
    };
    gateway.cors.apply(&parts.headers, &mut response);
    info!(
        method = %parts.method,
        path = parts.uri.path(),
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        "http request"
    );
    response
}

/// Builds the response API Gateway returns when the function fails: 503
/// after a timeout, 500 otherwise.
fn function_failure(err: &FunctionError) -> Response {
    error!(
        error = %err,
        cause = ?std::error::Error::source(err),
        "http-api invocation failed"
    );
    match err {
        FunctionError::TimedOut { .. } => {
            message_response(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        _ => message_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// Converts a function's response into the HTTP response.
pub(crate) fn into_axum_response(response: HttpResponse) -> Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(text) => Body::from(text),
        lambda_http::Body::Binary(bytes) => Body::from(bytes),
        _ => Body::empty(),
    };
    Response::from_parts(parts, body)
}

fn message_response(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}
