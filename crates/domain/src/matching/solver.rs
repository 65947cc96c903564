//! Exact solver for the capacitated assignment problem: each mentee gets at most one mentor,
//! mentor `j` at most `cap_j` mentees, and the total weight of the chosen pairs is maximal.
//!
//! It is a min-cost flow (source → mentee → mentor → sink, plus a zero-cost "stay unmatched"
//! edge from every mentee to the sink) solved by successive shortest paths that add one mentee
//! at a time, in the style of Jonker–Volgenant for sparse graphs: each Dijkstra search stops
//! as soon as it reaches the sink and only the potentials of the nodes it finalised change.
//! Reduced costs stay non-negative throughout, so the flow after every step is optimal for the
//! mentees added so far. That makes warm starts cheap: adding a mentee to a solved instance
//! costs one more search. The potentials are the dual solution; [`Solver::slack`] tells whether
//! a pair outside the graph could improve the objective (the pricing check), and
//! [`Solver::add_arcs`] solves again with such pairs, starting from the mentors' prices.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
    /// Potentials: mentees `0..n`, then mentors, then the sink.
    potential: Vec<i64>,
    /// Whether each mentee has been routed yet.
    routed: Vec<bool>,
    search: Search,
}

/// Scratch space of one shortest-path search, reused across searches.
#[derive(Debug, Clone, Default)]
struct Search {
    dist: Vec<i64>,
    /// Predecessor node of each node on the shortest-path tree.
    pred: Vec<u32>,
    /// Search stamp at which `dist` was last written, to avoid clearing arrays.
    stamp: Vec<u32>,
    done: Vec<u32>,
    current: u32,
    finalised: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
}

impl Solver {
    /// Builds the solver for an instance; nothing is routed until [`Solver::solve`].
    pub fn new(instance: &Instance) -> Self {
        let mut arcs = vec![Vec::new(); instance.mentees];
        for a in &instance.arcs {
            arcs[a.mentee as usize].push((a.mentor, a.weight));
        }
        let m = instance.capacities.len();
        let nodes = instance.mentees + m + 1;
        Self {
            arcs,
            capacities: instance.capacities.clone(),
            mentor_of: vec![UNASSIGNED; instance.mentees],
            mentees_of: vec![Vec::new(); m],
            potential: vec![0; nodes],
            routed: vec![false; instance.mentees],
            search: Search {
                dist: vec![0; nodes],
                pred: vec![0; nodes],
                stamp: vec![0; nodes],
                done: vec![0; nodes],
                ..Search::default()
            },
        }
    }

    fn n(&self) -> usize {
        self.arcs.len()
    }

    fn sink(&self) -> usize {
        self.n() + self.capacities.len()
    }

    /// Routes every mentee not routed yet; afterwards the assignment is optimal.
    pub fn solve(&mut self) {
        for i in 0..self.n() {
            if !self.routed[i] {
                self.route(i);
            }
        }
    }

    /// Adds a mentee with its arcs and routes it (warm start); returns its index.
    pub fn add_mentee(&mut self, arcs: &[(u32, i64)]) -> u32 {
        let i = self.n();
        // Node numbering puts mentees first, so every mentor and the sink shift by one.
        self.arcs.push(arcs.to_vec());
        self.mentor_of.push(UNASSIGNED);
        self.routed.push(false);
        self.potential.insert(i, 0);
        self.search.dist.insert(i, 0);
        self.search.pred.insert(i, 0);
        self.search.stamp.insert(i, 0);
        self.search.done.insert(i, 0);
        self.route(i);
        i as u32
    }

    /// Returns how much pair `(mentee, mentor)` with `weight` would improve on the current
    /// duals: positive means adding it could raise the objective.
    pub fn slack(&self, mentee: u32, mentor: u32, weight: i64) -> i64 {
        weight - self.potential[mentee as usize] + self.potential[self.n() + mentor as usize]
    }

    /// Adds arcs found by the pricing check and solves again. The flow starts over, but the
    /// mentors' potentials are kept as starting prices, so most mentees go straight to their
    /// final mentor. With no flow, a mentor's edge to the sink needs a potential at least the
    /// sink's, so the sink takes the lowest mentor potential.
    pub fn add_arcs(&mut self, arcs: &[Arc]) {
        for a in arcs {
            self.arcs[a.mentee as usize].push((a.mentor, a.weight));
        }
        let n = self.n();
        let sink = self.sink();
        let lowest = self.potential[n..sink].iter().copied().min().unwrap_or(0);
        self.potential[sink] = self.potential[sink].min(lowest);
        self.mentor_of.fill(UNASSIGNED);
        self.mentees_of.iter_mut().for_each(Vec::clear);
        self.routed.fill(false);
        self.solve();
    }

    /// Returns the mentees whose potential the last search changed.
    pub fn last_search_mentees(&self) -> Vec<u32> {
        let n = self.n() as u32;
        self.search
            .finalised
            .iter()
            .copied()
            .filter(|&v| v < n)
            .collect()
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

    /// Returns the potentials (dual values) of the mentees and of the mentors.
    pub fn duals(&self) -> (&[i64], &[i64]) {
        let n = self.n();
        (
            &self.potential[..n],
            &self.potential[n..n + self.capacities.len()],
        )
    }

    /// Sends mentee `s`'s unit of flow along a shortest path to the sink.
    fn route(&mut self, s: usize) {
        let n = self.n();
        let sink = self.sink();
        // Raise the new mentee's potential so that its outgoing reduced costs are non-negative.
        let mut p = self.potential[sink];
        for &(j, w) in &self.arcs[s] {
            p = p.max(self.potential[n + j as usize] + w);
        }
        self.potential[s] = p;
        self.routed[s] = true;

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
        search.dist[s] = 0;
        search.stamp[s] = now;
        search.heap.push(Reverse((0, s as u32 + 1)));

        let pot = &self.potential;
        // Heap keys rank the sink before every other node at the same distance, so a search
        // stops as soon as a shortest path is known instead of exploring all ties first.
        let key = |v: usize| if v == sink { 0 } else { v as u32 + 1 };
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
        let mut reached = false;
        while let Some(Reverse((d, k))) = search.heap.pop() {
            let u = if k == 0 { sink } else { k as usize - 1 };
            if search.done[u] == now || d > search.dist[u] {
                continue;
            }
            search.done[u] = now;
            if u == sink {
                reached = true;
                break;
            }
            search.finalised.push(u as u32);
            if u < n {
                let own = self.mentor_of[u];
                relax(search, u, sink, d + pot[u] - pot[sink]);
                for &(j, w) in &self.arcs[u] {
                    if j != own {
                        let v = n + j as usize;
                        relax(search, u, v, d - w + pot[u] - pot[v]);
                    }
                }
            } else {
                let j = u - n;
                if (self.mentees_of[j].len() as u32) < self.capacities[j] {
                    relax(search, u, sink, d + pot[u] - pot[sink]);
                }
                for &(i, w) in &self.mentees_of[j] {
                    relax(search, u, i as usize, d + w + pot[u] - pot[i as usize]);
                }
            }
        }
        // The dummy edge always leads to the sink, so it is always reached.
        debug_assert!(reached);
        let total = search.dist[sink];
        for &v in &search.finalised {
            let v = v as usize;
            self.potential[v] += search.dist[v] - total;
        }

        // Walk back from the sink applying each edge: mentee→mentor assigns, mentor→mentee
        // releases, mentee→sink leaves the mentee unmatched, mentor→sink takes a free place.
        let mut v = sink;
        while v != s {
            let u = search.pred[v] as usize;
            if u < n && v == sink {
                let j = self.mentor_of[u];
                if j != UNASSIGNED {
                    self.mentees_of[j as usize].retain(|&(x, _)| x as usize != u);
                }
                self.mentor_of[u] = UNASSIGNED;
            } else if u < n {
                let j = (v - n) as u32;
                // The search used the best arc to this mentor; parallel arcs can only come
                // from pricing, which adds pairs not in the graph yet.
                let w = self.arcs[u]
                    .iter()
                    .filter(|a| a.0 == j)
                    .map(|a| a.1)
                    .max()
                    .unwrap_or(0);
                self.mentor_of[u] = j;
                self.mentees_of[j as usize].push((u as u32, w));
            } else if v != sink {
                let j = u - n;
                self.mentees_of[j].retain(|&(x, _)| x as usize != v);
                if self.mentor_of[v] == j as u32 {
                    self.mentor_of[v] = UNASSIGNED;
                }
            }
            v = u;
        }
    }
}

/// Solves an instance exactly: the assignment with the highest total weight. Deterministic: the
/// same instance (arcs in the same order) gives the same assignment.
pub fn solve(instance: &Instance) -> Assignment {
    let mut solver = Solver::new(instance);
    solver.solve();
    solver.assignment()
}
