//! An exact solver for the capacitated assignment problem, with warm starts.
//!
//! It depends on no other Tandem crate: in Tandem, `tandem-matching` builds its matching
//! rounds on it, and any other matching problem can use it as it is.
//!
//! # The problem
//!
//! There are `n` *agents* (the rows) and `m` *targets* (the columns); target `j` has a capacity
//! `cap_j`, its number of places. An [`Instance`] lists the allowed pairs as [`Edge`]s, each
//! with an integer weight. The solver chooses pairs so that
//!
//! * every agent is in at most one chosen pair (an agent may stay unassigned),
//! * target `j` is in at most `cap_j` chosen pairs, and
//! * the total weight of the chosen pairs is the highest possible.
//!
//! This is a maximum-weight b-matching on a bipartite graph (with `b = 1` on the agents' side),
//! or a min-cost flow source → agent → target → sink. The answer is exact, not approximate: the
//! solver ends with integer LP duals that prove the assignment optimal, and it checks them.
//! Everything runs in a fixed order, so the same instance (edges in the same order) always gives
//! the same assignment.
//!
//! # Example
//!
//! ```
//! use tandem_assignment::{Edge, Instance, Solver, solve};
//!
//! // Agent 0 prefers target 0, but giving target 0 to agent 1 frees target 1 for agent 0.
//! let instance = Instance {
//!     agents: 2,
//!     capacities: vec![1, 1],
//!     edges: vec![
//!         Edge { agent: 0, target: 0, weight: 10 },
//!         Edge { agent: 0, target: 1, weight: 8 },
//!         Edge { agent: 1, target: 0, weight: 9 },
//!     ],
//! };
//! let assignment = solve(&instance);
//! assert_eq!(assignment.objective, 17);
//! assert_eq!(assignment.pairs, vec![(0, 1), (1, 0)]);
//!
//! // A solver keeps its state: one more agent, and it re-optimises from where it was.
//! let mut solver = Solver::new(&instance);
//! solver.solve();
//! let agent = solver.add_agent(&[(1, 12)]);
//! assert_eq!(agent, 2);
//! assert_eq!(solver.assignment().objective, 10 + 12);
//!
//! // A pair outside the graph can raise the objective exactly when its slack is positive.
//! let better = Edge { agent: 1, target: 1, weight: 20 };
//! assert!(solver.slack(better.agent, better.target, better.weight) > 0);
//! solver.add_edges(&[better]);
//! assert_eq!(solver.assignment().objective, 10 + 20);
//! ```
//!
//! # Algorithms
//!
//! As a min-cost flow the problem is source → agent → target → sink, plus a zero-cost "stay
//! unassigned" arc from every agent to the sink. A full solve ([`Solver::solve`], [`solve`])
//! runs an ε-scaling forward/reverse auction on that network, in which every place of a target
//! is an object with a price (a target's places are "similar objects" in Bertsekas' sense), with
//! costs multiplied by the number of nodes plus one so that the last phase, at ε = 1, ends with
//! an optimal assignment. Once ε is below one unit of weight, each phase is followed by an
//! attempt to turn the prices into exact integer LP duals (a label-correcting search on the
//! residual network); it succeeds as soon as the assignment is optimal, which is usually
//! several phases before the last, and the remaining phases are skipped. The duals are then
//! checked against every edge: a certificate of optimality that costs one pass over the graph
//! (should it ever fail, the solver falls back to plain successive shortest paths, as it does
//! when scaled costs could overflow `i64`).
//!
//! The duals ([`Solver::duals`]) make the solver useful for column generation: when the full
//! set of allowed pairs is too large to hand over, solve a sparse subset, then look for pairs
//! outside it whose [`Solver::slack`] is positive — exactly those can improve the objective —
//! and add them with [`Solver::add_edges`]. A few such edges are taken with one shortest
//! augmenting path each (Dijkstra on reduced costs, which moves only the duals it must), many
//! with the auction started from the current solution and prices. When no pair outside the
//! graph has positive slack, the assignment is optimal over all of them. [`Solver::add_agent`]
//! routes one more agent along a single shortest augmenting path without touching the rest
//! (the warm start).
//!
//! # The tandem-arcs file format
//!
//! [`arcs_file`] reads and writes instances as plain text, the format of `tandem solve --arcs`
//! and `tandem bench match --export-arcs`:
//!
//! ```text
//! # comment lines start with '#'
//! <mentees> <mentors> <arcs>
//! <cap_0> <cap_1> ... <cap_{mentors-1}>
//! <mentee> <mentor> <weight>        (one line per arc, 0-based, weight 1..=1000000)
//! ```
//!
//! The file speaks of mentees and mentors, the agents and targets of Tandem's matching rounds.

pub mod arcs_file;
mod auction;
mod augment;
mod duals;

use auction::{ALONE, Auction, FREE, Graph, Warm};
use augment::Search;

/// One allowed pair of an instance, with its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The agent (row), `0..Instance::agents`.
    pub agent: u32,
    /// The target (column), an index into [`Instance::capacities`].
    pub target: u32,
    /// What the pair adds to the objective when chosen. A pair worth less than 0 is never
    /// chosen: the agent stays unassigned instead.
    pub weight: i64,
}

/// An assignment problem: how many agents there are, the capacity of every target, and the
/// allowed pairs. Agents are numbered `0..agents`, targets `0..capacities.len()`; several edges
/// of the same pair count as the best of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    /// Number of agents.
    pub agents: usize,
    /// Places of each target; a target with 0 takes no agent.
    pub capacities: Vec<u32>,
    /// The allowed pairs.
    pub edges: Vec<Edge>,
}

/// The solver's answer: matched pairs `(agent, target)` sorted by agent, and their total weight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// `(agent, target)` of every chosen pair, sorted.
    pub pairs: Vec<(u32, u32)>,
    /// Total weight of the chosen pairs.
    pub objective: i64,
}

const UNASSIGNED: u32 = u32::MAX;

/// Dual of a target without places: no pair with it can ever improve the objective.
const NO_PLACE_DUAL: i64 = i64::MAX / 4;

/// [`Solver::add_edges`] repairs the solution by shortest paths for up to this many improving
/// edges, or one per `REPAIR_SHARE` agents if more. A path usually costs a small fraction of an
/// auction on a 50,000-agent graph, and it moves only the duals it must.
const REPAIR_MIN: usize = 32;
const REPAIR_SHARE: usize = 128;

/// Paths in a graph with many ties can each explore most of it: once the searches of one repair
/// have finalised as many nodes as the graph has, the rest of the edges go to a warm
/// auction instead (on a 50,000 × 25,000 round, 307 paths took 1.1 s, an auction 0.3–0.4 s;
/// one path through the sink finalises nearly every node, most others a few dozen).
const REPAIR_WORK: usize = 1;

/// A warm auction starts with ε at this many units of weight per improving edge and agent, at
/// least a quarter unit (the last phase's) and at most the cold start's ε: a few new edges
/// unsettle little and are settled fastest near the final ε, while hundreds of thousands start
/// a price war that the cold schedule runs fastest. Measured on 50,000 × 25,000 rounds: ~300
/// and ~500 new edges took 0.15–0.25 s from a quarter unit against 0.7 s from one unit, 3,700
/// took 0.42 s from one unit against 0.65–0.8 s from 16, and 658,000 took 0.69 s from the cold
/// ε against 0.9 s from 16 units and 1.6 s from 4.
const WARM_UNITS_PER_SHARE: i64 = 16;

/// The next auction merges the edges added since the last into its compressed graph when they
/// are at most this share of it, and builds the graph anew otherwise. On the 50,000 × 25,000
/// bench, merging took 18–50 ms for 45,000–213,000 edges into 1.4–1.8 M, where a build took
/// 62–84 ms, but 110 ms for 672,000 edges into 740,000.
const MERGE_SHARE: usize = 4;

/// Solver state that can be extended after solving (warm start): more edges
/// ([`Solver::add_edges`]) or more agents ([`Solver::add_agent`]), each followed by a
/// re-optimisation that starts from the current solution.
#[derive(Debug, Clone)]
pub struct Solver {
    /// Edges of each agent: `(target, weight)`.
    edges: Vec<Vec<(u32, i64)>>,
    capacities: Vec<u32>,
    /// Target of each agent, or `UNASSIGNED`.
    target_of: Vec<u32>,
    /// Agents of each target, with the weight of the pair.
    agents_of: Vec<Vec<(u32, i64)>>,
    /// LP duals: `π` of each agent and `p` of each target (see [`Solver::duals`]).
    agent_dual: Vec<i64>,
    target_dual: Vec<i64>,
    /// Whether the assignment and the duals are optimal for the current graph.
    solved: bool,
    /// The graph compressed for the auction, kept between solves.
    graph: Option<Graph>,
    /// Edges added to `edges` since `graph` was built, while it has every agent.
    pending: Vec<Edge>,
    /// Overrides the number of improving edges repaired by shortest paths (tests).
    repair_limit: Option<usize>,
    search: Search,
}

impl Solver {
    /// Builds the solver for an instance; nothing is assigned until [`Solver::solve`].
    pub fn new(instance: &Instance) -> Self {
        let mut edges = vec![Vec::new(); instance.agents];
        for a in &instance.edges {
            edges[a.agent as usize].push((a.target, a.weight));
        }
        let m = instance.capacities.len();
        let mut search = Search::default();
        search.resize(m + 1 + instance.agents);
        Self {
            edges,
            capacities: instance.capacities.clone(),
            target_of: vec![UNASSIGNED; instance.agents],
            agents_of: vec![Vec::new(); m],
            agent_dual: vec![0; instance.agents],
            target_dual: Self::empty_duals(&instance.capacities),
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
        self.edges.len()
    }

    /// Solves the instance; afterwards the assignment is optimal and the duals exact.
    pub fn solve(&mut self) {
        if !self.solved {
            self.full_solve(None);
        }
    }

    /// Adds an agent with its edges and routes it along one shortest augmenting path (warm
    /// start); returns its index.
    pub fn add_agent(&mut self, edges: &[(u32, i64)]) -> u32 {
        let i = self.n();
        self.edges.push(edges.to_vec());
        self.target_of.push(UNASSIGNED);
        self.agent_dual.push(0);
        self.search.resize(self.capacities.len() + 1 + self.n());
        if self.solved {
            self.route(i);
            debug_assert_eq!(self.certify(), Ok(()));
        } else {
            self.solve();
        }
        i as u32
    }

    /// Returns `weight − π_agent − p_target` under the current optimal duals: positive exactly
    /// when adding the pair `(agent, target)` with `weight` could raise the objective. When no
    /// pair outside the graph has positive slack, the assignment is optimal over all pairs.
    pub fn slack(&self, agent: u32, target: u32, weight: i64) -> i64 {
        weight - self.agent_dual[agent as usize] - self.target_dual[target as usize]
    }

    /// Adds edges found by the pricing check and solves again. A few improving edges are taken
    /// one at a time, each with one shortest augmenting path that moves only the duals it must;
    /// many run the auction again, starting from the current solution.
    pub fn add_edges(&mut self, edges: &[Edge]) {
        let improving = self.improving(edges);
        let limit = self
            .repair_limit
            .unwrap_or(REPAIR_MIN.max(self.n() / REPAIR_SHARE));
        if !self.solved || improving > limit {
            self.add_and_auction(edges, improving);
            return;
        }
        let budget = REPAIR_WORK * (self.n() + self.capacities.len());
        let mut work = 0;
        for (k, a) in edges.iter().enumerate() {
            if work > budget && self.repair_limit.is_none() {
                let rest = &edges[k..];
                self.add_and_auction(rest, self.improving(rest));
                return;
            }
            // One edge at a time: a search needs every edge of the graph to have a non-negative
            // reduced cost.
            self.push_edge(*a);
            if self.slack(a.agent, a.target, a.weight) > 0 {
                self.reroute(a.agent as usize);
                work += self.search.finalised.len();
            }
        }
        if let Err(e) = self.certify() {
            debug_assert!(false, "repaired solution is not certified optimal: {e}");
            self.full_solve(None);
        }
    }

    /// Returns how many of `edges` have positive slack.
    fn improving(&self, edges: &[Edge]) -> usize {
        (edges.iter())
            .filter(|a| self.slack(a.agent, a.target, a.weight) > 0)
            .count()
    }

    /// Adds edges, `improving` of which have positive slack, and runs the auction, from the
    /// current solution if there is one.
    fn add_and_auction(&mut self, edges: &[Edge], improving: usize) {
        for &a in edges {
            self.push_edge(a);
        }
        self.full_solve(self.solved.then_some(improving));
    }

    /// Adds an edge to the graph (the compressed graph takes it at the next auction).
    fn push_edge(&mut self, a: Edge) {
        self.edges[a.agent as usize].push((a.target, a.weight));
        if self.graph.as_ref().is_some_and(|kept| self.mergeable(kept)) {
            self.pending.push(a);
        }
    }

    /// Whether edges can be merged into a kept compressed graph: it has every agent (its costs
    /// are scaled by the number of nodes).
    fn mergeable(&self, kept: &Graph) -> bool {
        kept.agents == self.n()
    }

    /// Sets how many improving edges [`Solver::add_edges`] repairs by shortest paths at most.
    #[cfg(test)]
    pub(crate) fn set_repair_limit(&mut self, limit: usize) {
        self.repair_limit = Some(limit);
    }

    /// Returns the graph as an instance (edges sorted by agent, then target).
    pub fn instance(&self) -> Instance {
        let mut edges: Vec<Edge> = self
            .edges
            .iter()
            .enumerate()
            .flat_map(|(i, list)| {
                list.iter().map(move |&(target, weight)| Edge {
                    agent: i as u32,
                    target,
                    weight,
                })
            })
            .collect();
        edges.sort_unstable_by_key(|a| (a.agent, a.target));
        Instance {
            agents: self.n(),
            capacities: self.capacities.clone(),
            edges,
        }
    }

    /// Returns whether the graph holds an edge for this pair.
    pub fn has_edge(&self, agent: u32, target: u32) -> bool {
        self.edges[agent as usize].iter().any(|a| a.0 == target)
    }

    /// Returns the number of edges in the graph.
    pub fn edge_count(&self) -> usize {
        self.edges.iter().map(Vec::len).sum()
    }

    /// Returns the current assignment.
    pub fn assignment(&self) -> Assignment {
        let mut a = Assignment::default();
        for (j, agents) in self.agents_of.iter().enumerate() {
            for &(i, w) in agents {
                a.pairs.push((i, j as u32));
                a.objective += w;
            }
        }
        a.pairs.sort_unstable();
        a
    }

    /// Returns the LP duals of the agents (`π`) and of the targets (`p`): non-negative, with
    /// `π_i + p_j ≥ w` on every edge, equality on matched pairs, `π_i = 0` for an unmatched
    /// agent and `p_j = 0` for a target with a free place. A target without places has an
    /// effectively infinite dual.
    pub fn duals(&self) -> (&[i64], &[i64]) {
        (&self.agent_dual, &self.target_dual)
    }

    /// Solves the whole graph with the auction; with `warm`, the number of edges that improve on
    /// the current optimal solution of a smaller graph, starting from that solution.
    fn full_solve(&mut self, warm: Option<usize>) {
        let pending = std::mem::take(&mut self.pending);
        // A graph not kept is dropped before the new one is built.
        let kept = (self.graph.take())
            .filter(|kept| self.mergeable(kept) && pending.len() * MERGE_SHARE <= kept.arcs());
        let graph = match kept {
            Some(kept) => kept.with_edges(&pending, &self.capacities),
            None => Graph::new(&self.edges, &self.capacities),
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
                target_of: &self.target_of,
                target_dual: &self.target_dual,
            }
        });
        let mut auction = Auction::new(&graph, start, eps);
        let (agent_dual, mut target_dual) = loop {
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
        for (p, &c) in target_dual.iter_mut().zip(&self.capacities) {
            if c == 0 {
                *p = NO_PLACE_DUAL;
            }
        }
        self.agent_dual = agent_dual;
        self.target_dual = target_dual;
        self.agents_of.iter_mut().for_each(Vec::clear);
        for i in 0..self.n() {
            self.target_of[i] = match auction.held[i].slot {
                ALONE | FREE => UNASSIGNED,
                _ => {
                    let j = auction.held[i].target;
                    let w = auction.weight(&graph, i);
                    self.agents_of[j as usize].push((i as u32, w));
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

    /// Solves from scratch by successive shortest paths, one agent at a time (slow but exact
    /// for any weights).
    fn solve_by_paths(&mut self) {
        self.target_of.fill(UNASSIGNED);
        self.agents_of.iter_mut().for_each(Vec::clear);
        self.agent_dual.fill(0);
        self.target_dual = Self::empty_duals(&self.capacities);
        for i in 0..self.n() {
            self.route(i);
        }
        self.solved = true;
    }

    /// Checks that the assignment respects every capacity and that the duals prove it optimal:
    /// feasible on every edge and complementary-slack.
    fn certify(&self) -> Result<(), String> {
        let (pi, p) = (&self.agent_dual, &self.target_dual);
        for (j, agents) in self.agents_of.iter().enumerate() {
            let load = agents.len() as u32;
            if load > self.capacities[j] || p[j] < 0 || (load < self.capacities[j] && p[j] != 0) {
                return Err(format!("target {j}: load {load}, dual {}", p[j]));
            }
            for &(i, w) in agents {
                if self.target_of[i as usize] != j as u32 || pi[i as usize] + p[j] != w {
                    return Err(format!("pair ({i}, {j}) is not tight"));
                }
            }
        }
        for (i, edges) in self.edges.iter().enumerate() {
            if pi[i] < 0 || (self.target_of[i] == UNASSIGNED && pi[i] != 0) {
                return Err(format!("agent {i}: dual {}", pi[i]));
            }
            if let Some(&(j, w)) = edges.iter().find(|&&(j, w)| pi[i] + p[j as usize] < w) {
                return Err(format!("edge ({i}, {j}, {w}) has positive slack"));
            }
        }
        Ok(())
    }
}

/// Solves an instance exactly: the assignment with the highest total weight. Deterministic: the
/// same instance (edges in the same order) gives the same assignment.
pub fn solve(instance: &Instance) -> Assignment {
    let mut solver = Solver::new(instance);
    solver.solve();
    solver.assignment()
}

#[cfg(test)]
mod tests;
