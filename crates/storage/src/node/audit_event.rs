//! One entry of the node's append-only audit log: which key did what to which object, and when.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    /// Position in the log; entries are only ever appended.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at_ms: i64,
    /// The staff key's id, `broker` for calls of the broker, `cli` for `tandem keys`.
    pub key_id: String,
    /// What happened, e.g. `mentor.created`, `introduction.delivered`.
    pub action: String,
    /// Kind of object, e.g. `mentor`, `introduction`, `api_key`.
    pub object_type: String,
    pub object_id: String,
    /// Short machine-readable detail (never personal data).
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
