//! Chats and Memberships.

use aws_sdk_dynamodb::types::{Delete, Put, PutRequest, TransactWriteItem, Update, WriteRequest};

use super::items::attr;
use super::{Item, Store, StoreError, n, s};
use crate::domain::{Chat, Membership};
use crate::tables::MEMBERSHIPS_BY_CHAT;

/// Items of one TransactWriteItems request (a DynamoDB limit).
const TRANSACT_MAX_ITEMS: usize = 100;
/// The Chats attribute that counts members, so that the cap is kept under
/// concurrent adds. Only the store reads and writes it.
const MEMBER_COUNT: &str = "member_count";

/// The outcome of a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    /// Written.
    Done,
    /// Not written: it would take the chat past its member cap.
    OverCap,
    /// Not written: a membership changed concurrently, or does not exist.
    Conflict,
}

impl Store {
    /// Stores a new chat with its members.
    ///
    /// The chat and its first 99 memberships are written in one transaction,
    /// so a chat of up to 99 members appears whole or not at all. The
    /// memberships past those follow in batches.
    pub async fn create_chat(&self, chat: &Chat, members: &[Membership]) -> Result<(), StoreError> {
        let tables = &self.tables;
        let split = members.len().min(TRANSACT_MAX_ITEMS - 1);
        let (first, rest) = members.split_at(split);

        let mut chat_item = Item::from(chat);
        chat_item.insert(MEMBER_COUNT.to_owned(), n(members.len()));
        let mut items = vec![transact_put(&tables.chats, chat_item, Some(attr::CHAT_ID))?];
        for membership in first {
            items.push(transact_put(
                &tables.memberships,
                Item::from(membership),
                None,
            )?);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|err| StoreError::request(&tables.chats, "TransactWriteItems", err))?;

        self.put_memberships(rest).await
    }

    /// Stores memberships of a new chat in batches, past the first transaction.
    async fn put_memberships(&self, members: &[Membership]) -> Result<(), StoreError> {
        let table = &self.tables.memberships;
        let requests = members
            .iter()
            .map(|membership| {
                let put = PutRequest::builder()
                    .set_item(Some(Item::from(membership)))
                    .build()
                    .map_err(|err| StoreError::build(table, "BatchWriteItem", err))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(table, requests).await
    }

    /// Adds memberships of `chat_id` that do not exist yet, keeping the chat's
    /// member count at most `max_members`. Each transaction advances the
    /// chat's `member_count` on condition that it stays within the cap and
    /// puts up to 99 memberships on condition that none exists, so concurrent
    /// adds cannot pass the cap together.
    pub async fn add_memberships(
        &self,
        chat_id: &str,
        members: &[Membership],
        max_members: usize,
    ) -> Result<MembershipChange, StoreError> {
        let tables = &self.tables;
        for chunk in members.chunks(TRANSACT_MAX_ITEMS - 1) {
            let room = max_members.saturating_sub(chunk.len());
            let count = Update::builder()
                .table_name(&tables.chats)
                .key(attr::CHAT_ID, s(chat_id))
                .update_expression("SET #count = #count + :added")
                .condition_expression("#count <= :room")
                .expression_attribute_names("#count", MEMBER_COUNT)
                .expression_attribute_values(":added", n(chunk.len()))
                .expression_attribute_values(":room", n(room))
                .build()
                .map_err(|err| StoreError::build(&tables.chats, "TransactWriteItems", err))?;
            let mut items = vec![TransactWriteItem::builder().update(count).build()];
            for membership in chunk {
                items.push(transact_put(
                    &tables.memberships,
                    Item::from(membership),
                    Some(attr::USER_ID),
                )?);
            }
            match self.transact(&tables.memberships, items).await? {
                None => {}
                Some(failed) if failed.first() == Some(&true) => {
                    return Ok(MembershipChange::OverCap);
                }
                Some(_) => return Ok(MembershipChange::Conflict),
            }
        }
        Ok(MembershipChange::Done)
    }

    /// Deletes `user_id`'s membership of `chat_id` and lowers the chat's
    /// member count, in one transaction. `Conflict` when there is no such membership.
    pub async fn remove_membership(
        &self,
        user_id: &str,
        chat_id: &str,
    ) -> Result<MembershipChange, StoreError> {
        let tables = &self.tables;
        let build = |table: &str, err| StoreError::build(table, "TransactWriteItems", err);
        let delete = Delete::builder()
            .table_name(&tables.memberships)
            .key(attr::USER_ID, s(user_id))
            .key(attr::CHAT_ID, s(chat_id))
            .condition_expression("attribute_exists(#user)")
            .expression_attribute_names("#user", attr::USER_ID)
            .build()
            .map_err(|err| build(&tables.memberships, err))?;
        let count = Update::builder()
            .table_name(&tables.chats)
            .key(attr::CHAT_ID, s(chat_id))
            .update_expression("SET #count = #count - :one")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", MEMBER_COUNT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(|err| build(&tables.chats, err))?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact(&tables.memberships, items).await? {
            None => Ok(MembershipChange::Done),
            Some(_) => Ok(MembershipChange::Conflict),
        }
    }

    /// Reads the chat `chat_id`, if it exists.
    pub async fn chat(&self, chat_id: &str) -> Result<Option<Chat>, StoreError> {
        let table = &self.tables.chats;
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(attr::CHAT_ID, s(chat_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::request(table, "GetItem", err))?;
        output.item.as_ref().map(Chat::try_from).transpose()
    }

    /// Reads the chats `chat_ids` that exist, in no particular order.
    pub async fn chats(&self, chat_ids: &[String]) -> Result<Vec<Chat>, StoreError> {
        let keys = chat_ids
            .iter()
            .map(|chat_id| Item::from([(attr::CHAT_ID.to_owned(), s(chat_id))]))
            .collect();
        let items = self.batch_get(&self.tables.chats, keys).await?;
        items.iter().map(Chat::try_from).collect()
    }

    /// `user_id`'s membership of `chat_id`, if any.
    pub async fn membership(
        &self,
        user_id: &str,
        chat_id: &str,
    ) -> Result<Option<Membership>, StoreError> {
        let table = &self.tables.memberships;
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(attr::USER_ID, s(user_id))
            .key(attr::CHAT_ID, s(chat_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::request(table, "GetItem", err))?;
        output.item.as_ref().map(Membership::try_from).transpose()
    }

    /// Reads every member of `chat_id` (index `by_chat`, every page).
    ///
    /// The index is eventually consistent: a member added a moment ago may be missing.
    pub async fn members_of_chat(&self, chat_id: &str) -> Result<Vec<Membership>, StoreError> {
        let items = self
            .query_all(
                &self.tables.memberships,
                Some(MEMBERSHIPS_BY_CHAT),
                attr::CHAT_ID,
                chat_id,
                None,
            )
            .await?;
        items.iter().map(Membership::try_from).collect()
    }

    /// Reads every membership of `user_id` (every page).
    pub async fn memberships_of_user(&self, user_id: &str) -> Result<Vec<Membership>, StoreError> {
        let items = self
            .query_all(&self.tables.memberships, None, attr::USER_ID, user_id, None)
            .await?;
        items.iter().map(Membership::try_from).collect()
    }
}

/// Builds a transaction Put of `item` into `table`, on condition that
/// `new_key` does not exist yet when it is given.
pub(crate) fn transact_put(
    table: &str,
    item: Item,
    new_key: Option<&str>,
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some(key) = new_key {
        put = put
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", key);
    }
    let put = put
        .build()
        .map_err(|err| StoreError::build(table, "TransactWriteItems", err))?;
    Ok(TransactWriteItem::builder().put(put).build())
}
