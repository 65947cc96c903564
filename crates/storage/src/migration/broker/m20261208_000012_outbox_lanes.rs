//! Delivery lanes of the outbox: the lease a broker replica holds on the message it is
//! delivering (`leased_until_ms`, 0 when nobody holds one), the time a message was moved to the
//! dead letters (`dead_lettered_at_ms`, 0 while it is not one), and an index that finds a
//! node's next pending message.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    NodeId,
    DeliveredAtMs,
    LeasedUntilMs,
    DeadLetteredAtMs,
}

const LANE_INDEX: &str = "idx_outbox_lane";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for column in [Outbox::LeasedUntilMs, Outbox::DeadLetteredAtMs] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .add_column(big_integer(column).default(0))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(LANE_INDEX)
                    .table(Outbox::Table)
                    .col(Outbox::NodeId)
                    .col(Outbox::DeliveredAtMs)
                    .col(Outbox::DeadLetteredAtMs)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(LANE_INDEX)
                    .table(Outbox::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Outbox::DeadLetteredAtMs, Outbox::LeasedUntilMs] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
