//! A registered node and how far the broker has synced it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nodes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub endpoint: String,
    pub display_name: String,
    /// Profile feed cursor reached.
    pub feed_version: i64,
    /// Decision log cursor reached.
    pub decision_cursor: i64,
    /// Unix ms of the last successful sync; 0 if never.
    pub last_sync_at_ms: i64,
    /// Error of the last failed sync; empty after a success.
    pub last_error: String,
    pub registered_at_ms: i64,
    /// Identity (DNS name) the node's TLS certificate must carry; empty means
    /// `<id>.node.tandem`.
    pub identity: String,
    /// Tandem event log cursor reached.
    pub tandem_event_cursor: i64,
    /// Membership feed cursor reached.
    pub membership_cursor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
