//! The node's copy of its mentors' tandems and the log of what the mentors' side recorded.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tandems {
    Table,
    Id,
    MentorId,
    Version,
    State,
    MentorComment,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum TandemEvents {
    Table,
    Seq,
    TandemId,
    Event,
    RecordedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tandems::Table)
                    .col(string(Tandems::Id).primary_key())
                    .col(string(Tandems::MentorId))
                    .col(big_integer(Tandems::Version))
                    .col(binary(Tandems::State))
                    .col(string(Tandems::MentorComment))
                    .col(big_integer(Tandems::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tandems_mentor")
                    .table(Tandems::Table)
                    .col(Tandems::MentorId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TandemEvents::Table)
                    .col(big_integer(TandemEvents::Seq).primary_key())
                    .col(string(TandemEvents::TandemId))
                    .col(binary(TandemEvents::Event))
                    .col(big_integer(TandemEvents::RecordedAtMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TandemEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tandems::Table).to_owned())
            .await
    }
}
