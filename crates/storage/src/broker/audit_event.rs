//! One entry of the broker's append-only audit log: who did what to which object, and when.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    /// Position in the log; entries are only ever appended.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at_ms: i64,
    /// The caller, e.g. `company:acme`, `operator`, `node:chamber`, `broker` for its own jobs.
    pub actor: String,
    /// What happened, e.g. `mentee.submitted`, `contact_card.released`.
    pub action: String,
    /// Kind of object, e.g. `mentee`, `proposal`, `round`.
    pub object_type: String,
    pub object_id: String,
    /// Short machine-readable detail (never personal data).
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
