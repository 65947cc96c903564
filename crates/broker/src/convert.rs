//! Conversions between the broker's database rows and the gRPC messages.

use prost::Message;
use sea_orm::ActiveValue::Set;
use serde::{Deserialize, Serialize};
use tandem_domain::MenteeNeeds;
use tandem_proto::{AnonymisedProfile, Mentee, Proposal, ScoreReason};
use tandem_storage::broker::{mentee, profile, proposal};

use crate::BrokerError;

/// A score reason as stored in `proposals.reasons`.
#[derive(Serialize, Deserialize)]
struct StoredReason {
    criterion: String,
    points: i64,
    detail: String,
}

fn corrupt(what: &str, id: &str, err: impl std::fmt::Display) -> BrokerError {
    BrokerError::Corrupt(format!("{what} {id}: {err}"))
}

/// Returns what a stored mentee needs.
pub(crate) fn needs(m: &mentee::Model) -> Result<MenteeNeeds, BrokerError> {
    serde_json::from_str(&m.needs).map_err(|e| corrupt("mentee", &m.id, e))
}

/// Returns a stored mentee as the company sees it, with the home node of the membership that
/// submitted it; an erased one without its request and home node (both went with its needs).
pub(crate) fn mentee(m: &mentee::Model) -> Result<Mentee, BrokerError> {
    let (request, home_node_id) = if m.erased_at_ms != 0 {
        (None, String::new())
    } else {
        let needs = needs(m)?;
        (Some(needs.to_request()), needs.home_node_id)
    };
    Ok(Mentee {
        mentee_id: m.id.clone(),
        idempotency_key: m.idempotency_key.clone(),
        request,
        status: m.status,
        waiting_reason: m.waiting_reason.clone(),
        waiting_detail: m.waiting_detail.clone(),
        submitted_at_ms: m.submitted_at_ms,
        erased_at_ms: m.erased_at_ms,
        home_node_id,
    })
}

/// Returns score reasons as stored JSON.
pub(crate) fn reasons_json(reasons: &[ScoreReason]) -> String {
    let stored: Vec<StoredReason> = reasons
        .iter()
        .map(|r| StoredReason {
            criterion: r.criterion.clone(),
            points: r.points,
            detail: r.detail.clone(),
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".to_owned())
}

fn reasons(p: &proposal::Model) -> Result<Vec<ScoreReason>, BrokerError> {
    let stored: Vec<StoredReason> =
        serde_json::from_str(&p.reasons).map_err(|e| corrupt("proposal", &p.id, e))?;
    Ok(stored
        .into_iter()
        .map(|r| ScoreReason {
            criterion: r.criterion,
            points: r.points,
            detail: r.detail,
        })
        .collect())
}

/// Returns a stored proposal as the company sees it.
pub(crate) fn proposal(p: &proposal::Model) -> Result<Proposal, BrokerError> {
    let mentor = AnonymisedProfile::decode(p.profile.as_slice())
        .map_err(|e| corrupt("proposal", &p.id, e))?;
    Ok(Proposal {
        proposal_id: p.id.clone(),
        mentee_id: p.mentee_id.clone(),
        node_id: p.node_id.clone(),
        mentor: Some(mentor),
        score: p.score,
        reasons: reasons(p)?,
        mentor_decision: p.mentor_decision,
        company_decision: p.company_decision,
        status: p.status,
        round_id: p.round_id.clone(),
        created_at_ms: p.created_at_ms,
    })
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// Returns the row for a profile a node published (already validated).
pub(crate) fn profile_row(node_id: &str, p: &AnonymisedProfile, now: i64) -> profile::ActiveModel {
    profile::ActiveModel {
        node_id: Set(node_id.to_owned()),
        pseudonym: Set(p.pseudonym.clone()),
        career_level: Set(p.career_level),
        experience_band: Set(p.experience_band),
        industries: Set(json(&p.industries)),
        expertise: Set(json(&p.expertise)),
        languages: Set(json(&p.languages)),
        region: Set(p.region.clone()),
        formats: Set(json(&p.formats)),
        free_capacity: Set(i32::try_from(p.free_capacity).unwrap_or(i32::MAX)),
        employer_token: Set(p.employer_token.clone()),
        group_token: Set(p.group_token.clone()),
        version: Set(i64::try_from(p.version).unwrap_or(i64::MAX)),
        synced_at_ms: Set(now),
    }
}

/// Returns a stored profile as the node published it.
pub(crate) fn profile(row: &profile::Model) -> Result<AnonymisedProfile, BrokerError> {
    fn list<T: for<'de> Deserialize<'de>>(
        row: &profile::Model,
        text: &str,
    ) -> Result<Vec<T>, BrokerError> {
        serde_json::from_str(text)
            .map_err(|e| corrupt("profile", &format!("{}/{}", row.node_id, row.pseudonym), e))
    }
    Ok(AnonymisedProfile {
        pseudonym: row.pseudonym.clone(),
        career_level: row.career_level,
        experience_band: row.experience_band,
        industries: list(row, &row.industries)?,
        expertise: list(row, &row.expertise)?,
        languages: list(row, &row.languages)?,
        region: row.region.clone(),
        formats: list(row, &row.formats)?,
        free_capacity: u32::try_from(row.free_capacity).unwrap_or(0),
        employer_token: row.employer_token.clone(),
        group_token: row.group_token.clone(),
        version: u64::try_from(row.version).unwrap_or(0),
    })
}

/// Returns a database count or sum as a proto counter.
pub(crate) fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}
