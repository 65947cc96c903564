//! Delivery lanes: how the [`outbox`](crate::outbox) reaches the nodes.
//!
//! Each node has one lane. A lane delivers its node's messages strictly in the order they were
//! written, in batches: it claims up to [`CLAIM_BATCH`] due messages at once, sends each run of
//! consecutive introductions as one `DeliverIntroductions` call (every other message, and every
//! introduction to a node that does not offer the batch call, on its own), and writes all their
//! results in one transaction. Each call is made within `outbox_deadline_ms`; a failure holds the lane
//! (never skipping ahead, so that a node never sees an introduction closed before it was
//! delivered) and is retried after a jittered exponential backoff from `outbox_retry_base_ms`
//! up to five minutes. Lanes run side by side, so a node that hangs slows only its own.
//!
//! A lane claims its node's next message with a lease (`leased_until_ms`) in a short write
//! transaction: on PostgreSQL the row is read `FOR UPDATE SKIP LOCKED` and the claim is a
//! conditional update, so of several broker replicas on one database one at a time holds a
//! message, and when a replica dies its lease runs out and another takes over. Every result
//! (delivered, retry later, dead letter) is written conditionally on the row still being
//! pending under the lease the lane set: a result that comes too late (the message was
//! cancelled by an erasure, dropped by an operator, or taken over after the lease ran out)
//! changes nothing. A replica taking over may deliver a message twice; the nodes' calls are
//! idempotent on the introduction id.
//!
//! A message the node refuses for good (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`,
//! `UNIMPLEMENTED`, a delivery for a mentor the node does not know, a payload that does not
//! decode, a kind the broker does not know) or that failed `outbox_max_attempts` times becomes
//! a dead letter and stops holding back the lane; operators list, retry and drop dead letters
//! (see `dead_letters`).
//!
//! Nothing a caller waits for talks to a node: a change commits its messages with its
//! transaction and calls [`Broker::wake_outbox`]. The background [`run`] loop starts a lane
//! for every node with a due message when woken, when a retry falls due, and every
//! `outbox_interval_secs` as a safety net (messages other replicas wrote, expired leases).
//! [`Broker::deliver_outbox`] drives every lane once, for tests and tools.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rand::Rng;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tandem_proto::{
    CloseIntroductionRequest, DeliverIntroductionRequest, DeliverIntroductionsRequest,
    ForgetMenteeRequest, UpdateTandemRequest,
};
use tandem_storage::broker::{node, outbox};
use tokio::sync::Notify;

use crate::{Broker, BrokerError};

mod background;
pub(crate) use background::run;

/// Longest wait between two attempts, in milliseconds.
pub(crate) const MAX_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// How much longer than one attempt's deadline a lease lasts: time to write the result.
const LEASE_MARGIN_MS: i64 = 5_000;
/// Most messages one lane run finishes before it makes room (the background loop starts the
/// lane again at once when more are due).
const LANE_RUN_LIMIT: usize = 2000;
/// Most messages a lane claims at once (and so delivers in one call when they are consecutive
/// introductions; the node takes up to 500).
pub(crate) const CLAIM_BATCH: u64 = 200;
/// Most introductions in one `DeliverIntroductions` call (the node's limit).
const DELIVERY_BATCH_LIMIT: usize = 500;

/// The lanes of this process: the signal that wakes them, one lock per node, so that one
/// lane per node runs here at a time, and the leases this process holds right now.
#[derive(Default)]
pub(crate) struct Lanes {
    wake: Notify,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Message id → lease, from the claim until the result is written.
    held: std::sync::Mutex<HashMap<i64, i64>>,
}

impl Lanes {
    fn lock_of(&self, node_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(node_id.to_owned()).or_default())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<i64, i64>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Returns the wait before the next attempt after `failures` failed ones (at least one):
/// `base_ms` doubled per earlier failure, at most five minutes, of which the lower half is
/// fixed and the upper half scaled by `jitter` (0 to 1), so that lanes that failed together do
/// not retry together.
pub(crate) fn backoff_ms(base_ms: u64, failures: i32, jitter: f64) -> i64 {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = base_ms
        .saturating_mul(1u64 << doublings)
        .min(MAX_BACKOFF_MS);
    let half = full / 2;
    let spread = (half as f64 * jitter.clamp(0.0, 1.0)) as u64;
    i64::try_from(full - half + spread).unwrap_or(i64::MAX)
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    /// The node acknowledged (or had nothing left to do).
    Delivered,
    /// The node could not take it now: retry later.
    Failed(String),
    /// The node (or the broker) refuses it for good: it becomes a dead letter.
    Refused(String),
    /// Not sent: an earlier message of its batch failed, and the lane waits.
    Unattempted,
}

/// A message a lane holds under its lease.
struct Claim {
    /// The row as claimed (its attempts include this one).
    msg: outbox::Model,
    lease: i64,
}

/// What a lane run did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LaneRun {
    /// Messages the node acknowledged.
    pub(crate) delivered: usize,
    /// Messages delivered or moved to the dead letters.
    pub(crate) finished: usize,
}

/// The first pending message of a node's lane and when the lane can next take it.
struct LaneHead {
    node_id: String,
    due_at_ms: i64,
}

/// A message still to deliver: neither delivered (nor cancelled or dropped) nor a dead letter.
pub(crate) fn pending() -> Condition {
    Condition::all()
        .add(outbox::Column::DeliveredAtMs.eq(0))
        .add(outbox::Column::DeadLetteredAtMs.eq(0))
}

/// The row still as the lane claimed it: pending, under the lane's lease.
fn still_claimed(claim: &Claim) -> Condition {
    pending()
        .add(outbox::Column::Id.eq(claim.msg.id))
        .add(outbox::Column::LeasedUntilMs.eq(claim.lease))
}

fn status_text(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// Returns what a node's answer to a message of `kind` means for the message.
fn classify(kind: &str, answer: Result<(), tonic::Status>) -> Outcome {
    use tonic::Code;
    match answer {
        Ok(()) => Outcome::Delivered,
        // The node no longer knows the introduction (its mentor was erased, or its delivery
        // was cancelled): there is nothing left to close, update or forget.
        Err(s) if s.code() == Code::NotFound && kind != outbox::DELIVER => Outcome::Delivered,
        // The node does not know the mentor: it will never take the introduction.
        Err(s) if s.code() == Code::NotFound => Outcome::Refused(status_text(&s)),
        Err(s) if is_refusal_for_good(s.code()) => Outcome::Refused(status_text(&s)),
        Err(s) => Outcome::Failed(status_text(&s)),
    }
}

/// The answers after which sending the same message again cannot succeed.
fn is_refusal_for_good(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition | tonic::Code::Unimplemented
    )
}

fn decode<T: Message + Default>(msg: &outbox::Model) -> Result<T, Outcome> {
    T::decode(msg.payload.as_slice())
        .map_err(|e| Outcome::Refused(format!("undecodable payload: {e}")))
}

impl Broker {
    /// Wakes the delivery lanes: messages a change just committed go out now, without the
    /// caller waiting for any node.
    pub fn wake_outbox(&self) {
        self.lanes.wake.notify_one();
    }

    /// Drives the lane of every node with pending messages once, side by side, each until its
    /// next message is not due, fails or is held by another replica; returns how many messages
    /// the nodes acknowledged. A lane the background loop is running is waited for.
    #[tracing::instrument(skip(self))]
    pub async fn deliver_outbox(&self) -> Result<usize, BrokerError> {
        Ok(self.drive_all_lanes().await?.delivered)
    }

    /// Drives the lanes until none has a due message left: what can be delivered now has
    /// been, and what remains waits for a retry later (or is held by another replica). Returns
    /// how many messages the nodes acknowledged. Tests wait for delivery with it.
    #[tracing::instrument(skip(self))]
    pub async fn settle_outbox(&self) -> Result<usize, BrokerError> {
        let mut delivered = 0;
        loop {
            let run = self.drive_all_lanes().await?;
            delivered += run.delivered;
            if run.finished == 0 {
                return Ok(delivered);
            }
        }
    }

    async fn drive_all_lanes(&self) -> Result<LaneRun, BrokerError> {
        let heads = self.lane_heads().await?;
        let runs = heads.iter().map(|h| self.drive_lane(&h.node_id));
        let mut total = LaneRun::default();
        for run in futures_util::future::join_all(runs).await {
            let run = run?;
            total.delivered += run.delivered;
            total.finished += run.finished;
        }
        Ok(total)
    }

    /// Returns the first pending message of every lane that has one, with when it is due: its
    /// next attempt, or the end of another replica's lease.
    async fn lane_heads(&self) -> Result<Vec<LaneHead>, BrokerError> {
        let firsts: Vec<Option<i64>> = outbox::Entity::find()
            .select_only()
            .column_as(outbox::Column::Id.min(), "first")
            .filter(pending())
            .group_by(outbox::Column::NodeId)
            .into_tuple()
            .all(self.db())
            .await?;
        let firsts: Vec<i64> = firsts.into_iter().flatten().collect();
        if firsts.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64, i64)> = outbox::Entity::find()
            .select_only()
            .columns([
                outbox::Column::NodeId,
                outbox::Column::NextAttemptAtMs,
                outbox::Column::LeasedUntilMs,
            ])
            .filter(outbox::Column::Id.is_in(firsts))
            .order_by_asc(outbox::Column::NodeId)
            .into_tuple()
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(node_id, next_attempt, leased_until)| LaneHead {
                node_id,
                due_at_ms: next_attempt.max(leased_until),
            })
            .collect())
    }

    /// Delivers `node_id`'s due messages in order until the next one is not due, fails or is
    /// held elsewhere.
    #[tracing::instrument(skip(self))]
    pub(crate) async fn drive_lane(&self, node_id: &str) -> Result<LaneRun, BrokerError> {
        let lock = self.lanes.lock_of(node_id);
        let _lane = lock.lock().await;
        let node = node::Entity::find_by_id(node_id.to_owned())
            .one(self.db())
            .await?;
        let mut run = LaneRun::default();
        while run.finished < LANE_RUN_LIMIT {
            let claims = self.claim(node_id).await?;
            if claims.is_empty() {
                break;
            }
            let outcomes = match &node {
                Some(n) => self.attempt(n, &claims).await,
                None => claims
                    .iter()
                    .map(|_| Outcome::Refused("the node is not registered".to_owned()))
                    .collect(),
            };
            let batch = self.finish(&claims, outcomes).await?;
            run.finished += batch.finished;
            run.delivered += batch.delivered;
            if batch.retry {
                break;
            }
        }
        Ok(run)
    }

    /// Claims the node's next due messages (up to [`CLAIM_BATCH`], consecutive from the lane's
    /// first one) under one lease when the first is due and nobody holds it; empty when there
    /// is none to take now. A first message whose earlier holders all vanished without a result
    /// (`outbox_max_attempts` claims) becomes a dead letter instead.
    async fn claim(&self, node_id: &str) -> Result<Vec<Claim>, BrokerError> {
        let max_attempts = i32::try_from(self.config.outbox_max_attempts).unwrap_or(i32::MAX);
        loop {
            let now = self.now();
            let txn = self.write().await?;
            let lane = pending().add(outbox::Column::NodeId.eq(node_id));
            let rows = outbox::Entity::find()
                .filter(lane.clone())
                .order_by_asc(outbox::Column::Id)
                .limit(CLAIM_BATCH)
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .all(&*txn)
                .await?;
            let Some(head) = rows.first() else {
                return Ok(Vec::new());
            };
            // SKIP LOCKED passes over a message another transaction holds right now; the lane
            // then waits rather than take a later message first. (Under SQLite's single writer
            // the rows are always the lane's first ones.)
            let in_order: Vec<i64> = outbox::Entity::find()
                .select_only()
                .column(outbox::Column::Id)
                .filter(lane)
                .order_by_asc(outbox::Column::Id)
                .limit(CLAIM_BATCH)
                .into_tuple()
                .all(&*txn)
                .await?;
            if in_order.first() != Some(&head.id)
                || head.next_attempt_at_ms > now
                || head.leased_until_ms > now
            {
                return Ok(Vec::new());
            }
            if head.attempts >= max_attempts {
                // Claimed that often already: whoever held it last died while sending it (or
                // the limit was lowered since).
                let held = pending()
                    .add(outbox::Column::Id.eq(head.id))
                    .add(outbox::Column::LeasedUntilMs.eq(head.leased_until_ms));
                let detail = format!(
                    "gave up after {} attempts; last error: {}",
                    head.attempts, head.last_error
                );
                self.dead_letter_where(&*txn, held, now, &detail).await?;
                txn.commit().await?;
                tracing::warn!(node = %node_id, message = head.id, kind = %head.kind, "message dead-lettered");
                continue;
            }
            // The head and the messages right behind it that are due and free as well (a
            // message another replica skipped past, or one still waiting for its retry, ends
            // the batch: nothing is taken out of order).
            let batch: Vec<outbox::Model> = rows
                .iter()
                .enumerate()
                .take_while(|(k, row)| {
                    in_order.get(*k) == Some(&row.id)
                        && row.next_attempt_at_ms <= now
                        && row.leased_until_ms <= now
                        && row.attempts < max_attempts
                })
                .map(|(_, row)| row.clone())
                .collect();
            let deadline = i64::try_from(self.config.outbox_deadline_ms).unwrap_or(i64::MAX);
            // Each claim's lease differs from the one before, so that a result written under a
            // lease that ran out and was taken over matches nothing.
            let latest = batch.iter().map(|m| m.leased_until_ms).max().unwrap_or(0);
            let lease = now
                .saturating_add(deadline)
                .saturating_add(LEASE_MARGIN_MS)
                .max(latest.saturating_add(1));
            let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
            let claimed = outbox::Entity::update_many()
                .col_expr(outbox::Column::LeasedUntilMs, Expr::value(lease))
                .col_expr(
                    outbox::Column::Attempts,
                    sea_orm::sea_query::ExprTrait::add(Expr::col(outbox::Column::Attempts), 1),
                )
                .filter(pending())
                .filter(outbox::Column::Id.is_in(ids.clone()))
                .filter(outbox::Column::LeasedUntilMs.lte(now))
                .exec(&*txn)
                .await?;
            if claimed.rows_affected != ids.len() as u64 {
                // Someone else took part of it meanwhile: leave it all to the next try.
                drop(txn);
                return Ok(Vec::new());
            }
            txn.commit().await?;
            let mut held = self.lanes.held();
            let claims = batch
                .into_iter()
                .map(|mut msg| {
                    held.insert(msg.id, lease);
                    msg.attempts += 1;
                    msg.leased_until_ms = lease;
                    Claim { msg, lease }
                })
                .collect();
            drop(held);
            return Ok(claims);
        }
    }

    /// Sends a lane's claimed messages in order, each run of consecutive introductions as one
    /// call, each call within the attempt deadline, until one fails; returns one outcome per
    /// claim (`Unattempted` after a failure).
    async fn attempt(&self, node: &node::Model, claims: &[Claim]) -> Vec<Outcome> {
        let deadline = Duration::from_millis(self.config.outbox_deadline_ms);
        let timed_out = || {
            Outcome::Failed(format!(
                "no answer within {} ms",
                self.config.outbox_deadline_ms
            ))
        };
        let mut outcomes = Vec::with_capacity(claims.len());
        let mut k = 0;
        while k < claims.len() {
            let run = claims[k..]
                .iter()
                .take(DELIVERY_BATCH_LIMIT)
                .take_while(|c| c.msg.kind == outbox::DELIVER)
                .count();
            let results = if run > 1 {
                let group = &claims[k..k + run];
                k += run;
                match tokio::time::timeout(deadline, self.send_deliveries(node, group)).await {
                    Ok(results) => results,
                    Err(_) => group.iter().map(|_| timed_out()).collect(),
                }
            } else {
                let msg = &claims[k].msg;
                k += 1;
                match tokio::time::timeout(deadline, self.send(node, msg)).await {
                    Ok(outcome) => vec![outcome],
                    Err(_) => vec![timed_out()],
                }
            };
            let failed = results.iter().any(|o| matches!(o, Outcome::Failed(_)));
            outcomes.extend(results);
            if failed {
                break;
            }
        }
        outcomes.resize_with(claims.len(), || Outcome::Unattempted);
        outcomes
    }

    /// Sends consecutive introductions as one `DeliverIntroductions` call and says what the
    /// node's answer means for each; a node without the batch call gets them one by one.
    async fn send_deliveries(&self, node: &node::Model, group: &[Claim]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(group.len());
        let mut requests = Vec::with_capacity(group.len());
        for claim in group {
            match decode::<DeliverIntroductionRequest>(&claim.msg) {
                Ok(request) => {
                    requests.push(request);
                    outcomes.push(None);
                }
                Err(refused) => outcomes.push(Some(refused)),
            }
        }
        let mut client = match self.node_client(node) {
            Ok(client) => client,
            Err(e) => {
                return group
                    .iter()
                    .map(|_| Outcome::Failed(e.to_string()))
                    .collect();
            }
        };
        let sent = requests.len();
        let answer = client
            .deliver_introductions(DeliverIntroductionsRequest {
                introductions: requests,
            })
            .await;
        let answers: Vec<Outcome> = match answer {
            Ok(response) => {
                let results = response.into_inner().outcomes;
                if results.len() != sent {
                    let detail = format!(
                        "the node answered {} outcomes for {sent} introductions",
                        results.len()
                    );
                    (0..sent).map(|_| Outcome::Failed(detail.clone())).collect()
                } else {
                    results
                        .into_iter()
                        .map(|r| {
                            let answer = match tonic::Code::from(r.code) {
                                tonic::Code::Ok => Ok(()),
                                code => Err(tonic::Status::new(code, r.message)),
                            };
                            classify(outbox::DELIVER, answer)
                        })
                        .collect()
                }
            }
            // A node of an older release: one call per introduction, in order, until one fails.
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                let mut singles = Vec::with_capacity(sent);
                for claim in group {
                    if outcomes[singles.len()].is_some() {
                        singles.push(Outcome::Unattempted);
                        continue;
                    }
                    let outcome = self.send(node, &claim.msg).await;
                    let failed = matches!(outcome, Outcome::Failed(_));
                    singles.push(outcome);
                    if failed {
                        break;
                    }
                }
                singles.resize_with(group.len(), || Outcome::Unattempted);
                return outcomes
                    .into_iter()
                    .zip(singles)
                    .map(|(refused, single)| refused.unwrap_or(single))
                    .collect();
            }
            Err(status) => (0..sent)
                .map(|_| classify(outbox::DELIVER, Err(status.clone())))
                .collect(),
        };
        let mut answers = answers.into_iter();
        outcomes
            .into_iter()
            .map(|o| {
                o.or_else(|| answers.next())
                    .unwrap_or(Outcome::Failed("no outcome".to_owned()))
            })
            .collect()
    }

    /// Sends one message and says what the node's answer means for it.
    async fn send(&self, node: &node::Model, msg: &outbox::Model) -> Outcome {
        let mut client = match self.node_client(node) {
            Ok(client) => client,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let answer = match msg.kind.as_str() {
            outbox::DELIVER => match decode::<DeliverIntroductionRequest>(msg) {
                Ok(request) => client.deliver_introduction(request).await.map(drop),
                Err(refused) => return refused,
            },
            outbox::CLOSE => match decode::<CloseIntroductionRequest>(msg) {
                Ok(request) => client.close_introduction(request).await.map(drop),
                Err(refused) => return refused,
            },
            outbox::UPDATE_TANDEM => match decode::<UpdateTandemRequest>(msg) {
                Ok(request) => client.update_tandem(request).await.map(drop),
                Err(refused) => return refused,
            },
            outbox::FORGET => match decode::<ForgetMenteeRequest>(msg) {
                Ok(request) => client.forget_mentee(request).await.map(drop),
                Err(refused) => return refused,
            },
            other => return Outcome::Refused(format!("unknown message kind {other:?}")),
        };
        classify(&msg.kind, answer)
    }

    /// Writes the outcomes of a lane's batch in one transaction, each conditionally on its
    /// message still being held under the lane's lease.
    async fn finish(
        &self,
        claims: &[Claim],
        outcomes: Vec<Outcome>,
    ) -> Result<BatchFinish, BrokerError> {
        let now = self.now();
        let max_attempts = i32::try_from(self.config.outbox_max_attempts).unwrap_or(i32::MAX);
        let mut done = BatchFinish::default();
        let txn = self.write().await?;
        // Everything the nodes took, one statement per lease (a batch shares one).
        let mut delivered: HashMap<i64, Vec<i64>> = HashMap::new();
        for (claim, outcome) in claims.iter().zip(&outcomes) {
            if matches!(outcome, Outcome::Delivered) {
                delivered.entry(claim.lease).or_default().push(claim.msg.id);
            }
        }
        let mut taken = 0usize;
        for (lease, ids) in &delivered {
            let written = outbox::Entity::update_many()
                .col_expr(outbox::Column::DeliveredAtMs, Expr::value(now.max(1)))
                .col_expr(outbox::Column::LastError, Expr::value(""))
                .col_expr(outbox::Column::LeasedUntilMs, Expr::value(0i64))
                .filter(pending())
                .filter(outbox::Column::Id.is_in(ids.iter().copied()))
                .filter(outbox::Column::LeasedUntilMs.eq(*lease))
                .exec(&*txn)
                .await?;
            taken += usize::try_from(written.rows_affected).unwrap_or(usize::MAX);
        }
        done.delivered = taken;
        done.finished = taken;
        let mut stale = ids_len(&delivered).saturating_sub(taken);
        for (claim, outcome) in claims.iter().zip(&outcomes) {
            let msg = &claim.msg;
            let written = match outcome {
                Outcome::Delivered => continue,
                Outcome::Refused(detail) => {
                    self.dead_letter_where(&*txn, still_claimed(claim), now, detail)
                        .await?
                }
                Outcome::Failed(detail) if msg.attempts >= max_attempts => {
                    let detail = format!("{detail} (gave up after {} attempts)", msg.attempts);
                    self.dead_letter_where(&*txn, still_claimed(claim), now, &detail)
                        .await?
                }
                Outcome::Failed(detail) => {
                    let jitter = rand::rng().random::<f64>();
                    let wait = backoff_ms(self.config.outbox_retry_base_ms, msg.attempts, jitter);
                    let written = outbox::Entity::update_many()
                        .col_expr(
                            outbox::Column::NextAttemptAtMs,
                            Expr::value(now.saturating_add(wait)),
                        )
                        .col_expr(outbox::Column::LastError, Expr::value(detail.clone()))
                        .col_expr(outbox::Column::LeasedUntilMs, Expr::value(0i64))
                        .filter(still_claimed(claim))
                        .exec(&*txn)
                        .await?
                        .rows_affected;
                    if written > 0 {
                        done.retry = true;
                        tracing::warn!(node = %msg.node_id, attempts = msg.attempts, kind = %msg.kind, error = %detail, "message delivery failed");
                    }
                    written
                }
                // Back as it was before the claim: the lane takes it again after the retry.
                Outcome::Unattempted => {
                    outbox::Entity::update_many()
                        .col_expr(outbox::Column::LeasedUntilMs, Expr::value(0i64))
                        .col_expr(
                            outbox::Column::Attempts,
                            Expr::value(msg.attempts.saturating_sub(1)),
                        )
                        .filter(still_claimed(claim))
                        .exec(&*txn)
                        .await?;
                    continue;
                }
            };
            if written == 0 {
                stale += 1;
                continue;
            }
            if let Outcome::Refused(error) | Outcome::Failed(error) = outcome
                && (matches!(outcome, Outcome::Refused(_)) || msg.attempts >= max_attempts)
            {
                done.finished += 1;
                tracing::warn!(node = %msg.node_id, message = msg.id, attempts = msg.attempts, kind = %msg.kind, %error, "message dead-lettered");
            }
        }
        txn.commit().await?;
        {
            let mut held = self.lanes.held();
            for claim in claims {
                held.remove(&claim.msg.id);
            }
        }
        if taken > 0 {
            tracing::debug!(node = %claims[0].msg.node_id, delivered = taken, "messages delivered");
        }
        if stale > 0 {
            // Cancelled by an erasure, dropped by an operator, or taken over by another replica
            // after the lease ran out: their state is theirs now.
            tracing::info!(node = %claims[0].msg.node_id, stale, "stale delivery results ignored");
        }
        Ok(done)
    }

    /// Gives up the leases of attempts this process abandoned (it is stopping), so that another
    /// replica, or this one after a restart, need not wait for them to run out. The node may
    /// have got such a message; it gets it again.
    async fn release_abandoned_leases(&self) {
        let held: Vec<(i64, i64)> = self.lanes.held().drain().collect();
        for (id, lease) in held {
            let released = outbox::Entity::update_many()
                .col_expr(outbox::Column::LeasedUntilMs, Expr::value(0i64))
                .filter(pending())
                .filter(outbox::Column::Id.eq(id))
                .filter(outbox::Column::LeasedUntilMs.eq(lease))
                .exec(self.db())
                .await;
            if let Err(e) = released {
                tracing::warn!(message = id, error = %e, "lease not released");
            }
        }
    }

    /// Moves the messages `which` selects to the dead letters; returns how many.
    async fn dead_letter_where(
        &self,
        conn: &impl ConnectionTrait,
        which: Condition,
        now: i64,
        detail: &str,
    ) -> Result<u64, BrokerError> {
        let written = outbox::Entity::update_many()
            .col_expr(outbox::Column::DeadLetteredAtMs, Expr::value(now.max(1)))
            .col_expr(outbox::Column::LastError, Expr::value(detail))
            .col_expr(outbox::Column::LeasedUntilMs, Expr::value(0i64))
            .filter(which)
            .exec(conn)
            .await?;
        Ok(written.rows_affected)
    }
}

/// What writing a batch's outcomes came to.
#[derive(Debug, Default, Clone, Copy)]
struct BatchFinish {
    /// Messages the nodes acknowledged.
    delivered: usize,
    /// Messages done with: delivered or moved to the dead letters.
    finished: usize,
    /// A message waits for a retry, and the lane with it.
    retry: bool,
}

fn ids_len(by_lease: &HashMap<i64, Vec<i64>>) -> usize {
    by_lease.values().map(Vec::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes_within_its_jitter() {
        assert_eq!(backoff_ms(1000, 1, 0.0), 500);
        assert_eq!(backoff_ms(1000, 1, 1.0), 1000);
        assert_eq!(backoff_ms(1000, 2, 1.0), 2000);
        assert_eq!(backoff_ms(1000, 4, 0.5), 6000);
        assert_eq!(backoff_ms(1000, 10, 1.0), 300_000);
        assert_eq!(backoff_ms(1000, i32::MAX, 1.0), 300_000);
        assert_eq!(backoff_ms(u64::MAX, 3, 0.0), 150_000);
        // Bad input never panics and never waits less than half the base.
        assert_eq!(backoff_ms(1000, 0, f64::NAN), 500);
        assert_eq!(backoff_ms(1000, -5, 7.0), 1000);
    }

    #[test]
    fn a_refusal_for_good_is_told_from_a_passing_failure() {
        use tonic::{Code, Status};
        let outcome = |kind: &str, code: Code| classify(kind, Err(Status::new(code, "x")));
        assert!(matches!(
            outcome(outbox::CLOSE, Code::NotFound),
            Outcome::Delivered
        ));
        assert!(matches!(
            outcome(outbox::DELIVER, Code::NotFound),
            Outcome::Refused(_)
        ));
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::Unimplemented,
        ] {
            assert!(matches!(
                outcome(outbox::UPDATE_TANDEM, code),
                Outcome::Refused(_)
            ));
        }
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::PermissionDenied,
        ] {
            assert!(matches!(outcome(outbox::DELIVER, code), Outcome::Failed(_)));
        }
        let Outcome::Refused(text) = outcome(outbox::FORGET, Code::InvalidArgument) else {
            panic!("refused");
        };
        assert_eq!(text, "InvalidArgument: x");
    }
}
