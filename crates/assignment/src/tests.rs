//! Tests of the solver against brute force and against itself: cold, warm-started, repaired
//! by shortest paths and re-auctioned, on small exhaustive instances and larger tied ones.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

/// Exhaustive reference: tries every agent's every option (unmatched or one of its edges).
fn brute_force(instance: &Instance) -> i64 {
    fn go(i: usize, instance: &Instance, by_agent: &[Vec<Edge>], used: &mut [u32]) -> i64 {
        if i == instance.agents {
            return 0;
        }
        let mut best = go(i + 1, instance, by_agent, used);
        for a in &by_agent[i] {
            let j = a.target as usize;
            if used[j] < instance.capacities[j] {
                used[j] += 1;
                best = best.max(a.weight + go(i + 1, instance, by_agent, used));
                used[j] -= 1;
            }
        }
        best
    }
    let mut by_agent = vec![Vec::new(); instance.agents];
    for a in &instance.edges {
        by_agent[a.agent as usize].push(*a);
    }
    go(
        0,
        instance,
        &by_agent,
        &mut vec![0; instance.capacities.len()],
    )
}

fn instances() -> impl Strategy<Value = Instance> {
    (1usize..7, 1usize..5).prop_flat_map(|(n, m)| {
        let arcs =
            proptest::collection::btree_map((0..n as u32, 0..m as u32), 1i64..100, 0..=n * m);
        (Just(n), proptest::collection::vec(0u32..3, m), arcs).prop_map(|(n, capacities, arcs)| {
            Instance {
                agents: n,
                capacities,
                edges: arcs
                    .into_iter()
                    .map(|((agent, target), weight)| Edge {
                        agent,
                        target,
                        weight,
                    })
                    .collect(),
            }
        })
    })
}

proptest! {
    #[test]
    fn solver_is_optimal_and_feasible(instance in instances()) {
        let assignment = solve(&instance);
        prop_assert_eq!(assignment.objective, brute_force(&instance));
        let mut load = vec![0u32; instance.capacities.len()];
        let mut seen = HashSet::new();
        for &(i, j) in &assignment.pairs {
            prop_assert!(seen.insert(i), "agent {} matched twice", i);
            load[j as usize] += 1;
            prop_assert!(instance.edges.iter().any(|a| a.agent == i && a.target == j));
        }
        for (j, &l) in load.iter().enumerate() {
            prop_assert!(l <= instance.capacities[j]);
        }
        prop_assert_eq!(solve(&instance), assignment, "deterministic");
    }
}

proptest! {
    #[test]
    fn warm_start_equals_a_cold_solve(instance in instances()) {
        let last = instance.agents as u32 - 1;
        let head = Instance {
            agents: instance.agents - 1,
            capacities: instance.capacities.clone(),
            edges: instance.edges.iter().copied().filter(|a| a.agent != last).collect(),
        };
        let mut solver = Solver::new(&head);
        solver.solve();
        let edges: Vec<(u32, i64)> =
            instance.edges.iter().filter(|a| a.agent == last).map(|a| (a.target, a.weight)).collect();
        solver.add_agent(&edges);
        prop_assert_eq!(solver.assignment().objective, brute_force(&instance));
    }

    #[test]
    fn pricing_finds_every_improving_pair(instance in instances(), keep in proptest::collection::vec(any::<bool>(), 36)) {
        // Solve with a random subset of the arcs, then price the rest with the duals.
        let (mut kept, mut dropped) = (Vec::new(), Vec::new());
        for (k, a) in instance.edges.iter().enumerate() {
            if keep[k % keep.len()] { kept.push(*a) } else { dropped.push(*a) }
        }
        let partial = Instance { edges: kept, ..instance.clone() };
        let mut solver = Solver::new(&partial);
        solver.solve();
        let mut pending = dropped;
        loop {
            let (improving, rest): (Vec<Edge>, Vec<Edge>) =
                pending.into_iter().partition(|a| solver.slack(a.agent, a.target, a.weight) > 0);
            if improving.is_empty() {
                break;
            }
            solver.add_edges(&improving);
            pending = rest;
        }
        prop_assert_eq!(solver.assignment().objective, brute_force(&instance));
    }
}

/// Checks that the solver's duals prove its assignment optimal: non-negative, no arc with
/// positive slack, zero for unmatched agents and for targets with a free place, and summing
/// to the objective (strong duality, which also makes every matched pair tight).
fn assert_certified(solver: &Solver) -> Result<(), TestCaseError> {
    let instance = solver.instance();
    let assignment = solver.assignment();
    let (pi, p) = solver.duals();
    let mut matched = vec![false; instance.agents];
    let mut load = vec![0u32; instance.capacities.len()];
    for &(i, j) in &assignment.pairs {
        matched[i as usize] = true;
        load[j as usize] += 1;
    }
    for a in &instance.edges {
        prop_assert!(
            solver.slack(a.agent, a.target, a.weight) <= 0,
            "{:?} has slack",
            a
        );
    }
    let mut bound: i64 = 0;
    for (i, &x) in pi.iter().enumerate() {
        prop_assert!(
            x >= 0 && (matched[i] || x == 0),
            "agent {} has dual {}",
            i,
            x
        );
        bound += x;
    }
    for (j, &c) in instance.capacities.iter().enumerate() {
        prop_assert!(load[j] <= c);
        if c > 0 {
            prop_assert!(
                p[j] >= 0 && (load[j] == c || p[j] == 0),
                "target {} has dual {}",
                j,
                p[j]
            );
            bound += i64::from(c) * p[j];
        }
    }
    prop_assert_eq!(bound, assignment.objective, "duals do not prove optimality");
    Ok(())
}

/// Larger instances than brute force can check, with many equal weights (as scores have).
fn tied_instances() -> impl Strategy<Value = Instance> {
    (1usize..80, 1usize..30).prop_flat_map(|(n, m)| {
        let arcs = proptest::collection::btree_map((0..n as u32, 0..m as u32), 1i64..12, 0..=n * 6);
        (Just(n), proptest::collection::vec(0u32..4, m), arcs).prop_map(|(n, capacities, arcs)| {
            Instance {
                agents: n,
                capacities,
                edges: (arcs.into_iter())
                    .map(|((agent, target), w)| Edge {
                        agent,
                        target,
                        weight: w * 10,
                    })
                    .collect(),
            }
        })
    })
}

proptest! {
    #[test]
    fn duals_prove_the_assignment_optimal(instance in instances()) {
        let mut solver = Solver::new(&instance);
        solver.solve();
        assert_certified(&solver)?;
        prop_assert_eq!(solver.assignment().objective, brute_force(&instance));
    }

    #[test]
    fn re_solving_after_pricing_is_optimal_either_way(
        instance in tied_instances(),
        keep in proptest::collection::vec(any::<bool>(), 1..40),
        full in any::<bool>(),
    ) {
        let (mut kept, mut pending) = (Vec::new(), Vec::new());
        for (k, a) in instance.edges.iter().enumerate() {
            if keep[k % keep.len()] { kept.push(*a) } else { pending.push(*a) }
            if k % 5 == 0 {
                // A parallel arc worth more than the pair's first one.
                pending.push(Edge { weight: a.weight + 7, ..*a });
            }
        }
        let mut instance = instance;
        instance.edges.extend(pending.iter().filter(|a| a.weight % 10 != 0));
        let mut solver = Solver::new(&Instance { edges: kept, ..instance.clone() });
        if full {
            solver.set_repair_limit(0);
        }
        solver.solve();
        loop {
            let (improving, rest): (Vec<Edge>, Vec<Edge>) =
                pending.into_iter().partition(|a| solver.slack(a.agent, a.target, a.weight) > 0);
            if improving.is_empty() {
                break;
            }
            solver.add_edges(&improving);
            assert_certified(&solver)?;
            pending = rest;
        }
        let mut cold = Solver::new(&instance);
        cold.solve();
        prop_assert_eq!(solver.assignment().objective, cold.assignment().objective);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_auction_agrees_with_shortest_paths(instance in tied_instances()) {
        let mut cold = Solver::new(&instance);
        cold.solve();
        assert_certified(&cold)?;
        prop_assert_eq!(solve(&instance), cold.assignment(), "deterministic");
        // One agent at a time is plain successive shortest paths.
        let mut by_paths = Solver::new(&Instance {
            agents: 0,
            capacities: instance.capacities.clone(),
            edges: Vec::new(),
        });
        by_paths.solve();
        for i in 0..instance.agents as u32 {
            let edges: Vec<(u32, i64)> =
                instance.edges.iter().filter(|a| a.agent == i).map(|a| (a.target, a.weight)).collect();
            by_paths.add_agent(&edges);
        }
        assert_certified(&by_paths)?;
        prop_assert_eq!(by_paths.assignment().objective, cold.assignment().objective);
    }

    #[test]
    fn huge_weights_are_solved_exactly(instance in instances()) {
        // Scaled by the number of nodes, these weights would overflow; the solver falls back
        // to shortest paths.
        let huge = Instance {
            edges: (instance.edges.iter())
                .map(|a| Edge { weight: a.weight * 3_000_000_000_000_000, ..*a })
                .collect(),
            ..instance.clone()
        };
        let mut solver = Solver::new(&huge);
        solver.solve();
        assert_certified(&solver)?;
        prop_assert_eq!(solver.assignment().objective, brute_force(&huge));
    }
}

#[test]
fn prefers_two_good_pairs_over_one_great_pair() {
    // Agent 0 likes target 0 best, but giving target 0 to agent 1 frees target 1 for agent 0.
    let instance = Instance {
        agents: 2,
        capacities: vec![1, 1],
        edges: vec![
            Edge {
                agent: 0,
                target: 0,
                weight: 10,
            },
            Edge {
                agent: 0,
                target: 1,
                weight: 8,
            },
            Edge {
                agent: 1,
                target: 0,
                weight: 9,
            },
        ],
    };
    let a = solve(&instance);
    assert_eq!(a.objective, 17);
    assert_eq!(a.pairs, vec![(0, 1), (1, 0)]);
}
