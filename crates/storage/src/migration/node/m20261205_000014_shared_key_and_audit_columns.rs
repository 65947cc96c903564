//! The node's API keys and audit log take the shape the broker's have, so that one piece of
//! code reads and writes both: `api_keys.node_id` becomes `tenant` (the node a staff key is
//! bound to) and `audit_events.key_id` becomes `actor`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    NodeId,
    Tenant,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    KeyId,
    Actor,
}

async fn rename(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    from: impl IntoIden,
    to: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(
            Table::alter()
                .table(table)
                .rename_column(from, to)
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rename(manager, ApiKeys::Table, ApiKeys::NodeId, ApiKeys::Tenant).await?;
        rename(
            manager,
            AuditEvents::Table,
            AuditEvents::KeyId,
            AuditEvents::Actor,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rename(
            manager,
            AuditEvents::Table,
            AuditEvents::Actor,
            AuditEvents::KeyId,
        )
        .await?;
        rename(manager, ApiKeys::Table, ApiKeys::Tenant, ApiKeys::NodeId).await
    }
}
