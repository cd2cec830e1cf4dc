//! Ids and timestamps in the formats API Gateway, S3 and Lambda use.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

/// Generates a connection id in API Gateway's format: 11 random bytes in standard
/// base64, so 16 characters ending in `=` (`L0SM9cOFvHcCIhw=`). Ids with `/`
/// or `+` are drawn again, so that a client that puts an id in a URL path
/// without encoding it still names the connection.
pub fn connection_id() -> String {
    loop {
        let id = request_id();
        if !id.contains(['/', '+']) {
            return id;
        }
    }
}

/// Generates a `requestId`, `extendedRequestId` or `messageId`: 11 random bytes in
/// standard base64 (`l6Cc/RcHKIdke9U=`).
pub fn request_id() -> String {
    STANDARD.encode(rand::random::<[u8; 11]>())
}

/// Formats `at` as the `requestTime` of a WebSocket event and the `time` of
/// an HTTP API event:
/// `04/Dec/2026:13:47:00 +0000`.
pub fn request_time(at: DateTime<Utc>) -> String {
    at.format("%d/%b/%Y:%H:%M:%S %z").to_string()
}

/// Generates an `X-Amzn-Trace-Id` header value: `Root=1-{epoch seconds, 8 hex}-{24 hex}`.
pub fn trace_id(at: DateTime<Utc>) -> String {
    let random: [u8; 12] = rand::random();
    let random: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("Root=1-{:08x}-{random}", at.timestamp())
}

/// Generates an S3 `x-amz-request-id`: 16 characters of `[0-9A-Z]`.
pub fn s3_request_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..16)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// Generates an S3 `x-amz-id-2`: 48 random bytes in base64 (64 characters).
pub fn s3_host_id() -> String {
    STANDARD.encode(rand::random::<[u8; 48]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_id_has_api_gateway_shape() {
        for _ in 0..100 {
            let id = connection_id();
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.ends_with('='), "{id}");
            assert!(!id.ends_with("=="), "{id}");
            assert!(!id.contains(['/', '+']), "{id}");
        }
    }

    #[test]
    fn request_time_matches_api_gateway_format() {
        let at = DateTime::parse_from_rfc3339("2026-12-04T13:47:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(request_time(at), "04/Dec/2026:13:47:00 +0000");
    }

    #[test]
    fn s3_ids_have_s3_lengths() {
        assert_eq!(s3_request_id().len(), 16);
        assert_eq!(s3_host_id().len(), 64);
    }
}
