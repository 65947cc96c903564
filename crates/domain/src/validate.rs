//! Validation of everything that enters the federation: mentees from companies, mentor records
//! from association staff, and profiles from nodes. Each check names the offending field, and a
//! record of several fields is checked whole: the error lists every wrong field at once
//! ([`Violations`]), so that a caller fixes a request in one attempt.

use std::collections::HashSet;

use tandem_proto::{
    AnonymisedProfile, CareerLevel, CompanySizeBand, ExperienceBand, Format, Industry,
    IndustryPreference, MenteeRequest, Mentor, PublicationConsent, Topic,
};

use crate::error::{FieldViolation, Violations};
use crate::model::{CompanyRecord, Employer, Goal, MenteeNeeds, MentorRecord};
use crate::taxonomy::{has_region_shape, is_country, is_language, is_subdivision};

/// Most goals a mentee may have.
pub const MAX_GOALS: usize = 5;
/// Most places a mentor may offer.
pub const MAX_CAPACITY: u32 = 10;
/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// Most years of experience a mentor record may state.
const MAX_YEARS_OF_EXPERIENCE: u32 = 60;
/// Longest free-text field of a mentor record.
const MAX_TEXT: usize = 200;
/// Most entries in any list field.
const MAX_LIST: usize = 20;

/// The outcome of checking one field.
type Checked<T> = Result<T, FieldViolation>;
/// The outcome of checking several fields: every violation among them.
type Checks<T> = Result<T, Violations>;

fn enum_value<E: TryFrom<i32>>(field: &str, value: i32, what: &str) -> Checked<E> {
    if value == 0 {
        return Err(FieldViolation::new(field, format!("{what} is required")));
    }
    E::try_from(value).map_err(|_| FieldViolation::new(field, format!("unknown {what} {value}")))
}

/// Checks a list of enumeration values: each entry known and distinct, one violation per bad
/// entry.
fn enum_list<E: TryFrom<i32> + PartialEq + Copy>(
    field: &str,
    values: &[i32],
    what: &str,
    required: bool,
) -> Checks<Vec<E>> {
    if required && values.is_empty() {
        return Err(Violations::one(
            field,
            format!("at least one {what} is required"),
        ));
    }
    if values.len() > MAX_LIST {
        return Err(Violations::one(
            field,
            format!("at most {MAX_LIST} entries"),
        ));
    }
    let mut found = Violations::new();
    let mut out: Vec<E> = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let entry = format!("{field}[{i}]");
        if let Some(e) = found.check(enum_value(&entry, *v, what)) {
            if out.contains(&e) {
                found.add(entry, format!("duplicate {what}"));
            } else {
                out.push(e);
            }
        }
    }
    found.into_result()?;
    Ok(out)
}

/// Checks a list of ISO 639-1 codes: at least one, each known and distinct.
fn languages(field: &str, codes: &[String]) -> Checks<Vec<String>> {
    if codes.is_empty() {
        return Err(Violations::one(field, "at least one language is required"));
    }
    if codes.len() > MAX_LIST {
        return Err(Violations::one(
            field,
            format!("at most {MAX_LIST} entries"),
        ));
    }
    let mut found = Violations::new();
    let mut seen = HashSet::new();
    for (i, code) in codes.iter().enumerate() {
        if !is_language(code) {
            found.add(
                format!("{field}[{i}]"),
                format!("unknown language code {code:?} (expected ISO 639-1, e.g. \"de\")"),
            );
        } else if !seen.insert(code) {
            found.add(format!("{field}[{i}]"), "duplicate language");
        }
    }
    found.into_result()?;
    Ok(codes.to_vec())
}

/// Checks a region: an ISO 3166-1 country (`DE`) or an ISO 3166-2 subdivision (`DE-BY`) that
/// exists.
fn region(field: &str, value: &str, required: bool) -> Checked<String> {
    if value.is_empty() && !required {
        return Ok(String::new());
    }
    if !has_region_shape(value) {
        return Err(FieldViolation::new(
            field,
            format!("invalid region {value:?} (expected ISO 3166, e.g. \"DE\" or \"DE-BY\")"),
        ));
    }
    if value.contains('-') && !is_subdivision(value) {
        return Err(FieldViolation::new(
            field,
            format!("unknown region {value:?}: no such ISO 3166-2 subdivision (e.g. \"DE-BY\")"),
        ));
    }
    if !value.contains('-') && !is_country(value) {
        return Err(FieldViolation::new(
            field,
            format!("unknown region {value:?}: no such ISO 3166-1 country (e.g. \"DE\")"),
        ));
    }
    Ok(value.to_owned())
}

/// Longest member number an association may give a mentor.
pub const MAX_MEMBER_NUMBER: usize = 64;

/// Checks an association's own reference for a mentor: optional, at most
/// [`MAX_MEMBER_NUMBER`] printable characters, surrounding spaces ignored.
pub fn member_number(field: &str, value: &str) -> Result<String, FieldViolation> {
    let value = text(field, value, false)?;
    if value.chars().count() > MAX_MEMBER_NUMBER {
        return Err(FieldViolation::new(
            field,
            format!("longer than {MAX_MEMBER_NUMBER} characters"),
        ));
    }
    Ok(value)
}

fn text(field: &str, value: &str, required: bool) -> Checked<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(FieldViolation::new(
            field,
            format!("longer than {MAX_TEXT} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(field, "contains control characters"));
    }
    Ok(value.to_owned())
}

fn email(field: &str, value: &str) -> Checked<String> {
    let email = text(field, value, true)?;
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(' ')
    });
    if !valid {
        return Err(FieldViolation::new(field, "not an e-mail address"));
    }
    Ok(email)
}

/// Returns whether `token` is an employer or group token: 64 lower-case hex characters.
pub fn is_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn token(field: &str, value: &str) -> Checked<String> {
    if !is_token(value) {
        return Err(FieldViolation::new(
            field,
            "must be 64 lower-case hex characters",
        ));
    }
    Ok(value.to_owned())
}

/// Checks an idempotency key: 1 to 128 printable ASCII characters.
pub fn idempotency_key(key: &str) -> Result<(), FieldViolation> {
    const FIELD: &str = "idempotency_key";
    if key.is_empty() {
        return Err(FieldViolation::new(FIELD, "is required"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(FieldViolation::new(FIELD, "longer than 128 characters"));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldViolation::new(
            FIELD,
            "must be printable ascii without spaces",
        ));
    }
    Ok(())
}

/// Checks a node id: 2 to 64 characters of `a-z`, `0-9` and `-`.
pub fn node_id(field: &str, id: &str) -> Result<(), FieldViolation> {
    let ok = (2..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FieldViolation::new(
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
pub fn company_id(field: &str, company: &str) -> Result<(), FieldViolation> {
    let printable = company.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if company.is_empty() || company.len() > MAX_COMPANY_ID || !printable {
        return Err(FieldViolation::new(
            field,
            format!("must be 1 to {MAX_COMPANY_ID} printable ascii characters without spaces"),
        ));
    }
    Ok(())
}

/// Checks the label of an API key (a note for people): at most 200 characters, no control
/// characters.
pub fn label(field: &str, label: &str) -> Result<(), FieldViolation> {
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            format!("at most {MAX_LABEL} characters, no control characters"),
        ));
    }
    Ok(())
}

/// Checks a node's display name and returns it trimmed: at most 200 characters, no control
/// characters.
pub fn display_name<'a>(field: &str, name: &'a str) -> Result<&'a str, FieldViolation> {
    let name = name.trim();
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(FieldViolation::new(
            field,
            format!("longer than {MAX_DISPLAY_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldViolation::new(field, "contains control characters"));
    }
    Ok(name)
}

/// Checks a node endpoint: an `http://` or `https://` URL a gRPC client can dial.
pub fn endpoint(field: &str, endpoint: &str) -> Result<(), FieldViolation> {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(FieldViolation::new(
            field,
            "must start with http:// or https://",
        ));
    }
    if http::Uri::try_from(endpoint).is_err() {
        return Err(FieldViolation::new(field, "is not a valid url"));
    }
    Ok(())
}

/// Checks that an endpoint's scheme fits the transport: `https://` when the broker calls
/// nodes over mutual TLS, `http://` when it runs without TLS (development only).
pub fn endpoint_scheme(field: &str, endpoint: &str, tls: bool) -> Result<(), FieldViolation> {
    match (tls, endpoint.starts_with("https://")) {
        (true, false) => Err(FieldViolation::new(
            field,
            "must start with https:// (the broker calls nodes over mutual tls)",
        )),
        (false, true) => Err(FieldViolation::new(
            field,
            "must start with http:// (the broker runs without tls)",
        )),
        _ => Ok(()),
    }
}

/// Validates a mentee a company submits and returns what the broker keeps; the error lists
/// every wrong field.
pub fn mentee(m: &MenteeRequest, employer: &Employer) -> Checks<MenteeNeeds> {
    let mut found = Violations::new();
    let level = found.check(mentee_level(m.career_level));
    let goals = found.check(mentee_goals(&m.goals));
    let languages = found.check(languages("mentee.languages", &m.languages));
    let format: Option<Format> = found.check(enum_value(
        "mentee.preferred_format",
        m.preferred_format,
        "format",
    ));
    // Meeting in person needs a region; with an unknown format only a given region is checked.
    let in_person = matches!(format, Some(Format::InPerson | Format::Hybrid));
    let region = found.check(region("mentee.region", &m.region, in_person));
    let industry: Option<Industry> =
        found.check(enum_value("mentee.industry", m.industry, "industry"));
    if IndustryPreference::try_from(m.industry_preference).is_err() {
        found.add("mentee.industry_preference", "unknown industry preference");
    }
    let size: Option<CompanySizeBand> = found.check(enum_value(
        "mentee.company_size_band",
        m.company_size_band,
        "company size band",
    ));
    found.finish(|| {
        Some(MenteeNeeds {
            career_level: level? as i32,
            goals: goals?,
            languages: languages?,
            region: region?,
            format: format? as i32,
            industry: industry? as i32,
            industry_preference: m.industry_preference,
            company_size_band: size? as i32,
            employer_token: employer.employer_token.clone(),
            group_token: employer.group_token.clone(),
            home_node_id: employer.home_node_id.clone(),
        })
    })
}

fn mentee_level(value: i32) -> Checked<CareerLevel> {
    const FIELD: &str = "mentee.career_level";
    let level = enum_value(FIELD, value, "career level")?;
    if level == CareerLevel::Executive {
        return Err(FieldViolation::new(
            FIELD,
            "no mentor level stands above executive",
        ));
    }
    Ok(level)
}

/// Checks a mentee's goals: 1 to 5, distinct topics, priorities 1 to 3; one violation per bad
/// field of each goal.
fn mentee_goals(goals: &[tandem_proto::Goal]) -> Checks<Vec<Goal>> {
    const FIELD: &str = "mentee.goals";
    if goals.is_empty() {
        return Err(Violations::one(FIELD, "at least one goal is required"));
    }
    if goals.len() > MAX_GOALS {
        return Err(Violations::one(FIELD, format!("at most {MAX_GOALS} goals")));
    }
    let mut found = Violations::new();
    let mut topics = HashSet::new();
    for (i, g) in goals.iter().enumerate() {
        let topic_field = format!("{FIELD}[{i}].topic");
        let topic: Option<Topic> = found.check(enum_value(&topic_field, g.topic, "topic"));
        if topic.is_some() && !topics.insert(g.topic) {
            found.add(topic_field, "duplicate topic");
        }
        if !(1..=3).contains(&g.priority) {
            found.add(format!("{FIELD}[{i}].priority"), "must be 1 to 3");
        }
    }
    found.into_result()?;
    Ok(goals
        .iter()
        .map(|g| Goal {
            topic: g.topic,
            priority: g.priority,
        })
        .collect())
}

/// Validates a mentor record that association staff create or update; the error lists every
/// wrong field.
pub fn mentor(m: &Mentor) -> Checks<MentorRecord> {
    let mut found = Violations::new();
    let display_name = found.check(text("mentor.display_name", &m.display_name, true));
    let email = found.check(email("mentor.email", &m.email));
    let employer_name = found.check(text("mentor.employer_name", &m.employer_name, true));
    let employer_registry_number = found.check(text(
        "mentor.employer_registry_number",
        &m.employer_registry_number,
        true,
    ));
    let group_registry_number = found.check(text(
        "mentor.group_registry_number",
        &m.group_registry_number,
        false,
    ));
    let title = found.check(text("mentor.title", &m.title, false));
    let career_level = found.check(mentor_level(m.career_level));
    if m.years_of_experience > MAX_YEARS_OF_EXPERIENCE {
        found.add(
            "mentor.years_of_experience",
            format!("must be 0 to {MAX_YEARS_OF_EXPERIENCE}"),
        );
    }
    let industries = found.check(enum_list(
        "mentor.industries",
        &m.industries,
        "industry",
        true,
    ));
    let expertise = found.check(enum_list("mentor.expertise", &m.expertise, "topic", true));
    let languages = found.check(languages("mentor.languages", &m.languages));
    let region = found.check(region("mentor.region", &m.region, true));
    let formats = found.check(enum_list("mentor.formats", &m.formats, "format", true));
    if !(1..=MAX_CAPACITY).contains(&m.capacity) {
        found.add(
            "mentor.capacity",
            format!("must be 1 to {MAX_CAPACITY}, got {}", m.capacity),
        );
    }
    let publish_consent = match PublicationConsent::try_from(m.publication_consent) {
        Ok(PublicationConsent::Granted) => Some(true),
        Ok(PublicationConsent::Refused) => Some(false),
        _ => {
            found.add(
                "mentor.publication_consent",
                "is required: GRANTED or REFUSED",
            );
            None
        }
    };
    let member_number = found.check(member_number("mentor.member_number", &m.member_number));
    found.finish(|| {
        Some(MentorRecord {
            member_number: member_number?,
            display_name: display_name?,
            email: email?,
            employer_name: employer_name?,
            employer_registry_number: employer_registry_number?,
            group_registry_number: group_registry_number?,
            title: title?,
            career_level: career_level?,
            years_of_experience: m.years_of_experience,
            industries: industries?,
            expertise: expertise?,
            languages: languages?,
            region: region?,
            formats: formats?,
            capacity: m.capacity,
            publish_consent: publish_consent?,
        })
    })
}

/// Checks a member company that association staff admit; the error lists every wrong field.
/// Register numbers must hold at least one letter or digit (what the employer token is
/// computed from).
pub fn company(c: &tandem_proto::Company) -> Checks<CompanyRecord> {
    let mut found = Violations::new();
    let legal_name = found.check(text("company.legal_name", &c.legal_name, true));
    let register = found.check(register_number(
        "company.register_number",
        &c.register_number,
        true,
    ));
    let group_register = found.check(register_number(
        "company.group_register_number",
        &c.group_register_number,
        false,
    ));
    let reference = found.check(member_number("company.reference", &c.reference));
    found.finish(|| {
        Some(CompanyRecord {
            legal_name: legal_name?,
            register_number: register?,
            group_register_number: group_register?,
            reference: reference?,
        })
    })
}

fn register_number(field: &str, value: &str, required: bool) -> Checked<String> {
    let value = text(field, value, required)?;
    if !value.is_empty() && !value.chars().any(char::is_alphanumeric) {
        return Err(FieldViolation::new(
            field,
            "must contain letters or digits (e.g. \"HRB 12345 München\")",
        ));
    }
    Ok(value)
}

/// Checks a membership a node publishes: a UUID company id, 64-hex tokens, and an enrolment
/// code hash that is empty or 64 hex characters.
pub fn membership(field: &str, m: &tandem_proto::Membership) -> Checks<()> {
    let mut found = Violations::new();
    if uuid_shape(&m.company_id).is_none() {
        found.add(format!("{field}.company_id"), "must be a UUID");
    }
    found.check(token(&format!("{field}.employer_token"), &m.employer_token));
    found.check(token(&format!("{field}.group_token"), &m.group_token));
    if !m.enrolment_code_hash.is_empty() {
        found.check(token(
            &format!("{field}.enrolment_code_hash"),
            &m.enrolment_code_hash,
        ));
    }
    found.into_result()
}

/// Returns the id in canonical lower case when it has the shape of a UUID (8-4-4-4-12 hex).
fn uuid_shape(id: &str) -> Option<String> {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let ok = groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| id.to_ascii_lowercase())
}

fn mentor_level(value: i32) -> Checked<CareerLevel> {
    const FIELD: &str = "mentor.career_level";
    let level = enum_value(FIELD, value, "career level")?;
    if level == CareerLevel::Staff {
        return Err(FieldViolation::new(
            FIELD,
            "a mentor must stand above staff level",
        ));
    }
    Ok(level)
}

/// Checks a profile a node published before the broker stores it: enumerations in range, token
/// and pseudonym formats, sizes. The broker rejects the batch rather than storing garbage.
pub fn profile(field: &str, p: &AnonymisedProfile) -> Checks<()> {
    let mut found = Violations::new();
    if !is_token(&p.pseudonym) {
        found.add(
            format!("{field}.pseudonym"),
            "must be 64 lower-case hex characters",
        );
    }
    found.check(enum_value::<CareerLevel>(
        &format!("{field}.career_level"),
        p.career_level,
        "career level",
    ));
    found.check(enum_value::<ExperienceBand>(
        &format!("{field}.experience_band"),
        p.experience_band,
        "experience band",
    ));
    found.check(enum_list::<Industry>(
        &format!("{field}.industries"),
        &p.industries,
        "industry",
        true,
    ));
    found.check(enum_list::<Topic>(
        &format!("{field}.expertise"),
        &p.expertise,
        "topic",
        true,
    ));
    found.check(languages(&format!("{field}.languages"), &p.languages));
    found.check(region(&format!("{field}.region"), &p.region, true));
    found.check(enum_list::<Format>(
        &format!("{field}.formats"),
        &p.formats,
        "format",
        true,
    ));
    if p.free_capacity > MAX_CAPACITY {
        found.add(
            format!("{field}.free_capacity"),
            format!("must be at most {MAX_CAPACITY}"),
        );
    }
    found.check(token(&format!("{field}.employer_token"), &p.employer_token));
    found.check(token(&format!("{field}.group_token"), &p.group_token));
    found.into_result()
}

#[cfg(test)]
mod tests;
