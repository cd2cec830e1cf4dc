//! Lambda entry point of `ws-disconnect`.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::handlers::ws_disconnect;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init::telemetry();
    let deps = shared::init::ws_deps_from_env().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            ws_disconnect::handle(&deps, event.payload)
        },
    ))
    .await
}
