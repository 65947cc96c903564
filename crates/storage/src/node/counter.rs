//! Named monotonic counters of a node: the profile feed version and the decision log sequence.

use sea_orm::entity::prelude::*;

/// Name of the profile feed counter.
pub const FEED_VERSION: &str = "feed_version";
/// Name of the decision log counter.
pub const DECISION_SEQ: &str = "decision_seq";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub value: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
