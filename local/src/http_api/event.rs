//! The HTTP API payload 2.0 event of a request, as API Gateway sends it to a
//! `$default` route on the `$default` stage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use http::HeaderMap;
use http::request::Parts;
use serde_json::{Map, Value, json};

use crate::ids;

/// The API's ids and the client's address, which the event needs besides
/// the request.
#[derive(Debug, Clone)]
pub struct EventSource {
    /// `requestContext.accountId`.
    pub account_id: String,
    /// `requestContext.apiId`.
    pub api_id: String,
    /// The client's IP address.
    pub source_ip: String,
    /// The port the request came in on, for `x-forwarded-port`.
    pub port: u16,
}

/// Builds the event of a request with head `parts` and `body`.
pub fn http_event(parts: &Parts, body: &[u8], source: &EventSource) -> Value {
    let now = Utc::now();
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or_default();
    let domain_name = domain_name(&parts.headers, source.port);
    let domain_prefix = domain_name.split('.').next().unwrap_or_default().to_owned();
    let user_agent = header_values(&parts.headers, "user-agent").unwrap_or_default();

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!("$default"));
    event.insert("rawPath".into(), json!(raw_path));
    event.insert("rawQueryString".into(), json!(raw_query));
    let cookies = cookies(&parts.headers);
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), headers(&parts.headers, source, now));
    let parameters = query_parameters(raw_query);
    if !parameters.is_empty() {
        event.insert("queryStringParameters".into(), Value::Object(parameters));
    }
    event.insert(
        "requestContext".into(),
        json!({
            "accountId": source.account_id,
            "apiId": source.api_id,
            "domainName": domain_name,
            "domainPrefix": domain_prefix,
            "http": {
                "method": parts.method.as_str(),
                "path": raw_path,
                "protocol": protocol(parts.version),
                "sourceIp": source.source_ip,
                "userAgent": user_agent,
            },
            "requestId": ids::request_id(),
            "routeKey": "$default",
            "stage": "$default",
            "time": ids::request_time(now),
            "timeEpoch": now.timestamp_millis(),
        }),
    );
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => {
                event.insert("body".into(), json!(text));
                event.insert("isBase64Encoded".into(), json!(false));
            }
            Err(_) => {
                event.insert("body".into(), json!(STANDARD.encode(body)));
                event.insert("isBase64Encoded".into(), json!(true));
            }
        }
    } else {
        event.insert("isBase64Encoded".into(), json!(false));
    }
    Value::Object(event)
}

/// Headers lower-cased (as HTTP/1.1 names arrive from hyper), repeated
/// values joined with commas, `cookie` moved to `cookies`, and the headers
/// API Gateway adds.
fn headers(headers: &HeaderMap, source: &EventSource, now: chrono::DateTime<Utc>) -> Value {
    let mut map = Map::new();
    for name in headers.keys() {
        if name == http::header::COOKIE {
            continue;
        }
        if let Some(value) = header_values(headers, name.as_str()) {
            map.insert(name.as_str().to_owned(), json!(value));
        }
    }
    let added = [
        ("x-amzn-trace-id", ids::trace_id(now)),
        ("x-forwarded-for", source.source_ip.clone()),
        ("x-forwarded-port", source.port.to_string()),
        ("x-forwarded-proto", "http".to_owned()),
    ];
    for (name, value) in added {
        map.entry(name).or_insert_with(|| json!(value));
    }
    Value::Object(map)
}

fn header_values(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Collects every `name=value` of the `Cookie` headers.
fn cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|cookie| !cookie.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `queryStringParameters`: percent-decoded, repeated names joined with commas.
fn query_parameters(raw_query: &str) -> Map<String, Value> {
    let mut parameters: Map<String, Value> = Map::new();
    for (name, value) in crate::websocket::events::query_parameters(raw_query) {
        match parameters.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                parameters.insert(name, json!(value));
            }
        }
    }
    parameters
}

/// Returns the `Host` header without its port, or 127.0.0.1.
fn domain_name(headers: &HeaderMap, port: u16) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    let suffix = format!(":{port}");
    host.strip_suffix(&suffix).unwrap_or(host).to_owned()
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> EventSource {
        EventSource {
            account_id: "123456789012".into(),
            api_id: "localapi02".into(),
            source_ip: "127.0.0.1".into(),
            port: 3000,
        }
    }

    fn parts(request: http::Request<()>) -> Parts {
        request.into_parts().0
    }

    #[test]
    fn http_event_moves_cookies_and_joins_repeated_parameters() {
        let request = http::Request::get("/inbox/sync?limit=5&x=1&x=2")
            .header("host", "127.0.0.1:3000")
            .header("cookie", "a=1; b=2")
            .header("accept", "text/plain")
            .header("accept", "application/json")
            .body(())
            .unwrap();
        let event = http_event(&parts(request), b"", &source());
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["headers"]["accept"], "text/plain,application/json");
        assert_eq!(
            event["queryStringParameters"],
            json!({ "limit": "5", "x": "1,2" })
        );
        assert_eq!(event["rawQueryString"], "limit=5&x=1&x=2");
        assert_eq!(event["requestContext"]["domainName"], "127.0.0.1");
        assert_eq!(event["requestContext"]["domainPrefix"], "127");
        assert!(event.get("body").is_none());
    }

    #[test]
    fn http_event_encodes_a_binary_body_in_base64() {
        let request = http::Request::post("/x").body(()).unwrap();
        let event = http_event(&parts(request), &[0xff, 0x00], &source());
        assert_eq!(event["body"], "/wA=");
        assert_eq!(event["isBase64Encoded"], true);
    }
}
