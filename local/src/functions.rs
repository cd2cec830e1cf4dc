//! The functions the emulators invoke.
//!
//! Each emulator takes its function as a trait object and hands it the event
//! as JSON, the form Lambda delivers, so that a test can record exactly what
//! the emulator sends. [`Functions`] runs the real handlers of `shared` on
//! that JSON, each in its own task with the timeout `template.yaml` gives the
//! function, so that a panic or a hung handler fails one invocation, as in
//! Lambda, and not the emulator.

use std::future::Future;
use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_lambda_events::s3::S3Event;
use futures::future::BoxFuture;
use lambda_http::request::LambdaRequest;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::handlers::websocket::ROUTES;
use shared::handlers::{
    FanoutDeps, HttpDeps, UploadDeps, WsDeps, http, stream_fanout, upload_complete, ws_ack,
    ws_connect, ws_default, ws_disconnect, ws_message, ws_subscribe,
};

/// An invocation in progress.
pub type Invocation<'a, T> = BoxFuture<'a, Result<T, FunctionError>>;

/// The response of `http-api`.
pub type HttpResponse = ::http::Response<lambda_http::Body>;

/// The WebSocket API's functions, one per route.
pub trait WebSocketFunctions: Send + Sync + 'static {
    /// Invokes the function of `route_key` with `event`, an
    /// `ApiGatewayWebsocketProxyRequest` as JSON.
    fn invoke(&self, route_key: &str, event: Value) -> Invocation<'_, ApiGatewayProxyResponse>;
}

/// The HTTP API's function, `http-api`.
pub trait HttpFunction: Send + Sync + 'static {
    /// Invokes it with `event`, an `ApiGatewayV2httpRequest` as JSON.
    fn invoke(&self, event: Value) -> Invocation<'_, HttpResponse>;
}

/// The function of the Messages stream, `stream-fanout`.
pub trait StreamFunction: Send + Sync + 'static {
    /// Invokes it with `event`, a DynamoDB Streams batch as JSON.
    fn invoke(&self, event: Value) -> Invocation<'_, DynamoDbEventResponse>;
}

/// The function of the attachments bucket's `ObjectCreated` notifications.
pub trait UploadFunction: Send + Sync + 'static {
    /// Invokes it with `event`, an `S3Event` as JSON.
    fn invoke(&self, event: Value) -> Invocation<'_, ()>;
}

/// A failed invocation: what Lambda reports as a function error.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The event does not deserialize into the handler's event type.
    #[error("the event for {function} is not a valid {event_type}")]
    InvalidEvent {
        /// Function name.
        function: &'static str,
        /// The event type the handler takes.
        event_type: &'static str,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// No function serves this WebSocket route.
    #[error("no function serves route {0}")]
    UnknownRoute(String),
    /// The handler returned an error.
    #[error("{function} returned an error")]
    Failed {
        /// Function name.
        function: &'static str,
        /// The handler's error.
        #[source]
        source: lambda_runtime::Error,
    },
    /// The handler panicked.
    #[error("{function} panicked")]
    Panicked {
        /// Function name.
        function: &'static str,
    },
    /// The handler ran past its timeout and was cancelled.
    #[error("{function} timed out after {} s", timeout.as_secs())]
    TimedOut {
        /// Function name.
        function: &'static str,
        /// The function's timeout.
        timeout: Duration,
    },
}

/// Timeouts of the functions, as `template.yaml` sets them.
pub mod timeout {
    use std::time::Duration;

    /// `ws-connect`, `ws-disconnect`, `ws-message`, `ws-subscribe`, `ws-ack`.
    pub const WEBSOCKET_ROUTE: Duration = Duration::from_secs(10);
    /// `ws-default`.
    pub const WEBSOCKET_DEFAULT: Duration = Duration::from_secs(5);
    /// `http-api`: 29 s, also API Gateway's integration timeout.
    pub const HTTP_API: Duration = Duration::from_secs(29);
    /// `stream-fanout`.
    pub const STREAM_FANOUT: Duration = Duration::from_secs(60);
    /// `upload-complete`.
    pub const UPLOAD_COMPLETE: Duration = Duration::from_secs(30);
}

/// The real handlers, with their dependencies built by `shared::init`.
#[derive(Clone)]
pub struct Functions {
    ws: WsDeps,
    http: HttpDeps,
    fanout: FanoutDeps,
    upload: UploadDeps,
}

impl Functions {
    /// Handlers running on these dependencies.
    pub fn new(ws: WsDeps, http: HttpDeps, fanout: FanoutDeps, upload: UploadDeps) -> Self {
        Self {
            ws,
            http,
            fanout,
            upload,
        }
    }
}

/// The function serving a WebSocket route key, from the route table of
/// `shared`, which `template.yaml` is tested against.
pub fn websocket_function(route_key: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|route| route.key == route_key)
        .map(|route| route.function)
}

impl WebSocketFunctions for Functions {
    fn invoke(&self, route_key: &str, event: Value) -> Invocation<'_, ApiGatewayProxyResponse> {
        let route_key = route_key.to_owned();
        Box::pin(async move {
            let function = websocket_function(&route_key)
                .ok_or_else(|| FunctionError::UnknownRoute(route_key.clone()))?;
            let event: ApiGatewayWebsocketProxyRequest =
                parse(function, "ApiGatewayWebsocketProxyRequest", event)?;
            let deps = self.ws.clone();
            let handler: BoxFuture<
                'static,
                Result<ApiGatewayProxyResponse, lambda_runtime::Error>,
            > = match function {
                "ws-connect" => Box::pin(async move { ws_connect::handle(&deps, event).await }),
                "ws-disconnect" => {
                    Box::pin(async move { ws_disconnect::handle(&deps, event).await })
                }
                "ws-message" => Box::pin(async move { ws_message::handle(&deps, event).await }),
                "ws-subscribe" => Box::pin(async move { ws_subscribe::handle(&deps, event).await }),
                "ws-ack" => Box::pin(async move { ws_ack::handle(&deps, event).await }),
                "ws-default" => Box::pin(ws_default::handle(event)),
                _ => return Err(FunctionError::UnknownRoute(route_key)),
            };
            let timeout = if function == "ws-default" {
                timeout::WEBSOCKET_DEFAULT
            } else {
                timeout::WEBSOCKET_ROUTE
            };
            run(function, timeout, handler).await
        })
    }
}

impl HttpFunction for Functions {
    fn invoke(&self, event: Value) -> Invocation<'_, HttpResponse> {
        Box::pin(async move {
            let event = parse("http-api", "ApiGatewayV2httpRequest", event)?;
            let request: lambda_http::Request = LambdaRequest::ApiGatewayV2(event).into();
            let deps = self.http.clone();
            run("http-api", timeout::HTTP_API, async move {
                http::handle(&deps, request).await
            })
            .await
        })
    }
}

impl StreamFunction for Functions {
    fn invoke(&self, event: Value) -> Invocation<'_, DynamoDbEventResponse> {
        Box::pin(async move {
            let event: DynamoDbEvent = parse("stream-fanout", "dynamodb::Event", event)?;
            let deps = self.fanout.clone();
            run("stream-fanout", timeout::STREAM_FANOUT, async move {
                stream_fanout::handle(&deps, event).await
            })
            .await
        })
    }
}

impl UploadFunction for Functions {
    fn invoke(&self, event: Value) -> Invocation<'_, ()> {
        Box::pin(async move {
            let event: S3Event = parse("upload-complete", "S3Event", event)?;
            let deps = self.upload.clone();
            run("upload-complete", timeout::UPLOAD_COMPLETE, async move {
                upload_complete::handle(&deps, event).await
            })
            .await
        })
    }
}

fn parse<T: DeserializeOwned>(
    function: &'static str,
    event_type: &'static str,
    event: Value,
) -> Result<T, FunctionError> {
    serde_json::from_value(event).map_err(|source| FunctionError::InvalidEvent {
        function,
        event_type,
        source,
    })
}

/// Runs `handler` in a task of its own, cancelled after `timeout`.
async fn run<T, F>(
    function: &'static str,
    timeout: Duration,
    handler: F,
) -> Result<T, FunctionError>
where
    F: Future<Output = Result<T, lambda_runtime::Error>> + Send + 'static,
    T: Send + 'static,
{
    let task = tokio::spawn(handler);
    let abort = task.abort_handle();
    match tokio::time::timeout(timeout, task).await {
        Err(_) => {
            abort.abort();
            Err(FunctionError::TimedOut { function, timeout })
        }
        Ok(Err(_)) => Err(FunctionError::Panicked { function }),
        Ok(Ok(Err(source))) => Err(FunctionError::Failed { function, source }),
        Ok(Ok(Ok(output))) => Ok(output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_handler_here() {
        let handled = [
            "ws-connect",
            "ws-disconnect",
            "ws-message",
            "ws-subscribe",
            "ws-ack",
            "ws-default",
        ];
        for route in ROUTES {
            assert!(
                handled.contains(&route.function),
                "{} of route {} has no handler in the local stack",
                route.function,
                route.key
            );
            assert_eq!(websocket_function(route.key), Some(route.function));
        }
    }
}
