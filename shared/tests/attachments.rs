//! Attachments end to end at handler level: `POST` and `GET
//! /chats/{chat_id}/attachments` in `http-api`, the upload to the presigned
//! URL, `upload-complete` on the S3 notification, and `stream-fanout` on the
//! MODIFY that follows.
//!
//! DynamoDB is dynoxide; S3 is moto's server, so these tests are skipped
//! (with one line on stderr) when moto cannot start, unless
//! `CHAT_REQUIRE_MOTO=1`. moto does not verify presigned signatures, so a
//! tampered URL is not tested here.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_lambda_events::dynamodb;
use aws_lambda_events::s3::S3Event;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use chrono::{TimeDelta, Utc};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::attachments::{AttachmentBucket, s3_client};
use shared::auth::{Authenticator, issue_hs256};
use shared::clock::{Clock, ManualClock};
use shared::domain::{
    ATTACHMENT_URL_LIFETIME, Chat, Connection, MAX_ATTACHMENT_BYTES, Membership,
    PENDING_UPLOAD_TIMEOUT, Role, Subscription, Timestamp, UploadStatus,
};
use shared::handlers::http;
use shared::handlers::stream_fanout;
use shared::handlers::upload_complete::{self, UploadOutcome};
use shared::handlers::{FanoutDeps, HttpDeps, UploadDeps};
use shared::push::Pusher;
use shared::store::{DynamoInboxWriter, Store};
use support::{ManagementApi, TestDb};

const JWT_SECRET: &str = "attachment-tests-secret-0123456789abcdef";
const CHAT_ID: &str = "chat-attachments";
const OWNER: &str = "alice";
const MEMBER: &str = "bob";
const OUTSIDER: &str = "mallory";
const MEMBER_CONNECTION: &str = "conn-bob-0001";

/// Everything one test needs: dynoxide, a bucket on moto's server, the
/// Management API stand-in, and the deps of the three handlers.
struct Stack {
    db: TestDb,
    s3: aws_sdk_s3::Client,
    bucket: String,
    clock: Arc<ManualClock>,
    management: ManagementApi,
    http: HttpDeps,
    upload: UploadDeps,
    fanout: FanoutDeps,
}

/// Builds a [`Stack`] with the chat `CHAT_ID` of `OWNER` and `MEMBER`, and a
/// connection of `MEMBER` subscribed to it. `None` when moto's server is not available.
async fn stack() -> Option<Stack> {
    let moto = support::moto().await?;
    let db = support::dynoxide().await;
    let clock = Arc::new(ManualClock::new(Timestamp::new(Utc::now())));
    let store = Store::new(db.client.clone(), db.tables.clone());

    let sdk_config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(support::REGION))
        .credentials_provider(SharedCredentialsProvider::new(support::test_credentials()))
        .http_client(support::sdk_http_client())
        .build();
    let s3 = s3_client(&sdk_config, Some(&moto.endpoint));
    let bucket = format!("chat-attachments-{:08x}", rand::random::<u32>());
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|err| panic!("creating bucket {bucket} on moto failed: {err:?}"));
    let attachments = AttachmentBucket::new(s3.clone(), &bucket);

    let management = ManagementApi::start().await;
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let http = HttpDeps {
        store: store.clone(),
        clock: clock_dyn.clone(),
        pusher: Pusher::new(management.client()),
        auth: Authenticator::hs256(JWT_SECRET.as_bytes()).unwrap(),
        attachments: attachments.clone(),
    };
    let upload = UploadDeps {
        store: store.clone(),
        attachments,
        clock: clock_dyn.clone(),
    };
    let fanout = FanoutDeps {
        store: store.clone(),
        clock: clock_dyn,
        pusher: Pusher::new(management.client()),
        inbox: Arc::new(DynamoInboxWriter::new(store.clone())),
    };

    let now = clock.now();
    let chat = Chat {
        chat_id: CHAT_ID.into(),
        name: "Attachments".into(),
        created_by: OWNER.into(),
        created_at: now,
        last_message_at: None,
        last_seq: 0,
    };
    let members =
        [(OWNER, Role::Owner), (MEMBER, Role::Member)].map(|(user_id, role)| Membership {
            user_id: user_id.into(),
            chat_id: CHAT_ID.into(),
            role,
            joined_at: now,
        });
    store.create_chat(&chat, &members).await.unwrap();
    let expires_at = now.plus(TimeDelta::hours(2));
    store
        .put_connection(&Connection {
            connection_id: MEMBER_CONNECTION.into(),
            user_id: MEMBER.into(),
            connected_at: now,
            expires_at,
        })
        .await
        .unwrap();
    store
        .put_subscription(&Subscription {
            chat_id: CHAT_ID.into(),
            connection_id: MEMBER_CONNECTION.into(),
            user_id: MEMBER.into(),
            expires_at,
        })
        .await
        .unwrap();

    Some(Stack {
        db,
        s3,
        bucket,
        clock,
        management,
        http,
        upload,
        fanout,
    })
}

impl Stack {
    /// Sends a request as `user` to `http-api` and returns the status and JSON body.
    async fn call(&self, method: &str, path: &str, user: &str, body: Option<&str>) -> (u16, Value) {
        let token = issue_hs256(
            JWT_SECRET.as_bytes(),
            user,
            Timestamp::new(Utc::now()).plus(TimeDelta::hours(1)),
        )
        .unwrap();
        let request: Request = ::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(body.map_or(Body::Empty, |text| Body::Text(text.to_owned())))
            .unwrap();
        let response = http::handle(&self.http, request).await.unwrap();
        (response.status().as_u16(), json_body(&response))
    }

    /// `POST /chats/{CHAT_ID}/attachments` as `OWNER`, expecting 201.
    async fn create(&self, file_name: &str, content_type: &str, size: usize) -> Value {
        let body = json!({ "file_name": file_name, "content_type": content_type, "size": size });
        let (status, created) = self
            .call(
                "POST",
                &format!("/chats/{CHAT_ID}/attachments"),
                OWNER,
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        created
    }

    async fn download(&self, user: &str, message_id: &str) -> (u16, Value) {
        let path = format!("/chats/{CHAT_ID}/attachments/{message_id}");
        self.call("GET", &path, user, None).await
    }

    /// Builds the notification S3 sends for `key`, from `events/s3-object-created.json`.
    fn notification(&self, key: &str, event_name: &str) -> S3Event {
        let mut event: S3Event = support::event("s3-object-created.json");
        let record = &mut event.records[0];
        record.event_name = Some(event_name.to_owned());
        record.s3.bucket.name = Some(self.bucket.clone());
        record.s3.object.key = Some(event_key(key));
        event
    }

    /// Runs `upload-complete` on the one record of the notification for `key`.
    async fn notify(&self, key: &str, event_name: &str) -> UploadOutcome {
        let event = self.notification(key, event_name);
        upload_complete::handle_record(&self.upload, &event.records[0])
            .await
            .unwrap()
    }

    /// Reads the message item as DynamoDB stores it.
    async fn message_item(
        &self,
        message_id: &str,
    ) -> std::collections::HashMap<String, AttributeValue> {
        self.db
            .client
            .get_item()
            .table_name(&self.db.tables.messages)
            .key("chat_id", AttributeValue::S(CHAT_ID.into()))
            .key("message_id", AttributeValue::S(message_id.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("the message item exists")
    }

    async fn stored_status(&self, message_id: &str) -> String {
        let item = self.message_item(message_id).await;
        item.get("upload_status")
            .and_then(|value| value.as_s().ok())
            .cloned()
            .expect("an attachment message has upload_status")
    }

    async fn message_count(&self) -> usize {
        let output = self
            .db
            .client
            .query()
            .table_name(&self.db.tables.messages)
            .key_condition_expression("chat_id = :chat")
            .expression_attribute_values(":chat", AttributeValue::S(CHAT_ID.into()))
            .send()
            .await
            .unwrap();
        output.items.unwrap_or_default().len()
    }

    async fn object_count(&self) -> usize {
        let output = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        output.contents().len()
    }
}

fn json_body(response: &Response<Body>) -> Value {
    let bytes: &[u8] = response.body().as_ref();
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|err| {
        panic!(
            "body is not JSON ({err}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Encodes `key` as an S3 notification writes it: URL-encoded, with `+` for a space.
fn event_key(key: &str) -> String {
    key.split('/')
        .map(|segment| urlencoding::encode(segment).replace("%20", "+"))
        .collect::<Vec<_>>()
        .join("/")
}

fn upload_headers(created: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(created["upload"]["headers"].clone()).unwrap()
}

/// Sends one request with a plain HTTP client and returns the status and body.
async fn send_http(
    method: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut builder = ::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = HttpRequest::try_from(builder.body(SdkBody::from(body)).unwrap()).unwrap();
    let connector = Connector::builder()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build();
    let response = connector.call(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = ByteStream::new(response.into_body())
        .collect()
        .await
        .unwrap()
        .into_bytes();
    (status, bytes.to_vec())
}

/// PUTs `body` to the presigned URL of `created` with its headers, except
/// that `Content-Length` is always the body's real length.
async fn upload(created: &Value, body: &[u8], content_type: Option<&str>) -> u16 {
    let mut headers = upload_headers(created);
    headers.insert("content-length".into(), body.len().to_string());
    if let Some(content_type) = content_type {
        headers.insert("content-type".into(), content_type.into());
    }
    let url = created["upload"]["url"].as_str().unwrap();
    let (status, response) = send_http("PUT", url, &headers, body.to_vec()).await;
    assert_eq!(
        status,
        200,
        "PUT failed: {}",
        String::from_utf8_lossy(&response)
    );
    status
}

/// Builds a stream event from the first MODIFY record of the `events/`
/// batch, with the images of the message before and after.
fn modify_event(
    old: std::collections::HashMap<String, AttributeValue>,
    new: std::collections::HashMap<String, AttributeValue>,
) -> dynamodb::Event {
    let mut event: dynamodb::Event = support::event("stream-fanout-batch.json");
    let position = event
        .records
        .iter()
        .position(|record| record.event_name == "MODIFY")
        .expect("the batch has a MODIFY record");
    event.records = vec![event.records.swap_remove(position)];
    let record = &mut event.records[0];
    record.change.old_image = serde_dynamo::Item::from(old);
    record.change.new_image = serde_dynamo::Item::from(new);
    event
}

#[tokio::test]
async fn attachment_lifecycle_from_request_to_download() {
    let Some(stack) = stack().await else { return };
    let bytes = b"\x89PNG\r\n\x1a\n not really an image, but the right size".to_vec();

    let created = stack.create("photo 1.png", "image/png", bytes.len()).await;
    let message = &created["message"];
    let message_id = message["message_id"].as_str().unwrap().to_owned();
    let key = format!("chats/{CHAT_ID}/{message_id}/photo 1.png");
    assert_eq!(message["chat_id"], CHAT_ID);
    assert_eq!(message["seq"], 1);
    assert_eq!(message["sender_id"], OWNER);
    assert_eq!(message["content"], "photo 1.png");
    assert_eq!(message["upload_status"], "pending");
    assert_eq!(message["file_name"], "photo 1.png");
    assert_eq!(message["content_type"], "image/png");
    assert_eq!(message["size"], bytes.len());
    assert_eq!(message["s3_bucket"], stack.bucket.as_str());
    assert_eq!(message["s3_key"], key.as_str());

    let upload_info = &created["upload"];
    assert_eq!(upload_info["method"], "PUT");
    let headers = upload_headers(&created);
    assert_eq!(
        headers,
        BTreeMap::from([
            ("content-length".to_owned(), bytes.len().to_string()),
            ("content-type".to_owned(), "image/png".to_owned()),
        ])
    );
    let url = upload_info["url"].as_str().unwrap();
    assert!(
        url.contains(&format!("/{}/chats/{CHAT_ID}/", stack.bucket)),
        "path-style URL: {url}"
    );
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "the declared size and type are signed: {url}"
    );
    let created_at = Timestamp::parse(message["created_at"].as_str().unwrap()).unwrap();
    let expires_at = Timestamp::parse(upload_info["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at, created_at.plus(ATTACHMENT_URL_LIFETIME));

    let (status, body) = stack.download(MEMBER, &message_id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "upload_pending");

    upload(&created, &bytes, None).await;
    let before = stack.message_item(&message_id).await;
    let notification = stack.notification(&key, "ObjectCreated:Put");
    upload_complete::handle(&stack.upload, notification)
        .await
        .unwrap();
    assert_eq!(stack.stored_status(&message_id).await, "uploaded");

    let after = stack.message_item(&message_id).await;
    let response = stream_fanout::handle(&stack.fanout, modify_event(before, after))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let posts = stack.management.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let (connection_id, frame) = &posts[0];
    assert_eq!(connection_id, MEMBER_CONNECTION);
    assert_eq!(frame["type"], "message-updated");
    assert_eq!(frame["message_id"], message_id.as_str());
    assert_eq!(frame["upload_status"], "uploaded");

    let (status, body) = stack.download(MEMBER, &message_id).await;
    assert_eq!(status, 200, "{body}");
    let download_url = body["url"].as_str().unwrap();
    let download_expires = Timestamp::parse(body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        download_expires,
        stack.clock.now().plus(ATTACHMENT_URL_LIFETIME)
    );
    let (status, downloaded) = send_http("GET", download_url, &BTreeMap::new(), Vec::new()).await;
    assert_eq!(status, 200);
    assert_eq!(downloaded, bytes);
}

#[tokio::test]
async fn upload_of_wrong_size_is_marked_failed() {
    let Some(stack) = stack().await else { return };
    let created = stack.create("notes.txt", "text/plain", 10).await;
    let message_id = created["message"]["message_id"].as_str().unwrap();
    let key = created["message"]["s3_key"].as_str().unwrap();

    upload(&created, b"eleven byte", None).await;
    let outcome = stack.notify(key, "ObjectCreated:Put").await;

    assert_eq!(outcome, UploadOutcome::Finished(UploadStatus::Failed));
    assert_eq!(stack.stored_status(message_id).await, "failed");
    let (status, body) = stack.download(OWNER, message_id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "upload_failed");
}

#[tokio::test]
async fn upload_of_wrong_type_is_marked_failed() {
    let Some(stack) = stack().await else { return };
    let bytes = b"GIF89a....";
    let created = stack.create("photo.png", "image/png", bytes.len()).await;
    let message_id = created["message"]["message_id"].as_str().unwrap();
    let key = created["message"]["s3_key"].as_str().unwrap();

    upload(&created, bytes, Some("image/gif")).await;
    let outcome = stack.notify(key, "ObjectCreated:Put").await;

    assert_eq!(outcome, UploadOutcome::Finished(UploadStatus::Failed));
    assert_eq!(stack.stored_status(message_id).await, "failed");
}

#[tokio::test]
async fn repeated_notification_changes_nothing() {
    let Some(stack) = stack().await else { return };
    let bytes = b"%PDF-1.7 tiny";
    let created = stack
        .create("doc.pdf", "application/pdf", bytes.len())
        .await;
    let message_id = created["message"]["message_id"].as_str().unwrap();
    let key = created["message"]["s3_key"].as_str().unwrap();
    upload(&created, bytes, None).await;

    let first = stack.notify(key, "ObjectCreated:Put").await;
    let item_after_first = stack.message_item(message_id).await;
    // The object is replaced by one that no longer matches; a late copy of
    // the notification must still not turn `uploaded` into `failed`.
    upload(&created, b"%PDF-1.7 longer body", None).await;
    let second = stack.notify(key, "ObjectCreated:Put").await;

    assert_eq!(first, UploadOutcome::Finished(UploadStatus::Uploaded));
    assert_eq!(
        second,
        UploadOutcome::AlreadyFinished(UploadStatus::Uploaded)
    );
    assert_eq!(stack.message_item(message_id).await, item_after_first);
}

#[tokio::test]
async fn notification_for_foreign_or_unknown_key_is_skipped() {
    let Some(stack) = stack().await else { return };
    let created = stack.create("a.png", "image/png", 3).await;
    let message_id = created["message"]["message_id"].as_str().unwrap();
    let key = created["message"]["s3_key"].as_str().unwrap();
    upload(&created, b"abc", None).await;

    let other_name = format!("chats/{CHAT_ID}/{message_id}/b.png");
    let unknown_message = format!("chats/{CHAT_ID}/01JEXAMPLE0000000000000009/a.png");
    for skipped in [
        "uploads/a.png",
        "chats/a.png",
        "chats/c/m/../a.png",
        other_name.as_str(),
        unknown_message.as_str(),
    ] {
        assert_eq!(
            stack.notify(skipped, "ObjectCreated:Put").await,
            UploadOutcome::Skipped,
            "{skipped}"
        );
    }
    assert_eq!(
        stack.notify(key, "ObjectRemoved:Delete").await,
        UploadOutcome::Skipped
    );
    assert_eq!(stack.stored_status(message_id).await, "pending");
}

#[tokio::test]
async fn notification_for_missing_object_is_marked_failed() {
    let Some(stack) = stack().await else { return };
    let created = stack.create("gone.png", "image/png", 3).await;
    let message_id = created["message"]["message_id"].as_str().unwrap();
    let key = created["message"]["s3_key"].as_str().unwrap();

    let outcome = stack.notify(key, "ObjectCreated:Put").await;

    assert_eq!(outcome, UploadOutcome::Finished(UploadStatus::Failed));
    assert_eq!(stack.stored_status(message_id).await, "failed");
}

#[tokio::test]
async fn pending_attachment_reads_as_failed_after_timeout() {
    let Some(stack) = stack().await else { return };
    let created = stack.create("late.png", "image/png", 3).await;
    let message_id = created["message"]["message_id"].as_str().unwrap();

    stack.clock.advance(PENDING_UPLOAD_TIMEOUT);
    let (status, body) = stack.download(OWNER, message_id).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "upload_pending");

    stack.clock.advance(TimeDelta::seconds(1));
    let (status, body) = stack.download(OWNER, message_id).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "upload_failed");
    assert_eq!(stack.stored_status(message_id).await, "pending");

    let (status, history) = stack
        .call("GET", &format!("/chats/{CHAT_ID}/messages"), OWNER, None)
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(
        history["items"][0]["upload_status"], "failed",
        "history reports it failed too"
    );
}

#[tokio::test]
async fn non_member_gets_403_on_both_routes() {
    let Some(stack) = stack().await else { return };
    let created = stack.create("a.png", "image/png", 3).await;
    let message_id = created["message"]["message_id"].as_str().unwrap();
    let body = json!({ "file_name": "b.png", "content_type": "image/png", "size": 3 }).to_string();

    let (status, error) = stack
        .call(
            "POST",
            &format!("/chats/{CHAT_ID}/attachments"),
            OUTSIDER,
            Some(&body),
        )
        .await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(error["error"]["code"], "not_member");

    let (status, error) = stack.download(OUTSIDER, message_id).await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(error["error"]["code"], "not_member");

    // An outsider learns nothing about ids that do not exist either.
    let (status, _) = stack.download(OUTSIDER, "01JEXAMPLE0000000000000009").await;
    assert_eq!(status, 403);
    assert_eq!(stack.message_count().await, 1);
}

#[tokio::test]
async fn download_of_text_message_or_unknown_id_is_404() {
    let Some(stack) = stack().await else { return };
    let store = &stack.http.store;
    let now = stack.clock.now();
    let text = shared::domain::Message {
        message_id: "01JEXAMPLE0000000000000001".into(),
        chat_id: CHAT_ID.into(),
        seq: 0,
        sender_id: OWNER.into(),
        content: "just text".into(),
        created_at: now,
        client_message_id: None,
        attachment: None,
    };
    store.append_message(text, now).await.unwrap();

    for message_id in ["01JEXAMPLE0000000000000001", "01JEXAMPLE0000000000000009"] {
        let (status, body) = stack.download(MEMBER, message_id).await;
        assert_eq!(status, 404, "{message_id}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, body) = stack.download(MEMBER, "not/an/id").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn bad_attachment_requests_are_rejected_and_write_nothing() {
    let Some(stack) = stack().await else { return };
    let path = format!("/chats/{CHAT_ID}/attachments");
    let valid = |file_name: &str, content_type: &str, size: Value| {
        json!({ "file_name": file_name, "content_type": content_type, "size": size }).to_string()
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("not JSON", "{ file_name: ".into(), 400, "invalid_json"),
        ("array body", "[]".into(), 400, "invalid_request"),
        (
            "missing size",
            json!({ "file_name": "a.png", "content_type": "image/png" }).to_string(),
            400,
            "invalid_request",
        ),
        (
            "missing file_name",
            json!({ "content_type": "image/png", "size": 3 }).to_string(),
            400,
            "invalid_request",
        ),
        (
            "size as string",
            valid("a.png", "image/png", json!("3")),
            400,
            "invalid_request",
        ),
        (
            "negative size",
            valid("a.png", "image/png", json!(-1)),
            400,
            "invalid_request",
        ),
        (
            "fractional size",
            valid("a.png", "image/png", json!(1.5)),
            400,
            "invalid_request",
        ),
        (
            "zero size",
            valid("a.png", "image/png", json!(0)),
            400,
            "invalid_request",
        ),
        (
            "file_name as number",
            json!({ "file_name": 7, "content_type": "image/png", "size": 3 }).to_string(),
            400,
            "invalid_request",
        ),
        (
            "oversize",
            valid("a.png", "image/png", json!(MAX_ATTACHMENT_BYTES + 1)),
            413,
            "content_too_large",
        ),
        (
            "disallowed type",
            valid("a.html", "text/html", json!(3)),
            400,
            "attachment_type_not_allowed",
        ),
        (
            "svg",
            valid("a.svg", "image/svg+xml", json!(3)),
            400,
            "attachment_type_not_allowed",
        ),
        (
            "path traversal",
            valid("../../etc/passwd", "text/plain", json!(3)),
            400,
            "invalid_request",
        ),
        (
            "path separator",
            valid("a/b", "text/plain", json!(3)),
            400,
            "invalid_request",
        ),
        (
            "backslash",
            valid("a\\b", "text/plain", json!(3)),
            400,
            "invalid_request",
        ),
        (
            "empty name",
            valid("", "text/plain", json!(3)),
            400,
            "invalid_request",
        ),
        (
            "blank name",
            valid("   ", "text/plain", json!(3)),
            400,
            "invalid_request",
        ),
        (
            "control character",
            valid("a\u{1}b.txt", "text/plain", json!(3)),
            400,
            "invalid_request",
        ),
        (
            "long name",
            valid(&"x".repeat(201), "text/plain", json!(3)),
            400,
            "invalid_request",
        ),
    ];
    for (case, body, expected_status, expected_code) in &cases {
        let (status, error) = stack.call("POST", &path, OWNER, Some(body)).await;
        assert_eq!(status, *expected_status, "{case}: {error}");
        assert_eq!(error["error"]["code"], *expected_code, "{case}: {error}");
        assert!(error["error"]["message"].is_string(), "{case}: {error}");
    }

    let (status, error) = stack.call("POST", &path, OWNER, None).await;
    assert_eq!(status, 400, "empty body: {error}");
    assert_eq!(error["error"]["code"], "invalid_json");

    assert_eq!(stack.message_count().await, 0, "no message was written");
    let chat = stack.http.store.chat(CHAT_ID).await.unwrap().unwrap();
    assert_eq!(chat.last_seq, 0, "no seq was taken");
    assert_eq!(stack.object_count().await, 0);
}

#[tokio::test]
async fn attachment_takes_the_next_seq_after_text_messages() {
    let Some(stack) = stack().await else { return };
    let now = stack.clock.now();
    let text = shared::domain::Message {
        message_id: shared::clock::new_ulid(now),
        chat_id: CHAT_ID.into(),
        seq: 0,
        sender_id: MEMBER.into(),
        content: "first".into(),
        created_at: now,
        client_message_id: None,
        attachment: None,
    };
    stack.http.store.append_message(text, now).await.unwrap();

    let created = stack.create("second.png", "image/png", 3).await;

    assert_eq!(created["message"]["seq"], 2);
    let chat = stack.http.store.chat(CHAT_ID).await.unwrap().unwrap();
    assert_eq!(chat.last_seq, 2);
}

#[tokio::test]
async fn finish_upload_applies_once_and_only_to_its_key() {
    for db in support::backends().await {
        let store = Store::new(db.client.clone(), db.tables.clone());
        let now = Timestamp::new(Utc::now());
        let chat = Chat {
            chat_id: CHAT_ID.into(),
            name: "Attachments".into(),
            created_by: OWNER.into(),
            created_at: now,
            last_message_at: None,
            last_seq: 0,
        };
        store.create_chat(&chat, &[]).await.unwrap();
        let message_id = shared::clock::new_ulid(now);
        let key = format!("chats/{CHAT_ID}/{message_id}/a.png");
        let message = shared::domain::Message {
            message_id: message_id.clone(),
            chat_id: CHAT_ID.into(),
            seq: 0,
            sender_id: OWNER.into(),
            content: "a.png".into(),
            created_at: now,
            client_message_id: None,
            attachment: Some(shared::domain::Attachment {
                upload_status: UploadStatus::Pending,
                file_name: "a.png".into(),
                content_type: "image/png".into(),
                size: 3,
                s3_bucket: "bucket".into(),
                s3_key: key.clone(),
            }),
        };
        // The append assigns the stored message id, and the key with it.
        let shared::store::AppendOutcome::Appended(stored) =
            store.append_message(message, now).await.unwrap()
        else {
            panic!("appending the attachment message failed");
        };
        let message_id = stored.message_id.clone();
        let key = stored.attachment.expect("an attachment").s3_key;
        assert_eq!(key, format!("chats/{CHAT_ID}/{message_id}/a.png"));
        let backend = db.backend;

        let other_key = format!("chats/{CHAT_ID}/{message_id}/b.png");
        let wrong_key = store
            .finish_upload(CHAT_ID, &message_id, &other_key, UploadStatus::Failed)
            .await
            .unwrap();
        assert_eq!(wrong_key, None, "{backend}: another key changes nothing");

        let first = store
            .finish_upload(CHAT_ID, &message_id, &key, UploadStatus::Uploaded)
            .await
            .unwrap()
            .expect("the pending upload is finished");
        let status = first.attachment.map(|attachment| attachment.upload_status);
        assert_eq!(status, Some(UploadStatus::Uploaded), "{backend}");

        let again = store
            .finish_upload(CHAT_ID, &message_id, &key, UploadStatus::Failed)
            .await
            .unwrap();
        assert_eq!(again, None, "{backend}: a finished upload stays finished");
        let missing = store
            .finish_upload(
                CHAT_ID,
                "01JEXAMPLE0000000000000009",
                &key,
                UploadStatus::Failed,
            )
            .await
            .unwrap();
        assert_eq!(missing, None, "{backend}: no message is created");

        let stored = store.message(CHAT_ID, &message_id).await.unwrap().unwrap();
        let status = stored.attachment.map(|attachment| attachment.upload_status);
        assert_eq!(status, Some(UploadStatus::Uploaded), "{backend}");
        assert!(
            store
                .message(CHAT_ID, "01JEXAMPLE0000000000000009")
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
    }
}
