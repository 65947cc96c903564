//! The node's append-only audit log: which key (or the broker) did what to which object, when.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    AtMs,
    KeyId,
    Action,
    ObjectType,
    ObjectId,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(big_integer(AuditEvents::AtMs))
                    .col(string(AuditEvents::KeyId))
                    .col(string(AuditEvents::Action))
                    .col(string(AuditEvents::ObjectType))
                    .col(string(AuditEvents::ObjectId))
                    .col(text(AuditEvents::Detail))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
