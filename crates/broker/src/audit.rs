//! The broker's append-only audit log. Every state change a caller makes is recorded in the
//! same transaction as the change itself; contact-card releases, which change nothing at the
//! broker, get an entry of their own. The API offers reading only.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tandem_proto::AuditEvent;
use tandem_storage::broker::audit_event;
use tandem_storage::now_ms;

use crate::{Broker, BrokerError};

/// Actor name of the broker's own background jobs.
pub(crate) const BROKER: &str = "broker";
/// Actor name of the network operator.
pub(crate) const OPERATOR: &str = "operator";

/// Returns the actor name of a company.
pub(crate) fn company(id: &str) -> String {
    format!("company:{id}")
}

/// Appends an entry on `conn` (normally the transaction that makes the change).
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    actor: &str,
    action: &str,
    object_type: &str,
    object_id: &str,
    detail: &str,
) -> Result<(), BrokerError> {
    audit_event::ActiveModel {
        at_ms: Set(now_ms()),
        actor: Set(actor.to_owned()),
        action: Set(action.to_owned()),
        object_type: Set(object_type.to_owned()),
        object_id: Set(object_id.to_owned()),
        detail: Set(detail.to_owned()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

impl Broker {
    /// Returns audit entries after `after_id`, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_audit_events(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, BrokerError> {
        let limit = match limit {
            0 => 500,
            n => n.min(5000),
        };
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::Id.gt(i64::try_from(after_id).unwrap_or(i64::MAX)))
            .order_by_asc(audit_event::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEvent {
                id: u64::try_from(r.id).unwrap_or_default(),
                at_ms: r.at_ms,
                actor: r.actor,
                action: r.action,
                object_type: r.object_type,
                object_id: r.object_id,
                detail: r.detail,
            })
            .collect())
    }
}
