//! The events API Gateway sends to a WebSocket API's functions, as JSON:
//! `$connect` (CONNECT), a frame (MESSAGE) and `$disconnect` (DISCONNECT),
//! with the fields and the header quirks of real events.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value, json};

use super::WebSocketOptions;
use super::connection::ConnectionInfo;
use crate::ids;

/// Builds the `$connect` event of the upgrade request with `headers` and the raw
/// query string `query`, received on port `port`.
pub fn connect(
    options: &WebSocketOptions,
    connection: &ConnectionInfo,
    headers: &HeaderMap,
    query: Option<&str>,
    port: u16,
) -> Value {
    let now = Utc::now();
    let (headers, multi_value_headers) = connect_headers(headers, connection, port, now);
    let mut context = request_context(options, connection, "$connect", "CONNECT", now);
    if let Some(user_agent) = &connection.user_agent {
        context["identity"]["userAgent"] = json!(user_agent);
    }

    let mut event = Map::new();
    event.insert("headers".into(), headers);
    event.insert("multiValueHeaders".into(), multi_value_headers);
    let parameters = query.map(query_parameters).unwrap_or_default();
    if !parameters.is_empty() {
        let (single, multi) = parameter_maps(&parameters);
        event.insert("queryStringParameters".into(), single);
        event.insert("multiValueQueryStringParameters".into(), multi);
    }
    event.insert("requestContext".into(), context);
    event.insert("isBase64Encoded".into(), json!(false));
    Value::Object(event)
}

/// Builds the MESSAGE event of a text frame with `body`, for `route_key`.
pub fn message(
    options: &WebSocketOptions,
    connection: &ConnectionInfo,
    route_key: &str,
    body: &str,
) -> Value {
    let mut context = request_context(options, connection, route_key, "MESSAGE", Utc::now());
    context["messageId"] = json!(ids::request_id());
    json!({
        "requestContext": context,
        "body": body,
        "isBase64Encoded": false,
    })
}

/// Builds the `$disconnect` event of a connection that closed with `status_code`
/// and `reason`.
pub fn disconnect(
    options: &WebSocketOptions,
    connection: &ConnectionInfo,
    status_code: u16,
    reason: &str,
) -> Value {
    let mut context = request_context(options, connection, "$disconnect", "DISCONNECT", Utc::now());
    context["disconnectStatusCode"] = json!(status_code);
    context["disconnectReason"] = json!(reason);
    // API Gateway sends these four headers on $disconnect, three of them empty.
    let headers = [
        ("Host", connection.host.as_str()),
        ("x-api-key", ""),
        ("X-Forwarded-For", ""),
        ("x-restapi", ""),
    ];
    let single: Map<String, Value> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    let multi: Map<String, Value> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!([value])))
        .collect();
    json!({
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": context,
        "isBase64Encoded": false,
    })
}

/// Builds the `requestContext` fields that every WebSocket event has.
fn request_context(
    options: &WebSocketOptions,
    connection: &ConnectionInfo,
    route_key: &str,
    event_type: &str,
    now: DateTime<Utc>,
) -> Value {
    let request_id = ids::request_id();
    json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": ids::request_time(now),
        "messageDirection": "IN",
        "stage": options.stage,
        "connectedAt": connection.connected_at.timestamp_millis(),
        "requestTimeEpoch": now.timestamp_millis(),
        "identity": { "sourceIp": connection.source_ip },
        "requestId": request_id,
        "domainName": connection.domain_name(),
        "connectionId": connection.connection_id,
        "apiId": options.api_id,
    })
}

/// `headers` and `multiValueHeaders` of `$connect`: the client's headers in
/// the canonical capitalization API Gateway shows (`Sec-WebSocket-Key`),
/// plus the `X-Amzn-Trace-Id` and `X-Forwarded-*` headers it adds.
fn connect_headers(
    headers: &HeaderMap,
    connection: &ConnectionInfo,
    port: u16,
    now: DateTime<Utc>,
) -> (Value, Value) {
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        pairs.push((canonical_header_name(name.as_str()), values));
    }
    let added = [
        ("X-Amzn-Trace-Id", ids::trace_id(now)),
        ("X-Forwarded-For", connection.source_ip.clone()),
        ("X-Forwarded-Port", port.to_string()),
        ("X-Forwarded-Proto", "http".to_owned()),
    ];
    for (name, value) in added {
        if !pairs
            .iter()
            .any(|(existing, _)| existing.eq_ignore_ascii_case(name))
        {
            pairs.push((name.to_owned(), vec![value]));
        }
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));

    let single: Map<String, Value> = pairs
        .iter()
        .map(|(name, values)| (name.clone(), json!(values.join(","))))
        .collect();
    let multi: Map<String, Value> = pairs
        .into_iter()
        .map(|(name, values)| (name, json!(values)))
        .collect();
    (Value::Object(single), Value::Object(multi))
}

/// `sec-websocket-key` as `Sec-WebSocket-Key`, `x-amzn-trace-id` as
/// `X-Amzn-Trace-Id`: each dash-separated word capitalized, `websocket` as
/// `WebSocket`. hyper lower-cases header names, so the client's own
/// capitalization is lost.
pub fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|word| {
            if word.eq_ignore_ascii_case("websocket") {
                return "WebSocket".to_owned();
            }
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Parses a raw query string into its parameters, percent-decoded, in order.
pub fn query_parameters(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    urlencoding::decode(text)
        .map(|decoded| decoded.into_owned())
        .unwrap_or_else(|_| text.to_owned())
}

/// `queryStringParameters` (the last value of each name) and
/// `multiValueQueryStringParameters` (every value).
fn parameter_maps(parameters: &[(String, String)]) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in parameters {
        single.insert(name.clone(), json!(value));
        match multi.get_mut(name) {
            Some(Value::Array(values)) => values.push(json!(value)),
            _ => {
                multi.insert(name.clone(), json!([value]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_header_name_matches_api_gateway() {
        assert_eq!(
            canonical_header_name("sec-websocket-key"),
            "Sec-WebSocket-Key"
        );
        assert_eq!(canonical_header_name("host"), "Host");
        assert_eq!(canonical_header_name("x-amzn-trace-id"), "X-Amzn-Trace-Id");
        assert_eq!(canonical_header_name("user-agent"), "User-Agent");
    }

    #[test]
    fn query_parameters_decode_and_keep_order() {
        assert_eq!(
            query_parameters("ticket=a%2Bb&x=1&x=2&empty"),
            vec![
                ("ticket".to_owned(), "a+b".to_owned()),
                ("x".to_owned(), "1".to_owned()),
                ("x".to_owned(), "2".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn parameter_maps_keep_last_and_all_values() {
        let (single, multi) = parameter_maps(&query_parameters("x=1&x=2"));
        assert_eq!(single, json!({ "x": "2" }));
        assert_eq!(multi, json!({ "x": ["1", "2"] }));
    }
}
