//! k-anonymity over the quasi-identifiers a node publishes: career level, experience band,
//! region and industry.
//!
//! A mentor's published industry is one value: the first industry of the record (or, once
//! generalised, that industry's whole section). Every published combination of the four must
//! be shared by at least k published profiles. Profiles in smaller groups climb a ladder of
//! generalisation — region to country, then experience band widened, then industry to its
//! section — and what is still in a group smaller than k is suppressed. The result is checked
//! once more at the end, and when the check fails the node publishes nothing (it fails closed).

use std::collections::HashMap;

use tandem_domain::taxonomy::{
    country_of, experience_band, industry_section, widened_experience_band,
};
use tandem_proto::Industry;

/// How far a profile's quasi-identifiers were generalised; each level includes the ones below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Generalisation {
    /// Published as recorded.
    Exact = 0,
    /// Region published as its country (`DE-BY` → `DE`).
    Country = 1,
    /// Experience band widened to one of two bands.
    WideBand = 2,
    /// Industry published as its section.
    Section = 3,
}

impl Generalisation {
    const LADDER: [Generalisation; 4] = [
        Generalisation::Exact,
        Generalisation::Country,
        Generalisation::WideBand,
        Generalisation::Section,
    ];
}

/// The quasi-identifiers of one consenting mentor, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuasiIdentifiers {
    /// `CareerLevel` number; never generalised (matching needs the level gap).
    pub career_level: i32,
    pub years_of_experience: u32,
    /// ISO 3166 region, a country or a subdivision.
    pub region: String,
    /// `Industry` number of the mentor's first industry (0 when none).
    pub industry: i32,
}

/// The quasi-identifiers as published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublishedForm {
    pub career_level: i32,
    /// `ExperienceBand` number.
    pub experience_band: i32,
    pub region: String,
    /// `Industry` numbers: one industry, or every industry of a section.
    pub industries: Vec<i32>,
    pub generalisation: Generalisation,
}

impl PublishedForm {
    /// The combination k-anonymity counts: everything but the generalisation level, which the
    /// broker does not see.
    fn key(&self) -> (i32, i32, &str, &[i32]) {
        (
            self.career_level,
            self.experience_band,
            &self.region,
            &self.industries,
        )
    }
}

/// What to publish of a population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One entry per input record, in input order: its published form, or `None` when the
    /// profile is suppressed.
    pub forms: Vec<Option<PublishedForm>>,
    /// Published profiles whose quasi-identifiers were generalised.
    pub generalised: u32,
    /// Records not published.
    pub suppressed: u32,
    /// True when there were records but none is published: too few share any combination,
    /// or the final check failed and the node fails closed.
    pub withheld: bool,
}

/// Returns the published form of `qi` at generalisation level `level`.
pub fn generalise(qi: &QuasiIdentifiers, level: Generalisation) -> PublishedForm {
    let band = experience_band(qi.years_of_experience);
    let band = if level >= Generalisation::WideBand {
        widened_experience_band(band)
    } else {
        band
    };
    let region = if level >= Generalisation::Country {
        country_of(&qi.region).to_owned()
    } else {
        qi.region.clone()
    };
    let industry = Industry::try_from(qi.industry).unwrap_or(Industry::Unspecified);
    let industries = if level >= Generalisation::Section {
        industry_section(industry)
            .into_iter()
            .map(|i| i as i32)
            .collect()
    } else {
        vec![industry as i32]
    };
    PublishedForm {
        career_level: qi.career_level,
        experience_band: band as i32,
        region,
        industries,
        generalisation: level,
    }
}

/// Returns a k-anonymous publication of `records`: every published combination occurs at least
/// `k` times. Deterministic for the same input.
pub fn anonymise(records: &[QuasiIdentifiers], k: u32) -> Plan {
    let k = k.max(1) as usize;
    let mut forms: Vec<Option<PublishedForm>> = vec![None; records.len()];
    // Records still looking for a level at which their group is large enough.
    let mut open: Vec<usize> = (0..records.len()).collect();
    for level in Generalisation::LADDER {
        if open.is_empty() {
            break;
        }
        // Settled profiles stay in the count: a group they already form only grows when more
        // profiles join it at a higher level.
        let candidates: Vec<(usize, PublishedForm)> = open
            .iter()
            .map(|&i| (i, generalise(&records[i], level)))
            .collect();
        let mut counts: HashMap<(i32, i32, &str, &[i32]), usize> = HashMap::new();
        for form in forms.iter().flatten() {
            *counts.entry(form.key()).or_default() += 1;
        }
        for (_, form) in &candidates {
            *counts.entry(form.key()).or_default() += 1;
        }
        // All open members of a group get the same decision, so no settled group loses a
        // member later.
        let settle: Vec<bool> = candidates
            .iter()
            .map(|(_, form)| counts.get(&form.key()).copied().unwrap_or(0) >= k)
            .collect();
        let mut still_open = Vec::new();
        for ((i, form), settle) in candidates.into_iter().zip(settle) {
            if settle {
                forms[i] = Some(form);
            } else {
                still_open.push(i);
            }
        }
        open = still_open;
    }
    // What is left is suppressed: a group below k at the highest level holds no settled
    // profile, so removing it breaks no published group.
    let plan = Plan {
        generalised: count(
            forms
                .iter()
                .flatten()
                .filter(|f| f.generalisation > Generalisation::Exact),
        ),
        suppressed: count(forms.iter().filter(|f| f.is_none())),
        forms,
        withheld: false,
    };
    if is_k_anonymous(plan.forms.iter().flatten(), k) {
        let withheld = !records.is_empty() && plan.suppressed == count(records.iter());
        Plan { withheld, ..plan }
    } else {
        // Fail closed: never a batch that breaks k.
        Plan {
            forms: vec![None; records.len()],
            generalised: 0,
            suppressed: count(records.iter()),
            withheld: true,
        }
    }
}

/// Returns whether every combination among `forms` occurs at least `k` times.
pub fn is_k_anonymous<'a>(forms: impl IntoIterator<Item = &'a PublishedForm>, k: usize) -> bool {
    let mut counts: HashMap<(i32, i32, &str, &[i32]), usize> = HashMap::new();
    for form in forms {
        *counts.entry(form.key()).or_default() += 1;
    }
    counts.values().all(|&n| n >= k)
}

fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_proto::{CareerLevel, ExperienceBand};

    fn band(form: &PublishedForm) -> ExperienceBand {
        ExperienceBand::try_from(form.experience_band).unwrap_or_default()
    }

    fn qi(level: CareerLevel, years: u32, region: &str, industry: Industry) -> QuasiIdentifiers {
        QuasiIdentifiers {
            career_level: level as i32,
            years_of_experience: years,
            region: region.to_owned(),
            industry: industry as i32,
        }
    }

    #[test]
    fn k_of_one_publishes_everything_exactly() {
        let records = vec![
            qi(CareerLevel::Director, 22, "DE-BY", Industry::Energy),
            qi(CareerLevel::Executive, 3, "DE-BE", Industry::Trade),
        ];
        let plan = anonymise(&records, 1);
        assert_eq!(plan.suppressed, 0);
        assert_eq!(plan.generalised, 0);
        let first = plan.forms[0].as_ref().expect("published");
        assert_eq!(first.region, "DE-BY");
        assert_eq!(first.industries, vec![Industry::Energy as i32]);
        assert_eq!(band(first), ExperienceBand::TwentyPlus);
    }

    #[test]
    fn small_groups_climb_the_ladder() {
        // Three in Bavaria and two in Berlin, same level, band and industry: only the country
        // makes a group of five.
        let mut records = vec![qi(CareerLevel::Director, 22, "DE-BY", Industry::Energy); 3];
        records.extend(vec![
            qi(CareerLevel::Director, 25, "DE-BE", Industry::Energy);
            2
        ]);
        let plan = anonymise(&records, 5);
        assert_eq!(plan.suppressed, 0);
        assert_eq!(plan.generalised, 5);
        for form in plan.forms.iter().flatten() {
            assert_eq!(form.region, "DE");
            assert_eq!(form.generalisation, Generalisation::Country);
        }
    }

    #[test]
    fn industries_generalise_to_their_section() {
        let mut records = vec![qi(CareerLevel::Director, 22, "DE-BY", Industry::Energy); 3];
        records.extend(vec![
            qi(CareerLevel::Director, 12, "DE-BY", Industry::Crafts);
            3
        ]);
        let plan = anonymise(&records, 5);
        assert_eq!(plan.suppressed, 0);
        let section: Vec<i32> = industry_section(Industry::Energy)
            .into_iter()
            .map(|i| i as i32)
            .collect();
        for form in plan.forms.iter().flatten() {
            assert_eq!(form.industries, section);
            assert_eq!(band(form), ExperienceBand::TenToNineteen);
        }
    }

    #[test]
    fn outliers_are_suppressed_and_groups_kept() {
        let mut records = vec![qi(CareerLevel::Director, 22, "DE-BY", Industry::Energy); 5];
        records.push(qi(CareerLevel::Staff, 1, "AT-9", Industry::Health));
        let plan = anonymise(&records, 5);
        assert_eq!(plan.suppressed, 1);
        assert_eq!(plan.generalised, 0);
        assert!(plan.forms[5].is_none());
        assert!(!plan.withheld);
    }

    #[test]
    fn fewer_than_k_publish_nothing() {
        let records = vec![qi(CareerLevel::Director, 22, "DE-BY", Industry::Energy); 4];
        let plan = anonymise(&records, 5);
        assert!(plan.forms.iter().all(Option::is_none));
        assert_eq!(plan.suppressed, 4);
        assert!(plan.withheld);
        assert!(!anonymise(&[], 5).withheld);
    }
}
