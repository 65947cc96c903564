//! Successive shortest paths: moves one unit of flow from an agent that has it to spare to the
//! node that misses it, along a shortest augmenting path (Dijkstra on reduced costs), which
//! keeps the assignment optimal and the duals exact. It routes one more agent (the warm start),
//! repairs the solution after a few arcs were added, and is the exact fallback when scaled
//! costs would overflow.
//!
//! Reduced costs come straight from the LP duals (`π` of agents, `p` of targets, the sink at
//! 0): `−w + π_i + p_j` for a pair not taken, `w − p_j − π_i` (zero) backwards along a matched
//! pair, `π_i` for leaving a matched agent unmatched, `−p_j` (zero) for a free place, and from
//! the sink `−π_i` (zero) back to an unmatched agent and `p_j` to a target giving up a place.
//! The search stops as soon as it reaches its target, and only the nodes it finalised move
//! their dual (all of them, by the same amount, when the path runs through the sink).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::{Solver, UNASSIGNED};

/// Scratch space of one shortest-path search, reused across searches. Nodes are numbered
/// targets `0..m`, the sink `m`, then agents from `m + 1`, so adding an agent appends one.
#[derive(Debug, Clone, Default)]
pub(super) struct Search {
    dist: Vec<i64>,
    /// Predecessor node of each node on the shortest-path tree.
    pred: Vec<u32>,
    /// Search stamp at which `dist` was last written, to avoid clearing arrays.
    stamp: Vec<u32>,
    done: Vec<u32>,
    current: u32,
    /// Nodes finalised before the target in the last search.
    pub(super) finalised: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
}

impl Search {
    /// Makes room for `nodes` nodes.
    pub(super) fn resize(&mut self, nodes: usize) {
        self.dist.resize(nodes, 0);
        self.pred.resize(nodes, 0);
        self.stamp.resize(nodes, 0);
        self.done.resize(nodes, 0);
    }
}

impl Solver {
    /// Sends unmatched agent `s`'s unit of flow along a shortest path to the sink. Every other
    /// agent must already be routed (matched or left unmatched on purpose).
    pub(super) fn route(&mut self, s: usize) {
        self.augment(s, self.capacities.len());
    }

    /// Re-optimises after agent `i` gained an arc that could improve the objective: takes it
    /// off its target, whose place must then be filled again or given up, and sends it along a
    /// shortest path to that target (or to the sink if it was unmatched).
    pub(super) fn reroute(&mut self, i: usize) {
        let j = self.target_of[i];
        if j == UNASSIGNED {
            self.route(i);
        } else {
            self.agents_of[j as usize].retain(|&(x, _)| x as usize != i);
            self.target_of[i] = UNASSIGNED;
            self.augment(i, j as usize);
        }
    }

    /// Moves the unit of unmatched agent `s` along a shortest path to `target`: the sink, or a
    /// target that sends one unit more to the sink than it receives.
    fn augment(&mut self, s: usize, target: usize) {
        let m = self.capacities.len();
        let sink = m;
        // The agent's dual becomes its best profit, so that its arcs have no negative cost.
        self.agent_dual[s] = self.edges[s]
            .iter()
            .map(|&(j, w)| w - self.target_dual[j as usize])
            .fold(0, i64::max);

        let search = &mut self.search;
        search.current = search.current.wrapping_add(1);
        if search.current == 0 {
            search.stamp.fill(0);
            search.done.fill(0);
            search.current = 1;
        }
        let now = search.current;
        search.finalised.clear();
        search.heap.clear();
        let source = m + 1 + s;
        search.dist[source] = 0;
        search.stamp[source] = now;
        // Heap keys rank the target (0) before every other node at the same distance, so a
        // search stops as soon as a shortest path is known instead of exploring all ties.
        let key = |v: usize| if v == target { 0 } else { v as u32 + 1 };
        search.heap.push(Reverse((0, key(source))));

        let (pi, p) = (&self.agent_dual, &self.target_dual);
        let relax = |search: &mut Search, from: usize, to: usize, d: i64| {
            if search.done[to] == now {
                return;
            }
            if search.stamp[to] != now || d < search.dist[to] {
                search.stamp[to] = now;
                search.dist[to] = d;
                search.pred[to] = from as u32;
                search.heap.push(Reverse((d, key(to))));
            }
        };
        while let Some(Reverse((d, k))) = search.heap.pop() {
            let u = if k == 0 { target } else { k as usize - 1 };
            if search.done[u] == now || d > search.dist[u] {
                continue;
            }
            search.done[u] = now;
            if u == target {
                break;
            }
            search.finalised.push(u as u32);
            if u > sink {
                let i = u - m - 1;
                let own = self.target_of[i];
                relax(search, u, sink, d + pi[i]);
                for &(j, w) in &self.edges[i] {
                    if j != own {
                        relax(search, u, j as usize, d - w + pi[i] + p[j as usize]);
                    }
                }
            } else if u < sink {
                let j = u;
                if (self.agents_of[j].len() as u32) < self.capacities[j] {
                    relax(search, u, sink, d - p[j]);
                }
                for &(i, w) in &self.agents_of[j] {
                    relax(search, u, m + 1 + i as usize, d + w - p[j] - pi[i as usize]);
                }
            } else {
                // Through the sink: an unmatched agent takes the unit, or a target gives up
                // one of its places.
                for (i, &j) in self.target_of.iter().enumerate() {
                    if j == UNASSIGNED && i != s {
                        relax(search, u, m + 1 + i, d - pi[i]);
                    }
                }
                // The target target still sends the unit it lost to the sink.
                for (j, list) in self.agents_of.iter().enumerate() {
                    if !list.is_empty() || j == target {
                        relax(search, u, j, d + p[j]);
                    }
                }
            }
        }
        // The "stay unmatched" arc reaches the sink and the sink every target with an agent,
        // so the search always reaches its target.
        debug_assert_eq!(search.done[target], now);
        let total = search.dist[target];
        let mut through_sink = 0;
        for &v in &search.finalised {
            let v = v as usize;
            let delta = search.dist[v] - total;
            if v > sink {
                self.agent_dual[v - m - 1] += delta;
            } else if v < sink {
                self.target_dual[v] -= delta;
            } else {
                through_sink = delta;
            }
        }

        // Walk back from the target applying each edge: agent→target assigns, target→agent
        // releases, agent→sink leaves the agent unmatched; edges out of the sink and into it
        // from a target only change how many places are taken, which the lists already say.
        let mut v = target;
        while v != source {
            let u = search.pred[v] as usize;
            if u > sink && v == sink {
                let i = u - m - 1;
                let j = self.target_of[i];
                if j != UNASSIGNED {
                    self.agents_of[j as usize].retain(|&(x, _)| x as usize != i);
                }
                self.target_of[i] = UNASSIGNED;
            } else if u > sink {
                let (i, j) = (u - m - 1, v as u32);
                // The search used the best arc to this target; parallel arcs can only come
                // from pricing, which adds pairs not in the graph yet.
                let w = self.edges[i]
                    .iter()
                    .filter(|a| a.0 == j)
                    .map(|a| a.1)
                    .max()
                    .unwrap_or(0);
                self.target_of[i] = j;
                self.agents_of[j as usize].push((i as u32, w));
            } else if u < sink && v > sink {
                let (j, i) = (u, v - m - 1);
                self.agents_of[j].retain(|&(x, _)| x as usize != i);
                if self.target_of[i] == j as u32 {
                    self.target_of[i] = UNASSIGNED;
                }
            }
            v = u;
        }
        if through_sink != 0 {
            self.shift_sink(through_sink);
        }
    }

    /// Moves the sink's potential back to 0 after a search finalised it, which shifts every
    /// dual; an unmatched agent or an empty target may then sit below 0, where 0 serves too.
    fn shift_sink(&mut self, delta: i64) {
        for (pi, &j) in self.agent_dual.iter_mut().zip(&self.target_of) {
            *pi -= delta;
            if j == UNASSIGNED {
                *pi = (*pi).max(0);
            }
        }
        for (j, p) in self.target_dual.iter_mut().enumerate() {
            if self.capacities[j] > 0 {
                *p += delta;
                if self.agents_of[j].is_empty() {
                    *p = (*p).max(0);
                }
            }
        }
    }
}
