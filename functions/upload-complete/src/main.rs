//! Lambda entry point of `upload-complete`, notified by S3 when an attachment's object is created.

use aws_lambda_events::s3::S3Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::handlers::upload_complete;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init::telemetry();
    let deps = shared::init::upload_deps_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<S3Event>| {
        upload_complete::handle(&deps, event.payload)
    }))
    .await
}
