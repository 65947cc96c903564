//! Two brokers on one PostgreSQL database — what two Kubernetes replicas are — against test
//! nodes over loopback gRPC: rounds on both at once never give a mentor more open proposals
//! than places, a replica that goes away in the middle of a round frees the round for the
//! other, and a node is synced by one replica at a time with cursors that never go back.
//!
//! PostgreSQL only: SQLite is one process's database. Skipped without
//! `TANDEM_TEST_POSTGRES_URL`.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Statement, TransactionTrait,
};
use support::{ACME, GLOBEX, Harness, TestNode, mentee, mentor, submission};
use tandem_broker::{Broker, BrokerError};
use tandem_proto::{CareerLevel, MatchingRound, ProposalStatus, Topic};
use tandem_storage::broker::{matching_round, mentee as mentee_row, node, profile, proposal};

/// The classes (first keys) of the broker's advisory locks (`replicas.rs`): the round's, and
/// the node syncs'.
const ROUND_LOCK_CLASS: i64 = 0x5444_4D01;
const SYNC_LOCK_CLASS: i32 = 0x5444_4D02;

/// A harness broker and a second broker (its own connection pool, its own process-local
/// locks) over the same PostgreSQL database; `None` without PostgreSQL.
async fn replicas(name: &str) -> Option<(Harness, Arc<Broker>)> {
    match std::env::var("TANDEM_TEST_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => {}
        _ => {
            eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the replica test on PostgreSQL");
            return None;
        }
    }
    let harness = Harness::from_env(name, |_| {}).await;
    let config = harness.broker.config().clone();
    let db = tandem_storage::connect(&config.database_url)
        .await
        .expect("second pool");
    let second = Broker::new(db, config).await.expect("second broker");
    Some((harness, second))
}

/// Starts a test node `assoc` with `mentors` Director profiles of `places` places each,
/// registered and synced.
async fn node_with_mentors(harness: &Harness, mentors: u64, places: u32) -> TestNode {
    let node = TestNode::start("assoc").await;
    for n in 1..=mentors {
        let mut profile = mentor(
            n,
            CareerLevel::Director,
            &[Topic::Leadership, Topic::Financing],
        );
        profile.free_capacity = places;
        node.publish(profile);
    }
    harness.register(&node).await;
    let synced = harness
        .broker
        .sync_nodes(Some("assoc"))
        .await
        .expect("sync");
    assert_eq!(synced[0].error, "", "{synced:?}");
    node
}

/// Returns the mentors whose open proposals outnumber the places of their profile.
async fn overbooked(db: &DatabaseConnection) -> Vec<(String, usize, i32)> {
    let places: BTreeMap<String, i32> = profile::Entity::find()
        .all(db)
        .await
        .expect("profiles")
        .into_iter()
        .map(|p| (p.pseudonym, p.free_capacity))
        .collect();
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for p in proposal::Entity::find()
        .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32))
        .all(db)
        .await
        .expect("proposals")
    {
        *open.entry(p.pseudonym).or_default() += 1;
    }
    open.into_iter()
        .filter_map(|(pseudonym, n)| {
            let free = places.get(&pseudonym).copied().unwrap_or(0);
            (i64::try_from(n).expect("small") > i64::from(free)).then_some((pseudonym, n, free))
        })
        .collect()
}

async fn open_proposals(db: &DatabaseConnection) -> u64 {
    proposal::Entity::find()
        .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32))
        .count(db)
        .await
        .expect("count")
}

/// Returns whether a round ran or was refused because the other replica runs one; any other
/// failure fails the test.
fn ran(outcome: Result<MatchingRound, BrokerError>) -> bool {
    match outcome {
        Ok(_) => true,
        Err(BrokerError::RoundRunningElsewhere) => false,
        Err(e) => panic!("round failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_rounds_on_two_replicas_never_overbook_a_mentor() {
    let Some((harness, second)) = replicas("tandem_replicas_rounds").await else {
        return;
    };
    let first = Arc::clone(&harness.broker);
    let _node = node_with_mentors(&harness, 80, 1).await;

    // Each mentee sorts before every earlier one, so that a round that sees one more mentee
    // than the other plans a different assignment for all of them: two plans that overlap
    // without the lock give one mentor two mentees.
    let mut key = 100_000u32;
    let mut next_key = || {
        key -= 1;
        format!("mentee-{key}")
    };
    let (mut refused, mut rounds) = (0, 0);
    for iteration in 0..30 {
        for company in [ACME, GLOBEX] {
            first
                .submit_mentee(company, submission(&next_key(), mentee()))
                .await
                .expect("submit");
        }
        let late = next_key();
        let (a, b) = tokio::join!(first.run_matching_round(), async {
            second
                .submit_mentee(ACME, submission(&late, mentee()))
                .await
                .expect("submit");
            second.run_matching_round().await
        });
        for outcome in [a, b] {
            if ran(outcome) {
                rounds += 1;
            } else {
                refused += 1;
            }
        }
        let over = overbooked(&harness.db).await;
        assert!(
            over.is_empty(),
            "iteration {iteration}: mentors with more open proposals than places \
             (pseudonym, open, places): {over:?}"
        );
    }
    eprintln!("{rounds} rounds ran, {refused} refused while the other replica ran one");
    assert!(rounds >= 30, "{rounds} rounds ran");
    // The replicas did run rounds at the same time (one each iteration waits only for a
    // submission), and the round's lock turned the later one away.
    assert!(
        refused > 0,
        "no round was refused: the rounds never overlapped, or no lock kept them apart"
    );

    // Nothing was lost to a refused or trimmed round: one more round fills every place.
    assert!(ran(first.run_matching_round().await));
    assert_eq!(open_proposals(&harness.db).await, 80);
    assert!(overbooked(&harness.db).await.is_empty());
    harness.stop().await;
}

/// Holds the row of `mentee_id` locked in a transaction of its own, so that a round's write
/// waits for it — a round stopped in the middle, with the round's lock held.
async fn hold_mentee(db: &DatabaseConnection, mentee_id: &str) -> sea_orm::DatabaseTransaction {
    let hold = db.begin().await.expect("begin");
    hold.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id FROM mentees WHERE id = $1 FOR UPDATE",
        [mentee_id.into()],
    ))
    .await
    .expect("lock the mentee");
    hold
}

/// Waits until some statement on the database waits for a row lock.
async fn until_a_write_waits(db: &DatabaseConnection) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) AS waiting FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("activity")
            .expect("a row");
        let waiting: i64 = row.try_get("", "waiting").expect("count");
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no write started waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs rounds on `broker` until one is not refused for a round on another replica.
async fn round_when_free(broker: &Broker) -> MatchingRound {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match broker.run_matching_round().await {
            Err(BrokerError::RoundRunningElsewhere) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            outcome => return outcome.expect("round"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_round_cancelled_midway_frees_the_round_for_the_other_replica() {
    let Some((harness, second)) = replicas("tandem_replicas_cancel").await else {
        return;
    };
    let _node = node_with_mentors(&harness, 1, 2).await;
    let waiting = harness
        .broker
        .submit_mentee(ACME, submission("anna", mentee()))
        .await
        .expect("submit")
        .mentee_id;

    let hold = hold_mentee(&harness.db, &waiting).await;
    let first = Arc::clone(&harness.broker);
    let stuck = tokio::spawn(async move { first.run_matching_round().await });
    until_a_write_waits(&harness.db).await;
    let refused = second.run_matching_round().await.expect_err("refused");
    assert!(matches!(refused, BrokerError::RoundRunningElsewhere));
    let status = tonic::Status::from(refused);
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        status.message(),
        "a matching round is already running on another broker replica; \
         try again when it has finished"
    );

    // The replica's round is abandoned in the middle (a cancelled request, a shutdown).
    stuck.abort();
    assert!(stuck.await.expect_err("cancelled").is_cancelled());
    hold.rollback().await.expect("release the mentee");

    let round = round_when_free(&second).await;
    assert_eq!(round.proposals, 1, "{round:?}");
    assert_eq!(open_proposals(&harness.db).await, 1);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_loses_its_round_lock_commits_nothing_and_the_other_runs_the_round() {
    let Some((harness, second)) = replicas("tandem_replicas_crash").await else {
        return;
    };
    let _node = node_with_mentors(&harness, 1, 2).await;
    let waiting = harness
        .broker
        .submit_mentee(ACME, submission("anna", mentee()))
        .await
        .expect("submit")
        .mentee_id;

    let hold = hold_mentee(&harness.db, &waiting).await;
    let first = Arc::clone(&harness.broker);
    let stuck = tokio::spawn(async move { first.run_matching_round().await });
    until_a_write_waits(&harness.db).await;
    assert!(matches!(
        second.run_matching_round().await,
        Err(BrokerError::RoundRunningElsewhere)
    ));

    // The session holding the first replica's round lock dies (its pod is gone, the network
    // cut it): the lock goes with it.
    let killed = harness
        .db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(pg_terminate_backend(pid)) AS killed FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = 0 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [ROUND_LOCK_CLASS.into()],
        ))
        .await
        .expect("terminate")
        .expect("a row");
    assert_eq!(killed.try_get::<i64>("", "killed").expect("count"), 1);

    let second_round = tokio::spawn({
        let second = Arc::clone(&second);
        async move { round_when_free(&second).await }
    });
    hold.rollback().await.expect("release the mentee");
    let first_outcome = stuck.await.expect("join");
    assert!(
        matches!(first_outcome, Err(BrokerError::Db(_))),
        "a round without its lock must not commit: {first_outcome:?}"
    );
    let round = second_round.await.expect("join");
    assert_eq!(round.proposals, 1, "{round:?}");
    assert_eq!(open_proposals(&harness.db).await, 1);
    let rounds = matching_round::Entity::find()
        .count(&harness.db)
        .await
        .expect("rounds");
    assert_eq!(rounds, 1, "only the second replica's round was recorded");
    let proposed = mentee_row::Entity::find_by_id(waiting)
        .one(&harness.db)
        .await
        .expect("mentee")
        .expect("exists");
    assert_eq!(proposed.status, tandem_proto::MenteeStatus::Proposed as i32);
    harness.stop().await;
}

/// Takes the sync lock of `node_id` as another replica's sync would, in a transaction of its
/// own.
async fn hold_sync_lock(db: &DatabaseConnection, node_id: &str) -> sea_orm::DatabaseTransaction {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(node_id.as_bytes());
    let object = i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let hold = db.begin().await.expect("begin");
    let row = hold
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1, $2) AS taken",
            [SYNC_LOCK_CLASS.into(), object.into()],
        ))
        .await
        .expect("lock")
        .expect("a row");
    assert!(row.try_get::<bool>("", "taken").expect("taken"));
    hold
}

async fn node_row(db: &DatabaseConnection, id: &str) -> node::Model {
    node::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
        .expect("node")
        .expect("registered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_synced_on_another_replica_is_skipped_and_its_cursors_never_go_back() {
    let Some((harness, second)) = replicas("tandem_replicas_sync").await else {
        return;
    };
    let node = node_with_mentors(&harness, 2, 2).await;
    let mut published = 2u64;

    // While another replica syncs `assoc`, this one skips it (and syncs the others); the
    // node's row keeps no error for it.
    node.publish(mentor(3, CareerLevel::Director, &[Topic::Leadership]));
    published += 1;
    let hold = hold_sync_lock(&harness.db, "assoc").await;
    let results = harness.broker.sync_nodes(None).await.expect("sync");
    let skipped = results
        .iter()
        .find(|r| r.node_id == "assoc")
        .expect("assoc");
    assert_eq!(
        skipped.error,
        "sync of node assoc already running on another broker replica"
    );
    assert_eq!(skipped.upserts, 0);
    let home = results
        .iter()
        .find(|r| r.node_id == support::HOME)
        .expect("home");
    assert_eq!(home.error, "", "the other nodes are synced");
    assert_eq!(node_row(&harness.db, "assoc").await.last_error, "");
    hold.rollback().await.expect("release");
    let results = second.sync_nodes(Some("assoc")).await.expect("sync");
    assert_eq!((results[0].upserts, results[0].error.as_str()), (1, ""));

    // Syncs on both replicas at once, over a changing feed: each node is synced once at a
    // time, each change applied once, the cursor never goes back.
    let mut cursor = node_row(&harness.db, "assoc").await.feed_version;
    for n in 4..24 {
        node.publish(mentor(n, CareerLevel::Director, &[Topic::Leadership]));
        published += 1;
        let (a, b) = tokio::join!(harness.broker.sync_nodes(None), second.sync_nodes(None));
        for result in a.expect("sync").into_iter().chain(b.expect("sync")) {
            assert!(
                result.error.is_empty() || result.error.ends_with("another broker replica"),
                "{result:?}"
            );
        }
        let now = node_row(&harness.db, "assoc").await.feed_version;
        assert!(now >= cursor, "the cursor went back from {cursor} to {now}");
        assert!(now <= i64::try_from(published).expect("small"));
        cursor = now;
    }
    harness
        .broker
        .sync_nodes(Some("assoc"))
        .await
        .expect("sync");
    let row = node_row(&harness.db, "assoc").await;
    assert_eq!(row.feed_version, i64::try_from(published).expect("small"));
    assert_eq!(row.last_error, "");
    let profiles = profile::Entity::find()
        .filter(profile::Column::NodeId.eq("assoc"))
        .count(&harness.db)
        .await
        .expect("profiles");
    assert_eq!(profiles, published);
    harness.stop().await;
}
