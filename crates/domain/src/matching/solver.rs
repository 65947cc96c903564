//! Exact solver for the capacitated assignment problem: each mentee gets at most one mentor,
//! mentor `j` at most `cap_j` mentees, and the total weight of the chosen pairs is maximal.
//!
//! As a min-cost flow it is source → mentee → mentor → sink, plus a zero-cost "stay unmatched"
//! arc from every mentee to the sink. A full solve runs an ε-scaling forward/reverse auction
//! on that network ([`auction`]), with costs multiplied by the number of nodes plus one so that
//! the last phase, at ε = 1, ends with an optimal assignment. Once ε is below one unit of
//! weight, each phase is followed by an attempt to turn the prices into exact integer LP duals
//! ([`duals`]); it succeeds as soon as the assignment is optimal, which is usually several
//! phases before the last, and the remaining phases are skipped. The duals are then checked
//! against every arc: a certificate of optimality that costs one pass over the graph (should
//! it ever fail, the solver falls back to plain shortest paths, as it does when scaled costs
//! could overflow).
//!
//! The duals serve the round's pricing check: [`Solver::slack`] is positive exactly when a pair
//! outside the graph could improve the objective. [`Solver::add_arcs`] adds such pairs and
//! re-optimises: a few with one shortest augmenting path each ([`augment`]), many with the
//! auction started from the current solution. [`Solver::add_mentee`] routes one more mentee
//! along a shortest augmenting path without touching the rest.

mod auction;
mod augment;
mod duals;

use auction::{ALONE, Auction, FREE, Graph, Warm};
use augment::Search;

/// One allowed pair in a solver instance, with its weight (the pair's score).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arc {
    pub mentee: u32,
    pub mentor: u32,
    pub weight: i64,
}

/// A bare assignment problem: mentees, mentor capacities and the allowed pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub mentees: usize,
    pub capacities: Vec<u32>,
    pub arcs: Vec<Arc>,
}

/// The solver's answer: matched pairs `(mentee, mentor)` sorted by mentee, and their total weight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub pairs: Vec<(u32, u32)>,
    pub objective: i64,
}

const UNASSIGNED: u32 = u32::MAX;

/// Dual of a mentor without places: no pair with it can ever improve the objective.
const NO_PLACE_DUAL: i64 = i64::MAX / 4;

/// [`Solver::add_arcs`] repairs the solution by shortest paths for up to this many improving
/// arcs, or one per `REPAIR_SHARE` mentees if more. A path usually costs a small fraction of an
/// auction on a 50,000-mentee graph, and it moves only the duals it must.
const REPAIR_MIN: usize = 32;
const REPAIR_SHARE: usize = 128;

/// Paths in a graph with many ties can each explore most of it: once the searches of one repair
/// have finalised as many nodes as the graph has, the rest of the arcs go to a warm
/// auction instead (on a 50,000 × 25,000 round, 307 paths took 1.1 s, an auction 0.3–0.4 s;
/// one path through the sink finalises nearly every node, most others a few dozen).
const REPAIR_WORK: usize = 1;

/// A warm auction starts with ε at this many units of weight per improving arc and mentee, at
/// least a quarter unit (the last phase's) and at most the cold start's ε: a few new arcs
/// unsettle little and are settled fastest near the final ε, while hundreds of thousands start
/// a price war that the cold schedule runs fastest. Measured on 50,000 × 25,000 rounds: ~300
/// and ~500 new arcs took 0.15–0.25 s from a quarter unit against 0.7 s from one unit, 3,700
/// took 0.42 s from one unit against 0.65–0.8 s from 16, and 658,000 took 0.69 s from the cold
/// ε against 0.9 s from 16 units and 1.6 s from 4.
const WARM_UNITS_PER_SHARE: i64 = 16;

/// The next auction merges the arcs added since the last into its compressed graph when they
/// are at most this share of it, and builds the graph anew otherwise. On the 50,000 × 25,000
/// bench, merging took 18–50 ms for 45,000–213,000 arcs into 1.4–1.8 M, where a build took
/// 62–84 ms, but 110 ms for 672,000 arcs into 740,000.
const MERGE_SHARE: usize = 4;

/// Solver state that can be extended after solving (warm start).
#[derive(Debug, Clone)]
pub struct Solver {
    /// Arcs of each mentee: `(mentor, weight)`.
    arcs: Vec<Vec<(u32, i64)>>,
    capacities: Vec<u32>,
    /// Mentor of each mentee, or `UNASSIGNED`.
    mentor_of: Vec<u32>,
    /// Mentees of each mentor, with the weight of the pair.
    mentees_of: Vec<Vec<(u32, i64)>>,
    /// LP duals: `π` of each mentee and `p` of each mentor (see [`Solver::duals`]).
    mentee_dual: Vec<i64>,
    mentor_dual: Vec<i64>,
    /// Whether the assignment and the duals are optimal for the current graph.
    solved: bool,
    /// The graph compressed for the auction, kept between solves.
    graph: Option<Graph>,
    /// Arcs added to `arcs` since `graph` was built, while it has every mentee.
    pending: Vec<Arc>,
    /// Overrides the number of improving arcs repaired by shortest paths (tests).
    repair_limit: Option<usize>,
    search: Search,
}

impl Solver {
    /// Builds the solver for an instance; nothing is assigned until [`Solver::solve`].
    pub fn new(instance: &Instance) -> Self {
        let mut arcs = vec![Vec::new(); instance.mentees];
        for a in &instance.arcs {
            arcs[a.mentee as usize].push((a.mentor, a.weight));
        }
        let m = instance.capacities.len();
        let mut search = Search::default();
        search.resize(m + 1 + instance.mentees);
        Self {
            arcs,
            capacities: instance.capacities.clone(),
            mentor_of: vec![UNASSIGNED; instance.mentees],
            mentees_of: vec![Vec::new(); m],
            mentee_dual: vec![0; instance.mentees],
            mentor_dual: Self::empty_duals(&instance.capacities),
            solved: false,
            graph: None,
            pending: Vec::new(),
            repair_limit: None,
            search,
        }
    }

    fn empty_duals(capacities: &[u32]) -> Vec<i64> {
        capacities
            .iter()
            .map(|&c| if c == 0 { NO_PLACE_DUAL } else { 0 })
            .collect()
    }

    fn n(&self) -> usize {
        self.arcs.len()
    }

    /// Solves the instance; afterwards the assignment is optimal and the duals exact.
    pub fn solve(&mut self) {
        if !self.solved {
            self.full_solve(None);
        }
    }

    /// Adds a mentee with its arcs and routes it along one shortest augmenting path (warm
    /// start); returns its index.
    pub fn add_mentee(&mut self, arcs: &[(u32, i64)]) -> u32 {
        let i = self.n();
        self.arcs.push(arcs.to_vec());
        self.mentor_of.push(UNASSIGNED);
        self.mentee_dual.push(0);
        self.search.resize(self.capacities.len() + 1 + self.n());
        if self.solved {
            self.route(i);
            debug_assert_eq!(self.certify(), Ok(()));
        } else {
            self.solve();
        }
        i as u32
    }

    /// Returns `weight − π_mentee − p_mentor` under the current optimal duals: positive exactly
    /// when adding the pair `(mentee, mentor)` with `weight` could raise the objective. When no
    /// pair outside the graph has positive slack, the assignment is optimal over all pairs.
    pub fn slack(&self, mentee: u32, mentor: u32, weight: i64) -> i64 {
        weight - self.mentee_dual[mentee as usize] - self.mentor_dual[mentor as usize]
    }

    /// Adds arcs found by the pricing check and solves again. A few improving arcs are taken
    /// one at a time, each with one shortest augmenting path that moves only the duals it must;
    /// many run the auction again, starting from the current solution.
    pub fn add_arcs(&mut self, arcs: &[Arc]) {
        let improving = self.improving(arcs);
        let limit = self
            .repair_limit
            .unwrap_or(REPAIR_MIN.max(self.n() / REPAIR_SHARE));
        if !self.solved || improving > limit {
            self.add_and_auction(arcs, improving);
            return;
        }
        let budget = REPAIR_WORK * (self.n() + self.capacities.len());
        let mut work = 0;
        for (k, a) in arcs.iter().enumerate() {
            if work > budget && self.repair_limit.is_none() {
                let rest = &arcs[k..];
                self.add_and_auction(rest, self.improving(rest));
                return;
            }
            // One arc at a time: a search needs every arc of the graph to have a non-negative
            // reduced cost.
            self.push_arc(*a);
            if self.slack(a.mentee, a.mentor, a.weight) > 0 {
                self.reroute(a.mentee as usize);
                work += self.search.finalised.len();
            }
        }
        if let Err(e) = self.certify() {
            debug_assert!(false, "repaired solution is not certified optimal: {e}");
            self.full_solve(None);
        }
    }

    /// Returns how many of `arcs` have positive slack.
    fn improving(&self, arcs: &[Arc]) -> usize {
        (arcs.iter())
            .filter(|a| self.slack(a.mentee, a.mentor, a.weight) > 0)
            .count()
    }

    /// Adds arcs, `improving` of which have positive slack, and runs the auction, from the
    /// current solution if there is one.
    fn add_and_auction(&mut self, arcs: &[Arc], improving: usize) {
        for &a in arcs {
            self.push_arc(a);
        }
        self.full_solve(self.solved.then_some(improving));
    }

    /// Adds an arc to the graph (the compressed graph takes it at the next auction).
    fn push_arc(&mut self, a: Arc) {
        self.arcs[a.mentee as usize].push((a.mentor, a.weight));
        if self.graph.as_ref().is_some_and(|kept| self.mergeable(kept)) {
            self.pending.push(a);
        }
    }

    /// Whether arcs can be merged into a kept compressed graph: it has every mentee (its costs
    /// are scaled by the number of nodes).
    fn mergeable(&self, kept: &Graph) -> bool {
        kept.mentees == self.n()
    }

    /// Sets how many improving arcs [`Solver::add_arcs`] repairs by shortest paths at most.
    #[cfg(test)]
    pub(crate) fn set_repair_limit(&mut self, limit: usize) {
        self.repair_limit = Some(limit);
    }

    /// Returns the graph as an instance (arcs sorted by mentee, then mentor).
    pub fn instance(&self) -> Instance {
        let mut arcs: Vec<Arc> = self
            .arcs
            .iter()
            .enumerate()
            .flat_map(|(i, list)| {
                list.iter().map(move |&(mentor, weight)| Arc {
                    mentee: i as u32,
                    mentor,
                    weight,
                })
            })
            .collect();
        arcs.sort_unstable_by_key(|a| (a.mentee, a.mentor));
        Instance {
            mentees: self.n(),
            capacities: self.capacities.clone(),
            arcs,
        }
    }

    /// Returns whether the graph holds an arc for this pair.
    pub fn has_arc(&self, mentee: u32, mentor: u32) -> bool {
        self.arcs[mentee as usize].iter().any(|a| a.0 == mentor)
    }

    /// Returns the number of arcs in the graph.
    pub fn arc_count(&self) -> usize {
        self.arcs.iter().map(Vec::len).sum()
    }

    /// Returns the current assignment.
    pub fn assignment(&self) -> Assignment {
        let mut a = Assignment::default();
        for (j, mentees) in self.mentees_of.iter().enumerate() {
            for &(i, w) in mentees {
                a.pairs.push((i, j as u32));
                a.objective += w;
            }
        }
        a.pairs.sort_unstable();
        a
    }

    /// Returns the LP duals of the mentees (`π`) and of the mentors (`p`): non-negative, with
    /// `π_i + p_j ≥ w` on every arc, equality on matched pairs, `π_i = 0` for an unmatched
    /// mentee and `p_j = 0` for a mentor with a free place. A mentor without places has an
    /// effectively infinite dual.
    pub fn duals(&self) -> (&[i64], &[i64]) {
        (&self.mentee_dual, &self.mentor_dual)
    }

    /// Solves the whole graph with the auction; with `warm`, the number of arcs that improve on
    /// the current optimal solution of a smaller graph, starting from that solution.
    fn full_solve(&mut self, warm: Option<usize>) {
        let pending = std::mem::take(&mut self.pending);
        // A graph not kept is dropped before the new one is built.
        let kept = (self.graph.take())
            .filter(|kept| self.mergeable(kept) && pending.len() * MERGE_SHARE <= kept.arcs());
        let graph = match kept {
            Some(kept) => kept.with_arcs(&pending, &self.capacities),
            None => Graph::new(&self.arcs, &self.capacities),
        };
        let Some(graph) = graph else {
            self.solve_by_paths();
            return;
        };
        let mut eps = Auction::cold_eps(&graph);
        let start = warm.map(|improving| {
            let share = (improving as i64)
                .saturating_mul(WARM_UNITS_PER_SHARE)
                .saturating_mul(graph.scale)
                / (self.n() as i64).max(1);
            eps = eps.min(share.max(graph.scale / 4)).max(1);
            Warm {
                mentor_of: &self.mentor_of,
                mentor_dual: &self.mentor_dual,
            }
        });
        let mut auction = Auction::new(&graph, start, eps);
        let (mentee_dual, mut mentor_dual) = loop {
            auction.phase(&graph);
            // Once ε is below one unit of weight the assignment is often optimal already.
            if auction.eps() <= graph.scale
                && let Some(duals) = duals::exact(&graph, &auction)
            {
                break duals;
            }
            if auction.eps() == 1 {
                debug_assert!(false, "no exact duals after the last phase");
                self.solve_by_paths();
                return;
            }
            auction.refine();
        };
        for (p, &c) in mentor_dual.iter_mut().zip(&self.capacities) {
            if c == 0 {
                *p = NO_PLACE_DUAL;
            }
        }
        self.mentee_dual = mentee_dual;
        self.mentor_dual = mentor_dual;
        self.mentees_of.iter_mut().for_each(Vec::clear);
        for i in 0..self.n() {
            self.mentor_of[i] = match auction.held[i].slot {
                ALONE | FREE => UNASSIGNED,
                _ => {
                    let j = auction.held[i].mentor;
                    let w = auction.weight(&graph, i);
                    self.mentees_of[j as usize].push((i as u32, w));
                    j
                }
            };
        }
        self.graph = Some(graph);
        self.solved = true;
        if let Err(e) = self.certify() {
            debug_assert!(false, "auction result is not certified optimal: {e}");
            self.solve_by_paths();
        }
    }

    /// Solves from scratch by successive shortest paths, one mentee at a time (slow but exact
    /// for any weights).
    fn solve_by_paths(&mut self) {
        self.mentor_of.fill(UNASSIGNED);
        self.mentees_of.iter_mut().for_each(Vec::clear);
        self.mentee_dual.fill(0);
        self.mentor_dual = Self::empty_duals(&self.capacities);
        for i in 0..self.n() {
            self.route(i);
        }
        self.solved = true;
    }

    /// Checks that the assignment respects every capacity and that the duals prove it optimal:
    /// feasible on every arc and complementary-slack.
    fn certify(&self) -> Result<(), String> {
        let (pi, p) = (&self.mentee_dual, &self.mentor_dual);
        for (j, mentees) in self.mentees_of.iter().enumerate() {
            let load = mentees.len() as u32;
            if load > self.capacities[j] || p[j] < 0 || (load < self.capacities[j] && p[j] != 0) {
                return Err(format!("mentor {j}: load {load}, dual {}", p[j]));
            }
            for &(i, w) in mentees {
                if self.mentor_of[i as usize] != j as u32 || pi[i as usize] + p[j] != w {
                    return Err(format!("pair ({i}, {j}) is not tight"));
                }
            }
        }
        for (i, arcs) in self.arcs.iter().enumerate() {
            if pi[i] < 0 || (self.mentor_of[i] == UNASSIGNED && pi[i] != 0) {
                return Err(format!("mentee {i}: dual {}", pi[i]));
            }
            if let Some(&(j, w)) = arcs.iter().find(|&&(j, w)| pi[i] + p[j as usize] < w) {
                return Err(format!("arc ({i}, {j}, {w}) has positive slack"));
            }
        }
        Ok(())
    }
}

/// Solves an instance exactly: the assignment with the highest total weight. Deterministic: the
/// same instance (arcs in the same order) gives the same assignment.
pub fn solve(instance: &Instance) -> Assignment {
    let mut solver = Solver::new(instance);
    solver.solve();
    solver.assignment()
}
