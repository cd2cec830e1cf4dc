//! The SDK configuration of the local stack: every client reaches a server on
//! this machine, and none ever reaches AWS.
//!
//! DynamoDB, DynamoDB Streams and S3 get their endpoints from
//! [`LocalEndpoints`]; the Management API client gets the WebSocket
//! emulator's URL from `shared::init`. Credentials are the fixed local pair
//! ([`ACCESS_KEY_ID`], [`SECRET_ACCESS_KEY`]), which the embedded S3 server
//! checks signatures against and the other emulators accept, so no credential
//! chain runs: no profile, no instance metadata.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// Access key id of the local stack; the embedded S3 server accepts only it.
pub const ACCESS_KEY_ID: &str = "local";
/// Secret access key that goes with [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "local-secret";

/// The endpoints of the servers that hold the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoints {
    /// DynamoDB, `http://127.0.0.1:{port}`.
    pub dynamodb: String,
    /// DynamoDB Streams; the same server as DynamoDB unless set apart.
    pub dynamodb_streams: String,
    /// S3, path-style.
    pub s3: String,
}

impl LoadServiceConfig for LocalEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        // The SDK requests `AWS_ENDPOINT_URL` with the service id, which the
        // environment loader reads as `AWS_ENDPOINT_URL_{SERVICE}`.
        if key.env() != "AWS_ENDPOINT_URL" {
            return None;
        }
        match key.service_id() {
            "DynamoDB" => Some(self.dynamodb.clone()),
            "DynamoDB Streams" => Some(self.dynamodb_streams.clone()),
            "S3" => Some(self.s3.clone()),
            _ => None,
        }
    }
}

/// Returns the static local credentials.
pub fn credentials() -> Credentials {
    Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "chat-local")
}

/// Builds the SDK configuration for `region`, with the local credentials, the
/// rustls HTTP client of `shared` and `endpoints`.
pub async fn sdk_config(region: &str, endpoints: LocalEndpoints) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials())
        .http_client(shared::aws::https_client())
        .load()
        .await
        .into_builder()
        .service_config(endpoints)
        .build()
}

/// Builds a DynamoDB Streams client for `sdk_config`.
pub fn streams_client(sdk_config: &SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(sdk_config)
}
