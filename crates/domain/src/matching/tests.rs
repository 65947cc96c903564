use std::collections::HashMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tandem_proto::{CareerLevel, ExperienceBand, Format, Industry, Topic};

use super::*;
use crate::model::Goal;

/// Exhaustive reference: tries every mentee's every option (unmatched or one of its arcs).
fn brute_force(instance: &Instance) -> i64 {
    fn go(i: usize, instance: &Instance, by_mentee: &[Vec<Arc>], used: &mut [u32]) -> i64 {
        if i == instance.mentees {
            return 0;
        }
        let mut best = go(i + 1, instance, by_mentee, used);
        for a in &by_mentee[i] {
            let j = a.mentor as usize;
            if used[j] < instance.capacities[j] {
                used[j] += 1;
                best = best.max(a.weight + go(i + 1, instance, by_mentee, used));
                used[j] -= 1;
            }
        }
        best
    }
    let mut by_mentee = vec![Vec::new(); instance.mentees];
    for a in &instance.arcs {
        by_mentee[a.mentee as usize].push(*a);
    }
    go(
        0,
        instance,
        &by_mentee,
        &mut vec![0; instance.capacities.len()],
    )
}

fn instances() -> impl Strategy<Value = Instance> {
    (1usize..7, 1usize..5).prop_flat_map(|(n, m)| {
        let arcs =
            proptest::collection::btree_map((0..n as u32, 0..m as u32), 1i64..100, 0..=n * m);
        (Just(n), proptest::collection::vec(0u32..3, m), arcs).prop_map(|(n, capacities, arcs)| {
            Instance {
                mentees: n,
                capacities,
                arcs: arcs
                    .into_iter()
                    .map(|((mentee, mentor), weight)| Arc {
                        mentee,
                        mentor,
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
            prop_assert!(seen.insert(i), "mentee {} matched twice", i);
            load[j as usize] += 1;
            prop_assert!(instance.arcs.iter().any(|a| a.mentee == i && a.mentor == j));
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
        let last = instance.mentees as u32 - 1;
        let head = Instance {
            mentees: instance.mentees - 1,
            capacities: instance.capacities.clone(),
            arcs: instance.arcs.iter().copied().filter(|a| a.mentee != last).collect(),
        };
        let mut solver = Solver::new(&head);
        solver.solve();
        let arcs: Vec<(u32, i64)> =
            instance.arcs.iter().filter(|a| a.mentee == last).map(|a| (a.mentor, a.weight)).collect();
        solver.add_mentee(&arcs);
        prop_assert_eq!(solver.assignment().objective, brute_force(&instance));
    }

    #[test]
    fn pricing_finds_every_improving_pair(instance in instances(), keep in proptest::collection::vec(any::<bool>(), 36)) {
        // Solve with a random subset of the arcs, then price the rest with the duals.
        let (mut kept, mut dropped) = (Vec::new(), Vec::new());
        for (k, a) in instance.arcs.iter().enumerate() {
            if keep[k % keep.len()] { kept.push(*a) } else { dropped.push(*a) }
        }
        let partial = Instance { arcs: kept, ..instance.clone() };
        let mut solver = Solver::new(&partial);
        solver.solve();
        let mut pending = dropped;
        loop {
            let (improving, rest): (Vec<Arc>, Vec<Arc>) =
                pending.into_iter().partition(|a| solver.slack(a.mentee, a.mentor, a.weight) > 0);
            if improving.is_empty() {
                break;
            }
            solver.add_arcs(&improving);
            pending = rest;
        }
        prop_assert_eq!(solver.assignment().objective, brute_force(&instance));
    }
}

/// Checks that the solver's duals prove its assignment optimal: non-negative, no arc with
/// positive slack, zero for unmatched mentees and for mentors with a free place, and summing
/// to the objective (strong duality, which also makes every matched pair tight).
fn assert_certified(solver: &Solver) -> Result<(), TestCaseError> {
    let instance = solver.instance();
    let assignment = solver.assignment();
    let (pi, p) = solver.duals();
    let mut matched = vec![false; instance.mentees];
    let mut load = vec![0u32; instance.capacities.len()];
    for &(i, j) in &assignment.pairs {
        matched[i as usize] = true;
        load[j as usize] += 1;
    }
    for a in &instance.arcs {
        prop_assert!(
            solver.slack(a.mentee, a.mentor, a.weight) <= 0,
            "{:?} has slack",
            a
        );
    }
    let mut bound: i64 = 0;
    for (i, &x) in pi.iter().enumerate() {
        prop_assert!(
            x >= 0 && (matched[i] || x == 0),
            "mentee {} has dual {}",
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
                "mentor {} has dual {}",
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
                mentees: n,
                capacities,
                arcs: (arcs.into_iter())
                    .map(|((mentee, mentor), w)| Arc {
                        mentee,
                        mentor,
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
    fn adding_a_mentee_moves_only_the_duals_it_reports(instance in instances()) {
        let last = instance.mentees as u32 - 1;
        let head = Instance {
            mentees: instance.mentees - 1,
            capacities: instance.capacities.clone(),
            arcs: instance.arcs.iter().copied().filter(|a| a.mentee != last).collect(),
        };
        let mut solver = Solver::new(&head);
        solver.solve();
        let (pi, p) = solver.duals();
        let (pi, p) = (pi.to_vec(), p.to_vec());
        let arcs: Vec<(u32, i64)> =
            instance.arcs.iter().filter(|a| a.mentee == last).map(|a| (a.mentor, a.weight)).collect();
        prop_assert_eq!(solver.add_mentee(&arcs), last);
        assert_certified(&solver)?;
        let moved: HashSet<u32> = solver.last_search_mentees().into_iter().collect();
        let (pi_now, p_now) = solver.duals();
        for (i, (&before, &now)) in pi.iter().zip(pi_now).enumerate() {
            prop_assert!(before == now || moved.contains(&(i as u32)), "mentee {} moved unreported", i);
        }
        // Mentor duals only rise, so no pair of an unreported mentee gains slack.
        for (&before, &now) in p.iter().zip(p_now) {
            prop_assert!(now >= before);
        }
    }

    #[test]
    fn re_solving_after_pricing_is_optimal_either_way(
        instance in tied_instances(),
        keep in proptest::collection::vec(any::<bool>(), 1..40),
        full in any::<bool>(),
    ) {
        let (mut kept, mut pending) = (Vec::new(), Vec::new());
        for (k, a) in instance.arcs.iter().enumerate() {
            if keep[k % keep.len()] { kept.push(*a) } else { pending.push(*a) }
            if k % 5 == 0 {
                // A parallel arc worth more than the pair's first one.
                pending.push(Arc { weight: a.weight + 7, ..*a });
            }
        }
        let mut instance = instance;
        instance.arcs.extend(pending.iter().filter(|a| a.weight % 10 != 0));
        let mut solver = Solver::new(&Instance { arcs: kept, ..instance.clone() });
        if full {
            solver.set_repair_limit(0);
        }
        solver.solve();
        loop {
            let (improving, rest): (Vec<Arc>, Vec<Arc>) =
                pending.into_iter().partition(|a| solver.slack(a.mentee, a.mentor, a.weight) > 0);
            if improving.is_empty() {
                break;
            }
            solver.add_arcs(&improving);
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
        // One mentee at a time is plain successive shortest paths.
        let mut by_paths = Solver::new(&Instance {
            mentees: 0,
            capacities: instance.capacities.clone(),
            arcs: Vec::new(),
        });
        by_paths.solve();
        for i in 0..instance.mentees as u32 {
            let arcs: Vec<(u32, i64)> =
                instance.arcs.iter().filter(|a| a.mentee == i).map(|a| (a.mentor, a.weight)).collect();
            by_paths.add_mentee(&arcs);
        }
        assert_certified(&by_paths)?;
        prop_assert_eq!(by_paths.assignment().objective, cold.assignment().objective);
    }

    #[test]
    fn huge_weights_are_solved_exactly(instance in instances()) {
        // Scaled by the number of nodes, these weights would overflow; the solver falls back
        // to shortest paths.
        let huge = Instance {
            arcs: (instance.arcs.iter())
                .map(|a| Arc { weight: a.weight * 3_000_000_000_000_000, ..*a })
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
    // Mentee 0 likes mentor 0 best, but giving mentor 0 to mentee 1 frees mentor 1 for mentee 0.
    let instance = Instance {
        mentees: 2,
        capacities: vec![1, 1],
        arcs: vec![
            Arc {
                mentee: 0,
                mentor: 0,
                weight: 10,
            },
            Arc {
                mentee: 0,
                mentor: 1,
                weight: 8,
            },
            Arc {
                mentee: 1,
                mentor: 0,
                weight: 9,
            },
        ],
    };
    let a = solve(&instance);
    assert_eq!(a.objective, 17);
    assert_eq!(a.pairs, vec![(0, 1), (1, 0)]);
}

const LANGS: [&str; 3] = ["de", "en", "fr"];
const REGIONS: [&str; 3] = ["DE-BY", "DE-BE", "AT"];

fn token(k: u8) -> String {
    format!("{k:064x}")
}

prop_compose! {
    fn mentor_profile()(
        node in 0u8..3, level in 2i32..=6, band in 1i32..=4,
        industries in proptest::sample::subsequence(vec![1i32, 3, 4, 6], 1..3),
        expertise in proptest::sample::subsequence((1i32..=16).collect::<Vec<_>>(), 1..5),
        langs in proptest::sample::subsequence(LANGS.to_vec(), 1..3),
        region in proptest::sample::select(REGIONS.to_vec()),
        formats in proptest::sample::subsequence(vec![1i32, 2, 3], 1..3),
        cap in 0u32..4, employer in 0u8..6, id in any::<u32>(),
    ) -> MentorProfile {
        MentorProfile {
            node_id: format!("node-{node}"),
            pseudonym: format!("{id:064x}"),
            career_level: CareerLevel::try_from(level).unwrap_or_default(),
            experience_band: ExperienceBand::try_from(band).unwrap_or_default(),
            industries: industries.into_iter().filter_map(|i| Industry::try_from(i).ok()).collect(),
            expertise: expertise.into_iter().filter_map(|t| Topic::try_from(t).ok()).collect(),
            languages: langs.into_iter().map(String::from).collect(),
            region: region.to_owned(),
            formats: formats.into_iter().filter_map(|f| Format::try_from(f).ok()).collect(),
            free_capacity: cap,
            employer_token: token(employer),
            group_token: token(employer / 2 + 100),
        }
    }
}

prop_compose! {
    fn mentee_candidate()(
        level in 1i32..=5,
        goals in proptest::sample::subsequence((1i32..=16).collect::<Vec<_>>(), 1..4),
        priority in 1u32..=3,
        langs in proptest::sample::subsequence(LANGS.to_vec(), 1..3),
        region in proptest::sample::select(REGIONS.to_vec()),
        format in 1i32..=3, pref in 0i32..=2, employer in 0u8..6, id in any::<u32>(),
    ) -> MenteeCandidate {
        MenteeCandidate {
            id: format!("mentee-{id}"),
            needs: MenteeNeeds {
                career_level: level,
                goals: goals.into_iter().map(|topic| Goal { topic, priority }).collect(),
                languages: langs.into_iter().map(String::from).collect(),
                region: region.to_owned(),
                format,
                industry: 4,
                industry_preference: pref,
                company_size_band: 1,
                employer_token: token(employer + 50),
                group_token: token(employer / 2 + 100),
                home_node_id: "node-0".into(),
            },
            proposed_before: HashSet::new(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rounds_never_break_a_hard_constraint(
        mentees in proptest::collection::vec(mentee_candidate(), 0..120),
        mentors in proptest::collection::vec(mentor_profile(), 0..60),
    ) {
        let plan = plan_round(&mentees, &mentors, &ScoreWeights::default());
        let mut load: HashMap<usize, u32> = HashMap::new();
        let mut matched = HashSet::new();
        let mut objective = 0;
        for p in &plan.proposals {
            let (mentee, mentor) = (&mentees[p.mentee], &mentors[p.mentor]);
            prop_assert!(matched.insert(p.mentee));
            prop_assert!(mentee.needs.languages.iter().any(|l| mentor.languages.contains(l)));
            prop_assert!(mentor.career_level as i32 > mentee.needs.career_level);
            prop_assert!(mentor.formats.contains(&mentee.needs.format()));
            if mentee.needs.meets_in_person() {
                prop_assert!(crate::taxonomy::regions_meet(&mentee.needs.region, &mentor.region));
            }
            prop_assert!(mentor.employer_token != mentee.needs.employer_token);
            prop_assert!(mentor.group_token != mentee.needs.group_token);
            *load.entry(p.mentor).or_default() += 1;
            objective += p.score.total;
        }
        for (j, l) in load {
            prop_assert!(l <= mentors[j].free_capacity);
        }
        prop_assert_eq!(objective, plan.objective);
        prop_assert_eq!(plan.proposals.len() + plan.unmatched.len(), mentees.len());
    }
}

#[test]
fn a_pair_proposed_before_is_never_proposed_again() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mentor = mentor_profile().new_tree(&mut runner).map(|t| t.current());
    let Ok(mut mentor) = mentor else { return };
    mentor.free_capacity = 1;
    mentor.formats = vec![Format::Remote];
    mentor.languages = vec!["de".into()];
    mentor.career_level = CareerLevel::Executive;
    mentor.expertise = vec![Topic::Leadership];
    let mut mentee = MenteeCandidate {
        id: "m".into(),
        needs: MenteeNeeds {
            career_level: CareerLevel::TeamLead as i32,
            goals: vec![Goal {
                topic: Topic::Leadership as i32,
                priority: 2,
            }],
            languages: vec!["de".into()],
            region: String::new(),
            format: Format::Remote as i32,
            industry: 4,
            industry_preference: 0,
            company_size_band: 1,
            employer_token: token(200),
            group_token: token(201),
            home_node_id: String::new(),
        },
        proposed_before: HashSet::new(),
    };
    let plan = plan_round(
        std::slice::from_ref(&mentee),
        std::slice::from_ref(&mentor),
        &ScoreWeights::default(),
    );
    assert_eq!(plan.proposals.len(), 1);
    mentee
        .proposed_before
        .insert((mentor.node_id.clone(), mentor.pseudonym.clone()));
    let plan = plan_round(&[mentee], &[mentor], &ScoreWeights::default());
    assert!(plan.proposals.is_empty());
    assert_eq!(plan.unmatched[0].code, "all_candidates_proposed_before");
}
