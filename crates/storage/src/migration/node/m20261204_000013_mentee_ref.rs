//! The broker's stable reference to the mentee of an introduction (a hash of the node id and
//! the mentee id), so that the node can recognise a mentee proposed to the same mentor again
//! under a pseudonym of a later epoch.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Introductions {
    Table,
    MenteeRef,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Introductions::Table)
                    .add_column(string(Introductions::MenteeRef).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Introductions::Table)
                    .drop_column(Introductions::MenteeRef)
                    .to_owned(),
            )
            .await
    }
}
