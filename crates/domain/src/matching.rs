//! The matching engine: an exact solver for the capacitated assignment problem and the round
//! planner that builds its instance from mentees and mentor profiles.
//!
//! A round wants the set of pairs with the highest total score such that every mentee gets at
//! most one mentor and no mentor more mentees than free places: a maximum-weight b-matching,
//! solved exactly by [`Solver`] (see its module for the method).

use std::collections::HashSet;

pub mod arcs_file;
mod solver;

pub use solver::{Arc, Assignment, Instance, Solver, solve};

use crate::model::{MenteeNeeds, MentorProfile};
use crate::scoring::{self, Infeasible, Score, ScoreWeights};

/// A mentee as a round sees it: what it needs and which mentors were proposed to it before.
#[derive(Debug, Clone)]
pub struct MenteeCandidate {
    pub id: String,
    pub needs: MenteeNeeds,
    /// `(node_id, pseudonym)` of every mentor proposed to this mentee before.
    pub proposed_before: HashSet<(String, String)>,
}

/// A pair the round proposes.
#[derive(Debug, Clone)]
pub struct PlannedProposal {
    /// Index into the round's mentees.
    pub mentee: usize,
    /// Index into the round's mentors.
    pub mentor: usize,
    pub score: Score,
}

/// A mentee the round could not match, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    pub mentee: usize,
    pub code: &'static str,
    pub detail: &'static str,
}

/// The outcome of planning a round.
#[derive(Debug, Clone, Default)]
pub struct RoundPlan {
    pub proposals: Vec<PlannedProposal>,
    pub unmatched: Vec<Unmatched>,
    /// Feasible pairs considered by the solver.
    pub candidate_pairs: usize,
    /// Total score of the proposals.
    pub objective: i64,
}

fn check(mentee: &MenteeCandidate, mentor: &MentorProfile) -> Result<(), Infeasible> {
    scoring::check_pair(&mentee.needs, mentor)?;
    if mentee
        .proposed_before
        .contains(&(mentor.node_id.clone(), mentor.pseudonym.clone()))
    {
        return Err(Infeasible::ProposedBefore);
    }
    if mentor.free_capacity == 0 {
        return Err(Infeasible::NoCapacity);
    }
    Ok(())
}

/// Plans a matching round: every feasible pair becomes an arc weighted by its score, the solver
/// picks the best assignment, and every mentee left over gets the reason.
pub fn plan_round(
    mentees: &[MenteeCandidate],
    mentors: &[MentorProfile],
    weights: &ScoreWeights,
) -> RoundPlan {
    let mut instance = Instance {
        mentees: mentees.len(),
        capacities: mentors.iter().map(|m| m.free_capacity).collect(),
        arcs: Vec::new(),
    };
    for (i, mentee) in mentees.iter().enumerate() {
        for (j, mentor) in mentors.iter().enumerate() {
            if check(mentee, mentor).is_ok() {
                let weight = scoring::score(&mentee.needs, mentor, weights).total;
                instance.arcs.push(Arc {
                    mentee: i as u32,
                    mentor: j as u32,
                    weight,
                });
            }
        }
    }
    let assignment = solve(&instance);
    let mut plan = RoundPlan {
        candidate_pairs: instance.arcs.len(),
        objective: assignment.objective,
        ..RoundPlan::default()
    };
    let mut matched = vec![false; mentees.len()];
    for &(i, j) in &assignment.pairs {
        let (i, j) = (i as usize, j as usize);
        matched[i] = true;
        let score = scoring::score(&mentees[i].needs, &mentors[j], weights);
        plan.proposals.push(PlannedProposal {
            mentee: i,
            mentor: j,
            score,
        });
    }
    for (i, mentee) in mentees.iter().enumerate().filter(|(i, _)| !matched[*i]) {
        // The furthest check any mentor got to explains the wait best.
        let furthest = mentors
            .iter()
            .map(|m| check(mentee, m).err())
            .max_by_key(|e| match e {
                None => usize::MAX,
                Some(reason) => *reason as usize,
            });
        let (code, detail) = match furthest {
            Some(None) => (scoring::OUTSCORED, scoring::OUTSCORED_DETAIL),
            Some(Some(reason)) => (reason.code(), reason.detail()),
            None => ("no_mentors", "no mentor is published in the network yet"),
        };
        plan.unmatched.push(Unmatched {
            mentee: i,
            code,
            detail,
        });
    }
    plan
}

#[cfg(test)]
mod tests;
