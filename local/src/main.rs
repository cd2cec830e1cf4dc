//! `chat-local`: the whole chat backend on this machine. See `--help`.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use chat_local::banner::{banner, ready_line};
use chat_local::cli::Args;
use chat_local::stack::Stack;
use clap::Parser;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;
use tracing_subscriber::EnvFilter;

/// The log filter when `RUST_LOG` is not set: the stack at info, the SDK at
/// warn. dynoxide logs every 4xx response (a missing table at start) at warn,
/// so it logs errors only. s3s logs every rejected signature at error, so it
/// logs nothing, and the stack logs each S3 request itself.
const DEFAULT_LOG_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,\
    aws_sdk_dynamodb=warn,aws_sdk_s3=warn,hyper=warn,dynoxide=error,s3s=off,s3s_fs=off";

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    init_logging();
    let started = Instant::now();
    // Listening before anything starts: a signal that arrives during startup
    // waits for it to finish, then stops the stack, instead of killing the
    // process with the default action.
    let mut stop_signals = StopSignals::listen()?;
    let options = args.into_options()?;
    let jwt_secret = options.jwt_secret.clone();
    let stack = Stack::start(options).await?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", ready_line(stack.urls())?)?;
    writeln!(
        stdout,
        "{}",
        banner(stack.urls(), &jwt_secret, started.elapsed())?
    )?;
    stdout.flush()?;
    drop(stdout);

    stop_signals.wait().await;
    info!("stopping");
    stack.stop().await;
    info!("stopped");
    Ok(())
}

/// Text logs on standard error, in color on a terminal.
fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// SIGINT (Ctrl-C) and SIGTERM.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn listen() -> Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT failed")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM failed")?,
        })
    }

    /// Waits for the first of them.
    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
