//! What the mentor's side recorded at the node (check-in, end, rating), in order, for the
//! broker to pick up.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tandem_events")]
pub struct Model {
    /// Position in the log (gap-free, from the `tandem_event_seq` counter).
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub tandem_id: String,
    /// Protobuf-encoded `TandemEvent`.
    pub event: Vec<u8>,
    pub recorded_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
