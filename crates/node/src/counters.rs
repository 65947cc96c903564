//! The node's named counters (feed version, decision sequence, mentor changes, publication
//! bookkeeping), read and written inside the caller's write transaction.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel,
};
use tandem_storage::node::counter;

/// Returns the counter's next value and stores it; the first value is 1. The caller holds the
/// node's write lock, so no other writer can read the same value.
pub(crate) async fn next(txn: &DatabaseTransaction, name: &str) -> Result<i64, DbErr> {
    match counter::Entity::find_by_id(name.to_owned())
        .one(txn)
        .await?
    {
        Some(row) => {
            let value = row.value + 1;
            let mut row = row.into_active_model();
            row.value = Set(value);
            row.update(txn).await?;
            Ok(value)
        }
        None => {
            counter::ActiveModel {
                name: Set(name.to_owned()),
                value: Set(1),
            }
            .insert(txn)
            .await?;
            Ok(1)
        }
    }
}

/// Returns the counter's current value, 0 when it was never incremented.
pub(crate) async fn current(db: &impl ConnectionTrait, name: &str) -> Result<i64, DbErr> {
    Ok(counter::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
        .map_or(0, |row| row.value))
}

/// Stores `value` under `name`, for the publication bookkeeping that is a value rather than a
/// sequence.
pub(crate) async fn set(txn: &DatabaseTransaction, name: &str, value: i64) -> Result<(), DbErr> {
    match counter::Entity::find_by_id(name.to_owned())
        .one(txn)
        .await?
    {
        Some(row) if row.value == value => Ok(()),
        Some(row) => {
            let mut row = row.into_active_model();
            row.value = Set(value);
            row.update(txn).await?;
            Ok(())
        }
        None => {
            counter::ActiveModel {
                name: Set(name.to_owned()),
                value: Set(value),
            }
            .insert(txn)
            .await?;
            Ok(())
        }
    }
}
