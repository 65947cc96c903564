//! Tombstones of the introductions a node closed or whose mentee it forgot, and of ids it was
//! told to forget before it ever stored them, so that a delivery arriving late (from a broker
//! replica that sent it before the close or the erasure) is refused instead of stored. A
//! tombstone holds no personal data: the introduction id, what ended it and when.
//!
//! The introductions closed or forgotten before this migration get their tombstone here; a
//! close recorded before then carries the time the introduction arrived, the only time kept.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IntroductionTombstones {
    Table,
    IntroductionId,
    Kind,
    AtMs,
}

const BACKFILL: &str = "INSERT INTO introduction_tombstones (introduction_id, kind, at_ms) \
     SELECT id, \
            CASE WHEN mentee_forgotten_at_ms <> 0 THEN 'forgotten' ELSE 'closed' END, \
            CASE WHEN mentee_forgotten_at_ms <> 0 THEN mentee_forgotten_at_ms \
                 ELSE received_at_ms END \
     FROM introductions WHERE closed OR mentee_forgotten_at_ms <> 0";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IntroductionTombstones::Table)
                    .col(string(IntroductionTombstones::IntroductionId).primary_key())
                    .col(string(IntroductionTombstones::Kind))
                    .col(big_integer(IntroductionTombstones::AtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(IntroductionTombstones::Table)
                    .to_owned(),
            )
            .await
    }
}
