//! Throughput of the message path on dynoxide, in one process: appends
//! (one sender, then 20 concurrent senders on one chat), the fan-out of one
//! message to a 256-member chat with every member subscribed, and inbox sync.
//!
//! Run with `cargo bench -p shared --bench throughput`; it prints one line
//! per figure. The figures depend on the machine and on dynoxide, so they
//! are records, not pass/fail thresholds.

#![allow(missing_docs, unreachable_pub, clippy::print_stdout)]

#[path = "../tests/fixture/mod.rs"]
mod fixture;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use fixture::App;

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

async fn sequential_appends(count: usize) {
    let app = App::new().await;
    app.chat("chat-bench", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice").await;
    let started = Instant::now();
    for i in 0..count {
        let frame = app
            .send("conn-alice", "chat-bench", &format!("m{i}"), None)
            .await;
        assert_eq!(frame["type"], "message-accepted");
    }
    let elapsed = started.elapsed();
    println!(
        "append, one sender: {count} messages in {:.2} s, {:.0} messages/s, {:.2} ms each",
        elapsed.as_secs_f64(),
        per_second(count, elapsed),
        elapsed.as_secs_f64() * 1000.0 / count as f64
    );
}

async fn concurrent_appends(senders: usize, rounds: usize) {
    let app = App::new().await;
    app.chat("chat-bench", "alice", &[]).await;
    for sender in 0..senders {
        app.connect("alice", &format!("conn-{sender}")).await;
    }
    let started = Instant::now();
    for round in 0..rounds {
        let sends = (0..senders).map(|sender| {
            let app = &app;
            async move {
                let frame = app
                    .send(
                        &format!("conn-{sender}"),
                        "chat-bench",
                        &format!("r{round}"),
                        None,
                    )
                    .await;
                assert_eq!(frame["type"], "message-accepted", "{frame}");
            }
        });
        futures::future::join_all(sends).await;
    }
    let elapsed = started.elapsed();
    let count = senders * rounds;
    println!(
        "append, {senders} concurrent senders on one chat: {count} messages in {:.2} s, {:.0} messages/s",
        elapsed.as_secs_f64(),
        per_second(count, elapsed)
    );
}

async fn fan_out(members: usize) {
    let app = App::new().await;
    let names: Vec<String> = (1..members).map(|i| format!("user{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    app.chat("chat-bench", "alice", &refs).await;
    app.connect("alice", "conn-alice").await;
    for name in &names {
        let connection = format!("conn-{name}");
        app.connect(name, &connection).await;
        app.subscribe(&connection, "chat-bench").await;
    }
    app.send("conn-alice", "chat-bench", "hello everyone", None)
        .await;
    let records = app.insert_records("chat-bench").await;

    let started = Instant::now();
    let response = app.fan_out(records).await;
    let elapsed = started.elapsed();
    assert!(response.batch_item_failures.is_empty());
    let pushes = app.management.posts().len();
    println!(
        "fan-out of one message to {members} members: {} inbox rows and {pushes} pushes in {:.1} ms",
        members - 1,
        elapsed.as_secs_f64() * 1000.0
    );
}

async fn inbox_sync(messages: usize) {
    let app = App::new().await;
    app.chat("chat-bench", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice").await;
    for i in 0..messages {
        app.send("conn-alice", "chat-bench", &format!("m{i}"), None)
            .await;
    }
    app.deliver("chat-bench").await;
    let started = Instant::now();
    let (status, page) = app
        .call("GET", "/inbox/sync?limit=100", Some("bob"), None)
        .await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(messages.min(100))
    );
    println!(
        "inbox sync of {} messages (one page, hydrated): {:.1} ms",
        messages.min(100),
        elapsed.as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    sequential_appends(500).await;
    concurrent_appends(20, 10).await;
    fan_out(256).await;
    inbox_sync(100).await;
}
