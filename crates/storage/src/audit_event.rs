//! One entry of an append-only audit log: who did what to which object, and when. The broker
//! and every node keep a log of this shape in their own database.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    /// Position in the log; entries are only ever appended.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at_ms: i64,
    /// Who made the change. At the broker: `company:acme`, `operator`, `broker` for its own
    /// jobs. At a node: the staff key's id, `broker` for calls of the broker, `cli` for
    /// `tandem keys`.
    pub actor: String,
    /// What happened, e.g. `mentee.submitted`, `mentor.created`, `contact_card.released`.
    pub action: String,
    /// Kind of object, e.g. `mentee`, `proposal`, `mentor`, `introduction`, `api_key`.
    pub object_type: String,
    pub object_id: String,
    /// Short machine-readable detail (never personal data).
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
