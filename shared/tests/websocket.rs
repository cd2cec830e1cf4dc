//! The WebSocket route handlers, each fed its `events/` payload, against dynoxide.

mod fixture;
mod support;

use std::collections::BTreeSet;

use chrono::TimeDelta;
use fixture::{App, n, parse, reply, s};
use serde_json::{Value, json};
use shared::handlers::{ws_connect, ws_default, ws_message};

/// Returns the code of an `error` frame, after checking that it is one.
fn error_code(frame: &Value) -> &str {
    assert_eq!(
        frame["type"], "error",
        "expected an error frame, got {frame}"
    );
    frame["code"].as_str().expect("an error frame has a code")
}

#[tokio::test]
async fn connect_with_ticket_stores_connection() {
    let app = App::new().await;
    app.ticket("alice", "tkt-example-0001").await;
    let event = parse(support::event_json("ws-connect.json"));
    let connected_at = event.request_context.connected_at;

    let response = ws_connect::handle(&app.ws, event).await.unwrap();

    assert_eq!(response.status_code, 200);
    assert!(response.body.is_none(), "$connect must not reply");
    let rows = app.scan(&app.db.tables.connections).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(s(&rows[0], "connection_id"), "conn-alice-0001");
    assert_eq!(s(&rows[0], "user_id"), "alice");
    let expires = n(&rows[0], "expires_at");
    assert_eq!(expires as i64, connected_at / 1000 + 2 * 3600);
    assert!(
        app.scan(&app.db.tables.tickets).await.is_empty(),
        "the ticket is consumed"
    );
    assert!(app.management.posts().is_empty(), "$connect never posts");
}

#[tokio::test]
async fn connect_with_used_ticket_returns_401() {
    let app = App::new().await;
    app.ticket("alice", "tkt-example-0001").await;
    let first = ws_connect::handle(&app.ws, parse(support::event_json("ws-connect.json")))
        .await
        .unwrap();
    assert_eq!(first.status_code, 200);

    let mut again = support::event_json("ws-connect.json");
    again["requestContext"]["connectionId"] = json!("conn-alice-0002");
    let second = ws_connect::handle(&app.ws, parse(again)).await.unwrap();

    assert_eq!(second.status_code, 401);
    let rows = app.scan(&app.db.tables.connections).await;
    assert_eq!(rows.len(), 1, "the reused ticket stored nothing");
}

#[tokio::test]
async fn connect_without_ticket_returns_401() {
    let app = App::new().await;
    let event = parse(support::event_json("ws-connect-no-ticket.json"));
    let response = ws_connect::handle(&app.ws, event).await.unwrap();
    assert_eq!(response.status_code, 401);
    assert!(app.scan(&app.db.tables.connections).await.is_empty());
}

#[tokio::test]
async fn connect_with_unknown_ticket_returns_401() {
    let app = App::new().await;
    app.ticket("alice", "another-ticket").await;
    let response = ws_connect::handle(&app.ws, parse(support::event_json("ws-connect.json")))
        .await
        .unwrap();
    assert_eq!(response.status_code, 401);
    assert!(app.scan(&app.db.tables.connections).await.is_empty());
}

#[tokio::test]
async fn connect_with_expired_ticket_returns_401() {
    let app = App::new().await;
    app.ticket("alice", "tkt-example-0001").await;
    app.clock.advance(TimeDelta::seconds(61));
    let response = ws_connect::handle(&app.ws, parse(support::event_json("ws-connect.json")))
        .await
        .unwrap();
    assert_eq!(response.status_code, 401);
    let body: Value = match response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => {
            serde_json::from_str(&text).unwrap()
        }
        other => panic!("401 without a JSON body: {other:?}"),
    };
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(app.scan(&app.db.tables.connections).await.is_empty());
}

#[tokio::test]
async fn disconnect_deletes_connection_and_subscriptions() {
    let app = App::new().await;
    app.chat("chat-a", "alice", &["bob"]).await;
    app.chat("chat-b", "alice", &[]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("alice", "conn-alice-0002").await;
    for chat in ["chat-a", "chat-b"] {
        assert_eq!(
            app.subscribe("conn-alice-0001", chat).await["type"],
            "subscribed"
        );
    }
    app.subscribe("conn-alice-0002", "chat-a").await;

    let event = parse(support::event_json("ws-disconnect.json"));
    let response = shared::handlers::ws_disconnect::handle(&app.ws, event)
        .await
        .unwrap();

    assert_eq!(response.status_code, 200);
    let connections = app.scan(&app.db.tables.connections).await;
    assert_eq!(connections.len(), 1);
    assert_eq!(s(&connections[0], "connection_id"), "conn-alice-0002");
    let subscriptions = app.scan(&app.db.tables.subscriptions).await;
    assert_eq!(
        subscriptions.len(),
        1,
        "only the other connection's subscription is left"
    );
    assert_eq!(s(&subscriptions[0], "connection_id"), "conn-alice-0002");
}

#[tokio::test]
async fn subscribe_stores_subscription_for_member() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;

    let event = parse(support::event_json("ws-subscribe.json"));
    let frame = reply(
        shared::handlers::ws_subscribe::handle(&app.ws, event)
            .await
            .unwrap(),
    );

    assert_eq!(
        frame,
        json!({ "type": "subscribed", "chat_id": "chat-example" })
    );
    let rows = app.scan(&app.db.tables.subscriptions).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(s(&rows[0], "user_id"), "alice");
    let connection = &app.scan(&app.db.tables.connections).await[0];
    assert_eq!(
        n(&rows[0], "expires_at"),
        n(connection, "expires_at"),
        "a subscription expires with its connection"
    );
}

#[tokio::test]
async fn subscribe_by_non_member_is_rejected() {
    let app = App::new().await;
    app.chat("chat-example", "bob", &[]).await;
    app.connect("alice", "conn-alice-0001").await;
    let before = app.counts().await;

    let frame = app.subscribe("conn-alice-0001", "chat-example").await;

    assert_eq!(error_code(&frame), "not_member");
    assert_eq!(frame["request_type"], "subscribe");
    assert_eq!(app.counts().await, before, "nothing was written");
}

#[tokio::test]
async fn unsubscribe_deletes_subscription() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &[]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.subscribe("conn-alice-0001", "chat-example").await;

    let event = parse(support::event_json("ws-unsubscribe.json"));
    let frame = reply(
        shared::handlers::ws_subscribe::handle(&app.ws, event)
            .await
            .unwrap(),
    );

    assert_eq!(
        frame,
        json!({ "type": "unsubscribed", "chat_id": "chat-example" })
    );
    assert!(app.scan(&app.db.tables.subscriptions).await.is_empty());
}

#[tokio::test]
async fn frames_from_unknown_connection_are_unauthorized() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &[]).await;
    let before = app.counts().await;

    let subscribed = app.subscribe("conn-nobody", "chat-example").await;
    let sent = app.send("conn-nobody", "chat-example", "hi", None).await;
    let acked = app.ack("conn-nobody", "01JEXAMPLE0000000000000000").await;

    assert_eq!(error_code(&subscribed), "unauthorized");
    assert_eq!(error_code(&sent), "unauthorized");
    assert_eq!(error_code(&acked), "unauthorized");
    assert_eq!(app.counts().await, before);
}

#[tokio::test]
async fn message_event_is_accepted_with_first_seq() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;

    let event = parse(support::event_json("ws-message.json"));
    let frame = reply(ws_message::handle(&app.ws, event).await.unwrap());

    assert_eq!(frame["type"], "message-accepted");
    assert_eq!(frame["chat_id"], "chat-example");
    assert_eq!(frame["client_message_id"], "c-0001");
    assert_eq!(frame["seq"], 1);
    assert_eq!(frame["created_at"], fixture::START);
    let messages = app.scan(&app.db.tables.messages).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(s(&messages[0], "message_id"), frame["message_id"]);
    assert_eq!(s(&messages[0], "sender_id"), "alice");
    assert_eq!(s(&messages[0], "content"), "hello bob");
    let chat = &app.scan(&app.db.tables.chats).await[0];
    assert_eq!(n(chat, "last_seq"), 1);
    assert_eq!(s(chat, "last_message_at"), fixture::START);
    let records = app.scan(&app.db.tables.client_messages).await;
    assert_eq!(records.len(), 1);
    assert_eq!(s(&records[0], "message_id"), frame["message_id"]);
}

#[tokio::test]
async fn message_sender_is_the_connection_user() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    let body = json!({
        "type": "message", "chat_id": "chat-example", "content": "hi", "sender_id": "bob"
    });

    let frame = app.send_raw("conn-alice-0001", &body.to_string()).await;

    assert_eq!(frame["type"], "message-accepted");
    let messages = app.scan(&app.db.tables.messages).await;
    assert_eq!(s(&messages[0], "sender_id"), "alice");
}

#[tokio::test]
async fn message_over_the_cap_is_rejected() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    let before = app.counts().await;

    let event = parse(support::event_json("ws-message-too-large.json"));
    let frame = reply(ws_message::handle(&app.ws, event).await.unwrap());

    assert_eq!(error_code(&frame), "content_too_large");
    assert_eq!(frame["request_type"], "message");
    assert_eq!(app.counts().await, before, "nothing was written");
}

#[tokio::test]
async fn message_at_the_cap_is_accepted() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &[]).await;
    app.connect("alice", "conn-alice-0001").await;
    let content = "é".repeat(shared::domain::MAX_CONTENT_BYTES / 2);
    let frame = app
        .send("conn-alice-0001", "chat-example", &content, None)
        .await;
    assert_eq!(frame["type"], "message-accepted");
}

#[tokio::test]
async fn bad_message_frames_get_typed_errors_and_write_nothing() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    let before = app.counts().await;
    let cases: &[(&str, &str)] = &[
        ("{not json", "invalid_json"),
        (r#"{"type":"message","content":"hi"}"#, "invalid_request"),
        (
            r#"{"type":"message","chat_id":"chat-example"}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":"chat-example","content":""}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":"chat-example","content":"   "}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":"chat-example","content":5}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":7,"content":"hi"}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":"a/b","content":"hi"}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":"","content":"hi"}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":"chat-example","content":"hi","client_message_id":""}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":"chat-example","content":"hi","client_message_id":3}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"message","chat_id":"chat-other","content":"hi"}"#,
            "not_member",
        ),
        ("[1,2,3]", "invalid_request"),
    ];
    for (body, code) in cases {
        let frame = app.send_raw("conn-alice-0001", body).await;
        assert_eq!(error_code(&frame), *code, "body {body}");
        assert!(
            frame["message"].as_str().is_some_and(|m| !m.is_empty()),
            "body {body}"
        );
    }
    assert_eq!(app.counts().await, before, "nothing was written");
}

#[tokio::test]
async fn message_error_echoes_client_message_id() {
    let app = App::new().await;
    app.connect("alice", "conn-alice-0001").await;
    let frame = app
        .send("conn-alice-0001", "chat-nope", "hi", Some("c-9"))
        .await;
    assert_eq!(error_code(&frame), "not_member");
    assert_eq!(frame["client_message_id"], "c-9");
}

#[tokio::test]
async fn message_resend_with_same_client_id_is_idempotent() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;

    let first = app
        .send("conn-alice-0001", "chat-example", "hi", Some("c-1"))
        .await;
    app.clock.advance(TimeDelta::seconds(5));
    let second = app
        .send("conn-alice-0001", "chat-example", "hi", Some("c-1"))
        .await;

    assert_eq!(first["type"], "message-accepted");
    assert_eq!(second["type"], "message-accepted");
    assert_eq!(second["message_id"], first["message_id"]);
    assert_eq!(second["seq"], first["seq"]);
    assert_eq!(second["created_at"], first["created_at"]);
    assert_eq!(app.scan(&app.db.tables.messages).await.len(), 1);
    let chat = &app.scan(&app.db.tables.chats).await[0];
    assert_eq!(n(chat, "last_seq"), 1, "the resend took no seq");
}

#[tokio::test]
async fn client_id_reused_for_another_chat_is_a_conflict() {
    let app = App::new().await;
    app.chat("chat-a", "alice", &[]).await;
    app.chat("chat-b", "alice", &[]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.send("conn-alice-0001", "chat-a", "hi", Some("c-1"))
        .await;

    let frame = app
        .send("conn-alice-0001", "chat-b", "hi", Some("c-1"))
        .await;

    assert_eq!(error_code(&frame), "conflict");
    let messages = app
        .items(&app.db.tables.messages, "chat_id", "chat-b")
        .await;
    assert!(messages.is_empty());
}

#[tokio::test]
async fn expired_client_id_record_allows_a_new_message() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &[]).await;
    app.connect("alice", "conn-alice-0001").await;
    let first = app
        .send("conn-alice-0001", "chat-example", "hi", Some("c-1"))
        .await;
    app.clock
        .advance(TimeDelta::days(1) + TimeDelta::seconds(1));
    app.connect("alice", "conn-alice-0004").await;

    let second = app
        .send("conn-alice-0004", "chat-example", "hi", Some("c-1"))
        .await;

    assert_eq!(second["type"], "message-accepted");
    assert_ne!(second["message_id"], first["message_id"]);
    assert_eq!(second["seq"], 2);
}

#[tokio::test]
async fn concurrent_sends_get_seq_without_gaps() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("bob", "conn-bob-0001").await;

    let sends = (0..20).map(|i| {
        let connection = if i % 2 == 0 {
            "conn-alice-0001"
        } else {
            "conn-bob-0001"
        };
        let app = &app;
        async move {
            app.send(
                connection,
                "chat-example",
                &format!("message {i}"),
                Some(&format!("c-{i}")),
            )
            .await
        }
    });
    let frames = futures::future::join_all(sends).await;

    let mut seqs = BTreeSet::new();
    for frame in &frames {
        assert_eq!(frame["type"], "message-accepted", "{frame}");
        seqs.insert(frame["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, (1..=20).collect::<BTreeSet<u64>>());
    let stored: BTreeSet<u64> = app
        .scan(&app.db.tables.messages)
        .await
        .iter()
        .map(|item| n(item, "seq"))
        .collect();
    assert_eq!(stored, (1..=20).collect::<BTreeSet<u64>>());
    let chat = &app.scan(&app.db.tables.chats).await[0];
    assert_eq!(n(chat, "last_seq"), 20);
    let by_id: Vec<u64> = app
        .items(&app.db.tables.messages, "chat_id", "chat-example")
        .await
        .iter()
        .map(|item| n(item, "seq"))
        .collect();
    assert_eq!(
        by_id,
        (1..=20).collect::<Vec<u64>>(),
        "message ids sort by seq"
    );
}

#[tokio::test]
async fn ack_deletes_inbox_row_and_ignores_unknown_ids() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.connect("bob", "conn-bob-0001").await;
    let accepted = app
        .send("conn-alice-0001", "chat-example", "hi", None)
        .await;
    app.deliver("chat-example").await;
    assert_eq!(app.scan(&app.db.tables.inbox).await.len(), 1);

    let unknown = app.ack("conn-bob-0001", "01JEXAMPLE0000000000000000").await;
    assert_eq!(unknown, Value::Null, "an unknown id is a no-op");
    assert_eq!(app.scan(&app.db.tables.inbox).await.len(), 1);

    let other_user = app
        .ack("conn-alice-0001", accepted["message_id"].as_str().unwrap())
        .await;
    assert_eq!(other_user, Value::Null);
    assert_eq!(
        app.scan(&app.db.tables.inbox).await.len(),
        1,
        "alice cannot ack bob's row"
    );

    let acked = app
        .ack("conn-bob-0001", accepted["message_id"].as_str().unwrap())
        .await;
    assert_eq!(acked, Value::Null);
    assert!(app.scan(&app.db.tables.inbox).await.is_empty());
}

#[tokio::test]
async fn ack_event_with_bad_frames_is_rejected() {
    let app = App::new().await;
    app.connect("alice", "conn-alice-0001").await;
    let event = parse(support::event_json("ws-ack.json"));
    let ok = reply(
        shared::handlers::ws_ack::handle(&app.ws, event)
            .await
            .unwrap(),
    );
    assert_eq!(ok, Value::Null);
    for (body, code) in [
        (r#"{"type":"ack-message-received"}"#, "invalid_request"),
        (
            r#"{"type":"ack-message-received","message_id":12}"#,
            "invalid_request",
        ),
        (
            r#"{"type":"ack-message-received","message_id":"../x"}"#,
            "invalid_request",
        ),
        ("nope", "invalid_json"),
    ] {
        let event = app.frame_event("ws-ack.json", "conn-alice-0001", Some(body));
        let frame = reply(
            shared::handlers::ws_ack::handle(&app.ws, event)
                .await
                .unwrap(),
        );
        assert_eq!(error_code(&frame), code, "body {body}");
    }
}

#[tokio::test]
async fn default_route_answers_ping_with_pong() {
    let event = parse(support::event_json("ws-default-ping.json"));
    let frame = reply(ws_default::handle(event).await.unwrap());
    assert_eq!(frame, json!({ "type": "pong" }));
}

#[tokio::test]
async fn default_route_rejects_invalid_json() {
    let event = parse(support::event_json("ws-default-invalid-json.json"));
    let frame = reply(ws_default::handle(event).await.unwrap());
    assert_eq!(error_code(&frame), "invalid_json");
    assert_eq!(frame["request_type"], Value::Null);
}

#[tokio::test]
async fn default_route_rejects_unknown_type() {
    let event = parse(support::event_json("ws-default-unknown-type.json"));
    let frame = reply(ws_default::handle(event).await.unwrap());
    assert_eq!(error_code(&frame), "unknown_type");
    assert_eq!(frame["request_type"], "shout");
}

#[tokio::test]
async fn default_route_rejects_frames_without_type() {
    let app = App::new().await;
    for body in ["{}", r#"{"type":3}"#, "[]", "\"ping\""] {
        let frame = app.default_route("conn-alice-0001", body).await;
        assert_eq!(error_code(&frame), "invalid_request", "body {body}");
    }
}
