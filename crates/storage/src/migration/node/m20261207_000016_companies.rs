//! Member companies (memberships) and the reason a key was revoked.
//!
//! A company's register number and reference are unique among active members only, so that a
//! removed company can be admitted again: partial unique indexes, which SQLite and PostgreSQL
//! both accept as written.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Companies {
    Table,
    Id,
    LegalName,
    RegisterNumber,
    RegisterKey,
    GroupRegisterNumber,
    Reference,
    EmployerToken,
    GroupToken,
    CodeHash,
    CodeExpiresAtMs,
    Active,
    AdmittedAtMs,
    RemovedAtMs,
    Version,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    RevokedReason,
}

const INDEXES: [&str; 3] = [
    "CREATE UNIQUE INDEX idx_companies_register_key ON companies (register_key) WHERE active",
    "CREATE UNIQUE INDEX idx_companies_reference ON companies (reference) \
     WHERE active AND reference <> ''",
    "CREATE UNIQUE INDEX idx_companies_version ON companies (version)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Companies::Table)
                    .col(string(Companies::Id).primary_key())
                    .col(string(Companies::LegalName))
                    .col(string(Companies::RegisterNumber))
                    .col(string(Companies::RegisterKey))
                    .col(string(Companies::GroupRegisterNumber))
                    .col(string(Companies::Reference))
                    .col(string(Companies::EmployerToken))
                    .col(string(Companies::GroupToken))
                    .col(string(Companies::CodeHash))
                    .col(big_integer(Companies::CodeExpiresAtMs))
                    .col(boolean(Companies::Active))
                    .col(big_integer(Companies::AdmittedAtMs))
                    .col(big_integer(Companies::RemovedAtMs))
                    .col(big_integer(Companies::Version))
                    .to_owned(),
            )
            .await?;
        for index in INDEXES {
            manager.get_connection().execute_unprepared(index).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(string(ApiKeys::RevokedReason).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeys::RevokedReason)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Companies::Table).to_owned())
            .await
    }
}
