//! Stream records as Lambda's event source mapping passes them to a function:
//! the record of `GetRecords` in DynamoDB JSON, plus `eventSourceARN`, and
//! only the event names the mapping's filter lets through.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// The event names `template.yaml`'s `FilterCriteria` lets through
/// (`{"eventName": ["INSERT", "MODIFY"]}`); REMOVE records never reach the
/// function.
pub const FILTERED_EVENT_NAMES: &[&str] = &["INSERT", "MODIFY"];

/// Whether the filter lets `record` through to the function.
pub fn passes_filter(record: &Record) -> bool {
    record
        .event_name
        .as_ref()
        .is_some_and(|name| FILTERED_EVENT_NAMES.contains(&name.as_str()))
}

/// `record` as one element of the event's `Records`.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let mut out = Map::new();
    out.insert("eventID".into(), json!(record.event_id));
    out.insert(
        "eventName".into(),
        json!(record.event_name.as_ref().map(|name| name.as_str())),
    );
    out.insert("eventVersion".into(), json!(record.event_version));
    out.insert("eventSource".into(), json!(record.event_source));
    out.insert("awsRegion".into(), json!(record.aws_region));
    if let Some(change) = &record.dynamodb {
        let mut dynamodb = Map::new();
        if let Some(created) = change.approximate_creation_date_time {
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(created.secs()));
        }
        let images = [
            ("Keys", &change.keys),
            ("NewImage", &change.new_image),
            ("OldImage", &change.old_image),
        ];
        for (name, image) in images {
            if let Some(image) = image {
                dynamodb.insert(name.into(), item(image));
            }
        }
        dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number));
        dynamodb.insert("SizeBytes".into(), json!(change.size_bytes));
        dynamodb.insert(
            "StreamViewType".into(),
            json!(change.stream_view_type.as_ref().map(|view| view.as_str())),
        );
        out.insert("dynamodb".into(), Value::Object(dynamodb));
    }
    if let Some(identity) = &record.user_identity {
        out.insert(
            "userIdentity".into(),
            json!({ "type": identity.r#type, "principalId": identity.principal_id }),
        );
    }
    out.insert("eventSourceARN".into(), json!(stream_arn));
    Value::Object(out)
}

/// Returns the sequence number of a record in `lambda_record` form.
pub fn sequence_number(record: &Value) -> Option<&str> {
    record["dynamodb"]["SequenceNumber"].as_str()
}

/// Converts an item to DynamoDB JSON (`{"name": {"S": "..."}}`).
pub fn item(item: &HashMap<String, AttributeValue>) -> Value {
    let map: Map<String, Value> = item
        .iter()
        .filter_map(|(name, value)| attribute(value).map(|value| (name.clone(), value)))
        .collect();
    Value::Object(map)
}

/// One attribute value in DynamoDB JSON; `None` for a type this SDK
/// version does not know.
fn attribute(value: &AttributeValue) -> Option<Value> {
    let value = match value {
        AttributeValue::S(text) => json!({ "S": text }),
        AttributeValue::N(number) => json!({ "N": number }),
        AttributeValue::B(blob) => json!({ "B": STANDARD.encode(blob.as_ref()) }),
        AttributeValue::Ss(texts) => json!({ "SS": texts }),
        AttributeValue::Ns(numbers) => json!({ "NS": numbers }),
        AttributeValue::Bs(blobs) => {
            let encoded: Vec<String> = blobs
                .iter()
                .map(|blob| STANDARD.encode(blob.as_ref()))
                .collect();
            json!({ "BS": encoded })
        }
        AttributeValue::M(map) => json!({ "M": item(map) }),
        AttributeValue::L(list) => {
            let values: Vec<Value> = list.iter().filter_map(attribute).collect();
            json!({ "L": values })
        }
        AttributeValue::Null(is_null) => json!({ "NULL": is_null }),
        AttributeValue::Bool(flag) => json!({ "BOOL": flag }),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, StreamRecord, StreamViewType};

    use super::*;

    fn record(event_name: OperationType) -> Record {
        let keys = HashMap::from([("chat_id".to_owned(), AttributeValue::S("c".into()))]);
        let image = HashMap::from([
            ("chat_id".to_owned(), AttributeValue::S("c".into())),
            ("seq".to_owned(), AttributeValue::N("7".into())),
            ("raw".to_owned(), AttributeValue::B(Blob::new(vec![0xff]))),
            (
                "tags".to_owned(),
                AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)]),
            ),
        ]);
        Record::builder()
            .event_id("e1")
            .event_name(event_name)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs(1_796_392_026))
                    .set_keys(Some(keys))
                    .set_new_image(Some(image))
                    .sequence_number("100000000000000000001")
                    .size_bytes(42)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build(),
            )
            .user_identity(
                Identity::builder()
                    .r#type("Service")
                    .principal_id("dynamodb.amazonaws.com")
                    .build(),
            )
            .build()
    }

    #[test]
    fn lambda_record_writes_dynamodb_json() {
        let value = lambda_record(&record(OperationType::Insert), "arn:stream");
        assert_eq!(value["eventName"], "INSERT");
        assert_eq!(value["eventSourceARN"], "arn:stream");
        assert_eq!(
            value["dynamodb"]["ApproximateCreationDateTime"],
            1_796_392_026
        );
        assert_eq!(
            value["dynamodb"]["Keys"],
            json!({ "chat_id": { "S": "c" } })
        );
        assert_eq!(value["dynamodb"]["NewImage"]["seq"], json!({ "N": "7" }));
        assert_eq!(value["dynamodb"]["NewImage"]["raw"], json!({ "B": "/w==" }));
        assert_eq!(
            value["dynamodb"]["NewImage"]["tags"],
            json!({ "L": [{ "BOOL": true }, { "NULL": true }] })
        );
        assert!(value["dynamodb"].get("OldImage").is_none());
        assert_eq!(
            value["userIdentity"]["principalId"],
            "dynamodb.amazonaws.com"
        );
        assert_eq!(sequence_number(&value), Some("100000000000000000001"));
    }

    #[test]
    fn filter_passes_insert_and_modify_only() {
        assert!(passes_filter(&record(OperationType::Insert)));
        assert!(passes_filter(&record(OperationType::Modify)));
        assert!(!passes_filter(&record(OperationType::Remove)));
    }
}
