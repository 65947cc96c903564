//! A member company the node's staff admitted. Its name and register numbers stay here; the
//! broker receives only the membership (the tokens computed from the register numbers, the
//! hash of the open enrolment code, whether it is active), served from this table by version.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "companies")]
pub struct Model {
    /// The membership's id: a random UUID, the company's id at the broker.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub legal_name: String,
    /// As staff wrote it.
    pub register_number: String,
    /// Normalised (`pseudonym::normalise_registry_number`): unique among active members.
    pub register_key: String,
    /// Empty when the company belongs to no group.
    pub group_register_number: String,
    /// The association's own reference; empty when none. Unique among active members.
    pub reference: String,
    pub employer_token: String,
    pub group_token: String,
    /// SHA-256 (hex) of the open enrolment code; empty when none is open.
    pub code_hash: String,
    /// Unix ms after which the open code is refused; 0 when none is open.
    pub code_expires_at_ms: i64,
    pub active: bool,
    pub admitted_at_ms: i64,
    /// 0 while active.
    pub removed_at_ms: i64,
    /// The membership feed version of the last change (counter `membership_version`).
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
