//! The Management API (`@connections`) through the unchanged
//! `aws-sdk-apigatewaymanagement` client, and the 410 path that deletes the
//! rows of a connection whose `$disconnect` was lost.

mod support;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use support::{LocalStack, User, eventually};

fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new(
            "us-east-1",
        ))
        .credentials_provider(chat_local::aws::credentials())
        .endpoint_url(endpoint)
        .http_client(shared::aws::https_client())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// Reads the connection ids of `user_id` from the Connections table.
async fn connection_ids(stack: &LocalStack, user_id: &str) -> Vec<String> {
    let output = stack
        .dynamodb()
        .query()
        .table_name(stack.table("Connections"))
        .index_name("by_user")
        .key_condition_expression("user_id = :user")
        .expression_attribute_values(":user", AttributeValue::S(user_id.to_owned()))
        .send()
        .await
        .expect("querying Connections failed");
    output
        .items()
        .iter()
        .filter_map(|item| item.get("connection_id")?.as_s().ok().cloned())
        .collect()
}

/// Returns whether the Subscriptions table has a row for `chat_id` and `connection_id`.
async fn subscribed(stack: &LocalStack, chat_id: &str, connection_id: &str) -> bool {
    let output = stack
        .dynamodb()
        .get_item()
        .table_name(stack.table("Subscriptions"))
        .key("chat_id", AttributeValue::S(chat_id.to_owned()))
        .key("connection_id", AttributeValue::S(connection_id.to_owned()))
        .send()
        .await
        .expect("reading Subscriptions failed");
    output.item.is_some()
}

#[tokio::test]
async fn post_get_delete_reach_the_connection() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;
    let [connection_id] = connection_ids(&stack, "alice")
        .await
        .try_into()
        .expect("one connection");
    let client = management_client(&stack.urls.management_endpoint);

    client
        .post_to_connection()
        .connection_id(&connection_id)
        .data(Blob::new(r#"{"type":"pong"}"#))
        .send()
        .await
        .expect("PostToConnection failed");
    assert_eq!(alice.client.next_json().await, json!({ "type": "pong" }));

    let connection = client
        .get_connection()
        .connection_id(&connection_id)
        .send()
        .await
        .expect("GetConnection failed");
    let identity = connection.identity().expect("an identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("chat-local-tests"));
    let connected_at = connection.connected_at().expect("connectedAt");
    let last_active_at = connection.last_active_at().expect("lastActiveAt");
    assert!(last_active_at >= connected_at);

    let too_large = client
        .post_to_connection()
        .connection_id(&connection_id)
        .data(Blob::new(vec![b'x'; 129 * 1024]))
        .send()
        .await
        .expect_err("a payload over 128 KB is rejected");
    assert!(
        too_large
            .as_service_error()
            .is_some_and(|err| err.is_payload_too_large_exception()),
        "{too_large:?}"
    );

    client
        .delete_connection()
        .connection_id(&connection_id)
        .send()
        .await
        .expect("DeleteConnection failed");
    let close = alice.client.close_frame().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1000);
}

#[tokio::test]
async fn closed_connection_is_gone() {
    let stack = LocalStack::start(&[]);
    let alice = User::connect(&stack, "alice").await;
    let [connection_id] = connection_ids(&stack, "alice")
        .await
        .try_into()
        .expect("one connection");
    alice.client.close().await;
    let client = management_client(&stack.urls.management_endpoint);

    for id in [connection_id.as_str(), "bm90LWEtY29ubmVjdGlvbg="] {
        let post = client
            .post_to_connection()
            .connection_id(id)
            .data(Blob::new("{}"))
            .send()
            .await
            .expect_err("posting to a closed connection fails");
        assert!(
            post.as_service_error()
                .is_some_and(|err| err.is_gone_exception()),
            "PostToConnection {id}: {post:?}"
        );
        let get = client
            .get_connection()
            .connection_id(id)
            .send()
            .await
            .expect_err("reading a closed connection fails");
        assert!(
            get.as_service_error()
                .is_some_and(|err| err.is_gone_exception()),
            "GetConnection {id}: {get:?}"
        );
        let delete = client
            .delete_connection()
            .connection_id(id)
            .send()
            .await
            .expect_err("deleting a closed connection fails");
        assert!(
            delete
                .as_service_error()
                .is_some_and(|err| err.is_gone_exception()),
            "DeleteConnection {id}: {delete:?}"
        );
    }
}

#[tokio::test]
async fn vanished_client_is_deleted_on_410() {
    let stack = LocalStack::start(&[]);
    let api = stack.api();
    let control = format!(
        "{}/_control/drop-disconnects",
        stack.urls.management_endpoint
    );
    let switched: serde_json::Value = reqwest::Client::new()
        .post(&control)
        .json(&json!({ "enabled": true }))
        .send()
        .await
        .expect("the control route answered")
        .json()
        .await
        .expect("the control route returns JSON");
    assert_eq!(switched, json!({ "enabled": true }));

    let mut alice = User::connect(&stack, "alice").await;
    let mut bob = User::connect(&stack, "bob").await;
    let chat_id = api.create_chat(&alice.token, "vanishing", &["bob"]).await;
    alice.subscribe(&chat_id).await;
    bob.subscribe(&chat_id).await;
    let [bob_connection] = connection_ids(&stack, "bob")
        .await
        .try_into()
        .expect("one connection");
    assert!(subscribed(&stack, &chat_id, &bob_connection).await);

    // Dropping the socket ends the TCP connection without a close frame.
    drop(bob.client);
    eventually("the gateway to notice bob's connection ended", || async {
        let logs = stack.logs();
        logs.iter()
            .any(|line| line.contains("$disconnect dropped") && line.contains(&bob_connection))
            .then_some(())
    })
    .await;
    assert_eq!(
        connection_ids(&stack, "bob").await,
        std::slice::from_ref(&bob_connection),
        "with $disconnect dropped, bob's row stays"
    );

    // A 410 within the grace after `$connect` keeps the row: the post may
    // have raced the opening of the connection.
    tokio::time::sleep(std::time::Duration::from_secs(
        shared::push::GONE_GRACE.num_seconds().unsigned_abs() + 1,
    ))
    .await;
    alice.send_message(&chat_id, "are you there?").await;
    alice.client.frame_of_type("message").await;
    eventually(
        "bob's stale rows to be deleted through the 410 path",
        || async {
            let gone = connection_ids(&stack, "bob").await.is_empty()
                && !subscribed(&stack, &chat_id, &bob_connection).await;
            gone.then_some(())
        },
    )
    .await;
    assert!(subscribed(&stack, &chat_id, &connection_ids(&stack, "alice").await[0]).await);
}
