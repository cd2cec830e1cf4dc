//! Lambda entry point of `http-api`, behind the HTTP API.

use lambda_http::{Error, Request, service_fn};
use shared::handlers::http;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init::telemetry();
    let deps = shared::init::http_deps_from_env().await?;
    lambda_http::run(service_fn(|request: Request| http::handle(&deps, request))).await
}
