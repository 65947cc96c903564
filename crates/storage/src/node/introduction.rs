//! An introduction the broker delivered: a proposed mentee for one of the node's mentors.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "introductions")]
pub struct Model {
    /// Broker-assigned id; delivery is idempotent on it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub mentor_id: String,
    /// Protobuf-encoded `MenteeSummary`.
    pub mentee_summary: Vec<u8>,
    /// Protobuf-encoded `ScoreReasons` (the list of reasons).
    pub reasons: Vec<u8>,
    pub score: i64,
    /// `MentorDecision` number.
    pub decision: i32,
    /// Position in the node's decision log; 0 while no decision was recorded.
    pub decision_seq: i64,
    pub closed: bool,
    pub close_reason: String,
    pub contact_released: bool,
    pub received_at_ms: i64,
    pub decided_at_ms: i64,
    /// Unix ms when the broker asked to forget the mentee summary (the mentee was erased);
    /// `mentee_summary` and `reasons` are empty from then on. 0 while kept.
    pub mentee_forgotten_at_ms: i64,
    /// The broker's reference to the mentee (hex SHA-256 of node id and mentee id); empty when
    /// the broker sent none or the mentee was forgotten.
    pub mentee_ref: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
