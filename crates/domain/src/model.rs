//! The domain's own types: what a mentor is at the node, what the broker knows of a mentor, and
//! what a mentee needs.

use serde::{Deserialize, Serialize};
use tandem_proto::{
    AnonymisedProfile, CareerLevel, CompanySizeBand, ExperienceBand, Format, Industry,
    IndustryPreference, Topic,
};

/// One goal of a mentee: a topic and its priority (1 to 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Goal {
    /// The topic, as its proto number.
    pub topic: i32,
    /// 1 (nice to have) to 3 (most important).
    pub priority: u32,
}

impl Goal {
    /// Returns the goal's topic.
    pub fn topic(&self) -> Topic {
        Topic::try_from(self.topic).unwrap_or(Topic::Unspecified)
    }
}

/// A mentor's full record as the node keeps it (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentorRecord {
    /// The association's own reference (member number); empty when none was given.
    pub member_number: String,
    pub display_name: String,
    pub email: String,
    pub employer_name: String,
    pub employer_registry_number: String,
    pub group_registry_number: String,
    pub title: String,
    pub career_level: CareerLevel,
    pub years_of_experience: u32,
    pub industries: Vec<Industry>,
    pub expertise: Vec<Topic>,
    pub languages: Vec<String>,
    pub region: String,
    pub formats: Vec<Format>,
    pub capacity: u32,
    pub publish_consent: bool,
}

/// What the broker knows of a mentor: the pseudonymised profile and the node it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentorProfile {
    pub node_id: String,
    pub pseudonym: String,
    pub career_level: CareerLevel,
    pub experience_band: ExperienceBand,
    pub industries: Vec<Industry>,
    pub expertise: Vec<Topic>,
    pub languages: Vec<String>,
    pub region: String,
    pub formats: Vec<Format>,
    /// Places available to this round.
    pub free_capacity: u32,
    pub employer_token: String,
    pub group_token: String,
}

impl MentorProfile {
    /// Builds the broker's view from a profile a node published.
    pub fn from_published(node_id: &str, p: &AnonymisedProfile) -> Self {
        Self {
            node_id: node_id.to_owned(),
            pseudonym: p.pseudonym.clone(),
            career_level: p.career_level(),
            experience_band: p.experience_band(),
            industries: p.industries().collect(),
            expertise: p.expertise().collect(),
            languages: p.languages.clone(),
            region: p.region.clone(),
            formats: p.formats().collect(),
            free_capacity: p.free_capacity,
            employer_token: p.employer_token.clone(),
            group_token: p.group_token.clone(),
        }
    }
}

/// What a mentee needs from a mentor (validated), as the broker keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenteeNeeds {
    pub career_level: i32,
    pub goals: Vec<Goal>,
    pub languages: Vec<String>,
    pub region: String,
    pub format: i32,
    pub industry: i32,
    pub industry_preference: i32,
    pub company_size_band: i32,
    /// The submitting company's employer and group tokens and its home node, from its
    /// membership ([`Employer`]), never from the request.
    pub employer_token: String,
    pub group_token: String,
    pub home_node_id: String,
}

/// A member company as association staff record it (validated); it stays at the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyRecord {
    pub legal_name: String,
    pub register_number: String,
    /// Empty when the company belongs to no group.
    pub group_register_number: String,
    /// The association's own reference; empty when none was given.
    pub reference: String,
}

/// Who submits a mentee, as the broker knows it from the company's membership: the tokens the
/// company's node computed from its register numbers, and that node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employer {
    pub employer_token: String,
    /// Equal to `employer_token` for a company without a group.
    pub group_token: String,
    /// The node that admitted the company.
    pub home_node_id: String,
}

impl MenteeNeeds {
    /// Returns the mentee's career level.
    pub fn level(&self) -> CareerLevel {
        CareerLevel::try_from(self.career_level).unwrap_or(CareerLevel::Unspecified)
    }

    /// Returns the preferred format.
    pub fn format(&self) -> Format {
        Format::try_from(self.format).unwrap_or(Format::Unspecified)
    }

    /// Returns the mentee's industry.
    pub fn industry(&self) -> Industry {
        Industry::try_from(self.industry).unwrap_or(Industry::Unspecified)
    }

    /// Returns the industry preference.
    pub fn industry_preference(&self) -> IndustryPreference {
        IndustryPreference::try_from(self.industry_preference)
            .unwrap_or(IndustryPreference::Unspecified)
    }

    /// Returns the company size band.
    pub fn company_size_band(&self) -> CompanySizeBand {
        CompanySizeBand::try_from(self.company_size_band).unwrap_or(CompanySizeBand::Unspecified)
    }

    /// Returns whether the preferred format needs meeting in person.
    pub fn meets_in_person(&self) -> bool {
        matches!(self.format(), Format::InPerson | Format::Hybrid)
    }

    /// Returns the request as the company submitted it.
    pub fn to_request(&self) -> tandem_proto::MenteeRequest {
        tandem_proto::MenteeRequest {
            career_level: self.career_level,
            goals: self
                .goals
                .iter()
                .map(|g| tandem_proto::Goal {
                    topic: g.topic,
                    priority: g.priority,
                })
                .collect(),
            languages: self.languages.clone(),
            region: self.region.clone(),
            preferred_format: self.format,
            industry: self.industry,
            industry_preference: self.industry_preference,
            company_size_band: self.company_size_band,
        }
    }

    /// Returns what a mentor's node may learn about the mentee: no company, no tokens, and the
    /// region only when they would meet in person.
    pub fn summary(&self) -> tandem_proto::MenteeSummary {
        tandem_proto::MenteeSummary {
            career_level: self.career_level,
            goals: self
                .goals
                .iter()
                .map(|g| tandem_proto::Goal {
                    topic: g.topic,
                    priority: g.priority,
                })
                .collect(),
            languages: self.languages.clone(),
            format: self.format,
            region: if self.meets_in_person() {
                self.region.clone()
            } else {
                String::new()
            },
            industry: self.industry,
            company_size_band: self.company_size_band,
        }
    }
}
