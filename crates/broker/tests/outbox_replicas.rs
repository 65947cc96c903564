//! Broker replicas sharing one database: two brokers on one PostgreSQL database both run their
//! delivery lanes and each message reaches its node exactly once, in the order it was written;
//! a message claimed by a replica that died is taken over once the lease runs out, and not
//! before.

mod support;

use std::time::{Duration, Instant};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use support::{ACME, GLOBEX, Harness, TestNode, mentee, mentor, submission};
use tandem_broker::{Broker, serve};
use tandem_proto::{CareerLevel, CompanyDecision, Topic};
use tandem_storage::broker::outbox;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A node with `mentors` mentors of two places each, registered and synced.
async fn node_with_mentors(harness: &Harness, id: &str, first: u64, mentors: u64) -> TestNode {
    let node = TestNode::start(id).await;
    for n in first..first + mentors {
        node.publish(mentor(n, CareerLevel::Director, &[Topic::Leadership]));
    }
    harness.register(&node).await;
    let synced = harness.broker.sync_nodes(Some(id)).await.expect("sync");
    assert_eq!(synced[0].error, "");
    node
}

/// Waits until no message is pending any more (both replicas deliver in the background).
async fn drained(harness: &Harness) -> Duration {
    let started = Instant::now();
    loop {
        let pending = outbox::Entity::find()
            .filter(outbox::Column::DeliveredAtMs.eq(0))
            .count(&harness.db)
            .await
            .expect("count");
        if pending == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{pending} messages still pending"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_replicas_on_one_database_deliver_each_message_exactly_once() {
    match std::env::var("TANDEM_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {}
        _ => {
            eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the two-replica test");
            return;
        }
    }
    // Both replicas run their lanes: woken by their own changes, scanning every second.
    let harness = Harness::from_env("tandem_replicas", |c| c.outbox_interval_secs = 1).await;
    let config = harness.broker.config().clone();
    let db = tandem_storage::connect(&config.database_url)
        .await
        .expect("connect");
    let second = Broker::new(db, config).await.expect("second replica");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (stop_second, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve(second.clone(), listener, async {
        let _ = stopped.await;
    }));

    let nodes = [
        node_with_mentors(&harness, "assoc", 1, 6).await,
        node_with_mentors(&harness, "guild", 101, 6).await,
    ];
    let mut mentees = Vec::new();
    for n in 0..12 {
        let company = if n % 2 == 0 { ACME } else { GLOBEX };
        let m = harness
            .broker
            .submit_mentee(company, submission(&format!("m{n}"), mentee()))
            .await
            .expect("submit");
        mentees.push((company, m.mentee_id));
    }
    // The first replica runs the round, the second answers for the companies; each change
    // wakes both replicas' lanes, which then compete for the same messages.
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!(round.proposals, 12, "{round:?}");
    second.wake_outbox();
    println!(
        "introductions delivered in {} ms",
        drained(&harness).await.as_millis()
    );
    for (k, (company, m)) in mentees.iter().enumerate().filter(|(k, _)| k % 3 == 0) {
        let p = second.list_proposals(company, m).await.expect("list")[0].clone();
        second
            .respond_to_proposal(company, &p.proposal_id, CompanyDecision::Declined as i32)
            .await
            .unwrap_or_else(|e| panic!("decline {k}: {e}"));
        harness.broker.wake_outbox();
    }
    println!(
        "closes delivered in {} ms",
        drained(&harness).await.as_millis()
    );

    for node in &nodes {
        let written: Vec<(String, String)> = outbox::Entity::find()
            .filter(outbox::Column::NodeId.eq(&node.id))
            .order_by_asc(outbox::Column::Id)
            .all(&harness.db)
            .await
            .expect("outbox")
            .into_iter()
            .map(|m| (m.kind, m.introduction_id))
            .collect();
        let received: Vec<(String, String)> = node
            .calls()
            .into_iter()
            .map(|(kind, id)| (kind.to_owned(), id))
            .collect();
        assert_eq!(
            received, written,
            "node {}: each message once, in order",
            node.id
        );
        assert!(node.introductions().values().all(|i| i.deliveries == 1));
    }
    let closes: usize = nodes
        .iter()
        .map(|n| {
            n.introductions()
                .values()
                .filter(|i| i.closed.is_some())
                .count()
        })
        .sum();
    assert_eq!(closes, 4);

    let _ = stop_second.send(());
    serving.await.expect("join").expect("second replica served");
    for node in nodes {
        node.stop().await;
    }
    harness.stop().await;
}

#[tokio::test]
async fn a_lease_of_a_replica_that_died_is_taken_over_once_it_runs_out() {
    let harness = Harness::from_env("tandem_lease", |_| {}).await;
    let node = node_with_mentors(&harness, "assoc", 1, 1).await;
    let m = harness
        .broker
        .submit_mentee(ACME, submission("k", mentee()))
        .await
        .expect("submit")
        .mentee_id;
    harness.broker.run_matching_round().await.expect("round");
    let intro = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();
    let lease = |until: i64| {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::LeasedUntilMs, Expr::value(until))
            .col_expr(outbox::Column::Attempts, Expr::value(1))
            .filter(outbox::Column::IntroductionId.eq(&intro))
            .exec(&harness.db)
    };

    // Another replica claimed the delivery and is sending it: this one leaves it alone.
    let until = harness.broker.now() + 60_000;
    lease(until).await.expect("claimed elsewhere");
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 0);
    assert!(node.introduction(&intro).is_none());
    let held = outbox::Entity::find()
        .filter(outbox::Column::IntroductionId.eq(&intro))
        .one(&harness.db)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(
        (held.leased_until_ms, held.attempts, held.delivered_at_ms),
        (until, 1, 0)
    );

    // That replica died mid-attempt: once its lease ran out, this one takes over.
    lease(harness.broker.now() - 1)
        .await
        .expect("lease ran out");
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 1);
    assert_eq!(node.introduction(&intro).expect("delivered").deliveries, 1);
    let done = outbox::Entity::find_by_id(held.id)
        .one(&harness.db)
        .await
        .expect("query")
        .expect("row");
    assert!(done.delivered_at_ms > 0);
    assert_eq!((done.attempts, done.leased_until_ms), (2, 0));
    node.stop().await;
    harness.stop().await;
}
