//! What makes a pair good: the hard constraints a pair must meet, and the explained score that
//! ranks the pairs that do.

use serde::{Deserialize, Serialize};
use tandem_proto::{Format, IndustryPreference, ScoreReason};

use crate::model::{MenteeNeeds, MentorProfile};
use crate::taxonomy::{country_of, format_name, level_name, regions_meet, topic_name};

/// Scoring weights. Every criterion's points are an integer; the defaults are documented in the
/// README and can be changed in the broker's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreWeights {
    /// Points when the mentor covers all of the mentee's goals (scaled by covered priority).
    pub goal_coverage: i64,
    /// Points for the ideal level gap; each level away from it costs `level_gap / 3`.
    pub level_gap: i64,
    /// The level gap (mentor level minus mentee level) that scores best.
    pub ideal_level_gap: i32,
    /// Points when the industry matches the mentee's preference (same or cross industry).
    pub industry: i64,
    /// Points for the same region (half of it for the same country).
    pub region: i64,
    /// Points per experience band above the lowest and per expertise topic beyond the goals,
    /// rewarding broadly experienced mentors.
    pub breadth: i64,
}

impl ScoreWeights {
    /// Returns an upper bound on the points one pair can score: every positive weight in full,
    /// and eight units of breadth.
    pub fn best_pair(&self) -> i64 {
        [
            self.goal_coverage,
            self.level_gap,
            self.industry,
            self.region,
            self.breadth.saturating_mul(8),
        ]
        .iter()
        .fold(0i64, |sum, &w| sum.saturating_add(w.max(0)))
    }
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            goal_coverage: 1000,
            level_gap: 300,
            ideal_level_gap: 2,
            industry: 200,
            region: 100,
            breadth: 20,
        }
    }
}

/// Why a pair is not allowed, in the order the broker reports it for an unmatched mentee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Infeasible {
    /// No language in common.
    NoSharedLanguage,
    /// The mentor does not stand above the mentee.
    LevelNotAbove,
    /// The mentor does not offer the format, or cannot meet in the mentee's region.
    FormatOrRegion,
    /// The mentor covers none of the mentee's goals.
    NoGoalCovered,
    /// Same employer or corporate group: a direct working relationship.
    SameEmployer,
    /// This pair was proposed before.
    ProposedBefore,
    /// The mentor has no free place.
    NoCapacity,
}

impl Infeasible {
    /// Returns the check a stage number stands for (stages beyond the last check are capacity).
    pub fn from_stage(stage: u8) -> Self {
        match stage {
            0 => Self::NoSharedLanguage,
            1 => Self::LevelNotAbove,
            2 => Self::FormatOrRegion,
            3 => Self::NoGoalCovered,
            4 => Self::SameEmployer,
            5 => Self::ProposedBefore,
            _ => Self::NoCapacity,
        }
    }

    /// Returns the reason code a mentee carries while waiting.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoSharedLanguage => "no_shared_language",
            Self::LevelNotAbove => "no_mentor_above_level",
            Self::FormatOrRegion => "no_format_or_region_match",
            Self::NoGoalCovered => "no_goal_coverage",
            Self::SameEmployer => "same_employer_only",
            Self::ProposedBefore => "all_candidates_proposed_before",
            Self::NoCapacity => "mentors_full",
        }
    }

    /// Returns a sentence for a mentee whose every candidate failed at this check.
    pub fn detail(self) -> &'static str {
        match self {
            Self::NoSharedLanguage => "no mentor shares a language with the mentee",
            Self::LevelNotAbove => {
                "no mentor who shares a language stands above the mentee's level"
            }
            Self::FormatOrRegion => "no suitable mentor offers the preferred format in the region",
            Self::NoGoalCovered => "no suitable mentor covers any of the mentee's goals",
            Self::SameEmployer => "the only suitable mentors work for the same employer or group",
            Self::ProposedBefore => "every suitable mentor was proposed before",
            Self::NoCapacity => "all mentors covering the goals are full",
        }
    }
}

/// Code for a mentee who had feasible mentors with free places but lost them to higher-scoring
/// pairs in the round.
pub const OUTSCORED: &str = "outscored";
/// Sentence for [`OUTSCORED`].
pub const OUTSCORED_DETAIL: &str =
    "suitable mentors were assigned to mentees they fit better; waiting for the next round";

fn shares_language(mentee: &MenteeNeeds, mentor: &MentorProfile) -> bool {
    mentee
        .languages
        .iter()
        .any(|l| mentor.languages.contains(l))
}

fn format_fits(mentee: &MenteeNeeds, mentor: &MentorProfile) -> bool {
    let format = mentee.format();
    mentor.formats.contains(&format)
        && (!mentee.meets_in_person() || regions_meet(&mentee.region, &mentor.region))
}

fn same_employer(mentee: &MenteeNeeds, mentor: &MentorProfile) -> bool {
    let ours = [&mentee.employer_token, &mentee.group_token];
    ours.contains(&&mentor.employer_token) || ours.contains(&&mentor.group_token)
}

fn covers_a_goal(mentee: &MenteeNeeds, mentor: &MentorProfile) -> bool {
    mentee
        .goals
        .iter()
        .any(|g| mentor.expertise.contains(&g.topic()))
}

/// Checks the hard constraints of a pair that do not depend on history or capacity; returns the
/// first one broken, in the order of [`Infeasible`].
pub fn check_pair(mentee: &MenteeNeeds, mentor: &MentorProfile) -> Result<(), Infeasible> {
    if !shares_language(mentee, mentor) {
        Err(Infeasible::NoSharedLanguage)
    } else if mentor.career_level as i32 <= mentee.career_level {
        Err(Infeasible::LevelNotAbove)
    } else if !format_fits(mentee, mentor) {
        Err(Infeasible::FormatOrRegion)
    } else if !covers_a_goal(mentee, mentor) {
        Err(Infeasible::NoGoalCovered)
    } else if same_employer(mentee, mentor) {
        Err(Infeasible::SameEmployer)
    } else {
        Ok(())
    }
}

/// The score of a feasible pair and its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub total: i64,
    pub reasons: Vec<ScoreReason>,
}

fn reason(criterion: &str, points: i64, detail: String) -> ScoreReason {
    ScoreReason {
        criterion: criterion.to_owned(),
        points,
        detail,
    }
}

/// Scores a pair that passed [`check_pair`]. The total is at least 1 so that every feasible pair
/// is worth proposing.
pub fn score(mentee: &MenteeNeeds, mentor: &MentorProfile, w: &ScoreWeights) -> Score {
    let mut reasons = Vec::with_capacity(7);

    let total_priority: u32 = mentee.goals.iter().map(|g| g.priority).sum();
    let covered: Vec<_> = mentee
        .goals
        .iter()
        .filter(|g| mentor.expertise.contains(&g.topic()))
        .collect();
    let covered_priority: u32 = covered.iter().map(|g| g.priority).sum();
    let coverage = w.goal_coverage * i64::from(covered_priority) / i64::from(total_priority.max(1));
    let names: Vec<String> = covered.iter().map(|g| topic_name(g.topic())).collect();
    reasons.push(reason(
        "goal_coverage",
        coverage,
        format!(
            "covers {} of {} goals ({})",
            covered.len(),
            mentee.goals.len(),
            names.join(", ")
        ),
    ));

    let gap = mentor.career_level as i32 - mentee.career_level;
    let off = i64::from((gap - w.ideal_level_gap).abs());
    let level = (w.level_gap - off * w.level_gap / 3).max(0);
    reasons.push(reason(
        "level_gap",
        level,
        format!(
            "{} mentors {} ({} level{} above)",
            level_name(mentor.career_level),
            level_name(mentee.level()),
            gap,
            if gap == 1 { "" } else { "s" }
        ),
    ));

    let shares_industry = mentor.industries.contains(&mentee.industry());
    let (industry, detail) = match (mentee.industry_preference(), shares_industry) {
        (IndustryPreference::Same, true) => (w.industry, "knows the mentee's industry, as wished"),
        (IndustryPreference::Same, false) => (0, "from another industry (same was preferred)"),
        (IndustryPreference::Cross, false) => (w.industry, "brings an outside view, as wished"),
        (IndustryPreference::Cross, true) => (0, "same industry (an outside view was preferred)"),
        (IndustryPreference::Unspecified, true) => (w.industry / 4, "knows the mentee's industry"),
        (IndustryPreference::Unspecified, false) => (0, "from another industry"),
    };
    reasons.push(reason("industry", industry, detail.to_owned()));

    let (region, detail) = if mentee.region.is_empty() {
        (0, "region not given".to_owned())
    } else if mentee.region == mentor.region {
        (w.region, format!("same region {}", mentor.region))
    } else if country_of(&mentee.region) == country_of(&mentor.region) {
        (
            w.region / 2,
            format!("same country {}", country_of(&mentor.region)),
        )
    } else {
        (0, format!("different country ({})", mentor.region))
    };
    reasons.push(reason("region", region, detail));

    let experience = i64::from((mentor.experience_band as i32 - 1).max(0));
    let extra_topics = (mentor.expertise.len() - covered.len()).min(5) as i64;
    let breadth = w.breadth * (experience + extra_topics);
    reasons.push(reason(
        "breadth",
        breadth,
        format!(
            "{} expertise topics, experience band {}",
            mentor.expertise.len(),
            mentor.experience_band as i32
        ),
    ));

    let shared: Vec<&str> = mentee
        .languages
        .iter()
        .filter(|l| mentor.languages.contains(l))
        .map(String::as_str)
        .collect();
    reasons.push(reason(
        "languages",
        0,
        format!("shared: {}", shared.join(", ")),
    ));
    reasons.push(reason(
        "format",
        0,
        format_name(Format::try_from(mentee.format).unwrap_or_default()),
    ));

    let total = (coverage + level + industry + region + breadth).max(1);
    Score { total, reasons }
}
