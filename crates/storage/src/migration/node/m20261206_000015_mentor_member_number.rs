//! The association's own reference for a mentor (its member number), so that a retried create
//! or a re-imported file finds the mentor it made before. Unique among the mentors that carry
//! one; removal blanks it with the other personal fields.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Mentors {
    Table,
    MemberNumber,
}

/// A partial unique index: SQLite and PostgreSQL both accept this statement as written.
const UNIQUE_MEMBER_NUMBER: &str = "CREATE UNIQUE INDEX idx_mentors_member_number \
     ON mentors (member_number) WHERE member_number <> ''";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Mentors::Table)
                    .add_column(string(Mentors::MemberNumber).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(UNIQUE_MEMBER_NUMBER)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_mentors_member_number")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Mentors::Table)
                    .drop_column(Mentors::MemberNumber)
                    .to_owned(),
            )
            .await
    }
}
