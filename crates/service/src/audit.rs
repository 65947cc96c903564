//! The append-only audit log that the broker and every node keep in their own database
//! (`audit_events`). Every state change is recorded in the same transaction as the change
//! itself; details are codes and counts, never personal data. The APIs offer reading only.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use tandem_storage::audit_event;

/// Entries a read returns when the caller names no limit.
pub const DEFAULT_LIMIT: u32 = 500;
/// Most entries one read returns.
pub const MAX_LIMIT: u32 = 5000;

/// One entry of the log, as stored (the column docs say what each field holds).
pub use audit_event::Model as Entry;

/// Appends an entry at `at_ms` on `conn` (normally the transaction that makes the change):
/// `actor` did `action` to the object `object_type`/`object_id`.
pub async fn record(
    conn: &impl ConnectionTrait,
    at_ms: i64,
    actor: &str,
    action: &str,
    object_type: &str,
    object_id: &str,
    detail: &str,
) -> Result<(), DbErr> {
    audit_event::ActiveModel {
        at_ms: Set(at_ms),
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

/// Returns entries after `after_id`, oldest first; `limit` 0 means [`DEFAULT_LIMIT`], at most
/// [`MAX_LIMIT`].
pub async fn list(
    conn: &impl ConnectionTrait,
    after_id: u64,
    limit: u32,
) -> Result<Vec<Entry>, DbErr> {
    let limit = match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    audit_event::Entity::find()
        .filter(audit_event::Column::Id.gt(i64::try_from(after_id).unwrap_or(i64::MAX)))
        .order_by_asc(audit_event::Column::Id)
        .limit(u64::from(limit))
        .all(conn)
        .await
}
