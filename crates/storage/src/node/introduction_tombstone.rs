//! A tombstone of an introduction the node closed or whose mentee it forgot (or was told to
//! forget before it stored it): a late delivery of that id is refused. No personal data.

use sea_orm::entity::prelude::*;

/// `kind` of an introduction the broker or the node closed.
pub const CLOSED: &str = "closed";
/// `kind` of an introduction whose mentee was erased (its summary forgotten, or never stored).
pub const FORGOTTEN: &str = "forgotten";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "introduction_tombstones")]
pub struct Model {
    /// The broker-assigned id of the introduction.
    #[sea_orm(primary_key, auto_increment = false)]
    pub introduction_id: String,
    /// [`CLOSED`] or [`FORGOTTEN`]; a forget replaces a close, never the other way round.
    pub kind: String,
    /// Unix ms when the node recorded it.
    pub at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
