//! Lambda entry point of `ws-default`: answers frames that matched no other route.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::handlers::ws_default;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init::telemetry();
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| ws_default::handle(event.payload),
    ))
    .await
}
