//! Validation of everything that enters the federation: mentees from companies, mentor records
//! from association staff, and profiles from nodes. Each check names the offending field.

use std::collections::HashSet;

use tandem_proto::{
    AnonymisedProfile, CareerLevel, CompanySizeBand, ExperienceBand, Format, Industry,
    IndustryPreference, MenteeRequest, Mentor, PublicationConsent, Topic,
};

use crate::error::ValidationError;
use crate::model::{Goal, MenteeNeeds, MentorRecord};
use crate::taxonomy::{is_language, is_region};

/// Most goals a mentee may have.
pub const MAX_GOALS: usize = 5;
/// Most places a mentor may offer.
pub const MAX_CAPACITY: u32 = 10;
/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// Longest free-text field of a mentor record.
const MAX_TEXT: usize = 200;
/// Most entries in any list field.
const MAX_LIST: usize = 20;

type Result<T> = std::result::Result<T, ValidationError>;

fn enum_value<E: TryFrom<i32>>(field: &str, value: i32, what: &str) -> Result<E> {
    if value == 0 {
        return Err(ValidationError::new(field, format!("{what} is required")));
    }
    E::try_from(value).map_err(|_| ValidationError::new(field, format!("unknown {what} {value}")))
}

fn enum_list<E: TryFrom<i32> + PartialEq + Copy>(
    field: &str,
    values: &[i32],
    what: &str,
    required: bool,
) -> Result<Vec<E>> {
    if required && values.is_empty() {
        return Err(ValidationError::new(
            field,
            format!("at least one {what} is required"),
        ));
    }
    if values.len() > MAX_LIST {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_LIST} entries"),
        ));
    }
    let mut out: Vec<E> = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let e = enum_value(&format!("{field}[{i}]"), *v, what)?;
        if out.contains(&e) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!("duplicate {what}"),
            ));
        }
        out.push(e);
    }
    Ok(out)
}

fn languages(field: &str, codes: &[String]) -> Result<Vec<String>> {
    if codes.is_empty() {
        return Err(ValidationError::new(
            field,
            "at least one language is required",
        ));
    }
    if codes.len() > MAX_LIST {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_LIST} entries"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, code) in codes.iter().enumerate() {
        if !is_language(code) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!("unknown language code {code:?} (expected ISO 639-1, e.g. \"de\")"),
            ));
        }
        if !seen.insert(code) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                "duplicate language",
            ));
        }
    }
    Ok(codes.to_vec())
}

fn region(field: &str, value: &str, required: bool) -> Result<String> {
    if value.is_empty() && !required {
        return Ok(String::new());
    }
    if !is_region(value) {
        return Err(ValidationError::new(
            field,
            format!("invalid region {value:?} (expected ISO 3166, e.g. \"DE\" or \"DE-BY\")"),
        ));
    }
    Ok(value.to_owned())
}

/// Longest member number an association may give a mentor.
pub const MAX_MEMBER_NUMBER: usize = 64;

/// Checks an association's own reference for a mentor: optional, at most
/// [`MAX_MEMBER_NUMBER`] printable characters, surrounding spaces ignored.
pub fn member_number(field: &str, value: &str) -> Result<String> {
    let value = text(field, value, false)?;
    if value.chars().count() > MAX_MEMBER_NUMBER {
        return Err(ValidationError::new(
            field,
            format!("longer than {MAX_MEMBER_NUMBER} characters"),
        ));
    }
    Ok(value)
}

fn text(field: &str, value: &str, required: bool) -> Result<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(ValidationError::new(
            field,
            format!("longer than {MAX_TEXT} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "contains control characters"));
    }
    Ok(value.to_owned())
}

/// Returns whether `token` is an employer or group token: 64 lower-case hex characters.
pub fn is_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn token(field: &str, value: &str) -> Result<String> {
    if !is_token(value) {
        return Err(ValidationError::new(
            field,
            "must be 64 lower-case hex characters",
        ));
    }
    Ok(value.to_owned())
}

/// Checks an idempotency key: 1 to 128 printable ASCII characters.
pub fn idempotency_key(key: &str) -> Result<()> {
    const FIELD: &str = "idempotency_key";
    if key.is_empty() {
        return Err(ValidationError::new(FIELD, "is required"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ValidationError::new(FIELD, "longer than 128 characters"));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new(
            FIELD,
            "must be printable ascii without spaces",
        ));
    }
    Ok(())
}

/// Checks a node id: 2 to 64 characters of `a-z`, `0-9` and `-`.
pub fn node_id(field: &str, id: &str) -> Result<()> {
    let ok = (2..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be 2 to 64 characters of a-z, 0-9 and -",
        ))
    }
}

/// Longest company id.
pub const MAX_COMPANY_ID: usize = 128;
/// Longest label of an API key.
pub const MAX_LABEL: usize = 200;
/// Longest display name of a node.
pub const MAX_DISPLAY_NAME: usize = 200;

/// Checks a company id: 1 to 128 printable ASCII characters without spaces.
pub fn company_id(field: &str, company: &str) -> Result<()> {
    let printable = company.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if company.is_empty() || company.len() > MAX_COMPANY_ID || !printable {
        return Err(ValidationError::new(
            field,
            format!("must be 1 to {MAX_COMPANY_ID} printable ascii characters without spaces"),
        ));
    }
    Ok(())
}

/// Checks the label of an API key (a note for people): at most 200 characters, no control
/// characters.
pub fn label(field: &str, label: &str) -> Result<()> {
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_LABEL} characters, no control characters"),
        ));
    }
    Ok(())
}

/// Checks a node's display name and returns it trimmed: at most 200 characters, no control
/// characters.
pub fn display_name<'a>(field: &str, name: &'a str) -> Result<&'a str> {
    let name = name.trim();
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(ValidationError::new(
            field,
            format!("longer than {MAX_DISPLAY_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "contains control characters"));
    }
    Ok(name)
}

/// Checks a node endpoint: an `http://` or `https://` URL a gRPC client can dial.
pub fn endpoint(field: &str, endpoint: &str) -> Result<()> {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(ValidationError::new(
            field,
            "must start with http:// or https://",
        ));
    }
    if http::Uri::try_from(endpoint).is_err() {
        return Err(ValidationError::new(field, "is not a valid url"));
    }
    Ok(())
}

/// Checks that an endpoint's scheme fits the transport: `https://` when the broker calls
/// nodes over mutual TLS, `http://` when it runs without TLS (development only).
pub fn endpoint_scheme(field: &str, endpoint: &str, tls: bool) -> Result<()> {
    match (tls, endpoint.starts_with("https://")) {
        (true, false) => Err(ValidationError::new(
            field,
            "must start with https:// (the broker calls nodes over mutual tls)",
        )),
        (false, true) => Err(ValidationError::new(
            field,
            "must start with http:// (the broker runs without tls)",
        )),
        _ => Ok(()),
    }
}

/// Validates a mentee a company submits and returns what the broker keeps.
pub fn mentee(m: &MenteeRequest) -> Result<MenteeNeeds> {
    let level: CareerLevel = enum_value("mentee.career_level", m.career_level, "career level")?;
    if level == CareerLevel::Executive {
        return Err(ValidationError::new(
            "mentee.career_level",
            "no mentor level stands above executive",
        ));
    }
    if m.goals.is_empty() {
        return Err(ValidationError::new(
            "mentee.goals",
            "at least one goal is required",
        ));
    }
    if m.goals.len() > MAX_GOALS {
        return Err(ValidationError::new(
            "mentee.goals",
            format!("at most {MAX_GOALS} goals"),
        ));
    }
    let mut goals = Vec::with_capacity(m.goals.len());
    for (i, g) in m.goals.iter().enumerate() {
        let topic: Topic = enum_value(&format!("mentee.goals[{i}].topic"), g.topic, "topic")?;
        if goals.iter().any(|x: &Goal| x.topic == topic as i32) {
            return Err(ValidationError::new(
                format!("mentee.goals[{i}].topic"),
                "duplicate topic",
            ));
        }
        if !(1..=3).contains(&g.priority) {
            return Err(ValidationError::new(
                format!("mentee.goals[{i}].priority"),
                "must be 1 to 3",
            ));
        }
        goals.push(Goal {
            topic: topic as i32,
            priority: g.priority,
        });
    }
    let languages = languages("mentee.languages", &m.languages)?;
    let format: Format = enum_value("mentee.preferred_format", m.preferred_format, "format")?;
    let in_person = matches!(format, Format::InPerson | Format::Hybrid);
    let region = region("mentee.region", &m.region, in_person)?;
    let industry: Industry = enum_value("mentee.industry", m.industry, "industry")?;
    IndustryPreference::try_from(m.industry_preference).map_err(|_| {
        ValidationError::new("mentee.industry_preference", "unknown industry preference")
    })?;
    let size: CompanySizeBand = enum_value(
        "mentee.company_size_band",
        m.company_size_band,
        "company size band",
    )?;
    let employer_token = token("mentee.employer_token", &m.employer_token)?;
    let group_token = if m.group_token.is_empty() {
        employer_token.clone()
    } else {
        token("mentee.group_token", &m.group_token)?
    };
    if !m.home_node_id.is_empty() {
        node_id("mentee.home_node_id", &m.home_node_id)?;
    }
    Ok(MenteeNeeds {
        career_level: level as i32,
        goals,
        languages,
        region,
        format: format as i32,
        industry: industry as i32,
        industry_preference: m.industry_preference,
        company_size_band: size as i32,
        employer_token,
        group_token,
        home_node_id: m.home_node_id.clone(),
    })
}

/// Validates a mentor record that association staff create or update.
pub fn mentor(m: &Mentor) -> Result<MentorRecord> {
    let display_name = text("mentor.display_name", &m.display_name, true)?;
    let email = text("mentor.email", &m.email, true)?;
    let valid_email = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(' ')
    });
    if !valid_email {
        return Err(ValidationError::new(
            "mentor.email",
            "not an e-mail address",
        ));
    }
    let employer_name = text("mentor.employer_name", &m.employer_name, true)?;
    let employer_registry_number = text(
        "mentor.employer_registry_number",
        &m.employer_registry_number,
        true,
    )?;
    let group_registry_number = text(
        "mentor.group_registry_number",
        &m.group_registry_number,
        false,
    )?;
    let title = text("mentor.title", &m.title, false)?;
    let career_level: CareerLevel =
        enum_value("mentor.career_level", m.career_level, "career level")?;
    if career_level == CareerLevel::Staff {
        return Err(ValidationError::new(
            "mentor.career_level",
            "a mentor must stand above staff level",
        ));
    }
    if m.years_of_experience > 60 {
        return Err(ValidationError::new(
            "mentor.years_of_experience",
            "must be 0 to 60",
        ));
    }
    let industries = enum_list("mentor.industries", &m.industries, "industry", true)?;
    let expertise = enum_list("mentor.expertise", &m.expertise, "topic", true)?;
    let languages = languages("mentor.languages", &m.languages)?;
    let region = region("mentor.region", &m.region, true)?;
    let formats = enum_list("mentor.formats", &m.formats, "format", true)?;
    if !(1..=MAX_CAPACITY).contains(&m.capacity) {
        return Err(ValidationError::new(
            "mentor.capacity",
            format!("must be 1 to {MAX_CAPACITY}, got {}", m.capacity),
        ));
    }
    let publish_consent = match PublicationConsent::try_from(m.publication_consent) {
        Ok(PublicationConsent::Granted) => true,
        Ok(PublicationConsent::Refused) => false,
        _ => {
            return Err(ValidationError::new(
                "mentor.publication_consent",
                "is required: GRANTED or REFUSED",
            ));
        }
    };
    let member_number = member_number("mentor.member_number", &m.member_number)?;
    Ok(MentorRecord {
        member_number,
        display_name,
        email,
        employer_name,
        employer_registry_number,
        group_registry_number,
        title,
        career_level,
        years_of_experience: m.years_of_experience,
        industries,
        expertise,
        languages,
        region,
        formats,
        capacity: m.capacity,
        publish_consent,
    })
}

/// Checks a profile a node published before the broker stores it: enumerations in range, token
/// and pseudonym formats, sizes. The broker rejects the batch rather than storing garbage.
pub fn profile(field: &str, p: &AnonymisedProfile) -> Result<()> {
    if !is_token(&p.pseudonym) {
        return Err(ValidationError::new(
            format!("{field}.pseudonym"),
            "must be 64 lower-case hex characters",
        ));
    }
    enum_value::<CareerLevel>(
        &format!("{field}.career_level"),
        p.career_level,
        "career level",
    )?;
    enum_value::<ExperienceBand>(
        &format!("{field}.experience_band"),
        p.experience_band,
        "experience band",
    )?;
    enum_list::<Industry>(
        &format!("{field}.industries"),
        &p.industries,
        "industry",
        true,
    )?;
    enum_list::<Topic>(&format!("{field}.expertise"), &p.expertise, "topic", true)?;
    languages(&format!("{field}.languages"), &p.languages)?;
    region(&format!("{field}.region"), &p.region, true)?;
    enum_list::<Format>(&format!("{field}.formats"), &p.formats, "format", true)?;
    if p.free_capacity > MAX_CAPACITY {
        return Err(ValidationError::new(
            format!("{field}.free_capacity"),
            format!("must be at most {MAX_CAPACITY}"),
        ));
    }
    token(&format!("{field}.employer_token"), &p.employer_token)?;
    token(&format!("{field}.group_token"), &p.group_token)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_ids_are_checked() {
        assert!(company_id("company", "acme-gmbh").is_ok());
        for bad in ["", "a b", &"x".repeat(129)] {
            assert!(company_id("company", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn endpoints_and_their_schemes_are_checked() {
        assert!(endpoint("endpoint", "https://node.example:7001").is_ok());
        for bad in ["node.example:7001", "ftp://node", "https://exa mple"] {
            assert!(endpoint("endpoint", bad).is_err(), "{bad:?}");
        }
        assert!(endpoint_scheme("endpoint", "http://n", true).is_err());
        assert!(endpoint_scheme("endpoint", "https://n", false).is_err());
        assert!(endpoint_scheme("endpoint", "https://n", true).is_ok());
    }

    #[test]
    fn labels_and_display_names_are_bounded_and_printable() {
        assert!(label("label", "front desk").is_ok());
        assert!(label("label", &"x".repeat(201)).is_err());
        assert!(label("label", "a\tb").is_err());
        assert_eq!(
            display_name("display_name", "  Chamber ").ok(),
            Some("Chamber")
        );
        assert!(display_name("display_name", "a\u{7}").is_err());
    }
    use tandem_proto::Goal as ProtoGoal;

    fn good_mentee() -> MenteeRequest {
        MenteeRequest {
            career_level: CareerLevel::TeamLead as i32,
            goals: vec![ProtoGoal {
                topic: Topic::Leadership as i32,
                priority: 3,
            }],
            languages: vec!["de".into()],
            region: "DE-BY".into(),
            preferred_format: Format::Remote as i32,
            industry: Industry::ItSoftware as i32,
            industry_preference: 0,
            company_size_band: CompanySizeBand::Small as i32,
            employer_token: "a".repeat(64),
            group_token: String::new(),
            home_node_id: "startups".into(),
        }
    }

    fn good_mentor() -> Mentor {
        Mentor {
            display_name: "Erika Muster".into(),
            email: "erika@example.org".into(),
            employer_name: "Muster GmbH".into(),
            employer_registry_number: "HRB 1234".into(),
            career_level: CareerLevel::Director as i32,
            years_of_experience: 22,
            industries: vec![Industry::Manufacturing as i32],
            expertise: vec![Topic::Leadership as i32],
            languages: vec!["de".into()],
            region: "DE-BY".into(),
            formats: vec![Format::Remote as i32],
            capacity: 2,
            publication_consent: tandem_proto::PublicationConsent::Granted as i32,
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_good_mentee_and_defaults_the_group_token() {
        let needs = mentee(&good_mentee()).expect("valid");
        assert_eq!(needs.group_token, needs.employer_token);
    }

    #[test]
    fn names_the_field_of_a_bad_mentee() {
        type Mutation = fn(&mut MenteeRequest);
        let cases: Vec<(Mutation, &str)> = vec![
            (|m| m.goals.clear(), "mentee.goals"),
            (
                |m| m.languages = vec!["de".into(), "xx".into()],
                "mentee.languages[1]",
            ),
            (|m| m.career_level = 99, "mentee.career_level"),
            (|m| m.career_level = 0, "mentee.career_level"),
            (|m| m.goals[0].priority = 7, "mentee.goals[0].priority"),
            (
                |m| m.preferred_format = Format::InPerson as i32,
                "mentee.region",
            ),
            (
                |m| m.employer_token = "nope".into(),
                "mentee.employer_token",
            ),
        ];
        for (mutate, field) in cases {
            let mut m = good_mentee();
            mutate(&mut m);
            if field == "mentee.region" {
                m.region.clear();
            }
            let err = mentee(&m).expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn refuses_capacity_out_of_range() {
        for capacity in [0, 11, 1000] {
            let err = mentor(&Mentor {
                capacity,
                ..good_mentor()
            })
            .expect_err("capacity");
            assert_eq!(err.field, "mentor.capacity");
        }
        assert!(mentor(&good_mentor()).is_ok());
    }

    #[test]
    fn refuses_an_empty_idempotency_key() {
        assert_eq!(
            idempotency_key("").expect_err("empty").field,
            "idempotency_key"
        );
        assert!(idempotency_key("order-17").is_ok());
    }
}
