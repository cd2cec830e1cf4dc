//! Builds each function's dependencies, once, during the Lambda init phase.
//!
//! `*_from_env` read exactly the variables of [`crate::config::FUNCTION_ENVIRONMENT`];
//! the other constructors take those values as arguments, so the local stack
//! builds the same dependencies against its own endpoints.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::auth::Authenticator;
use crate::aws::{dynamodb_client, load_sdk_config, management_client};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, TableNames, required, var};
use crate::handlers::{FanoutDeps, HttpDeps, WsDeps};
use crate::push::Pusher;
use crate::store::{DynamoInboxWriter, Store};

/// Sets up logging as the Lambda runtime does: JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn telemetry() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The dependencies of the WebSocket route handlers, from the environment.
pub async fn ws_deps_from_env() -> Result<WsDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    Ok(ws_deps(
        &load_sdk_config().await,
        tables,
        Arc::new(SystemClock),
    ))
}

/// The dependencies of `stream-fanout`, from the environment.
pub async fn fanout_deps_from_env() -> Result<FanoutDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    let endpoint = required(var::WEBSOCKET_ENDPOINT)?;
    let sdk_config = load_sdk_config().await;
    Ok(fanout_deps(
        &sdk_config,
        tables,
        &endpoint,
        Arc::new(SystemClock),
    ))
}

/// The dependencies of `http-api`, from the environment.
pub async fn http_deps_from_env() -> Result<HttpDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    let endpoint = required(var::WEBSOCKET_ENDPOINT)?;
    let auth = Authenticator::from_env()?;
    let sdk_config = load_sdk_config().await;
    Ok(http_deps(
        &sdk_config,
        tables,
        &endpoint,
        auth,
        Arc::new(SystemClock),
    ))
}

/// The dependencies of the WebSocket route handlers.
pub fn ws_deps(sdk_config: &SdkConfig, tables: TableNames, clock: Arc<dyn Clock>) -> WsDeps {
    WsDeps {
        store: Store::new(dynamodb_client(sdk_config), tables),
        clock,
    }
}

/// The dependencies of `stream-fanout`, posting to the Management API at
/// `websocket_endpoint`.
pub fn fanout_deps(
    sdk_config: &SdkConfig,
    tables: TableNames,
    websocket_endpoint: &str,
    clock: Arc<dyn Clock>,
) -> FanoutDeps {
    let store = Store::new(dynamodb_client(sdk_config), tables);
    FanoutDeps {
        inbox: Arc::new(DynamoInboxWriter::new(store.clone())),
        pusher: Pusher::new(management_client(sdk_config, websocket_endpoint)),
        store,
        clock,
    }
}

/// The dependencies of `http-api`, posting to the Management API at
/// `websocket_endpoint`.
pub fn http_deps(
    sdk_config: &SdkConfig,
    tables: TableNames,
    websocket_endpoint: &str,
    auth: Authenticator,
    clock: Arc<dyn Clock>,
) -> HttpDeps {
    HttpDeps {
        store: Store::new(dynamodb_client(sdk_config), tables),
        clock,
        pusher: Pusher::new(management_client(sdk_config, websocket_endpoint)),
        auth,
    }
}
