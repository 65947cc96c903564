//! Mentor records as the association's staff manage them: create, update, remove (erasure),
//! read and list. Every change gives the mentor the next change sequence number; the next read
//! of the feed recomputes the publication from the records.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use tandem_domain::{MentorRecord, validate};
use tandem_proto::Mentor;
use tandem_storage::node::{counter, introduction, mentor};
use tracing::info;

use crate::records::{self, MentorLists};
use crate::{NodeError, NodeState, Staff, audit, counters};

/// Why introductions end when their mentor is removed.
pub const CLOSED_MENTOR_REMOVED: &str = "mentor_removed";

fn not_found() -> NodeError {
    NodeError::NotFound("mentor not found".to_owned())
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
    Ok(())
}

impl NodeState {
    /// Validates and stores a new mentor and returns the stored record with its id, pseudonym
    /// and free capacity. Nothing is stored when validation fails.
    pub async fn create_mentor(&self, staff: &Staff, mentor: Mentor) -> Result<Mentor, NodeError> {
        let record = validate::mentor(&mentor)?;
        // Staff may bring the id their own member records use; otherwise the node picks one.
        let id = if mentor.id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            uuid::Uuid::parse_str(&mentor.id)
                .map_err(|_| NodeError::invalid("mentor.id", "must be empty or a UUID"))?
                .hyphenated()
                .to_string()
        };
        let now = self.now();
        let mut row = mentor::ActiveModel {
            id: Set(id.clone()),
            removed: Set(false),
            created_at_ms: Set(now),
            updated_at_ms: Set(now),
            ..Default::default()
        };
        apply_record(&mut row, &record)?;

        let txn = self.write().await?;
        if mentor::Entity::find_by_id(id.clone())
            .one(&*txn)
            .await?
            .is_some()
        {
            return Err(NodeError::invalid("mentor.id", "is already in use"));
        }
        let version = counters::next(&txn, counter::MENTOR_SEQ).await?;
        row.version = Set(version);
        let row = row.insert(&*txn).await?;
        audit::record(
            &*txn,
            self.now(),
            staff.key_id(),
            "mentor.created",
            "mentor",
            &id,
            "",
        )
        .await?;
        txn.commit().await?;

        info!(mentor_id = %row.id, version, "mentor created");
        let free = records::free_places(row.capacity, 0);
        records::mentor_to_proto(&row, self.pseudonym(&row.id), free)
    }

    /// Replaces a mentor's record (identified by `mentor.id`) and republishes the profile.
    pub async fn update_mentor(&self, staff: &Staff, mentor: Mentor) -> Result<Mentor, NodeError> {
        if mentor.id.is_empty() {
            return Err(NodeError::invalid("mentor.id", "is required"));
        }
        let record = validate::mentor(&mentor)?;

        let txn = self.write().await?;
        let existing = mentor::Entity::find_by_id(mentor.id.clone())
            .one(&*txn)
            .await?
            .filter(|row| !row.removed)
            .ok_or_else(not_found)?;
        let version = counters::next(&txn, counter::MENTOR_SEQ).await?;
        let mut row = existing.into_active_model();
        apply_record(&mut row, &record)?;
        row.version = Set(version);
        row.updated_at_ms = Set(self.now());
        let row = row.update(&*txn).await?;
        let free = records::free_capacity_of(&*txn, &row).await?;
        audit::record(
            &*txn,
            self.now(),
            staff.key_id(),
            "mentor.updated",
            "mentor",
            &row.id,
            "",
        )
        .await?;
        txn.commit().await?;

        info!(mentor_id = %row.id, version, "mentor updated");
        records::mentor_to_proto(&row, self.pseudonym(&row.id), free)
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
        ] {
            *field = Set(String::new());
        }
        row.removed = Set(true);
        row.version = Set(version);
        row.updated_at_ms = Set(self.now());
        row.update(&*txn).await?;
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
        records::mentor_to_proto(&row, self.pseudonym(&row.id), free)
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
        rows.iter()
            .map(|row| {
                let free =
                    records::free_places(row.capacity, taken.get(&row.id).copied().unwrap_or(0));
                records::mentor_to_proto(row, self.pseudonym(&row.id), free)
            })
            .collect()
    }
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
