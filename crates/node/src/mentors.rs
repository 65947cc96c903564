//! Mentor records as the association's staff manage them: create, update, remove (erasure),
//! read and list, and import many at once. Every change gives the mentor the next change
//! sequence number; the next read of the feed recomputes the publication from the records.
//! Reads say where each mentor stands in that publication.

use sea_orm::sea_query::Expr;
use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TryIntoModel,
};
use tandem_domain::{FieldViolation, MentorRecord, Violations, validate};
use tandem_proto::{Mentor, PublicationState};
use tandem_storage::node::{counter, introduction, mentor};
use tracing::info;

use crate::records::{self, MentorLists};
use crate::{NodeError, NodeState, Staff, audit, counters, tombstones};

/// Why introductions end when their mentor is removed.
pub const CLOSED_MENTOR_REMOVED: &str = "mentor_removed";

fn not_found() -> NodeError {
    NodeError::NotFound("mentor not found".to_owned())
}

/// Returns the id of a new mentor: the UUID staff chose, in its hyphenated form, or a fresh one.
fn chosen_id(id: &str) -> Result<String, FieldViolation> {
    if id.is_empty() {
        return Ok(uuid::Uuid::new_v4().to_string());
    }
    uuid::Uuid::parse_str(id)
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| FieldViolation::new("mentor.id", "must be empty or a UUID"))
}

/// Copies a validated record into a row.
fn apply_record(row: &mut mentor::ActiveModel, record: &MentorRecord) -> Result<(), NodeError> {
    let [industries, expertise, languages, formats] =
        MentorLists::of_record(record).to_columns()?;
    row.display_name = Set(record.display_name.clone());
    row.email = Set(record.email.clone());
    row.employer_name = Set(record.employer_name.clone());
    row.employer_registry_number = Set(record.employer_registry_number.clone());
    row.group_registry_number = Set(record.group_registry_number.clone());
    row.title = Set(record.title.clone());
    row.career_level = Set(record.career_level as i32);
    row.years_of_experience = Set(i32::try_from(record.years_of_experience).unwrap_or(i32::MAX));
    row.industries = Set(industries);
    row.expertise = Set(expertise);
    row.languages = Set(languages);
    row.region = Set(record.region.clone());
    row.formats = Set(formats);
    row.capacity = Set(i32::try_from(record.capacity).unwrap_or(i32::MAX));
    row.publish_consent = Set(record.publish_consent);
    row.member_number = Set(record.member_number.clone());
    Ok(())
}

/// Returns whether a stored mentor holds exactly `record`.
fn holds(row: &mentor::Model, record: &MentorRecord) -> Result<bool, NodeError> {
    let mut wanted = row.clone().into_active_model();
    apply_record(&mut wanted, record)?;
    Ok(wanted.try_into_model().is_ok_and(|wanted| wanted == *row))
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Mentors whose member number the node did not know.
    pub created: u32,
    /// Mentors whose record changed.
    pub updated: u32,
    /// Mentors already stored as the file has them.
    pub unchanged: u32,
}

/// The published form of each mentor: pseudonym and how far it was generalised.
type LivePublications = HashMap<String, (String, i32)>;

/// Says where a mentor stands in the publication, and the pseudonym to show (only for a
/// published profile).
fn publication_state(
    row: &mentor::Model,
    free: u32,
    live: &LivePublications,
) -> (PublicationState, String) {
    if !row.publish_consent {
        return (PublicationState::NoConsent, String::new());
    }
    match live.get(&row.id) {
        None => (PublicationState::Suppressed, String::new()),
        Some((pseudonym, _)) if free == 0 => (PublicationState::NoFreePlace, pseudonym.clone()),
        Some((pseudonym, 0)) => (PublicationState::Published, pseudonym.clone()),
        Some((pseudonym, _)) => (PublicationState::Generalised, pseudonym.clone()),
    }
}

impl NodeState {
    /// Validates and stores a new mentor and returns the stored record with its id, free
    /// capacity and publication state. Nothing is stored when validation fails. A member number
    /// already in use returns that mentor when it holds the same record (a retried create), and
    /// is refused otherwise.
    pub async fn create_mentor(&self, staff: &Staff, mentor: Mentor) -> Result<Mentor, NodeError> {
        let mut found = Violations::new();
        // Staff may bring the id their own member records use; otherwise the node picks one.
        let id = found.check(chosen_id(&mentor.id));
        let record = found.check(validate::mentor(&mentor));
        let (id, record) = found.finish(|| Some((id?, record?)))?;

        let txn = self.write().await?;
        if let Some(existing) = find_by_member_number(&*txn, &record.member_number).await? {
            if holds(&existing, &record)? {
                drop(txn);
                return self.get_mentor(&existing.id).await;
            }
            return Err(NodeError::Conflict(format!(
                "mentor.member_number: {:?} belongs to mentor {} with a different record",
                record.member_number, existing.id
            )));
        }
        if mentor::Entity::find_by_id(id.clone())
            .one(&*txn)
            .await?
            .is_some()
        {
            return Err(NodeError::invalid("mentor.id", "is already in use"));
        }
        let version = self
            .insert_mentor(&txn, staff.key_id(), &id, &record)
            .await?;
        txn.commit().await?;

        info!(mentor_id = %id, version, "mentor created");
        self.get_mentor(&id).await
    }

    /// Stores a new mentor and its audit entry; returns its change sequence number.
    async fn insert_mentor(
        &self,
        txn: &DatabaseTransaction,
        actor: &str,
        id: &str,
        record: &MentorRecord,
    ) -> Result<i64, NodeError> {
        let now = self.now();
        let mut row = mentor::ActiveModel {
            id: Set(id.to_owned()),
            removed: Set(false),
            created_at_ms: Set(now),
            updated_at_ms: Set(now),
            ..Default::default()
        };
        apply_record(&mut row, record)?;
        let version = counters::next(txn, counter::MENTOR_SEQ).await?;
        row.version = Set(version);
        row.insert(txn).await?;
        audit::record(txn, now, actor, "mentor.created", "mentor", id, "").await?;
        Ok(version)
    }

    /// Writes `record` over a stored mentor and its audit entry; returns the new change
    /// sequence number.
    async fn rewrite_mentor(
        &self,
        txn: &DatabaseTransaction,
        actor: &str,
        existing: mentor::Model,
        record: &MentorRecord,
    ) -> Result<i64, NodeError> {
        let version = counters::next(txn, counter::MENTOR_SEQ).await?;
        let id = existing.id.clone();
        let mut row = existing.into_active_model();
        apply_record(&mut row, record)?;
        row.version = Set(version);
        row.updated_at_ms = Set(self.now());
        row.update(txn).await?;
        audit::record(txn, self.now(), actor, "mentor.updated", "mentor", &id, "").await?;
        Ok(version)
    }

    /// Imports mentors keyed by their member numbers, all or nothing: every record is validated
    /// first (a refusal names every wrong field of every record), then one transaction creates the unknown ones and rewrites the changed ones.
    /// Importing the same records again changes nothing. `actor` goes into the audit log. A dry
    /// run does the same work and rolls it back, so its report is exactly what a real run
    /// would do.
    pub async fn import_mentors(
        &self,
        actor: &str,
        mentors: &[Mentor],
        dry_run: bool,
    ) -> Result<ImportReport, NodeError> {
        // Every wrong field of every record, named `mentors[k].<field>`.
        let mut violations = Violations::new();
        let mut records = Vec::with_capacity(mentors.len());
        for (k, mentor) in mentors.iter().enumerate() {
            let at = format!("mentors[{k}].");
            match validate::mentor(mentor) {
                Ok(record) if record.member_number.is_empty() => {
                    violations.add(format!("{at}member_number"), "is required to import");
                }
                Ok(record) => records.push(record),
                Err(found) => {
                    for v in found.iter() {
                        let field = v.field.strip_prefix("mentor.").unwrap_or(&v.field);
                        violations.add(format!("{at}{field}"), v.description.clone());
                    }
                }
            }
        }
        violations.into_result()?;
        let mut report = ImportReport::default();
        let txn = self.write().await?;
        for record in &records {
            match find_by_member_number(&*txn, &record.member_number).await? {
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    self.insert_mentor(&txn, actor, &id, record).await?;
                    report.created += 1;
                }
                Some(existing) if holds(&existing, record)? => report.unchanged += 1,
                Some(existing) => {
                    self.rewrite_mentor(&txn, actor, existing, record).await?;
                    report.updated += 1;
                }
            }
        }
        if dry_run {
            // Dropping the transaction rolls it back.
            return Ok(report);
        }
        txn.commit().await?;
        info!(
            created = report.created,
            updated = report.updated,
            unchanged = report.unchanged,
            "mentors imported"
        );
        Ok(report)
    }

    /// Replaces a mentor's record (identified by `mentor.id`) and republishes the profile.
    pub async fn update_mentor(&self, staff: &Staff, mentor: Mentor) -> Result<Mentor, NodeError> {
        let mut found = Violations::new();
        if mentor.id.is_empty() {
            found.add("mentor.id", "is required");
        }
        let record = found.check(validate::mentor(&mentor));
        let record = found.finish(|| record)?;

        let txn = self.write().await?;
        let existing = mentor::Entity::find_by_id(mentor.id.clone())
            .one(&*txn)
            .await?
            .filter(|row| !row.removed)
            .ok_or_else(not_found)?;
        if let Some(other) = find_by_member_number(&*txn, &record.member_number).await?
            && other.id != existing.id
        {
            return Err(NodeError::Conflict(format!(
                "mentor.member_number: {:?} belongs to mentor {}",
                record.member_number, other.id
            )));
        }
        let version = self
            .rewrite_mentor(&txn, staff.key_id(), existing, &record)
            .await?;
        txn.commit().await?;

        info!(mentor_id = %mentor.id, version, "mentor updated");
        self.get_mentor(&mentor.id).await
    }

    /// Erases a mentor: blanks every personal field, marks the record removed so that the feed
    /// withdraws the profile, and closes the mentor's open introductions.
    pub async fn remove_mentor(&self, staff: &Staff, mentor_id: &str) -> Result<(), NodeError> {
        let txn = self.write().await?;
        let existing = mentor::Entity::find_by_id(mentor_id.to_owned())
            .one(&*txn)
            .await?
            .filter(|row| !row.removed)
            .ok_or_else(not_found)?;
        let version = counters::next(&txn, counter::MENTOR_SEQ).await?;
        let mut row = existing.into_active_model();
        for field in [
            &mut row.display_name,
            &mut row.email,
            &mut row.employer_name,
            &mut row.employer_registry_number,
            &mut row.group_registry_number,
            &mut row.title,
            &mut row.member_number,
        ] {
            *field = Set(String::new());
        }
        row.removed = Set(true);
        row.version = Set(version);
        row.updated_at_ms = Set(self.now());
        row.update(&*txn).await?;
        let open: Vec<String> = introduction::Entity::find()
            .select_only()
            .column(introduction::Column::Id)
            .filter(introduction::Column::MentorId.eq(mentor_id))
            .filter(introduction::Column::Closed.eq(false))
            .into_tuple()
            .all(&*txn)
            .await?;
        tombstones::record(&*txn, &open, tombstones::Ending::Closed, self.now()).await?;
        let closed = introduction::Entity::update_many()
            .col_expr(introduction::Column::Closed, Expr::value(true))
            .col_expr(
                introduction::Column::CloseReason,
                Expr::value(CLOSED_MENTOR_REMOVED),
            )
            .filter(introduction::Column::MentorId.eq(mentor_id))
            .filter(introduction::Column::Closed.eq(false))
            .exec(&*txn)
            .await?
            .rows_affected;
        let detail = format!("closed_introductions={closed}");
        audit::record(
            &*txn,
            self.now(),
            staff.key_id(),
            "mentor.removed",
            "mentor",
            mentor_id,
            &detail,
        )
        .await?;
        txn.commit().await?;

        info!(
            mentor_id,
            version,
            closed_introductions = closed,
            "mentor removed"
        );
        Ok(())
    }

    /// Returns one mentor; removed mentors are not found.
    pub async fn get_mentor(&self, mentor_id: &str) -> Result<Mentor, NodeError> {
        let row = find_current(self.db(), mentor_id).await?;
        let free = records::free_capacity_of(self.db(), &row).await?;
        let live = self.published_forms().await?;
        let (state, pseudonym) = publication_state(&row, free, &live);
        records::mentor_to_proto(&row, pseudonym, free, state)
    }

    /// Returns the node's mentors (without removed ones), ordered by name.
    pub async fn list_mentors(&self) -> Result<Vec<Mentor>, NodeError> {
        let rows = mentor::Entity::find()
            .filter(mentor::Column::Removed.eq(false))
            .order_by_asc(mentor::Column::DisplayName)
            .order_by_asc(mentor::Column::Id)
            .all(self.db())
            .await?;
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let taken = records::places_taken(self.db(), &ids).await?;
        let live = self.published_forms().await?;
        rows.iter()
            .map(|row| {
                let free =
                    records::free_places(row.capacity, taken.get(&row.id).copied().unwrap_or(0));
                let (state, pseudonym) = publication_state(row, free, &live);
                records::mentor_to_proto(row, pseudonym, free, state)
            })
            .collect()
    }
}

/// Returns the mentor that carries a member number; none for an empty one.
async fn find_by_member_number(
    db: &impl ConnectionTrait,
    member_number: &str,
) -> Result<Option<mentor::Model>, NodeError> {
    if member_number.is_empty() {
        return Ok(None);
    }
    Ok(mentor::Entity::find()
        .filter(mentor::Column::MemberNumber.eq(member_number))
        .filter(mentor::Column::Removed.eq(false))
        .one(db)
        .await?)
}

/// Returns a mentor that exists and was not removed.
async fn find_current(
    db: &impl ConnectionTrait,
    mentor_id: &str,
) -> Result<mentor::Model, NodeError> {
    mentor::Entity::find_by_id(mentor_id.to_owned())
        .one(db)
        .await?
        .filter(|row| !row.removed)
        .ok_or_else(not_found)
}
