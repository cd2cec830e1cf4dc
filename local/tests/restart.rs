//! A restart of `chat-local` on the same data folder keeps chats, messages
//! and inboxes. Connections are gone, as after a deploy, and the stream is
//! not replayed.

mod support;

use serde_json::{Value, json};
use support::{LocalStack, User};

fn contents(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn inbox(stack: &LocalStack, token: &str) -> Vec<Value> {
    let (status, body) = stack.api().get("/inbox/sync", token).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn restart_keeps_chats_messages_and_inboxes() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap().to_owned();

    let mut stack = LocalStack::start_with(&["--data-dir", &dir], &[]);
    let mut alice = User::connect(&stack, "alice").await;
    let mut bob = User::connect(&stack, "bob").await;
    let chat_id = stack
        .api()
        .create_chat(&alice.token, "kept", &["bob"])
        .await;
    alice.subscribe(&chat_id).await;
    bob.subscribe(&chat_id).await;
    alice.send_message(&chat_id, "one").await;
    let one = bob.client.frame_of_type("message").await;
    bob.client
        .send_json(json!({ "type": "ack-message-received", "message_id": one["message_id"] }))
        .await;
    support::eventually("bob's ack of one", || async {
        inbox(&stack, &bob.token).await.is_empty().then_some(())
    })
    .await;
    bob.client.close().await;
    alice.send_message(&chat_id, "two").await;
    alice.send_message(&chat_id, "three").await;
    support::eventually("bob's inbox to hold two and three", || async {
        let items = inbox(&stack, &bob.token).await;
        (contents(&items) == ["two", "three"]).then_some(())
    })
    .await;
    let old_connections = stack
        .dynamodb()
        .scan()
        .table_name(stack.table("Connections"))
        .send()
        .await
        .unwrap();
    let old_id = old_connections.items()[0]["connection_id"]
        .as_s()
        .unwrap()
        .clone();
    drop(alice);
    assert!(
        stack.terminate(),
        "chat-local exits with success on SIGTERM"
    );

    let stack = LocalStack::start_with(&["--data-dir", &dir], &[]);
    let alice_token = stack.api().token("alice").await;
    let (status, chats) = stack.api().get("/chats", &alice_token).await;
    assert_eq!(status, 200, "{chats}");
    let ids: Vec<&str> = chats["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|chat| chat["chat_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [chat_id.as_str()]);

    let (status, history) = stack
        .api()
        .get(&format!("/chats/{chat_id}/messages"), &bob.token)
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(
        contents(history["items"].as_array().unwrap()),
        ["three", "two", "one"],
        "history, newest first"
    );
    assert_eq!(contents(&inbox(&stack, &bob.token).await), ["two", "three"]);

    let gone = reqwest::get(format!(
        "{}/@connections/{}",
        stack.urls.management_endpoint,
        urlencoding::encode(&old_id)
    ))
    .await
    .unwrap();
    assert_eq!(gone.status(), 410, "connections do not survive a restart");

    let mut bob = User::connect(&stack, "bob").await;
    let mut alice = User::connect(&stack, "alice").await;
    bob.subscribe(&chat_id).await;
    let accepted = alice.send_message(&chat_id, "four").await;
    assert_eq!(accepted["seq"], 4, "the chat's counter survived");
    let first = bob.client.frame_of_type("message").await;
    assert_eq!(
        first["content"], "four",
        "nothing before the restart is pushed again"
    );
    assert_eq!(
        contents(&inbox(&stack, &bob.token).await),
        ["two", "three", "four"],
        "no acknowledged message comes back"
    );
}

#[test]
fn locked_data_folder_rejects_a_second_stack() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap().to_owned();
    let _first = LocalStack::start_with(&["--data-dir", &dir], &[]);
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_chat-local"))
        .args([
            "--data-dir",
            &dir,
            "--ws-port",
            "0",
            "--http-port",
            "0",
            "--s3-port",
            "0",
        ])
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running chat-local failed");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("is in use by another chat-local"),
        "{stderr}"
    );
}
