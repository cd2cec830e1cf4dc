//! The store against two independent DynamoDB emulators, dynoxide and moto's
//! server, so that no quirk of one is mistaken for DynamoDB's behaviour.

mod fixture;
mod support;

use std::collections::BTreeSet;

use chrono::TimeDelta;
use fixture::{App, at};
use shared::domain::{Connection, InboxEntry, Message, Subscription, Ticket};
use shared::store::{AppendOutcome, DynamoInboxWriter, put_inbox_entries};

fn message(chat_id: &str, id: &str, client_message_id: Option<&str>) -> Message {
    Message {
        message_id: id.into(),
        chat_id: chat_id.into(),
        seq: 0,
        sender_id: "alice".into(),
        content: format!("content of {id}"),
        created_at: at(fixture::START),
        client_message_id: client_message_id.map(str::to_owned),
        attachment: None,
    }
}

#[tokio::test]
async fn ticket_is_consumed_once_and_not_after_expiry() {
    for db in support::backends().await {
        let backend = db.backend;
        let app = App::on(db).await;
        let store = app.store();
        let now = app.now();
        for (hash, lifetime) in [("live", 60), ("stale", -1)] {
            store
                .put_ticket(&Ticket {
                    ticket_hash: hash.into(),
                    user_id: "alice".into(),
                    expires_at: now.plus(TimeDelta::seconds(lifetime)),
                })
                .await
                .unwrap();
        }
        let first = store.consume_ticket("live", now).await.unwrap();
        assert_eq!(
            first.map(|t| t.user_id).as_deref(),
            Some("alice"),
            "{backend}"
        );
        assert!(
            store.consume_ticket("live", now).await.unwrap().is_none(),
            "{backend}"
        );
        assert!(
            store.consume_ticket("stale", now).await.unwrap().is_none(),
            "{backend}"
        );
        assert!(
            store
                .consume_ticket("unknown", now)
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn append_advances_seq_and_deduplicates() {
    for db in support::backends().await {
        let backend = db.backend;
        let app = App::on(db).await;
        app.chat("chat-a", "alice", &["bob"]).await;
        let store = app.store();
        let now = app.now();

        let first = store
            .append_message(
                message("chat-a", "01JEXAMPLE0000000000000001", Some("c-1")),
                now,
            )
            .await
            .unwrap();
        let second = store
            .append_message(message("chat-a", "01JEXAMPLE0000000000000002", None), now)
            .await
            .unwrap();
        let again = store
            .append_message(
                message("chat-a", "01JEXAMPLE0000000000000003", Some("c-1")),
                now,
            )
            .await
            .unwrap();
        let missing = store
            .append_message(
                message("chat-none", "01JEXAMPLE0000000000000004", None),
                now,
            )
            .await
            .unwrap();

        let AppendOutcome::Appended(first) = first else {
            panic!("{backend}: first append was {first:?}");
        };
        assert_eq!(first.seq, 1, "{backend}");
        assert!(
            matches!(second, AppendOutcome::Appended(ref m) if m.seq == 2),
            "{backend}"
        );
        match again {
            AppendOutcome::Duplicate(record) => {
                assert_eq!(record.message_id, first.message_id, "{backend}");
                assert_eq!(record.seq, 1, "{backend}");
            }
            other => panic!("{backend}: a resend was {other:?}"),
        }
        assert_eq!(missing, AppendOutcome::ChatMissing, "{backend}");
        let AppendOutcome::Appended(second) = second else {
            panic!("{backend}: second append was {second:?}");
        };
        assert!(
            second.message_id > first.message_id,
            "{backend}: message ids sort by seq"
        );
        assert!(second.created_at > first.created_at, "{backend}");
        let chat = store.chat("chat-a").await.unwrap().unwrap();
        assert_eq!(chat.last_seq, 2, "{backend}");
        assert_eq!(
            app.scan(&app.db.tables.messages).await.len(),
            2,
            "{backend}"
        );
    }
}

/// Concurrent appends on dynoxide only: moto's server (5.2) does not isolate
/// concurrent TransactWriteItems, so two transactions with the same
/// `last_seq` condition can both succeed there, which DynamoDB never allows.
#[tokio::test]
async fn concurrent_appends_take_distinct_seqs() {
    {
        let db = support::dynoxide().await;
        let backend = db.backend;
        let app = App::on(db).await;
        app.chat("chat-a", "alice", &[]).await;
        let now = app.now();
        let appends = (0..20).map(|i| {
            let store = app.store().clone();
            async move {
                let id = format!("01JEXAMPLE00000000000000{i:02}");
                store
                    .append_message(message("chat-a", &id, None), now)
                    .await
            }
        });
        let outcomes = futures::future::join_all(appends).await;
        let seqs: BTreeSet<u64> = outcomes
            .into_iter()
            .map(|outcome| match outcome.unwrap() {
                AppendOutcome::Appended(message) => message.seq,
                other => panic!("{backend}: {other:?}"),
            })
            .collect();
        assert_eq!(seqs, (1..=20).collect(), "{backend}");
    }
}

#[tokio::test]
async fn inbox_pages_filter_expired_rows_and_keep_cursor() {
    for db in support::backends().await {
        let backend = db.backend;
        let app = App::on(db).await;
        let store = app.store();
        let now = app.now();
        let writer = DynamoInboxWriter::new(store.clone());
        let entries: Vec<InboxEntry> = (0..60)
            .map(|i| InboxEntry {
                recipient_id: "bob".into(),
                message_id: format!("01JEXAMPLE00000000000000{i:02}"),
                chat_id: "chat-a".into(),
                created_at: now,
                // Every third row has expired but TTL has not removed it.
                expires_at: now.plus(TimeDelta::days(if i % 3 == 0 { -1 } else { 30 })),
            })
            .collect();
        put_inbox_entries(&writer, &entries).await.unwrap();
        put_inbox_entries(&writer, &entries[..10]).await.unwrap();

        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .inbox_page("bob", 7, cursor.as_ref(), now)
                .await
                .unwrap();
            assert!(page.items.len() <= 7, "{backend}");
            seen.extend(page.items.into_iter().map(|entry| entry.message_id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = entries
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(_, entry)| entry.message_id.clone())
            .collect();
        assert_eq!(
            seen, expected,
            "{backend}: oldest first, expired filtered, no repeats"
        );
    }
}

#[tokio::test]
async fn connection_delete_removes_all_its_subscriptions() {
    for db in support::backends().await {
        let backend = db.backend;
        let app = App::on(db).await;
        let store = app.store();
        let now = app.now();
        let connection = Connection {
            connection_id: "conn-1".into(),
            user_id: "alice".into(),
            connected_at: now,
            expires_at: now.plus(TimeDelta::hours(2)),
        };
        store.put_connection(&connection).await.unwrap();
        for i in 0..30 {
            store
                .put_subscription(&Subscription {
                    chat_id: format!("chat-{i:02}"),
                    connection_id: "conn-1".into(),
                    user_id: "alice".into(),
                    expires_at: connection.expires_at,
                })
                .await
                .unwrap();
        }
        let live = store.connections_of_user("alice", now).await.unwrap();
        assert_eq!(live.len(), 1, "{backend}");

        let deleted = store.delete_connection("conn-1").await.unwrap();

        assert_eq!(deleted, 30, "{backend}");
        assert!(
            app.scan(&app.db.tables.subscriptions).await.is_empty(),
            "{backend}"
        );
        assert!(
            store.connection("conn-1", now).await.unwrap().is_none(),
            "{backend}"
        );
        assert_eq!(
            store.delete_connection("conn-1").await.unwrap(),
            0,
            "{backend}: repeatable"
        );
    }
}

#[tokio::test]
async fn messages_by_keys_keep_the_order_asked_for() {
    for db in support::backends().await {
        let backend = db.backend;
        let app = App::on(db).await;
        app.chat("chat-a", "alice", &[]).await;
        let store = app.store();
        let now = app.now();
        let mut keys = Vec::new();
        for i in 0..120 {
            let id = format!("01JEXAMPLE0000000000000{i:03}");
            let outcome = store
                .append_message(message("chat-a", &id, None), now)
                .await
                .unwrap();
            let AppendOutcome::Appended(stored) = outcome else {
                panic!("{backend}: append {i} was {outcome:?}");
            };
            keys.push(("chat-a".to_owned(), stored.message_id));
        }
        keys.reverse();
        keys.push(("chat-a".into(), "01JEXAMPLE0000000000000MISS".into()));

        let found = store.messages_by_keys(&keys).await.unwrap();

        assert_eq!(found.len(), 120, "{backend}: a missing key is left out");
        let ids: Vec<&str> = found.iter().map(|m| m.message_id.as_str()).collect();
        let expected: Vec<&str> = keys[..120].iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(ids, expected, "{backend}");
    }
}
