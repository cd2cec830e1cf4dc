//! The stream poller against real Streams APIs: dynoxide's, and a scripted
//! one whose shards close and split.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chat_local::functions::{Invocation, StreamFunction};
use chat_local::streams::checkpoints::Checkpoints;
use chat_local::streams::delivery::RetryPolicy;
use chat_local::streams::{StreamOptions, StreamPoller, stream_arn};
use serde_json::{Value, json};
use support::{dynoxide, streams_client};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(15);

/// Records the `message_id` of every record it handles, in order, and fails
/// the named ids once each, as `stream-fanout` reports a failed record.
#[derive(Default)]
struct Recorder {
    fail_once: Mutex<Vec<String>>,
    handled: Mutex<Vec<String>>,
    invocations: Mutex<Vec<Vec<String>>>,
    events: Mutex<Vec<Value>>,
}

impl Recorder {
    fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }
}

impl StreamFunction for Recorder {
    fn invoke(&self, event: Value) -> Invocation<'_, DynamoDbEventResponse> {
        Box::pin(async move {
            self.events.lock().unwrap().push(event.clone());
            let records = event["Records"].as_array().cloned().unwrap_or_default();
            let ids: Vec<String> = records
                .iter()
                .map(|record| {
                    record["dynamodb"]["Keys"]["message_id"]["S"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect();
            self.invocations.lock().unwrap().push(ids.clone());
            let mut response = DynamoDbEventResponse::default();
            for (id, record) in ids.into_iter().zip(&records) {
                let mut fail_once = self.fail_once.lock().unwrap();
                if let Some(position) = fail_once.iter().position(|failing| *failing == id) {
                    fail_once.remove(position);
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = record["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .map(str::to_owned);
                    response.batch_item_failures.push(failure);
                    break;
                }
                self.handled.lock().unwrap().push(id);
            }
            Ok(response)
        })
    }
}

fn options() -> StreamOptions {
    StreamOptions {
        batch_size: 100,
        poll_interval: Duration::from_millis(20),
        describe_interval: Duration::from_millis(100),
        retry: RetryPolicy {
            max_retries: 3,
            backoff: Duration::from_millis(5),
        },
    }
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sdk_reads_dynoxide_shards() {
    let db = dynoxide().await;
    for id in ["m1", "m2", "m3"] {
        db.put_message(id).await;
    }
    let arn = stream_arn(&db.client(), &db.tables.messages)
        .await
        .expect("the Messages table has a stream");
    let client = streams_client(&db.endpoint);

    let description = client
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("DescribeStream failed")
        .stream_description
        .expect("a stream description");
    let shards = description.shards.unwrap_or_default();
    assert_eq!(shards.len(), 1);
    let shard_id = shards[0].shard_id.clone().expect("a shard id");

    let iterator = client
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(&shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator failed")
        .shard_iterator
        .expect("an iterator");
    let records = client
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .expect("GetRecords failed")
        .records
        .unwrap_or_default();
    let sequence_numbers: Vec<String> = records
        .iter()
        .map(|record| {
            record
                .dynamodb
                .as_ref()
                .unwrap()
                .sequence_number
                .clone()
                .unwrap()
        })
        .collect();
    assert_eq!(sequence_numbers.len(), 3);

    let after_first = client
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(&shard_id)
        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
        .sequence_number(&sequence_numbers[0])
        .send()
        .await
        .expect("GetShardIterator after a sequence number failed")
        .shard_iterator
        .expect("an iterator");
    let rest = client
        .get_records()
        .shard_iterator(after_first)
        .send()
        .await
        .expect("GetRecords failed")
        .records
        .unwrap_or_default();
    let rest: Vec<String> = rest
        .iter()
        .map(|record| {
            record
                .dynamodb
                .as_ref()
                .unwrap()
                .sequence_number
                .clone()
                .unwrap()
        })
        .collect();
    assert_eq!(rest, sequence_numbers[1..]);

    // The AWS model constrains shard ids to 28 to 65 characters and sequence
    // numbers to 21 to 40; the Rust SDK does not check either.
    eprintln!(
        "dynoxide shard id {shard_id:?} ({} characters), sequence number {:?} ({} characters)",
        shard_id.len(),
        sequence_numbers[0],
        sequence_numbers[0].len()
    );
}

#[tokio::test]
async fn poller_retries_and_resumes_at_checkpoint() {
    let db = dynoxide().await;
    for id in ["m1", "m2", "m3", "m4", "m5"] {
        db.put_message(id).await;
    }
    // A REMOVE, which the filter keeps from the function.
    db.client()
        .delete_item()
        .table_name(&db.tables.messages)
        .key("chat_id", AttributeValue::S("c".into()))
        .key("message_id", AttributeValue::S("m5".into()))
        .send()
        .await
        .expect("DeleteItem failed");
    let arn = stream_arn(&db.client(), &db.tables.messages).await.unwrap();
    let data_dir = tempfile::tempdir().unwrap();

    let recorder = Arc::new(Recorder::default());
    recorder.fail_once.lock().unwrap().push("m3".into());
    let poller = StreamPoller::start(
        streams_client(&db.endpoint),
        arn.clone(),
        recorder.clone(),
        Checkpoints::load(data_dir.path(), &arn).unwrap(),
        options(),
    );
    wait_for("five records", || recorder.handled().len() >= 5).await;
    assert_eq!(recorder.handled(), ["m1", "m2", "m3", "m4", "m5"]);
    let invocations = recorder.invocations.lock().unwrap().clone();
    assert_eq!(invocations[0], ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(invocations[1], ["m3", "m4", "m5"], "the retry starts at m3");
    for event in recorder.events.lock().unwrap().iter() {
        for record in event["Records"].as_array().unwrap() {
            assert_ne!(record["eventName"], "REMOVE", "REMOVE records are filtered");
        }
    }
    poller.stop().await;

    db.put_message("m6").await;
    let after_restart = Arc::new(Recorder::default());
    let poller = StreamPoller::start(
        streams_client(&db.endpoint),
        arn.clone(),
        after_restart.clone(),
        Checkpoints::load(data_dir.path(), &arn).unwrap(),
        options(),
    );
    wait_for("the record written while stopped", || {
        !after_restart.handled().is_empty()
    })
    .await;
    poller.stop().await;
    assert_eq!(
        after_restart.handled(),
        ["m6"],
        "nothing before the checkpoint is replayed"
    );
}

// ---------------------------------------------------------------------------
// A scripted Streams API whose shard A closes and splits into B and C.

#[derive(Default)]
struct ScriptedShard {
    parent: Option<String>,
    records: Vec<Value>,
    closed: bool,
}

#[derive(Default)]
struct Script {
    shards: Vec<(String, ScriptedShard)>,
    next_sequence: u64,
}

impl Script {
    fn add_record(&mut self, shard: &str, message_id: &str) {
        self.next_sequence += 1;
        let sequence = format!("{:021}", self.next_sequence);
        let record = json!({
            "eventID": format!("event-{message_id}"),
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_796_392_026,
                "Keys": { "chat_id": { "S": "c" }, "message_id": { "S": message_id } },
                "SequenceNumber": sequence,
                "SizeBytes": 20,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
        });
        self.shard_mut(shard).records.push(record);
    }

    fn shard_mut(&mut self, id: &str) -> &mut ScriptedShard {
        if !self.shards.iter().any(|(shard, _)| shard == id) {
            self.shards.push((id.to_owned(), ScriptedShard::default()));
        }
        &mut self
            .shards
            .iter_mut()
            .find(|(shard, _)| shard == id)
            .unwrap()
            .1
    }

    fn shard(&self, id: &str) -> Option<&ScriptedShard> {
        self.shards
            .iter()
            .find(|(shard, _)| shard == id)
            .map(|(_, shard)| shard)
    }
}

type SharedScript = Arc<Mutex<Script>>;

async fn streams_api(
    State(script): State<SharedScript>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let script = script.lock().unwrap();
    let body = match target.rsplit('.').next().unwrap_or_default() {
        "DescribeStream" => {
            let shards: Vec<Value> = script
                .shards
                .iter()
                .map(|(id, shard)| {
                    let mut range = json!({
                        "StartingSequenceNumber": shard.records.first()
                            .map(|record| record["dynamodb"]["SequenceNumber"].clone())
                            .unwrap_or(json!("000000000000000000000")),
                    });
                    if shard.closed {
                        range["EndingSequenceNumber"] = shard
                            .records
                            .last()
                            .map(|record| record["dynamodb"]["SequenceNumber"].clone())
                            .unwrap_or(json!("000000000000000000000"));
                    }
                    let mut value = json!({ "ShardId": id, "SequenceNumberRange": range });
                    if let Some(parent) = &shard.parent {
                        value["ParentShardId"] = json!(parent);
                    }
                    value
                })
                .collect();
            json!({ "StreamDescription": {
                "StreamArn": request["StreamArn"],
                "StreamStatus": "ENABLED",
                "StreamViewType": "NEW_AND_OLD_IMAGES",
                "Shards": shards,
            }})
        }
        "GetShardIterator" => {
            let shard_id = request["ShardId"].as_str().unwrap_or_default();
            let Some(shard) = script.shard(shard_id) else {
                return error("ResourceNotFoundException");
            };
            let position = match request["ShardIteratorType"].as_str() {
                Some("AFTER_SEQUENCE_NUMBER") => shard
                    .records
                    .iter()
                    .position(|record| {
                        record["dynamodb"]["SequenceNumber"] == request["SequenceNumber"]
                    })
                    .map_or(0, |index| index + 1),
                _ => 0,
            };
            json!({ "ShardIterator": format!("{shard_id}|{position}") })
        }
        "GetRecords" => {
            let iterator = request["ShardIterator"].as_str().unwrap_or_default();
            let (shard_id, position) = iterator.split_once('|').unwrap_or_default();
            let position: usize = position.parse().unwrap_or(0);
            let Some(shard) = script.shard(shard_id) else {
                return error("ResourceNotFoundException");
            };
            let limit = request["Limit"].as_u64().unwrap_or(1000) as usize;
            let page: Vec<Value> = shard
                .records
                .iter()
                .skip(position)
                .take(limit)
                .cloned()
                .collect();
            let next = position + page.len();
            let mut body = json!({ "Records": page });
            if !(shard.closed && next >= shard.records.len()) {
                body["NextShardIterator"] = json!(format!("{shard_id}|{next}"));
            }
            body
        }
        other => return error(&format!("UnknownOperation{other}")),
    };
    (
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

fn error(code: &str) -> Response {
    let body =
        json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": code });
    (
        axum::http::StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

async fn scripted_streams_api(script: SharedScript) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let app = Router::new().fallback(streams_api).with_state(script);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (format!("http://{address}"), stop)
}

#[tokio::test]
async fn child_shards_wait_for_their_parent() {
    let script: SharedScript = Arc::new(Mutex::new(Script::default()));
    {
        let mut script = script.lock().unwrap();
        script.add_record("shardId-A", "a1");
        script.add_record("shardId-A", "a2");
    }
    let (endpoint, _stop) = scripted_streams_api(script.clone()).await;
    let recorder = Arc::new(Recorder::default());
    let poller = StreamPoller::start(
        streams_client(&endpoint),
        "arn:aws:dynamodb:us-east-1:123456789012:table/Messages/stream/label".into(),
        recorder.clone(),
        Checkpoints::in_memory("arn"),
        options(),
    );
    wait_for("the open shard's records", || recorder.handled().len() == 2).await;

    {
        // The shard list changes: A gets a last record and closes, and two
        // children appear whose records are already there.
        let mut script = script.lock().unwrap();
        script.add_record("shardId-B", "b1");
        script.add_record("shardId-C", "c1");
        script.add_record("shardId-B", "b2");
        script.shard_mut("shardId-B").parent = Some("shardId-A".into());
        script.shard_mut("shardId-C").parent = Some("shardId-A".into());
        script.add_record("shardId-A", "a3");
        script.shard_mut("shardId-A").closed = true;
    }
    wait_for("every record", || recorder.handled().len() == 6).await;
    poller.stop().await;

    let handled = recorder.handled();
    let position = |id: &str| handled.iter().position(|handled| handled == id).unwrap();
    assert_eq!(
        &handled[..3],
        ["a1", "a2", "a3"],
        "the parent first: {handled:?}"
    );
    assert!(
        position("b1") < position("b2"),
        "a shard keeps its order: {handled:?}"
    );
    let mut sorted = handled.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 6, "each record once: {handled:?}");
    let counts: HashMap<&str, usize> = handled.iter().fold(HashMap::new(), |mut counts, id| {
        *counts.entry(id.as_str()).or_default() += 1;
        counts
    });
    assert!(counts.values().all(|count| *count == 1));
}
