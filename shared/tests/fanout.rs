//! `stream-fanout`: Inbox rows, pushes, 410 cleanup, retries and partial
//! batch failures, against dynoxide and the Management API stand-in.

mod fixture;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::dynamodb::Event;
use fixture::{App, s};
use futures::future::BoxFuture;
use shared::domain::InboxEntry;
use shared::handlers::stream_fanout;
use shared::store::{DynamoInboxWriter, InboxWriter, Store, StoreError};

/// Leaves the first entry of each of its first `failures` batches unprocessed,
/// as DynamoDB does under load, and writes the rest.
struct Unprocessing {
    inner: DynamoInboxWriter,
    failures: usize,
    calls: AtomicUsize,
}

impl InboxWriter for Unprocessing {
    fn put_batch<'a>(
        &'a self,
        entries: &'a [InboxEntry],
    ) -> BoxFuture<'a, Result<Vec<InboxEntry>, StoreError>> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.failures && !entries.is_empty() {
                let mut left = self.inner.put_batch(&entries[1..]).await?;
                left.push(entries[0].clone());
                return Ok(left);
            }
            self.inner.put_batch(entries).await
        })
    }
}

/// Fails every write of the message `message_id`, and only those.
struct FailingFor {
    inner: DynamoInboxWriter,
    message_id: Arc<Mutex<String>>,
}

impl InboxWriter for FailingFor {
    fn put_batch<'a>(
        &'a self,
        entries: &'a [InboxEntry],
    ) -> BoxFuture<'a, Result<Vec<InboxEntry>, StoreError>> {
        Box::pin(async move {
            let failing = self.message_id.lock().unwrap().clone();
            if entries.iter().any(|entry| entry.message_id == failing) {
                // Everything stays unprocessed, so the retries run out.
                return Ok(entries.to_vec());
            }
            self.inner.put_batch(entries).await
        })
    }
}

async fn app_with(make: impl FnOnce(Store) -> Arc<dyn InboxWriter>) -> App {
    let db = support::dynoxide().await;
    let store = Store::new(db.client.clone(), db.tables.clone());
    App::with_inbox(db, Some(make(store))).await
}

#[tokio::test]
async fn insert_writes_inbox_rows_for_everyone_but_the_sender() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob", "carol"]).await;
    app.connect("alice", "conn-alice-0001").await;
    let accepted = app
        .send("conn-alice-0001", "chat-example", "hi", None)
        .await;

    let response = app.deliver("chat-example").await;

    assert!(response.batch_item_failures.is_empty());
    let rows = app.scan(&app.db.tables.inbox).await;
    let mut recipients: Vec<&str> = rows.iter().map(|row| s(row, "recipient_id")).collect();
    recipients.sort_unstable();
    assert_eq!(recipients, ["bob", "carol"]);
    for row in &rows {
        assert_eq!(s(row, "message_id"), accepted["message_id"]);
        assert_eq!(s(row, "chat_id"), "chat-example");
    }
}

#[tokio::test]
async fn insert_pushes_message_to_subscribed_connections() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob", "carol"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("bob", "conn-bob-0001").await;
    app.connect("carol", "conn-carol-0001").await;
    app.subscribe("conn-alice-0001", "chat-example").await;
    app.subscribe("conn-bob-0001", "chat-example").await;
    let accepted = app
        .send("conn-alice-0001", "chat-example", "hi", None)
        .await;

    app.deliver("chat-example").await;

    let mut posts = app.management.posts();
    posts.sort_by(|a, b| a.0.cmp(&b.0));
    let targets: Vec<&str> = posts.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        targets,
        ["conn-alice-0001", "conn-bob-0001"],
        "carol did not subscribe"
    );
    for (_, frame) in &posts {
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["message_id"], accepted["message_id"]);
        assert_eq!(frame["seq"], 1);
        assert_eq!(frame["sender_id"], "alice");
        assert_eq!(frame["content"], "hi");
        assert_eq!(frame["created_at"], fixture::START);
    }
}

#[tokio::test]
async fn batch_event_handles_each_kind_of_record() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("bob", "conn-bob-0001").await;
    app.subscribe("conn-bob-0001", "chat-example").await;
    let event: Event = support::event("stream-fanout-batch.json");
    assert_eq!(event.records.len(), 5);

    let mut outcomes = Vec::new();
    for record in &event.records {
        outcomes.push(
            stream_fanout::handle_record(&app.fanout, record)
                .await
                .unwrap(),
        );
    }

    assert!(matches!(
        outcomes[0],
        stream_fanout::RecordOutcome::Delivered { inbox_rows: 1, .. }
    ));
    assert!(matches!(
        outcomes[1],
        stream_fanout::RecordOutcome::Updated(_)
    ));
    for skipped in &outcomes[2..] {
        assert_eq!(*skipped, stream_fanout::RecordOutcome::Skipped);
    }
    let posts = app.management.posts();
    let types: Vec<&str> = posts
        .iter()
        .map(|(_, f)| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["message", "message-updated"]);
    assert_eq!(posts[1].1["upload_status"], "uploaded");
    let inbox = app.scan(&app.db.tables.inbox).await;
    assert_eq!(inbox.len(), 1, "only the INSERT writes Inbox rows");

    let response = stream_fanout::handle(&app.fanout, event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn gone_connection_is_deleted_with_its_subscriptions() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.chat("chat-other", "bob", &[]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("bob", "conn-bob-0001").await;
    app.subscribe("conn-alice-0001", "chat-example").await;
    app.subscribe("conn-bob-0001", "chat-example").await;
    app.subscribe("conn-bob-0001", "chat-other").await;
    app.management.set_gone("conn-bob-0001");
    app.clock.advance(chrono::TimeDelta::minutes(1));
    app.send("conn-alice-0001", "chat-example", "hi", None)
        .await;

    let response = app.deliver("chat-example").await;

    assert!(
        response.batch_item_failures.is_empty(),
        "a gone connection is no failure"
    );
    assert_eq!(app.management.gone_posts(), ["conn-bob-0001"]);
    let connections = app.scan(&app.db.tables.connections).await;
    assert_eq!(connections.len(), 1);
    assert_eq!(s(&connections[0], "connection_id"), "conn-alice-0001");
    let subscriptions = app.scan(&app.db.tables.subscriptions).await;
    assert_eq!(
        subscriptions.len(),
        1,
        "both of bob's subscriptions are gone"
    );
    assert_eq!(s(&subscriptions[0], "connection_id"), "conn-alice-0001");
    let inbox = app.scan(&app.db.tables.inbox).await;
    assert_eq!(inbox.len(), 1, "bob still has his Inbox row");
}

#[tokio::test]
async fn gone_connection_that_just_opened_is_kept() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("bob", "conn-bob-0001").await;
    app.subscribe("conn-bob-0001", "chat-example").await;
    app.management.set_gone("conn-bob-0001");
    app.send("conn-alice-0001", "chat-example", "hi", None)
        .await;

    app.deliver("chat-example").await;

    assert_eq!(app.management.gone_posts(), ["conn-bob-0001"]);
    assert_eq!(
        app.scan(&app.db.tables.connections).await.len(),
        2,
        "a 410 right after $connect may have raced the opening"
    );
    assert_eq!(app.scan(&app.db.tables.subscriptions).await.len(), 1);
}

#[tokio::test]
async fn expired_subscriptions_get_no_push() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("bob", "conn-bob-0001").await;
    app.subscribe("conn-bob-0001", "chat-example").await;
    app.clock.advance(chrono::TimeDelta::hours(3));
    app.connect("alice", "conn-alice-0001").await;
    app.send("conn-alice-0001", "chat-example", "hi", None)
        .await;

    app.deliver("chat-example").await;

    assert!(app.management.posts().is_empty());
    assert!(
        app.management.gone_posts().is_empty(),
        "expired rows are filtered, not posted"
    );
}

#[tokio::test]
async fn unprocessed_items_are_retried() {
    let app = app_with(|store| {
        Arc::new(Unprocessing {
            inner: DynamoInboxWriter::new(store),
            failures: 3,
            calls: AtomicUsize::new(0),
        })
    })
    .await;
    let members: Vec<String> = (0..30).map(|i| format!("user{i:02}")).collect();
    let member_refs: Vec<&str> = members.iter().map(String::as_str).collect();
    app.chat("chat-big", "alice", &member_refs).await;
    app.connect("alice", "conn-alice-0001").await;
    app.send("conn-alice-0001", "chat-big", "hi all", None)
        .await;

    let records = app.insert_records("chat-big").await;
    let event: Event = serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();

    let outcome = stream_fanout::handle_record(&app.fanout, &event.records[0]).await;

    match outcome {
        Ok(stream_fanout::RecordOutcome::Delivered { inbox_rows, .. }) => {
            assert_eq!(inbox_rows, 30)
        }
        other => panic!("expected a delivery, got {other:?}"),
    }
    let rows = app.scan(&app.db.tables.inbox).await;
    assert_eq!(
        rows.len(),
        30,
        "every unprocessed row was written on a retry"
    );
}

#[tokio::test]
async fn replayed_record_creates_no_duplicate_rows() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.send("conn-alice-0001", "chat-example", "hi", None)
        .await;
    let records = app.insert_records("chat-example").await;

    app.fan_out(records.clone()).await;
    app.fan_out(records).await;

    assert_eq!(app.scan(&app.db.tables.inbox).await.len(), 1);
}

#[tokio::test]
async fn failing_record_is_reported_alone_and_later_records_wait() {
    let failing = Arc::new(Mutex::new(String::new()));
    let writer_failing = Arc::clone(&failing);
    let app = app_with(move |store| {
        Arc::new(FailingFor {
            inner: DynamoInboxWriter::new(store),
            message_id: writer_failing,
        })
    })
    .await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("bob", "conn-bob-0001").await;
    app.subscribe("conn-bob-0001", "chat-example").await;
    let mut ids = Vec::new();
    for content in ["one", "two", "three"] {
        let accepted = app
            .send("conn-alice-0001", "chat-example", content, None)
            .await;
        ids.push(accepted["message_id"].as_str().unwrap().to_owned());
    }
    let records = app.insert_records("chat-example").await;
    let second_sequence = records[1]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    *failing.lock().unwrap() = ids[1].clone();

    let response = app.fan_out(records.clone()).await;

    let failures: Vec<Option<String>> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect();
    assert_eq!(failures, [Some(second_sequence)]);
    let rows: Vec<String> = app
        .scan(&app.db.tables.inbox)
        .await
        .iter()
        .map(|row| s(row, "message_id").to_owned())
        .collect();
    assert_eq!(rows, [ids[0].clone()], "the third record was not touched");
    assert_eq!(
        contents_pushed(&app),
        ["one"],
        "pushes stop at the failing record"
    );

    // Lambda retries from the failed record and re-sends the ones after it.
    failing.lock().unwrap().clear();
    let retry = app.fan_out(records[1..].to_vec()).await;
    assert!(retry.batch_item_failures.is_empty());
    assert_eq!(app.scan(&app.db.tables.inbox).await.len(), 3);
    assert_eq!(
        contents_pushed(&app),
        ["one", "two", "three"],
        "in order, each once"
    );
}

/// Returns the `content` of every delivered `message` frame, in order.
fn contents_pushed(app: &App) -> Vec<String> {
    app.management
        .posts()
        .iter()
        .map(|(_, frame)| frame["content"].as_str().unwrap().to_owned())
        .collect()
}
