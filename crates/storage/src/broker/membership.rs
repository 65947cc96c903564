//! A member company as the broker knows it from the membership its node published: who it is
//! for the conflict check (the tokens), where it belongs (the node), and its enrolment code.
//! The company's id is the membership's id; company API keys are bound to it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    /// The membership's id (a UUID the node chose): the company's id at the broker.
    #[sea_orm(primary_key, auto_increment = false)]
    pub company_id: String,
    /// The node that admitted the company (its home node).
    pub node_id: String,
    pub employer_token: String,
    pub group_token: String,
    /// SHA-256 (hex) of the node's open enrolment code; empty when none.
    pub code_hash: String,
    pub code_expires_at_ms: i64,
    /// Unix ms when that code was exchanged for a key; 0 while unused.
    pub code_used_at_ms: i64,
    pub active: bool,
    /// The node's membership version last applied.
    pub version: i64,
    pub synced_at_ms: i64,
    /// Unix ms when the broker applied the removal; 0 while active.
    pub ended_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
