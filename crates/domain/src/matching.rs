//! The matching engine: an exact solver for the capacitated assignment problem and the round
//! planner that builds its instance from mentees and mentor profiles.
//!
//! A round wants the set of pairs with the highest total score such that every mentee gets at
//! most one mentor and no mentor more mentees than free places: a maximum-weight b-matching,
//! solved exactly by [`Solver`] (see its module for the method).

use std::collections::HashSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub mod arcs_file;
pub mod candidates;
pub mod encoded;
pub mod index;
mod solver;

pub use candidates::{CandidateLimits, PriceLimits, Priced};
pub use encoded::Encoded;
pub use index::MentorIndex;
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
    /// Sizes, timings and the optimality certificate.
    pub stats: RoundStats,
}

/// How a round ranks assignments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// The highest total score (the default).
    #[default]
    BestTotalScore,
    /// As many mentees as possible, then the highest total score among those assignments.
    MostMenteesFirst,
}

/// Everything a round can be tuned by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoundOptions {
    pub weights: ScoreWeights,
    pub limits: CandidateLimits,
    pub priority: Priority,
}

/// Sizes and phase timings of a round, and its optimality certificate: the pricing scans that
/// checked every feasible pair against the duals and found nothing left to improve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundStats {
    /// Feasible mentee–mentor pairs in the population.
    pub feasible_pairs: u64,
    /// Arcs the first candidate scan kept.
    pub candidate_arcs: u64,
    /// Arcs the pricing check added: improving pairs and near ones (see [`PriceLimits`]).
    pub pricing_arcs: u64,
    /// Pricing scans run. The first looks at every feasible pair; a later one at every pair
    /// whose slack the solve before it can have raised (all pairs again when that is most of
    /// them), so that once one finds nothing, no feasible pair has positive slack.
    pub pricing_passes: u32,
    /// True when the last pricing scan found no improving pair: the assignment is optimal over
    /// all feasible pairs.
    pub optimal: bool,
    pub candidates_ms: u64,
    pub solve_ms: u64,
    pub pricing_ms: u64,
    pub explain_ms: u64,
}

fn elapsed_ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Plans a matching round with the default limits and priority.
pub fn plan_round(
    mentees: &[MenteeCandidate],
    mentors: &[MentorProfile],
    weights: &ScoreWeights,
) -> RoundPlan {
    let options = RoundOptions {
        weights: weights.clone(),
        ..RoundOptions::default()
    };
    plan_round_with(mentees, mentors, &options)
}

/// Plans a matching round (see [`Round::run`]).
pub fn plan_round_with(
    mentees: &[MenteeCandidate],
    mentors: &[MentorProfile],
    options: &RoundOptions,
) -> RoundPlan {
    Round::run(mentees, mentors, options).plan
}

/// A planned round that can take more mentees without solving again (warm start).
#[derive(Debug)]
pub struct Round {
    encoded: Encoded,
    index: MentorIndex,
    solver: Solver,
    pricing: Pricing,
    /// The outcome.
    pub plan: RoundPlan,
}

impl Round {
    /// Plans a matching round: candidates from both sides, an exact solve, pricing until no
    /// feasible pair can improve the objective, then an explanation for every proposal and for
    /// every mentee left waiting.
    pub fn run(
        mentees: &[MenteeCandidate],
        mentors: &[MentorProfile],
        options: &RoundOptions,
    ) -> Self {
        let pricing = Pricing {
            limits: PriceLimits::for_scores(options.weights.best_pair()),
            rescan_all: true,
        };
        Self::run_priced(mentees, mentors, options, pricing)
    }

    /// [`Round::run`] with these pricing settings.
    fn run_priced(
        mentees: &[MenteeCandidate],
        mentors: &[MentorProfile],
        options: &RoundOptions,
        pricing: Pricing,
    ) -> Self {
        let mut stats = RoundStats::default();
        let started = Instant::now();
        let mut encoded = Encoded::new(mentees, mentors, &options.weights);
        if options.priority == Priority::MostMenteesFirst {
            // A bonus per matched pair larger than any total score makes cardinality come first.
            let max_pair = options.weights.best_pair().saturating_add(1);
            encoded.set_pair_bonus(max_pair.saturating_mul(mentees.len() as i64 + 1));
        }
        let capacities: Vec<u32> = mentors.iter().map(|m| m.free_capacity).collect();
        let base = MentorIndex::new(&encoded);
        let scan = candidates::scan(&encoded, &base, &capacities, options.limits);
        stats.candidate_arcs = scan.arcs.len() as u64;
        stats.candidates_ms = elapsed_ms(started);

        let instance = Instance {
            mentees: mentees.len(),
            capacities,
            arcs: scan.arcs,
        };
        let (solver, index) = std::thread::scope(|threads| {
            // Counting every feasible pair is a statistic only: the core that the
            // single-threaded solves leave idle counts it meanwhile.
            let counting =
                threads.spawn(|| candidates::count_feasible(&encoded, &base, &scan.furthest));
            let solved = Self::solve_and_price(&encoded, &base, &instance, pricing, &mut stats);
            stats.feasible_pairs = counting
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            solved
        });

        let explaining = Instant::now();
        let assignment = solver.assignment();
        let mut plan = RoundPlan {
            candidate_pairs: solver.arc_count(),
            ..RoundPlan::default()
        };
        let mut matched = vec![false; mentees.len()];
        for &(i, j) in &assignment.pairs {
            let (i, j) = (i as usize, j as usize);
            matched[i] = true;
            let score = scoring::score(&mentees[i].needs, &mentors[j], &options.weights);
            plan.objective += score.total;
            plan.proposals.push(PlannedProposal {
                mentee: i,
                mentor: j,
                score,
            });
        }
        for (i, &furthest) in scan
            .furthest
            .iter()
            .enumerate()
            .filter(|(i, _)| !matched[*i])
        {
            let (code, detail) = if mentors.is_empty() {
                ("no_mentors", "no mentor is published in the network yet")
            } else if furthest == encoded::FEASIBLE {
                (scoring::OUTSCORED, scoring::OUTSCORED_DETAIL)
            } else {
                let reason = Infeasible::from_stage(furthest);
                (reason.code(), reason.detail())
            };
            plan.unmatched.push(Unmatched {
                mentee: i,
                code,
                detail,
            });
        }
        stats.explain_ms = elapsed_ms(explaining);
        plan.stats = stats;
        Self {
            encoded,
            index,
            solver,
            pricing,
            plan,
        }
    }

    /// Solves the candidate graph, then prices and solves again until no feasible pair can
    /// improve the objective. Returns the solver and the mentor index of the last scan.
    fn solve_and_price(
        encoded: &Encoded,
        base: &MentorIndex,
        instance: &Instance,
        pricing: Pricing,
        stats: &mut RoundStats,
    ) -> (Solver, MentorIndex) {
        let limits = pricing.limits;
        let solving = Instant::now();
        let mut solver = Solver::new(instance);
        solver.solve();
        stats.solve_ms = elapsed_ms(solving);
        // The first scan looks at every pair; each later one at the pairs whose slack the last
        // solve can have raised (see `Moved`), which keeps the certificate: once a scan finds
        // nothing, no feasible pair outside the graph has positive slack. A scan of every pair
        // pays for an index ordered by the current duals (a few milliseconds), and the warm
        // start keeps the last one.
        let mut moved: Option<Moved> = None;
        let mut index = MentorIndex::for_prices(encoded, base.block(), solver.duals().1);
        let (n, m) = (instance.mentees.max(1), instance.capacities.len().max(1));
        loop {
            let scanning = Instant::now();
            let most = |moved: &Moved| moved.mentees.len() * 2 > n || moved.mentors.len() * 2 > m;
            if moved
                .as_ref()
                .is_some_and(|moved| pricing.rescan_all && most(moved))
            {
                moved = None;
                index = MentorIndex::for_prices(encoded, base.block(), solver.duals().1);
            }
            let scope = moved.as_ref().map_or(candidates::Scope::All, Moved::scope);
            let priced = candidates::price(encoded, &index, &solver, scope, limits);
            stats.pricing_ms += elapsed_ms(scanning);
            stats.pricing_passes += 1;
            if priced.improving.is_empty() {
                stats.optimal = true;
                return (solver, index);
            }
            stats.pricing_arcs += (priced.improving.len() + priced.near.len()) as u64;
            let solving = Instant::now();
            moved = Some(Moved::add(&mut solver, &priced, limits));
            stats.solve_ms += elapsed_ms(solving);
        }
    }

    /// Returns the graph the solver ended with: the candidates plus the pairs pricing added.
    pub fn graph(&self) -> Instance {
        self.solver.instance()
    }

    /// Returns the current total weight of the assignment (scores, plus the priority bonus).
    pub fn objective(&self) -> i64 {
        self.solver.assignment().objective
    }

    /// Returns the current assignment.
    pub fn assignment(&self) -> Assignment {
        self.solver.assignment()
    }

    /// Adds one mentee to the solved round with all its feasible pairs and re-solves from the
    /// current state (warm start), then prices the pairs that may have gained slack until none
    /// improves, so that the assignment stays optimal over all feasible pairs. Returns the
    /// mentee's index.
    pub fn add_mentee(&mut self, mentee: &MenteeCandidate) -> u32 {
        let e = self.encoded.encode_mentee(mentee);
        let mut arcs: Vec<(u32, i64)> = Vec::new();
        let mut floor = 0;
        (self.index).search(&self.encoded, &e, None, &mut floor, |j, w, _| {
            arcs.push((j, w));
        });
        arcs.sort_unstable();
        self.encoded.mentees.push(e);
        let before = Duals::of(&self.solver);
        let index = self.solver.add_mentee(&arcs);
        let limits = self.pricing.limits;
        let mut moved = Moved::since(&before, &self.solver, &[], limits.improving);
        loop {
            let priced = candidates::price(
                &self.encoded,
                &self.index,
                &self.solver,
                moved.scope(),
                limits,
            );
            if priced.improving.is_empty() {
                break;
            }
            moved = Moved::add(&mut self.solver, &priced, limits);
        }
        index
    }
}

/// How a round prices.
#[derive(Debug, Clone, Copy)]
struct Pricing {
    /// How many pairs a scan adds per mentee.
    limits: PriceLimits,
    /// Whether a scan looks at every pair again when the duals of most mentees or mentors
    /// moved (always, except in tests of the scans over moved duals).
    rescan_all: bool,
}

/// A copy of the solver's duals, to see how a solve moved them.
struct Duals {
    mentees: Vec<i64>,
    mentors: Vec<i64>,
}

impl Duals {
    fn of(solver: &Solver) -> Self {
        let (pi, p) = solver.duals();
        Self {
            mentees: pi.to_vec(),
            mentors: p.to_vec(),
        }
    }
}

/// The pairs a pricing scan must look at after a solve moved the duals.
///
/// Every pair outside the graph had a slack `w − π_i − p_j` of at most 0 at the last scan,
/// except pairs of a mentee whose list of improving pairs was cut at the per-mentee limit.
/// (Near pairs the scan found are in the graph.) A solve changes the slack by
/// `−(Δπ_i + Δp_j)`, so for any threshold `t` a pair with `Δπ_i ≥ −t` and `Δp_j ≥ t` cannot
/// have gained any. The scan therefore looks at every pair of the mentees whose dual
/// fell by more than `t` (and of those whose list was cut), and at the pairs of every other
/// mentee with the mentors whose dual rose by less than `t`. `t` is 0 or the median move of
/// the mentor duals — a path through the sink shifts all duals alike — whichever leaves less
/// to scan.
#[derive(Debug, Clone)]
struct Moved {
    mentees: Vec<u32>,
    mentors: Vec<u32>,
}

impl Moved {
    /// Adds what a pricing scan found to the graph, solves again and returns what moved.
    fn add(solver: &mut Solver, priced: &Priced, limits: PriceLimits) -> Self {
        let before = Duals::of(solver);
        solver.add_arcs(&[&priced.improving[..], &priced.near[..]].concat());
        Self::since(&before, solver, &priced.improving, limits.improving)
    }

    /// Compares the duals with `before`; `improving` are the improving pairs added since,
    /// which tell the mentees whose list was cut at `per_mentee`.
    fn since(before: &Duals, solver: &Solver, improving: &[Arc], per_mentee: usize) -> Self {
        let (pi, p) = solver.duals();
        // Mentees added since have no dual to compare: all their pairs are looked at.
        let rise = |i: usize| before.mentees.get(i).map_or(i64::MIN, |&b| pi[i] - b);
        let mentor_rise: Vec<i64> = (p.iter().zip(&before.mentors))
            .map(|(&now, &b)| now - b)
            .collect();
        let mut sorted = mentor_rise.clone();
        let median = if sorted.is_empty() {
            0
        } else {
            let mid = sorted.len() / 2;
            *sorted.select_nth_unstable(mid).1
        };
        let mut cut = vec![0usize; pi.len()];
        for a in improving {
            cut[a.mentee as usize] += 1;
        }
        let with = |t: i64| {
            let mentees: Vec<u32> = (0..pi.len())
                .filter(|&i| rise(i) < -t || cut[i] >= per_mentee)
                .map(|i| i as u32)
                .collect();
            let mentors: Vec<u32> = (0..p.len())
                .filter(|&j| mentor_rise[j] < t)
                .map(|j| j as u32)
                .collect();
            Self { mentees, mentors }
        };
        let (n, m) = (pi.len().max(1) as f64, p.len().max(1) as f64);
        let cost = |s: &Self| s.mentees.len() as f64 / n + s.mentors.len() as f64 / m;
        let at_zero = with(0);
        if median == 0 {
            return at_zero;
        }
        let at_median = with(median);
        if cost(&at_median) < cost(&at_zero) {
            at_median
        } else {
            at_zero
        }
    }

    fn scope(&self) -> candidates::Scope<'_> {
        candidates::Scope::Moved {
            mentees: &self.mentees,
            mentors: &self.mentors,
        }
    }
}

#[cfg(test)]
mod tests;
