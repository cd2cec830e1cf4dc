//! Attachments through the `chat-local` binary: a presigned PUT to the
//! embedded S3 server, its `ObjectCreated` notification to `upload-complete`
//! and the `message-updated` push. Also the server's signature checks.

mod support;

use serde_json::{Value, json};
use support::{LocalStack, User};

/// `POST /chats/{chat_id}/attachments` by `token`; returns the 201 body.
async fn create_attachment(stack: &LocalStack, token: &str, chat_id: &str, size: u64) -> Value {
    let (status, body) = stack
        .api()
        .send(
            reqwest::Method::POST,
            &format!("/chats/{chat_id}/attachments"),
            Some(token),
            Some(json!({ "file_name": "photo 1.png", "content_type": "image/png", "size": size })),
        )
        .await;
    assert_eq!(status, 201, "POST attachments: {body}");
    body
}

/// Builds a PUT of `body` to `url` with the headers of `upload`.
fn put(upload: &Value, url: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new().put(url).body(body);
    for (name, value) in upload["headers"].as_object().unwrap() {
        request = request.header(name.as_str(), value.as_str().unwrap());
    }
    request
}

#[tokio::test]
async fn presigned_upload_marks_message_uploaded() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;
    let mut bob = User::connect(&stack, "bob").await;
    let chat_id = stack
        .api()
        .create_chat(&alice.token, "photos", &["bob"])
        .await;
    alice.subscribe(&chat_id).await;
    bob.subscribe(&chat_id).await;

    let created = create_attachment(&stack, &alice.token, &chat_id, 1234).await;
    let upload = &created["upload"];
    let url = upload["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/{}/chats/",
            stack.urls.s3_endpoint, stack.urls.bucket
        )),
        "a path-style URL on the embedded server: {url}"
    );
    let pending = bob.client.frame_of_type("message").await;
    assert_eq!(pending["upload_status"], "pending");

    let response = put(upload, url, vec![7u8; 1234])
        .send()
        .await
        .expect("the PUT failed");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );

    let updated = bob.client.frame_of_type("message-updated").await;
    assert_eq!(updated["message_id"], pending["message_id"]);
    assert_eq!(updated["upload_status"], "uploaded");

    let message_id = pending["message_id"].as_str().unwrap();
    let (status, download) = stack
        .api()
        .get(
            &format!("/chats/{chat_id}/attachments/{message_id}"),
            &bob.token,
        )
        .await;
    assert_eq!(status, 200, "{download}");
    let object = reqwest::get(download["url"].as_str().unwrap())
        .await
        .expect("the presigned GET failed");
    assert_eq!(object.status(), 200);
    assert_eq!(object.bytes().await.unwrap().len(), 1234);
}

#[tokio::test]
async fn s3_rejects_unsigned_and_tampered_requests() {
    let stack = LocalStack::start(&[]);
    let alice = User::connect(&stack, "alice").await;
    let chat_id = stack.api().create_chat(&alice.token, "photos", &[]).await;
    let created = create_attachment(&stack, &alice.token, &chat_id, 10).await;
    let upload = &created["upload"];
    let url = upload["url"].as_str().unwrap();

    let unsigned = url.split('?').next().unwrap();
    let response = put(upload, unsigned, vec![1u8; 10]).send().await.unwrap();
    assert_eq!(response.status(), 403, "an unsigned PUT");

    let tampered = url.replace("photo%201.png", "other.png");
    assert_ne!(tampered, url, "the key is in the URL: {url}");
    let response = put(upload, &tampered, vec![1u8; 10]).send().await.unwrap();
    assert_eq!(response.status(), 403, "a URL for another key");

    // The client library sets Content-Length from the body, 11 here.
    let response = reqwest::Client::new()
        .put(url)
        .header("content-type", "image/png")
        .body(vec![1u8; 11])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "a body of another size than the signed one"
    );

    let response = reqwest::Client::new()
        .put(url)
        .header("content-type", "image/jpeg")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "another content type than the signed one"
    );

    let response = put(upload, url, vec![1u8; 10]).send().await.unwrap();
    assert_eq!(response.status(), 200, "the signed request itself");
}

#[tokio::test]
async fn bucket_allows_cors_put() {
    let stack = LocalStack::start(&["--allowed-origin", "http://127.0.0.1:5173"]);
    let url = format!(
        "{}/{}/chats/x/y/z.png",
        stack.urls.s3_endpoint, stack.urls.bucket
    );
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, url.clone())
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("http://127.0.0.1:5173").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-headers"],
        "content-type"
    );
    let other = preflight("http://other.example").await.unwrap();
    assert_eq!(other.status(), 403);
}

/// Builds an S3 client that signs with the embedded server's key pair.
fn local_s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "local",
            "local-secret",
            None,
            None,
            "tests",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test]
async fn s3_rejects_expired_presigned_url() {
    let stack = LocalStack::start(&[]);
    let alice = User::connect(&stack, "alice").await;
    let chat_id = stack.api().create_chat(&alice.token, "photos", &[]).await;
    let created = create_attachment(&stack, &alice.token, &chat_id, 10).await;
    let key = created["message"]["s3_key"].as_str().unwrap();

    // Signed ten minutes ago for one minute: expired, but otherwise valid.
    let signed_at = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    let presigning = aws_sdk_s3::presigning::PresigningConfig::builder()
        .start_time(signed_at)
        .expires_in(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let client = local_s3_client(&stack.urls.s3_endpoint);
    let expired = client
        .put_object()
        .bucket(&stack.urls.bucket)
        .key(key)
        .content_type("image/png")
        .content_length(10)
        .presigned(presigning)
        .await
        .unwrap();
    let response = put(&created["upload"], expired.uri(), vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "an expired presigned URL");

    let fresh =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(60))
            .unwrap();
    let valid = client
        .put_object()
        .bucket(&stack.urls.bucket)
        .key(key)
        .content_type("image/png")
        .content_length(10)
        .presigned(fresh)
        .await
        .unwrap();
    let response = put(&created["upload"], valid.uri(), vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the same request signed now");
}
