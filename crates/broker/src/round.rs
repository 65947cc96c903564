//! Matching rounds: every waiting mentee against every mentor with free places on a
//! fresh-enough node, solved exactly by the domain's planner, written in one transaction
//! together with the introductions for the nodes.
//!
//! One round runs at a time: in this process under a mutex, across broker replicas on one
//! PostgreSQL under an advisory lock (`replicas`) held from before the round reads its input
//! until its write committed. The write does not rest on the lock alone: each proposal is
//! written only while its mentee still waits and its mentor still has a place, counted again
//! inside the write transaction over the mentor's locked profile row, so that a round running
//! without the lock (a replica of an older release, during a rolling update) cannot overbook.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tandem_domain::{MenteeNeeds, MentorProfile};
use tandem_matching::{MenteeCandidate, RoundPlan, plan_round_with};
use tandem_proto::{
    AnonymisedProfile, CompanyDecision, DeliverIntroductionRequest, MatchingRound, MenteeStatus,
    MentorDecision, ProposalStatus, UnmatchedReason,
};
use tandem_service::WriteTxn;
use tandem_storage::broker::{matching_round, mentee, node, profile, proposal};

use crate::replicas::{LockKey, ReplicaLocks};
use crate::{Broker, BrokerError, audit, convert, outbox};

/// A mentor as the key of the round's maps: node id and pseudonym.
type MentorKey = (String, String);

/// The mentees of a round: their rows and what the planner sees of them.
struct Mentees {
    rows: Vec<mentee::Model>,
    needs: Vec<MenteeNeeds>,
    candidates: Vec<MenteeCandidate>,
}

/// The mentors of a round: the published profiles and what the planner sees of them.
struct Mentors {
    published: Vec<AnonymisedProfile>,
    profiles: Vec<MentorProfile>,
}

fn elapsed_ms(since: std::time::Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Broker {
    /// Runs a matching round now and returns its outcome. Rounds never overlap: a second call
    /// in this process waits for the running one and then runs its own; while another broker
    /// replica on the same database runs one, the call fails at once with
    /// `RoundRunningElsewhere`.
    #[tracing::instrument(skip(self))]
    pub async fn run_matching_round(&self) -> Result<MatchingRound, BrokerError> {
        let _round = self.round_lock.lock().await;
        let replicas = ReplicaLocks::begin(self.db()).await?;
        if !replicas.try_lock(LockKey::ROUND).await? {
            tracing::info!("matching round refused: one is running on another replica");
            return Err(BrokerError::RoundRunningElsewhere);
        }
        let outcome = self.round(&replicas).await;
        // An error already rolled the round back; the lock goes either way.
        let released = replicas.release().await;
        let outcome = outcome?;
        released?;
        if outcome.proposals > 0 {
            self.wake_outbox();
        }
        Ok(outcome)
    }

    /// Runs one round while `replicas` holds the round's lock.
    async fn round(&self, replicas: &ReplicaLocks) -> Result<MatchingRound, BrokerError> {
        let started = self.now();
        let clock = std::time::Instant::now();
        let round_id = uuid::Uuid::new_v4().to_string();

        let mentees = self.waiting_mentees().await?;
        let mentors = self.available_mentors(started).await?;
        let load_ms = elapsed_ms(clock);
        // Planning is CPU-bound (seconds at national scale): keep it off the async workers.
        let options = self.config.round_options();
        let (mentees, mentors, plan) = tokio::task::spawn_blocking(move || {
            let plan = plan_round_with(&mentees.candidates, &mentors.profiles, &options);
            (mentees, mentors, plan)
        })
        .await?;
        let plan_ms = elapsed_ms(clock) - load_ms;
        let mut outcome = MatchingRound {
            round_id: round_id.clone(),
            mentees_considered: saturating_u32(mentees.rows.len()),
            mentors_considered: saturating_u32(
                mentors
                    .profiles
                    .iter()
                    .filter(|m| m.free_capacity > 0)
                    .count(),
            ),
            candidate_pairs: saturating_u32(plan.candidate_pairs),
            started_at_ms: started,
            feasible_pairs: plan.stats.feasible_pairs,
            pricing_passes: plan.stats.pricing_passes,
            optimal: plan.stats.optimal,
            candidates_ms: i64::try_from(plan.stats.candidates_ms).unwrap_or(i64::MAX),
            solve_ms: i64::try_from(plan.stats.solve_ms).unwrap_or(i64::MAX),
            pricing_ms: i64::try_from(plan.stats.pricing_ms).unwrap_or(i64::MAX),
            load_ms,
            plan_ms,
            ..MatchingRound::default()
        };
        let txn = self
            .write_round(&round_id, &mentees, &mentors, &plan, &mut outcome, &clock)
            .await?;
        // The round's write commits only while the lock is still held (its session may have
        // been ended by the database since).
        replicas.ensure_held().await?;
        txn.commit().await?;
        outcome.write_ms = elapsed_ms(clock) - load_ms - plan_ms;
        tracing::info!(
            round = %round_id,
            mentees = outcome.mentees_considered,
            mentors = outcome.mentors_considered,
            proposals = outcome.proposals,
            objective = outcome.objective,
            load_ms,
            plan_ms,
            write_ms = outcome.write_ms,
            "matching round done"
        );
        Ok(outcome)
    }

    /// Returns the waiting mentees, each with the mentors proposed to it before.
    async fn waiting_mentees(&self) -> Result<Mentees, BrokerError> {
        let waiting = mentee::Column::Status.eq(MenteeStatus::Waiting as i32);
        let rows = mentee::Entity::find()
            .filter(waiting.clone())
            // A stable order of what the companies chose (not ids, which are random — company
            // ids too, as nodes assign them — nor clocks) keeps rounds reproducible for the
            // same input.
            .order_by_asc(mentee::Column::IdempotencyKey)
            .order_by_asc(mentee::Column::CompanyId)
            .all(self.db())
            .await?;
        let waiting_ids = Query::select()
            .column(mentee::Column::Id)
            .from(mentee::Entity)
            .and_where(waiting)
            .to_owned();
        let history: Vec<(String, String, String)> = proposal::Entity::find()
            .select_only()
            .columns([
                proposal::Column::MenteeId,
                proposal::Column::NodeId,
                proposal::Column::Pseudonym,
            ])
            .filter(proposal::Column::MenteeId.in_subquery(waiting_ids))
            .into_tuple()
            .all(self.db())
            .await?;
        let mut before: HashMap<String, HashSet<(String, String)>> = HashMap::new();
        for (mentee_id, node_id, pseudonym) in history {
            before
                .entry(mentee_id)
                .or_default()
                .insert((node_id, pseudonym));
        }
        let mut out = Mentees {
            rows: Vec::with_capacity(rows.len()),
            needs: Vec::with_capacity(rows.len()),
            candidates: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            let needs = match convert::needs(&row) {
                Ok(needs) => needs,
                Err(e) => {
                    tracing::error!(mentee = %row.id, error = %e, "mentee left out of the round");
                    continue;
                }
            };
            out.candidates.push(MenteeCandidate {
                id: row.id.clone(),
                needs: needs.clone(),
                proposed_before: before.remove(&row.id).unwrap_or_default(),
            });
            out.needs.push(needs);
            out.rows.push(row);
        }
        Ok(out)
    }

    /// Returns the profiles of nodes synced recently enough, with the places that open
    /// proposals still waiting for the mentor's answer hold back.
    async fn available_mentors(&self, now: i64) -> Result<Mentors, BrokerError> {
        let staleness_ms = i64::try_from(self.config.profile_staleness_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let fresh: Vec<String> = node::Entity::find()
            .filter(node::Column::LastSyncAtMs.gt(0))
            .filter(node::Column::LastSyncAtMs.gte(now.saturating_sub(staleness_ms)))
            .all(self.db())
            .await?
            .into_iter()
            .map(|n| n.id)
            .collect();
        let rows = profile::Entity::find()
            .filter(profile::Column::NodeId.is_in(fresh))
            .order_by_asc(profile::Column::NodeId)
            .order_by_asc(profile::Column::Pseudonym)
            .all(self.db())
            .await?;
        let held: Vec<(String, String)> = proposal::Entity::find()
            .select_only()
            .columns([proposal::Column::NodeId, proposal::Column::Pseudonym])
            .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32))
            .filter(proposal::Column::MentorDecision.eq(MentorDecision::Pending as i32))
            .into_tuple()
            .all(self.db())
            .await?;
        let mut pending: HashMap<(String, String), u32> = HashMap::new();
        for key in held {
            *pending.entry(key).or_default() += 1;
        }
        let mut out = Mentors {
            published: Vec::with_capacity(rows.len()),
            profiles: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            let published = match convert::profile(&row) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(node = %row.node_id, error = %e, "profile left out of the round");
                    continue;
                }
            };
            let mut mentor = MentorProfile::from_published(&row.node_id, &published);
            let key = (row.node_id.clone(), row.pseudonym.clone());
            let held_back = pending.get(&key).copied().unwrap_or(0);
            mentor.free_capacity = published.free_capacity.saturating_sub(held_back);
            out.published.push(published);
            out.profiles.push(mentor);
        }
        Ok(out)
    }

    /// Writes the round in one transaction: proposals, the mentees' new states and reasons,
    /// the introductions for the nodes, and the round itself. A proposal is skipped when its
    /// mentee stopped waiting, or its mentor's profile was withdrawn or has no place left
    /// (counting the open proposals committed since the round read its input) while the
    /// round was planned; that mentee waits for the next round. Returns the transaction for
    /// the caller to commit.
    async fn write_round(
        &self,
        round_id: &str,
        mentees: &Mentees,
        mentors: &Mentors,
        plan: &RoundPlan,
        outcome: &mut MatchingRound,
        clock: &std::time::Instant,
    ) -> Result<WriteTxn<'_>, BrokerError> {
        let now = self.now();
        let ttl_ms = i64::try_from(self.config.proposal_ttl_hours.saturating_mul(3_600_000))
            .unwrap_or(i64::MAX);
        let txn = self.write().await?;
        let planned_mentors: Vec<MentorKey> = plan
            .proposals
            .iter()
            .map(|p| {
                let m = &mentors.profiles[p.mentor];
                (m.node_id.clone(), m.pseudonym.clone())
            })
            .collect();
        let mut places = places_left(&*txn, planned_mentors).await?;
        // The planned mentees that still wait (withdrawn or erased ones meanwhile are skipped),
        // read and locked with one statement per chunk rather than claimed one by one.
        let planned: Vec<&str> = plan
            .proposals
            .iter()
            .map(|p| mentees.rows[p.mentee].id.as_str())
            .collect();
        let waiting = still_waiting(&*txn, &planned).await?;
        let mut claimed: Vec<&str> = Vec::with_capacity(plan.proposals.len());
        let mut proposals = Vec::with_capacity(plan.proposals.len());
        let mut messages = Vec::with_capacity(plan.proposals.len());
        for planned in &plan.proposals {
            let (row, needs) = (
                &mentees.rows[planned.mentee],
                &mentees.needs[planned.mentee],
            );
            let (mentor, snapshot) = (
                &mentors.profiles[planned.mentor],
                &mentors.published[planned.mentor],
            );
            if !waiting.contains(row.id.as_str()) {
                continue;
            }
            let key = (mentor.node_id.clone(), mentor.pseudonym.clone());
            // Withdrawn (no row), or its places went to proposals committed meanwhile.
            let Some(left) = places.get_mut(&key).filter(|left| **left > 0) else {
                continue;
            };
            *left -= 1;
            claimed.push(row.id.as_str());
            let id = uuid::Uuid::new_v4().to_string();
            let cross_node = !needs.home_node_id.is_empty() && needs.home_node_id != mentor.node_id;
            proposals.push(proposal::ActiveModel {
                id: Set(id.clone()),
                round_id: Set(round_id.to_owned()),
                mentee_id: Set(row.id.clone()),
                company_id: Set(row.company_id.clone()),
                node_id: Set(mentor.node_id.clone()),
                pseudonym: Set(mentor.pseudonym.clone()),
                profile: Set(snapshot.encode_to_vec()),
                score: Set(planned.score.total),
                reasons: Set(convert::reasons_json(&planned.score.reasons)),
                mentor_decision: Set(MentorDecision::Pending as i32),
                company_decision: Set(CompanyDecision::Pending as i32),
                status: Set(ProposalStatus::Open as i32),
                cross_node: Set(cross_node),
                created_at_ms: Set(now),
                updated_at_ms: Set(now),
                expires_at_ms: Set(now.saturating_add(ttl_ms)),
            });
            let introduction = DeliverIntroductionRequest {
                introduction_id: id,
                pseudonym: mentor.pseudonym.clone(),
                mentee: Some(needs.summary()),
                reasons: planned.score.reasons.clone(),
                score: planned.score.total,
                mentee_ref: tandem_domain::pseudonym::mentee_ref(&mentor.node_id, &row.id),
            };
            messages.push(outbox::deliver_message(&mentor.node_id, &introduction, now));
            outcome.proposals += 1;
            outcome.objective += planned.score.total;
            outcome.cross_node_proposals += u32::from(cross_node);
        }
        mark_proposed(&*txn, &claimed, now).await?;
        for chunk in proposals.chunks(200) {
            proposal::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&*txn)
                .await?;
        }
        outbox::enqueue(&*txn, messages).await?;

        let mut reasons: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for u in &plan.unmatched {
            reasons
                .entry((u.code, u.detail))
                .or_default()
                .push(mentees.rows[u.mentee].id.clone());
        }
        let mut unmatched: BTreeMap<String, u32> = BTreeMap::new();
        for ((code, detail), ids) in &reasons {
            *unmatched.entry((*code).to_owned()).or_default() += saturating_u32(ids.len());
            for chunk in ids.chunks(500) {
                mentee::Entity::update_many()
                    .col_expr(mentee::Column::WaitingReason, Expr::value(*code))
                    .col_expr(mentee::Column::WaitingDetail, Expr::value(*detail))
                    .col_expr(mentee::Column::UpdatedAtMs, Expr::value(now))
                    .filter(mentee::Column::Id.is_in(chunk.iter().cloned()))
                    .filter(mentee::Column::Status.eq(MenteeStatus::Waiting as i32))
                    .exec(&*txn)
                    .await?;
            }
        }
        outcome.unmatched = unmatched
            .iter()
            .map(|(reason, mentees)| UnmatchedReason {
                reason: reason.clone(),
                mentees: *mentees,
            })
            .collect();
        outcome.duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        matching_round::Entity::insert(matching_round::ActiveModel {
            id: Set(round_id.to_owned()),
            started_at_ms: Set(outcome.started_at_ms),
            duration_ms: Set(outcome.duration_ms),
            mentees_considered: Set(i32::try_from(outcome.mentees_considered).unwrap_or(i32::MAX)),
            mentors_considered: Set(i32::try_from(outcome.mentors_considered).unwrap_or(i32::MAX)),
            candidate_pairs: Set(i32::try_from(outcome.candidate_pairs).unwrap_or(i32::MAX)),
            proposals: Set(i32::try_from(outcome.proposals).unwrap_or(i32::MAX)),
            objective: Set(outcome.objective),
            cross_node_proposals: Set(
                i32::try_from(outcome.cross_node_proposals).unwrap_or(i32::MAX)
            ),
            unmatched: Set(serde_json::to_string(&unmatched).unwrap_or_else(|_| "{}".to_owned())),
            parameters: Set(serde_json::to_string(&self.config.round_options())
                .unwrap_or_else(|_| "{}".to_owned())),
            feasible_pairs: Set(i64::try_from(plan.stats.feasible_pairs).unwrap_or(i64::MAX)),
            candidate_arcs: Set(i64::try_from(plan.stats.candidate_arcs).unwrap_or(i64::MAX)),
            pricing_arcs: Set(i64::try_from(plan.stats.pricing_arcs).unwrap_or(i64::MAX)),
            pricing_passes: Set(i32::try_from(plan.stats.pricing_passes).unwrap_or(i32::MAX)),
            optimal: Set(plan.stats.optimal),
            candidates_ms: Set(outcome.candidates_ms),
            solve_ms: Set(outcome.solve_ms),
            pricing_ms: Set(outcome.pricing_ms),
        })
        .exec_without_returning(&*txn)
        .await?;
        let detail = format!(
            "proposals={} objective={} optimal={}",
            outcome.proposals, outcome.objective, outcome.optimal
        );
        audit::record(
            &*txn,
            now,
            audit::OPERATOR,
            "round.completed",
            "round",
            round_id,
            &detail,
        )
        .await?;
        Ok(txn)
    }
}

/// Most ids in one statement's `IN` list.
const CHUNK: usize = 500;

/// Returns which of the mentees of `ids` still wait, locking their rows until the transaction
/// ends (PostgreSQL), so that a concurrent withdrawal waits for the round or is seen by it.
async fn still_waiting<'a>(
    conn: &impl ConnectionTrait,
    ids: &[&'a str],
) -> Result<HashSet<&'a str>, BrokerError> {
    let mut out = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let waiting: HashSet<String> = mentee::Entity::find()
            .select_only()
            .column(mentee::Column::Id)
            .filter(mentee::Column::Id.is_in(chunk.iter().copied()))
            .filter(mentee::Column::Status.eq(MenteeStatus::Waiting as i32))
            .lock_exclusive()
            .into_tuple()
            .all(conn)
            .await?
            .into_iter()
            .collect();
        out.extend(chunk.iter().copied().filter(|id| waiting.contains(*id)));
    }
    Ok(out)
}

/// Sets the (locked, waiting) mentees of `ids` to PROPOSED and clears their waiting reason,
/// one statement per chunk.
async fn mark_proposed(
    conn: &impl ConnectionTrait,
    ids: &[&str],
    now: i64,
) -> Result<(), BrokerError> {
    for chunk in ids.chunks(CHUNK) {
        mentee::Entity::update_many()
            .col_expr(
                mentee::Column::Status,
                Expr::value(MenteeStatus::Proposed as i32),
            )
            .col_expr(mentee::Column::WaitingReason, Expr::value(""))
            .col_expr(mentee::Column::WaitingDetail, Expr::value(""))
            .col_expr(mentee::Column::UpdatedAtMs, Expr::value(now))
            .filter(mentee::Column::Id.is_in(chunk.iter().copied()))
            .filter(mentee::Column::Status.eq(MenteeStatus::Waiting as i32))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Returns the places each of `keys` has left now: the free capacity of its profile (locked
/// until the transaction ends, so that a concurrent round's write waits for this one and then
/// counts its proposals) less its open proposals still waiting for the mentor. A mentor whose
/// profile is gone is missing.
async fn places_left(
    conn: &impl ConnectionTrait,
    mut keys: Vec<MentorKey>,
) -> Result<HashMap<MentorKey, u32>, BrokerError> {
    keys.sort_unstable();
    keys.dedup();
    let mut places: HashMap<MentorKey, u32> = HashMap::with_capacity(keys.len());
    // Sorted chunks lock rows in one global order, so two rounds never deadlock on them.
    for chunk in keys.chunks(500) {
        // A pseudonym may recur on another node, in another chunk: count each key once.
        let wanted: HashSet<&MentorKey> = chunk.iter().collect();
        let pseudonyms = chunk.iter().map(|(_, p)| p.clone());
        let rows: Vec<(String, String, i32)> = profile::Entity::find()
            .select_only()
            .columns([
                profile::Column::NodeId,
                profile::Column::Pseudonym,
                profile::Column::FreeCapacity,
            ])
            .filter(profile::Column::Pseudonym.is_in(pseudonyms.clone()))
            .order_by_asc(profile::Column::NodeId)
            .order_by_asc(profile::Column::Pseudonym)
            .lock_exclusive()
            .into_tuple()
            .all(conn)
            .await?;
        for (node_id, pseudonym, free) in rows {
            let key = (node_id, pseudonym);
            if wanted.contains(&key) {
                places.insert(key, u32::try_from(free).unwrap_or(0));
            }
        }
        let held: Vec<(String, String)> = proposal::Entity::find()
            .select_only()
            .columns([proposal::Column::NodeId, proposal::Column::Pseudonym])
            .filter(proposal::Column::Pseudonym.is_in(pseudonyms))
            .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32))
            .filter(proposal::Column::MentorDecision.eq(MentorDecision::Pending as i32))
            .into_tuple()
            .all(conn)
            .await?;
        for key in held {
            if wanted.contains(&key)
                && let Some(left) = places.get_mut(&key)
            {
                *left = left.saturating_sub(1);
            }
        }
    }
    Ok(places)
}
