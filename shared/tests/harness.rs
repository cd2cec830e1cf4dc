//! Tests of the test support: the payloads of `events/`, the tables on each
//! DynamoDB-compatible backend, and the Management API stand-in.

mod support;

use std::collections::HashMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::dynamodb;
use aws_lambda_events::s3::S3Event;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, StreamViewType, TimeToLiveStatus,
};
use serde_dynamo::AttributeValue as StreamValue;
use serde_json::{Value, json};
use shared::tables::{self, TableDefinition};
use support::{ManagementApi, TestDb};

const CONNECTION_ID: &str = "conn-alice-0001";
const CHAT_ID: &str = "chat-example";
const JWT_SECRET: &str = "local-development-secret-0123456789abcdef";
const ATTACHMENT_BUCKET: &str = "chat-attachments-local";

/// The WebSocket events: file, route key, event type.
const WEBSOCKET_EVENTS: &[(&str, &str, &str)] = &[
    ("ws-connect.json", "$connect", "CONNECT"),
    ("ws-connect-no-ticket.json", "$connect", "CONNECT"),
    ("ws-disconnect.json", "$disconnect", "DISCONNECT"),
    ("ws-message.json", "message", "MESSAGE"),
    ("ws-message-too-large.json", "message", "MESSAGE"),
    ("ws-subscribe.json", "subscribe", "MESSAGE"),
    ("ws-unsubscribe.json", "unsubscribe", "MESSAGE"),
    ("ws-ack.json", "ack-message-received", "MESSAGE"),
    ("ws-default-ping.json", "$default", "MESSAGE"),
    ("ws-default-invalid-json.json", "$default", "MESSAGE"),
    ("ws-default-unknown-type.json", "$default", "MESSAGE"),
];

/// One HTTP API event and the request it carries.
struct HttpCase {
    file: &'static str,
    method: &'static str,
    raw_path: &'static str,
    raw_query: &'static str,
    stage: &'static str,
}

const HTTP_EVENTS: &[HttpCase] = &[
    HttpCase {
        file: "http-connect-ticket.json",
        method: "POST",
        raw_path: "/connect-ticket",
        raw_query: "",
        stage: "$default",
    },
    HttpCase {
        file: "http-inbox-sync.json",
        method: "GET",
        raw_path: "/inbox/sync",
        raw_query: "limit=50",
        stage: "$default",
    },
    HttpCase {
        file: "http-create-chat.json",
        method: "POST",
        raw_path: "/chats",
        raw_query: "",
        stage: "$default",
    },
    HttpCase {
        file: "http-list-chats.json",
        method: "GET",
        raw_path: "/chats",
        raw_query: "",
        stage: "$default",
    },
    // A named stage prefixes the path with the stage name.
    HttpCase {
        file: "http-connect-ticket-named-stage.json",
        method: "POST",
        raw_path: "/prod/connect-ticket",
        raw_query: "",
        stage: "prod",
    },
];

const STREAM_EVENT: &str = "stream-fanout-batch.json";
const S3_EVENT: &str = "s3-object-created.json";

// ---------------------------------------------------------------------------
// events/

#[test]
fn every_event_file_is_checked() {
    let mut known: Vec<&str> = WEBSOCKET_EVENTS.iter().map(|(name, ..)| *name).collect();
    known.extend(HTTP_EVENTS.iter().map(|case| case.file));
    known.extend([STREAM_EVENT, S3_EVENT]);

    let folder = support::repo_root().join("events");
    let mut found: Vec<String> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("reading {} failed: {error}", folder.display()))
        .map(|entry| entry.expect("listing events/ failed").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    found.sort();
    known.sort();
    assert_eq!(found, known, "events/ and the lists of this test differ");
}

#[test]
fn websocket_events_parse() {
    for &(name, route, event_type) in WEBSOCKET_EVENTS {
        let event: ApiGatewayWebsocketProxyRequest = support::event(name);
        let context = &event.request_context;
        assert_eq!(
            context.route_key.as_deref(),
            Some(route),
            "{name}: routeKey"
        );
        assert_eq!(
            context.event_type.as_deref(),
            Some(event_type),
            "{name}: eventType"
        );
        assert_eq!(
            context.connection_id.as_deref(),
            Some(CONNECTION_ID),
            "{name}: connectionId"
        );
        assert_eq!(context.stage.as_deref(), Some("local"), "{name}: stage");
        assert_eq!(
            context.apiid.as_deref(),
            Some("localapi01"),
            "{name}: apiId"
        );
        assert_eq!(
            context.domain_name.as_deref(),
            Some("127.0.0.1"),
            "{name}: domainName"
        );
        assert_eq!(
            context.message_direction.as_deref(),
            Some("IN"),
            "{name}: messageDirection"
        );
        assert_eq!(
            context.identity.source_ip.as_deref(),
            Some("127.0.0.1"),
            "{name}: identity.sourceIp"
        );
        assert!(context.request_id.is_some(), "{name}: requestId");
        assert!(
            context.extended_request_id.is_some(),
            "{name}: extendedRequestId"
        );
        assert!(context.request_time.is_some(), "{name}: requestTime");
        assert!(context.connected_at > 0, "{name}: connectedAt");
        assert!(
            context.request_time_epoch >= context.connected_at,
            "{name}: requestTimeEpoch is before connectedAt"
        );
        assert!(!event.is_base64_encoded, "{name}: isBase64Encoded");
        assert_eq!(
            context.message_id.is_some(),
            event_type == "MESSAGE",
            "{name}: messageId is on MESSAGE events only"
        );
        assert_eq!(
            event.body.is_some(),
            event_type == "MESSAGE",
            "{name}: body is on MESSAGE events only"
        );
    }
}

/// Checks the raw JSON, because the aws_lambda_events types fill in some
/// missing fields with defaults that the typed checks cannot tell apart.
#[test]
fn websocket_events_carry_every_field() {
    for &(name, _, event_type) in WEBSOCKET_EVENTS {
        let event = support::event_json(name);
        assert_eq!(event["isBase64Encoded"], json!(false), "{name}");
        let context = &event["requestContext"];
        for key in [
            "routeKey",
            "eventType",
            "extendedRequestId",
            "requestTime",
            "messageDirection",
            "stage",
            "connectedAt",
            "requestTimeEpoch",
            "requestId",
            "domainName",
            "connectionId",
            "apiId",
        ] {
            assert!(
                context.get(key).is_some_and(|value| !value.is_null()),
                "{name}: requestContext.{key} is missing"
            );
        }
        assert!(
            context["identity"]["sourceIp"].is_string(),
            "{name}: requestContext.identity.sourceIp is missing"
        );
        let has_headers =
            event.get("headers").is_some() && event.get("multiValueHeaders").is_some();
        assert_eq!(
            has_headers,
            event_type != "MESSAGE",
            "{name}: headers and multiValueHeaders are on CONNECT and DISCONNECT events only"
        );
        assert_eq!(
            context.get("messageId").is_some(),
            event_type == "MESSAGE",
            "{name}: messageId is on MESSAGE events only"
        );
    }
}

#[test]
fn ws_connect_carries_ticket() {
    let event: ApiGatewayWebsocketProxyRequest = support::event("ws-connect.json");
    assert_eq!(
        event.query_string_parameters.first("ticket"),
        Some("tkt-example-0001")
    );
    assert_eq!(
        event.multi_value_query_string_parameters.all("ticket"),
        Some(vec!["tkt-example-0001"])
    );
    assert!(event.headers.contains_key("sec-websocket-key"));
    assert!(event.multi_value_headers.contains_key("sec-websocket-key"));
    assert!(event.request_context.identity.user_agent.is_some());
}

#[test]
fn ws_connect_without_ticket() {
    let event: ApiGatewayWebsocketProxyRequest = support::event("ws-connect-no-ticket.json");
    assert!(event.query_string_parameters.is_empty());
    assert!(event.multi_value_query_string_parameters.is_empty());
    assert!(event.headers.contains_key("host"));
    let raw = support::event_json("ws-connect-no-ticket.json");
    assert!(raw.get("queryStringParameters").is_none());
}

#[test]
fn ws_disconnect_carries_close_status() {
    let event: ApiGatewayWebsocketProxyRequest = support::event("ws-disconnect.json");
    let context = &event.request_context;
    assert_eq!(context.disconnect_status_code, Some(1005));
    assert_eq!(
        context.disconnect_reason.as_deref(),
        Some("Client-side close frame status not set")
    );
    assert!(event.headers.contains_key("host"));
    assert!(event.multi_value_headers.contains_key("host"));
}

fn frame_of(name: &str) -> Value {
    let event: ApiGatewayWebsocketProxyRequest = support::event(name);
    let body = event.body.unwrap_or_else(|| panic!("{name} has no body"));
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("{name}: body is not JSON: {error}"))
}

#[test]
fn ws_frames_match_their_routes() {
    assert_eq!(
        frame_of("ws-message.json"),
        json!({
            "type": "message",
            "chat_id": CHAT_ID,
            "content": "hello bob",
            "client_message_id": "c-0001",
        })
    );
    assert_eq!(
        frame_of("ws-subscribe.json"),
        json!({ "type": "subscribe", "chat_id": CHAT_ID })
    );
    assert_eq!(
        frame_of("ws-unsubscribe.json"),
        json!({ "type": "unsubscribe", "chat_id": CHAT_ID })
    );
    assert_eq!(frame_of("ws-default-ping.json"), json!({ "type": "ping" }));
    assert_eq!(
        frame_of("ws-default-unknown-type.json"),
        json!({ "type": "shout" })
    );
}

#[test]
fn ws_message_too_large_exceeds_cap() {
    let frame = frame_of("ws-message-too-large.json");
    assert_eq!(frame["type"], "message");
    assert_eq!(frame["chat_id"], CHAT_ID);
    let content = frame["content"].as_str().expect("content is a string");
    assert_eq!(content.len(), 9000);
    assert!(content.is_ascii());
}

#[test]
fn ws_ack_names_valid_ulid() {
    let frame = frame_of("ws-ack.json");
    assert_eq!(frame["type"], "ack-message-received");
    let message_id = frame["message_id"]
        .as_str()
        .expect("message_id is a string");
    assert!(
        ulid::Ulid::from_string(message_id).is_ok(),
        "{message_id} is not a ULID"
    );
}

#[test]
fn ws_default_invalid_json_is_invalid() {
    let event: ApiGatewayWebsocketProxyRequest = support::event("ws-default-invalid-json.json");
    let body = event.body.expect("the event has a body");
    assert_eq!(body, "{not json");
    assert!(serde_json::from_str::<Value>(&body).is_err());
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

#[test]
fn http_events_parse() {
    for case in HTTP_EVENTS {
        let name = case.file;
        let event: ApiGatewayV2httpRequest = support::event(name);
        assert_eq!(event.version.as_deref(), Some("2.0"), "{name}: version");
        assert_eq!(
            event.route_key.as_deref(),
            Some("$default"),
            "{name}: routeKey"
        );
        assert_eq!(
            event.raw_path.as_deref(),
            Some(case.raw_path),
            "{name}: rawPath"
        );
        assert_eq!(
            event.raw_query_string.as_deref(),
            Some(case.raw_query),
            "{name}: rawQueryString"
        );
        assert!(!event.is_base64_encoded, "{name}: isBase64Encoded");

        let context = &event.request_context;
        assert_eq!(
            context.http.method.as_str(),
            case.method,
            "{name}: http.method"
        );
        assert_eq!(
            context.http.path.as_deref(),
            Some(case.raw_path),
            "{name}: http.path"
        );
        assert_eq!(
            context.http.protocol.as_deref(),
            Some("HTTP/1.1"),
            "{name}: http.protocol"
        );
        assert_eq!(
            context.http.source_ip.as_deref(),
            Some("127.0.0.1"),
            "{name}: http.sourceIp"
        );
        assert!(context.http.user_agent.is_some(), "{name}: http.userAgent");
        assert_eq!(context.stage.as_deref(), Some(case.stage), "{name}: stage");
        assert_eq!(
            context.route_key.as_deref(),
            Some("$default"),
            "{name}: routeKey"
        );
        assert!(context.account_id.is_some(), "{name}: accountId");
        assert!(context.apiid.is_some(), "{name}: apiId");
        assert!(context.domain_name.is_some(), "{name}: domainName");
        assert!(context.domain_prefix.is_some(), "{name}: domainPrefix");
        assert!(context.request_id.is_some(), "{name}: requestId");
        assert!(context.time.is_some(), "{name}: time");
        assert!(context.time_epoch > 0, "{name}: timeEpoch");
    }
}

#[test]
fn http_bearer_token_verifies() {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    let key = jsonwebtoken::DecodingKey::from_secret(JWT_SECRET.as_bytes())
        .expect("the secret is a valid HS256 key");
    for case in HTTP_EVENTS {
        let name = case.file;
        let event: ApiGatewayV2httpRequest = support::event(name);
        let authorization = event
            .headers
            .get("authorization")
            .unwrap_or_else(|| panic!("{name}: no authorization header"))
            .to_str()
            .expect("authorization is ASCII");
        let token = authorization
            .strip_prefix("Bearer ")
            .unwrap_or_else(|| panic!("{name}: authorization is not a bearer token"));
        let decoded = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .unwrap_or_else(|error| panic!("{name}: verifying the token failed: {error}"));
        assert_eq!(decoded.header.alg, jsonwebtoken::Algorithm::HS256, "{name}");
        assert_eq!(decoded.header.typ.as_deref(), Some("JWT"), "{name}");
        assert_eq!(decoded.claims.sub, "alice", "{name}");
        assert_eq!(decoded.claims.exp, 4_102_444_800, "{name}");
    }
}

#[test]
fn http_requests_carry_their_input() {
    let sync: ApiGatewayV2httpRequest = support::event("http-inbox-sync.json");
    assert_eq!(sync.query_string_parameters.first("limit"), Some("50"));
    assert!(sync.body.is_none());

    let create: ApiGatewayV2httpRequest = support::event("http-create-chat.json");
    let body: Value =
        serde_json::from_str(create.body.as_deref().expect("a body")).expect("the body is JSON");
    assert_eq!(
        body,
        json!({ "name": "Project chat", "member_ids": ["bob"] })
    );
    assert_eq!(
        create
            .headers
            .get("content-type")
            .map(|value| value.as_bytes()),
        Some(&b"application/json"[..])
    );

    let list: ApiGatewayV2httpRequest = support::event("http-list-chats.json");
    assert!(list.query_string_parameters.is_empty());
}

fn string_of<'a>(item: &'a serde_dynamo::Item, name: &str) -> &'a str {
    match item.inner().get(name) {
        Some(StreamValue::S(value)) => value,
        other => panic!("{name} is not a string attribute: {other:?}"),
    }
}

fn number_of(item: &serde_dynamo::Item, name: &str) -> i64 {
    match item.inner().get(name) {
        Some(StreamValue::N(value)) => value
            .parse()
            .unwrap_or_else(|error| panic!("{name} = {value} is not an integer: {error}")),
        other => panic!("{name} is not a number attribute: {other:?}"),
    }
}

/// Checks that `image` is a message item of `chat-example` sent by `alice`.
fn check_message_image(image: &serde_dynamo::Item, keys: &serde_dynamo::Item, label: &str) {
    assert_eq!(string_of(image, "chat_id"), CHAT_ID, "{label}: chat_id");
    assert_eq!(string_of(image, "sender_id"), "alice", "{label}: sender_id");

    let message_id = string_of(image, "message_id");
    assert!(
        ulid::Ulid::from_string(message_id).is_ok(),
        "{label}: message_id {message_id} is not a ULID"
    );
    assert_eq!(
        string_of(keys, "message_id"),
        message_id,
        "{label}: Keys.message_id"
    );
    assert_eq!(string_of(keys, "chat_id"), CHAT_ID, "{label}: Keys.chat_id");
    assert_eq!(
        keys.inner().len(),
        2,
        "{label}: Keys has the two key attributes"
    );

    assert!(number_of(image, "seq") > 0, "{label}: seq");
    assert!(image.inner().contains_key("content"), "{label}: content");
    assert!(
        image.inner().contains_key("client_message_id"),
        "{label}: client_message_id"
    );

    let created_at = string_of(image, "created_at");
    let parsed = chrono::DateTime::parse_from_rfc3339(created_at)
        .unwrap_or_else(|error| panic!("{label}: created_at {created_at}: {error}"));
    assert_eq!(
        parsed
            .to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        created_at,
        "{label}: created_at is RFC 3339 in UTC with milliseconds"
    );
}

#[test]
fn stream_batch_parses() {
    let event: dynamodb::Event = support::event(STREAM_EVENT);
    let names: Vec<&str> = event
        .records
        .iter()
        .map(|record| record.event_name.as_str())
        .collect();
    assert_eq!(names, ["INSERT", "MODIFY", "MODIFY", "REMOVE", "REMOVE"]);

    let mut previous_sequence: u128 = 0;
    for (index, record) in event.records.iter().enumerate() {
        let label = format!("record {index} ({})", record.event_name);
        assert_eq!(record.event_version.as_deref(), Some("1.1"), "{label}");
        assert_eq!(
            record.event_source.as_deref(),
            Some("aws:dynamodb"),
            "{label}"
        );
        assert_eq!(record.aws_region, "us-east-1", "{label}");
        assert_eq!(record.event_id.len(), 32, "{label}: eventID");
        let arn = record.event_source_arn.as_deref().unwrap_or_default();
        assert!(
            arn.starts_with("arn:aws:dynamodb:us-east-1:") && arn.contains("/stream/"),
            "{label}: eventSourceARN {arn}"
        );

        let change = &record.change;
        assert_eq!(
            change.stream_view_type,
            Some(dynamodb::StreamViewType::NewAndOldImages),
            "{label}"
        );
        assert!(change.size_bytes > 0, "{label}: SizeBytes");
        assert!(
            change.approximate_creation_date_time.timestamp() > 0,
            "{label}: ApproximateCreationDateTime"
        );
        let sequence: u128 = change
            .sequence_number
            .as_deref()
            .unwrap_or_default()
            .parse()
            .unwrap_or_else(|error| panic!("{label}: SequenceNumber: {error}"));
        assert!(
            sequence > previous_sequence,
            "{label}: SequenceNumber does not increase"
        );
        previous_sequence = sequence;

        let has_new = !change.new_image.inner().is_empty();
        let has_old = !change.old_image.inner().is_empty();
        match record.event_name.as_str() {
            "INSERT" => assert!(has_new && !has_old, "{label}: images"),
            "MODIFY" => assert!(has_new && has_old, "{label}: images"),
            _ => assert!(!has_new && has_old, "{label}: images"),
        }
        if has_new {
            check_message_image(&change.new_image, &change.keys, &label);
        }
        if has_old {
            check_message_image(&change.old_image, &change.keys, &label);
        }
    }
}

#[test]
fn stream_batch_cases() {
    let event: dynamodb::Event = support::event(STREAM_EVENT);
    let records = &event.records;

    let insert = &records[0].change.new_image;
    assert_eq!(string_of(insert, "content"), "hello bob");
    assert_eq!(string_of(insert, "client_message_id"), "c-0001");
    assert!(!insert.inner().contains_key("upload_status"));

    let uploaded = &records[1].change;
    assert_eq!(string_of(&uploaded.old_image, "upload_status"), "pending");
    assert_eq!(string_of(&uploaded.new_image, "upload_status"), "uploaded");
    for image in [&uploaded.old_image, &uploaded.new_image] {
        assert_eq!(string_of(image, "file_name"), "photo 1.png");
        assert_eq!(string_of(image, "content_type"), "image/png");
        assert_eq!(number_of(image, "size"), 1234);
        assert_eq!(string_of(image, "s3_bucket"), ATTACHMENT_BUCKET);
        let message_id = string_of(image, "message_id");
        assert_eq!(
            string_of(image, "s3_key"),
            format!("chats/{CHAT_ID}/{message_id}/photo 1.png")
        );
    }

    let edited = &records[2].change;
    assert!(!edited.old_image.inner().contains_key("upload_status"));
    assert!(!edited.new_image.inner().contains_key("upload_status"));
    assert_ne!(
        edited.old_image, edited.new_image,
        "DynamoDB writes no stream record for an update that changes nothing"
    );

    assert!(records[3].user_identity.is_none(), "a REMOVE by a user");
    let ttl = records[4]
        .user_identity
        .as_ref()
        .expect("the TTL removal has a userIdentity");
    assert_eq!(ttl.type_, "Service");
    assert_eq!(ttl.principal_id, "dynamodb.amazonaws.com");
    for record in &records[..3] {
        assert!(record.user_identity.is_none());
    }
}

#[test]
fn s3_event_parses() {
    let event: S3Event = support::event(S3_EVENT);
    assert_eq!(event.records.len(), 1);
    let record = &event.records[0];
    assert_eq!(record.event_name.as_deref(), Some("ObjectCreated:Put"));
    assert_eq!(record.event_source.as_deref(), Some("aws:s3"));
    assert_eq!(record.event_version.as_deref(), Some("2.1"));
    assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
    assert!(record.event_time.timestamp() > 0);
    assert!(record.principal_id.principal_id.is_some());
    assert!(record.request_parameters.source_ip_address.is_some());
    assert!(record.response_elements.contains_key("x-amz-request-id"));
    assert_eq!(record.s3.schema_version.as_deref(), Some("1.0"));
    assert_eq!(record.s3.bucket.name.as_deref(), Some(ATTACHMENT_BUCKET));
    assert_eq!(
        record.s3.bucket.arn.as_deref(),
        Some("arn:aws:s3:::chat-attachments-local")
    );
    assert_eq!(record.s3.object.size, Some(1234));
    assert!(record.s3.object.e_tag.is_some());
    assert!(record.s3.object.sequencer.is_some());

    let key = record.s3.object.key.as_deref().expect("object key");
    assert!(
        key.ends_with("/photo+1.png"),
        "{key}: a space is sent as '+'"
    );
    let decoded = urlencoding::decode(&key.replace('+', " "))
        .expect("the key is URL-encoded UTF-8")
        .into_owned();
    let parts: Vec<&str> = decoded.split('/').collect();
    assert_eq!(parts.len(), 4, "{decoded}");
    assert_eq!(parts[0], "chats");
    assert_eq!(parts[1], CHAT_ID);
    assert!(ulid::Ulid::from_string(parts[2]).is_ok(), "{decoded}");
    assert_eq!(parts[3], "photo 1.png");
}

#[test]
fn events_refer_to_each_other() {
    let stream: dynamodb::Event = support::event(STREAM_EVENT);
    let inserted = string_of(&stream.records[0].change.new_image, "message_id");
    let attachment = &stream.records[1].change.new_image;

    let ack = frame_of("ws-ack.json");
    assert_eq!(
        ack["message_id"], inserted,
        "ws-ack acknowledges the INSERT"
    );

    let s3: S3Event = support::event(S3_EVENT);
    let key = s3.records[0].s3.object.key.as_deref().expect("object key");
    let decoded = urlencoding::decode(&key.replace('+', " "))
        .expect("the key is URL-encoded UTF-8")
        .into_owned();
    assert_eq!(decoded, string_of(attachment, "s3_key"));
    assert_eq!(
        s3.records[0].s3.bucket.name.as_deref(),
        Some(string_of(attachment, "s3_bucket"))
    );
}

// ---------------------------------------------------------------------------
// Tables

/// Checks every table of `db` against [`tables::definitions`].
async fn check_tables(db: &TestDb) {
    let backend = db.backend;
    let listed = list_all_tables(db).await;
    let definitions = tables::definitions(&db.tables);
    assert_eq!(definitions.len(), 8);
    for definition in &definitions {
        assert!(
            listed.contains(&definition.name),
            "{backend}: ListTables lacks {}",
            definition.name
        );
        check_table(db, definition).await;
        check_ttl(db, definition).await;
    }
}

async fn list_all_tables(db: &TestDb) -> Vec<String> {
    let mut names = Vec::new();
    let mut start = None;
    loop {
        let page = db
            .client
            .list_tables()
            .set_exclusive_start_table_name(start)
            .send()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{}: ListTables failed: {}",
                    db.backend,
                    support::error_chain(&error)
                )
            });
        names.extend(page.table_names().iter().cloned());
        start = page.last_evaluated_table_name().map(str::to_owned);
        if start.is_none() {
            return names;
        }
    }
}

fn key_pairs(schema: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> (String, Option<String>) {
    let find = |key_type: KeyType| {
        schema
            .iter()
            .find(|element| *element.key_type() == key_type)
            .map(|element| element.attribute_name().to_owned())
    };
    (
        find(KeyType::Hash).expect("a key schema has a HASH key"),
        find(KeyType::Range),
    )
}

async fn check_table(db: &TestDb, definition: &TableDefinition) {
    let label = format!("{}: {}", db.backend, definition.logical);
    let description = db
        .client
        .describe_table()
        .table_name(&definition.name)
        .send()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "{label}: DescribeTable failed: {}",
                support::error_chain(&error)
            )
        });
    let table = description.table().expect("DescribeTable returns a table");

    assert_eq!(
        key_pairs(table.key_schema()),
        (
            definition.hash.to_owned(),
            definition.range.map(str::to_owned)
        ),
        "{label}: key schema"
    );
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|summary| summary.billing_mode()),
        Some(&BillingMode::PayPerRequest),
        "{label}: billing mode"
    );

    let mut indexes: HashMap<String, (String, Option<String>)> = HashMap::new();
    for index in table.global_secondary_indexes() {
        indexes.insert(
            index.index_name().unwrap_or_default().to_owned(),
            key_pairs(index.key_schema()),
        );
        assert_eq!(
            index
                .projection()
                .and_then(|projection| projection.projection_type()),
            Some(&aws_sdk_dynamodb::types::ProjectionType::All),
            "{label}: projection of {:?}",
            index.index_name()
        );
    }
    let expected: HashMap<String, (String, Option<String>)> = definition
        .indexes
        .iter()
        .map(|index| {
            (
                index.name.to_owned(),
                (index.hash.to_owned(), index.range.map(str::to_owned)),
            )
        })
        .collect();
    assert_eq!(indexes, expected, "{label}: global secondary indexes");

    let stream = table.stream_specification();
    if definition.stream {
        let stream = stream.unwrap_or_else(|| panic!("{label}: no stream specification"));
        assert!(stream.stream_enabled(), "{label}: stream enabled");
        assert_eq!(
            stream.stream_view_type(),
            Some(&StreamViewType::NewAndOldImages),
            "{label}: stream view type"
        );
        assert!(
            table.latest_stream_arn().is_some(),
            "{label}: LatestStreamArn"
        );
    } else {
        assert!(
            !stream.is_some_and(|stream| stream.stream_enabled()),
            "{label}: unexpected stream"
        );
    }
}

async fn check_ttl(db: &TestDb, definition: &TableDefinition) {
    let label = format!("{}: {}", db.backend, definition.logical);
    let output = db
        .client
        .describe_time_to_live()
        .table_name(&definition.name)
        .send()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "{label}: DescribeTimeToLive failed: {}",
                support::error_chain(&error)
            )
        });
    let description = output
        .time_to_live_description()
        .unwrap_or_else(|| panic!("{label}: no TimeToLiveDescription"));
    if definition.ttl {
        assert_eq!(
            description.time_to_live_status(),
            Some(&TimeToLiveStatus::Enabled),
            "{label}: TTL status"
        );
        assert_eq!(
            description.attribute_name(),
            Some(tables::TTL_ATTRIBUTE),
            "{label}: TTL attribute"
        );
    } else {
        assert_eq!(
            description.time_to_live_status(),
            Some(&TimeToLiveStatus::Disabled),
            "{label}: TTL status"
        );
    }
}

#[tokio::test]
async fn tables_on_dynoxide() {
    let db = support::dynoxide().await;
    check_tables(&db).await;
}

#[tokio::test]
async fn tables_on_moto() {
    let Some(db) = support::moto().await else {
        return;
    };
    check_tables(&db).await;
}

#[tokio::test]
async fn create_missing_is_idempotent() {
    for db in support::backends().await {
        tables::create_missing(&db.client, &db.tables)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{}: a second create_missing failed: {}",
                    db.backend,
                    support::error_chain(&error)
                )
            });
        check_tables(&db).await;
    }
}

#[tokio::test]
async fn prefixes_keep_backends_apart() {
    let first = support::dynoxide().await;
    let second = support::dynoxide().await;
    assert_ne!(first.endpoint, second.endpoint);
    assert_ne!(first.tables, second.tables);

    if let (Some(first), Some(second)) = (support::moto().await, support::moto().await) {
        assert_eq!(
            first.endpoint, second.endpoint,
            "one moto server per test binary"
        );
        assert_ne!(first.tables.messages, second.tables.messages);
        let listed = list_all_tables(&first).await;
        assert!(listed.contains(&first.tables.messages));
        assert!(listed.contains(&second.tables.messages));
    }
}

#[tokio::test]
async fn items_round_trip_on_backends() {
    for db in support::backends().await {
        let backend = db.backend;
        db.client
            .put_item()
            .table_name(&db.tables.chats)
            .item("chat_id", AttributeValue::S(CHAT_ID.into()))
            .item("name", AttributeValue::S("Project chat".into()))
            .item("last_seq", AttributeValue::N("0".into()))
            .send()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{backend}: PutItem failed: {}",
                    support::error_chain(&error)
                )
            });
        let output = db
            .client
            .get_item()
            .table_name(&db.tables.chats)
            .key("chat_id", AttributeValue::S(CHAT_ID.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{backend}: GetItem failed: {}",
                    support::error_chain(&error)
                )
            });
        let item = output
            .item()
            .unwrap_or_else(|| panic!("{backend}: the item is missing"));
        assert_eq!(
            item.get("name"),
            Some(&AttributeValue::S("Project chat".into())),
            "{backend}"
        );
    }
}

// ---------------------------------------------------------------------------
// Management API stand-in

#[tokio::test]
async fn management_api_records_posts() {
    let api = ManagementApi::start().await;
    assert!(api.endpoint.starts_with("http://127.0.0.1:"));
    assert!(api.endpoint.ends_with("/local"));
    let client = api.client();

    // API Gateway connection ids contain '=', which the SDK URL-encodes.
    for (connection_id, frame) in [
        ("conn-bob-0001", json!({ "type": "pong" })),
        (
            "L0SM9cOFvHcCIhw=",
            json!({ "type": "message", "content": "hi" }),
        ),
    ] {
        client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(frame.to_string()))
            .send()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "posting to {connection_id} failed: {}",
                    support::error_chain(&error)
                )
            });
    }
    assert_eq!(
        api.posts(),
        [
            ("conn-bob-0001".to_owned(), json!({ "type": "pong" })),
            (
                "L0SM9cOFvHcCIhw=".to_owned(),
                json!({ "type": "message", "content": "hi" })
            ),
        ]
    );
    assert!(api.gone_posts().is_empty());
}

#[tokio::test]
async fn management_api_gone_connection() {
    let api = ManagementApi::start().await;
    let client = api.client();
    api.set_gone("conn-gone-0001");

    let error = client
        .post_to_connection()
        .connection_id("conn-gone-0001")
        .data(Blob::new(r#"{"type":"pong"}"#))
        .send()
        .await
        .expect_err("a post to a gone connection fails");
    let service_error = error
        .as_service_error()
        .unwrap_or_else(|| panic!("not a service error: {}", support::error_chain(&error)));
    assert!(
        service_error.is_gone_exception(),
        "not GoneException: {}",
        support::error_chain(&error)
    );
    assert_eq!(
        error.raw_response().map(|raw| raw.status().as_u16()),
        Some(410)
    );
    assert!(api.posts().is_empty());
    assert_eq!(api.gone_posts(), ["conn-gone-0001"]);

    // Other connections still get their frames.
    client
        .post_to_connection()
        .connection_id("conn-bob-0001")
        .data(Blob::new(r#"{"type":"pong"}"#))
        .send()
        .await
        .expect("a post to a live connection succeeds");
    assert_eq!(
        api.posts(),
        [("conn-bob-0001".to_owned(), json!({ "type": "pong" }))]
    );
}

#[tokio::test]
async fn management_api_delete_and_get() {
    let api = ManagementApi::start().await;
    let client = api.client();

    let connection = client
        .get_connection()
        .connection_id("conn-bob-0001")
        .send()
        .await
        .unwrap_or_else(|error| panic!("GetConnection failed: {}", support::error_chain(&error)));
    assert!(connection.connected_at().is_some());
    assert!(connection.last_active_at().is_some());
    assert_eq!(
        connection
            .identity()
            .and_then(|identity| identity.source_ip()),
        Some("127.0.0.1")
    );

    client
        .delete_connection()
        .connection_id("conn-bob-0001")
        .send()
        .await
        .unwrap_or_else(|error| {
            panic!("DeleteConnection failed: {}", support::error_chain(&error))
        });
    assert_eq!(api.deletes(), ["conn-bob-0001"]);

    // A deleted connection is gone.
    let error = client
        .delete_connection()
        .connection_id("conn-bob-0001")
        .send()
        .await
        .expect_err("deleting a closed connection fails");
    assert!(
        error
            .as_service_error()
            .is_some_and(|error| error.is_gone_exception())
    );
    let error = client
        .get_connection()
        .connection_id("conn-bob-0001")
        .send()
        .await
        .expect_err("GetConnection of a closed connection fails");
    assert!(
        error
            .as_service_error()
            .is_some_and(|error| error.is_gone_exception())
    );
    let error = client
        .post_to_connection()
        .connection_id("conn-bob-0001")
        .data(Blob::new("{}"))
        .send()
        .await
        .expect_err("a post to a closed connection fails");
    assert!(
        error
            .as_service_error()
            .is_some_and(|error| error.is_gone_exception())
    );
    assert_eq!(api.deletes(), ["conn-bob-0001", "conn-bob-0001"]);
}

#[tokio::test]
async fn management_api_rejects_other_stage() {
    let api = ManagementApi::start().await;
    let endpoint = api.endpoint.replace("/local", "/prod");
    let error = support::management_client(&endpoint)
        .post_to_connection()
        .connection_id("conn-bob-0001")
        .data(Blob::new("{}"))
        .send()
        .await
        .expect_err("a post to another stage fails");
    assert_eq!(
        error.raw_response().map(|raw| raw.status().as_u16()),
        Some(404)
    );
    assert!(api.posts().is_empty());
}
