//! Mentors, introductions and counters of a node.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Mentors {
    Table,
    Id,
    DisplayName,
    Email,
    EmployerName,
    EmployerRegistryNumber,
    GroupRegistryNumber,
    Title,
    CareerLevel,
    YearsOfExperience,
    Industries,
    Expertise,
    Languages,
    Region,
    Formats,
    Capacity,
    PublishConsent,
    Removed,
    Version,
    CreatedAtMs,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum Introductions {
    Table,
    Id,
    MentorId,
    MenteeSummary,
    Reasons,
    Score,
    Decision,
    DecisionSeq,
    Closed,
    CloseReason,
    ContactReleased,
    ReceivedAtMs,
    DecidedAtMs,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Mentors::Table)
                    .col(string(Mentors::Id).primary_key())
                    .col(text(Mentors::DisplayName))
                    .col(text(Mentors::Email))
                    .col(text(Mentors::EmployerName))
                    .col(text(Mentors::EmployerRegistryNumber))
                    .col(text(Mentors::GroupRegistryNumber))
                    .col(text(Mentors::Title))
                    .col(integer(Mentors::CareerLevel))
                    .col(integer(Mentors::YearsOfExperience))
                    .col(text(Mentors::Industries))
                    .col(text(Mentors::Expertise))
                    .col(text(Mentors::Languages))
                    .col(string(Mentors::Region))
                    .col(text(Mentors::Formats))
                    .col(integer(Mentors::Capacity))
                    .col(boolean(Mentors::PublishConsent))
                    .col(boolean(Mentors::Removed))
                    .col(big_integer(Mentors::Version))
                    .col(big_integer(Mentors::CreatedAtMs))
                    .col(big_integer(Mentors::UpdatedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mentors_version")
                    .table(Mentors::Table)
                    .col(Mentors::Version)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Introductions::Table)
                    .col(string(Introductions::Id).primary_key())
                    .col(string(Introductions::MentorId))
                    .col(binary(Introductions::MenteeSummary))
                    .col(binary(Introductions::Reasons))
                    .col(big_integer(Introductions::Score))
                    .col(integer(Introductions::Decision))
                    .col(big_integer(Introductions::DecisionSeq))
                    .col(boolean(Introductions::Closed))
                    .col(text(Introductions::CloseReason))
                    .col(boolean(Introductions::ContactReleased))
                    .col(big_integer(Introductions::ReceivedAtMs))
                    .col(big_integer(Introductions::DecidedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_introductions_mentor")
                    .table(Introductions::Table)
                    .col(Introductions::MentorId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_introductions_decision_seq")
                    .table(Introductions::Table)
                    .col(Introductions::DecisionSeq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .col(string(Counters::Name).primary_key())
                    .col(big_integer(Counters::Value))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Counters::Table.into_iden(),
            Introductions::Table.into_iden(),
            Mentors::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
