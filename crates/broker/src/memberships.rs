//! Memberships: the member companies each node admitted, as the node publishes them
//! (`NodeService.GetMembershipChanges`). A membership is the company at the broker: its id is
//! the company's id, company keys are bound to it (see `enrolment`), and its employer and group
//! tokens and its node are what a submitted mentee carries for the conflict check and as its
//! home node (see `intake`).
//!
//! The feed is pulled like the others (see `sync`): page by page from the node's membership
//! cursor, each page validated as a whole, then applied and the cursor moved in one
//! transaction. A membership belongs to the node that published it first; another node
//! publishing the same id is refused. A membership the node removed ends at the broker: the
//! company's keys are revoked (their holders are told "membership ended"), its waiting and
//! proposed mentees are withdrawn and their introductions closed at the mentors' nodes; mentees
//! already in a tandem and the tandems themselves run on to their end.

use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use tandem_domain::{Employer, Violations, validate};
use tandem_proto::{GetMembershipChangesRequest, Membership, MenteeStatus, NodeSyncResult};
use tandem_service::Scope;
use tandem_storage::broker::{membership, mentee, node};

use crate::nodes::NodeClient;
use crate::sync::{
    MAX_PAGES, PAGE_SIZE, SyncFailure, check_advance, move_cursor, unreachable_node,
};
use crate::{Broker, BrokerError, audit, proposal_state};

/// The reason given to the holders of the keys of an ended membership.
pub const MEMBERSHIP_ENDED: &str = "membership ended";

/// The statuses of mentees that leave matching when their company's membership ends.
const OFFERED: [MenteeStatus; 2] = [MenteeStatus::Waiting, MenteeStatus::Proposed];

/// Checks a page of memberships; the error names the node and the field.
fn check_page(node_id: &str, memberships: &[Membership]) -> Result<(), SyncFailure> {
    let mut found = Violations::new();
    for (i, m) in memberships.iter().enumerate() {
        found.check(validate::membership(&format!("memberships[{i}]"), m));
    }
    found
        .into_result()
        .map_err(|e| SyncFailure::Failed(format!("node {node_id} sent an invalid membership: {e}")))
}

fn version(m: &Membership) -> i64 {
    i64::try_from(m.version).unwrap_or(i64::MAX)
}

/// What a membership's end did.
#[derive(Debug)]
struct Ending {
    revoked_keys: usize,
    withdrawn_mentees: usize,
    ended_proposals: usize,
}

impl Broker {
    /// Pulls and applies the node's membership changes until it has no more; counts the
    /// memberships that changed into `result`.
    pub(crate) async fn pull_memberships(
        &self,
        n: &node::Model,
        client: &mut NodeClient,
        result: &mut NodeSyncResult,
    ) -> Result<(), SyncFailure> {
        let mut since = u64::try_from(n.membership_cursor).unwrap_or(0);
        for _ in 0..MAX_PAGES {
            let page = client
                .get_membership_changes(GetMembershipChangesRequest {
                    since_version: since,
                    limit: PAGE_SIZE,
                })
                .await
                .map_err(|s| unreachable_node(&n.id, &s))?
                .into_inner();
            check_advance(&n.id, "membership", since, page.next_version, page.has_more)?;
            check_page(&n.id, &page.memberships)?;
            if !page.memberships.is_empty() || page.next_version != since {
                let now = self.now();
                let txn = self.write().await?;
                let column = node::Column::MembershipCursor;
                move_cursor(&*txn, &n.id, column, since, page.next_version).await?;
                let mut applied = 0u32;
                for m in &page.memberships {
                    if apply_membership(&*txn, &n.id, m, now).await? {
                        applied += 1;
                    }
                }
                txn.commit().await?;
                result.memberships += applied;
            }
            since = page.next_version;
            if !page.has_more {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Pulls the membership feed of every registered node (and nothing else of their sync),
    /// so that a company its association admitted a moment ago can enrol at once. A node that
    /// fails is logged and skipped; the periodic sync records it.
    pub(crate) async fn pull_all_memberships(&self) -> Result<(), BrokerError> {
        let nodes = node::Entity::find()
            .order_by_asc(node::Column::Id)
            .all(self.db())
            .await?;
        let pulls = nodes.iter().map(|n| async move {
            let mut result = NodeSyncResult::default();
            let outcome = match self.node_client(n) {
                Ok(mut client) => self.pull_memberships(n, &mut client, &mut result).await,
                Err(e) => Err(SyncFailure::from(e)),
            };
            match outcome {
                Ok(()) | Err(SyncFailure::Overtaken) => {}
                Err(SyncFailure::Unreachable(e) | SyncFailure::Failed(e)) => {
                    tracing::warn!(node = %n.id, error = %e, "membership pull failed");
                }
            }
        });
        futures_util::future::join_all(pulls).await;
        Ok(())
    }

    /// Returns who `company` is for the conflict check and where it belongs, from its
    /// membership; refused when it has none or it ended.
    pub(crate) async fn employer(&self, company: &str) -> Result<Employer, BrokerError> {
        let m = membership::Entity::find_by_id(company.to_owned())
            .one(self.db())
            .await?
            .ok_or(BrokerError::NoMembership)?;
        if !m.active {
            return Err(BrokerError::MembershipEnded);
        }
        Ok(Employer {
            employer_token: m.employer_token,
            group_token: m.group_token,
            home_node_id: m.node_id,
        })
    }
}

/// Fails unless `company`'s membership is current, holding a shared lock on its row until the
/// caller's transaction ends (PostgreSQL; SQLite's single writer needs none).
pub(crate) async fn lock_active(
    conn: &impl ConnectionTrait,
    company: &str,
) -> Result<(), BrokerError> {
    let mut query = membership::Entity::find_by_id(company.to_owned());
    if conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        query = query.lock_shared();
    }
    let m = query.one(conn).await?.ok_or(BrokerError::NoMembership)?;
    if m.active {
        Ok(())
    } else {
        Err(BrokerError::MembershipEnded)
    }
}

/// Applies one validated membership of `node_id` inside the page's transaction; returns
/// whether it changed anything. An older or equal version than the one stored changes nothing.
async fn apply_membership(
    conn: &impl ConnectionTrait,
    node_id: &str,
    m: &Membership,
    now: i64,
) -> Result<bool, SyncFailure> {
    let company_id = m.company_id.to_ascii_lowercase();
    let stored = membership::Entity::find_by_id(company_id.clone())
        .one(conn)
        .await?;
    let Some(stored) = stored else {
        membership::ActiveModel {
            company_id: Set(company_id.clone()),
            node_id: Set(node_id.to_owned()),
            employer_token: Set(m.employer_token.clone()),
            group_token: Set(m.group_token.clone()),
            code_hash: Set(m.enrolment_code_hash.clone()),
            code_expires_at_ms: Set(m.enrolment_code_expires_at_ms),
            code_used_at_ms: Set(0),
            active: Set(m.active),
            version: Set(version(m)),
            synced_at_ms: Set(now),
            ended_at_ms: Set(if m.active { 0 } else { now }),
        }
        .insert(conn)
        .await?;
        if m.active {
            let actor = audit::node(node_id);
            audit::record(
                conn,
                now,
                &actor,
                "membership.admitted",
                "membership",
                &company_id,
                "",
            )
            .await?;
            tracing::info!(company = %company_id, node = node_id, "membership admitted");
        } else {
            // Admitted and removed before the broker heard of it: normally nothing to end.
            let ending = end_membership(conn, &company_id, now).await?;
            record_end(conn, &company_id, node_id, &ending, now).await?;
        }
        return Ok(true);
    };
    if stored.node_id != node_id {
        return Err(SyncFailure::Failed(format!(
            "node {node_id} sent membership {company_id}, which belongs to node {}",
            stored.node_id
        )));
    }
    if version(m) <= stored.version {
        return Ok(false);
    }
    let recoded = stored.code_hash != m.enrolment_code_hash;
    let was_active = stored.active;
    let ended_at_ms = match (was_active, m.active) {
        (true, false) => now,
        (_, true) => 0,
        (false, false) => stored.ended_at_ms,
    };
    let mut row = stored.into_active_model();
    row.employer_token = Set(m.employer_token.clone());
    row.group_token = Set(m.group_token.clone());
    row.code_expires_at_ms = Set(m.enrolment_code_expires_at_ms);
    if recoded {
        // A new code may be exchanged once, whatever became of the previous one.
        row.code_hash = Set(m.enrolment_code_hash.clone());
        row.code_used_at_ms = Set(0);
    }
    row.active = Set(m.active);
    row.version = Set(version(m));
    row.synced_at_ms = Set(now);
    row.ended_at_ms = Set(ended_at_ms);
    row.update(conn).await?;
    if was_active && !m.active {
        let ending = end_membership(conn, &company_id, now).await?;
        record_end(conn, &company_id, node_id, &ending, now).await?;
        return Ok(true);
    }
    let action = match (was_active, m.active) {
        // Admitted again; the keys revoked at the end stay revoked.
        (false, true) => Some("membership.admitted"),
        (true, true) if recoded && !m.enrolment_code_hash.is_empty() => {
            Some("membership.code_issued")
        }
        _ => None,
    };
    if let Some(action) = action {
        let actor = audit::node(node_id);
        audit::record(conn, now, &actor, action, "membership", &company_id, "").await?;
    }
    Ok(true)
}

/// Ends a membership: revokes the company's keys and withdraws its waiting and proposed
/// mentees, whose open proposals end and whose introductions are closed at the mentors'
/// nodes. Mentees in a tandem stay, and so do the tandems.
async fn end_membership(
    conn: &impl ConnectionTrait,
    company_id: &str,
    now: i64,
) -> Result<Ending, BrokerError> {
    let revoked = tandem_service::keys::revoke_tenant(
        conn,
        now,
        audit::BROKER,
        Scope::Company,
        company_id,
        MEMBERSHIP_ENDED,
    )
    .await?;
    let offered = OFFERED.map(|s| s as i32);
    let mentees = mentee::Entity::find()
        .filter(mentee::Column::CompanyId.eq(company_id))
        .filter(mentee::Column::Status.is_in(offered))
        .order_by_asc(mentee::Column::SubmittedAtMs)
        .order_by_asc(mentee::Column::Id)
        .all(conn)
        .await?;
    let mut ending = Ending {
        revoked_keys: revoked.len(),
        withdrawn_mentees: 0,
        ended_proposals: 0,
    };
    for m in mentees {
        if !crate::intake::mark_withdrawn(conn, &m.id, now, &OFFERED).await? {
            continue;
        }
        ending.ended_proposals += proposal_state::end_open_proposals(conn, &m.id, now).await?;
        ending.withdrawn_mentees += 1;
        audit::record(
            conn,
            now,
            audit::BROKER,
            "mentee.withdrawn",
            "mentee",
            &m.id,
            "membership_ended",
        )
        .await?;
    }
    Ok(ending)
}

/// Audits and logs a membership's end.
async fn record_end(
    conn: &impl ConnectionTrait,
    company_id: &str,
    node_id: &str,
    ending: &Ending,
    now: i64,
) -> Result<(), BrokerError> {
    let Ending {
        revoked_keys,
        withdrawn_mentees,
        ended_proposals,
    } = ending;
    let detail = format!(
        "node={node_id} revoked_keys={revoked_keys} withdrawn_mentees={withdrawn_mentees} \
         ended_proposals={ended_proposals}"
    );
    audit::record(
        conn,
        now,
        audit::BROKER,
        "membership.ended",
        "membership",
        company_id,
        &detail,
    )
    .await?;
    tracing::info!(
        company = %company_id,
        node = node_id,
        revoked_keys,
        withdrawn_mentees,
        ended_proposals,
        "membership ended"
    );
    Ok(())
}
