//! Table definitions: keys, indexes, streams and TTL, as `template.yaml` declares
//! them, and their creation on a DynamoDB-compatible server.
//!
//! The local stack and the tests create the tables from [`definitions`]; in AWS
//! the template does, and a test checks that both agree.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use crate::config::TableNames;

/// Index of Connections by user: `user_id` + `connection_id`.
pub const CONNECTIONS_BY_USER: &str = "by_user";
/// Index of Subscriptions by connection: `connection_id` + `chat_id`.
pub const SUBSCRIPTIONS_BY_CONNECTION: &str = "by_connection";
/// Index of Memberships by chat: `chat_id` + `user_id`.
pub const MEMBERSHIPS_BY_CHAT: &str = "by_chat";
/// The TTL attribute of every table that has one (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// A key attribute's name. Every key attribute of every table is a String.
pub type KeyAttribute = &'static str;

const fn s(name: &'static str) -> KeyAttribute {
    name
}

/// A global secondary index, projecting all attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDefinition {
    /// Index name.
    pub name: &'static str,
    /// Partition key.
    pub hash: KeyAttribute,
    /// Sort key.
    pub range: Option<KeyAttribute>,
}

/// One table's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// Table name, from [`TableNames`].
    pub name: String,
    /// Logical name, as `template.yaml` names the resource without `Table`.
    pub logical: &'static str,
    /// Partition key.
    pub hash: KeyAttribute,
    /// Sort key.
    pub range: Option<KeyAttribute>,
    /// Global secondary indexes.
    pub indexes: Vec<IndexDefinition>,
    /// Whether the table has a `NEW_AND_OLD_IMAGES` stream.
    pub stream: bool,
    /// Whether TTL is on, on [`TTL_ATTRIBUTE`].
    pub ttl: bool,
}

/// Returns the schema of every table, named by `names`.
pub fn definitions(names: &TableNames) -> Vec<TableDefinition> {
    let table = |name: &String, logical, hash, range| TableDefinition {
        name: name.clone(),
        logical,
        hash,
        range,
        indexes: Vec::new(),
        stream: false,
        ttl: false,
    };
    vec![
        TableDefinition {
            indexes: vec![IndexDefinition {
                name: CONNECTIONS_BY_USER,
                hash: s("user_id"),
                range: Some(s("connection_id")),
            }],
            ttl: true,
            ..table(&names.connections, "Connections", s("connection_id"), None)
        },
        TableDefinition {
            indexes: vec![IndexDefinition {
                name: SUBSCRIPTIONS_BY_CONNECTION,
                hash: s("connection_id"),
                range: Some(s("chat_id")),
            }],
            ttl: true,
            ..table(
                &names.subscriptions,
                "Subscriptions",
                s("chat_id"),
                Some(s("connection_id")),
            )
        },
        table(&names.chats, "Chats", s("chat_id"), None),
        TableDefinition {
            indexes: vec![IndexDefinition {
                name: MEMBERSHIPS_BY_CHAT,
                hash: s("chat_id"),
                range: Some(s("user_id")),
            }],
            ..table(
                &names.memberships,
                "Memberships",
                s("user_id"),
                Some(s("chat_id")),
            )
        },
        TableDefinition {
            stream: true,
            ..table(
                &names.messages,
                "Messages",
                s("chat_id"),
                Some(s("message_id")),
            )
        },
        TableDefinition {
            ttl: true,
            ..table(
                &names.inbox,
                "Inbox",
                s("recipient_id"),
                Some(s("message_id")),
            )
        },
        TableDefinition {
            ttl: true,
            ..table(&names.tickets, "Tickets", s("ticket_hash"), None)
        },
        TableDefinition {
            ttl: true,
            ..table(
                &names.client_messages,
                "ClientMessages",
                s("sender_id"),
                Some(s("client_message_id")),
            )
        },
    ]
}

/// A failure to create a table.
#[derive(Debug, thiserror::Error)]
pub enum CreateTableError {
    /// A request could not be built from the definition.
    #[error("invalid definition of table {table}")]
    Definition {
        /// Table name.
        table: String,
        /// The builder's error.
        #[source]
        source: BuildError,
    },
    /// The server rejected or failed a request.
    #[error("{operation} failed for table {table}")]
    Request {
        /// Table name.
        table: String,
        /// `CreateTable`, `DescribeTable` or `UpdateTimeToLive`.
        operation: &'static str,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Creates every table that does not exist yet, with its indexes, stream and TTL.
///
/// Tables that exist are left as they are, so this is safe on every start.
pub async fn create_missing(client: &Client, names: &TableNames) -> Result<(), CreateTableError> {
    for definition in definitions(names) {
        create_if_missing(client, &definition).await?;
    }
    Ok(())
}

async fn create_if_missing(
    client: &Client,
    definition: &TableDefinition,
) -> Result<(), CreateTableError> {
    let request_error =
        |operation, source: Box<dyn std::error::Error + Send + Sync>| CreateTableError::Request {
            table: definition.name.clone(),
            operation,
            source,
        };
    match client
        .describe_table()
        .table_name(&definition.name)
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(SdkError::ServiceError(err)) if err.err().is_resource_not_found_exception() => {}
        Err(err) => return Err(request_error("DescribeTable", Box::new(err))),
    }

    let definition_error = |source| CreateTableError::Definition {
        table: definition.name.clone(),
        source,
    };
    let mut request = client
        .create_table()
        .table_name(&definition.name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(
            key_schema(definition.hash, definition.range).map_err(definition_error)?,
        ))
        .set_attribute_definitions(Some(
            attribute_definitions(definition).map_err(definition_error)?,
        ));
    for index in &definition.indexes {
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .set_key_schema(Some(
                key_schema(index.hash, index.range).map_err(definition_error)?,
            ))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(definition_error)?;
        request = request.global_secondary_indexes(gsi);
    }
    if definition.stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(definition_error)?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        // Another process created it between the describe and the create.
        Err(SdkError::ServiceError(err)) if err.err().is_resource_in_use_exception() => {
            return Ok(());
        }
        Err(err) => return Err(request_error("CreateTable", Box::new(err))),
    }

    wait_until_active(client, &definition.name)
        .await
        .map_err(|source| request_error("DescribeTable", source))?;

    if definition.ttl {
        client
            .update_time_to_live()
            .table_name(&definition.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(definition_error)?,
            )
            .send()
            .await
            .map_err(|err| request_error("UpdateTimeToLive", Box::new(err)))?;
    }
    Ok(())
}

/// Waits, up to about a minute, until DynamoDB reports the new table ACTIVE:
/// AWS rejects UpdateTimeToLive on a table that is still CREATING, while
/// the emulators report ACTIVE at once.
async fn wait_until_active(
    client: &Client,
    table: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for _ in 0..120 {
        let output = client.describe_table().table_name(table).send().await?;
        let status = output.table.and_then(|table| table.table_status);
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(format!("table {table} did not become ACTIVE within a minute").into())
}

fn key_schema(
    hash: KeyAttribute,
    range: Option<KeyAttribute>,
) -> Result<Vec<KeySchemaElement>, BuildError> {
    let mut schema = vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()?,
    ];
    if let Some(range) = range {
        schema.push(
            KeySchemaElement::builder()
                .attribute_name(range)
                .key_type(KeyType::Range)
                .build()?,
        );
    }
    Ok(schema)
}

fn attribute_definitions(
    definition: &TableDefinition,
) -> Result<Vec<AttributeDefinition>, BuildError> {
    let mut attributes: Vec<KeyAttribute> = Vec::new();
    let keys = [Some(definition.hash), definition.range]
        .into_iter()
        .chain(
            definition
                .indexes
                .iter()
                .flat_map(|index| [Some(index.hash), index.range]),
        )
        .flatten();
    for key in keys {
        if !attributes.contains(&key) {
            attributes.push(key);
        }
    }
    attributes
        .into_iter()
        .map(|key| {
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
        })
        .collect()
}
