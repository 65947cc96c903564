//! The operator's service: node registration with validation, unknown nodes, and stale nodes
//! whose profiles are left out of rounds.

mod support;

use sea_orm::EntityTrait;
use sea_orm::sea_query::Expr;
use support::{ACME, Harness, TestNode, mentee, mentor, submission};
use tandem_proto::{CareerLevel, RegisterNodeRequest, SyncNodesRequest, Topic};
use tandem_storage::broker::node;
use tonic::Code;

#[tokio::test]
async fn registration_validates_and_updates() {
    let harness = Harness::sqlite().await;
    let mut operator = harness.operator();
    let cases = [
        ("Bad_Id", "http://127.0.0.1:1", "node_id"),
        ("assoc", "127.0.0.1:7001", "endpoint"),
        ("assoc", "ftp://127.0.0.1", "endpoint"),
    ];
    for (node_id, endpoint, field) in cases {
        let err = operator
            .register_node(RegisterNodeRequest {
                node_id: node_id.into(),
                endpoint: endpoint.into(),
                display_name: String::new(),
                identity: String::new(),
            })
            .await
            .expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{}",
            err.message()
        );
    }
    let first = operator
        .register_node(RegisterNodeRequest {
            node_id: "assoc".into(),
            endpoint: "http://127.0.0.1:7001".into(),
            display_name: "Industry association".into(),
            identity: String::new(),
        })
        .await
        .expect("register")
        .into_inner();
    assert_eq!(first.display_name, "Industry association");
    let moved = operator
        .register_node(RegisterNodeRequest {
            node_id: "assoc".into(),
            endpoint: "http://127.0.0.1:7002".into(),
            display_name: "Industry association".into(),
            identity: String::new(),
        })
        .await
        .expect("re-register")
        .into_inner();
    assert_eq!(moved.endpoint, "http://127.0.0.1:7002");
    let ids: Vec<String> = harness
        .broker
        .list_nodes()
        .await
        .expect("list")
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(ids, ["assoc", support::HOME], "registered once");

    let err = operator
        .sync_nodes(SyncNodesRequest {
            node_id: "nowhere".into(),
        })
        .await
        .expect_err("unknown node");
    assert_eq!(err.code(), Code::NotFound);
    harness.stop().await;
}

#[tokio::test]
async fn configured_nodes_are_registered_at_start() {
    let node = TestNode::start("assoc").await;
    let endpoint = node.endpoint();
    let harness = Harness::sqlite_with(|c| {
        c.nodes.push(tandem_broker::NodeEntry {
            id: "assoc".into(),
            endpoint,
            display_name: "Association".into(),
            identity: String::new(),
        });
    })
    .await;
    let nodes = harness.broker.list_nodes().await.expect("list");
    let assoc = nodes.iter().find(|n| n.node_id == "assoc").expect("assoc");
    assert_eq!(assoc.display_name, "Association");
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn profiles_of_a_stale_node_are_left_out() {
    let harness = Harness::sqlite_with(|c| c.profile_staleness_secs = 60).await;
    let node = TestNode::start("assoc").await;
    node.publish(mentor(1, CareerLevel::Director, &[Topic::Leadership]));
    harness.register(&node).await;
    harness.broker.sync_nodes(None).await.expect("sync");
    node::Entity::update_many()
        .col_expr(
            node::Column::LastSyncAtMs,
            Expr::value(tandem_broker::Clock::system().now_ms() - 120_000),
        )
        .exec(&harness.db)
        .await
        .expect("age the sync");
    harness
        .broker
        .submit_mentee(ACME, submission("k", mentee()))
        .await
        .expect("submit");
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!((round.mentors_considered, round.proposals), (0, 0));
    assert_eq!(round.unmatched[0].reason, "no_mentors");

    harness.broker.sync_nodes(None).await.expect("sync again");
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!((round.mentors_considered, round.proposals), (1, 1));
    node.stop().await;
    harness.stop().await;
}
