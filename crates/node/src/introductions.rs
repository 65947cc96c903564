//! Introductions: the broker delivers them, the mentor decides at the node, the broker reads
//! the decisions, closes what it no longer pursues and, after the double opt-in, receives the
//! mentor's contact card. When a company erases its mentee, the broker asks the node to forget
//! the mentee summary; the introduction itself stays for the node's records. Every
//! introduction closed or forgotten leaves a tombstone (`tombstones`), and a delivery of it
//! arriving late is refused.

use prost::Message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tandem_proto::{
    ContactCard, DeliverIntroductionRequest, DeliverIntroductionResponse, DeliveryOutcome,
    GetDecisionsResponse, Introduction, IntroductionDecision, MenteeSummary, MentorDecision,
};
use tandem_storage::node::{counter, introduction, mentor, publication};
use tracing::info;

use crate::feed::{cursor, page_size, wire};
use crate::records::{self, encode_reasons, introduction_to_proto};
use crate::tombstones::{self, Ending};
use crate::{NodeError, NodeState, Staff, audit, counters};

/// Longest introduction id the node accepts.
const MAX_ID: usize = 128;
/// Longest close reason the node keeps.
const MAX_REASON: usize = 200;
/// Most score reasons one introduction may carry.
const MAX_REASONS: usize = 32;
/// Most introductions one `DeliverIntroductions` call may carry.
pub const MAX_BATCH: usize = 500;

fn not_found() -> NodeError {
    NodeError::NotFound("introduction not found".to_owned())
}

fn check_introduction_id(id: &str) -> Result<(), NodeError> {
    if id.is_empty() {
        return Err(NodeError::invalid("introduction_id", "is required"));
    }
    if id.len() > MAX_ID {
        return Err(NodeError::invalid(
            "introduction_id",
            format!("longer than {MAX_ID} characters"),
        ));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(NodeError::invalid(
            "introduction_id",
            "must be printable ascii without spaces",
        ));
    }
    Ok(())
}

async fn find(txn: &DatabaseTransaction, id: &str) -> Result<introduction::Model, NodeError> {
    introduction::Entity::find_by_id(id.to_owned())
        .one(txn)
        .await?
        .ok_or_else(not_found)
}

/// Checks a delivery's fields and returns its mentee summary.
fn check_delivery(request: &DeliverIntroductionRequest) -> Result<MenteeSummary, NodeError> {
    check_introduction_id(&request.introduction_id)?;
    let mentee = request
        .mentee
        .clone()
        .ok_or_else(|| NodeError::invalid("mentee", "is required"))?;
    if request.reasons.len() > MAX_REASONS {
        return Err(NodeError::invalid(
            "reasons",
            format!("at most {MAX_REASONS} reasons"),
        ));
    }
    if !request.mentee_ref.is_empty()
        && (request.mentee_ref.len() != 64
            || !request.mentee_ref.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(NodeError::invalid(
            "mentee_ref",
            "must be empty or 64 hex characters",
        ));
    }
    Ok(mentee)
}

fn is_accepted(row: &introduction::Model) -> bool {
    row.decision == MentorDecision::Accepted as i32
}

impl NodeState {
    /// Stores an introduction for the mentor behind `pseudonym`. Idempotent on the
    /// introduction id: a known, live id is acknowledged as a duplicate and nothing changes.
    /// An id that was closed or forgotten here (or told to be before it arrived) is refused
    /// with `WrongState`: a delivery that lost the race against a close or an erasure must not
    /// bring the mentee back.
    pub async fn deliver_introduction(
        &self,
        request: DeliverIntroductionRequest,
    ) -> Result<DeliverIntroductionResponse, NodeError> {
        let mentee = check_delivery(&request)?;
        let txn = self.write().await?;
        let response = self.store_introduction(&txn, request, mentee).await?;
        txn.commit().await?;
        Ok(response)
    }

    /// Delivers a batch of introductions in one transaction, each as
    /// [`NodeState::deliver_introduction`] would (each in a savepoint of its own, so that one
    /// refused introduction leaves the others stored), and returns each one's outcome in order.
    pub async fn deliver_introductions(
        &self,
        requests: Vec<DeliverIntroductionRequest>,
    ) -> Result<Vec<DeliveryOutcome>, NodeError> {
        if requests.len() > MAX_BATCH {
            return Err(NodeError::invalid(
                "introductions",
                format!("at most {MAX_BATCH} introductions per call"),
            ));
        }
        let txn = self.write().await?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            let introduction_id = request.introduction_id.clone();
            let result = match check_delivery(&request) {
                Ok(mentee) => {
                    let savepoint = txn.begin().await?;
                    match self.store_introduction(&savepoint, request, mentee).await {
                        Ok(response) => {
                            savepoint.commit().await?;
                            Ok(response)
                        }
                        Err(refused) => Err(refused),
                    }
                }
                Err(refused) => Err(refused),
            };
            outcomes.push(match result {
                Ok(response) => DeliveryOutcome {
                    introduction_id,
                    code: tonic::Code::Ok as i32,
                    message: String::new(),
                    duplicate: response.duplicate,
                },
                // A database failure fails the whole batch (nothing is committed).
                Err(NodeError::Db(e)) => return Err(NodeError::Db(e)),
                Err(refused) => {
                    let status = tonic::Status::from(refused);
                    DeliveryOutcome {
                        introduction_id,
                        code: status.code() as i32,
                        message: status.message().to_owned(),
                        duplicate: false,
                    }
                }
            });
        }
        txn.commit().await?;
        Ok(outcomes)
    }

    /// Stores one checked introduction inside `txn` (see [`NodeState::deliver_introduction`]).
    async fn store_introduction(
        &self,
        txn: &DatabaseTransaction,
        request: DeliverIntroductionRequest,
        mentee: MenteeSummary,
    ) -> Result<DeliverIntroductionResponse, NodeError> {
        if let Err(refused) = tombstones::refuse_if_ended(txn, &request.introduction_id).await {
            info!(introduction_id = %request.introduction_id, "late delivery of an ended introduction refused");
            return Err(refused);
        }
        if let Some(known) = introduction::Entity::find_by_id(request.introduction_id.clone())
            .one(txn)
            .await?
        {
            if known.mentee_forgotten_at_ms != 0 || known.closed {
                let how = if known.closed { "closed" } else { "forgotten" };
                return Err(tombstones::ended(&request.introduction_id, how));
            }
            info!(introduction_id = %request.introduction_id, "introduction delivered again");
            return Ok(DeliverIntroductionResponse { duplicate: true });
        }
        let mentor_id = self
            .mentor_by_pseudonym(txn, &request.pseudonym)
            .await?
            .ok_or_else(|| NodeError::NotFound("pseudonym: unknown mentor".to_owned()))?;
        // A mentee proposed again to a mentor it was proposed to before (under the mentor's
        // pseudonym of an earlier epoch, which the broker cannot link) is declined at once: a
        // pair is never proposed twice.
        let seen_before = !request.mentee_ref.is_empty()
            && introduction::Entity::find()
                .filter(introduction::Column::MentorId.eq(&mentor_id))
                .filter(introduction::Column::MenteeRef.eq(&request.mentee_ref))
                .one(txn)
                .await?
                .is_some();
        let (decision, decision_seq, decided_at_ms) = if seen_before {
            let seq = counters::next(txn, counter::DECISION_SEQ).await?;
            (MentorDecision::Declined, seq, self.now())
        } else {
            (MentorDecision::Pending, 0, 0)
        };
        introduction::ActiveModel {
            id: Set(request.introduction_id.clone()),
            mentor_id: Set(mentor_id.clone()),
            mentee_summary: Set(mentee.encode_to_vec()),
            reasons: Set(encode_reasons(request.reasons)),
            score: Set(request.score),
            decision: Set(decision as i32),
            decision_seq: Set(decision_seq),
            closed: Set(false),
            close_reason: Set(String::new()),
            contact_released: Set(false),
            received_at_ms: Set(self.now()),
            decided_at_ms: Set(decided_at_ms),
            mentee_forgotten_at_ms: Set(0),
            mentee_ref: Set(request.mentee_ref.clone()),
        }
        .insert(txn)
        .await?;
        audit::record(
            txn,
            self.now(),
            audit::BROKER,
            "introduction.delivered",
            "introduction",
            &request.introduction_id,
            if seen_before {
                "declined: proposed to this mentor before"
            } else {
                ""
            },
        )
        .await?;

        info!(introduction_id = %request.introduction_id, mentor_id, "introduction received");
        Ok(DeliverIntroductionResponse { duplicate: false })
    }

    /// Returns the id of the (not removed) mentor published under `pseudonym` in the current
    /// or the previous epoch.
    async fn mentor_by_pseudonym(
        &self,
        txn: &DatabaseTransaction,
        pseudonym: &str,
    ) -> Result<Option<String>, NodeError> {
        if pseudonym.is_empty() {
            return Ok(None);
        }
        // A pseudonym is a keyed hash that only this node can compute, valid in the current
        // and the previous epoch: an introduction the broker proposed just before a rotation
        // must still reach its mentor. The publication records which mentor each published
        // pseudonym stands for (rows are never deleted), so the usual lookup is one read
        // whatever the node's size; only a pseudonym never published is searched for among
        // all mentors.
        let current = self.epoch();
        let previous = current.and_then(|n| n.checked_sub(1));
        let is_theirs = |mentor_id: &str| {
            self.pseudonym_in(current, mentor_id) == pseudonym
                || previous.is_some_and(|p| self.pseudonym_in(Some(p), mentor_id) == pseudonym)
        };
        if let Some(row) = publication::Entity::find_by_id(pseudonym.to_owned())
            .one(txn)
            .await?
        {
            let active = mentor::Entity::find_by_id(row.mentor_id.clone())
                .one(txn)
                .await?
                .is_some_and(|m| !m.removed);
            return Ok((active && is_theirs(&row.mentor_id)).then_some(row.mentor_id));
        }
        let ids: Vec<String> = mentor::Entity::find()
            .select_only()
            .column(mentor::Column::Id)
            .filter(mentor::Column::Removed.eq(false))
            .into_tuple()
            .all(txn)
            .await?;
        Ok(ids.into_iter().find(|id| is_theirs(id)))
    }

    /// Returns the introductions the node received (only one mentor's when given), newest first.
    pub async fn list_introductions(
        &self,
        mentor_id: Option<&str>,
    ) -> Result<Vec<Introduction>, NodeError> {
        let mut query = introduction::Entity::find();
        if let Some(mentor_id) = mentor_id {
            query = query.filter(introduction::Column::MentorId.eq(mentor_id));
        }
        query
            .order_by_desc(introduction::Column::ReceivedAtMs)
            .order_by_desc(introduction::Column::Id)
            .all(self.db())
            .await?
            .iter()
            .map(introduction_to_proto)
            .collect()
    }

    /// Records a mentor's accept or decline. Accepting takes one of the mentor's places, so the
    /// profile is republished with the new free capacity.
    pub async fn record_decision(
        &self,
        staff: &Staff,
        introduction_id: &str,
        decision: i32,
    ) -> Result<Introduction, NodeError> {
        let decision = match MentorDecision::try_from(decision) {
            Ok(d @ (MentorDecision::Accepted | MentorDecision::Declined)) => d,
            _ => {
                return Err(NodeError::invalid(
                    "decision",
                    "must be ACCEPTED or DECLINED",
                ));
            }
        };

        let txn = self.write().await?;
        let row = find(&txn, introduction_id).await?;
        if row.closed {
            return Err(NodeError::WrongState("introduction is closed".to_owned()));
        }
        if row.decision != MentorDecision::Pending as i32 {
            return Err(NodeError::WrongState(
                "introduction was already decided".to_owned(),
            ));
        }
        if decision == MentorDecision::Accepted {
            let mentor = mentor::Entity::find_by_id(row.mentor_id.clone())
                .one(&*txn)
                .await?
                .filter(|m| !m.removed)
                .ok_or_else(|| NodeError::WrongState("mentor was removed".to_owned()))?;
            if records::free_capacity_of(&*txn, &mentor).await? == 0 {
                return Err(NodeError::WrongState("mentor has no free place".to_owned()));
            }
        }
        let sequence = counters::next(&txn, counter::DECISION_SEQ).await?;
        let mentor_id = row.mentor_id.clone();
        let mut row = row.into_active_model();
        row.decision = Set(decision as i32);
        row.decision_seq = Set(sequence);
        row.decided_at_ms = Set(self.now());
        let row = row.update(&*txn).await?;
        if decision == MentorDecision::Accepted {
            records::republish_mentor(&txn, &mentor_id, self.now()).await?;
        }
        audit::record(
            &*txn,
            self.now(),
            staff.key_id(),
            "introduction.decided",
            "introduction",
            introduction_id,
            decision.as_str_name(),
        )
        .await?;
        txn.commit().await?;

        info!(
            introduction_id,
            mentor_id,
            decision = decision.as_str_name(),
            sequence,
            "decision recorded"
        );
        introduction_to_proto(&row)
    }

    /// Returns the decisions recorded after `since`, oldest first.
    pub async fn decisions(
        &self,
        since: u64,
        limit: u32,
    ) -> Result<GetDecisionsResponse, NodeError> {
        let limit = page_size(limit);
        let mut rows = introduction::Entity::find()
            .filter(introduction::Column::DecisionSeq.gt(cursor(since)))
            .order_by_asc(introduction::Column::DecisionSeq)
            .limit(u64::from(limit) + 1)
            .all(self.db())
            .await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = rows.last().map_or(since, |row| wire(row.decision_seq));
        let decisions = rows
            .into_iter()
            .map(|row| IntroductionDecision {
                introduction_id: row.id,
                decision: row.decision,
                sequence: wire(row.decision_seq),
            })
            .collect();
        Ok(GetDecisionsResponse {
            decisions,
            next,
            has_more,
        })
    }

    /// Returns the mentor's decision on one introduction (pending while the mentor has not
    /// answered), for a broker that needs it before its next sync. Reads only: the decision
    /// log that `decisions` serves is unchanged.
    pub async fn decision(&self, introduction_id: &str) -> Result<IntroductionDecision, NodeError> {
        check_introduction_id(introduction_id)?;
        let row = introduction::Entity::find_by_id(introduction_id.to_owned())
            .one(self.db())
            .await?
            .ok_or_else(not_found)?;
        Ok(IntroductionDecision {
            introduction_id: row.id,
            decision: row.decision,
            sequence: wire(row.decision_seq),
        })
    }

    /// Ends an introduction the broker no longer pursues. Idempotent: closing a closed
    /// introduction changes nothing. An accepted introduction frees its mentor's place. An id
    /// the node never stored gets its tombstone, so that a delivery still under way is refused.
    pub async fn close_introduction(
        &self,
        introduction_id: &str,
        reason: &str,
    ) -> Result<(), NodeError> {
        check_introduction_id(introduction_id)?;
        let reason = reason.trim();
        if reason.chars().count() > MAX_REASON {
            return Err(NodeError::invalid(
                "reason",
                format!("longer than {MAX_REASON} characters"),
            ));
        }
        if reason.chars().any(char::is_control) {
            return Err(NodeError::invalid("reason", "contains control characters"));
        }

        let txn = self.write().await?;
        let ids = [introduction_id.to_owned()];
        tombstones::record(&*txn, &ids, Ending::Closed, self.now()).await?;
        let Some(row) = introduction::Entity::find_by_id(introduction_id.to_owned())
            .one(&*txn)
            .await?
        else {
            audit::record(
                &*txn,
                self.now(),
                audit::BROKER,
                "introduction.closed",
                "introduction",
                introduction_id,
                &format!("{reason}; never delivered"),
            )
            .await?;
            txn.commit().await?;
            info!(
                introduction_id,
                reason, "introduction closed before it arrived"
            );
            return Ok(());
        };
        if row.closed {
            txn.commit().await?;
            return Ok(());
        }
        let frees_place = is_accepted(&row);
        let mentor_id = row.mentor_id.clone();
        let mut row = row.into_active_model();
        row.closed = Set(true);
        row.close_reason = Set(reason.to_owned());
        row.update(&*txn).await?;
        if frees_place {
            records::republish_mentor(&txn, &mentor_id, self.now()).await?;
        }
        audit::record(
            &*txn,
            self.now(),
            audit::BROKER,
            "introduction.closed",
            "introduction",
            introduction_id,
            reason,
        )
        .await?;
        txn.commit().await?;

        info!(
            introduction_id,
            mentor_id, reason, frees_place, "introduction closed"
        );
        Ok(())
    }

    /// Returns the mentor's contact card for an accepted, open introduction and notes that it
    /// was released. Refused for anything else: the card moves only after the double opt-in.
    pub async fn release_contact_card(
        &self,
        introduction_id: &str,
    ) -> Result<ContactCard, NodeError> {
        let txn = self.write().await?;
        let row = find(&txn, introduction_id).await?;
        if !is_accepted(&row) {
            return Err(NodeError::WrongState(
                "the mentor has not accepted this introduction".to_owned(),
            ));
        }
        if row.closed {
            return Err(NodeError::WrongState("introduction is closed".to_owned()));
        }
        let mentor = mentor::Entity::find_by_id(row.mentor_id.clone())
            .one(&*txn)
            .await?
            .filter(|m| !m.removed)
            .ok_or_else(|| NodeError::WrongState("mentor was removed".to_owned()))?;
        if !row.contact_released {
            let mut row = row.into_active_model();
            row.contact_released = Set(true);
            row.update(&*txn).await?;
        }
        // Every release is recorded, the first and any repeated one.
        audit::record(
            &*txn,
            self.now(),
            audit::BROKER,
            "contact_card.released",
            "introduction",
            introduction_id,
            "",
        )
        .await?;
        txn.commit().await?;

        info!(introduction_id, mentor_id = %mentor.id, "contact card released");
        Ok(ContactCard {
            display_name: mentor.display_name,
            email: mentor.email,
            title: mentor.title,
            organisation: mentor.employer_name,
            node_id: self.node_id.clone(),
        })
    }

    /// Forgets the mentee summary and the score reasons (which describe the mentee's goals) of
    /// an introduction because the company erased the mentee. The introduction's id, mentor,
    /// decision and state stay. Idempotent: forgetting again changes nothing. An id the node
    /// never stored gets its tombstone (a delivery still under way is refused) and the answer
    /// is the same: nothing of the mentee is here.
    pub async fn forget_mentee(&self, introduction_id: &str) -> Result<(), NodeError> {
        check_introduction_id(introduction_id)?;
        let txn = self.write().await?;
        let ids = [introduction_id.to_owned()];
        tombstones::record(&*txn, &ids, Ending::Forgotten, self.now()).await?;
        let Some(row) = introduction::Entity::find_by_id(introduction_id.to_owned())
            .one(&*txn)
            .await?
        else {
            audit::record(
                &*txn,
                self.now(),
                audit::BROKER,
                "introduction.mentee_forgotten",
                "introduction",
                introduction_id,
                "never delivered",
            )
            .await?;
            txn.commit().await?;
            info!(
                introduction_id,
                "mentee forgotten before its introduction arrived"
            );
            return Ok(());
        };
        if row.mentee_forgotten_at_ms != 0 {
            txn.commit().await?;
            return Ok(());
        }
        let mut row = row.into_active_model();
        row.mentee_summary = Set(Vec::new());
        row.reasons = Set(Vec::new());
        row.mentee_forgotten_at_ms = Set(self.now().max(1));
        row.mentee_ref = Set(String::new());
        row.update(&*txn).await?;
        audit::record(
            &*txn,
            self.now(),
            audit::BROKER,
            "introduction.mentee_forgotten",
            "introduction",
            introduction_id,
            "",
        )
        .await?;
        txn.commit().await?;

        info!(introduction_id, "mentee summary forgotten");
        Ok(())
    }
}
