//! Builds each function's dependencies, once, during the Lambda init phase.
//!
//! `*_from_env` read exactly the variables of [`crate::config::FUNCTION_ENVIRONMENT`],
//! besides the SDK's own `AWS_*` variables. The other constructors take those
//! values as arguments, so the local stack builds the same dependencies
//! against its own endpoints.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::attachments::{AttachmentBucket, s3_client};
use crate::auth::Authenticator;
use crate::aws::{dynamodb_client, load_sdk_config, management_client};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, TableNames, optional, required, var};
use crate::handlers::{FanoutDeps, HttpDeps, UploadDeps, WsDeps};
use crate::push::Pusher;
use crate::store::{DynamoInboxWriter, Store};

/// Sets up logging as the Lambda runtime does: JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn telemetry() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Builds the dependencies of the WebSocket route handlers, from the environment.
pub async fn ws_deps_from_env() -> Result<WsDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    Ok(ws_deps(
        &load_sdk_config().await,
        tables,
        Arc::new(SystemClock),
    ))
}

/// Builds the dependencies of `stream-fanout`, from the environment.
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

/// Builds the dependencies of `http-api`, from the environment. With `JWKS_URL`
/// set, this fetches the JWKS.
pub async fn http_deps_from_env() -> Result<HttpDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    let endpoint = required(var::WEBSOCKET_ENDPOINT)?;
    let bucket = required(var::ATTACHMENTS_BUCKET)?;
    let auth = Authenticator::from_env().await?;
    let sdk_config = load_sdk_config().await;
    let attachments = attachment_bucket_from_env(&sdk_config, bucket);
    Ok(http_deps(
        &sdk_config,
        tables,
        &endpoint,
        auth,
        attachments,
        Arc::new(SystemClock),
    ))
}

/// Builds the dependencies of `upload-complete`, from the environment.
pub async fn upload_deps_from_env() -> Result<UploadDeps, ConfigError> {
    let tables = TableNames::from_env()?;
    let bucket = required(var::ATTACHMENTS_BUCKET)?;
    let sdk_config = load_sdk_config().await;
    let attachments = attachment_bucket_from_env(&sdk_config, bucket);
    Ok(upload_deps(
        &sdk_config,
        tables,
        attachments,
        Arc::new(SystemClock),
    ))
}

/// Builds the attachments bucket through an S3 client for `sdk_config`, with
/// path-style addressing when the SDK's standard `AWS_ENDPOINT_URL_S3` or
/// `AWS_ENDPOINT_URL` names an S3-compatible server (see [`s3_client`]).
fn attachment_bucket_from_env(sdk_config: &SdkConfig, bucket: String) -> AttachmentBucket {
    let endpoint = optional(AWS_ENDPOINT_URL_S3).or_else(|| optional(AWS_ENDPOINT_URL));
    AttachmentBucket::new(s3_client(sdk_config, endpoint.as_deref()), bucket)
}

/// The SDK's S3 endpoint override. The SDK reads it itself; init reads it
/// only to choose path-style addressing.
const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
/// The SDK's endpoint override for every service, used when no
/// service-specific one is set.
const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// Builds the dependencies of the WebSocket route handlers.
pub fn ws_deps(sdk_config: &SdkConfig, tables: TableNames, clock: Arc<dyn Clock>) -> WsDeps {
    WsDeps {
        store: Store::new(dynamodb_client(sdk_config), tables),
        clock,
    }
}

/// Builds the dependencies of `stream-fanout`, posting to the Management API at
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

/// Builds the dependencies of `http-api`, posting to the Management API at
/// `websocket_endpoint`.
pub fn http_deps(
    sdk_config: &SdkConfig,
    tables: TableNames,
    websocket_endpoint: &str,
    auth: Authenticator,
    attachments: AttachmentBucket,
    clock: Arc<dyn Clock>,
) -> HttpDeps {
    HttpDeps {
        store: Store::new(dynamodb_client(sdk_config), tables),
        clock,
        pusher: Pusher::new(management_client(sdk_config, websocket_endpoint)),
        auth,
        attachments,
    }
}

/// Builds the dependencies of `upload-complete`. Build `attachments` with
/// [`s3_client`], passing the endpoint of an S3-compatible server if there is one.
pub fn upload_deps(
    sdk_config: &SdkConfig,
    tables: TableNames,
    attachments: AttachmentBucket,
    clock: Arc<dyn Clock>,
) -> UploadDeps {
    UploadDeps {
        store: Store::new(dynamodb_client(sdk_config), tables),
        attachments,
        clock,
    }
}
