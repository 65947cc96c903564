//! Two broker replicas on one PostgreSQL database against real nodes over mutual TLS: one
//! replica's round delivers a backlog of introductions while the other erases half of their
//! mentees. A delivery a replica read before an erasure may reach the node after the forget;
//! the node's tombstone refuses it — here also replayed on purpose, with the broker's
//! certificate, once everything settled — so nothing of an erased mentee stays at any node,
//! and nothing of the others is lost.
//!
//! PostgreSQL only (SQLite is one process's database): skipped without
//! `TANDEM_TEST_POSTGRES_URL`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use prost::Message;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use tandem_e2e::{mentee, mentor, start, submission};
use tandem_proto::node_service_client::NodeServiceClient;
use tandem_proto::{
    CreateMentorRequest, DeliverIntroductionRequest, RunMatchingRoundRequest, SyncNodesRequest,
};
use tandem_storage::broker::{outbox, proposal};
use tandem_storage::node::introduction;

const NODES: [&str; 2] = ["chamber", "guild"];
/// Mentors per node, and places per mentor: room for every mentee.
const MENTORS: usize = 6;
const PLACES: u32 = 10;
const MENTEES: usize = 120;

/// Delivers what is left in the outbox through `broker` until nothing is pending, making
/// retries due at once.
async fn settle(broker: &tandem_broker::Broker, db: &DatabaseConnection) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::NextAttemptAtMs, Expr::value(0i64))
            .filter(outbox::Column::DeliveredAtMs.eq(0))
            .exec(db)
            .await?;
        broker.deliver_outbox().await?;
        let pending = outbox::Entity::find()
            .filter(outbox::Column::DeliveredAtMs.eq(0))
            .count(db)
            .await?;
        if pending == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{pending} outbox messages still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erasure_racing_a_delivery_backlog_leaves_nothing_of_the_mentee_at_any_node()
-> anyhow::Result<()> {
    match std::env::var("TANDEM_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {}
        _ => {
            eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the replica test on PostgreSQL");
            return Ok(());
        }
    }
    let f = start(&NODES).await?;
    for k in 0..NODES.len() {
        for i in 0..MENTORS {
            let mut record = mentor(&format!("Mentor {k} {i}"), &format!("HRB 10{k}{i}"));
            record.capacity = PLACES;
            f.admins[k]
                .clone()
                .create_mentor(CreateMentorRequest {
                    mentor: Some(record),
                })
                .await?;
        }
    }
    let mut mentees = Vec::with_capacity(MENTEES);
    for n in 0..MENTEES {
        let company = if n % 2 == 0 { "acme" } else { "globex" };
        let submitted = f
            .mentees
            .clone()
            .submit_mentee(f.as_company(company, submission(&format!("m-{n:03}"), mentee()))?)
            .await?
            .into_inner();
        mentees.push((f.companies[company].company_id.clone(), submitted.mentee_id));
    }
    let mut operator = f.operator.clone();
    operator.sync_nodes(SyncNodesRequest::default()).await?;

    let replica = f.federation.replica().await?;
    let broker_db = tandem_storage::connect(&f.federation.broker_database_url).await?;

    // The first replica runs the round and delivers its introductions before it answers; the
    // second erases every other mentee as soon as the round committed.
    let round = tokio::spawn(async move {
        operator
            .run_matching_round(RunMatchingRoundRequest {})
            .await
            .map(tonic::Response::into_inner)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while proposal::Entity::find().count(&broker_db).await? == 0 {
        anyhow::ensure!(Instant::now() < deadline, "the round wrote no proposal");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // What the round queued for the nodes, as a replica's delivery pass reads it.
    let queued: Vec<(String, DeliverIntroductionRequest)> = outbox::Entity::find()
        .filter(outbox::Column::Kind.eq(outbox::DELIVER))
        .all(&broker_db)
        .await?
        .into_iter()
        .map(|m| {
            Ok((
                m.node_id,
                DeliverIntroductionRequest::decode(m.payload.as_slice())?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let erased: Vec<&(String, String)> = mentees.iter().step_by(2).collect();
    for (company, id) in &erased {
        replica.erase_mentee(company, id).await?;
    }
    let round = round.await??;
    assert_eq!(round.proposals, u32::try_from(MENTEES)?, "{round:?}");
    settle(&replica, &broker_db).await?;

    // Which introductions belong to erased mentees, and which node each went to.
    let erased_ids: BTreeSet<&str> = erased.iter().map(|(_, id)| id.as_str()).collect();
    let mut gone: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut kept: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in proposal::Entity::find().all(&broker_db).await? {
        let side = if erased_ids.contains(p.mentee_id.as_str()) {
            &mut gone
        } else {
            &mut kept
        };
        side.entry(p.node_id).or_default().insert(p.id);
    }
    assert_eq!(gone.values().map(BTreeSet::len).sum::<usize>(), MENTEES / 2);
    let refused = outbox::Entity::find()
        .filter(outbox::Column::LastError.contains("at this node"))
        .count(&broker_db)
        .await?;
    eprintln!("late deliveries of erased mentees the nodes refused during the race: {refused}");

    // Every delivery read before the erasure, arriving now: refused for an erased mentee,
    // acknowledged as a duplicate for the others.
    let tls = tandem_tls::ClientTls::new(tandem_tls::TlsFiles::in_dir(
        f.federation.certs_dir(),
        "broker",
    ))?;
    let mut clients = BTreeMap::new();
    for node in &f.federation.nodes {
        let endpoint = tonic::transport::Endpoint::from_shared(node.endpoint())?;
        let channel = tls.channel(&endpoint, &tandem_tls::node_identity(&node.node_id))?;
        clients.insert(node.node_id.clone(), NodeServiceClient::new(channel));
    }
    for (node_id, request) in &queued {
        let id = request.introduction_id.clone();
        let client = clients.get_mut(node_id).expect("a node of the federation");
        let answer = client.deliver_introduction(request.clone()).await;
        if gone.get(node_id).is_some_and(|ids| ids.contains(&id)) {
            let status = answer.expect_err("a late delivery of an erased mentee");
            assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
            assert_eq!(
                status.message(),
                format!("introduction {id} was forgotten at this node; it is not delivered again")
            );
        } else {
            assert!(answer?.into_inner().duplicate, "{id} was delivered before");
        }
    }

    for node in &f.federation.nodes {
        let db = tandem_storage::connect(&node.database_url).await?;
        let held = introduction::Entity::find().all(&db).await?;
        for intro in &held {
            if gone
                .get(&node.node_id)
                .is_some_and(|ids| ids.contains(&intro.id))
            {
                assert!(
                    intro.mentee_summary.is_empty()
                        && intro.reasons.is_empty()
                        && intro.mentee_ref.is_empty(),
                    "node {} keeps the erased mentee of introduction {}",
                    node.node_id,
                    intro.id
                );
            }
        }
        // Every other mentee's introduction arrived, with its summary.
        let stored: BTreeSet<&str> = held
            .iter()
            .filter(|i| !i.mentee_summary.is_empty())
            .map(|i| i.id.as_str())
            .collect();
        for id in kept.get(&node.node_id).into_iter().flatten() {
            assert!(
                stored.contains(id.as_str()),
                "node {} lacks introduction {id}",
                node.node_id
            );
        }
    }
    // The node's own API says the same.
    for (k, node) in f.federation.nodes.iter().enumerate() {
        let listed = f.admins[k]
            .clone()
            .list_introductions(tandem_proto::ListIntroductionsRequest::default())
            .await?
            .into_inner()
            .introductions;
        for intro in listed {
            if gone
                .get(&node.node_id)
                .is_some_and(|ids| ids.contains(&intro.introduction_id))
            {
                assert!(
                    intro.mentee.is_none() && intro.reasons.is_empty(),
                    "{intro:?}"
                );
            }
        }
    }
    f.federation.shutdown().await;
    Ok(())
}
