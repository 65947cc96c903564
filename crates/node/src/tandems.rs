//! The mentor's side of a tandem. The broker keeps the tandem and sends the node a copy after
//! every change (`UpdateTandem`); the node's staff record the mentor's meetings, an ending and
//! the mentor's rating here. The node checks each entry against its copy with the same rules
//! the broker applies, keeps it in its tandem log for the broker's next sync, and shows it in
//! its copy at once. The mentor's feedback comment never leaves the node.
//!
//! The stored `version` is always the broker's: a local entry changes the copy but not the
//! version, so the broker's next copy (which includes the entry, or refuses it) replaces it.

use prost::Message;
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use tandem_domain::lifecycle::{self, LifecycleError, Rules};
use tandem_proto::tandem_event::Event;
use tandem_proto::{
    CheckIn, EndReason, Feedback, GetTandemEventsResponse, Tandem, TandemEvent, TandemSide,
    UpdateTandemRequest,
};
use tandem_storage::node::{counter, introduction, tandem, tandem_event};

use crate::feed::{cursor, page_size, wire};
use crate::staff::Staff;
use crate::{NodeError, NodeState, audit, counters};

impl From<LifecycleError> for NodeError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Invalid(v) => NodeError::Invalid(v),
            LifecycleError::State(msg) => NodeError::WrongState(msg),
        }
    }
}

fn not_found() -> NodeError {
    NodeError::NotFound("tandem not found".to_owned())
}

fn decode(row: &tandem::Model) -> Result<Tandem, NodeError> {
    Tandem::decode(row.state.as_slice())
        .map_err(|e| NodeError::Corrupt(format!("tandem {}: {e}", row.id)))
}

/// The copy as the node's staff see it: overdue evaluated now, the mentor's comment included.
fn view(row: &tandem::Model, now: i64) -> Result<Tandem, NodeError> {
    let mut t = lifecycle::as_of(decode(row)?, now);
    if let Some(f) = t.mentor_feedback.as_mut() {
        f.comment.clone_from(&row.mentor_comment);
    }
    Ok(t)
}

impl NodeState {
    /// Keeps the broker's copy of a tandem of one of the node's mentors. A copy not newer
    /// than the one held changes nothing, except that an equal version replaces local entries
    /// the broker refused.
    pub async fn update_tandem(&self, request: UpdateTandemRequest) -> Result<(), NodeError> {
        let t = request
            .tandem
            .ok_or_else(|| NodeError::invalid("tandem", "is required"))?;
        if t.tandem_id.is_empty() {
            return Err(NodeError::invalid("tandem.tandem_id", "is required"));
        }
        if !t.mentee_id.is_empty() {
            return Err(NodeError::invalid(
                "tandem.mentee_id",
                "must be empty: the node holds no mentee ids",
            ));
        }
        let version = i64::try_from(t.version)
            .map_err(|_| NodeError::invalid("tandem.version", "out of range"))?;
        let now = self.now();
        let txn = self.write().await?;
        let intro = introduction::Entity::find_by_id(t.tandem_id.clone())
            .one(&*txn)
            .await?
            .ok_or_else(not_found)?;
        let state = t.encode_to_vec();
        match tandem::Entity::find_by_id(t.tandem_id.clone())
            .one(&*txn)
            .await?
        {
            Some(row) if row.version > version => return Ok(()),
            Some(row) => {
                let mut row = row.into_active_model();
                row.version = Set(version);
                row.state = Set(state);
                row.updated_at_ms = Set(now);
                row.update(&*txn).await?;
            }
            None => {
                audit::record(
                    &*txn,
                    self.now(),
                    audit::BROKER,
                    "tandem.received",
                    "tandem",
                    &t.tandem_id,
                    "",
                )
                .await?;
                tandem::ActiveModel {
                    id: Set(t.tandem_id.clone()),
                    mentor_id: Set(intro.mentor_id),
                    version: Set(version),
                    state: Set(state),
                    mentor_comment: Set(String::new()),
                    updated_at_ms: Set(now),
                }
                .insert(&*txn)
                .await?;
            }
        }
        txn.commit().await?;
        tracing::debug!(tandem = %t.tandem_id, version, "tandem copy updated");
        Ok(())
    }

    /// Returns the tandem log after `since`, oldest first.
    pub async fn tandem_events(
        &self,
        since: u64,
        limit: u32,
    ) -> Result<GetTandemEventsResponse, NodeError> {
        let since = cursor(since);
        let limit = u64::from(page_size(limit));
        let mut rows = tandem_event::Entity::find()
            .filter(tandem_event::Column::Seq.gt(since))
            .order_by_asc(tandem_event::Column::Seq)
            .limit(limit + 1)
            .all(self.db())
            .await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = rows.last().map_or(since, |r| r.seq);
        let events = rows
            .iter()
            .map(|r| {
                TandemEvent::decode(r.event.as_slice())
                    .map_err(|e| NodeError::Corrupt(format!("tandem event {}: {e}", r.seq)))
            })
            .collect::<Result<_, _>>()?;
        Ok(GetTandemEventsResponse {
            events,
            next: wire(next),
            has_more,
        })
    }

    /// Lists the tandems of the node's mentors (only `mentor_id`'s when not empty).
    pub async fn list_tandems(&self, mentor_id: &str) -> Result<Vec<Tandem>, NodeError> {
        let mut query = tandem::Entity::find().order_by_asc(tandem::Column::Id);
        if !mentor_id.is_empty() {
            query = query.filter(tandem::Column::MentorId.eq(mentor_id));
        }
        let now = self.now();
        query
            .all(self.db())
            .await?
            .iter()
            .map(|row| view(row, now))
            .collect()
    }

    /// Applies one entry of the mentor's side to the copy and appends it to the tandem log.
    async fn record(
        &self,
        staff: &Staff,
        tandem_id: &str,
        event: Event,
        comment: Option<String>,
    ) -> Result<Tandem, NodeError> {
        let now = self.now();
        let txn = self.write().await?;
        let row = tandem::Entity::find_by_id(tandem_id.to_owned())
            .one(&*txn)
            .await?
            .ok_or_else(not_found)?;
        let mut t = decode(&row)?;
        let broker_version = t.version;
        match &event {
            Event::CheckIn(c) => lifecycle::check_in(&mut t, c, TandemSide::Mentor, now)?,
            Event::Ended(reason) => {
                let reason = EndReason::try_from(*reason).unwrap_or(EndReason::Unspecified);
                let rules = Rules {
                    grace_days: t.grace_days,
                    // The broker decides about re-matching; the node only records the end.
                    rematch_window_days: 0,
                };
                lifecycle::end(&mut t, reason, TandemSide::Mentor, now, rules)?;
                t.mentee_rematched = false;
            }
            Event::Rating(rating) => {
                let f = Feedback {
                    rating: *rating,
                    comment: comment.clone().unwrap_or_default(),
                    given_at_ms: now,
                };
                lifecycle::feedback(&mut t, &f, TandemSide::Mentor, now)?;
                if let Some(f) = t.mentor_feedback.as_mut() {
                    f.comment.clear();
                }
            }
        }
        t.version = broker_version;
        let action = match &event {
            Event::CheckIn(_) => "tandem.check_in",
            Event::Ended(_) => "tandem.ended",
            Event::Rating(_) => "tandem.feedback",
        };
        audit::record(
            &*txn,
            self.now(),
            staff.key_id(),
            action,
            "tandem",
            tandem_id,
            "",
        )
        .await?;
        self.append_event(&txn, tandem_id, event, now).await?;
        let mut active = row.into_active_model();
        active.state = Set(t.encode_to_vec());
        if let Some(comment) = comment {
            active.mentor_comment = Set(comment);
        }
        active.updated_at_ms = Set(now);
        let row = active.update(&*txn).await?;
        txn.commit().await?;
        tracing::info!(tandem = %tandem_id, "mentor side recorded");
        view(&row, now)
    }

    async fn append_event(
        &self,
        txn: &DatabaseTransaction,
        tandem_id: &str,
        event: Event,
        now: i64,
    ) -> Result<(), NodeError> {
        let seq = counters::next(txn, counter::TANDEM_EVENT_SEQ).await?;
        let entry = TandemEvent {
            seq: wire(seq),
            tandem_id: tandem_id.to_owned(),
            event: Some(event),
            recorded_at_ms: now,
        };
        tandem_event::ActiveModel {
            seq: Set(seq),
            tandem_id: Set(tandem_id.to_owned()),
            event: Set(entry.encode_to_vec()),
            recorded_at_ms: Set(now),
        }
        .insert(txn)
        .await?;
        Ok(())
    }

    /// Records a meeting from the mentor's side.
    pub async fn record_mentor_check_in(
        &self,
        staff: &Staff,
        tandem_id: &str,
        check_in: Option<CheckIn>,
    ) -> Result<Tandem, NodeError> {
        let c = check_in.ok_or_else(|| NodeError::invalid("check_in", "is required"))?;
        self.record(staff, tandem_id, Event::CheckIn(c), None).await
    }

    /// Ends a tandem from the mentor's side.
    pub async fn end_mentor_tandem(
        &self,
        staff: &Staff,
        tandem_id: &str,
        reason: i32,
    ) -> Result<Tandem, NodeError> {
        self.record(staff, tandem_id, Event::Ended(reason), None)
            .await
    }

    /// Records the mentor's feedback; the rating goes to the broker, the comment stays here.
    pub async fn give_mentor_feedback(
        &self,
        staff: &Staff,
        tandem_id: &str,
        feedback: Option<Feedback>,
    ) -> Result<Tandem, NodeError> {
        let f = feedback.ok_or_else(|| NodeError::invalid("feedback", "is required"))?;
        self.record(staff, tandem_id, Event::Rating(f.rating), Some(f.comment))
            .await
    }
}
