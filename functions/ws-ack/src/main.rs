//! Lambda entry point of `ws-ack`.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::handlers::ws_ack;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init::telemetry();
    let deps = shared::init::ws_deps_from_env().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| ws_ack::handle(&deps, event.payload),
    ))
    .await
}
