//! `ObjectCreated` notifications of the embedded S3 server.
//!
//! [`NotifyingStore`] is the s3s-fs store with a hook after each operation
//! that creates an object (PUT, copy, completed multipart upload). The hook
//! reads the object's size and ETag and queues the notification that the
//! bucket's `NotificationConfiguration` in `template.yaml` sends
//! (`s3:ObjectCreated:*` for keys under `chats/`). [`deliver_notifications`] then invokes the
//! function asynchronously, as S3 does, retrying a failure twice.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use s3s::dto;
use s3s::{S3, S3Request, S3Response, S3Result};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::functions::UploadFunction;
use crate::ids;
use crate::tasks::TaskTracker;

/// Keys that notify, as the bucket's notification filter sets.
pub const NOTIFIED_PREFIX: &str = "chats/";
/// `configurationId` of the notification.
pub const CONFIGURATION_ID: &str = "upload-complete";
/// Retries of a failed asynchronous invocation, as Lambda makes them.
pub const ASYNC_RETRIES: u32 = 2;
/// The wait before the first retry; the second waits twice as long. (Lambda
/// waits minutes; the local stack is quicker.)
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The client's address, put in the request's extensions for the
/// notification's `sourceIPAddress`.
#[derive(Debug, Clone, Copy)]
pub struct SourceIp(pub IpAddr);

/// The s3s-fs store, notifying after each created object.
pub struct NotifyingStore {
    inner: s3s_fs::FileSystem,
    region: String,
    notifications: mpsc::UnboundedSender<Value>,
    sequencer: AtomicU64,
}

impl NotifyingStore {
    /// `inner`, sending `ObjectCreated` events for `region` to `notifications`.
    pub fn new(
        inner: s3s_fs::FileSystem,
        region: &str,
        notifications: mpsc::UnboundedSender<Value>,
    ) -> Self {
        Self {
            inner,
            region: region.to_owned(),
            notifications,
            sequencer: AtomicU64::new(0),
        }
    }

    /// Queues the `event_name` notification of `bucket`/`key`, created by a
    /// request with `request_meta`, when the key is under the notified prefix.
    async fn notify(&self, event_name: &str, bucket: &str, key: &str, request_meta: RequestMeta) {
        if !key.starts_with(NOTIFIED_PREFIX) {
            return;
        }
        let head = S3Request {
            input: dto::HeadObjectInput {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                ..Default::default()
            },
            method: http::Method::HEAD,
            uri: http::Uri::from_static("/"),
            headers: http::HeaderMap::new(),
            extensions: http::Extensions::new(),
            credentials: None,
            region: None,
            service: None,
            trailing_headers: None,
        };
        let (size, etag) = match self.inner.head_object(head).await {
            Ok(response) => (
                response.output.content_length.unwrap_or_default(),
                response
                    .output
                    .e_tag
                    .map(|tag| tag.value().trim_matches('"').to_owned())
                    .unwrap_or_default(),
            ),
            Err(err) => {
                warn!(bucket, key, error = %err, "reading a created object failed; no notification");
                return;
            }
        };
        let event = object_created_event(&ObjectCreated {
            event_name,
            region: &self.region,
            bucket,
            key,
            size,
            etag: &etag,
            sequencer: self.next_sequencer(),
            meta: request_meta,
        });
        let _ = self.notifications.send(event);
    }

    /// Returns an increasing hex `sequencer`, as S3 orders the events of one key.
    fn next_sequencer(&self) -> String {
        let now = u64::try_from(Utc::now().timestamp_micros()).unwrap_or_default();
        let previous = self.sequencer.fetch_max(now, Ordering::SeqCst);
        let value = if previous >= now {
            self.sequencer.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            now
        };
        format!("{value:018X}")
    }
}

/// The client that made the request that created the object.
#[derive(Debug, Clone)]
struct RequestMeta {
    source_ip: String,
    principal_id: String,
}

impl RequestMeta {
    fn of<T>(request: &S3Request<T>) -> Self {
        let source_ip = request
            .extensions
            .get::<SourceIp>()
            .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.0.to_string());
        let principal_id = request.credentials.as_ref().map_or_else(
            || "Anonymous".to_owned(),
            |credentials| format!("AWS:{}", credentials.access_key),
        );
        Self {
            source_ip,
            principal_id,
        }
    }
}

struct ObjectCreated<'a> {
    event_name: &'a str,
    region: &'a str,
    bucket: &'a str,
    key: &'a str,
    size: i64,
    etag: &'a str,
    sequencer: String,
    meta: RequestMeta,
}

/// Builds the `S3Event` of one created object, shaped as S3 sends it.
fn object_created_event(object: &ObjectCreated<'_>) -> Value {
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": object.region,
            "eventTime": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "eventName": object.event_name,
            "userIdentity": { "principalId": object.meta.principal_id },
            "requestParameters": { "sourceIPAddress": object.meta.source_ip },
            "responseElements": {
                "x-amz-request-id": ids::s3_request_id(),
                "x-amz-id-2": ids::s3_host_id(),
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": CONFIGURATION_ID,
                "bucket": {
                    "name": object.bucket,
                    "ownerIdentity": { "principalId": "LOCALOWNER" },
                    "arn": format!("arn:aws:s3:::{}", object.bucket),
                },
                "object": {
                    "key": encode_key(object.key),
                    "size": object.size,
                    "eTag": object.etag,
                    "sequencer": object.sequencer,
                },
            },
        }]
    })
}

/// Encodes an object key as S3 writes it in notifications: URL-encoded with `+` for
/// a space (`photo 1.png` as `photo+1.png`).
///
/// NOTE: which characters S3 leaves unencoded is not documented. This keeps
/// letters, digits and `-_.*`, as form encoding does, and `/`, which the
/// notification sample in `events/` shows unencoded.
pub fn encode_key(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                encoded.push(char::from(byte));
            }
            b' ' => encoded.push('+'),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

/// Invokes `function` with each queued notification, each in a task of its
/// own, until the queue closes; `tasks` lets the stack wait for them.
pub async fn deliver_notifications(
    mut notifications: mpsc::UnboundedReceiver<Value>,
    function: Arc<dyn UploadFunction>,
    tasks: Arc<TaskTracker>,
) {
    while let Some(event) = notifications.recv().await {
        let Some(guard) = tasks.track() else {
            break;
        };
        let function = Arc::clone(&function);
        tokio::spawn(async move {
            let _guard = guard;
            invoke_with_retries(function.as_ref(), event).await;
        });
    }
}

async fn invoke_with_retries(function: &dyn UploadFunction, event: Value) {
    let record = &event["Records"][0];
    let bucket = record["s3"]["bucket"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let key = record["s3"]["object"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for attempt in 0..=ASYNC_RETRIES {
        match function.invoke(event.clone()).await {
            Ok(()) => {
                info!(bucket, key, "upload notification delivered");
                return;
            }
            Err(err) if attempt < ASYNC_RETRIES => {
                warn!(bucket, key, attempt, error = %err, "upload-complete failed; retrying");
                tokio::time::sleep(RETRY_DELAY * (attempt + 1)).await;
            }
            Err(err) => {
                error!(
                    bucket,
                    key,
                    error = %err,
                    cause = ?std::error::Error::source(&err),
                    "upload notification discarded after its retries"
                );
            }
        }
    }
}

/// Delegates every operation s3s-fs implements to it; the ones that create
/// objects also notify.
macro_rules! notifying_store {
    ($($operation:ident: $input:ident -> $output:ident;)*) => {
        #[async_trait::async_trait]
        impl S3 for NotifyingStore {
            $(
                async fn $operation(
                    &self,
                    request: S3Request<dto::$input>,
                ) -> S3Result<S3Response<dto::$output>> {
                    self.inner.$operation(request).await
                }
            )*

            async fn put_object(
                &self,
                request: S3Request<dto::PutObjectInput>,
            ) -> S3Result<S3Response<dto::PutObjectOutput>> {
                let (bucket, key) = (request.input.bucket.clone(), request.input.key.clone());
                let meta = RequestMeta::of(&request);
                let response = self.inner.put_object(request).await?;
                self.notify("ObjectCreated:Put", &bucket, &key, meta).await;
                Ok(response)
            }

            async fn copy_object(
                &self,
                request: S3Request<dto::CopyObjectInput>,
            ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
                let (bucket, key) = (request.input.bucket.clone(), request.input.key.clone());
                let meta = RequestMeta::of(&request);
                let response = self.inner.copy_object(request).await?;
                self.notify("ObjectCreated:Copy", &bucket, &key, meta).await;
                Ok(response)
            }

            async fn complete_multipart_upload(
                &self,
                request: S3Request<dto::CompleteMultipartUploadInput>,
            ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
                let (bucket, key) = (request.input.bucket.clone(), request.input.key.clone());
                let meta = RequestMeta::of(&request);
                let response = self.inner.complete_multipart_upload(request).await?;
                self.notify("ObjectCreated:CompleteMultipartUpload", &bucket, &key, meta)
                    .await;
                Ok(response)
            }
        }
    };
}

notifying_store! {
    create_bucket: CreateBucketInput -> CreateBucketOutput;
    delete_bucket: DeleteBucketInput -> DeleteBucketOutput;
    delete_object: DeleteObjectInput -> DeleteObjectOutput;
    delete_objects: DeleteObjectsInput -> DeleteObjectsOutput;
    get_bucket_location: GetBucketLocationInput -> GetBucketLocationOutput;
    get_object: GetObjectInput -> GetObjectOutput;
    head_bucket: HeadBucketInput -> HeadBucketOutput;
    head_object: HeadObjectInput -> HeadObjectOutput;
    list_buckets: ListBucketsInput -> ListBucketsOutput;
    list_objects: ListObjectsInput -> ListObjectsOutput;
    list_objects_v2: ListObjectsV2Input -> ListObjectsV2Output;
    create_multipart_upload: CreateMultipartUploadInput -> CreateMultipartUploadOutput;
    upload_part: UploadPartInput -> UploadPartOutput;
    upload_part_copy: UploadPartCopyInput -> UploadPartCopyOutput;
    list_parts: ListPartsInput -> ListPartsOutput;
    abort_multipart_upload: AbortMultipartUploadInput -> AbortMultipartUploadOutput;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_key_matches_s3_notifications() {
        assert_eq!(
            encode_key("chats/chat-example/01M90MY570YNW8TGY98A02NYNJ/photo 1.png"),
            "chats/chat-example/01M90MY570YNW8TGY98A02NYNJ/photo+1.png"
        );
        assert_eq!(encode_key("a+b=c&d"), "a%2Bb%3Dc%26d");
        assert_eq!(encode_key("é"), "%C3%A9");
    }
}
