//! Tandems: the lifecycle after the double opt-in, and the node's tandem-event cursor.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tandems {
    Table,
    Id,
    MenteeId,
    CompanyId,
    NodeId,
    CrossNode,
    Status,
    FormedAtMs,
    StartedAtMs,
    EndedAtMs,
    NextDueAtMs,
    AttainmentPercent,
    State,
    Version,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    TandemEventCursor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tandems::Table)
                    .col(string(Tandems::Id).primary_key())
                    .col(string(Tandems::MenteeId))
                    .col(string(Tandems::CompanyId))
                    .col(string(Tandems::NodeId))
                    .col(boolean(Tandems::CrossNode))
                    .col(integer(Tandems::Status))
                    .col(big_integer(Tandems::FormedAtMs))
                    .col(big_integer(Tandems::StartedAtMs))
                    .col(big_integer(Tandems::EndedAtMs))
                    .col(big_integer(Tandems::NextDueAtMs))
                    .col(integer(Tandems::AttainmentPercent))
                    .col(binary(Tandems::State))
                    .col(big_integer(Tandems::Version))
                    .col(big_integer(Tandems::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_tandems_company", Tandems::CompanyId),
            ("idx_tandems_node", Tandems::NodeId),
            ("idx_tandems_status", Tandems::Status),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Tandems::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(big_integer(Nodes::TandemEventCursor).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .drop_column(Nodes::TandemEventCursor)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Tandems::Table).to_owned())
            .await
    }
}
