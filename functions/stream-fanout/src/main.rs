//! Lambda entry point of `stream-fanout`, on the Messages table's stream.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::handlers::stream_fanout;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init::telemetry();
    let deps = shared::init::fanout_deps_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| {
        stream_fanout::handle(&deps, event.payload)
    }))
    .await
}
