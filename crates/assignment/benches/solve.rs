//! Benchmarks of the solver on generated instances shaped like a matching round's graph: half
//! as many targets as agents, one to three places each, and every agent with a few dozen edges
//! whose weights share a per-target part (popular targets are wanted by many agents) and tie
//! often, as scores do.
//!
//! `cargo bench -p tandem-assignment` runs them all; `-- solve_cold` (or another name) picks one.

use divan::Bencher;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_assignment::{Edge, Instance, Solver};

fn main() {
    divan::main();
}

/// Agents of the generated instances.
const SIZES: &[usize] = &[1_000, 10_000, 50_000];

/// Edges of each agent (a 50,000 × 25,000 round's graph has about 35 per mentee).
const DEGREE: usize = 32;

/// A random instance with `agents` agents (see the module documentation).
fn instance(agents: usize, seed: u64) -> Instance {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let targets = (agents / 2).max(DEGREE);
    let capacities = (0..targets).map(|_| rng.random_range(1..=3)).collect();
    let appeal: Vec<i64> = (0..targets).map(|_| rng.random_range(0..1_000)).collect();
    let mut edges = Vec::with_capacity(agents * DEGREE);
    for agent in 0..agents as u32 {
        for target in rand::seq::index::sample(&mut rng, targets, DEGREE) {
            // Multiples of 10 between 10 and 2,000: many ties.
            let weight = (appeal[target] + rng.random_range(0..1_000)) / 10 * 10 + 10;
            edges.push(Edge {
                agent,
                target: target as u32,
                weight,
            });
        }
    }
    Instance {
        agents,
        capacities,
        edges,
    }
}

/// A full solve from nothing.
#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn solve_cold(bencher: Bencher, agents: usize) {
    let instance = instance(agents, 1);
    bencher.bench(|| tandem_assignment::solve(divan::black_box(&instance)));
}

/// One more agent into a solved instance: one shortest augmenting path.
#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn warm_add_agent(bencher: Bencher, agents: usize) {
    let mut instance = instance(agents + 1, 2);
    let last = agents as u32;
    let edges: Vec<(u32, i64)> = (instance.edges.iter())
        .filter(|e| e.agent == last)
        .map(|e| (e.target, e.weight))
        .collect();
    instance.edges.retain(|e| e.agent != last);
    instance.agents = agents;
    let mut solved = Solver::new(&instance);
    solved.solve();
    bencher
        .with_inputs(|| solved.clone())
        .bench_local_values(|mut solver| {
            solver.add_agent(divan::black_box(&edges));
            solver
        });
}

/// A solve of three quarters of the edges, then the improving ones of the rest added (the
/// round's pricing pass): a re-solve that starts from the solution it has.
#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn warm_add_edges(bencher: Bencher, agents: usize) {
    let mut instance = instance(agents, 3);
    let mut rest = Vec::new();
    for (k, edge) in std::mem::take(&mut instance.edges).into_iter().enumerate() {
        if k % 4 == 3 {
            rest.push(edge);
        } else {
            instance.edges.push(edge);
        }
    }
    let mut solved = Solver::new(&instance);
    solved.solve();
    let improving: Vec<Edge> = (rest.into_iter())
        .filter(|e| solved.slack(e.agent, e.target, e.weight) > 0)
        .collect();
    bencher
        .with_inputs(|| solved.clone())
        .bench_local_values(|mut solver| {
            solver.add_edges(divan::black_box(&improving));
            solver
        });
}
