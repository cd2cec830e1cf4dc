//! The chat routes: create, list, read, history and members.

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use tracing::info;

use super::{PageBody, empty, json, json_body, page_limit, query};
use crate::attachments::as_seen_at;
use crate::clock::new_ulid;
use crate::domain::{
    Chat, ChatView, MAX_CHAT_NAME_CHARS, MAX_MEMBERS, MAX_MEMBERS_ADDED_AT_ONCE, Membership, Role,
    validate_token_id, validate_user_id,
};
use crate::error::{ChatError, ErrorCode};
use crate::handlers::HttpDeps;
use crate::protocol::ServerFrame;
use crate::store::{Cursor, MembershipChange, Store};

/// Tries of an add that lost a race with another change of the members.
const MEMBER_CHANGE_ATTEMPTS: u32 = 3;

/// Chats whose members are read at once when a page is built.
const MEMBER_READS_IN_FLIGHT: usize = 16;

#[derive(Debug, Deserialize)]
struct CreateChat {
    name: String,
    #[serde(default)]
    member_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct AddMembers {
    user_ids: Vec<String>,
}

/// Creates a chat; the caller becomes its owner and the others members.
pub(super) async fn create(
    deps: &HttpDeps,
    request: &Request,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    let body: CreateChat = json_body(request)?;
    let name = body.name.trim().to_owned();
    if name.is_empty() {
        return Err(ChatError::invalid_field("name", "must not be empty"));
    }
    if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(ChatError::invalid_field(
            "name",
            "must not contain control or bidirectional formatting characters",
        ));
    }
    if name.chars().count() > MAX_CHAT_NAME_CHARS {
        return Err(ChatError::invalid_field(
            "name",
            format_args!("must be at most {MAX_CHAT_NAME_CHARS} characters"),
        ));
    }
    let others = distinct_user_ids("member_ids", &body.member_ids, user_id)?;
    if others.len() + 1 > MAX_MEMBERS {
        return Err(too_many_members());
    }

    let now = deps.clock.now();
    let chat = Chat {
        chat_id: new_ulid(now),
        name,
        created_by: user_id.to_owned(),
        created_at: now,
        last_message_at: None,
        last_seq: 0,
    };
    let mut members = vec![Membership {
        user_id: user_id.to_owned(),
        chat_id: chat.chat_id.clone(),
        role: Role::Owner,
        joined_at: now,
    }];
    members.extend(others.into_iter().map(|member| Membership {
        user_id: member,
        chat_id: chat.chat_id.clone(),
        role: Role::Member,
        joined_at: now,
    }));
    deps.store.create_chat(&chat, &members).await?;
    info!(chat_id = %chat.chat_id, members = members.len(), "chat created");

    let view = ChatView::new(chat, members);
    let everyone: Vec<String> = view.members.iter().map(|m| m.user_id.clone()).collect();
    announce(deps, &everyone, &view).await?;
    json(201, &view)
}

/// A page of the caller's chats, most recently active first.
///
/// NOTE: the order is by activity, which no index provides, so this reads all
/// of the caller's memberships and chats for every page. The cursor is the
/// last chat's (activity, id), and `has_more` is exact because the whole list is known.
pub(super) async fn list(
    deps: &HttpDeps,
    request: &Request,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    let limit = page_limit(request)?;
    let after = query(request, "cursor")
        .filter(|text| !text.is_empty())
        .map(|text| Cursor::decode("cursor", text, &["last_activity", "chat_id"]))
        .transpose()?;

    let memberships = deps.store.memberships_of_user(user_id).await?;
    let chat_ids: Vec<String> = memberships.iter().map(|m| m.chat_id.clone()).collect();
    let mut chats = deps.store.chats(&chat_ids).await?;
    chats.sort_by(|a, b| {
        b.last_activity()
            .cmp(&a.last_activity())
            .then_with(|| a.chat_id.cmp(&b.chat_id))
    });
    if let Some(cursor) = &after {
        let activity = cursor.get("last_activity").unwrap_or_default();
        let chat_id = cursor.get("chat_id").unwrap_or_default();
        let position = chats.iter().position(|chat| {
            let key = chat.last_activity().to_string();
            // Strictly after the cursor in (activity desc, chat_id asc) order.
            key.as_str() < activity || (key == activity && chat.chat_id.as_str() > chat_id)
        });
        chats.drain(..position.unwrap_or(chats.len()));
    }
    let has_more = chats.len() > limit;
    chats.truncate(limit);
    let next_cursor = has_more.then(|| chats.last()).flatten().map(|last| {
        let activity = last.last_activity().to_string();
        Cursor::from_pairs(&[("last_activity", &activity), ("chat_id", &last.chat_id)]).encode()
    });

    let views = with_members(&deps.store, chats).await?;
    json(200, &PageBody::new(views, next_cursor))
}

/// Returns the chat and its members, for members only.
pub(super) async fn get(
    deps: &HttpDeps,
    chat_id: &str,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    validate_token_id("chat_id", chat_id)?;
    require_member(&deps.store, user_id, chat_id).await?;
    let chat = load_chat(&deps.store, chat_id).await?;
    let members = deps.store.members_of_chat(chat_id).await?;
    json(200, &ChatView::new(chat, members))
}

/// Returns a page of the chat's messages, newest first.
pub(super) async fn history(
    deps: &HttpDeps,
    request: &Request,
    chat_id: &str,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    validate_token_id("chat_id", chat_id)?;
    let limit = page_limit(request)?;
    let before = query(request, "before")
        .filter(|text| !text.is_empty())
        .map(Store::history_cursor)
        .transpose()?;
    require_member(&deps.store, user_id, chat_id).await?;
    let page = deps
        .store
        .history_page(chat_id, limit, before.as_ref())
        .await?;
    let now = deps.clock.now();
    let items = page
        .items
        .iter()
        .cloned()
        .map(|message| as_seen_at(message, now))
        .collect();
    json(200, &PageBody::from_page(page, items))
}

/// Adds members; any member may. New members' live connections get `chat-created`.
pub(super) async fn add_members(
    deps: &HttpDeps,
    request: &Request,
    chat_id: &str,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    validate_token_id("chat_id", chat_id)?;
    let body: AddMembers = json_body(request)?;
    if body.user_ids.is_empty() {
        return Err(ChatError::invalid_field("user_ids", "must not be empty"));
    }
    if body.user_ids.len() > MAX_MEMBERS_ADDED_AT_ONCE {
        return Err(ChatError::invalid_field(
            "user_ids",
            format_args!("must name at most {MAX_MEMBERS_ADDED_AT_ONCE} users per request"),
        ));
    }
    let requested = distinct_user_ids("user_ids", &body.user_ids, user_id)?;
    require_member(&deps.store, user_id, chat_id).await?;
    let chat = load_chat(&deps.store, chat_id).await?;

    // The members index is eventually consistent, so a user added a moment
    // ago may look new: the conditional puts turn that into a retry.
    let mut attempts = 0;
    let (mut members, added) = loop {
        let members = deps.store.members_of_chat(chat_id).await?;
        let current: BTreeSet<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
        let now = deps.clock.now();
        let added: Vec<Membership> = requested
            .iter()
            .filter(|candidate| !current.contains(candidate.as_str()))
            .map(|candidate| Membership {
                user_id: candidate.clone(),
                chat_id: chat_id.to_owned(),
                role: Role::Member,
                joined_at: now,
            })
            .collect();
        if members.len() + added.len() > MAX_MEMBERS {
            return Err(too_many_members());
        }
        match deps
            .store
            .add_memberships(chat_id, &added, MAX_MEMBERS)
            .await?
        {
            MembershipChange::Done => break (members, added),
            MembershipChange::OverCap => return Err(too_many_members()),
            MembershipChange::Conflict if attempts < MEMBER_CHANGE_ATTEMPTS => {
                attempts += 1;
                tokio::time::sleep(crate::store::backoff(attempts)).await;
            }
            MembershipChange::Conflict => {
                return Err(ChatError::client(
                    ErrorCode::Conflict,
                    "the chat's members changed meanwhile; send the request again",
                ));
            }
        }
    };
    info!(chat_id, added = added.len(), "members added");

    members.extend(added.iter().cloned());
    let view = ChatView::new(chat, members);
    let new_ids: Vec<String> = added.into_iter().map(|m| m.user_id).collect();
    announce(deps, &new_ids, &view).await?;
    json(200, &view)
}

/// Removes a member: members may leave; removing someone else needs the owner.
/// The removed member's live subscriptions to the chat are deleted, so pushes stop at once.
pub(super) async fn remove_member(
    deps: &HttpDeps,
    chat_id: &str,
    member: &str,
    user_id: &str,
) -> Result<Response<Body>, ChatError> {
    validate_token_id("chat_id", chat_id)?;
    validate_user_id("user_id", member)?;
    let caller = require_member(&deps.store, user_id, chat_id).await?;
    if member != user_id && caller.role != Role::Owner {
        return Err(ChatError::client(
            ErrorCode::Forbidden,
            "only the chat's owner can remove other members",
        ));
    }
    if deps.store.remove_membership(member, chat_id).await? != MembershipChange::Done {
        return Err(ChatError::client(
            ErrorCode::NotFound,
            format!("{member} is not a member of chat {chat_id}"),
        ));
    }
    let connections = deps
        .store
        .connections_of_user(member, deps.clock.now())
        .await?;
    for connection in &connections {
        deps.store
            .delete_subscription(chat_id, &connection.connection_id)
            .await?;
    }
    info!(
        chat_id,
        member,
        connections = connections.len(),
        "member removed"
    );
    empty(204)
}

/// Reads the caller's membership of `chat_id`.
///
/// # Errors
///
/// `not_member` when there is none.
async fn require_member(
    store: &Store,
    user_id: &str,
    chat_id: &str,
) -> Result<Membership, ChatError> {
    store
        .membership(user_id, chat_id)
        .await?
        .ok_or_else(|| ChatError::not_member(chat_id))
}

async fn load_chat(store: &Store, chat_id: &str) -> Result<Chat, ChatError> {
    store.chat(chat_id).await?.ok_or_else(|| {
        ChatError::client(
            ErrorCode::NotFound,
            format!("chat {chat_id} does not exist"),
        )
    })
}

/// Returns the distinct, valid user ids of `ids`, without `caller`.
fn distinct_user_ids(field: &str, ids: &[String], caller: &str) -> Result<Vec<String>, ChatError> {
    if ids.len() > MAX_MEMBERS {
        return Err(too_many_members());
    }
    let mut seen = BTreeSet::new();
    let mut distinct = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        validate_user_id(&format!("{field}[{index}]"), id)?;
        if id != caller && seen.insert(id.as_str()) {
            distinct.push(id.clone());
        }
    }
    Ok(distinct)
}

/// Returns whether `c` is a Unicode bidirectional formatting character, which can
/// make a name display as something else.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn too_many_members() -> ChatError {
    ChatError::client(
        ErrorCode::InvalidRequest,
        format!("a chat has at most {MAX_MEMBERS} members"),
    )
}

/// `chats` with their members, in the same order.
async fn with_members(store: &Store, chats: Vec<Chat>) -> Result<Vec<ChatView>, ChatError> {
    futures::stream::iter(chats)
        .map(|chat| async move {
            let members = store.members_of_chat(&chat.chat_id).await?;
            Ok::<_, ChatError>(ChatView::new(chat, members))
        })
        .buffered(MEMBER_READS_IN_FLIGHT)
        .try_collect()
        .await
}

/// Sends `chat-created` with `view` to every live connection of `user_ids`.
async fn announce(deps: &HttpDeps, user_ids: &[String], view: &ChatView) -> Result<(), ChatError> {
    let now = deps.clock.now();
    let mut connection_ids = Vec::new();
    for user_id in user_ids {
        let connections = deps.store.connections_of_user(user_id, now).await?;
        connection_ids.extend(connections.into_iter().map(|c| c.connection_id));
    }
    let report = deps
        .pusher
        .push(
            &deps.store,
            &connection_ids,
            &ServerFrame::ChatCreated(view.clone()),
            now,
        )
        .await;
    info!(chat_id = %view.chat_id, delivered = report.delivered, gone = report.gone, failed = report.failed, "chat-created pushed");
    Ok(())
}
