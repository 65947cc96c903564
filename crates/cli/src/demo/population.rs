//! Believable synthetic people for the demo federation: three networks' mentors, member
//! companies and their young leaders, generated reproducibly from a seed.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use tandem_domain::pseudonym::normalise_registry_number;
use tandem_proto::{
    CareerLevel, CompanySizeBand, Format, Goal, Industry, IndustryPreference, MenteeRequest,
    Mentor, Topic,
};

/// One network of the demo federation.
#[derive(Debug, Clone)]
pub struct NetworkProfile {
    pub node_id: &'static str,
    pub display_name: &'static str,
    industries: &'static [Industry],
    regions: &'static [&'static str],
}

/// The demo's three networks: an industry association, a start-up network and a chamber.
pub const NETWORKS: [NetworkProfile; 3] = [
    NetworkProfile {
        node_id: "ind-assoc",
        display_name: "Southern Industry Association",
        industries: &[
            Industry::Manufacturing,
            Industry::Energy,
            Industry::Construction,
            Industry::Logistics,
            Industry::Crafts,
        ],
        regions: &["DE-BY", "DE-BY", "DE-BW", "DE-BW", "AT"],
    },
    NetworkProfile {
        node_id: "startup-net",
        display_name: "Berlin Start-up Network",
        industries: &[
            Industry::ItSoftware,
            Industry::CreativeMedia,
            Industry::FinanceInsurance,
            Industry::Health,
        ],
        regions: &["DE-BE", "DE-BE", "DE-HH", "DE-BY"],
    },
    NetworkProfile {
        node_id: "chamber",
        display_name: "Rhine Chamber of Commerce",
        industries: &[
            Industry::Trade,
            Industry::Hospitality,
            Industry::ProfessionalServices,
            Industry::AgricultureFood,
        ],
        regions: &["DE-NW", "DE-NW", "DE-HE", "DE-RP"],
    },
];

const FIRST_NAMES: &[&str] = &[
    "Anna",
    "Lukas",
    "Sophie",
    "Jonas",
    "Marie",
    "Felix",
    "Laura",
    "Paul",
    "Hannah",
    "Elias",
    "Lea",
    "Tobias",
    "Katharina",
    "David",
    "Julia",
    "Murat",
    "Aylin",
    "Piotr",
    "Giulia",
    "Ines",
    "Stefan",
    "Sabine",
    "Thomas",
    "Claudia",
    "Andreas",
    "Birgit",
    "Matthias",
    "Petra",
    "Klaus",
    "Monika",
];
const LAST_NAMES: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schulz",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hartmann",
    "Yilmaz",
    "Kowalski",
    "Rossi",
    "Lange",
    "Werner",
    "Krause",
];
const COMPANY_STEMS: &[&str] = &[
    "Alpen", "Rhein", "Nord", "Spree", "Isar", "Main", "Donau", "Elbe", "Weser", "Neckar",
    "Taunus", "Harz", "Eifel", "Allgäu", "Mosel", "Havel",
];
const COMPANY_KINDS: &[&str] = &[
    "Maschinenbau",
    "Energie",
    "Logistik",
    "Software",
    "Digital",
    "Bau",
    "Handel",
    "Consulting",
    "Foods",
    "Media",
    "Health",
    "Werkstätten",
    "Solar",
    "Labs",
];
/// Topics weighted by how often mentees ask for them.
const POPULAR_TOPICS: &[Topic] = &[
    Topic::Leadership,
    Topic::Leadership,
    Topic::Leadership,
    Topic::Strategy,
    Topic::Strategy,
    Topic::Financing,
    Topic::Financing,
    Topic::Sales,
    Topic::Digitalisation,
    Topic::Digitalisation,
    Topic::Hr,
    Topic::Hr,
    Topic::Internationalisation,
    Topic::Succession,
    Topic::Operations,
    Topic::Innovation,
    Topic::Sustainability,
    Topic::Negotiation,
    Topic::PersonalDevelopment,
    Topic::Marketing,
    Topic::FinanceControlling,
    Topic::Legal,
];

/// An employer: what the node knows about where a mentor works.
#[derive(Debug, Clone)]
pub struct Employer {
    pub name: String,
    pub registry_number: String,
    pub group_registry_number: String,
}

/// A member company that submits mentees. Its association keeps its name and register number;
/// the broker learns only the tokens of its membership.
#[derive(Debug, Clone)]
pub struct Company {
    /// The id the company uses towards the broker.
    pub id: String,
    pub name: String,
    pub registry_number: String,
    /// The network the company is a member of.
    pub home_node_id: &'static str,
    industry: Industry,
    size: CompanySizeBand,
    region: &'static str,
}

impl Company {
    /// Returns what the company's association records when it admits the company; the
    /// demo's company id serves as the association's reference.
    pub fn admission(&self) -> tandem_proto::Company {
        tandem_proto::Company {
            legal_name: self.name.clone(),
            register_number: self.registry_number.clone(),
            reference: self.id.clone(),
            ..Default::default()
        }
    }
}

/// A young leader a company submits, with the key it submits under.
#[derive(Debug, Clone)]
pub struct MenteeSeed {
    pub company: usize,
    pub idempotency_key: String,
    pub request: MenteeRequest,
}

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

fn pick<T: Copy>(rng: &mut ChaCha8Rng, options: &[T]) -> T {
    *options.choose(rng).unwrap_or(&options[0])
}

fn registry_number(rng: &mut ChaCha8Rng) -> String {
    let court = pick(
        rng,
        &[
            "München",
            "Stuttgart",
            "Berlin",
            "Hamburg",
            "Köln",
            "Frankfurt",
        ],
    );
    format!("HRB {} {court}", rng.random_range(10_000..99_999))
}

fn topics(rng: &mut ChaCha8Rng, count: usize) -> Vec<Topic> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let t = pick(rng, POPULAR_TOPICS);
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Generates the employers of one network's mentors; some belong to a corporate group.
pub fn employers(rng: &mut ChaCha8Rng, count: usize) -> Vec<Employer> {
    (0..count)
        .map(|i| {
            let group = if i % 5 == 4 {
                registry_number(rng)
            } else {
                String::new()
            };
            Employer {
                name: format!(
                    "{} {} {}",
                    pick(rng, COMPANY_STEMS),
                    pick(rng, COMPANY_KINDS),
                    pick(rng, &["GmbH", "AG", "GmbH & Co. KG", "SE"])
                ),
                registry_number: registry_number(rng),
                group_registry_number: group,
            }
        })
        .collect()
}

/// Generates a mentor of `network` working at one of `employers`.
pub fn mentor(rng: &mut ChaCha8Rng, network: &NetworkProfile, employers: &[Employer]) -> Mentor {
    let level = weighted(
        rng,
        &[
            (CareerLevel::TeamLead, 5),
            (CareerLevel::HeadOfDepartment, 30),
            (CareerLevel::Director, 35),
            (CareerLevel::Executive, 30),
        ],
    );
    let years = match level {
        CareerLevel::TeamLead => rng.random_range(6..14),
        CareerLevel::HeadOfDepartment => rng.random_range(10..22),
        _ => rng.random_range(15..38),
    };
    let title = match level {
        CareerLevel::TeamLead => "Team Lead",
        CareerLevel::HeadOfDepartment => pick(
            rng,
            &[
                "Head of Sales",
                "Head of Engineering",
                "Head of HR",
                "Head of Finance",
            ],
        ),
        CareerLevel::Director => pick(
            rng,
            &["Managing Director", "Director Operations", "Partner"],
        ),
        _ => pick(rng, &["CEO", "Founder", "Owner", "CFO", "COO"]),
    };
    let employer = pick_ref(rng, employers);
    let first = pick(rng, FIRST_NAMES);
    let last = pick(rng, LAST_NAMES);
    let mut industries = vec![pick(rng, network.industries)];
    if rng.random_bool(0.4) {
        let other = pick(rng, network.industries);
        if !industries.contains(&other) {
            industries.push(other);
        }
    }
    let expertise_count = rng.random_range(2..=5);
    let mut languages = vec!["de".to_owned()];
    if rng.random_bool(0.7) {
        languages.push("en".to_owned());
    }
    if rng.random_bool(0.1) {
        languages.push(pick(rng, &["fr", "tr", "it", "pl", "es"]).to_owned());
    }
    let mut formats = Vec::new();
    if rng.random_bool(0.8) {
        formats.push(Format::Remote as i32);
    }
    if rng.random_bool(0.5) {
        formats.push(Format::InPerson as i32);
    }
    if rng.random_bool(0.4) || formats.is_empty() {
        formats.push(Format::Hybrid as i32);
    }
    Mentor {
        display_name: format!("{first} {last}"),
        email: format!(
            "{}.{}@{}.example",
            ascii(first),
            ascii(last),
            ascii(employer.name.split(' ').next().unwrap_or("mail"))
        ),
        employer_name: employer.name.clone(),
        employer_registry_number: employer.registry_number.clone(),
        group_registry_number: employer.group_registry_number.clone(),
        title: title.to_owned(),
        career_level: level as i32,
        years_of_experience: years,
        industries: industries.into_iter().map(|i| i as i32).collect(),
        expertise: topics(rng, expertise_count)
            .into_iter()
            .map(|t| t as i32)
            .collect(),
        languages,
        region: pick(rng, network.regions).to_owned(),
        formats,
        capacity: weighted(rng, &[(1, 40), (2, 40), (3, 20)]),
        publication_consent: if rng.random_bool(0.92) {
            tandem_proto::PublicationConsent::Granted
        } else {
            tandem_proto::PublicationConsent::Refused
        } as i32,
        ..Mentor::default()
    }
}

fn pick_ref<'a, T>(rng: &mut ChaCha8Rng, options: &'a [T]) -> &'a T {
    &options[rng.random_range(0..options.len())]
}

fn ascii(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'ä' => Some('a'),
            'ö' => Some('o'),
            'ü' => Some('u'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn company_name(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{} {} GmbH",
        pick(rng, COMPANY_STEMS),
        pick(rng, COMPANY_KINDS)
    )
}

/// Generates member companies, each with its own register number; a few are employers of
/// mentors, so that the broker's same-employer rule has something to do.
pub fn companies(
    rng: &mut ChaCha8Rng,
    count: usize,
    mentor_employers: &[Employer],
) -> Vec<Company> {
    // A register number names one company: each is used once.
    let mut used = std::collections::HashSet::new();
    (0..count)
        .map(|i| {
            let network = pick_ref(rng, &NETWORKS);
            let (mut name, mut number) = if i % 10 == 3 && !mentor_employers.is_empty() {
                let e = pick_ref(rng, mentor_employers);
                (e.name.clone(), e.registry_number.clone())
            } else {
                (company_name(rng), registry_number(rng))
            };
            while !used.insert(normalise_registry_number(&number)) {
                (name, number) = (company_name(rng), registry_number(rng));
            }
            Company {
                id: format!("company-{i:03}"),
                name,
                registry_number: number,
                home_node_id: network.node_id,
                industry: pick(rng, network.industries),
                size: weighted(
                    rng,
                    &[
                        (CompanySizeBand::Micro, 35),
                        (CompanySizeBand::Small, 45),
                        (CompanySizeBand::Medium, 20),
                    ],
                ),
                region: pick(rng, network.regions),
            }
        })
        .collect()
}

/// Generates a mentee of `companies[company]`.
pub fn mentee(
    rng: &mut ChaCha8Rng,
    companies: &[Company],
    company: usize,
    number: usize,
) -> MenteeSeed {
    let c = &companies[company];
    let level = weighted(
        rng,
        &[
            (CareerLevel::Staff, 15),
            (CareerLevel::Specialist, 30),
            (CareerLevel::TeamLead, 35),
            (CareerLevel::HeadOfDepartment, 15),
            (CareerLevel::Director, 5),
        ],
    );
    let goal_count = weighted(rng, &[(1usize, 25), (2, 45), (3, 30)]);
    let goals = topics(rng, goal_count)
        .into_iter()
        .enumerate()
        .map(|(k, t)| Goal {
            topic: t as i32,
            priority: if k == 0 { 3 } else { rng.random_range(1..=3) },
        })
        .collect();
    let languages: Vec<String> = match rng.random_range(0..100) {
        0..=49 => vec!["de".into()],
        50..=84 => vec!["de".into(), "en".into()],
        85..=94 => vec!["en".into()],
        95..=97 => vec!["fr".into()],
        _ => vec!["uk".into()],
    };
    let format = weighted(
        rng,
        &[
            (Format::Remote, 55),
            (Format::Hybrid, 25),
            (Format::InPerson, 20),
        ],
    );
    let region = if format == Format::InPerson && rng.random_bool(0.15) {
        pick(rng, &["DE-SN", "DE-MV", "CH"]).to_owned()
    } else {
        c.region.to_owned()
    };
    MenteeSeed {
        company,
        idempotency_key: format!("{}-mentee-{number:04}", c.id),
        request: MenteeRequest {
            career_level: level as i32,
            goals,
            languages,
            region,
            preferred_format: format as i32,
            industry: c.industry as i32,
            industry_preference: weighted(
                rng,
                &[
                    (IndustryPreference::Unspecified, 50),
                    (IndustryPreference::Same, 30),
                    (IndustryPreference::Cross, 20),
                ],
            ) as i32,
            company_size_band: c.size as i32,
        },
    }
}
