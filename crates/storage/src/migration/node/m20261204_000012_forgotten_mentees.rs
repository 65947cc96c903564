//! When the broker asked the node to forget an introduction's mentee summary (the company
//! erased the mentee); 0 while the summary is kept.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Introductions {
    Table,
    MenteeForgottenAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Introductions::Table)
                    .add_column(big_integer(Introductions::MenteeForgottenAtMs).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Introductions::Table)
                    .drop_column(Introductions::MenteeForgottenAtMs)
                    .to_owned(),
            )
            .await
    }
}
