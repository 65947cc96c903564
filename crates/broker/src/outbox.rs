//! The outbox: messages to nodes (deliver or close an introduction, a tandem's copy, forget a
//! mentee) written in the same
//! transaction as the state change that causes them, and delivered afterwards, retried with
//! exponential backoff until the node acknowledges.
//!
//! Messages to one node are delivered strictly in the order they were written, and a pass
//! stops at a node's first failure, so that a node never sees an introduction closed before it
//! was delivered.

use std::collections::BTreeMap;

use prost::Message;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tandem_proto::{
    CloseIntroductionRequest, DeliverIntroductionRequest, ForgetMenteeRequest, Tandem,
    UpdateTandemRequest,
};
use tandem_storage::broker::{node, outbox, proposal};

use crate::{Broker, BrokerError};

/// Longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;
/// Most messages one pass looks at; the rest wait for the next pass.
const PASS_LIMIT: u64 = 1000;

/// Returns the wait before the next attempt after `attempts` failed ones: 1 s, 2 s, 4 s, …,
/// at most five minutes.
pub(crate) fn backoff_ms(attempts: i32) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    (1000i64 << exponent).min(MAX_BACKOFF_MS)
}

fn message(
    node_id: &str,
    kind: &str,
    introduction_id: &str,
    payload: Vec<u8>,
    now: i64,
) -> outbox::ActiveModel {
    outbox::ActiveModel {
        id: NotSet,
        node_id: Set(node_id.to_owned()),
        kind: Set(kind.to_owned()),
        introduction_id: Set(introduction_id.to_owned()),
        payload: Set(payload),
        attempts: Set(0),
        next_attempt_at_ms: Set(now),
        delivered_at_ms: Set(0),
        last_error: Set(String::new()),
        created_at_ms: Set(now),
    }
}

/// Returns the message that delivers an introduction to the mentor's node.
pub(crate) fn deliver_message(
    node_id: &str,
    request: &DeliverIntroductionRequest,
    now: i64,
) -> outbox::ActiveModel {
    message(
        node_id,
        outbox::DELIVER,
        &request.introduction_id,
        request.encode_to_vec(),
        now,
    )
}

/// Returns the message that tells the mentor's node to close a proposal's introduction.
pub(crate) fn close_message(p: &proposal::Model, reason: &str, now: i64) -> outbox::ActiveModel {
    close_introduction_message(&p.node_id, &p.id, reason, now)
}

/// Returns the message that tells `node_id` to close introduction `id`.
pub(crate) fn close_introduction_message(
    node_id: &str,
    id: &str,
    reason: &str,
    now: i64,
) -> outbox::ActiveModel {
    let request = CloseIntroductionRequest {
        introduction_id: id.to_owned(),
        reason: reason.to_owned(),
    };
    message(node_id, outbox::CLOSE, id, request.encode_to_vec(), now)
}

/// Returns the message that gives the mentor's node its copy of a tandem (without the
/// mentee-side free text).
pub(crate) fn tandem_message(node_id: &str, t: &Tandem, now: i64) -> outbox::ActiveModel {
    let request = UpdateTandemRequest {
        tandem: Some(tandem_domain::lifecycle::for_node(t)),
    };
    message(
        node_id,
        outbox::UPDATE_TANDEM,
        &t.tandem_id,
        request.encode_to_vec(),
        now,
    )
}

/// Returns the message that tells the mentor's node to forget a proposal's mentee summary.
pub(crate) fn forget_message(p: &proposal::Model, now: i64) -> outbox::ActiveModel {
    let request = ForgetMenteeRequest {
        introduction_id: p.id.clone(),
    };
    message(
        &p.node_id,
        outbox::FORGET,
        &p.id,
        request.encode_to_vec(),
        now,
    )
}

/// Writes messages to the outbox (inside the caller's transaction).
pub(crate) async fn enqueue(
    conn: &impl ConnectionTrait,
    messages: Vec<outbox::ActiveModel>,
) -> Result<(), BrokerError> {
    for chunk in messages.chunks(200) {
        outbox::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

impl Broker {
    /// Attempts every due message, oldest first per node, and returns how many the nodes
    /// acknowledged. A failed attempt is retried later with exponential backoff.
    #[tracing::instrument(skip(self))]
    pub async fn deliver_outbox(&self) -> Result<usize, BrokerError> {
        let _pass = self.outbox_lock.lock().await;
        let pending = outbox::Entity::find()
            .filter(outbox::Column::DeliveredAtMs.eq(0))
            .order_by_asc(outbox::Column::Id)
            .limit(PASS_LIMIT)
            .all(self.db())
            .await?;
        let mut by_node: BTreeMap<String, Vec<outbox::Model>> = BTreeMap::new();
        for msg in pending {
            by_node.entry(msg.node_id.clone()).or_default().push(msg);
        }
        let passes = by_node
            .into_iter()
            .map(|(node_id, messages)| self.deliver_to_node(node_id, messages));
        let mut delivered = 0;
        for result in futures_util::future::join_all(passes).await {
            delivered += result?;
        }
        Ok(delivered)
    }

    /// Delivers one node's pending messages in order until the first one that is not due or
    /// fails.
    #[tracing::instrument(skip(self, messages), fields(messages = messages.len()))]
    async fn deliver_to_node(
        &self,
        node_id: String,
        messages: Vec<outbox::Model>,
    ) -> Result<usize, BrokerError> {
        let Some(node) = node::Entity::find_by_id(node_id.clone())
            .one(self.db())
            .await?
        else {
            tracing::warn!(node = %node_id, "outbox messages for an unregistered node");
            return Ok(0);
        };
        let mut delivered = 0;
        for msg in messages {
            let now = self.now();
            if msg.next_attempt_at_ms > now {
                break;
            }
            match self.send(&node, &msg).await {
                Ok(()) => {
                    let txn = self.write().await?;
                    outbox::Entity::update_many()
                        .col_expr(
                            outbox::Column::DeliveredAtMs,
                            Expr::value(self.now().max(1)),
                        )
                        .col_expr(outbox::Column::Attempts, Expr::value(msg.attempts + 1))
                        .col_expr(outbox::Column::LastError, Expr::value(""))
                        .filter(outbox::Column::Id.eq(msg.id))
                        .exec(&*txn)
                        .await?;
                    txn.commit().await?;
                    tracing::debug!(node = %node_id, kind = %msg.kind, introduction = %msg.introduction_id, "message delivered");
                    delivered += 1;
                }
                Err(detail) => {
                    let attempts = msg.attempts + 1;
                    let txn = self.write().await?;
                    outbox::Entity::update_many()
                        .col_expr(outbox::Column::Attempts, Expr::value(attempts))
                        .col_expr(
                            outbox::Column::NextAttemptAtMs,
                            Expr::value(now + backoff_ms(msg.attempts)),
                        )
                        .col_expr(outbox::Column::LastError, Expr::value(detail.clone()))
                        .filter(outbox::Column::Id.eq(msg.id))
                        .exec(&*txn)
                        .await?;
                    txn.commit().await?;
                    tracing::warn!(node = %node_id, attempts, kind = %msg.kind, error = %detail, "introduction delivery failed");
                    break;
                }
            }
        }
        Ok(delivered)
    }

    /// Sends one message; the error is the text recorded for the operator.
    async fn send(&self, node: &node::Model, msg: &outbox::Model) -> Result<(), String> {
        let mut client = self.node_client(node).map_err(|e| e.to_string())?;
        match msg.kind.as_str() {
            outbox::DELIVER => {
                let request = DeliverIntroductionRequest::decode(msg.payload.as_slice())
                    .map_err(|e| format!("undecodable payload: {e}"))?;
                client
                    .deliver_introduction(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
            }
            outbox::CLOSE => {
                let request = CloseIntroductionRequest::decode(msg.payload.as_slice())
                    .map_err(|e| format!("undecodable payload: {e}"))?;
                match client.close_introduction(request).await {
                    Ok(_) => Ok(()),
                    // The node no longer knows the introduction (the mentor was erased):
                    // there is nothing left to close.
                    Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
                    Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
                }
            }
            outbox::UPDATE_TANDEM => {
                let request = UpdateTandemRequest::decode(msg.payload.as_slice())
                    .map_err(|e| format!("undecodable payload: {e}"))?;
                match client.update_tandem(request).await {
                    Ok(_) => Ok(()),
                    // The node no longer knows the introduction (the mentor was erased).
                    Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
                    Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
                }
            }
            outbox::FORGET => {
                let request = ForgetMenteeRequest::decode(msg.payload.as_slice())
                    .map_err(|e| format!("undecodable payload: {e}"))?;
                match client.forget_mentee(request).await {
                    Ok(_) => Ok(()),
                    // The node never stored the introduction (its delivery was cancelled) or
                    // erased it with its mentor: there is nothing to forget.
                    Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
                    Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
                }
            }
            other => Err(format!("unknown message kind {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff_ms(0), 1000);
        assert_eq!(backoff_ms(1), 2000);
        assert_eq!(backoff_ms(3), 8000);
        assert_eq!(backoff_ms(9), 300_000);
        assert_eq!(backoff_ms(i32::MAX), 300_000);
    }
}
