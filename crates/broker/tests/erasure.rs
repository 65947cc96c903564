//! Mentee erasure at the broker: the mentee is withdrawn and becomes a tombstone without
//! needs, its proposals lose their goal-describing reasons, the outbox forgets the summary it
//! carried (a delivery still waiting is cancelled), and every node that was sent the
//! introduction is told to forget the mentee. Another company's mentee is not found.

mod support;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use support::{ACME, Harness, TestNode, mentee, mentor, submission};
use tandem_proto::{CareerLevel, MenteeStatus, ProposalStatus, Topic};
use tandem_storage::broker::{audit_event, mentee as mentee_row, outbox, proposal};

async fn node_with_mentors(harness: &Harness) -> TestNode {
    let node = TestNode::start("assoc").await;
    for n in 1..=2 {
        node.publish(mentor(
            n,
            CareerLevel::Director,
            &[Topic::Leadership, Topic::Financing],
        ));
    }
    harness.register(&node).await;
    harness.broker.sync_nodes(None).await.expect("sync");
    node
}

async fn submit(harness: &Harness, key: &str) -> String {
    harness
        .broker
        .submit_mentee(ACME, submission(key, mentee()))
        .await
        .expect("submit")
        .mentee_id
}

async fn make_due(harness: &Harness) {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptAtMs, Expr::value(0i64))
        .exec(&harness.db)
        .await
        .expect("make due");
}

#[tokio::test]
async fn an_erased_mentee_leaves_a_tombstone_and_the_node_forgets_it() {
    let harness = Harness::sqlite().await;
    let node = node_with_mentors(&harness).await;
    let erased = submit(&harness, "anna-at-acme").await;
    let kept = submit(&harness, "ben-at-acme").await;
    assert_eq!(
        harness
            .broker
            .run_matching_round()
            .await
            .expect("round")
            .proposals,
        2
    );
    let proposal_of = |id: String| {
        let broker = harness.broker.clone();
        async move {
            broker.list_proposals(ACME, &id).await.expect("list")[0]
                .proposal_id
                .clone()
        }
    };
    let erased_intro = proposal_of(erased.clone()).await;
    let kept_intro = proposal_of(kept.clone()).await;
    assert_eq!(harness.settle().await, 2);
    assert!(
        node.introduction(&erased_intro)
            .expect("delivered")
            .request
            .mentee
            .is_some()
    );

    // Another company cannot erase it, nor learn that it exists.
    let err = harness
        .broker
        .erase_mentee("globex", &erased)
        .await
        .expect_err("foreign");
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::NotFound);

    let tombstone = harness
        .broker
        .erase_mentee(ACME, &erased)
        .await
        .expect("erase");
    assert_eq!(tombstone.mentee_id, erased);
    assert_eq!(tombstone.status(), MenteeStatus::Withdrawn);
    assert!(tombstone.erased_at_ms > 0);
    assert_eq!(tombstone.request, None);
    assert_eq!(tombstone.idempotency_key, format!("erased-{erased}"));
    // Idempotent, and the tombstone is what the company reads from now on.
    assert_eq!(
        harness
            .broker
            .erase_mentee(ACME, &erased)
            .await
            .expect("again"),
        tombstone
    );
    assert_eq!(
        harness.broker.get_mentee(ACME, &erased).await.expect("get"),
        tombstone
    );

    // The node closed the introduction and forgot the mentee; the other one is untouched.
    assert_eq!(harness.settle().await, 2, "the close and the forget");
    let intro = node.introduction(&erased_intro).expect("still known");
    assert_eq!(intro.closed.as_deref(), Some("mentee_withdrawn"));
    assert!(intro.forgotten);
    assert_eq!(intro.request.mentee, None);
    let other = node.introduction(&kept_intro).expect("kept");
    assert!(!other.forgotten && other.closed.is_none());
    assert!(other.request.mentee.is_some());

    // Behind the API: no needs, no reasons, no summary in the outbox.
    let row = mentee_row::Entity::find_by_id(erased.clone())
        .one(&harness.db)
        .await
        .expect("query")
        .expect("tombstone row");
    assert_eq!((row.needs.as_str(), row.request_hash.as_str()), ("", ""));
    assert_eq!(row.company_id, ACME);
    let p = proposal::Entity::find_by_id(erased_intro.clone())
        .one(&harness.db)
        .await
        .expect("query")
        .expect("proposal");
    assert_eq!(p.status, ProposalStatus::Withdrawn as i32);
    assert_eq!(p.reasons, "[]");
    let messages = outbox::Entity::find()
        .filter(outbox::Column::IntroductionId.eq(&erased_intro))
        .all(&harness.db)
        .await
        .expect("outbox");
    let kinds: Vec<&str> = messages.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, [outbox::DELIVER, outbox::CLOSE, outbox::FORGET]);
    assert!(messages[0].payload.is_empty());
    assert!(messages.iter().all(|m| m.delivered_at_ms > 0));

    let kept_mentee = harness.broker.get_mentee(ACME, &kept).await.expect("kept");
    assert_eq!(kept_mentee.status(), MenteeStatus::Proposed);
    assert!(kept_mentee.request.is_some());
    let kept_proposal = proposal::Entity::find_by_id(kept_intro)
        .one(&harness.db)
        .await
        .expect("query")
        .expect("proposal");
    assert_ne!(kept_proposal.reasons, "[]");

    let audit = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("mentee.erased"))
        .all(&harness.db)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1, "erasing again records nothing");
    assert_eq!(audit[0].object_id, erased);
    assert_eq!(audit[0].actor, format!("company:{ACME}"));
    assert_eq!(audit[0].detail, "ended_proposals=1 proposals=1 tandems=0");
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_delivery_still_waiting_is_cancelled_and_never_reaches_the_node() {
    let harness = Harness::sqlite().await;
    let node = node_with_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    node.stop().await;
    harness.broker.run_matching_round().await.expect("round");
    let intro = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();

    harness.broker.erase_mentee(ACME, &m).await.expect("erase");
    let delivery = outbox::Entity::find()
        .filter(outbox::Column::IntroductionId.eq(&intro))
        .filter(outbox::Column::Kind.eq(outbox::DELIVER))
        .one(&harness.db)
        .await
        .expect("query")
        .expect("delivery");
    assert!(delivery.payload.is_empty());
    assert!(delivery.delivered_at_ms > 0);
    assert_eq!(delivery.last_error, "cancelled: mentee erased");

    // Back up, the node gets the close and the forget for an introduction it never saw (both
    // answered NOT_FOUND, which counts as done), and never the summary.
    node.restart().await;
    make_due(&harness).await;
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 2);
    assert!(node.introduction(&intro).is_none());
    let pending = outbox::Entity::find()
        .filter(outbox::Column::DeliveredAtMs.eq(0))
        .all(&harness.db)
        .await
        .expect("outbox");
    assert!(pending.is_empty(), "{pending:?}");
    node.stop().await;
    harness.stop().await;
}
