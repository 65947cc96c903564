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
    /// JSON of the round options used (weights, candidate limits, priority).
    pub parameters: String,
    /// Feasible pairs in the population.
    pub feasible_pairs: i64,
    /// Arcs of the first candidate scan.
    pub candidate_arcs: i64,
    /// Arcs the pricing check added.
    pub pricing_arcs: i64,
    /// Pricing scans run; the last found nothing to improve when `optimal`.
    pub pricing_passes: i32,
    /// The optimality certificate: no feasible pair could improve the objective.
    pub optimal: bool,
    pub candidates_ms: i64,
    pub solve_ms: i64,
    pub pricing_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
