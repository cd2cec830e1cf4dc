//! End to end through the `chat-local` binary: two users chat, go offline
//! and catch up through inbox sync.

mod support;

use serde_json::{Value, json};
use support::{Client, LocalStack, User, eventually, try_connect};

/// Returns the `items` of `GET /inbox/sync` for `token`.
async fn inbox(stack: &LocalStack, token: &str) -> Vec<Value> {
    let (status, body) = stack.api().get("/inbox/sync", token).await;
    assert_eq!(status, 200, "GET /inbox/sync: {body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn two_users_chat_and_ack() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;
    let mut bob = User::connect(&stack, "bob").await;

    let chat_id = stack
        .api()
        .create_chat(&alice.token, "alice and bob", &["bob"])
        .await;
    let created = bob.client.frame_of_type("chat-created").await;
    assert_eq!(created["chat_id"], chat_id);
    alice.subscribe(&chat_id).await;
    bob.subscribe(&chat_id).await;

    alice
        .client
        .send_json(json!({
            "type": "message",
            "chat_id": chat_id,
            "content": "hello bob",
            "client_message_id": "c-1",
        }))
        .await;
    let accepted = alice.client.frame_of_type("message-accepted").await;
    assert_eq!(accepted["seq"], 1);
    assert_eq!(accepted["client_message_id"], "c-1");

    let for_alice = alice.client.frame_of_type("message").await;
    let for_bob = bob.client.frame_of_type("message").await;
    for frame in [&for_alice, &for_bob] {
        assert_eq!(frame["seq"], 1, "{frame}");
        assert_eq!(frame["content"], "hello bob", "{frame}");
        assert_eq!(frame["sender_id"], "alice", "{frame}");
        assert_eq!(frame["message_id"], accepted["message_id"], "{frame}");
    }

    assert_eq!(inbox(&stack, &bob.token).await.len(), 1);
    bob.client
        .send_json(json!({ "type": "ack-message-received", "message_id": for_bob["message_id"] }))
        .await;
    eventually("bob's inbox to be empty after his ack", || async {
        inbox(&stack, &bob.token).await.is_empty().then_some(())
    })
    .await;
    assert!(
        inbox(&stack, &alice.token).await.is_empty(),
        "the sender gets no inbox row"
    );
}

#[tokio::test]
async fn bad_tickets_get_401() {
    let stack = LocalStack::start(&[]);
    let api = stack.api();
    let token = api.token("alice").await;
    let ticket = api.ticket(&token).await;
    let url = &stack.urls.websocket_url;

    let first = try_connect(&format!("{url}?ticket={ticket}")).await;
    assert!(first.is_ok(), "the first use of a ticket connects");

    let reused = try_connect(&format!("{url}?ticket={ticket}")).await;
    assert_eq!(reused.err(), Some(401), "a used ticket is rejected");

    let missing = try_connect(url).await;
    assert_eq!(missing.err(), Some(401), "no ticket is rejected");

    let unknown = try_connect(&format!("{url}?ticket=not-a-ticket")).await;
    assert_eq!(unknown.err(), Some(401), "an unknown ticket is rejected");
}

#[tokio::test]
async fn offline_user_syncs_the_inbox() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;
    let mut bob = User::connect(&stack, "bob").await;
    let chat_id = stack
        .api()
        .create_chat(&alice.token, "catch up", &["bob"])
        .await;
    alice.subscribe(&chat_id).await;
    bob.subscribe(&chat_id).await;

    bob.client.close().await;
    let mut sent = Vec::new();
    for content in ["one", "two", "three"] {
        let accepted = alice.send_message(&chat_id, content).await;
        sent.push(accepted["message_id"].as_str().unwrap().to_owned());
    }

    let ticket = stack.api().ticket(&bob.token).await;
    let mut bob_again: Client = stack.connect(&ticket).await;
    let missed = eventually("bob's inbox to hold the three messages", || async {
        let items = inbox(&stack, &bob.token).await;
        (items.len() == 3).then_some(items)
    })
    .await;
    let contents: Vec<&str> = missed
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["one", "two", "three"], "oldest first");
    let seqs: Vec<i64> = missed.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let ids: Vec<&str> = missed
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, sent);

    for message in &missed {
        bob_again
            .send_json(
                json!({ "type": "ack-message-received", "message_id": message["message_id"] }),
            )
            .await;
    }
    eventually("bob's inbox to be empty after his acks", || async {
        inbox(&stack, &bob.token).await.is_empty().then_some(())
    })
    .await;
}
