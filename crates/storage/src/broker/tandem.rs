//! A tandem after the double opt-in (its id is the proposal id). The whole lifecycle record is
//! kept as one protobuf-encoded `Tandem`; the columns beside it are what lists and the
//! operator's figures filter and count on.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tandems")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub mentee_id: String,
    pub company_id: String,
    pub node_id: String,
    /// True when the mentor's node differs from the mentee's home node.
    pub cross_node: bool,
    /// `TandemStatus` number.
    pub status: i32,
    pub formed_at_ms: i64,
    /// 0 until the goals and cadence are recorded.
    pub started_at_ms: i64,
    /// 0 while the tandem runs.
    pub ended_at_ms: i64,
    /// When the next meeting is due; 0 unless active.
    pub next_due_at_ms: i64,
    /// Mean goal attainment in percent; -1 before goals are recorded.
    pub attainment_percent: i32,
    /// Protobuf-encoded `Tandem`.
    pub state: Vec<u8>,
    pub version: i64,
    pub updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
