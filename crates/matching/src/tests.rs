use std::collections::HashMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tandem_proto::{CareerLevel, ExperienceBand, Format, Industry, Topic};

use super::*;
use candidates::{Group, Scope};
use tandem_assignment::Edge;
use tandem_domain::model::Goal;

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
                prop_assert!(tandem_domain::taxonomy::regions_meet(&mentee.needs.region, &mentor.region));
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

/// A population with some pairs proposed before, picked by `history`.
fn with_history(
    mut mentees: Vec<MenteeCandidate>,
    mentors: &[MentorProfile],
    history: &[bool],
) -> Vec<MenteeCandidate> {
    if mentors.is_empty() {
        return mentees;
    }
    for (i, mentee) in mentees.iter_mut().enumerate() {
        for (k, mentor) in mentors.iter().enumerate() {
            if history[(i * 31 + k) % history.len()] {
                (mentee.proposed_before).insert((mentor.node_id.clone(), mentor.pseudonym.clone()));
            }
        }
    }
    mentees
}

/// Every pair with its evaluation, by brute force.
fn all_pairs(encoded: &Encoded) -> Vec<(usize, usize, Result<i64, encoded::Stage>)> {
    let mut out = Vec::new();
    for (i, e) in encoded.mentees.iter().enumerate() {
        for j in 0..encoded.mentor_count() {
            out.push((i, j, encoded.evaluate(e, j)));
        }
    }
    out
}

/// The `k` largest items.
fn top_k<T: Ord>(mut items: Vec<T>, k: usize) -> Vec<T> {
    items.sort_unstable_by(|a, b| b.cmp(a));
    items.truncate(k);
    items
}

/// The tie-breaking hash the candidate scan uses, recomputed independently.
fn pair_hash(mentee: usize, mentor: usize) -> u64 {
    let mut h = (mentee as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (mentor as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    h
}

/// The candidate scan over every pair: the best of each mentee and of each mentor, and the
/// number of feasible pairs.
fn exhaustive_scan(
    encoded: &Encoded,
    capacities: &[u32],
    limits: CandidateLimits,
) -> (candidates::Scan, u64) {
    let pairs = all_pairs(encoded);
    let mut scan = candidates::Scan::default();
    let mut feasible_pairs = 0;
    let mut arcs = Vec::new();
    for i in 0..encoded.mentees.len() {
        let row: Vec<_> = pairs.iter().filter(|p| p.0 == i).collect();
        let feasible: Vec<((i64, u64), usize)> = (row.iter())
            .filter_map(|&&(i, j, r)| r.ok().map(|w| ((w, pair_hash(i, j)), j)))
            .collect();
        feasible_pairs += feasible.len() as u64;
        let furthest = (row.iter())
            .map(|p| p.2.map_or_else(|s| s, |_| encoded::FEASIBLE))
            .max()
            .unwrap_or(0);
        scan.furthest.push(furthest);
        for ((w, _), j) in top_k(feasible, limits.per_mentee) {
            arcs.push(Edge {
                agent: i as u32,
                target: j as u32,
                weight: w,
            });
        }
    }
    for (j, &cap) in capacities.iter().enumerate() {
        let column: Vec<((i64, u64), usize)> = (pairs.iter())
            .filter(|p| p.1 == j)
            .filter_map(|&(i, j, r)| r.ok().map(|w| ((w, pair_hash(i, j)), i)))
            .collect();
        for ((w, _), i) in top_k(column, limits.per_place * cap as usize) {
            arcs.push(Edge {
                agent: i as u32,
                target: j as u32,
                weight: w,
            });
        }
    }
    arcs.sort_unstable_by_key(|a| (a.agent, a.target));
    arcs.dedup_by_key(|a| (a.agent, a.target));
    scan.arcs = arcs;
    (scan, feasible_pairs)
}

/// Pricing over every pair: per mentee, the `limits.improving` pairs outside the graph with the
/// most slack (ties by weight, then mentor), and, for a mentee with fewer improving pairs, the
/// `limits.near` pairs with the most slack above `−limits.margin` and at most 0.
fn exhaustive_price(encoded: &Encoded, solver: &Solver, limits: PriceLimits) -> Priced {
    let mut out = Priced::default();
    for i in 0..encoded.mentees.len() {
        let row: Vec<((i64, i64), u32)> = (0..encoded.mentor_count())
            .filter_map(|j| {
                let w = encoded.evaluate(&encoded.mentees[i], j).ok()?;
                let slack = solver.slack(i as u32, j as u32, w);
                (!solver.has_edge(i as u32, j as u32)).then_some(((slack, w), j as u32))
            })
            .collect();
        let arcs = |row: Vec<((i64, i64), u32)>, k: usize| {
            let mut arcs: Vec<Edge> = (top_k(row, k).into_iter())
                .map(|((_, w), j)| Edge {
                    agent: i as u32,
                    target: j,
                    weight: w,
                })
                .collect();
            arcs.sort_unstable_by_key(|a| a.target);
            arcs
        };
        let (improving, rest): (Vec<_>, Vec<_>) = row.into_iter().partition(|p| p.0.0 > 0);
        if improving.len() < limits.improving {
            let near = rest
                .into_iter()
                .filter(|p| p.0.0 > -limits.margin)
                .collect();
            out.near.extend(arcs(near, limits.near));
        }
        out.improving.extend(arcs(improving, limits.improving));
    }
    out
}

/// For each mentee with pairs outside the graph that a pricing scan did not return, the most
/// slack of those pairs.
fn left_out(encoded: &Encoded, solver: &Solver, priced: &Priced) -> Vec<(usize, i64)> {
    let returned: HashSet<(u32, u32)> = (priced.improving.iter().chain(&priced.near))
        .map(|a| (a.agent, a.target))
        .collect();
    (0..encoded.mentees.len())
        .filter_map(|i| {
            (0..encoded.mentor_count())
                .filter(|&j| !solver.has_edge(i as u32, j as u32))
                .filter(|&j| !returned.contains(&(i as u32, j as u32)))
                .filter_map(|j| {
                    let w = encoded.evaluate(&encoded.mentees[i], j).ok()?;
                    Some(solver.slack(i as u32, j as u32, w))
                })
                .max()
                .map(|most| (i, most))
        })
        .collect()
}

/// Every improving pair of an exhaustive pricing.
fn all_improving(encoded: &Encoded, solver: &Solver) -> Vec<Edge> {
    let limits = PriceLimits {
        improving: usize::MAX,
        near: 0,
        margin: 0,
    };
    exhaustive_price(encoded, solver, limits).improving
}

/// The default weights, or weights too large for the index's 32-bit block filter, which then
/// scores every pair exactly.
fn weights(beyond_the_filter: bool) -> ScoreWeights {
    if beyond_the_filter {
        ScoreWeights {
            goal_coverage: 3 << 20,
            ..ScoreWeights::default()
        }
    } else {
        ScoreWeights::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_indexed_scan_equals_a_scan_of_every_pair(
        mentees in proptest::collection::vec(mentee_candidate(), 0..60),
        mentors in proptest::collection::vec(mentor_profile(), 0..40),
        history in proptest::collection::vec(proptest::bool::weighted(0.05), 1..50),
        per_mentee in 0usize..6,
        per_place in 0usize..4,
        most_mentees_first in any::<bool>(),
        block in 1usize..=index::BLOCK,
        beyond_the_filter in proptest::bool::weighted(0.2),
    ) {
        let mentees = with_history(mentees, &mentors, &history);
        let mut encoded = Encoded::new(&mentees, &mentors, &weights(beyond_the_filter));
        if most_mentees_first {
            encoded.set_pair_bonus(100_000);
        }
        let capacities: Vec<u32> = mentors.iter().map(|m| m.free_capacity).collect();
        let limits = CandidateLimits { per_mentee, per_place };
        let index = MentorIndex::with_block(&encoded, block);
        let scan = candidates::scan(&encoded, &index, &capacities, limits);
        let (reference, feasible_pairs) = exhaustive_scan(&encoded, &capacities, limits);
        let counted = candidates::count_feasible(&encoded, &index, &scan.furthest, || ());
        prop_assert_eq!(counted, feasible_pairs);
        prop_assert_eq!(scan.furthest, reference.furthest);
        prop_assert_eq!(scan.arcs, reference.arcs);
    }

    #[test]
    fn pruned_pricing_finds_exactly_the_pairs_of_a_full_scan(
        mentees in proptest::collection::vec(mentee_candidate(), 1..60),
        mentors in proptest::collection::vec(mentor_profile(), 1..40),
        keep in proptest::collection::vec(proptest::bool::weighted(0.3), 1..40),
        block in 1usize..=index::BLOCK,
        beyond_the_filter in proptest::bool::weighted(0.2),
    ) {
        let encoded = Encoded::new(&mentees, &mentors, &weights(beyond_the_filter));
        let capacities: Vec<u32> = mentors.iter().map(|m| m.free_capacity).collect();
        // Solve a random part of the feasible pairs, so that many pairs outside improve.
        let arcs: Vec<Edge> = (all_pairs(&encoded).into_iter().enumerate())
            .filter(|(k, _)| keep[k % keep.len()])
            .filter_map(|(_, (i, j, r))| {
                r.ok().map(|w| Edge { agent: i as u32, target: j as u32, weight: w })
            })
            .collect();
        let mut solver = Solver::new(&Instance { agents: mentees.len(), capacities, edges: arcs });
        solver.solve();
        let index = MentorIndex::with_block(&encoded, block);
        for improving in [1, candidates::PRICED_PER_MENTEE, usize::MAX] {
            for (near, margin) in [(0, 0), (1, 30), (4, 300), (usize::MAX, 100)] {
                let limits = PriceLimits { improving, near, margin };
                let pruned = candidates::price(&encoded, &index, &solver, Scope::All, limits);
                let reference = exhaustive_price(&encoded, &solver, limits);
                prop_assert_eq!(&pruned.improving, &reference.improving);
                prop_assert_eq!(&pruned.near, &reference.near);
                prop_assert_eq!(pruned.reach.len(), mentees.len());
                // No pair left out has more slack than the reach, which is at most 0 (−margin
                // when the near list has room) unless the improving list is full.
                for (i, most) in left_out(&encoded, &solver, &pruned) {
                    let reach = pruned.reach[i];
                    prop_assert!(most <= reach, "mentee {}: {} > {}", i, most, reach);
                    let cut = pruned.improving.iter().filter(|a| a.agent == i as u32).count();
                    if cut < improving {
                        prop_assert!(reach <= 0);
                        let close = pruned.near.iter().filter(|a| a.agent == i as u32).count();
                        if close < near {
                            prop_assert!(reach <= -margin);
                        }
                    }
                }
            }
        }
        // Every pair of a third of the mentees, and the pairs of half the others with a fifth
        // of the mentors.
        let some: Vec<u32> = (0..mentees.len() as u32).filter(|i| i % 3 == 0).collect();
        let others: Vec<u32> = (0..mentees.len() as u32).filter(|i| i % 3 == 1).collect();
        let few: Vec<u32> = (0..mentors.len() as u32).filter(|j| j % 5 == 1).collect();
        for mentors in [&[][..], &few[..]] {
            let groups = [Group { mentees: others.clone(), mentors: mentors.to_vec() }];
            let scope = Scope::Moved { mentees: &some, groups: &groups };
            let limits = PriceLimits { improving: usize::MAX, near: 0, margin: 0 };
            let pruned = candidates::price(&encoded, &index, &solver, scope, limits);
            let full = all_improving(&encoded, &solver);
            let in_scope = |a: &Edge| match a.agent % 3 {
                0 => true,
                1 => mentors.contains(&a.target),
                _ => false,
            };
            prop_assert!(pruned.near.is_empty());
            prop_assert_eq!(pruned.improving, full.into_iter().filter(in_scope).collect::<Vec<_>>());
            for (i, &reach) in pruned.reach.iter().enumerate() {
                let scanned = i % 3 == 0 || (i % 3 == 1 && !mentors.is_empty());
                prop_assert_eq!(reach == candidates::UNSCANNED, !scanned);
            }
        }
    }

    #[test]
    fn a_round_and_its_warm_start_are_optimal_over_all_pairs(
        mentees in proptest::collection::vec(mentee_candidate(), 1..60),
        mentors in proptest::collection::vec(mentor_profile(), 0..30),
        per_mentee in 0usize..4,
        priced in 1usize..4,
        near in 0usize..3,
        margin in 0i64..200,
        rescan_all in any::<bool>(),
    ) {
        // Few candidates and few priced pairs per scan make many scans, most of them over
        // the pairs whose duals moved (all of them without `rescan_all`), and mentees whose
        // priced list was cut.
        let options = RoundOptions {
            limits: CandidateLimits { per_mentee, per_place: 1 },
            ..RoundOptions::default()
        };
        let (head, last) = mentees.split_at(mentees.len() - 1);
        let limits = PriceLimits { improving: priced, near, margin };
        let pricing = Pricing { limits, rescan_all };
        let mut round = Round::run_priced(head, &mentors, &options, pricing);
        prop_assert!(round.plan.stats.optimal);
        prop_assert!(all_improving(&round.encoded, &round.solver).is_empty());
        round.add_mentee(&last[0]);
        prop_assert!(all_improving(&round.encoded, &round.solver).is_empty());
        let cold = Round::run(&mentees, &mentors, &options);
        prop_assert_eq!(round.objective(), cold.objective());
        prop_assert_eq!(cold.objective(), cold.plan.objective);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2))]

    /// Rounds large enough that the explanations are written on both cores and the feasible
    /// pairs are counted in many pieces, in the background of the solves.
    #[test]
    fn a_large_round_explains_every_pair_and_counts_every_feasible_pair(
        mentees in proptest::collection::vec(mentee_candidate(), 300..400),
        mentors in proptest::collection::vec(mentor_profile(), 300..400),
    ) {
        let weights = ScoreWeights::default();
        let plan = plan_round(&mentees, &mentors, &weights);
        let mut objective = 0;
        for p in &plan.proposals {
            let score = scoring::score(&mentees[p.mentee].needs, &mentors[p.mentor], &weights);
            prop_assert_eq!(&p.score, &score);
            objective += score.total;
        }
        prop_assert_eq!(objective, plan.objective);
        let encoded = Encoded::new(&mentees, &mentors, &weights);
        let capacities: Vec<u32> = mentors.iter().map(|m| m.free_capacity).collect();
        let (_, feasible_pairs) =
            exhaustive_scan(&encoded, &capacities, CandidateLimits::default());
        prop_assert_eq!(plan.stats.feasible_pairs, feasible_pairs);
    }
}
