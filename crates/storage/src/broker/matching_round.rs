//! A matching round's parameters, sizes and outcome.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "matching_rounds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    pub mentees_considered: i32,
    pub mentors_considered: i32,
    pub candidate_pairs: i32,
    pub proposals: i32,
    pub objective: i64,
    pub cross_node_proposals: i32,
    /// JSON object: reason code → number of mentees left waiting for it.
    pub unmatched: String,
    /// JSON of the score weights used.
    pub parameters: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
