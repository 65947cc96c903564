//! A node that hangs (accepts connections, never answers) slows only its own delivery lane:
//! next to it, a company's decline, a withdrawal, an erasure, a matching round and the sync of a
//! healthy node each return at once, the healthy node gets its messages, and once the hung node
//! answers again it gets each of its messages exactly once, in the order they were written.

mod support;

use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use support::{ACME, Harness, TestNode, mentee, mentor, submission};
use tandem_proto::{
    CareerLevel, CompanyDecision, EraseMenteeRequest, MentorDecision, ProposalStatus,
    RespondToProposalRequest, RunMatchingRoundRequest, SyncNodesRequest, Topic,
    WithdrawMenteeRequest,
};
use tandem_storage::broker::outbox;

/// What a call next to a hung node may take at most: far below the attempt deadline (5 s) and
/// the node client's own timeout (10 s) that callers used to wait out.
const FAST: Duration = Duration::from_secs(1);

/// A node with two mentors of one place each, registered and synced.
async fn node_with_mentors(harness: &Harness, id: &str, first: u64) -> TestNode {
    let node = TestNode::start(id).await;
    for n in [first, first + 1] {
        let mut m = mentor(
            n,
            CareerLevel::Director,
            &[Topic::Leadership, Topic::Financing],
        );
        m.free_capacity = 1;
        node.publish(m);
    }
    harness.register(&node).await;
    let synced = harness.broker.sync_nodes(Some(id)).await.expect("sync");
    assert_eq!((synced[0].upserts, synced[0].error.as_str()), (2, ""));
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

/// Runs `call`, prints how long it took and checks it was fast.
async fn timed<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    let took = started.elapsed();
    println!("{what}: {} ms next to a hung node", took.as_millis());
    assert!(took < FAST, "{what} took {took:?} next to a hung node");
    out
}

/// Waits (at most `within`) until `done` holds, polling the test node's state.
async fn eventually(within: Duration, what: &str, done: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_hung_node_holds_up_only_its_own_lane() {
    // The background lanes run (woken by every change, scanning every second); a failed
    // attempt is retried after a millisecond or two, so the hung node's lane is nearly always
    // in the middle of an attempt that waits out its 5 s deadline.
    let harness = Harness::from_env("tandem_isolation", |c| {
        c.outbox_interval_secs = 1;
        c.outbox_retry_base_ms = 1;
    })
    .await;
    let healthy = node_with_mentors(&harness, "assoc", 1).await;
    let stuck = node_with_mentors(&harness, "stuck", 11).await;
    let mentees: Vec<String> = futures_util::future::join_all(
        ["anna", "ben", "cem", "dana"].map(|key| submit(&harness, key)),
    )
    .await;
    stuck.hang().await;

    let mut operator = harness.operator();
    let mut acme = harness.company(ACME);
    let round = timed(
        "RunMatchingRound",
        operator.run_matching_round(RunMatchingRoundRequest {}),
    )
    .await
    .expect("round")
    .into_inner();
    assert_eq!(round.proposals, 4, "{round:?}");
    let mut by_node: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for m in &mentees {
        let p = harness.broker.list_proposals(ACME, m).await.expect("list")[0].clone();
        by_node
            .entry(p.node_id.clone())
            .or_default()
            .push((m.clone(), p.proposal_id));
    }
    assert_eq!(by_node["assoc"].len(), 2, "{by_node:?}");
    assert_eq!(by_node["stuck"].len(), 2, "{by_node:?}");

    // The healthy node gets its introductions while the other one hangs.
    let took = eventually(FAST, "delivery to the healthy node", || {
        healthy.introductions().len() == 2
    })
    .await;
    println!(
        "introductions reached the healthy node {} ms after the round",
        took.as_millis()
    );

    // Every caller-facing change returns at once, whichever node it concerns.
    let (declined_mentee, declined) = by_node["assoc"][0].clone();
    let answer = timed(
        "RespondToProposal (decline, healthy node)",
        acme.respond_to_proposal(RespondToProposalRequest {
            proposal_id: declined.clone(),
            decision: CompanyDecision::Declined as i32,
        }),
    )
    .await
    .expect("decline")
    .into_inner();
    assert_eq!(answer.status, ProposalStatus::DeclinedByCompany as i32);
    let (withdrawn, withdrawn_intro) = by_node["stuck"][0].clone();
    timed(
        "WithdrawMentee (hung node's proposal)",
        acme.withdraw_mentee(WithdrawMenteeRequest {
            mentee_id: withdrawn.clone(),
        }),
    )
    .await
    .expect("withdraw");
    let (erased, erased_intro) = by_node["stuck"][1].clone();
    timed(
        "EraseMentee (hung node's proposal)",
        acme.erase_mentee(EraseMenteeRequest {
            mentee_id: erased.clone(),
        }),
    )
    .await
    .expect("erase");
    // The declined mentee waits again: the next round proposes it to the hung node's other
    // mentor (its own node's other place is taken).
    let again = timed(
        "RunMatchingRound (again)",
        operator.run_matching_round(RunMatchingRoundRequest {}),
    )
    .await
    .expect("round")
    .into_inner();
    assert_eq!(again.proposals, 1, "{again:?}");
    let second = harness
        .broker
        .list_proposals(ACME, &declined_mentee)
        .await
        .expect("list")[0]
        .clone();
    assert_eq!(second.node_id, "stuck");
    let (_, accepted) = by_node["assoc"][1].clone();
    healthy.decide(&accepted, MentorDecision::Accepted);
    let synced = timed(
        "SyncNodes (healthy node)",
        operator.sync_nodes(SyncNodesRequest {
            node_id: "assoc".into(),
        }),
    )
    .await
    .expect("sync")
    .into_inner()
    .results;
    assert_eq!((synced[0].decisions, synced[0].error.as_str()), (1, ""));

    // The healthy node heard of the decline meanwhile.
    eventually(FAST, "the close at the healthy node", || {
        healthy
            .introduction(&declined)
            .is_some_and(|i| i.closed.as_deref() == Some("company_declined"))
    })
    .await;
    assert!(
        stuck.calls().is_empty(),
        "a hung node processes nothing: {:?}",
        stuck.calls()
    );
    let tried = outbox::Entity::find()
        .filter(outbox::Column::IntroductionId.eq(&withdrawn_intro))
        .filter(outbox::Column::Kind.eq(outbox::DELIVER))
        .one(&harness.db)
        .await
        .expect("query")
        .expect("the delivery to the hung node");
    assert!(
        tried.attempts >= 1 && tried.delivered_at_ms == 0,
        "the hung node's lane was trying all along: {tried:?}"
    );

    // The node answers again: everything for it arrives, exactly once and in order, and the
    // erased mentee's summary never does.
    stuck.restart().await;
    let recovered = Instant::now();
    let expected: Vec<(String, String)> = outbox::Entity::find()
        .filter(outbox::Column::NodeId.eq("stuck"))
        .filter(outbox::Column::LastError.ne("cancelled: mentee erased"))
        .order_by_asc(outbox::Column::Id)
        .all(&harness.db)
        .await
        .expect("outbox")
        .into_iter()
        .map(|m| (m.kind, m.introduction_id))
        .collect();
    let took = eventually(Duration::from_secs(30), "delivery after recovery", || {
        stuck.calls().len() >= expected.len()
    })
    .await;
    println!(
        "the recovered node had its {} messages {} ms after it answered again",
        expected.len(),
        took.as_millis()
    );
    assert_eq!(harness.settle().await, 0, "nothing was left to deliver");
    let calls: Vec<(String, String)> = stuck
        .calls()
        .into_iter()
        .map(|(kind, id)| (kind.to_owned(), id))
        .collect();
    assert_eq!(calls, expected, "each message once, in order");
    let intros = stuck.introductions();
    assert_eq!(
        intros.keys().cloned().collect::<Vec<_>>(),
        {
            let mut ids = vec![withdrawn_intro.clone(), second.proposal_id.clone()];
            ids.sort();
            ids
        },
        "the erased mentee's introduction never reached the node"
    );
    assert!(intros.values().all(|i| i.deliveries == 1));
    assert_eq!(
        intros[&withdrawn_intro].closed.as_deref(),
        Some("mentee_withdrawn")
    );
    assert!(intros[&second.proposal_id].closed.is_none());
    // The erasure's cancellation stood against the attempt that was in flight at the time.
    let cancelled = outbox::Entity::find()
        .filter(outbox::Column::IntroductionId.eq(&erased_intro))
        .filter(outbox::Column::Kind.eq(outbox::DELIVER))
        .one(&harness.db)
        .await
        .expect("query")
        .expect("the erased mentee's delivery");
    assert_eq!(cancelled.last_error, "cancelled: mentee erased");
    assert!(cancelled.payload.is_empty());
    let pending = outbox::Entity::find()
        .filter(outbox::Column::DeliveredAtMs.eq(0))
        .all(&harness.db)
        .await
        .expect("outbox");
    assert!(pending.is_empty(), "{pending:?}");
    println!(
        "recovery to an empty outbox: {} ms",
        recovered.elapsed().as_millis()
    );
    healthy.stop().await;
    stuck.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_broker_that_stops_gives_up_the_leases_of_its_attempts() {
    let mut harness = Harness::from_env("tandem_isolation_stop", |c| {
        c.outbox_interval_secs = 1;
    })
    .await;
    let stuck = node_with_mentors(&harness, "stuck", 1).await;
    submit(&harness, "anna").await;
    stuck.hang().await;
    assert_eq!(
        harness
            .broker
            .run_matching_round()
            .await
            .expect("round")
            .proposals,
        1
    );
    let db = harness.db.clone();
    let delivery = || {
        let db = db.clone();
        async move {
            outbox::Entity::find()
                .filter(outbox::Column::Kind.eq(outbox::DELIVER))
                .one(&db)
                .await
                .expect("query")
                .expect("the delivery")
        }
    };
    // The lane is in the middle of its attempt, under its lease.
    let started = Instant::now();
    while delivery().await.leased_until_ms == 0 {
        assert!(started.elapsed() < FAST, "the delivery was never attempted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Stopping abandons the attempt and gives the lease up: another replica (or this one,
    // restarted) takes the message at once instead of after the lease ran out.
    let _keep_the_database = harness.dir.take();
    harness.stop().await;
    let released = delivery().await;
    assert_eq!(
        (
            released.leased_until_ms,
            released.delivered_at_ms,
            released.attempts
        ),
        (0, 0, 1),
        "{released:?}"
    );
    stuck.stop().await;
}
