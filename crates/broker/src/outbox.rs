//! The outbox: messages to nodes (deliver or close an introduction, a tandem's copy, forget a
//! mentee) written in the same transaction as the state change that causes them. The
//! [`delivery`](crate::delivery) lanes take them to the nodes afterwards, per node in the order
//! they were written, retried until the node acknowledges or they become dead letters.
//!
//! Whoever enqueues messages commits and then calls [`Broker::wake_outbox`]; nobody waits for
//! a node.
//!
//! [`Broker::wake_outbox`]: crate::Broker::wake_outbox

use prost::Message;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ConnectionTrait, EntityTrait};
use tandem_proto::{
    CloseIntroductionRequest, DeliverIntroductionRequest, ForgetMenteeRequest, Tandem,
    UpdateTandemRequest,
};
use tandem_storage::broker::{outbox, proposal};

use crate::BrokerError;

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
        leased_until_ms: Set(0),
        dead_lettered_at_ms: Set(0),
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
