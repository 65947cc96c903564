//! Records each matching round's certificate and phase timings.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MatchingRounds {
    Table,
    FeasiblePairs,
    CandidateArcs,
    PricingArcs,
    PricingPasses,
    Optimal,
    CandidatesMs,
    SolveMs,
    PricingMs,
}

fn columns() -> Vec<ColumnDef> {
    vec![
        big_integer(MatchingRounds::FeasiblePairs)
            .default(0)
            .to_owned(),
        big_integer(MatchingRounds::CandidateArcs)
            .default(0)
            .to_owned(),
        big_integer(MatchingRounds::PricingArcs)
            .default(0)
            .to_owned(),
        integer(MatchingRounds::PricingPasses).default(0).to_owned(),
        boolean(MatchingRounds::Optimal).default(false).to_owned(),
        big_integer(MatchingRounds::CandidatesMs)
            .default(0)
            .to_owned(),
        big_integer(MatchingRounds::SolveMs).default(0).to_owned(),
        big_integer(MatchingRounds::PricingMs).default(0).to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for mut column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(MatchingRounds::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let names = [
            MatchingRounds::FeasiblePairs,
            MatchingRounds::CandidateArcs,
            MatchingRounds::PricingArcs,
            MatchingRounds::PricingPasses,
            MatchingRounds::Optimal,
            MatchingRounds::CandidatesMs,
            MatchingRounds::SolveMs,
            MatchingRounds::PricingMs,
        ];
        for name in names {
            manager
                .alter_table(
                    Table::alter()
                        .table(MatchingRounds::Table)
                        .drop_column(name)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
