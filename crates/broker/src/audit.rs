//! The broker's append-only audit log (the service toolkit's [`tandem_service::audit`]).
//! Every state change a caller makes is recorded in the same transaction as the change itself;
//! contact-card releases, which change nothing at the broker, get an entry of their own. The
//! API offers reading only.

use tandem_proto::AuditEvent;
pub(crate) use tandem_service::audit::record;

use crate::{Broker, BrokerError};

/// Actor name of the broker's own background jobs.
pub(crate) const BROKER: &str = "broker";
/// Actor name of the network operator.
pub(crate) const OPERATOR: &str = "operator";

/// Returns the actor name of a company.
pub(crate) fn company(id: &str) -> String {
    format!("company:{id}")
}

/// Returns the actor name of a node (for what its mentors did there).
pub(crate) fn node(id: &str) -> String {
    format!("node:{id}")
}

impl Broker {
    /// Returns audit entries after `after_id`, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_audit_events(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, BrokerError> {
        let entries = tandem_service::audit::list(self.db(), after_id, limit).await?;
        Ok(entries
            .into_iter()
            .map(|e| AuditEvent {
                id: u64::try_from(e.id).unwrap_or_default(),
                at_ms: e.at_ms,
                actor: e.actor,
                action: e.action,
                object_type: e.object_type,
                object_id: e.object_id,
                detail: e.detail,
            })
            .collect())
    }
}
