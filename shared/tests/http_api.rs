//! `http-api`: tickets, inbox sync, chats, history and members, each fed an
//! HTTP API payload v2 event, against dynoxide.

mod fixture;
mod support;

use chrono::TimeDelta;
use fixture::{App, s};
use serde_json::{Value, json};
use shared::auth::issue_hs256;
use shared::domain::Timestamp;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn connect_ticket_is_random_single_use_and_stored_hashed() {
    let app = App::new().await;
    let (status, body) = app
        .call("POST", "/connect-ticket", Some("alice"), None)
        .await;
    assert_eq!(status, 200);
    let ticket = body["ticket"].as_str().unwrap().to_owned();
    assert_eq!(ticket.len(), 64);
    let expires_at = Timestamp::parse(body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at, app.now().plus(TimeDelta::seconds(60)));

    let rows = app.scan(&app.db.tables.tickets).await;
    assert_eq!(rows.len(), 1);
    assert_ne!(
        s(&rows[0], "ticket_hash"),
        ticket,
        "only the hash is stored"
    );
    assert_eq!(s(&rows[0], "user_id"), "alice");

    let (_, other) = app
        .call("POST", "/connect-ticket", Some("alice"), None)
        .await;
    assert_ne!(other["ticket"], body["ticket"]);
}

#[tokio::test]
async fn connect_ticket_event_issues_a_ticket_that_connects() {
    let app = App::new().await;
    let event = support::event_json("http-connect-ticket.json");
    let token = event["headers"]["authorization"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .call_with("POST", "/connect-ticket", Some(&token), None, "$default")
        .await;
    assert_eq!(status, 200, "{body}");

    let mut connect = support::event_json("ws-connect.json");
    connect["queryStringParameters"] = json!({ "ticket": body["ticket"] });
    let response = shared::handlers::ws_connect::handle(&app.ws, fixture::parse(connect))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    let rows = app.scan(&app.db.tables.connections).await;
    assert_eq!(s(&rows[0], "user_id"), "alice");
}

#[tokio::test]
async fn routes_work_on_a_named_stage() {
    let app = App::new().await;
    let event = support::event_json("http-connect-ticket-named-stage.json");
    let token = event["headers"]["authorization"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .call_with("POST", "/connect-ticket", Some(&token), None, "prod")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["ticket"].is_string());
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = App::new().await;
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/connect-ticket"),
        ("PUT", "/chats"),
        ("GET", "/chats/a/b/c"),
    ] {
        let (status, body) = app.call(method, path, Some("alice"), None).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(code(&body), "not_found", "{method} {path}");
    }
}

#[tokio::test]
async fn bad_tokens_are_rejected_with_401() {
    let app = App::new().await;
    let expired = issue_hs256(
        fixture::SECRET,
        "alice",
        Timestamp::new(chrono::Utc::now()).plus(TimeDelta::minutes(-5)),
    )
    .unwrap();
    let wrong_key = issue_hs256(
        b"another-secret-that-is-long-enough-000",
        "alice",
        Timestamp::new(chrono::Utc::now()).plus(TimeDelta::hours(1)),
    )
    .unwrap();
    let bad_subject = issue_hs256(
        fixture::SECRET,
        "not a user id",
        Timestamp::new(chrono::Utc::now()).plus(TimeDelta::hours(1)),
    )
    .unwrap();
    // {"alg":"none"} with the claims of a valid token and no signature.
    let unsigned =
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.";
    let cases = [
        None,
        Some("Bearer".to_owned()),
        Some("Basic YWxpY2U6cHc=".to_owned()),
        Some("Bearer not-a-jwt".to_owned()),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {wrong_key}")),
        Some(format!("Bearer {bad_subject}")),
        Some(format!("Bearer {unsigned}")),
    ];
    for authorization in cases {
        let (status, body) = app
            .call_with(
                "POST",
                "/connect-ticket",
                authorization.as_deref(),
                None,
                "$default",
            )
            .await;
        assert_eq!(status, 401, "{authorization:?}");
        assert_eq!(code(&body), "unauthorized", "{authorization:?}");
    }
    assert!(app.scan(&app.db.tables.tickets).await.is_empty());
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let app = App::new().await;
    let token = app.token("alice");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let header = format!("{scheme} {token}");
        let (status, body) = app
            .call_with("POST", "/connect-ticket", Some(&header), None, "$default")
            .await;
        assert_eq!(status, 200, "{scheme}: {body}");
    }
}

#[tokio::test]
async fn token_not_yet_valid_is_rejected() {
    #[derive(serde::Serialize)]
    struct Claims {
        sub: &'static str,
        exp: i64,
        nbf: i64,
    }
    let app = App::new().await;
    let now = chrono::Utc::now().timestamp();
    let early = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &Claims {
            sub: "alice",
            exp: now + 3600,
            nbf: now + 600,
        },
        &jsonwebtoken::EncodingKey::from_secret(fixture::SECRET).unwrap(),
    )
    .unwrap();
    let (status, body) = app
        .call_with(
            "POST",
            "/connect-ticket",
            Some(&format!("Bearer {early}")),
            None,
            "$default",
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(code(&body), "unauthorized");
}

#[tokio::test]
async fn create_chat_makes_creator_owner_and_announces_it() {
    let app = App::new().await;
    app.connect("bob", "conn-bob-0001").await;
    let body = support::event_json("http-create-chat.json")["body"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, chat) = app.call("POST", "/chats", Some("alice"), Some(&body)).await;

    assert_eq!(status, 201, "{chat}");
    assert_eq!(chat["name"], "Project chat");
    assert_eq!(chat["created_by"], "alice");
    assert_eq!(chat["created_at"], fixture::START);
    assert_eq!(chat["last_message_at"], Value::Null);
    let members = chat["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        members[0],
        json!({ "user_id": "alice", "role": "owner", "joined_at": fixture::START })
    );
    assert_eq!(members[1]["role"], "member");
    assert_eq!(app.scan(&app.db.tables.memberships).await.len(), 2);

    let posts = app.management.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].0, "conn-bob-0001");
    assert_eq!(posts[0].1["type"], "chat-created");
    assert_eq!(posts[0].1["chat_id"], chat["chat_id"]);
}

#[tokio::test]
async fn create_chat_rejects_bad_bodies_and_writes_nothing() {
    let app = App::new().await;
    let long_name = "n".repeat(101);
    let too_many: Vec<String> = (0..256).map(|i| format!("user{i}")).collect();
    let cases: Vec<(String, u16, &str)> = vec![
        ("not json".into(), 400, "invalid_json"),
        ("[]".into(), 400, "invalid_request"),
        (
            json!({ "member_ids": ["bob"] }).to_string(),
            400,
            "invalid_request",
        ),
        (json!({ "name": 5 }).to_string(), 400, "invalid_request"),
        (json!({ "name": "  " }).to_string(), 400, "invalid_request"),
        (
            json!({ "name": "a\u{0000}b" }).to_string(),
            400,
            "invalid_request",
        ),
        (
            json!({ "name": "abc\u{202e}def" }).to_string(),
            400,
            "invalid_request",
        ),
        (
            json!({ "name": long_name }).to_string(),
            400,
            "invalid_request",
        ),
        (
            json!({ "name": "x", "member_ids": "bob" }).to_string(),
            400,
            "invalid_request",
        ),
        (
            json!({ "name": "x", "member_ids": ["b o b"] }).to_string(),
            400,
            "invalid_request",
        ),
        (
            json!({ "name": "x", "member_ids": [""] }).to_string(),
            400,
            "invalid_request",
        ),
        (
            json!({ "name": "x", "member_ids": too_many }).to_string(),
            400,
            "invalid_request",
        ),
        (
            format!("{{\"name\":\"{}\"}}", "x".repeat(70 * 1024)),
            413,
            "content_too_large",
        ),
    ];
    for (body, status, expected) in &cases {
        let (got, response) = app.call("POST", "/chats", Some("alice"), Some(body)).await;
        let shown: String = body.chars().take(60).collect();
        assert_eq!(got, *status, "{shown}");
        assert_eq!(code(&response), *expected, "{shown}");
    }
    assert!(app.scan(&app.db.tables.chats).await.is_empty());
    assert!(app.scan(&app.db.tables.memberships).await.is_empty());
}

#[tokio::test]
async fn create_chat_with_255_others_is_allowed() {
    let app = App::new().await;
    let others: Vec<String> = (0..255).map(|i| format!("user{i}")).collect();
    let body = json!({ "name": "big", "member_ids": others }).to_string();
    let (status, chat) = app.call("POST", "/chats", Some("alice"), Some(&body)).await;
    assert_eq!(status, 201, "{chat}");
    assert_eq!(chat["members"].as_array().unwrap().len(), 256);
    assert_eq!(app.scan(&app.db.tables.memberships).await.len(), 256);
}

#[tokio::test]
async fn list_chats_orders_by_activity_and_pages() {
    let app = App::new().await;
    let mut ids = Vec::new();
    for name in ["first", "second", "third"] {
        let body = json!({ "name": name, "member_ids": ["bob"] }).to_string();
        let (_, chat) = app.call("POST", "/chats", Some("alice"), Some(&body)).await;
        ids.push(chat["chat_id"].as_str().unwrap().to_owned());
        app.clock.advance(TimeDelta::seconds(1));
    }
    app.connect("bob", "conn-bob-0001").await;
    let sent = app.send("conn-bob-0001", &ids[0], "bump", None).await;
    assert_eq!(sent["type"], "message-accepted");

    let (status, page) = app.call("GET", "/chats?limit=2", Some("alice"), None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|chat| chat["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "third"]);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["items"][0]["members"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();

    let (_, rest) = app
        .call(
            "GET",
            &format!("/chats?limit=2&cursor={cursor}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["name"], "second");
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["next_cursor"], Value::Null);

    let (_, carol) = app.call("GET", "/chats", Some("carol"), None).await;
    assert_eq!(
        carol["items"],
        json!([]),
        "other users' chats are never listed"
    );
}

#[tokio::test]
async fn inbox_sync_returns_missed_messages_in_order_with_cursor() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    for content in ["one", "two", "three"] {
        app.send("conn-alice-0001", "chat-example", content, None)
            .await;
        app.clock.advance(TimeDelta::milliseconds(5));
    }
    app.deliver("chat-example").await;

    let (status, first) = app
        .call("GET", "/inbox/sync?limit=2", Some("bob"), None)
        .await;
    assert_eq!(status, 200, "{first}");
    let contents = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|message| message["content"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(contents(&first), ["one", "two"]);
    assert_eq!(first["has_more"], true);
    assert_eq!(first["items"][0]["seq"], 1);
    assert_eq!(first["items"][0]["sender_id"], "alice");
    let cursor = first["next_cursor"].as_str().unwrap();

    let (_, second) = app
        .call(
            "GET",
            &format!("/inbox/sync?limit=2&cursor={cursor}"),
            Some("bob"),
            None,
        )
        .await;
    assert_eq!(contents(&second), ["three"]);

    let (_, alice) = app.call("GET", "/inbox/sync", Some("alice"), None).await;
    assert_eq!(alice["items"], json!([]), "the sender gets no Inbox rows");
}

#[tokio::test]
async fn inbox_sync_filters_expired_rows() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    app.send("conn-alice-0001", "chat-example", "old", None)
        .await;
    app.deliver("chat-example").await;
    app.clock.advance(TimeDelta::days(31));

    let (status, page) = app.call("GET", "/inbox/sync", Some("bob"), None).await;

    assert_eq!(status, 200);
    assert_eq!(page["items"], json!([]));
    assert_eq!(
        app.scan(&app.db.tables.inbox).await.len(),
        1,
        "TTL has not removed it yet"
    );
}

#[tokio::test]
async fn inbox_sync_rejects_bad_limit_and_cursor() {
    let app = App::new().await;
    let foreign =
        shared::store::Cursor::from_pairs(&[("recipient_id", "bob"), ("message_id", "m")]);
    for query in [
        "limit=0".to_owned(),
        "limit=101".to_owned(),
        "limit=abc".to_owned(),
        "limit=-1".to_owned(),
        "cursor=!!!".to_owned(),
        format!("cursor={}", foreign.encode()),
    ] {
        let (status, body) = app
            .call("GET", &format!("/inbox/sync?{query}"), Some("alice"), None)
            .await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(code(&body), "invalid_request", "{query}");
    }
}

#[tokio::test]
async fn chat_and_history_are_for_members_only() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("alice", "conn-alice-0001").await;
    for i in 0..5 {
        app.send("conn-alice-0001", "chat-example", &format!("m{i}"), None)
            .await;
        app.clock.advance(TimeDelta::milliseconds(2));
    }

    let (status, chat) = app
        .call("GET", "/chats/chat-example", Some("bob"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(chat["members"].as_array().unwrap().len(), 2);
    assert!(chat["last_message_at"].is_string());

    let mut seen = Vec::new();
    let mut path = "/chats/chat-example/messages?limit=2".to_owned();
    for _ in 0..3 {
        let (status, page) = app.call("GET", &path, Some("bob"), None).await;
        assert_eq!(status, 200, "{page}");
        for message in page["items"].as_array().unwrap() {
            seen.push(message["seq"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/chats/chat-example/messages?limit=2&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1], "newest first across three pages");

    for path in ["/chats/chat-example", "/chats/chat-example/messages"] {
        let (status, body) = app.call("GET", path, Some("mallory"), None).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(code(&body), "not_member", "{path}");
    }
}

#[tokio::test]
async fn members_add_leave_and_remove() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    app.connect("carol", "conn-carol-0001").await;
    app.connect("bob", "conn-bob-0001").await;
    app.subscribe("conn-bob-0001", "chat-example").await;

    let add = json!({ "user_ids": ["carol", "bob"] }).to_string();
    let (status, chat) = app
        .call(
            "POST",
            "/chats/chat-example/members",
            Some("bob"),
            Some(&add),
        )
        .await;
    assert_eq!(status, 200, "{chat}");
    assert_eq!(chat["members"].as_array().unwrap().len(), 3);
    let posts = app.management.posts();
    assert_eq!(posts.len(), 1, "only the new member is told");
    assert_eq!(posts[0].0, "conn-carol-0001");
    assert_eq!(posts[0].1["type"], "chat-created");

    let (status, body) = app
        .call(
            "DELETE",
            "/chats/chat-example/members/carol",
            Some("bob"),
            None,
        )
        .await;
    assert_eq!(status, 403, "a member cannot remove another");
    assert_eq!(code(&body), "forbidden");

    let (status, _) = app
        .call(
            "DELETE",
            "/chats/chat-example/members/bob",
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(
        app.scan(&app.db.tables.subscriptions).await.is_empty(),
        "the removed member's subscription is gone"
    );
    let frame = app.subscribe("conn-bob-0001", "chat-example").await;
    assert_eq!(frame["code"], "not_member");

    let (status, _) = app
        .call(
            "DELETE",
            "/chats/chat-example/members/carol",
            Some("carol"),
            None,
        )
        .await;
    assert_eq!(status, 204, "a member may leave");
    let (status, body) = app
        .call(
            "DELETE",
            "/chats/chat-example/members/carol",
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(code(&body), "not_found");

    let bad = [
        ("not json", 400, "invalid_json"),
        (r#"{"user_ids":[]}"#, 400, "invalid_request"),
        (r#"{"user_ids":"x"}"#, 400, "invalid_request"),
        (r#"{}"#, 400, "invalid_request"),
    ];
    for (body, status, expected) in bad {
        let (got, response) = app
            .call(
                "POST",
                "/chats/chat-example/members",
                Some("alice"),
                Some(body),
            )
            .await;
        assert_eq!(got, status, "{body}");
        assert_eq!(code(&response), expected, "{body}");
    }
    let (status, body) = app
        .call(
            "POST",
            "/chats/chat-example/members",
            Some("mallory"),
            Some(&add),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(code(&body), "not_member");
}

#[tokio::test]
async fn concurrent_adds_cannot_pass_the_member_cap() {
    let app = App::new().await;
    app.chat("chat-example", "alice", &["bob"]).await;
    let bodies: Vec<String> = (0..4)
        .map(|batch| {
            let ids: Vec<String> = (0..99).map(|i| format!("user{batch}-{i}")).collect();
            json!({ "user_ids": ids }).to_string()
        })
        .collect();

    let adds = bodies.iter().map(|body| {
        app.call(
            "POST",
            "/chats/chat-example/members",
            Some("alice"),
            Some(body),
        )
    });
    let results = futures::future::join_all(adds).await;

    let accepted = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(
        accepted, 2,
        "two batches of 99 fit next to 2 members, a third does not"
    );
    for (status, body) in &results {
        assert!(*status == 200 || *status == 400, "{status} {body}");
    }
    let stored = app
        .items(&app.db.tables.memberships, "user_id", "alice")
        .await
        .len();
    assert_eq!(stored, 1);
    let (_, chat) = app
        .call("GET", "/chats/chat-example", Some("alice"), None)
        .await;
    assert_eq!(chat["members"].as_array().unwrap().len(), 200);
    let too_many: Vec<String> = (0..100).map(|i| format!("other{i}")).collect();
    let (status, body) = app
        .call(
            "POST",
            "/chats/chat-example/members",
            Some("alice"),
            Some(&json!({ "user_ids": too_many }).to_string()),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}
