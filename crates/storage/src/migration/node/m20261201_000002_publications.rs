//! The publication table: every pseudonym the node published, its anonymised profile and its
//! feed version. The feed is served from here from now on; mentor rows keep a change sequence.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Publications {
    Table,
    Pseudonym,
    MentorId,
    Epoch,
    Live,
    Generalisation,
    Profile,
    Version,
    UpdatedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Publications::Table)
                    .col(string(Publications::Pseudonym).primary_key())
                    .col(string(Publications::MentorId))
                    .col(big_integer(Publications::Epoch))
                    .col(boolean(Publications::Live))
                    .col(integer(Publications::Generalisation))
                    .col(binary(Publications::Profile))
                    .col(big_integer(Publications::Version))
                    .col(big_integer(Publications::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_publications_version", Publications::Version),
            ("idx_publications_mentor", Publications::MentorId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Publications::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Publications::Table).to_owned())
            .await
    }
}
