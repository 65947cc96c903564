//! The matching engine: an exact solver for the capacitated assignment problem and the round
//! planner that builds its instance from mentees and mentor profiles.
//!
//! A round wants the set of pairs with the highest total score such that every mentee gets at
//! most one mentor and no mentor more mentees than free places. That is a maximum-weight
//! b-matching, solved exactly as a min-cost flow (source → mentee → mentor → sink) by successive
//! shortest paths with potentials. The cost of the cheapest augmenting path only grows, so the
//! solver stops at the first path that would not improve the total: that flow is optimal over
//! all flow values, and mentees may stay unmatched.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use crate::model::{MenteeNeeds, MentorProfile};
use crate::scoring::{self, Infeasible, Score, ScoreWeights};

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

struct Edge {
    to: usize,
    cap: u32,
    cost: i64,
}

/// Residual graph stored as an edge list where edge `e ^ 1` is the reverse of edge `e`.
struct Graph {
    edges: Vec<Edge>,
    adjacency: Vec<Vec<usize>>,
}

impl Graph {
    fn new(nodes: usize, edges: usize) -> Self {
        Self {
            edges: Vec::with_capacity(2 * edges),
            adjacency: vec![Vec::new(); nodes],
        }
    }

    fn add(&mut self, from: usize, to: usize, cap: u32, cost: i64) {
        self.adjacency[from].push(self.edges.len());
        self.edges.push(Edge { to, cap, cost });
        self.adjacency[to].push(self.edges.len());
        self.edges.push(Edge {
            to: from,
            cap: 0,
            cost: -cost,
        });
    }
}

/// Solves an instance exactly: the assignment with the highest total weight. Deterministic: the
/// same instance (arcs in the same order) gives the same assignment.
pub fn solve(instance: &Instance) -> Assignment {
    let n = instance.mentees;
    let m = instance.capacities.len();
    let (source, sink) = (0, n + m + 1);
    let mentor_node = |j: u32| n + 1 + j as usize;
    let mut g = Graph::new(n + m + 2, n + m + instance.arcs.len());
    for i in 0..n {
        g.add(source, 1 + i, 1, 0);
    }
    let first_arc_edge = g.edges.len();
    for a in &instance.arcs {
        g.add(1 + a.mentee as usize, mentor_node(a.mentor), 1, -a.weight);
    }
    for (j, &cap) in instance.capacities.iter().enumerate() {
        if cap > 0 {
            g.add(n + 1 + j, sink, cap, 0);
        }
    }

    // Initial potentials are shortest distances in the acyclic starting graph, which makes every
    // reduced cost non-negative so that Dijkstra applies from the first iteration.
    let mut potential = vec![0i64; n + m + 2];
    for a in &instance.arcs {
        let p = &mut potential[mentor_node(a.mentor)];
        *p = (*p).min(-a.weight);
    }
    potential[sink] = potential[n + 1..=n + m]
        .iter()
        .copied()
        .min()
        .unwrap_or(0)
        .min(0);

    let mut dist = vec![i64::MAX; n + m + 2];
    let mut via = vec![usize::MAX; n + m + 2];
    let mut heap = BinaryHeap::new();
    loop {
        dist.fill(i64::MAX);
        via.fill(usize::MAX);
        dist[source] = 0;
        heap.push(Reverse((0i64, source)));
        while let Some(Reverse((d, u))) = heap.pop() {
            if d > dist[u] {
                continue;
            }
            for &e in &g.adjacency[u] {
                let edge = &g.edges[e];
                if edge.cap == 0 {
                    continue;
                }
                let nd = d + edge.cost + potential[u] - potential[edge.to];
                if nd < dist[edge.to] {
                    dist[edge.to] = nd;
                    via[edge.to] = e;
                    heap.push(Reverse((nd, edge.to)));
                }
            }
        }
        if dist[sink] == i64::MAX {
            break;
        }
        let to_sink = dist[sink];
        for (p, &d) in potential.iter_mut().zip(&dist) {
            *p += d.min(to_sink);
        }
        // potential[sink] is now the true cost of the cheapest augmenting path.
        if potential[sink] - potential[source] >= 0 {
            break;
        }
        let mut v = sink;
        while v != source {
            let e = via[v];
            g.edges[e].cap -= 1;
            g.edges[e ^ 1].cap += 1;
            v = g.edges[e ^ 1].to;
        }
    }

    let mut assignment = Assignment::default();
    for (k, a) in instance.arcs.iter().enumerate() {
        if g.edges[first_arc_edge + 2 * k].cap == 0 {
            assignment.pairs.push((a.mentee, a.mentor));
            assignment.objective += a.weight;
        }
    }
    assignment.pairs.sort_unstable();
    assignment
}

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
