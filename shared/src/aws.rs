//! AWS SDK configuration, built once at init.
//!
//! The HTTPS client is rustls with ring, passed to the SDK instead of its
//! default client. Endpoints come from the SDK's standard variables
//! (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`, ...), so the same code
//! reaches AWS, dynoxide or moto's server.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Loads the SDK configuration from the environment, with the rustls HTTPS client.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// Builds the HTTPS client every SDK client uses.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Builds a DynamoDB client for `sdk_config`.
pub fn dynamodb_client(sdk_config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk_config)
}

/// Builds a Management API client that posts to `endpoint`
/// (`https://{api_id}.execute-api.{region}.amazonaws.com/{stage}` in AWS).
pub fn management_client(
    sdk_config: &SdkConfig,
    endpoint: &str,
) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk_config)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}
