//! The shared taxonomy: language codes, regions, and readable names for the proto enumerations.

use tandem_proto::{CareerLevel, ExperienceBand, Format, Industry, Topic};

/// ISO 639-1 two-letter language codes.
const LANGUAGES: &str = "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce \
ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha \
he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku \
kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv \
ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st \
su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

/// Returns whether `code` is a lower-case ISO 639-1 language code.
pub fn is_language(code: &str) -> bool {
    language_index(code).is_some()
}

/// Returns the position of an ISO 639-1 code in the list of all codes (below 192).
pub fn language_index(code: &str) -> Option<usize> {
    if code.len() != 2 {
        return None;
    }
    LANGUAGES.split_ascii_whitespace().position(|c| c == code)
}

/// Returns whether `region` has the form of an ISO 3166 region: a country (`DE`) or a country
/// with a subdivision (`DE-BY`), in upper case. It need not exist; [`is_region`] says whether
/// it does.
pub fn has_region_shape(region: &str) -> bool {
    let (country, subdivision) = match region.split_once('-') {
        Some((c, s)) => (c, Some(s)),
        None => (region, None),
    };
    let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
    let sub_ok = subdivision.is_none_or(|s| {
        (1..=3).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    });
    country_ok && sub_ok
}

/// Returns whether `code` is an ISO 3166-1 alpha-2 country code (`DE`).
pub fn is_country(code: &str) -> bool {
    rust_iso3166::from_alpha2(code).is_some()
}

/// Returns whether `code` is an ISO 3166-2 subdivision code (`DE-BY`, `FR-75C`).
pub fn is_subdivision(code: &str) -> bool {
    rust_iso3166::iso3166_2::from_code(code).is_some()
}

/// Returns whether `region` is an ISO 3166 region that exists: a country (`DE`, ISO 3166-1
/// alpha-2) or one of its subdivisions (`DE-BY`, ISO 3166-2).
pub fn is_region(region: &str) -> bool {
    has_region_shape(region)
        && if region.contains('-') {
            is_subdivision(region)
        } else {
            is_country(region)
        }
}

/// Returns the country part of a region (`DE-BY` → `DE`).
pub fn country_of(region: &str) -> &str {
    region.split_once('-').map_or(region, |(c, _)| c)
}

/// Returns whether two regions are close enough to meet in person: the same region, or one is
/// the country the other lies in (a country-level region is the generalised form).
pub fn regions_meet(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    a == b || (country_of(a) == country_of(b) && (!a.contains('-') || !b.contains('-')))
}

/// Returns the experience band for a number of years.
pub fn experience_band(years: u32) -> ExperienceBand {
    match years {
        0..=4 => ExperienceBand::Under5,
        5..=9 => ExperienceBand::FiveToNine,
        10..=19 => ExperienceBand::TenToNineteen,
        _ => ExperienceBand::TwentyPlus,
    }
}

/// Returns the band a node publishes when it widens experience bands for k-anonymity: the four
/// bands merge into two (under 10 years, 10 years and more), each published as its lower
/// member, so a widened profile never claims more experience than the mentor has.
pub fn widened_experience_band(band: ExperienceBand) -> ExperienceBand {
    match band {
        ExperienceBand::Unspecified => ExperienceBand::Unspecified,
        ExperienceBand::Under5 | ExperienceBand::FiveToNine => ExperienceBand::Under5,
        ExperienceBand::TenToNineteen | ExperienceBand::TwentyPlus => ExperienceBand::TenToNineteen,
    }
}

/// The industry sections a node generalises an industry to for k-anonymity.
const INDUSTRY_SECTIONS: [&[Industry]; 4] = [
    // Production.
    &[
        Industry::Manufacturing,
        Industry::Construction,
        Industry::Energy,
        Industry::AgricultureFood,
        Industry::Crafts,
    ],
    // Commerce and services.
    &[Industry::Trade, Industry::Logistics, Industry::Hospitality],
    // Knowledge and digital.
    &[
        Industry::ItSoftware,
        Industry::FinanceInsurance,
        Industry::ProfessionalServices,
        Industry::CreativeMedia,
    ],
    // Health and education.
    &[Industry::Health, Industry::Education],
];

/// Returns the industries of the section `industry` belongs to (production, commerce,
/// knowledge, health and education), in enumeration order. A profile generalised to a section
/// lists all of them: the mentor works in one of these. An unspecified industry is its own
/// section.
pub fn industry_section(industry: Industry) -> Vec<Industry> {
    let mut section = INDUSTRY_SECTIONS
        .iter()
        .find(|s| s.contains(&industry))
        .map_or_else(|| vec![industry], |s| s.to_vec());
    section.sort_by_key(|&i| i as i32);
    section
}

fn readable(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', " ")
}

/// Returns a topic's readable name ("finance controlling").
pub fn topic_name(topic: Topic) -> String {
    readable(topic.as_str_name(), "TOPIC_")
}

/// Returns an industry's readable name ("it software").
pub fn industry_name(industry: Industry) -> String {
    readable(industry.as_str_name(), "INDUSTRY_")
}

/// Returns a career level's readable name ("head of department").
pub fn level_name(level: CareerLevel) -> String {
    readable(level.as_str_name(), "CAREER_LEVEL_")
}

/// Returns a format's readable name ("in person").
pub fn format_name(format: Format) -> String {
    readable(format.as_str_name(), "FORMAT_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_iso_639_1() {
        assert!(is_language("de"));
        assert!(is_language("en"));
        assert!(!is_language("xx"));
        assert!(!is_language("DE"));
        assert!(!is_language("deu"));
    }

    #[test]
    fn regions_have_iso_3166_shape() {
        assert!(has_region_shape("DE"));
        assert!(has_region_shape("DE-BY"));
        assert!(has_region_shape("AT-9"));
        assert!(
            has_region_shape("XX-YY"),
            "well-formed, though it does not exist"
        );
        assert!(!has_region_shape("de-by"));
        assert!(!has_region_shape("Bavaria"));
        assert!(!has_region_shape(""));
    }

    #[test]
    fn regions_exist_in_iso_3166() {
        for real in [
            "DE", "AT", "CH", "FR", "DE-BY", "DE-BE", "AT-9", "FR-75C", "FR-IDF",
        ] {
            assert!(is_region(real), "{real}");
        }
        for fake in [
            "XX-YY", "ZZ", "DE-XX", "AT-99", "de-by", "Bavaria", "", "DE-",
        ] {
            assert!(!is_region(fake), "{fake:?}");
        }
        assert!(is_country("DE") && !is_country("ZZ"));
        assert!(is_subdivision("DE-BY") && !is_subdivision("XX-YY"));
    }

    #[test]
    fn a_country_meets_its_subdivisions() {
        assert!(regions_meet("DE-BY", "DE-BY"));
        assert!(regions_meet("DE", "DE-BY"));
        assert!(!regions_meet("DE-BE", "DE-BY"));
        assert!(!regions_meet("AT", "DE-BY"));
    }

    #[test]
    fn every_industry_has_one_section() {
        for number in 1..=14 {
            let industry = Industry::try_from(number).expect("known industry");
            let section = industry_section(industry);
            assert!(section.contains(&industry), "{industry:?}");
            assert!(section.len() > 1, "{industry:?}");
            for other in &section {
                assert_eq!(industry_section(*other), section);
            }
        }
        assert_eq!(
            industry_section(Industry::Unspecified),
            vec![Industry::Unspecified]
        );
    }

    #[test]
    fn widened_bands_never_overstate() {
        assert_eq!(
            widened_experience_band(ExperienceBand::FiveToNine),
            ExperienceBand::Under5
        );
        assert_eq!(
            widened_experience_band(ExperienceBand::TwentyPlus),
            ExperienceBand::TenToNineteen
        );
    }

    #[test]
    fn names_are_readable() {
        assert_eq!(topic_name(Topic::FinanceControlling), "finance controlling");
        assert_eq!(
            level_name(CareerLevel::HeadOfDepartment),
            "head of department"
        );
    }
}
