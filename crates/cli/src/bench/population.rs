//! A realistic national population for benchmarks, generated straight into the matching
//! engine's types: skewed languages and regions, a pyramid of career levels, popular topics,
//! employers with many mentors (some in groups), capacities of 1 to 3.

use std::collections::HashSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tandem_domain::model::{Goal, MenteeNeeds, MentorProfile};
use tandem_matching::MenteeCandidate;
use tandem_proto::{CareerLevel, ExperienceBand, Format, Industry, Topic};

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, options: &[(T, u32)]) -> T {
    let total: u32 = options.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for &(value, weight) in options {
        if pick < weight {
            return value;
        }
        pick -= weight;
    }
    options[0].0
}

const REGIONS: &[(&str, u32)] = &[
    ("DE-NW", 21),
    ("DE-BY", 16),
    ("DE-BW", 13),
    ("DE-NI", 10),
    ("DE-HE", 8),
    ("DE-BE", 6),
    ("DE-SN", 5),
    ("DE-RP", 5),
    ("DE-SH", 4),
    ("DE-HH", 3),
    ("DE-TH", 3),
    ("DE-ST", 3),
    ("DE-BB", 3),
    ("DE-MV", 2),
    ("DE-SL", 1),
    ("DE-HB", 1),
    ("AT", 4),
    ("CH", 2),
];

const TOPICS: &[(Topic, u32)] = &[
    (Topic::Leadership, 20),
    (Topic::Strategy, 12),
    (Topic::Financing, 9),
    (Topic::Sales, 8),
    (Topic::Digitalisation, 10),
    (Topic::Hr, 8),
    (Topic::Internationalisation, 5),
    (Topic::Succession, 4),
    (Topic::Operations, 5),
    (Topic::Innovation, 5),
    (Topic::Sustainability, 3),
    (Topic::Legal, 2),
    (Topic::FinanceControlling, 3),
    (Topic::Negotiation, 3),
    (Topic::PersonalDevelopment, 6),
    (Topic::Marketing, 5),
];

const INDUSTRIES: &[(Industry, u32)] = &[
    (Industry::Manufacturing, 18),
    (Industry::Construction, 8),
    (Industry::Trade, 12),
    (Industry::ItSoftware, 14),
    (Industry::FinanceInsurance, 5),
    (Industry::Health, 7),
    (Industry::Energy, 4),
    (Industry::Logistics, 6),
    (Industry::Hospitality, 6),
    (Industry::ProfessionalServices, 10),
    (Industry::CreativeMedia, 4),
    (Industry::AgricultureFood, 3),
    (Industry::Education, 2),
    (Industry::Crafts, 9),
];

fn languages(rng: &mut ChaCha8Rng, mentor: bool) -> Vec<String> {
    let mut out = Vec::new();
    if rng.random_bool(if mentor { 0.97 } else { 0.88 }) {
        out.push("de".to_owned());
    }
    if rng.random_bool(if mentor { 0.65 } else { 0.45 }) || out.is_empty() {
        out.push("en".to_owned());
    }
    if rng.random_bool(0.08) {
        let other = weighted(
            rng,
            &[
                ("fr", 5),
                ("tr", 4),
                ("pl", 3),
                ("it", 3),
                ("es", 3),
                ("ru", 2),
                ("uk", 1),
                ("ar", 1),
            ],
        );
        if !out.iter().any(|l| l == other) {
            out.push(other.to_owned());
        }
    }
    out
}

fn topics(rng: &mut ChaCha8Rng, count: usize) -> Vec<Topic> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let t = weighted(rng, TOPICS);
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn token(kind: u8, n: u64) -> String {
    format!("{kind:02x}{n:062x}")
}

/// Generates `count` mentors spread over `nodes` nodes. Employers follow a heavy-tailed size
/// distribution, so some employers have dozens of mentors.
pub fn mentors(rng: &mut ChaCha8Rng, count: usize, nodes: usize) -> Vec<MentorProfile> {
    let employers = (count / 4).max(1) as u64;
    (0..count)
        .map(|k| {
            // Squaring a uniform number makes small employer numbers (big employers) common.
            let u: f64 = rng.random();
            let employer = (u * u * employers as f64) as u64;
            let level = weighted(
                rng,
                &[
                    (CareerLevel::TeamLead, 5),
                    (CareerLevel::HeadOfDepartment, 30),
                    (CareerLevel::Director, 35),
                    (CareerLevel::Executive, 30),
                ],
            );
            let band = match level {
                CareerLevel::TeamLead => ExperienceBand::FiveToNine,
                CareerLevel::HeadOfDepartment => weighted(
                    rng,
                    &[
                        (ExperienceBand::FiveToNine, 1),
                        (ExperienceBand::TenToNineteen, 3),
                    ],
                ),
                _ => weighted(
                    rng,
                    &[
                        (ExperienceBand::TenToNineteen, 2),
                        (ExperienceBand::TwentyPlus, 3),
                    ],
                ),
            };
            let mut formats = Vec::new();
            for (f, p) in [
                (Format::Remote, 0.8),
                (Format::InPerson, 0.5),
                (Format::Hybrid, 0.4),
            ] {
                if rng.random_bool(p) {
                    formats.push(f);
                }
            }
            if formats.is_empty() {
                formats.push(Format::Remote);
            }
            let mut industries = vec![weighted(rng, INDUSTRIES)];
            if rng.random_bool(0.4) {
                let other = weighted(rng, INDUSTRIES);
                if !industries.contains(&other) {
                    industries.push(other);
                }
            }
            let expertise = rng.random_range(2..=6);
            MentorProfile {
                node_id: format!("node-{}", k % nodes.max(1)),
                pseudonym: token(0xaa, k as u64),
                career_level: level,
                experience_band: band,
                industries,
                expertise: topics(rng, expertise),
                languages: languages(rng, true),
                region: weighted(rng, REGIONS).to_owned(),
                formats,
                free_capacity: weighted(rng, &[(1, 40), (2, 40), (3, 20)]),
                employer_token: token(0xe0, employer),
                group_token: token(0xe1, employer / 5),
            }
        })
        .collect()
}

/// Generates `count` waiting mentees; about one in twenty works for an employer that also has
/// mentors.
pub fn mentees(rng: &mut ChaCha8Rng, count: usize, mentor_count: usize) -> Vec<MenteeCandidate> {
    let mentor_employers = (mentor_count / 4).max(1) as u64;
    (0..count)
        .map(|k| {
            let (employer, group) = if rng.random_bool(0.05) {
                let e = rng.random_range(0..mentor_employers);
                (token(0xe0, e), token(0xe1, e / 5))
            } else {
                let e = 1_000_000 + rng.random_range(0..(count as u64 / 3).max(1));
                (token(0xe0, e), token(0xe0, e))
            };
            let level = weighted(
                rng,
                &[
                    (CareerLevel::Staff, 20),
                    (CareerLevel::Specialist, 35),
                    (CareerLevel::TeamLead, 30),
                    (CareerLevel::HeadOfDepartment, 12),
                    (CareerLevel::Director, 3),
                ],
            );
            let goal_count = weighted(rng, &[(1usize, 25), (2, 45), (3, 30)]);
            let mut priorities = HashSet::new();
            let goals = topics(rng, goal_count)
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let priority = if i == 0 { 3 } else { rng.random_range(1..=3) };
                    priorities.insert(priority);
                    Goal {
                        topic: t as i32,
                        priority,
                    }
                })
                .collect();
            let format = weighted(
                rng,
                &[
                    (Format::Remote, 55),
                    (Format::Hybrid, 25),
                    (Format::InPerson, 20),
                ],
            );
            MenteeCandidate {
                id: format!("mentee-{k}"),
                needs: MenteeNeeds {
                    career_level: level as i32,
                    goals,
                    languages: languages(rng, false),
                    region: weighted(rng, REGIONS).to_owned(),
                    format: format as i32,
                    industry: weighted(rng, INDUSTRIES) as i32,
                    industry_preference: weighted(rng, &[(0, 50), (1, 30), (2, 20)]),
                    company_size_band: rng.random_range(1..=3),
                    employer_token: employer,
                    group_token: group,
                    home_node_id: String::new(),
                },
                proposed_before: HashSet::new(),
            }
        })
        .collect()
}
