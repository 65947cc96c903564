//! A proposed mentor for a mentee, with its score, reasons and both sides' answers. The
//! proposal id doubles as the introduction id at the mentor's node.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "proposals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub round_id: String,
    pub mentee_id: String,
    pub company_id: String,
    pub node_id: String,
    pub pseudonym: String,
    /// Protobuf-encoded `AnonymisedProfile` as known when proposing.
    pub profile: Vec<u8>,
    pub score: i64,
    /// JSON array of `{criterion, points, detail}`.
    pub reasons: String,
    /// `MentorDecision` number.
    pub mentor_decision: i32,
    /// `CompanyDecision` number.
    pub company_decision: i32,
    /// `ProposalStatus` number.
    pub status: i32,
    /// True when the mentor's node differs from the mentee's home node.
    pub cross_node: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Unix ms after which an open proposal expires.
    pub expires_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
