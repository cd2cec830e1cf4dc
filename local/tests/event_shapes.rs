//! The events the emulators send have the same fields, recursively, as the
//! payloads in `events/`, per event type. Each emulator runs in this process
//! with a function that records its events; real clients drive it.
//!
//! Maps whose keys are data (headers, query parameters, DynamoDB items) are
//! compared by presence only, since their keys depend on the request.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use chat_local::functions::{
    HttpFunction, HttpResponse, Invocation, StreamFunction, UploadFunction, WebSocketFunctions,
};
use chat_local::http_api::{HttpOptions, HttpServer};
use chat_local::s3::{EmbeddedS3, S3Options, create_bucket};
use chat_local::streams::checkpoints::Checkpoints;
use chat_local::streams::{StreamOptions, StreamPoller, stream_arn};
use chat_local::websocket::{WebSocketOptions, WebSocketServer};
use serde_json::{Value, json};
use support::{Client, dynoxide, repo_root, streams_client};
use tokio::net::TcpListener;

/// Fields whose value is a map keyed by data.
const DATA_MAPS: &[&str] = &[
    "headers",
    "multiValueHeaders",
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "Keys",
    "NewImage",
    "OldImage",
];

/// Collects every field path of `value`: `requestContext.identity.sourceIp`, with
/// `[]` for array elements.
fn shape(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, prefix: &str, paths: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    paths.insert(path.clone());
                    if !DATA_MAPS.contains(&key.as_str()) {
                        walk(child, &path, paths);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{prefix}[]"), paths);
                }
            }
            _ => {}
        }
    }
    let mut paths = BTreeSet::new();
    walk(value, "", &mut paths);
    paths
}

fn event_file(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {} failed: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("events/{name} is not JSON: {err}"))
}

fn assert_same_shape(name: &str, expected: &Value, actual: &Value) {
    let expected_paths = shape(expected);
    let actual_paths = shape(actual);
    let missing: Vec<_> = expected_paths.difference(&actual_paths).collect();
    let extra: Vec<_> = actual_paths.difference(&expected_paths).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: fields missing from the emulator's event: {missing:?}; fields it adds: {extra:?}\n\
         emulator's event: {actual:#}"
    );
}

/// Records every event of every kind.
#[derive(Default)]
struct Recorder {
    websocket: Mutex<Vec<(String, Value)>>,
    http: Mutex<Vec<Value>>,
    stream: Mutex<Vec<Value>>,
    upload: Mutex<Vec<Value>>,
}

impl WebSocketFunctions for Recorder {
    fn invoke(&self, route_key: &str, event: Value) -> Invocation<'_, ApiGatewayProxyResponse> {
        self.websocket
            .lock()
            .unwrap()
            .push((route_key.to_owned(), event));
        Box::pin(async {
            let mut response = ApiGatewayProxyResponse::default();
            response.status_code = 200;
            Ok(response)
        })
    }
}

impl HttpFunction for Recorder {
    fn invoke(&self, event: Value) -> Invocation<'_, HttpResponse> {
        self.http.lock().unwrap().push(event);
        Box::pin(async { Ok(HttpResponse::new(lambda_http::Body::Empty)) })
    }
}

impl StreamFunction for Recorder {
    fn invoke(&self, event: Value) -> Invocation<'_, DynamoDbEventResponse> {
        self.stream.lock().unwrap().push(event);
        Box::pin(async { Ok(DynamoDbEventResponse::default()) })
    }
}

impl UploadFunction for Recorder {
    fn invoke(&self, event: Value) -> Invocation<'_, ()> {
        self.upload.lock().unwrap().push(event);
        Box::pin(async { Ok(()) })
    }
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn options() -> WebSocketOptions {
    WebSocketOptions {
        stage: "local".into(),
        api_id: "localapi01".into(),
        idle_timeout: Duration::from_secs(600),
        max_connection_age: Duration::from_secs(7200),
        drop_disconnects: false,
    }
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

#[tokio::test]
async fn websocket_events_match_the_payload_files() {
    let recorder = Arc::new(Recorder::default());
    let server = WebSocketServer::start(loopback().await, recorder.clone(), options()).unwrap();
    let url = format!("ws://{}/local?ticket=tkt-example-0001", server.address());
    let mut client = Client::connect(&url).await;
    client
        .send_json(json!({ "type": "message", "chat_id": "chat-example", "content": "hello bob" }))
        .await;
    client.send_json(json!({ "type": "ping" })).await;
    wait_for("two frames", || {
        recorder.websocket.lock().unwrap().len() == 3
    })
    .await;
    client.close().await;
    wait_for("$disconnect", || {
        recorder.websocket.lock().unwrap().len() == 4
    })
    .await;
    server.stop().await;

    let events = recorder.websocket.lock().unwrap().clone();
    let routes: Vec<&str> = events.iter().map(|(route, _)| route.as_str()).collect();
    assert_eq!(routes, ["$connect", "message", "$default", "$disconnect"]);
    assert_same_shape(
        "ws-connect.json",
        &event_file("ws-connect.json"),
        &events[0].1,
    );
    assert_same_shape(
        "ws-message.json",
        &event_file("ws-message.json"),
        &events[1].1,
    );
    assert_same_shape(
        "ws-default-ping.json",
        &event_file("ws-default-ping.json"),
        &events[2].1,
    );
    assert_same_shape(
        "ws-disconnect.json",
        &event_file("ws-disconnect.json"),
        &events[3].1,
    );

    let connect = &events[0].1;
    assert_eq!(
        connect["queryStringParameters"]["ticket"],
        "tkt-example-0001"
    );
    assert_eq!(connect["requestContext"]["eventType"], "CONNECT");
    assert_eq!(connect["headers"]["User-Agent"], "chat-local-tests");
    assert!(connect["headers"]["Sec-WebSocket-Key"].is_string());
    let connection_id = connect["requestContext"]["connectionId"].as_str().unwrap();
    assert_eq!(connection_id.len(), 16);
    for (_, event) in &events {
        assert_eq!(event["requestContext"]["connectionId"], connection_id);
        assert_eq!(event["requestContext"]["stage"], "local");
        assert_eq!(
            event["requestContext"]["connectedAt"],
            connect["requestContext"]["connectedAt"]
        );
    }
    assert_eq!(events[1].1["requestContext"]["eventType"], "MESSAGE");

    let recorder = Arc::new(Recorder::default());
    let server = WebSocketServer::start(loopback().await, recorder.clone(), options()).unwrap();
    Client::connect(&format!("ws://{}/local", server.address()))
        .await
        .close()
        .await;
    server.stop().await;
    let no_ticket = recorder.websocket.lock().unwrap()[0].1.clone();
    assert_same_shape(
        "ws-connect-no-ticket.json",
        &event_file("ws-connect-no-ticket.json"),
        &no_ticket,
    );
    // A close frame without a status code, as `close(None)` sends.
    assert_eq!(events[3].1["requestContext"]["disconnectStatusCode"], 1005);
}

#[tokio::test]
async fn http_events_match_the_payload_files() {
    let recorder = Arc::new(Recorder::default());
    let server = HttpServer::start(
        loopback().await,
        recorder.clone(),
        HttpOptions {
            api_id: "localapi02".into(),
            account_id: "123456789012".into(),
            allowed_origin: "*".into(),
            jwt_secret: b"local-development-secret-0123456789abcdef".to_vec(),
        },
    )
    .unwrap();
    let base = format!("http://{}", server.address());
    let http = reqwest::Client::new();
    http.post(format!("{base}/chats"))
        .bearer_auth("token")
        .json(&json!({ "name": "Project chat", "member_ids": ["bob"] }))
        .send()
        .await
        .unwrap();
    http.get(format!("{base}/inbox/sync?limit=50"))
        .bearer_auth("token")
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/connect-ticket"))
        .bearer_auth("token")
        .send()
        .await
        .unwrap();
    server.stop().await;

    let events = recorder.http.lock().unwrap().clone();
    assert_eq!(events.len(), 3);
    assert_same_shape(
        "http-create-chat.json",
        &event_file("http-create-chat.json"),
        &events[0],
    );
    assert_same_shape(
        "http-inbox-sync.json",
        &event_file("http-inbox-sync.json"),
        &events[1],
    );
    assert_same_shape(
        "http-connect-ticket.json",
        &event_file("http-connect-ticket.json"),
        &events[2],
    );
    assert_eq!(
        events[0]["body"],
        r#"{"member_ids":["bob"],"name":"Project chat"}"#
    );
    assert_eq!(events[1]["queryStringParameters"], json!({ "limit": "50" }));
    assert_eq!(events[1]["rawPath"], "/inbox/sync");
    assert_eq!(events[2]["headers"]["authorization"], "Bearer token");
}

#[tokio::test]
async fn stream_records_match_the_payload_file() {
    let db = dynoxide().await;
    db.put_message("01M90MY00BEYHG46Z33YBFDTZH").await;
    db.client()
        .update_item()
        .table_name(&db.tables.messages)
        .key("chat_id", AttributeValue::S("c".into()))
        .key(
            "message_id",
            AttributeValue::S("01M90MY00BEYHG46Z33YBFDTZH".into()),
        )
        .update_expression("SET content = :content")
        .expression_attribute_values(":content", AttributeValue::S("edited".into()))
        .send()
        .await
        .expect("UpdateItem failed");
    let arn = stream_arn(&db.client(), &db.tables.messages).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let poller = StreamPoller::start(
        streams_client(&db.endpoint),
        arn.clone(),
        recorder.clone(),
        Checkpoints::in_memory(&arn),
        StreamOptions::default(),
    );
    wait_for("a batch", || !recorder.stream.lock().unwrap().is_empty()).await;
    poller.stop().await;

    let batch = recorder.stream.lock().unwrap()[0].clone();
    let records = batch["Records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let file = event_file("stream-fanout-batch.json");
    assert_same_shape("the INSERT record", &file["Records"][0], &records[0]);
    assert_same_shape("the MODIFY record", &file["Records"][1], &records[1]);
    assert_eq!(records[0]["eventName"], "INSERT");
    assert_eq!(records[1]["eventName"], "MODIFY");
    assert_eq!(records[0]["eventSourceARN"], arn);
    assert_eq!(
        records[1]["dynamodb"]["OldImage"]["content"]["S"],
        "content of 01M90MY00BEYHG46Z33YBFDTZH"
    );
    assert_eq!(records[1]["dynamodb"]["NewImage"]["content"]["S"], "edited");
}

#[tokio::test]
async fn s3_notification_matches_the_payload_file() {
    let recorder = Arc::new(Recorder::default());
    let listener = loopback().await;
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let root = tempfile::tempdir().unwrap();
    let s3 = EmbeddedS3::start(
        listener,
        root.path(),
        &S3Options {
            region: "us-east-1".into(),
            allowed_origin: "*".into(),
        },
        recorder.clone(),
    )
    .unwrap();
    let sdk_config = chat_local::aws::sdk_config(
        "us-east-1",
        chat_local::aws::LocalEndpoints {
            dynamodb: "http://127.0.0.1:9".into(),
            dynamodb_streams: "http://127.0.0.1:9".into(),
            s3: endpoint.clone(),
        },
    )
    .await;
    let client = shared::attachments::s3_client(&sdk_config, Some(&endpoint));
    create_bucket(&client, "chat-attachments-local")
        .await
        .unwrap();
    let bucket = shared::attachments::AttachmentBucket::new(client, "chat-attachments-local");
    let key = "chats/chat-example/01M90MY570YNW8TGY98A02NYNJ/photo 1.png";
    let upload = bucket
        .presign_upload(
            key,
            "image/png",
            1234,
            shared::domain::Timestamp::new(chrono::Utc::now()),
        )
        .await
        .expect("presigning failed");
    let mut request = reqwest::Client::new()
        .put(&upload.url)
        .body(vec![7u8; 1234]);
    for (name, value) in &upload.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("the PUT failed");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    wait_for("the notification", || {
        !recorder.upload.lock().unwrap().is_empty()
    })
    .await;
    s3.stop().await;

    let event = recorder.upload.lock().unwrap()[0].clone();
    let file = event_file("s3-object-created.json");
    assert_same_shape("s3-object-created.json", &file, &event);
    let object = &event["Records"][0]["s3"]["object"];
    assert_eq!(
        object["key"], file["Records"][0]["s3"]["object"]["key"],
        "the key is encoded as S3 does"
    );
    assert_eq!(object["size"], 1234);
    assert_eq!(event["Records"][0]["eventName"], "ObjectCreated:Put");
    assert_eq!(
        event["Records"][0]["s3"]["bucket"]["name"],
        "chat-attachments-local"
    );
}
