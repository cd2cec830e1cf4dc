//! Builds each function's dependencies from the environment, once, during
//! the Lambda init phase.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::aws::{dynamodb_client, load_sdk_config, management_client};
use crate::clock::SystemClock;
use crate::config::{ConfigError, TableNames, required, var};
use crate::handlers::{FanoutDeps, HttpDeps, WsDeps};
use crate::push::Pusher;
use crate::store::{DynamoInboxWriter, Store};

/// Sets up logging as the Lambda runtime does: JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn telemetry() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The dependencies of the WebSocket route handlers.
pub async fn ws_deps() -> Result<WsDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    let sdk_config = load_sdk_config().await;
    Ok(WsDeps {
        store: Store::new(dynamodb_client(&sdk_config), tables),
        clock: Arc::new(SystemClock),
    })
}

/// The dependencies of `stream-fanout`.
pub async fn fanout_deps() -> Result<FanoutDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    let endpoint = required(var::WEBSOCKET_ENDPOINT)?;
    let sdk_config = load_sdk_config().await;
    let store = Store::new(dynamodb_client(&sdk_config), tables);
    Ok(FanoutDeps {
        inbox: Arc::new(DynamoInboxWriter::new(store.clone())),
        pusher: Pusher::new(management_client(&sdk_config, &endpoint)),
        store,
        clock: Arc::new(SystemClock),
    })
}

/// The dependencies of `http-api`.
pub async fn http_deps() -> Result<HttpDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    let endpoint = required(var::WEBSOCKET_ENDPOINT)?;
    let auth = Authenticator::from_env()?;
    let sdk_config = load_sdk_config().await;
    Ok(HttpDeps {
        store: Store::new(dynamodb_client(&sdk_config), tables),
        clock: Arc::new(SystemClock),
        pusher: Pusher::new(management_client(&sdk_config, &endpoint)),
        auth,
    })
}
