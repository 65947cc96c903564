//! How the node's rows read and write: list columns as JSON, introductions' protobuf blobs, and
//! the few queries every module needs (places taken, marking a mentor changed).

use std::collections::HashMap;

use prost::Message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
};
use tandem_domain::MentorRecord;
use tandem_proto::{Introduction, MenteeSummary, MentorDecision, ScoreReason};
use tandem_storage::node::{counter, introduction, mentor};

use crate::NodeError;
use crate::counters;

/// The list of score reasons as stored in `introductions.reasons`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StoredReasons {
    #[prost(message, repeated, tag = "1")]
    pub reasons: Vec<ScoreReason>,
}

/// The list columns of a mentor row, decoded.
#[derive(Debug, Default)]
pub(crate) struct MentorLists {
    pub industries: Vec<i32>,
    pub expertise: Vec<i32>,
    pub languages: Vec<String>,
    pub formats: Vec<i32>,
}

impl MentorLists {
    /// Returns the lists of a validated record as proto numbers.
    pub fn of_record(record: &MentorRecord) -> Self {
        Self {
            industries: record.industries.iter().map(|&i| i as i32).collect(),
            expertise: record.expertise.iter().map(|&t| t as i32).collect(),
            languages: record.languages.clone(),
            formats: record.formats.iter().map(|&f| f as i32).collect(),
        }
    }

    /// Decodes the list columns of a stored mentor.
    pub fn of_row(row: &mentor::Model) -> Result<Self, NodeError> {
        Ok(Self {
            industries: from_json(&row.id, "industries", &row.industries)?,
            expertise: from_json(&row.id, "expertise", &row.expertise)?,
            languages: from_json(&row.id, "languages", &row.languages)?,
            formats: from_json(&row.id, "formats", &row.formats)?,
        })
    }

    /// Encodes the lists as the JSON text of the four columns, in the order
    /// industries, expertise, languages, formats.
    pub fn to_columns(&self) -> Result<[String; 4], NodeError> {
        Ok([
            to_json(&self.industries)?,
            to_json(&self.expertise)?,
            to_json(&self.languages)?,
            to_json(&self.formats)?,
        ])
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, NodeError> {
    serde_json::to_string(value).map_err(|e| NodeError::Corrupt(format!("cannot encode list: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(
    mentor_id: &str,
    column: &str,
    text: &str,
) -> Result<T, NodeError> {
    serde_json::from_str(text)
        .map_err(|e| NodeError::Corrupt(format!("mentor {mentor_id} column {column}: {e}")))
}

/// Returns the places still free: capacity minus places taken, never below zero.
pub(crate) fn free_places(capacity: i32, taken: u64) -> u32 {
    let taken = i64::try_from(taken).unwrap_or(i64::MAX);
    u32::try_from(i64::from(capacity).saturating_sub(taken)).unwrap_or(0)
}

/// Returns a stored mentor as the admin service shows it.
pub(crate) fn mentor_to_proto(
    row: &mentor::Model,
    pseudonym: String,
    free_capacity: u32,
    publication_state: tandem_proto::PublicationState,
) -> Result<tandem_proto::Mentor, NodeError> {
    let lists = MentorLists::of_row(row)?;
    Ok(tandem_proto::Mentor {
        id: row.id.clone(),
        display_name: row.display_name.clone(),
        email: row.email.clone(),
        employer_name: row.employer_name.clone(),
        employer_registry_number: row.employer_registry_number.clone(),
        group_registry_number: row.group_registry_number.clone(),
        title: row.title.clone(),
        career_level: row.career_level,
        years_of_experience: u32::try_from(row.years_of_experience).unwrap_or(0),
        industries: lists.industries,
        expertise: lists.expertise,
        languages: lists.languages,
        region: row.region.clone(),
        formats: lists.formats,
        capacity: u32::try_from(row.capacity).unwrap_or(0),
        publication_consent: if row.publish_consent {
            tandem_proto::PublicationConsent::Granted
        } else {
            tandem_proto::PublicationConsent::Refused
        } as i32,
        member_number: row.member_number.clone(),
        pseudonym,
        free_capacity,
        publication_state: publication_state as i32,
    })
}

/// Encodes the reasons of an introduction for storage.
pub(crate) fn encode_reasons(reasons: Vec<ScoreReason>) -> Vec<u8> {
    StoredReasons { reasons }.encode_to_vec()
}

/// Returns a stored introduction as the admin service shows it.
pub(crate) fn introduction_to_proto(row: &introduction::Model) -> Result<Introduction, NodeError> {
    let forgotten = row.mentee_forgotten_at_ms != 0;
    let mentee = if forgotten {
        None
    } else {
        Some(
            MenteeSummary::decode(row.mentee_summary.as_slice())
                .map_err(|e| NodeError::Corrupt(format!("introduction {} mentee: {e}", row.id)))?,
        )
    };
    let reasons = StoredReasons::decode(row.reasons.as_slice())
        .map_err(|e| NodeError::Corrupt(format!("introduction {} reasons: {e}", row.id)))?;
    Ok(Introduction {
        introduction_id: row.id.clone(),
        mentor_id: row.mentor_id.clone(),
        mentee,
        reasons: reasons.reasons,
        score: row.score,
        decision: row.decision,
        closed: row.closed,
        close_reason: row.close_reason.clone(),
        contact_released: row.contact_released,
        received_at_ms: row.received_at_ms,
        mentee_forgotten: forgotten,
    })
}

/// Returns how many places accepted, open introductions take, per mentor id. Mentors without
/// any are absent from the map.
pub(crate) async fn places_taken(
    db: &impl ConnectionTrait,
    mentor_ids: &[String],
) -> Result<HashMap<String, u64>, NodeError> {
    let mut taken = HashMap::new();
    if mentor_ids.is_empty() {
        return Ok(taken);
    }
    // Chunked so that a large feed page stays below the bind-parameter limits of both backends.
    for chunk in mentor_ids.chunks(500) {
        let rows: Vec<String> = introduction::Entity::find()
            .select_only()
            .column(introduction::Column::MentorId)
            .filter(introduction::Column::MentorId.is_in(chunk.iter().cloned()))
            .filter(introduction::Column::Decision.eq(MentorDecision::Accepted as i32))
            .filter(introduction::Column::Closed.eq(false))
            .into_tuple()
            .all(db)
            .await?;
        for mentor_id in rows {
            *taken.entry(mentor_id).or_insert(0) += 1;
        }
    }
    Ok(taken)
}

/// Returns how many places one mentor has free right now.
pub(crate) async fn free_capacity_of(
    db: &impl ConnectionTrait,
    row: &mentor::Model,
) -> Result<u32, NodeError> {
    let taken = places_taken(db, std::slice::from_ref(&row.id)).await?;
    Ok(free_places(
        row.capacity,
        taken.get(&row.id).copied().unwrap_or(0),
    ))
}

/// Gives a mentor the next change sequence number so that the next publication snapshot
/// republishes the profile (its free capacity changed). Does nothing for an unknown or removed
/// mentor, whose withdrawal is already in the feed.
pub(crate) async fn republish_mentor(
    txn: &DatabaseTransaction,
    mentor_id: &str,
    now: i64,
) -> Result<(), NodeError> {
    let Some(row) = mentor::Entity::find_by_id(mentor_id.to_owned())
        .one(txn)
        .await?
    else {
        return Ok(());
    };
    if row.removed {
        return Ok(());
    }
    let version = counters::next(txn, counter::MENTOR_SEQ).await?;
    let mut row = row.into_active_model();
    row.version = Set(version);
    row.updated_at_ms = Set(now);
    row.update(txn).await?;
    tracing::debug!(mentor_id, version, "mentor republished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_places_never_go_below_zero() {
        assert_eq!(free_places(3, 0), 3);
        assert_eq!(free_places(3, 2), 1);
        assert_eq!(free_places(3, 5), 0);
        assert_eq!(free_places(3, u64::MAX), 0);
    }

    #[test]
    fn reasons_round_trip() {
        let reasons = vec![ScoreReason {
            criterion: "level_gap".into(),
            points: 10,
            detail: "two levels above".into(),
        }];
        let decoded =
            StoredReasons::decode(encode_reasons(reasons.clone()).as_slice()).expect("decodes");
        assert_eq!(decoded.reasons, reasons);
    }
}
