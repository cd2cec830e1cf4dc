//! The HTTP API emulator through the `chat-local` binary: CORS as the
//! template configures it, and `POST /dev/token`.

mod support;

use reqwest::Method;
use serde_json::json;
use support::LocalStack;

const ORIGIN: &str = "http://127.0.0.1:5173";

#[tokio::test]
async fn preflight_skips_the_function() {
    let stack = LocalStack::start(&["--allowed-origin", ORIGIN]);
    let http = reqwest::Client::new();
    for path in ["/chats", "/dev/token", "/no/such/route"] {
        let response = http
            .request(Method::OPTIONS, format!("{}{path}", stack.urls.http_url))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .expect("the preflight request failed");
        assert_eq!(response.status(), 204, "{path}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], ORIGIN, "{path}");
        assert_eq!(
            headers["access-control-allow-methods"], "GET,POST,DELETE",
            "{path}"
        );
        assert_eq!(
            headers["access-control-allow-headers"], "authorization,content-type",
            "{path}"
        );
        assert_eq!(headers["access-control-max-age"], "600", "{path}");
    }
    assert!(
        !stack
            .logs()
            .iter()
            .any(|line| line.contains("request handled")),
        "http-api is never invoked for a preflight"
    );

    let other = http
        .request(Method::OPTIONS, format!("{}/chats", stack.urls.http_url))
        .header("origin", "http://other.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("the preflight request failed");
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn responses_carry_the_allowed_origin() {
    let stack = LocalStack::start(&["--allowed-origin", ORIGIN]);
    let http = reqwest::Client::new();
    let token = stack.api().token("alice").await;

    let allowed = http
        .get(format!("{}/chats", stack.urls.http_url))
        .bearer_auth(&token)
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("GET /chats failed");
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(allowed.headers()["vary"], "Origin");

    let unauthorized = http
        .get(format!("{}/chats", stack.urls.http_url))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("GET /chats failed");
    assert_eq!(unauthorized.status(), 401, "no token");
    assert_eq!(
        unauthorized.headers()["access-control-allow-origin"],
        ORIGIN
    );

    let other = http
        .get(format!("{}/chats", stack.urls.http_url))
        .bearer_auth(&token)
        .header("origin", "http://other.example")
        .send()
        .await
        .expect("GET /chats failed");
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn any_origin_by_default() {
    let stack = LocalStack::start(&[]);
    let response = reqwest::Client::new()
        .post(format!("{}/dev/token", stack.urls.http_url))
        .header("origin", "http://anything.example")
        .json(&json!({ "user_id": "alice" }))
        .send()
        .await
        .expect("POST /dev/token failed");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn dev_token_authorizes_requests() {
    let stack = LocalStack::start(&[]);
    let api = stack.api();
    let (status, body) = api
        .send(
            Method::POST,
            "/dev/token",
            None,
            Some(json!({ "user_id": "alice.b@example-1_x" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "alice.b@example-1_x");
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .expect("expires_at is RFC 3339");
    let minutes = (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!(
        (11 * 60..=12 * 60).contains(&minutes),
        "valid about 12 h, not {minutes} min"
    );

    let token = body["token"].as_str().unwrap();
    let (status, chats) = api.get("/chats", token).await;
    assert_eq!(status, 200, "{chats}");
}

#[tokio::test]
async fn dev_token_rejects_invalid_input() {
    let stack = LocalStack::start(&[]);
    let http = reqwest::Client::new();
    let url = format!("{}/dev/token", stack.urls.http_url);
    let long = "a".repeat(129);
    let cases: &[(&str, String, &str)] = &[
        ("not JSON", "{not json".to_owned(), "invalid_json"),
        ("empty body", String::new(), "invalid_json"),
        ("no user_id", "{}".to_owned(), "invalid_request"),
        ("a number", r#"{"user_id":7}"#.to_owned(), "invalid_request"),
        (
            "empty id",
            r#"{"user_id":""}"#.to_owned(),
            "invalid_request",
        ),
        (
            "a space",
            r#"{"user_id":"a b"}"#.to_owned(),
            "invalid_request",
        ),
        (
            "a slash",
            r#"{"user_id":"a/b"}"#.to_owned(),
            "invalid_request",
        ),
        (
            "129 bytes",
            format!(r#"{{"user_id":"{long}"}}"#),
            "invalid_request",
        ),
    ];
    for (case, body, code) in cases {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("POST /dev/token failed");
        assert_eq!(response.status(), 400, "{case}");
        let error: serde_json::Value = response.json().await.expect("a JSON error body");
        assert_eq!(error["error"]["code"], *code, "{case}: {error}");
    }

    let get = http.get(&url).send().await.expect("GET /dev/token failed");
    assert_eq!(get.status(), 404, "only POST exists");
}

#[tokio::test]
async fn unknown_route_gets_404() {
    let stack = LocalStack::start(&[]);
    let token = stack.api().token("alice").await;
    let (status, body) = stack.api().get("/no/such/route", &token).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}
