//! Tickets: single-use connect tickets, stored only as a hash.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::ReturnValue;

use super::items::attr;
use super::{Item, Store, StoreError, n, s};
use crate::domain::{Ticket, Timestamp};

impl Store {
    /// Stores a new ticket.
    pub async fn put_ticket(&self, ticket: &Ticket) -> Result<(), StoreError> {
        let table = &self.tables.tickets;
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(Item::from(ticket)))
            .condition_expression("attribute_not_exists(#hash)")
            .expression_attribute_names("#hash", attr::TICKET_HASH)
            .send()
            .await
            .map_err(|err| StoreError::request(table, "PutItem", err))?;
        Ok(())
    }

    /// Consumes the ticket with `ticket_hash`: deletes it on condition that it
    /// exists and has not expired at `now`, and returns it. `None` for an
    /// unknown, used or expired ticket; two concurrent calls cannot both succeed.
    pub async fn consume_ticket(
        &self,
        ticket_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Ticket>, StoreError> {
        let table = &self.tables.tickets;
        let result = self
            .client
            .delete_item()
            .table_name(table)
            .key(attr::TICKET_HASH, s(ticket_hash))
            .condition_expression("attribute_exists(#hash) AND #exp > :now")
            .expression_attribute_names("#hash", attr::TICKET_HASH)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":now", n(now.epoch_seconds()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes {
                Some(item) if !item.is_empty() => Ok(Some(Ticket::try_from(&item)?)),
                _ => Ok(None),
            },
            Err(SdkError::ServiceError(err))
                if err.err().is_conditional_check_failed_exception() =>
            {
                Ok(None)
            }
            Err(err) => Err(StoreError::request(table, "DeleteItem", err)),
        }
    }
}
