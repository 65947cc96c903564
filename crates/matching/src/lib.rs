//! Tandem's matching round: of all the waiting mentees and the mentors with free places, the
//! proposals with the highest total score, found exactly, with the score of every proposal
//! explained and a reason for every mentee left waiting.
//!
//! This crate knows mentors and mentees; it sits above `tandem-assignment`, whose [`Solver`]
//! knows neither. To the solver, mentees are agents, mentors are targets with their free places
//! as capacities, and feasible pairs are edges weighted by their score
//! ([`tandem_domain::scoring`]). A round ([`Round::run`], or [`plan_round_with`] for the plan
//! only):
//!
//! 1. encodes the population for pair checks of a few integer operations ([`encoded`]) and
//!    indexes the mentors in blocks whose summaries let a search skip most of them
//!    ([`index`]);
//! 2. keeps the best few candidates of every mentee and of every free mentor place
//!    ([`candidates::scan`]) and solves that sparse graph;
//! 3. prices every feasible pair with the solver's duals ([`candidates::price`]), adds the
//!    pairs that could improve the objective, solves again from where it was, and repeats until
//!    a scan finds none: then no feasible pair can improve the objective, the round's
//!    certificate ([`RoundStats::optimal`]);
//! 4. explains every proposal with its score breakdown and every mentee left waiting with the
//!    furthest hard constraint its pairs reached.
//!
//! [`Round::add_mentee`] takes one more mentee into a solved round without solving again (a
//! warm start), and [`Priority::MostMenteesFirst`] turns the same solve into "as many mentees
//! as possible, then the best score". `docs/matching.md` in the repository describes the
//! engine and its figures.
//!
//! In the workspace: builds on `tandem-domain` and `tandem-assignment`; the broker runs its
//! rounds with it and the `tandem bench` commands measure it.

use std::collections::HashSet;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub mod candidates;
pub mod encoded;
pub mod index;

pub use candidates::{CandidateLimits, PriceLimits, Priced};
pub use encoded::Encoded;
pub use index::MentorIndex;

use tandem_assignment::{Assignment, Instance, Solver};
use tandem_domain::model::{MenteeNeeds, MentorProfile};
use tandem_domain::scoring::{self, Infeasible, Score, ScoreWeights};

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
    /// For each mentee, the most slack any of its feasible pairs outside the graph can have
    /// under the solver's duals (see [`Moved`]).
    bounds: Vec<i64>,
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
            agents: mentees.len(),
            capacities,
            edges: scan.arcs,
        };
        let idle = Idle::default();
        let (solver, index, bounds) = std::thread::scope(|threads| {
            // Counting every feasible pair is a statistic only: the core that the
            // single-threaded solves leave idle counts it meanwhile, and waits while the
            // pricing scans use every core.
            let counting = threads.spawn(|| {
                candidates::count_feasible(&encoded, &base, &scan.furthest, || idle.wait())
            });
            let solved = {
                let _release = idle.idle_on_drop();
                Self::solve_and_price(&encoded, &base, &instance, pricing, &idle, &mut stats)
            };
            stats.feasible_pairs = counting
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            solved
        });

        let explaining = Instant::now();
        let assignment = solver.assignment();
        let mut plan = RoundPlan {
            candidate_pairs: solver.edge_count(),
            ..RoundPlan::default()
        };
        // Explanations are independent of each other: every core writes some.
        let scores: Vec<Score> = (assignment.pairs.par_iter())
            .with_min_len(candidates::PIECE)
            .map(|&(i, j)| {
                let (i, j) = (i as usize, j as usize);
                scoring::score(&mentees[i].needs, &mentors[j], &options.weights)
            })
            .collect();
        let mut matched = vec![false; mentees.len()];
        for (&(i, j), score) in assignment.pairs.iter().zip(scores) {
            let (i, j) = (i as usize, j as usize);
            matched[i] = true;
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
            bounds,
            plan,
        }
    }

    /// Solves the candidate graph, then prices and solves again until no feasible pair can
    /// improve the objective. Returns the solver, the mentor index of the last scan and the
    /// mentees' bounds on slack. Background work waits at `idle` while a scan runs.
    fn solve_and_price(
        encoded: &Encoded,
        base: &MentorIndex,
        instance: &Instance,
        pricing: Pricing,
        idle: &Idle,
        stats: &mut RoundStats,
    ) -> (Solver, MentorIndex, Vec<i64>) {
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
        loop {
            let scanning = Instant::now();
            if moved
                .as_ref()
                .is_some_and(|moved| pricing.rescan_all && moved.share() > 0.5)
            {
                moved = None;
                index = MentorIndex::for_prices(encoded, base.block(), solver.duals().1);
            }
            let scope = moved.as_ref().map_or(candidates::Scope::All, Moved::scope);
            idle.set_busy(true);
            let mut priced = candidates::price(encoded, &index, &solver, scope, limits);
            idle.set_busy(false);
            let reach = std::mem::take(&mut priced.reach);
            let bounds = match moved.take() {
                Some(moved) => moved.bounds(reach),
                None => reach,
            };
            stats.pricing_ms += elapsed_ms(scanning);
            stats.pricing_passes += 1;
            if priced.improving.is_empty() {
                debug_assert!(bounds.iter().all(|&u| u <= 0), "a pair may still improve");
                stats.optimal = true;
                return (solver, index, bounds);
            }
            stats.pricing_arcs += (priced.improving.len() + priced.near.len()) as u64;
            let solving = Instant::now();
            moved = Some(Moved::add(&mut solver, &priced, &bounds));
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
        let index = self.solver.add_agent(&arcs);
        let mut moved = Moved::since(&before, &self.solver, &self.bounds);
        loop {
            let mut priced = candidates::price(
                &self.encoded,
                &self.index,
                &self.solver,
                moved.scope(),
                self.pricing.limits,
            );
            self.bounds = moved.bounds(std::mem::take(&mut priced.reach));
            if priced.improving.is_empty() {
                debug_assert!(
                    self.bounds.iter().all(|&u| u <= 0),
                    "a pair may still improve"
                );
                break;
            }
            moved = Moved::add(&mut self.solver, &priced, &self.bounds);
        }
        index
    }
}

/// Whether the round uses every core: background work waits while it does.
#[derive(Debug, Default)]
struct Idle {
    busy: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Idle {
    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_busy(&self, busy: bool) {
        *self.lock() = busy;
        self.changed.notify_all();
    }

    /// Returns once a core is idle.
    fn wait(&self) {
        let _idle = (self.changed)
            .wait_while(self.lock(), |busy| *busy)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }

    /// Marks the round idle for good when dropped, also when the round panics, so that the
    /// work waiting ends and the thread scope can join it.
    fn idle_on_drop(&self) -> impl Drop + '_ {
        struct Release<'a>(&'a Idle);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.set_busy(false);
            }
        }
        Release(self)
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
/// A round keeps, for each mentee `i`, a bound `u_i` on the slack `w − π_i − p_j` of its
/// feasible pairs outside the graph: what the last scan of its pairs left (see
/// [`candidates::Priced::reach`]: at most 0, and `−margin` while its near list has room, unless
/// its list of improving pairs was cut at the limit). A solve changes a pair's slack by
/// `−(Δπ_i + Δp_j)`, so now the pair has at most `r_i − Δp_j`, where `r_i = u_i − Δπ_i`, and
/// only a pair with `Δp_j < r_i` can have positive slack. For a threshold `t`, the scan looks
/// at every pair of the mentees with `r_i > t`. Every other mentee is searched against the
/// mentors with `Δp_j < θ_i`, where `θ_i` is `t`, or for `r_i ≤ −2` the power of two between
/// `r_i` and `r_i / 2` when lower; it is not searched at all when no mentor's dual fell that
/// far. Searching some more mentors than it must leaves its other pairs at `r_i` minus the
/// least `Δp_j` left out, often well below 0, so that the next scan can leave out most mentors
/// again. `t` is 0 or the median move of the mentor duals (a path through the sink shifts all
/// duals alike), whichever leaves less to scan. After the scan, each bound is the larger of
/// what the scan left and what it did not look at; when the scan finds no improving pair,
/// every bound is at most 0, which is the certificate.
#[derive(Debug, Clone)]
struct Moved {
    /// Mentees whose every pair is looked at.
    mentees: Vec<u32>,
    /// Mentees looked at with some mentors only, grouped by those mentors.
    groups: Vec<candidates::Group>,
    /// For each mentee, the most slack its pairs that the scan does not look at can have.
    unscanned: Vec<i64>,
    /// How many mentors the round has.
    mentors: usize,
}

/// A mentee's bound on slack before any scan of its pairs.
const UNKNOWN: i64 = i64::MAX;

/// Returns the θ of a mentee whose pairs can have at most `r − Δp_j` of slack, `r ≤ t` (see
/// [`Moved`]): `t`, or for `r ≤ −2` the power of two between `r` and `r / 2` when lower.
fn threshold(r: i64, t: i64) -> i64 {
    if r > -2 {
        return t;
    }
    let log2 = 63 - r.unsigned_abs().leading_zeros();
    (-(1i64 << log2)).min(t)
}

impl Moved {
    /// Adds what a pricing scan found to the graph, solves again and returns what moved;
    /// `bounds` are the mentees' bounds on slack after the scan.
    fn add(solver: &mut Solver, priced: &Priced, bounds: &[i64]) -> Self {
        let before = Duals::of(solver);
        solver.add_edges(&[&priced.improving[..], &priced.near[..]].concat());
        Self::since(&before, solver, bounds)
    }

    /// Compares the duals with `before`, when the mentees had these bounds on slack (mentees
    /// added since have neither: all their pairs are looked at).
    fn since(before: &Duals, solver: &Solver, bounds: &[i64]) -> Self {
        let (pi, p) = solver.duals();
        let reach: Vec<i64> = (0..pi.len())
            .map(|i| match (before.mentees.get(i), bounds.get(i)) {
                (Some(&b), Some(&u)) => u.saturating_sub(pi[i] - b),
                _ => UNKNOWN,
            })
            .collect();
        let rise: Vec<i64> = (p.iter().zip(&before.mentors))
            .map(|(&now, &b)| now - b)
            .collect();
        let mut order: Vec<u32> = (0..p.len() as u32).collect();
        order.sort_unstable_by_key(|&j| (rise[j as usize], j));
        let median = order.get(order.len() / 2).map_or(0, |&j| rise[j as usize]);
        let with = |t: i64| {
            let mut moved = Self {
                mentees: Vec::new(),
                groups: Vec::new(),
                unscanned: vec![i64::MIN; pi.len()],
                mentors: p.len(),
            };
            let mut by_threshold: std::collections::BTreeMap<i64, Vec<u32>> =
                std::collections::BTreeMap::new();
            for (i, &r) in reach.iter().enumerate() {
                if r > t {
                    moved.mentees.push(i as u32);
                } else {
                    by_threshold
                        .entry(threshold(r, t))
                        .or_default()
                        .push(i as u32);
                }
            }
            for (theta, mentees) in by_threshold {
                // The mentors whose dual fell below θ come first in `order`; the first one
                // after them has the least move the scan leaves out.
                let k = order.partition_point(|&j| rise[j as usize] < theta);
                let least = order.get(k).map(|&j| rise[j as usize]);
                for &i in &mentees {
                    moved.unscanned[i as usize] =
                        least.map_or(i64::MIN, |d| reach[i as usize].saturating_sub(d));
                }
                if k > 0 {
                    moved.groups.push(candidates::Group {
                        mentees,
                        mentors: order[..k].to_vec(),
                    });
                }
            }
            moved
        };
        let at_zero = with(0);
        if median == 0 {
            return at_zero;
        }
        let at_median = with(median);
        if at_median.share() < at_zero.share() {
            at_median
        } else {
            at_zero
        }
    }

    /// Returns about what share of a scan of every pair this scan looks at.
    fn share(&self) -> f64 {
        let (n, m) = (self.unscanned.len().max(1), self.mentors.max(1));
        let in_groups: f64 = (self.groups.iter())
            .map(|g| g.mentees.len() as f64 * g.mentors.len() as f64)
            .sum();
        self.mentees.len() as f64 / n as f64 + in_groups / (n as f64 * m as f64)
    }

    /// Returns each mentee's bound on slack after the scan found `reach`.
    fn bounds(&self, reach: Vec<i64>) -> Vec<i64> {
        (reach.into_iter().zip(&self.unscanned))
            .map(|(r, &u)| r.max(u))
            .collect()
    }

    fn scope(&self) -> candidates::Scope<'_> {
        candidates::Scope::Moved {
            mentees: &self.mentees,
            groups: &self.groups,
        }
    }
}

#[cfg(test)]
mod tests;
