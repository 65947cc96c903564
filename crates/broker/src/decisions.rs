//! The mentor's answer to a proposal, as the broker learns it from the mentor's node: in bulk
//! from the node's decision log at each sync, or for one proposal the moment a company needs
//! it (it confirms, or asks for the contact card) and the broker has not heard it yet. Both
//! apply the answer through [`apply_decision`], so the proposal moves through the same state
//! changes and the audit log gets the same entry, once: whichever comes second finds the
//! proposal already changed and changes nothing.

use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tandem_domain::lifecycle::Rules;
use tandem_proto::{GetDecisionRequest, MentorDecision, ProposalStatus};
use tandem_storage::broker::proposal;

use crate::nodes::node_error;
use crate::proposal_state::{self, Ending};
use crate::{Broker, BrokerError, audit};

/// How long a company's call waits for the node's answer about one decision.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Applies one mentor decision to the node's open proposal and records it in the audit log;
/// returns whether it changed the proposal. A decision the broker already applied changes
/// nothing and records nothing.
pub(crate) async fn apply_decision(
    conn: &impl ConnectionTrait,
    node_id: &str,
    introduction_id: &str,
    decision: MentorDecision,
    now: i64,
    rules: Rules,
) -> Result<bool, BrokerError> {
    let (applied, action) = match decision {
        MentorDecision::Accepted => (
            proposal_state::mentor_accepted(conn, introduction_id, node_id, now, rules).await?,
            "proposal.mentor_accepted",
        ),
        MentorDecision::Declined => {
            let open = proposal::Entity::find_by_id(introduction_id.to_owned())
                .filter(proposal::Column::NodeId.eq(node_id))
                .one(conn)
                .await?;
            let applied = match open {
                Some(p) => {
                    proposal_state::end_proposal(conn, &p, Ending::MentorDeclined, now).await?
                }
                None => false,
            };
            (applied, "proposal.mentor_declined")
        }
        MentorDecision::Pending | MentorDecision::Unspecified => return Ok(false),
    };
    if applied {
        audit::record(
            conn,
            now,
            &audit::node(node_id),
            action,
            "proposal",
            introduction_id,
            "",
        )
        .await?;
    }
    Ok(applied)
}

/// Returns whether the broker's copy of a proposal still waits for the mentor's answer.
fn awaits_mentor(p: &proposal::Model) -> bool {
    p.status == ProposalStatus::Open as i32
        && !matches!(
            MentorDecision::try_from(p.mentor_decision),
            Ok(MentorDecision::Accepted | MentorDecision::Declined)
        )
}

impl Broker {
    /// Asks the proposal's node for the mentor's decision when the broker's copy of an open
    /// proposal has none yet, and applies it as a sync would. Returns whether the proposal
    /// changed. `NodeUnavailable` when the node cannot be reached or answers wrongly.
    pub(crate) async fn learn_mentor_decision(
        &self,
        p: &proposal::Model,
    ) -> Result<bool, BrokerError> {
        if !awaits_mentor(p) {
            return Ok(false);
        }
        let n = self.node(&p.node_id).await?;
        let mut client = self.node_client(&n)?;
        let request = GetDecisionRequest {
            introduction_id: p.id.clone(),
        };
        let answer = match tokio::time::timeout(LOOKUP_TIMEOUT, client.get_decision(request)).await
        {
            Ok(Ok(response)) => response.into_inner(),
            // The introduction still waits in the outbox: the mentor cannot have answered.
            Ok(Err(s)) if s.code() == tonic::Code::NotFound => return Ok(false),
            // A node of an earlier release: its answer comes with the next sync.
            Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
                tracing::debug!(node = %n.id, "node cannot be asked for one decision");
                return Ok(false);
            }
            Ok(Err(s)) => return Err(node_error(&n.id, &s)),
            Err(_) => {
                return Err(BrokerError::NodeUnavailable {
                    node: n.id.clone(),
                    detail: format!("no decision within {LOOKUP_TIMEOUT:?}"),
                });
            }
        };
        if answer.introduction_id != p.id {
            return Err(BrokerError::NodeUnavailable {
                node: n.id.clone(),
                detail: format!(
                    "asked for introduction {}, answered for {:?}",
                    p.id, answer.introduction_id
                ),
            });
        }
        let decision = answer.decision();
        if !matches!(
            decision,
            MentorDecision::Accepted | MentorDecision::Declined
        ) {
            return Ok(false);
        }
        let now = self.now();
        let txn = self.write().await?;
        let changed = apply_decision(
            &*txn,
            &n.id,
            &p.id,
            decision,
            now,
            self.config.lifecycle_rules(),
        )
        .await?;
        txn.commit().await?;
        if changed {
            tracing::info!(
                proposal = %p.id,
                node = %n.id,
                decision = decision.as_str_name(),
                "mentor decision learnt from the node"
            );
        }
        Ok(changed)
    }
}
