//! Append-only migrations, one folder per database. Never edit a migration that has shipped:
//! add a new one with a later date.

pub mod broker;
pub mod node;

use sea_orm_migration::prelude::*;

/// Migrations of a node's database.
#[derive(Debug)]
pub struct NodeMigrator;

#[async_trait::async_trait]
impl MigratorTrait for NodeMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(node::m20261127_000001_initial::Migration),
            Box::new(node::m20261201_000002_publications::Migration),
            Box::new(node::m20261204_000003_tandems::Migration),
            Box::new(node::m20261204_000010_staff_keys::Migration),
            Box::new(node::m20261204_000011_audit_log::Migration),
            Box::new(node::m20261204_000012_forgotten_mentees::Migration),
            Box::new(node::m20261204_000013_mentee_ref::Migration),
            Box::new(node::m20261205_000014_shared_key_and_audit_columns::Migration),
            Box::new(node::m20261206_000015_mentor_member_number::Migration),
            Box::new(node::m20261207_000016_companies::Migration),
            Box::new(node::m20261208_000017_introduction_tombstones::Migration),
        ]
    }
}

/// Migrations of the broker's database.
#[derive(Debug)]
pub struct BrokerMigrator;

#[async_trait::async_trait]
impl MigratorTrait for BrokerMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(broker::m20261127_000001_initial::Migration),
            Box::new(broker::m20261127_000002_round_certificate::Migration),
            Box::new(broker::m20261127_000003_audit_log::Migration),
            Box::new(broker::m20261127_000004_api_keys::Migration),
            Box::new(broker::m20261203_000005_node_identity::Migration),
            Box::new(broker::m20261204_000006_tandems::Migration),
            Box::new(broker::m20261204_000010_mentee_erasure::Migration),
            Box::new(broker::m20261207_000011_memberships::Migration),
            Box::new(broker::m20261208_000012_outbox_lanes::Migration),
        ]
    }
}
