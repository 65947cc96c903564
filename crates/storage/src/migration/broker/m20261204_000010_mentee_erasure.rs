//! When a company erased a mentee; 0 for mentees that were not erased. An erased mentee is a
//! tombstone: its needs are gone, its id, company and status stay.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Mentees {
    Table,
    ErasedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Mentees::Table)
                    .add_column(big_integer(Mentees::ErasedAtMs).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Mentees::Table)
                    .drop_column(Mentees::ErasedAtMs)
                    .to_owned(),
            )
            .await
    }
}
