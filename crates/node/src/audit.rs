//! The node's append-only audit log. Every state change — by a staff key through
//! `NodeAdminService`, by the broker through `NodeService` (introductions delivered, closed,
//! forgotten, contact cards released), by `tandem keys` on the node's machine — is recorded in
//! the same transaction as the change itself. Details are codes and counts, never personal
//! data. The API offers reading only.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tandem_proto::NodeAuditEvent;
use tandem_storage::node::audit_event;
use tandem_storage::now_ms;

use crate::{NodeError, NodeState};

/// Key id recorded for calls of the broker.
pub(crate) const BROKER: &str = "broker";
/// Key id recorded for `tandem keys` run against the node's database.
pub(crate) const CLI: &str = "cli";

/// Appends an entry on `conn` (normally the transaction that makes the change).
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    key_id: &str,
    action: &str,
    object_type: &str,
    object_id: &str,
    detail: &str,
) -> Result<(), NodeError> {
    audit_event::ActiveModel {
        at_ms: Set(now_ms()),
        key_id: Set(key_id.to_owned()),
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

impl NodeState {
    /// Returns audit entries after `after_id`, oldest first; `limit` 0 means 500, at most 5000.
    pub async fn list_audit_events(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<NodeAuditEvent>, NodeError> {
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
            .map(|r| NodeAuditEvent {
                id: u64::try_from(r.id).unwrap_or_default(),
                at_ms: r.at_ms,
                key_id: r.key_id,
                action: r.action,
                object_type: r.object_type,
                object_id: r.object_id,
                detail: r.detail,
            })
            .collect())
    }
}
