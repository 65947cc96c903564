//! Mentors and mentees encoded for fast pair checks: languages, formats, topics and industries
//! as bit masks, regions and employer tokens as small integers, mentors as columns. A pair check
//! is a handful of integer operations, which lets a round look at every feasible pair of a
//! national network in about a second. [`Encoded::evaluate`] must agree with
//! [`tandem_domain::scoring::check_pair`] and [`tandem_domain::scoring::score`]; a property test holds them to it.

use std::collections::HashMap;

use tandem_proto::{Format, IndustryPreference};

use super::MenteeCandidate;
use tandem_domain::model::MentorProfile;
use tandem_domain::scoring::{Infeasible, ScoreWeights};
use tandem_domain::taxonomy::{country_of, language_index};

/// How far a pair got through the checks, in the order of [`Infeasible`]; `FEASIBLE` passed all.
pub type Stage = u8;
/// Stage of a pair that passed every check.
pub const FEASIBLE: Stage = 7;

/// Interns strings as consecutive ids.
#[derive(Debug, Clone, Default)]
struct Interner(HashMap<String, u32>);

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        let next = self.0.len() as u32;
        *self.0.entry(s.to_owned()).or_insert(next)
    }
}

/// A mentee, encoded.
#[derive(Debug, Clone)]
pub struct Mentee {
    pub(super) level: i32,
    pub(super) languages: Languages,
    pub(super) format: u8,
    pub(super) needs_region: bool,
    pub(super) region: u32,
    pub(super) has_region: bool,
    /// `(topic number, priority)` of each goal.
    pub(super) goals: Vec<(u32, u32)>,
    pub(super) goal_mask: u32,
    pub(super) total_priority: u32,
    pub(super) industry: u32,
    pub(super) preference: IndustryPreference,
    pub(super) employer: u32,
    pub(super) group: u32,
    /// Mentor indices proposed before, sorted.
    pub(super) proposed_before: Vec<u32>,
}

/// Mentors as columns, indexed like the round's mentor slice.
#[derive(Debug, Clone, Default)]
pub(super) struct Mentors {
    pub(super) level: Vec<i32>,
    pub(super) languages: Vec<Languages>,
    pub(super) formats: Vec<u8>,
    pub(super) region: Vec<u32>,
    pub(super) topics: Vec<u32>,
    pub(super) industries: Vec<u32>,
    /// Points for breadth before subtracting covered topics: experience part, topic count.
    pub(super) experience: Vec<i64>,
    pub(super) topic_count: Vec<i64>,
    pub(super) employer: Vec<u32>,
    pub(super) group: Vec<u32>,
    pub(super) capacity: Vec<u32>,
}

/// A round's mentees and mentors, encoded.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub mentees: Vec<Mentee>,
    pub(super) mentors: Mentors,
    /// For each region id: its country id and whether it names a whole country.
    pub(super) regions: Vec<(u32, bool)>,
    pub(super) weights: ScoreWeights,
    /// Added to every feasible pair's weight (see [`super::Priority`]).
    pub(super) bonus: i64,
    ids: Ids,
}

/// The interned names behind the encoded ids, kept so that mentees can be added later.
#[derive(Debug, Clone, Default)]
struct Ids {
    regions: Interner,
    countries: Interner,
    tokens: Interner,
    mentors: HashMap<(String, String), u32>,
}

/// A set of ISO 639-1 languages as a bit set over their positions in the code list.
pub(super) type Languages = [u64; 3];

fn languages(codes: &[String]) -> Languages {
    let mut set = [0u64; 3];
    // Unknown codes cannot pass validation; if one did, it would match nobody.
    for index in codes.iter().filter_map(|c| language_index(c)) {
        set[index / 64] |= 1 << (index % 64);
    }
    set
}

pub(super) fn share(a: &Languages, b: &Languages) -> bool {
    (a[0] & b[0]) | (a[1] & b[1]) | (a[2] & b[2]) != 0
}

fn format_bit(f: Format) -> u8 {
    1 << (f as i32).clamp(0, 7)
}

impl Encoded {
    /// Encodes a round's population.
    pub fn new(
        mentees: &[MenteeCandidate],
        mentors: &[MentorProfile],
        weights: &ScoreWeights,
    ) -> Self {
        let mut encoded = Self {
            mentees: Vec::with_capacity(mentees.len()),
            mentors: Mentors::default(),
            regions: Vec::new(),
            weights: weights.clone(),
            bonus: 0,
            ids: Ids::default(),
        };
        for p in mentors {
            let j = encoded.mentors.level.len() as u32;
            encoded
                .ids
                .mentors
                .insert((p.node_id.clone(), p.pseudonym.clone()), j);
            let region = encoded.region(&p.region);
            let m = &mut encoded.mentors;
            m.level.push(p.career_level as i32);
            m.languages.push(languages(&p.languages));
            m.formats
                .push(p.formats.iter().fold(0, |b, f| b | format_bit(*f)));
            m.region.push(region);
            m.topics.push(
                p.expertise
                    .iter()
                    .fold(0, |b, t| b | 1u32 << (*t as i32).clamp(0, 31)),
            );
            m.industries.push(
                p.industries
                    .iter()
                    .fold(0, |b, i| b | 1u32 << (*i as i32).clamp(0, 31)),
            );
            m.experience
                .push(i64::from((p.experience_band as i32 - 1).max(0)));
            m.topic_count.push(p.expertise.len() as i64);
            m.employer.push(encoded.ids.tokens.id(&p.employer_token));
            m.group.push(encoded.ids.tokens.id(&p.group_token));
            m.capacity.push(p.free_capacity);
        }
        for c in mentees {
            let e = encoded.encode_mentee(c);
            encoded.mentees.push(e);
        }
        encoded
    }

    fn region(&mut self, name: &str) -> u32 {
        let id = self.ids.regions.id(name);
        if id as usize == self.regions.len() {
            let country = self.ids.countries.id(country_of(name));
            self.regions.push((country, !name.contains('-')));
        }
        id
    }

    /// Encodes a mentee against this round's mentors (it is not added to the round).
    pub fn encode_mentee(&mut self, c: &MenteeCandidate) -> Mentee {
        let n = &c.needs;
        let mut proposed_before: Vec<u32> = c
            .proposed_before
            .iter()
            .filter_map(|key| self.ids.mentors.get(key).copied())
            .collect();
        proposed_before.sort_unstable();
        let goals: Vec<(u32, u32)> = n
            .goals
            .iter()
            .map(|g| (g.topic.clamp(0, 31) as u32, g.priority))
            .collect();
        Mentee {
            level: n.career_level,
            languages: languages(&n.languages),
            format: format_bit(n.format()),
            needs_region: n.meets_in_person(),
            region: self.region(&n.region),
            has_region: !n.region.is_empty(),
            goal_mask: goals.iter().fold(0, |b, (t, _)| b | 1 << t),
            total_priority: goals.iter().map(|g| g.1).sum(),
            goals,
            industry: 1u32 << n.industry.clamp(0, 31),
            preference: n.industry_preference(),
            employer: self.ids.tokens.id(&n.employer_token),
            group: self.ids.tokens.id(&n.group_token),
            proposed_before,
        }
    }

    /// Adds `bonus` to the weight of every feasible pair.
    pub fn set_pair_bonus(&mut self, bonus: i64) {
        self.bonus = bonus;
    }

    /// Returns the number of mentors.
    pub fn mentor_count(&self) -> usize {
        self.mentors.level.len()
    }

    pub(super) fn regions_meet(&self, a: u32, b: u32) -> bool {
        if a == b {
            return true;
        }
        let (ca, whole_a) = self.regions[a as usize];
        let (cb, whole_b) = self.regions[b as usize];
        ca == cb && (whole_a || whole_b)
    }

    /// Checks a pair and scores it: `Ok(score)` for a feasible pair, else the stage at which it
    /// failed (for explaining unmatched mentees).
    #[inline]
    pub fn evaluate(&self, e: &Mentee, j: usize) -> Result<i64, Stage> {
        let m = &self.mentors;
        if !share(&m.languages[j], &e.languages) {
            return Err(Infeasible::NoSharedLanguage as Stage);
        }
        if m.level[j] <= e.level {
            return Err(Infeasible::LevelNotAbove as Stage);
        }
        if m.formats[j] & e.format == 0
            || (e.needs_region && !(e.has_region && self.regions_meet(e.region, m.region[j])))
        {
            return Err(Infeasible::FormatOrRegion as Stage);
        }
        let covered_mask = m.topics[j] & e.goal_mask;
        if covered_mask == 0 {
            return Err(Infeasible::NoGoalCovered as Stage);
        }
        if m.employer[j] == e.employer
            || m.employer[j] == e.group
            || m.group[j] == e.employer
            || m.group[j] == e.group
        {
            return Err(Infeasible::SameEmployer as Stage);
        }
        if !e.proposed_before.is_empty() && e.proposed_before.binary_search(&(j as u32)).is_ok() {
            return Err(Infeasible::ProposedBefore as Stage);
        }
        if m.capacity[j] == 0 {
            return Err(Infeasible::NoCapacity as Stage);
        }
        Ok(self.score(e, j, covered_mask) + self.bonus)
    }

    fn score(&self, e: &Mentee, j: usize, covered_mask: u32) -> i64 {
        let w = &self.weights;
        let m = &self.mentors;
        let (mut covered_priority, mut covered) = (0u32, 0i64);
        for &(topic, priority) in &e.goals {
            if covered_mask >> topic & 1 == 1 {
                covered_priority += priority;
                covered += 1;
            }
        }
        let coverage =
            w.goal_coverage * i64::from(covered_priority) / i64::from(e.total_priority.max(1));
        let off = i64::from((m.level[j] - e.level - w.ideal_level_gap).abs());
        let level = (w.level_gap - off * w.level_gap / 3).max(0);
        let shares = m.industries[j] & e.industry != 0;
        let industry = match (e.preference, shares) {
            (IndustryPreference::Same, true) | (IndustryPreference::Cross, false) => w.industry,
            (IndustryPreference::Unspecified, true) => w.industry / 4,
            _ => 0,
        };
        let region = if !e.has_region {
            0
        } else if e.region == m.region[j] {
            w.region
        } else if self.regions[e.region as usize].0 == self.regions[m.region[j] as usize].0 {
            w.region / 2
        } else {
            0
        };
        let breadth = w.breadth * (m.experience[j] + (m.topic_count[j] - covered).min(5));
        (coverage + level + industry + region + breadth).max(1)
    }
}
