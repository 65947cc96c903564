//! API keys of the association's staff (scope `node-admin`, bound to this node; hashed).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    SecretHash,
    Scope,
    NodeId,
    Label,
    CreatedAtMs,
    RevokedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(string(ApiKeys::Id).primary_key())
                    .col(string(ApiKeys::SecretHash))
                    .col(string(ApiKeys::Scope))
                    .col(string(ApiKeys::NodeId))
                    .col(text(ApiKeys::Label))
                    .col(big_integer(ApiKeys::CreatedAtMs))
                    .col(big_integer(ApiKeys::RevokedAtMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiKeys::Table).to_owned())
            .await
    }
}
