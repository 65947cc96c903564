//! Exact integer duals for the auction's assignment, or word that the phases must go on.
//!
//! The auction's prices are ε-optimal for costs scaled by `K` (the number of nodes plus one) on
//! the residual flow network (agent → target → sink, with the "stay unmatched" arc from each
//! agent to the sink). Rounding each potential to the nearest multiple of `K` and dividing
//! gives integer potentials under which few arcs cost less than zero; the exact potentials are
//! the shortest-path distances from a virtual root joined to every node by an arc as long as
//! the rounded potential, found by a label-correcting search that takes the most lowered node
//! first (nodes wait in buckets by how far they were lowered).
//!
//! After the last phase, at ε = 1, every residual *path* (fewer than `K` arcs) costs at least
//! −1 after rounding — the scaled cost is above −1 after dividing by `K`, the two rounding
//! errors at its ends add less than 1, and the result is an integer — so the search lowers
//! each potential by 0 or 1 and visits every arc about twice. After an earlier phase the
//! assignment is often optimal already; then the search ends nearly as fast and the remaining
//! phases are skipped. If it is not, the residual network has a negative cycle and the search
//! would never end: a budget on its work and a bound on how far it lowers a potential stop
//! it, and the auction goes on.

use super::auction::{ALONE, Auction, FREE, Graph, NO_TARGET};

/// The search gives up after relaxing this many arcs per arc and node of the network.
const BUDGET: usize = 4;

/// The search also gives up when a potential moves by more than this: after an ε-optimal
/// phase corrections stay small, while a negative cycle drives them down without bound.
const LIMIT: i64 = 64;

/// Returns optimal LP duals — `π` of each agent and `p` of each target of the graph, both
/// non-negative, with `π_i + p_j ≥ w_ij` on every arc, equality on matched pairs, `π_i = 0` for
/// unmatched agents and `p_j = 0` for targets with a free place — if the auction's assignment
/// is optimal and the search proves it within its budget.
pub(super) fn exact(g: &Graph, a: &Auction) -> Option<(Vec<i64>, Vec<i64>)> {
    let (n, m) = (g.agents, g.targets);
    let k = g.scale;
    let round = |x: i64| (x + k / 2).div_euclid(k);
    // Nodes: agents 0..n, targets n..n + m, the sink n + m. Potentials in Goldberg's sign:
    // an agent's is its profit, a target's minus its cheapest slot's price, the sink's 0.
    let sink = n + m;
    let mut base: Vec<i64> = a.held.iter().map(|h| round(h.profit)).collect();
    base.resize(n + m + 1, 0);
    let mut load = vec![0u32; m];
    let mut loaded = Vec::new();
    for j in 0..m {
        if !g.slots(j).is_empty() {
            base[n + j] = round(-a.low[j]);
        }
        load[j] = g.slots(j).filter(|&s| a.owner[s] != FREE).count() as u32;
        if load[j] > 0 {
            loaded.push(n + j);
        }
    }
    let alone: Vec<usize> = (0..n).filter(|&i| a.held[i].slot == ALONE).collect();
    let residual = Residual {
        g,
        a,
        load,
        loaded,
        alone,
    };

    // Label-correcting search on reduced costs `cost + base(u) − base(v)`, where `base` is the
    // rounded potential: `gap` (the correction) starts at 0 (the virtual root's arcs) and only
    // decreases. Nodes wait in buckets by correction and the most negative goes first, which
    // makes it nearly Dijkstra's since reduced costs are rarely negative; `hops` counts the
    // arcs of each node's current path, which reach the number of nodes only on a negative
    // cycle.
    let nodes = n + m + 1;
    let mut budget = BUDGET * (g.out_target.len() + nodes);
    let mut gap = vec![0i64; nodes];
    let mut hops = vec![0u32; nodes];
    let mut buckets: Vec<Vec<u32>> = Vec::new();
    let mut top = 0usize;
    let mut failed = false;
    let wait = |buckets: &mut Vec<Vec<u32>>, top: &mut usize, v: usize, d: i64| {
        let b = d.unsigned_abs() as usize;
        if b >= buckets.len() {
            buckets.resize_with(b + 1, Vec::new);
        }
        buckets[b].push(v as u32);
        *top = (*top).max(b);
    };
    for u in 0..nodes {
        residual.arcs_out(u, |v, cost| {
            let rc = cost + base[u] - base[v];
            if rc < gap[v] {
                gap[v] = rc;
                hops[v] = 1;
                failed |= rc < -LIMIT;
                if !failed {
                    wait(&mut buckets, &mut top, v, rc);
                }
            }
        });
        if failed {
            return None;
        }
    }
    while top > 0 {
        let Some(u) = buckets[top].pop() else {
            top -= 1;
            continue;
        };
        let u = u as usize;
        let d = gap[u];
        if d.unsigned_abs() as usize != top {
            continue;
        }
        let hu = hops[u] + 1;
        residual.arcs_out(u, |v, cost| {
            budget = budget.saturating_sub(1);
            let dv = d + cost + base[u] - base[v];
            if dv < gap[v] {
                gap[v] = dv;
                hops[v] = hu;
                failed |= hu as usize >= nodes || dv < -LIMIT;
                if !failed {
                    wait(&mut buckets, &mut top, v, dv);
                }
            }
        });
        if failed || budget == 0 {
            return None;
        }
    }
    let exact = |v: usize| base[v] + gap[v];
    let target: Vec<i64> = (0..m)
        .map(|j| (exact(sink) - exact(n + j)).max(0))
        .collect();
    let agent: Vec<i64> = (0..n)
        .map(|i| match residual.target_of(i) {
            NO_TARGET => 0,
            j => residual.weight(i) - target[j as usize],
        })
        .collect();
    Some((agent, target))
}

/// The residual network of the auction's assignment, with original (unscaled) costs.
struct Residual<'a> {
    g: &'a Graph,
    a: &'a Auction,
    /// Held slots of each target.
    load: Vec<u32>,
    /// The sink's arcs: to target nodes holding an agent, and to agents that stay unmatched.
    loaded: Vec<usize>,
    alone: Vec<usize>,
}

impl Residual<'_> {
    /// Returns the target of an agent, or [`NO_TARGET`].
    fn target_of(&self, i: usize) -> u32 {
        self.a.held[i].target
    }

    /// Returns the weight of a matched agent's pair.
    fn weight(&self, i: usize) -> i64 {
        self.a.weight(self.g, i)
    }

    /// Calls `visit(head, cost)` for every residual arc out of node `u`.
    #[inline]
    fn arcs_out(&self, u: usize, mut visit: impl FnMut(usize, i64)) {
        let (g, a) = (self.g, self.a);
        let (n, k) = (g.agents, g.scale);
        let sink = n + g.targets;
        if u < n {
            let own = self.target_of(u);
            for e in g.out_arcs(u) {
                let j = g.out_target[e];
                if j != own {
                    visit(n + j as usize, -g.out_value[e] / k);
                }
            }
            if own != NO_TARGET {
                visit(sink, 0);
            }
        } else if u < sink {
            let j = u - n;
            for s in g.slots(j) {
                let o = a.owner[s];
                if o != FREE {
                    visit(o as usize, self.weight(o as usize));
                }
            }
            if (self.load[j] as usize) < g.slots(j).len() {
                visit(sink, 0);
            }
        } else {
            self.alone.iter().for_each(|&i| visit(i, 0));
            self.loaded.iter().for_each(|&j| visit(j, 0));
        }
    }
}
