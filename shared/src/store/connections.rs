//! Connections and Subscriptions.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};

use super::items::attr;
use super::{Item, Store, StoreError, n, s};
use crate::domain::{Connection, Subscription, Timestamp};
use crate::tables::{CONNECTIONS_BY_USER, SUBSCRIPTIONS_BY_CONNECTION};

impl Store {
    /// Stores a new connection.
    pub async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(Item::from(connection)))
            .send()
            .await
            .map_err(|err| StoreError::request(table, "PutItem", err))?;
        Ok(())
    }

    /// Reads the connection `connection_id`, unless it is unknown or expired at `now`.
    pub async fn connection(
        &self,
        connection_id: &str,
        now: Timestamp,
    ) -> Result<Option<Connection>, StoreError> {
        let table = &self.tables.connections;
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(attr::CONNECTION_ID, s(connection_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::request(table, "GetItem", err))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let connection = Connection::try_from(&item)?;
        Ok((connection.expires_at > now).then_some(connection))
    }

    /// Reads the live connections of `user_id` at `now` (index `by_user`, every page).
    pub async fn connections_of_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Connection>, StoreError> {
        let table = &self.tables.connections;
        let items = self
            .query_all(
                table,
                Some(CONNECTIONS_BY_USER),
                attr::USER_ID,
                user_id,
                Some(now),
            )
            .await?;
        items.iter().map(Connection::try_from).collect()
    }

    /// Deletes a connection and every subscription of it.
    ///
    /// Safe to repeat: deleting what is already gone is not an error.
    pub async fn delete_connection(&self, connection_id: &str) -> Result<usize, StoreError> {
        let table = &self.tables.connections;
        self.client
            .delete_item()
            .table_name(table)
            .key(attr::CONNECTION_ID, s(connection_id))
            .send()
            .await
            .map_err(|err| StoreError::request(table, "DeleteItem", err))?;

        let subscriptions = self.subscriptions_of_connection(connection_id).await?;
        let deletes = subscriptions
            .iter()
            .map(|subscription| subscription_delete(subscription, &self.tables.subscriptions))
            .collect::<Result<Vec<_>, _>>()?;
        let count = deletes.len();
        self.batch_write(&self.tables.subscriptions, deletes)
            .await?;
        Ok(count)
    }

    /// Deletes a connection that a post found gone, with every subscription
    /// of it, unless the connection opened at `opened_before` or later.
    /// Returns the number of subscriptions deleted, or `None` when the
    /// connection was kept because it is still opening.
    pub async fn delete_gone_connection(
        &self,
        connection_id: &str,
        opened_before: Timestamp,
    ) -> Result<Option<usize>, StoreError> {
        let table = &self.tables.connections;
        // RFC 3339 times of one format compare as strings in time order.
        let result = self
            .client
            .delete_item()
            .table_name(table)
            .key(attr::CONNECTION_ID, s(connection_id))
            .condition_expression("attribute_not_exists(#id) OR #at < :before")
            .expression_attribute_names("#id", attr::CONNECTION_ID)
            .expression_attribute_names("#at", attr::CONNECTED_AT)
            .expression_attribute_values(":before", s(opened_before.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(SdkError::ServiceError(err))
                if err.err().is_conditional_check_failed_exception() =>
            {
                return Ok(None);
            }
            Err(err) => return Err(StoreError::request(table, "DeleteItem", err)),
        }
        self.delete_connection(connection_id).await.map(Some)
    }

    /// Stores a subscription; storing it again only refreshes it.
    pub async fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let table = &self.tables.subscriptions;
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(Item::from(subscription)))
            .send()
            .await
            .map_err(|err| StoreError::request(table, "PutItem", err))?;
        Ok(())
    }

    /// Deletes the subscription of `connection_id` to `chat_id`, if there is one.
    pub async fn delete_subscription(
        &self,
        chat_id: &str,
        connection_id: &str,
    ) -> Result<(), StoreError> {
        let table = &self.tables.subscriptions;
        self.client
            .delete_item()
            .table_name(table)
            .key(attr::CHAT_ID, s(chat_id))
            .key(attr::CONNECTION_ID, s(connection_id))
            .send()
            .await
            .map_err(|err| StoreError::request(table, "DeleteItem", err))?;
        Ok(())
    }

    /// Reads the live subscriptions of `chat_id` at `now`: a Query on the chat, every page.
    pub async fn subscriptions_of_chat(
        &self,
        chat_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Subscription>, StoreError> {
        let table = &self.tables.subscriptions;
        let items = self
            .query_all(table, None, attr::CHAT_ID, chat_id, Some(now))
            .await?;
        items.iter().map(Subscription::try_from).collect()
    }

    /// Reads every subscription of `connection_id`, expired or not (index `by_connection`).
    pub async fn subscriptions_of_connection(
        &self,
        connection_id: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        let table = &self.tables.subscriptions;
        let items = self
            .query_all(
                table,
                Some(SUBSCRIPTIONS_BY_CONNECTION),
                attr::CONNECTION_ID,
                connection_id,
                None,
            )
            .await?;
        items.iter().map(Subscription::try_from).collect()
    }

    /// Reads every page of a Query on `partition = value`, keeping only rows
    /// whose `expires_at` is after `live_at` when it is given.
    pub(crate) async fn query_all(
        &self,
        table: &str,
        index: Option<&str>,
        partition: &str,
        value: &str,
        live_at: Option<Timestamp>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", partition)
                .expression_attribute_values(":pk", s(value))
                .set_exclusive_start_key(start);
            if let Some(now) = live_at {
                request = request
                    .filter_expression("#exp > :now")
                    .expression_attribute_names("#exp", attr::EXPIRES_AT)
                    .expression_attribute_values(":now", n(now.epoch_seconds()));
            }
            let output = request
                .send()
                .await
                .map_err(|err| StoreError::request(table, "Query", err))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

fn subscription_delete(
    subscription: &Subscription,
    table: &str,
) -> Result<WriteRequest, StoreError> {
    let delete = DeleteRequest::builder()
        .key(attr::CHAT_ID, s(&subscription.chat_id))
        .key(attr::CONNECTION_ID, s(&subscription.connection_id))
        .build()
        .map_err(|err| StoreError::build(table, "BatchWriteItem", err))?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}
