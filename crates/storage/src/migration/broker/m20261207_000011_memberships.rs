//! Memberships (the member companies the nodes published), the nodes' membership cursors,
//! and the reason a key was revoked.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Memberships {
    Table,
    CompanyId,
    NodeId,
    EmployerToken,
    GroupToken,
    CodeHash,
    CodeExpiresAtMs,
    CodeUsedAtMs,
    Active,
    Version,
    SyncedAtMs,
    EndedAtMs,
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    MembershipCursor,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    RevokedReason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(string(Memberships::CompanyId).primary_key())
                    .col(string(Memberships::NodeId))
                    .col(string(Memberships::EmployerToken))
                    .col(string(Memberships::GroupToken))
                    .col(string(Memberships::CodeHash))
                    .col(big_integer(Memberships::CodeExpiresAtMs))
                    .col(big_integer(Memberships::CodeUsedAtMs))
                    .col(boolean(Memberships::Active))
                    .col(big_integer(Memberships::Version))
                    .col(big_integer(Memberships::SyncedAtMs))
                    .col(big_integer(Memberships::EndedAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_memberships_code_hash")
                    .table(Memberships::Table)
                    .col(Memberships::CodeHash)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_memberships_node")
                    .table(Memberships::Table)
                    .col(Memberships::NodeId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(big_integer(Nodes::MembershipCursor).default(0))
                    .to_owned(),
            )
            .await?;
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
            .alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .drop_column(Nodes::MembershipCursor)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Memberships::Table).to_owned())
            .await
    }
}
