//! Dead letters: outbox messages the delivery lanes gave up on, because the node refused them
//! for good or they failed `outbox_max_attempts` times (see `delivery`). They no longer hold
//! back their node's lane. Operators list them, put one back in its lane (first in line, since
//! it was written before everything still waiting for the node) or drop one for good; each
//! change is audited. A dropped message stays in the outbox as done, so that an erasure still
//! tells the node to forget a delivery that may have reached it.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tandem_domain::{FieldViolation, validate};
use tandem_proto::DeadLetter;
use tandem_storage::broker::outbox;

use crate::{Broker, BrokerError, audit};

/// Dead letters a list returns when the caller names no limit.
const DEFAULT_LIMIT: u32 = 100;
/// Most dead letters one list returns.
const MAX_LIMIT: u32 = 1000;
/// What `last_error` of a dropped dead letter starts with.
const DROPPED: &str = "dropped by an operator; ";

/// A dead letter still waiting for an operator.
fn waiting() -> Condition {
    Condition::all()
        .add(outbox::Column::DeadLetteredAtMs.gt(0))
        .add(outbox::Column::DeliveredAtMs.eq(0))
}

/// Returns the outbox id a request names; 0 is no id.
fn message_id(id: u64) -> Result<i64, BrokerError> {
    if id == 0 {
        return Err(FieldViolation::new("message_id", "is required").into());
    }
    // Ids beyond the column's range name no message.
    i64::try_from(id).map_err(|_| BrokerError::NotFound("dead letter"))
}

fn dead_letter(row: &outbox::Model) -> DeadLetter {
    DeadLetter {
        message_id: u64::try_from(row.id).unwrap_or_default(),
        node_id: row.node_id.clone(),
        kind: row.kind.clone(),
        introduction_id: row.introduction_id.clone(),
        attempts: u32::try_from(row.attempts).unwrap_or_default(),
        last_error: row.last_error.clone(),
        created_at_ms: row.created_at_ms,
        dead_lettered_at_ms: row.dead_lettered_at_ms,
    }
}

/// The audit detail of a change to a dead letter: what it was, never its payload.
fn detail(row: &outbox::Model) -> String {
    format!(
        "node={} kind={} introduction={} attempts={}",
        row.node_id, row.kind, row.introduction_id, row.attempts
    )
}

impl Broker {
    /// Lists dead letters waiting for an operator (only `node_id`'s when not empty), oldest
    /// first, with a message id above `after_id`; `limit` 0 means 100, at most 1000.
    #[tracing::instrument(skip(self))]
    pub async fn list_dead_letters(
        &self,
        node_id: &str,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, BrokerError> {
        if !node_id.is_empty() {
            validate::node_id("node_id", node_id)?;
        }
        let limit = match limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let mut query = outbox::Entity::find()
            .filter(waiting())
            .filter(outbox::Column::Id.gt(i64::try_from(after_id).unwrap_or(i64::MAX)))
            .order_by_asc(outbox::Column::Id)
            .limit(u64::from(limit));
        if !node_id.is_empty() {
            query = query.filter(outbox::Column::NodeId.eq(node_id));
        }
        Ok(query
            .all(self.db())
            .await?
            .iter()
            .map(dead_letter)
            .collect())
    }

    /// Puts a dead letter back in its node's lane with its attempts reset, and wakes the lanes.
    #[tracing::instrument(skip(self))]
    pub async fn retry_dead_letter(&self, id: u64) -> Result<(), BrokerError> {
        let id = message_id(id)?;
        let now = self.now();
        let txn = self.write().await?;
        let row = self.waiting_dead_letter(&*txn, id).await?;
        let retried = outbox::Entity::update_many()
            .col_expr(outbox::Column::DeadLetteredAtMs, Expr::value(0i64))
            .col_expr(outbox::Column::Attempts, Expr::value(0))
            .col_expr(outbox::Column::NextAttemptAtMs, Expr::value(now))
            .col_expr(outbox::Column::LeasedUntilMs, Expr::value(0i64))
            .filter(outbox::Column::Id.eq(id))
            .filter(waiting())
            .exec(&*txn)
            .await?;
        if retried.rows_affected == 0 {
            return Err(BrokerError::NotFound("dead letter"));
        }
        audit::record(
            &*txn,
            now,
            audit::OPERATOR,
            "dead_letter.retried",
            "outbox_message",
            &id.to_string(),
            &detail(&row),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(message = id, node = %row.node_id, kind = %row.kind, "dead letter retried");
        self.wake_outbox();
        Ok(())
    }

    /// Gives up on a dead letter for good: it stays in the outbox as done, never delivered.
    #[tracing::instrument(skip(self))]
    pub async fn drop_dead_letter(&self, id: u64) -> Result<(), BrokerError> {
        let id = message_id(id)?;
        let now = self.now();
        let txn = self.write().await?;
        let row = self.waiting_dead_letter(&*txn, id).await?;
        let dropped = outbox::Entity::update_many()
            .col_expr(outbox::Column::DeliveredAtMs, Expr::value(now.max(1)))
            .col_expr(
                outbox::Column::LastError,
                Expr::value(format!("{DROPPED}{}", row.last_error)),
            )
            .filter(outbox::Column::Id.eq(id))
            .filter(waiting())
            .exec(&*txn)
            .await?;
        if dropped.rows_affected == 0 {
            return Err(BrokerError::NotFound("dead letter"));
        }
        audit::record(
            &*txn,
            now,
            audit::OPERATOR,
            "dead_letter.dropped",
            "outbox_message",
            &id.to_string(),
            &detail(&row),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(message = id, node = %row.node_id, kind = %row.kind, "dead letter dropped");
        Ok(())
    }

    async fn waiting_dead_letter(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        id: i64,
    ) -> Result<outbox::Model, BrokerError> {
        outbox::Entity::find_by_id(id)
            .filter(waiting())
            .one(conn)
            .await?
            .ok_or(BrokerError::NotFound("dead letter"))
    }
}
