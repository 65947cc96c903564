//! The node's append-only audit log (the service toolkit's [`tandem_service::audit`]). Every
//! state change — by a staff key through `NodeAdminService`, by the broker through
//! `NodeService` (introductions delivered, closed, forgotten, contact cards released), by
//! `tandem keys` on the node's machine — is recorded in the same transaction as the change
//! itself. Details are codes and counts, never personal data. The API offers reading only.

use tandem_proto::NodeAuditEvent;
pub(crate) use tandem_service::audit::record;

use crate::{NodeError, NodeState};

/// Key id recorded for calls of the broker.
pub(crate) const BROKER: &str = "broker";
/// Key id recorded for `tandem keys` run against the node's database.
pub(crate) const CLI: &str = "cli";

impl NodeState {
    /// Returns audit entries after `after_id`, oldest first; `limit` 0 means 500, at most 5000.
    pub async fn list_audit_events(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<NodeAuditEvent>, NodeError> {
        let entries = tandem_service::audit::list(self.db(), after_id, limit).await?;
        Ok(entries
            .into_iter()
            .map(|e| NodeAuditEvent {
                id: u64::try_from(e.id).unwrap_or_default(),
                at_ms: e.at_ms,
                key_id: e.actor,
                action: e.action,
                object_type: e.object_type,
                object_id: e.object_id,
                detail: e.detail,
            })
            .collect())
    }
}
