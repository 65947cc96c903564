//! Tandems after the double opt-in: the company records the goals and the cadence, meetings,
//! goal reviews, the end and its feedback; the mentor's side does the same at the node and the
//! broker applies it at the next sync. The rules live in [`tandem_domain::lifecycle`]; this
//! module stores, authorises, audits and tells the mentor's node.
//!
//! Every change is one write transaction: the tandem's new state (conditional on the version
//! read, so two writers cannot overwrite each other), the audit entry, and the outbox message
//! that gives the node its copy. Ending a tandem also closes the introduction at the node,
//! which frees the mentor's place and republishes the profile, and either sends the mentee back
//! to waiting (ended early within the re-matching window) or marks it finished.

use prost::Message;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use tandem_domain::FieldViolation;
use tandem_domain::lifecycle::{self, Ended, LifecycleError, Rules};
use tandem_proto::tandem_event::Event;
use tandem_proto::{
    CheckIn, EndReason, Feedback, MenteeStatus, ReviewPoint, Tandem, TandemEvent, TandemPlan,
    TandemSide,
};
use tandem_storage::broker::{mentee, proposal, tandem};

use crate::{Broker, BrokerError, audit, outbox};

impl From<LifecycleError> for BrokerError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Invalid(v) => BrokerError::Invalid(v),
            LifecycleError::State(msg) => BrokerError::WrongState(msg),
        }
    }
}

fn decode(row: &tandem::Model) -> Result<Tandem, BrokerError> {
    Tandem::decode(row.state.as_slice())
        .map_err(|e| BrokerError::Corrupt(format!("tandem {}: {e}", row.id)))
}

fn version(t: &Tandem) -> i64 {
    i64::try_from(t.version).unwrap_or(i64::MAX)
}

/// The stored columns of a tandem's state.
fn columns(row: &mut tandem::ActiveModel, t: &Tandem, now: i64) {
    row.status = Set(t.status);
    row.started_at_ms = Set(t.started_at_ms);
    row.ended_at_ms = Set(t.ended_at_ms);
    row.next_due_at_ms = Set(t.next_meeting_due_at_ms);
    row.attainment_percent =
        Set(lifecycle::attainment(t).map_or(-1, |a| i32::try_from(a).unwrap_or(100)));
    row.state = Set(t.encode_to_vec());
    row.version = Set(version(t));
    row.updated_at_ms = Set(now);
}

/// Starts the lifecycle record of a proposal that just became a tandem (inside the caller's
/// transaction) and gives the mentor's node its copy. Does nothing when it already exists.
pub(crate) async fn form(
    conn: &impl ConnectionTrait,
    p: &proposal::Model,
    now: i64,
    rules: Rules,
) -> Result<(), BrokerError> {
    if tandem::Entity::find_by_id(p.id.clone())
        .one(conn)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let t = lifecycle::form(&p.id, &p.mentee_id, &p.node_id, &p.pseudonym, now, rules);
    let mut row = tandem::ActiveModel {
        id: Set(p.id.clone()),
        mentee_id: Set(p.mentee_id.clone()),
        company_id: Set(p.company_id.clone()),
        node_id: Set(p.node_id.clone()),
        cross_node: Set(p.cross_node),
        formed_at_ms: Set(now),
        ..Default::default()
    };
    columns(&mut row, &t, now);
    tandem::Entity::insert(row)
        .exec_without_returning(conn)
        .await?;
    outbox::enqueue(conn, vec![outbox::tandem_message(&p.node_id, &t, now)]).await
}

/// Who changes a tandem: the company for the mentee's side, a node for the mentor's.
#[derive(Debug, Clone, Copy)]
enum Owner<'a> {
    Company(&'a str),
    Node(&'a str),
}

impl Owner<'_> {
    fn side(self) -> TandemSide {
        match self {
            Self::Company(_) => TandemSide::Mentee,
            Self::Node(_) => TandemSide::Mentor,
        }
    }

    fn actor(self) -> String {
        match self {
            Self::Company(c) => audit::company(c),
            Self::Node(n) => audit::node(n),
        }
    }
}

/// Returns the tandem `id` of `owner`, or `NotFound` (also for another owner's tandem).
async fn owned(
    conn: &impl ConnectionTrait,
    owner: Owner<'_>,
    id: &str,
) -> Result<tandem::Model, BrokerError> {
    let query = tandem::Entity::find_by_id(id.to_owned());
    let query = match owner {
        Owner::Company(c) => query.filter(tandem::Column::CompanyId.eq(c)),
        Owner::Node(n) => query.filter(tandem::Column::NodeId.eq(n)),
    };
    query
        .one(conn)
        .await?
        .ok_or(BrokerError::NotFound("tandem"))
}

/// Applies `change` to a stored tandem and stores the result with everything it causes.
async fn apply(
    conn: &impl ConnectionTrait,
    row: tandem::Model,
    owner: Owner<'_>,
    action: &str,
    now: i64,
    change: impl FnOnce(&mut Tandem) -> Result<Option<Ended>, LifecycleError>,
) -> Result<Tandem, BrokerError> {
    let mut t = decode(&row)?;
    let ended = change(&mut t)?;
    let mut update = tandem::ActiveModel {
        ..Default::default()
    };
    columns(&mut update, &t, now);
    let written = tandem::Entity::update_many()
        .set(update)
        .filter(tandem::Column::Id.eq(&row.id))
        .filter(tandem::Column::Version.eq(row.version))
        .exec(conn)
        .await?;
    if written.rows_affected == 0 {
        return Err(BrokerError::ChangedConcurrently(
            "the tandem changed at the same time; read it again and retry",
        ));
    }
    let mut messages = vec![outbox::tandem_message(&row.node_id, &t, now)];
    if let Some(ended) = ended {
        let reason = if t.status() == tandem_proto::TandemStatus::Completed {
            "tandem_completed"
        } else {
            "tandem_ended_early"
        };
        messages.push(outbox::close_introduction_message(
            &row.node_id,
            &row.id,
            reason,
            now,
        ));
        let next = if ended.rematch {
            MenteeStatus::Waiting
        } else {
            MenteeStatus::Finished
        };
        mentee::Entity::update_many()
            .col_expr(mentee::Column::Status, Expr::value(next as i32))
            .col_expr(mentee::Column::WaitingReason, Expr::value(""))
            .col_expr(mentee::Column::WaitingDetail, Expr::value(""))
            .col_expr(mentee::Column::UpdatedAtMs, Expr::value(now))
            .filter(mentee::Column::Id.eq(&row.mentee_id))
            .filter(mentee::Column::Status.eq(MenteeStatus::InTandem as i32))
            .exec(conn)
            .await?;
    }
    outbox::enqueue(conn, messages).await?;
    let detail = format!("version={} status={}", t.version, t.status().as_str_name());
    audit::record(
        conn,
        now,
        &owner.actor(),
        action,
        "tandem",
        &row.id,
        &detail,
    )
    .await?;
    tracing::info!(tandem = %row.id, action, side = ?owner.side(), "tandem changed");
    Ok(lifecycle::as_of(t, now))
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, BrokerError> {
    value.ok_or_else(|| FieldViolation::new(field, "is required").into())
}

impl Broker {
    /// Lists the company's tandems (only `mentee_id`'s when not empty), oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_tandems(
        &self,
        company: &str,
        mentee_id: &str,
    ) -> Result<Vec<Tandem>, BrokerError> {
        let mut query = tandem::Entity::find()
            .filter(tandem::Column::CompanyId.eq(company))
            .order_by_asc(tandem::Column::FormedAtMs)
            .order_by_asc(tandem::Column::Id);
        if !mentee_id.is_empty() {
            query = query.filter(tandem::Column::MenteeId.eq(mentee_id));
        }
        let now = self.now();
        query
            .all(self.db())
            .await?
            .iter()
            .map(|row| decode(row).map(|t| lifecycle::as_of(t, now)))
            .collect()
    }

    /// Returns one of the company's tandems.
    #[tracing::instrument(skip(self))]
    pub async fn get_tandem(&self, company: &str, id: &str) -> Result<Tandem, BrokerError> {
        let row = owned(self.db(), Owner::Company(company), id).await?;
        Ok(lifecycle::as_of(decode(&row)?, self.now()))
    }

    /// Runs one change of the company's side in a write transaction.
    async fn company_change(
        &self,
        company: &str,
        id: &str,
        action: &str,
        change: impl FnOnce(&mut Tandem, i64) -> Result<Option<Ended>, LifecycleError>,
    ) -> Result<Tandem, BrokerError> {
        let now = self.now();
        let owner = Owner::Company(company);
        let txn = self.write().await?;
        let row = owned(&*txn, owner, id).await?;
        let t = apply(&*txn, row, owner, action, now, |t| change(t, now)).await?;
        txn.commit().await?;
        self.wake_outbox();
        Ok(t)
    }

    /// Records the goals, cadence and programme length of a starting tandem.
    #[tracing::instrument(skip(self, plan))]
    pub async fn start_tandem(
        &self,
        company: &str,
        id: &str,
        plan: Option<TandemPlan>,
    ) -> Result<Tandem, BrokerError> {
        let plan = required(plan, "plan")?;
        self.company_change(company, id, "tandem.started", |t, now| {
            lifecycle::start(t, &plan, now).map(|()| None)
        })
        .await
    }

    /// Records a meeting from the mentee's side.
    #[tracing::instrument(skip(self, check_in))]
    pub async fn record_check_in(
        &self,
        company: &str,
        id: &str,
        check_in: Option<CheckIn>,
    ) -> Result<Tandem, BrokerError> {
        let c = required(check_in, "check_in")?;
        self.company_change(company, id, "tandem.check_in", |t, now| {
            lifecycle::check_in(t, &c, TandemSide::Mentee, now).map(|()| None)
        })
        .await
    }

    /// Holds a goal review.
    #[tracing::instrument(skip(self))]
    pub async fn review_goals(
        &self,
        company: &str,
        id: &str,
        point: i32,
    ) -> Result<Tandem, BrokerError> {
        let point = ReviewPoint::try_from(point).unwrap_or(ReviewPoint::Unspecified);
        self.company_change(company, id, "tandem.reviewed", |t, now| {
            lifecycle::review(t, point, now).map(|()| None)
        })
        .await
    }

    /// Ends a tandem from the mentee's side.
    #[tracing::instrument(skip(self))]
    pub async fn end_tandem(
        &self,
        company: &str,
        id: &str,
        reason: i32,
    ) -> Result<Tandem, BrokerError> {
        let reason = EndReason::try_from(reason).unwrap_or(EndReason::Unspecified);
        let rules = self.config.lifecycle_rules();
        self.company_change(company, id, "tandem.ended", |t, now| {
            lifecycle::end(t, reason, TandemSide::Mentee, now, rules).map(Some)
        })
        .await
    }

    /// Records the mentee's feedback on an ended tandem.
    #[tracing::instrument(skip(self, feedback))]
    pub async fn give_feedback(
        &self,
        company: &str,
        id: &str,
        feedback: Option<Feedback>,
    ) -> Result<Tandem, BrokerError> {
        let f = required(feedback, "feedback")?;
        self.company_change(company, id, "tandem.feedback", |t, now| {
            lifecycle::feedback(t, &f, TandemSide::Mentee, now).map(|()| None)
        })
        .await
    }
}

/// Applies one entry of a node's tandem log (inside the sync's transaction). An entry the
/// rules refuse (the tandem ended meanwhile, say) is logged and audited, not applied; returns
/// whether it was applied.
pub(crate) async fn apply_node_event(
    conn: &impl ConnectionTrait,
    node_id: &str,
    event: &TandemEvent,
    now: i64,
    rules: Rules,
) -> Result<bool, BrokerError> {
    let owner = Owner::Node(node_id);
    let row = match owned(conn, owner, &event.tandem_id).await {
        Ok(row) => row,
        Err(BrokerError::NotFound(_)) => {
            tracing::warn!(node = %node_id, tandem = %event.tandem_id, "tandem event for an unknown tandem");
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let (action, result) = match &event.event {
        Some(Event::CheckIn(c)) => (
            "tandem.check_in",
            apply(conn, row, owner, "tandem.check_in", now, |t| {
                lifecycle::check_in(t, c, TandemSide::Mentor, now).map(|()| None)
            })
            .await,
        ),
        Some(Event::Ended(reason)) => {
            let reason = EndReason::try_from(*reason).unwrap_or(EndReason::Unspecified);
            (
                "tandem.ended",
                apply(conn, row, owner, "tandem.ended", now, |t| {
                    lifecycle::end(t, reason, TandemSide::Mentor, now, rules).map(Some)
                })
                .await,
            )
        }
        Some(Event::Rating(rating)) => {
            let f = Feedback {
                rating: *rating,
                ..Feedback::default()
            };
            (
                "tandem.feedback",
                apply(conn, row, owner, "tandem.feedback", now, |t| {
                    lifecycle::feedback(t, &f, TandemSide::Mentor, now).map(|()| None)
                })
                .await,
            )
        }
        None => (
            "tandem.unknown_event",
            Err(FieldViolation::new("event", "is empty").into()),
        ),
    };
    match result {
        Ok(_) => Ok(true),
        Err(
            e @ (BrokerError::Invalid(_)
            | BrokerError::WrongState(_)
            | BrokerError::ChangedConcurrently(_)),
        ) => {
            tracing::warn!(node = %node_id, tandem = %event.tandem_id, seq = event.seq, error = %e, "tandem event refused");
            let detail = format!("refused {action} seq={}: {e}", event.seq);
            audit::record(
                conn,
                now,
                &owner.actor(),
                "tandem.event_refused",
                "tandem",
                &event.tandem_id,
                &detail,
            )
            .await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Ends the running tandems of a mentee the company withdrew or erased (as ended early: the
/// mentee's role changed), which frees the mentors' places. Runs inside the caller's
/// transaction, after the mentee left matching; returns the ids of all the mentee's tandems.
pub(crate) async fn end_running(
    conn: &impl ConnectionTrait,
    company: &str,
    mentee_id: &str,
    now: i64,
    rules: Rules,
) -> Result<Vec<String>, BrokerError> {
    let owner = Owner::Company(company);
    let rows = tandem::Entity::find()
        .filter(tandem::Column::CompanyId.eq(company))
        .filter(tandem::Column::MenteeId.eq(mentee_id))
        .all(conn)
        .await?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        ids.push(row.id.clone());
        if !lifecycle::is_ended(&decode(&row)?) {
            apply(conn, row, owner, "tandem.ended", now, |t| {
                lifecycle::end(t, EndReason::ChangedRole, TandemSide::Mentee, now, rules).map(Some)
            })
            .await?;
        }
    }
    Ok(ids)
}

/// Ends the erased mentee's running tandems (as ended early, the mentee's role changed) and
/// removes the company's text from every tandem of the mentee: goal descriptions and the
/// feedback comment. Runs inside the erasure's transaction; returns how many tandems it
/// touched.
pub(crate) async fn erase_mentee(
    conn: &impl ConnectionTrait,
    company: &str,
    mentee_id: &str,
    now: i64,
    rules: Rules,
) -> Result<u32, BrokerError> {
    let owner = Owner::Company(company);
    let ids = end_running(conn, company, mentee_id, now, rules).await?;
    let mut touched = 0;
    for id in ids {
        let row = owned(conn, owner, &id).await?;
        let mut t = decode(&row)?;
        for g in &mut t.goals {
            g.description.clear();
        }
        if let Some(f) = t.mentee_feedback.as_mut() {
            f.comment.clear();
        }
        tandem::Entity::update_many()
            .col_expr(tandem::Column::State, Expr::value(t.encode_to_vec()))
            .filter(tandem::Column::Id.eq(&id))
            .exec(conn)
            .await?;
        touched += 1;
    }
    Ok(touched)
}
