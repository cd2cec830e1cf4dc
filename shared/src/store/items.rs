//! Item mapping: `From<&T> for Item` and `TryFrom<&Item> for T` for every
//! stored domain type, with the attribute names of the tables.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, StoreError, n, s};
use crate::domain::{
    Attachment, Chat, ClientMessage, Connection, InboxEntry, Membership, Message, Role,
    Subscription, Ticket, Timestamp, UploadStatus,
};

/// Attribute names, as the tables spell them.
pub(crate) mod attr {
    pub(crate) const CONNECTION_ID: &str = "connection_id";
    pub(crate) const USER_ID: &str = "user_id";
    pub(crate) const CONNECTED_AT: &str = "connected_at";
    pub(crate) const EXPIRES_AT: &str = "expires_at";
    pub(crate) const CHAT_ID: &str = "chat_id";
    pub(crate) const NAME: &str = "name";
    pub(crate) const CREATED_BY: &str = "created_by";
    pub(crate) const CREATED_AT: &str = "created_at";
    pub(crate) const LAST_MESSAGE_AT: &str = "last_message_at";
    pub(crate) const LAST_SEQ: &str = "last_seq";
    pub(crate) const JOINED_AT: &str = "joined_at";
    pub(crate) const ROLE: &str = "role";
    pub(crate) const MESSAGE_ID: &str = "message_id";
    pub(crate) const SEQ: &str = "seq";
    pub(crate) const SENDER_ID: &str = "sender_id";
    pub(crate) const CONTENT: &str = "content";
    pub(crate) const CLIENT_MESSAGE_ID: &str = "client_message_id";
    pub(crate) const UPLOAD_STATUS: &str = "upload_status";
    pub(crate) const FILE_NAME: &str = "file_name";
    pub(crate) const CONTENT_TYPE: &str = "content_type";
    pub(crate) const SIZE: &str = "size";
    pub(crate) const S3_BUCKET: &str = "s3_bucket";
    pub(crate) const S3_KEY: &str = "s3_key";
    pub(crate) const RECIPIENT_ID: &str = "recipient_id";
    pub(crate) const TICKET_HASH: &str = "ticket_hash";
}

/// Reads typed attributes of one item, naming table, key and attribute on failure.
pub(crate) struct ItemReader<'a> {
    table: &'static str,
    key_names: &'static [&'static str],
    item: &'a Item,
}

impl<'a> ItemReader<'a> {
    pub(crate) fn new(
        table: &'static str,
        key_names: &'static [&'static str],
        item: &'a Item,
    ) -> Self {
        Self {
            table,
            key_names,
            item,
        }
    }

    fn corrupt(&self, attribute: &'static str, problem: impl Into<String>) -> StoreError {
        let key = self
            .key_names
            .iter()
            .map(|name| match self.item.get(*name) {
                Some(AttributeValue::S(value)) => format!("{name}={value}"),
                _ => format!("{name}=?"),
            })
            .collect::<Vec<_>>()
            .join(",");
        StoreError::Corrupt {
            table: self.table,
            key,
            attribute,
            problem: problem.into(),
        }
    }

    pub(crate) fn opt_string(&self, attribute: &'static str) -> Result<Option<String>, StoreError> {
        match self.item.get(attribute) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
            Some(_) => Err(self.corrupt(attribute, "is not a string")),
        }
    }

    pub(crate) fn string(&self, attribute: &'static str) -> Result<String, StoreError> {
        self.opt_string(attribute)?
            .ok_or_else(|| self.corrupt(attribute, "is missing"))
    }

    pub(crate) fn opt_u64(&self, attribute: &'static str) -> Result<Option<u64>, StoreError> {
        match self.item.get(attribute) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(value)) => value
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(attribute, format!("is not a whole number: {value}"))),
            Some(_) => Err(self.corrupt(attribute, "is not a number")),
        }
    }

    pub(crate) fn u64(&self, attribute: &'static str) -> Result<u64, StoreError> {
        self.opt_u64(attribute)?
            .ok_or_else(|| self.corrupt(attribute, "is missing"))
    }

    pub(crate) fn opt_timestamp(
        &self,
        attribute: &'static str,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.opt_string(attribute)?
            .map(|text| {
                Timestamp::parse(&text).map_err(|err| {
                    self.corrupt(attribute, format!("is not an RFC 3339 time: {err}"))
                })
            })
            .transpose()
    }

    pub(crate) fn timestamp(&self, attribute: &'static str) -> Result<Timestamp, StoreError> {
        self.opt_timestamp(attribute)?
            .ok_or_else(|| self.corrupt(attribute, "is missing"))
    }

    /// Reads an epoch-seconds Number, the type of TTL attributes.
    pub(crate) fn epoch(&self, attribute: &'static str) -> Result<Timestamp, StoreError> {
        let seconds = self.u64(attribute)?;
        i64::try_from(seconds)
            .ok()
            .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
            .map(Timestamp::new)
            .ok_or_else(|| self.corrupt(attribute, "is out of range"))
    }

    fn parsed<T>(
        &self,
        attribute: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        let text = self.string(attribute)?;
        parse(&text).ok_or_else(|| self.corrupt(attribute, format!("has unknown value {text:?}")))
    }
}

fn epoch(time: Timestamp) -> AttributeValue {
    n(time.epoch_seconds())
}

fn time(time: Timestamp) -> AttributeValue {
    s(time.to_string())
}

const CONNECTION_KEY: &[&str] = &[attr::CONNECTION_ID];
const SUBSCRIPTION_KEY: &[&str] = &[attr::CHAT_ID, attr::CONNECTION_ID];
const CHAT_KEY: &[&str] = &[attr::CHAT_ID];
const MEMBERSHIP_KEY: &[&str] = &[attr::USER_ID, attr::CHAT_ID];
pub(crate) const MESSAGE_KEY: &[&str] = &[attr::CHAT_ID, attr::MESSAGE_ID];
const INBOX_KEY: &[&str] = &[attr::RECIPIENT_ID, attr::MESSAGE_ID];
const TICKET_KEY: &[&str] = &[attr::TICKET_HASH];
const CLIENT_MESSAGE_KEY: &[&str] = &[attr::SENDER_ID, attr::CLIENT_MESSAGE_ID];

impl From<&Connection> for Item {
    fn from(value: &Connection) -> Self {
        Item::from([
            (attr::CONNECTION_ID.into(), s(&value.connection_id)),
            (attr::USER_ID.into(), s(&value.user_id)),
            (attr::CONNECTED_AT.into(), time(value.connected_at)),
            (attr::EXPIRES_AT.into(), epoch(value.expires_at)),
        ])
    }
}

impl TryFrom<&Item> for Connection {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let read = ItemReader::new("Connections", CONNECTION_KEY, item);
        Ok(Self {
            connection_id: read.string(attr::CONNECTION_ID)?,
            user_id: read.string(attr::USER_ID)?,
            connected_at: read.timestamp(attr::CONNECTED_AT)?,
            expires_at: read.epoch(attr::EXPIRES_AT)?,
        })
    }
}

impl From<&Subscription> for Item {
    fn from(value: &Subscription) -> Self {
        Item::from([
            (attr::CHAT_ID.into(), s(&value.chat_id)),
            (attr::CONNECTION_ID.into(), s(&value.connection_id)),
            (attr::USER_ID.into(), s(&value.user_id)),
            (attr::EXPIRES_AT.into(), epoch(value.expires_at)),
        ])
    }
}

impl TryFrom<&Item> for Subscription {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let read = ItemReader::new("Subscriptions", SUBSCRIPTION_KEY, item);
        Ok(Self {
            chat_id: read.string(attr::CHAT_ID)?,
            connection_id: read.string(attr::CONNECTION_ID)?,
            user_id: read.string(attr::USER_ID)?,
            expires_at: read.epoch(attr::EXPIRES_AT)?,
        })
    }
}

impl From<&Chat> for Item {
    fn from(value: &Chat) -> Self {
        let mut item = Item::from([
            (attr::CHAT_ID.into(), s(&value.chat_id)),
            (attr::NAME.into(), s(&value.name)),
            (attr::CREATED_BY.into(), s(&value.created_by)),
            (attr::CREATED_AT.into(), time(value.created_at)),
            (attr::LAST_SEQ.into(), n(value.last_seq)),
        ]);
        if let Some(last) = value.last_message_at {
            item.insert(attr::LAST_MESSAGE_AT.into(), time(last));
        }
        item
    }
}

impl TryFrom<&Item> for Chat {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let read = ItemReader::new("Chats", CHAT_KEY, item);
        Ok(Self {
            chat_id: read.string(attr::CHAT_ID)?,
            name: read.string(attr::NAME)?,
            created_by: read.string(attr::CREATED_BY)?,
            created_at: read.timestamp(attr::CREATED_AT)?,
            last_message_at: read.opt_timestamp(attr::LAST_MESSAGE_AT)?,
            last_seq: read.u64(attr::LAST_SEQ)?,
        })
    }
}

impl From<&Membership> for Item {
    fn from(value: &Membership) -> Self {
        Item::from([
            (attr::USER_ID.into(), s(&value.user_id)),
            (attr::CHAT_ID.into(), s(&value.chat_id)),
            (attr::ROLE.into(), s(value.role.as_str())),
            (attr::JOINED_AT.into(), time(value.joined_at)),
        ])
    }
}

impl TryFrom<&Item> for Membership {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let read = ItemReader::new("Memberships", MEMBERSHIP_KEY, item);
        Ok(Self {
            user_id: read.string(attr::USER_ID)?,
            chat_id: read.string(attr::CHAT_ID)?,
            role: read.parsed(attr::ROLE, Role::parse)?,
            joined_at: read.timestamp(attr::JOINED_AT)?,
        })
    }
}

impl From<&Message> for Item {
    fn from(value: &Message) -> Self {
        let mut item = Item::from([
            (attr::CHAT_ID.into(), s(&value.chat_id)),
            (attr::MESSAGE_ID.into(), s(&value.message_id)),
            (attr::SEQ.into(), n(value.seq)),
            (attr::SENDER_ID.into(), s(&value.sender_id)),
            (attr::CONTENT.into(), s(&value.content)),
            (attr::CREATED_AT.into(), time(value.created_at)),
        ]);
        if let Some(id) = &value.client_message_id {
            item.insert(attr::CLIENT_MESSAGE_ID.into(), s(id));
        }
        if let Some(file) = &value.attachment {
            item.extend([
                (attr::UPLOAD_STATUS.into(), s(file.upload_status.as_str())),
                (attr::FILE_NAME.into(), s(&file.file_name)),
                (attr::CONTENT_TYPE.into(), s(&file.content_type)),
                (attr::SIZE.into(), n(file.size)),
                (attr::S3_BUCKET.into(), s(&file.s3_bucket)),
                (attr::S3_KEY.into(), s(&file.s3_key)),
            ]);
        }
        item
    }
}

impl TryFrom<&Item> for Message {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let read = ItemReader::new("Messages", MESSAGE_KEY, item);
        // An item is an attachment message exactly when it has an upload status.
        let attachment = if item.contains_key(attr::UPLOAD_STATUS) {
            Some(Attachment {
                upload_status: read.parsed(attr::UPLOAD_STATUS, UploadStatus::parse)?,
                file_name: read.string(attr::FILE_NAME)?,
                content_type: read.string(attr::CONTENT_TYPE)?,
                size: read.u64(attr::SIZE)?,
                s3_bucket: read.string(attr::S3_BUCKET)?,
                s3_key: read.string(attr::S3_KEY)?,
            })
        } else {
            None
        };
        Ok(Self {
            message_id: read.string(attr::MESSAGE_ID)?,
            chat_id: read.string(attr::CHAT_ID)?,
            seq: read.u64(attr::SEQ)?,
            sender_id: read.string(attr::SENDER_ID)?,
            content: read.string(attr::CONTENT)?,
            created_at: read.timestamp(attr::CREATED_AT)?,
            client_message_id: read.opt_string(attr::CLIENT_MESSAGE_ID)?,
            attachment,
        })
    }
}

impl From<&InboxEntry> for Item {
    fn from(value: &InboxEntry) -> Self {
        Item::from([
            (attr::RECIPIENT_ID.into(), s(&value.recipient_id)),
            (attr::MESSAGE_ID.into(), s(&value.message_id)),
            (attr::CHAT_ID.into(), s(&value.chat_id)),
            (attr::CREATED_AT.into(), time(value.created_at)),
            (attr::EXPIRES_AT.into(), epoch(value.expires_at)),
        ])
    }
}

impl TryFrom<&Item> for InboxEntry {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let read = ItemReader::new("Inbox", INBOX_KEY, item);
        Ok(Self {
            recipient_id: read.string(attr::RECIPIENT_ID)?,
            message_id: read.string(attr::MESSAGE_ID)?,
            chat_id: read.string(attr::CHAT_ID)?,
            created_at: read.timestamp(attr::CREATED_AT)?,
            expires_at: read.epoch(attr::EXPIRES_AT)?,
        })
    }
}

impl From<&Ticket> for Item {
    fn from(value: &Ticket) -> Self {
        Item::from([
            (attr::TICKET_HASH.into(), s(&value.ticket_hash)),
            (attr::USER_ID.into(), s(&value.user_id)),
            (attr::EXPIRES_AT.into(), epoch(value.expires_at)),
        ])
    }
}

impl TryFrom<&Item> for Ticket {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let read = ItemReader::new("Tickets", TICKET_KEY, item);
        Ok(Self {
            ticket_hash: read.string(attr::TICKET_HASH)?,
            user_id: read.string(attr::USER_ID)?,
            expires_at: read.epoch(attr::EXPIRES_AT)?,
        })
    }
}

impl From<&ClientMessage> for Item {
    fn from(value: &ClientMessage) -> Self {
        Item::from([
            (attr::SENDER_ID.into(), s(&value.sender_id)),
            (attr::CLIENT_MESSAGE_ID.into(), s(&value.client_message_id)),
            (attr::CHAT_ID.into(), s(&value.chat_id)),
            (attr::MESSAGE_ID.into(), s(&value.message_id)),
            (attr::SEQ.into(), n(value.seq)),
            (attr::CREATED_AT.into(), time(value.created_at)),
            (attr::EXPIRES_AT.into(), epoch(value.expires_at)),
        ])
    }
}

impl TryFrom<&Item> for ClientMessage {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let read = ItemReader::new("ClientMessages", CLIENT_MESSAGE_KEY, item);
        Ok(Self {
            sender_id: read.string(attr::SENDER_ID)?,
            client_message_id: read.string(attr::CLIENT_MESSAGE_ID)?,
            chat_id: read.string(attr::CHAT_ID)?,
            message_id: read.string(attr::MESSAGE_ID)?,
            seq: read.u64(attr::SEQ)?,
            created_at: read.timestamp(attr::CREATED_AT)?,
            expires_at: read.epoch(attr::EXPIRES_AT)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn round_trip<T>(value: T)
    where
        T: std::fmt::Debug + PartialEq,
        for<'a> Item: From<&'a T>,
        for<'a> T: TryFrom<&'a Item, Error = StoreError>,
    {
        let item = Item::from(&value);
        let back = T::try_from(&item).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn every_type_round_trips() {
        let now = at("2026-12-04T13:47:06.123Z");
        let later = at("2026-12-04T15:47:06.000Z");
        round_trip(Connection {
            connection_id: "c1".into(),
            user_id: "alice".into(),
            connected_at: now,
            expires_at: later,
        });
        round_trip(Subscription {
            chat_id: "chat".into(),
            connection_id: "c1".into(),
            user_id: "alice".into(),
            expires_at: later,
        });
        round_trip(Chat {
            chat_id: "chat".into(),
            name: "Project".into(),
            created_by: "alice".into(),
            created_at: now,
            last_message_at: Some(later),
            last_seq: 7,
        });
        round_trip(Membership {
            user_id: "bob".into(),
            chat_id: "chat".into(),
            role: Role::Member,
            joined_at: now,
        });
        round_trip(Message {
            message_id: "m".into(),
            chat_id: "chat".into(),
            seq: 2,
            sender_id: "alice".into(),
            content: "hi".into(),
            created_at: now,
            client_message_id: Some("c-1".into()),
            attachment: Some(Attachment {
                upload_status: UploadStatus::Uploaded,
                file_name: "a.png".into(),
                content_type: "image/png".into(),
                size: 12,
                s3_bucket: "bucket".into(),
                s3_key: "chats/chat/m/a.png".into(),
            }),
        });
        round_trip(InboxEntry {
            recipient_id: "bob".into(),
            message_id: "m".into(),
            chat_id: "chat".into(),
            created_at: now,
            expires_at: later,
        });
        round_trip(Ticket {
            ticket_hash: "ab".into(),
            user_id: "alice".into(),
            expires_at: later,
        });
        round_trip(ClientMessage {
            sender_id: "alice".into(),
            client_message_id: "c-1".into(),
            chat_id: "chat".into(),
            message_id: "m".into(),
            seq: 2,
            created_at: now,
            expires_at: later,
        });
    }

    #[test]
    fn missing_attribute_names_table_key_and_attribute() {
        let mut item = Item::from(&Connection {
            connection_id: "c1".into(),
            user_id: "alice".into(),
            connected_at: at("2026-12-04T13:47:06.123Z"),
            expires_at: at("2026-12-04T15:47:06.000Z"),
        });
        item.remove(attr::USER_ID);
        let err = Connection::try_from(&item).unwrap_err();
        assert_eq!(
            err.to_string(),
            "item connection_id=c1 of table Connections: attribute user_id is missing"
        );
    }

    #[test]
    fn ill_typed_attribute_is_corrupt_not_default() {
        let mut item = Item::from(&Chat {
            chat_id: "chat".into(),
            name: "n".into(),
            created_by: "alice".into(),
            created_at: at("2026-12-04T13:47:06.123Z"),
            last_message_at: None,
            last_seq: 0,
        });
        item.insert(attr::LAST_SEQ.into(), s("seven"));
        let err = Chat::try_from(&item).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Corrupt {
                table: "Chats",
                attribute: "last_seq",
                ..
            }
        ));
    }
}
