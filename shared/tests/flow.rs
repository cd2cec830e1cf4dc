//! The whole message path in one process: connect, subscribe, send, fan
//! out, acknowledge, and catch up through inbox sync after being offline.

mod fixture;
mod support;

use chrono::TimeDelta;
use fixture::App;
use serde_json::Value;

#[tokio::test]
async fn alice_and_bob_chat_live() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("bob", "conn-bob-0001").await;
    assert_eq!(
        app.subscribe("conn-alice-0001", "chat-example").await["type"],
        "subscribed"
    );
    assert_eq!(
        app.subscribe("conn-bob-0001", "chat-example").await["type"],
        "subscribed"
    );

    let accepted = app
        .send("conn-alice-0001", "chat-example", "hello bob", Some("c-1"))
        .await;
    assert_eq!(accepted["type"], "message-accepted");
    let response = app.deliver("chat-example").await;
    assert!(response.batch_item_failures.is_empty());

    let mut posts = app.management.posts();
    posts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(posts.len(), 2, "both connections get the message");
    assert_eq!(posts[0].0, "conn-alice-0001");
    assert_eq!(posts[1].0, "conn-bob-0001");
    for (_, frame) in &posts {
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["seq"], 1);
        assert_eq!(frame["message_id"], accepted["message_id"]);
    }
    let inbox = app.scan(&app.db.tables.inbox).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(fixture::s(&inbox[0], "recipient_id"), "bob");

    let acked = app
        .ack("conn-bob-0001", accepted["message_id"].as_str().unwrap())
        .await;
    assert_eq!(acked, Value::Null);
    assert!(
        app.scan(&app.db.tables.inbox).await.is_empty(),
        "bob's row is gone"
    );
}

#[tokio::test]
async fn bob_catches_up_after_being_offline() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("bob", "conn-bob-0001").await;
    app.subscribe("conn-alice-0001", "chat-example").await;
    app.subscribe("conn-bob-0001", "chat-example").await;
    app.disconnect("conn-bob-0001").await;

    for content in ["one", "two", "three"] {
        app.send("conn-alice-0001", "chat-example", content, None)
            .await;
        app.clock.advance(TimeDelta::milliseconds(10));
    }
    app.deliver("chat-example").await;
    assert!(
        app.management
            .posts()
            .iter()
            .all(|(id, _)| id == "conn-alice-0001"),
        "nothing is pushed to bob's closed connection"
    );

    app.connect("bob", "conn-bob-0002").await;
    let mut seen = Vec::new();
    let mut path = "/inbox/sync?limit=2".to_owned();
    loop {
        let (status, page) = app.call("GET", &path, Some("bob"), None).await;
        assert_eq!(status, 200);
        for message in page["items"].as_array().unwrap() {
            seen.push(message["content"].as_str().unwrap().to_owned());
            let id = message["message_id"].as_str().unwrap();
            assert_eq!(app.ack("conn-bob-0002", id).await, Value::Null);
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/inbox/sync?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["one", "two", "three"]);

    let (_, after) = app.call("GET", "/inbox/sync", Some("bob"), None).await;
    assert_eq!(
        after["items"].as_array().unwrap().len(),
        0,
        "a second sync is empty"
    );
}
