//! The one change to an attachment message after it is written: its upload
//! status, from `pending` to `uploaded` or `failed`.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::ReturnValue;

use super::items::attr;
use super::{Store, StoreError, s};
use crate::domain::{Message, UploadStatus};

impl Store {
    /// Sets the upload status of message `message_id` of `chat_id` to
    /// `status`, on condition that the stored status is still `pending` and
    /// the stored `s3_key` is `s3_key`, and returns the updated message.
    ///
    /// Returns `None` when the condition fails: the message does not exist,
    /// is finished already, or names another object. So a repeated or late
    /// notification changes nothing, and of two concurrent ones only the
    /// first writes.
    pub async fn finish_upload(
        &self,
        chat_id: &str,
        message_id: &str,
        s3_key: &str,
        status: UploadStatus,
    ) -> Result<Option<Message>, StoreError> {
        let table = &self.tables.messages;
        let result = self
            .client
            .update_item()
            .table_name(table)
            .key(attr::CHAT_ID, s(chat_id))
            .key(attr::MESSAGE_ID, s(message_id))
            .update_expression("SET #status = :status")
            .condition_expression("#status = :pending AND #key = :key")
            .expression_attribute_names("#status", attr::UPLOAD_STATUS)
            .expression_attribute_names("#key", attr::S3_KEY)
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":pending", s(UploadStatus::Pending.as_str()))
            .expression_attribute_values(":key", s(s3_key))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes {
                Some(item) if !item.is_empty() => Ok(Some(Message::try_from(&item)?)),
                _ => Ok(None),
            },
            Err(SdkError::ServiceError(err))
                if err.err().is_conditional_check_failed_exception() =>
            {
                Ok(None)
            }
            Err(err) => Err(StoreError::request(table, "UpdateItem", err)),
        }
    }
}
