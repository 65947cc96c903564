//! Sync with the nodes: pull memberships (see `memberships`), profile changes, mentor
//! decisions and the tandem log, page by page, from the cursors the broker reached.
//!
//! Every page of profile changes is validated as a whole before anything is stored: one
//! invalid profile rejects the page, and the node's error names the field. A page is applied
//! and its cursor advanced in one transaction, conditionally on the cursor the sync started
//! from, so that two syncs of the same node never apply a page twice. A decision the broker
//! already asked the node for (when a company needed it, see `decisions`) arrives here again
//! and changes nothing.
//!
//! A node is synced by one caller at a time: in this process a second sync of the node waits
//! for the running one; across broker replicas on one PostgreSQL the node's advisory lock
//! (`replicas`) lets one sync it and the others skip it for this time. The conditional cursor
//! moves stay as the last defence, and the node's last sync time only moves forward.

use std::sync::Arc;

use crate::nodes::NodeClient;
use crate::replicas::{LockKey, ReplicaLocks};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use tandem_proto::profile_change::Change;
use tandem_proto::{
    GetDecisionsRequest, GetProfileChangesRequest, GetTandemEventsRequest, NodeSyncResult,
    ProfileChange, ProposalStatus, Withdrawal, WithdrawalReason,
};
use tandem_storage::broker::{node, profile, proposal};

use crate::decisions::apply_decision;
use crate::proposal_state::{self, Ending};
use crate::{Broker, BrokerError, convert, tandems};

/// Changes or decisions asked for per page.
pub(crate) const PAGE_SIZE: u32 = 500;
/// Most pages pulled in one sync, so that a misbehaving node cannot keep the broker busy.
pub(crate) const MAX_PAGES: usize = 10_000;

/// Why a node's sync stopped.
pub(crate) enum SyncFailure {
    /// Another sync of the same node moved the cursor first; it carries on from there.
    Overtaken,
    /// The node could not be reached.
    Unreachable(String),
    /// The node answered wrongly, or the database failed.
    Failed(String),
}

impl From<BrokerError> for SyncFailure {
    fn from(e: BrokerError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<sea_orm::DbErr> for SyncFailure {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Failed(format!("database error: {e}"))
    }
}

pub(crate) fn unreachable_node(node_id: &str, status: &tonic::Status) -> SyncFailure {
    SyncFailure::Unreachable(format!(
        "node {node_id} unreachable: {:?}: {}",
        status.code(),
        status.message()
    ))
}

/// Checks a page of profile changes; the error names the node and the field.
fn check_page(node_id: &str, changes: &[ProfileChange]) -> Result<(), String> {
    for (i, change) in changes.iter().enumerate() {
        let result = match &change.change {
            Some(Change::Upsert(p)) => {
                tandem_domain::validate::profile(&format!("changes[{i}].upsert"), p)
            }
            Some(Change::Withdrawal(w)) if tandem_domain::validate::is_token(&w.pseudonym) => {
                Ok(())
            }
            Some(Change::Withdrawal(_)) => Err(tandem_domain::Violations::one(
                format!("changes[{i}].withdrawal.pseudonym"),
                "must be 64 lower-case hex characters",
            )),
            None => Err(tandem_domain::Violations::one(
                format!("changes[{i}]"),
                "neither upsert nor withdrawal",
            )),
        };
        result.map_err(|e| format!("node {node_id} sent an invalid profile: {e}"))?;
    }
    Ok(())
}

fn cursor(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Broker {
    /// Syncs one node, or every registered node concurrently when `node_id` is `None`, and
    /// returns what each sync brought. A node that another broker replica is syncing right
    /// now is skipped, its result saying so.
    #[tracing::instrument(skip(self))]
    pub async fn sync_nodes(
        &self,
        node_id: Option<&str>,
    ) -> Result<Vec<NodeSyncResult>, BrokerError> {
        let ids: Vec<String> = match node_id {
            Some(id) => vec![self.node(id).await?.id],
            None => node::Entity::find()
                .order_by_asc(node::Column::Id)
                .all(self.db())
                .await?
                .into_iter()
                .map(|n| n.id)
                .collect(),
        };
        // In the order of the ids, so that two calls never wait for each other crosswise.
        let mut running_here = Vec::with_capacity(ids.len());
        for id in &ids {
            running_here.push(self.node_sync_lock(id).lock_owned().await);
        }
        let replicas = ReplicaLocks::begin(self.db()).await?;
        let mut mine = Vec::with_capacity(ids.len());
        for id in &ids {
            mine.push(replicas.try_lock(LockKey::sync(id)).await?);
        }
        let syncs = ids.iter().zip(&mine).map(|(id, &mine)| async move {
            if !mine {
                tracing::info!(node = %id, "sync skipped: running on another replica");
                return Ok(NodeSyncResult {
                    node_id: id.clone(),
                    error: format!("sync of node {id} already running on another broker replica"),
                    ..NodeSyncResult::default()
                });
            }
            // Read now: a sync that ran while this one waited moved the cursors.
            let n = self.node(id).await?;
            self.sync_node(&n).await
        });
        let results = futures_util::future::join_all(syncs).await;
        replicas.release().await?;
        drop(running_here);
        let results: Vec<NodeSyncResult> = results.into_iter().collect::<Result<_, _>>()?;
        // What the sync changed (tandems, ended proposals) reaches live nodes at once.
        if results
            .iter()
            .any(|r| r.decisions + r.withdrawals + r.tandem_events + r.memberships > 0)
        {
            self.wake_outbox();
        }
        Ok(results)
    }

    /// Syncs one node and records the outcome on its row.
    #[tracing::instrument(skip_all, fields(node = %n.id))]
    async fn sync_node(&self, n: &node::Model) -> Result<NodeSyncResult, BrokerError> {
        let mut result = NodeSyncResult {
            node_id: n.id.clone(),
            ..NodeSyncResult::default()
        };
        let mut client = self.node_client(n)?;
        // Memberships come first, so that a removed company's mentees leave matching before
        // anything else of this sync. Each log is pulled even when a page of another was
        // rejected: one bad profile must not hold up the answers to introductions already made.
        let memberships = self.pull_memberships(n, &mut client, &mut result).await;
        let reachable = !matches!(memberships, Err(SyncFailure::Unreachable(_)));
        let profiles = if reachable {
            self.pull_profiles(n, &mut client, &mut result).await
        } else {
            Ok(())
        };
        let reachable = reachable && !matches!(profiles, Err(SyncFailure::Unreachable(_)));
        let (decisions, events) = if reachable {
            let decisions = self.pull_decisions(n, &mut client, &mut result).await;
            let events = self.pull_tandem_events(n, &mut client, &mut result).await;
            (decisions, events)
        } else {
            (Ok(()), Ok(()))
        };
        let error = [memberships, profiles, decisions, events]
            .into_iter()
            .find_map(|outcome| match outcome {
                Err(SyncFailure::Unreachable(e) | SyncFailure::Failed(e)) => Some(e),
                Ok(()) | Err(SyncFailure::Overtaken) => None,
            });
        let txn = self.write().await?;
        let now = self.now();
        let mut update = node::Entity::update_many().filter(node::Column::Id.eq(&n.id));
        update = match &error {
            // A later sync (on another replica's clock) that recorded its time first stands;
            // the time never goes back.
            None => update
                .col_expr(node::Column::LastSyncAtMs, Expr::value(now))
                .col_expr(node::Column::LastError, Expr::value(""))
                .filter(node::Column::LastSyncAtMs.lte(now)),
            Some(e) => update.col_expr(node::Column::LastError, Expr::value(e.clone())),
        };
        update.exec(&*txn).await?;
        txn.commit().await?;
        match error {
            None => tracing::info!(
                node = %n.id,
                upserts = result.upserts,
                withdrawals = result.withdrawals,
                decisions = result.decisions,
                memberships = result.memberships,
                "node synced"
            ),
            Some(e) => {
                tracing::warn!(node = %n.id, error = %e, "node sync failed");
                result.error = e;
            }
        }
        Ok(result)
    }

    /// Returns the mutex that one sync of `node_id` in this process holds.
    fn node_sync_lock(&self, node_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .sync_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(node_id.to_owned()).or_default())
    }

    /// Pulls and applies profile changes until the node has no more.
    async fn pull_profiles(
        &self,
        n: &node::Model,
        client: &mut NodeClient,
        result: &mut NodeSyncResult,
    ) -> Result<(), SyncFailure> {
        let mut since = u64::try_from(n.feed_version).unwrap_or(0);
        for _ in 0..MAX_PAGES {
            let page = client
                .get_profile_changes(GetProfileChangesRequest {
                    since_version: since,
                    limit: PAGE_SIZE,
                })
                .await
                .map_err(|s| unreachable_node(&n.id, &s))?
                .into_inner();
            check_advance(&n.id, "feed", since, page.next_version, page.has_more)?;
            check_page(&n.id, &page.changes).map_err(SyncFailure::Failed)?;
            if !page.changes.is_empty() || page.next_version != since {
                self.apply_profile_page(&n.id, since, page.next_version, &page.changes, result)
                    .await?;
            }
            since = page.next_version;
            if !page.has_more {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Applies one validated page of profile changes and advances the feed cursor.
    async fn apply_profile_page(
        &self,
        node_id: &str,
        since: u64,
        next: u64,
        changes: &[ProfileChange],
        result: &mut NodeSyncResult,
    ) -> Result<(), SyncFailure> {
        let now = self.now();
        let txn = self.write().await?;
        move_cursor(&*txn, node_id, node::Column::FeedVersion, since, next).await?;
        let (mut upserts, mut withdrawals) = (0u32, 0u32);
        for change in changes {
            match &change.change {
                Some(Change::Upsert(p)) => {
                    profile::Entity::insert(convert::profile_row(node_id, p, now))
                        .on_conflict(
                            OnConflict::columns([
                                profile::Column::NodeId,
                                profile::Column::Pseudonym,
                            ])
                            .update_columns([
                                profile::Column::CareerLevel,
                                profile::Column::ExperienceBand,
                                profile::Column::Industries,
                                profile::Column::Expertise,
                                profile::Column::Languages,
                                profile::Column::Region,
                                profile::Column::Formats,
                                profile::Column::FreeCapacity,
                                profile::Column::EmployerToken,
                                profile::Column::GroupToken,
                                profile::Column::Version,
                                profile::Column::SyncedAtMs,
                            ])
                            .to_owned(),
                        )
                        .exec_without_returning(&*txn)
                        .await?;
                    upserts += 1;
                }
                Some(Change::Withdrawal(w)) => {
                    withdraw_mentor(&*txn, node_id, w, now).await?;
                    withdrawals += 1;
                }
                None => {}
            }
        }
        txn.commit().await?;
        result.upserts += upserts;
        result.withdrawals += withdrawals;
        Ok(())
    }

    /// Pulls and applies mentor decisions until the node has no more.
    async fn pull_decisions(
        &self,
        n: &node::Model,
        client: &mut NodeClient,
        result: &mut NodeSyncResult,
    ) -> Result<(), SyncFailure> {
        let mut since = u64::try_from(n.decision_cursor).unwrap_or(0);
        for _ in 0..MAX_PAGES {
            let page = client
                .get_decisions(GetDecisionsRequest {
                    since,
                    limit: PAGE_SIZE,
                })
                .await
                .map_err(|s| unreachable_node(&n.id, &s))?
                .into_inner();
            check_advance(&n.id, "decision", since, page.next, page.has_more)?;
            if !page.decisions.is_empty() || page.next != since {
                let now = self.now();
                let rules = self.config.lifecycle_rules();
                let txn = self.write().await?;
                move_cursor(&*txn, &n.id, node::Column::DecisionCursor, since, page.next).await?;
                let mut applied = 0u32;
                for d in &page.decisions {
                    let decision = d.decision();
                    if apply_decision(&*txn, &n.id, &d.introduction_id, decision, now, rules)
                        .await?
                    {
                        applied += 1;
                    }
                }
                txn.commit().await?;
                result.decisions += applied;
            }
            since = page.next;
            if !page.has_more {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Pulls and applies the node's tandem log (what the mentors' side recorded) until the
    /// node has no more.
    async fn pull_tandem_events(
        &self,
        n: &node::Model,
        client: &mut NodeClient,
        result: &mut NodeSyncResult,
    ) -> Result<(), SyncFailure> {
        let mut since = u64::try_from(n.tandem_event_cursor).unwrap_or(0);
        for _ in 0..MAX_PAGES {
            let page = client
                .get_tandem_events(GetTandemEventsRequest {
                    since,
                    limit: PAGE_SIZE,
                })
                .await
                .map_err(|s| unreachable_node(&n.id, &s))?
                .into_inner();
            check_advance(&n.id, "tandem log", since, page.next, page.has_more)?;
            if !page.events.is_empty() || page.next != since {
                let now = self.now();
                let rules = self.config.lifecycle_rules();
                let txn = self.write().await?;
                let column = node::Column::TandemEventCursor;
                move_cursor(&*txn, &n.id, column, since, page.next).await?;
                let mut applied = 0u32;
                for event in &page.events {
                    if tandems::apply_node_event(&*txn, &n.id, event, now, rules).await? {
                        applied += 1;
                    }
                }
                txn.commit().await?;
                result.tandem_events += applied;
            }
            since = page.next;
            if !page.has_more {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Refuses a page whose cursor does not move forward (a node stuck or going backwards).
pub(crate) fn check_advance(
    node_id: &str,
    log: &str,
    since: u64,
    next: u64,
    has_more: bool,
) -> Result<(), SyncFailure> {
    if next < since || (has_more && next == since) {
        return Err(SyncFailure::Failed(format!(
            "node {node_id} sent a {log} cursor that does not advance ({next} after {since})"
        )));
    }
    Ok(())
}

/// Moves one of the node's log cursors from `since` to `next` inside the page's transaction;
/// another sync that moved it first wins and this one stops.
pub(crate) async fn move_cursor(
    conn: &impl ConnectionTrait,
    node_id: &str,
    column: node::Column,
    since: u64,
    next: u64,
) -> Result<(), SyncFailure> {
    let moved = node::Entity::update_many()
        .col_expr(column, Expr::value(cursor(next)))
        .filter(node::Column::Id.eq(node_id))
        .filter(column.eq(cursor(since)))
        .exec(conn)
        .await?;
    if moved.rows_affected == 0 {
        return Err(SyncFailure::Overtaken);
    }
    Ok(())
}

/// Removes a profile. When the mentor left (removed, or consent withdrawn) the mentor's open
/// proposals end and their mentees wait again; a mentor who only got a new pseudonym or was
/// left out for k-anonymity can still answer them at the node, so they stay.
async fn withdraw_mentor(
    conn: &impl ConnectionTrait,
    node_id: &str,
    w: &Withdrawal,
    now: i64,
) -> Result<(), BrokerError> {
    let pseudonym = w.pseudonym.as_str();
    profile::Entity::delete_many()
        .filter(profile::Column::NodeId.eq(node_id))
        .filter(profile::Column::Pseudonym.eq(pseudonym))
        .exec(conn)
        .await?;
    if matches!(
        w.reason(),
        WithdrawalReason::Rotated | WithdrawalReason::Suppressed
    ) {
        return Ok(());
    }
    let open = proposal::Entity::find()
        .filter(proposal::Column::NodeId.eq(node_id))
        .filter(proposal::Column::Pseudonym.eq(pseudonym))
        .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32))
        .all(conn)
        .await?;
    for p in &open {
        proposal_state::end_proposal(conn, p, Ending::MentorWithdrawn, now).await?;
    }
    Ok(())
}
