//! Dead letters: a message the node refuses for good becomes one at once, a message that keeps
//! failing after `outbox_max_attempts`; either way the node's later messages flow. Operators
//! list, retry and drop them over `OperatorService`, each change audited, and see them counted
//! on the dashboard and in `/metrics`.

mod support;

use axum::body::Body;
use axum::http::{Request, header};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use support::{ACME, Harness, TestNode, key_of, mentee, mentor, submission};
use tandem_proto::{
    CareerLevel, CompanyDecision, DeadLetter, DropDeadLetterRequest, ListAuditEventsRequest,
    ListDeadLettersRequest, RetryDeadLetterRequest, Topic,
};
use tandem_storage::broker::outbox;
use tonic::Code;
use tower::ServiceExt;

/// A node with two mentors, registered and synced.
async fn node_with_mentors(harness: &Harness) -> TestNode {
    let node = TestNode::start("assoc").await;
    node.publish(mentor(1, CareerLevel::Director, &[Topic::Leadership]));
    node.publish(mentor(2, CareerLevel::Director, &[Topic::Leadership]));
    harness.register(&node).await;
    harness
        .broker
        .sync_nodes(Some("assoc"))
        .await
        .expect("sync");
    node
}

/// Writes a message for `node_id` straight into the outbox, as a broken or older broker
/// might have; returns its id.
async fn write_message(harness: &Harness, node_id: &str, kind: &str, payload: Vec<u8>) -> i64 {
    let now = harness.broker.now();
    outbox::Entity::insert(outbox::ActiveModel {
        id: NotSet,
        node_id: Set(node_id.to_owned()),
        kind: Set(kind.to_owned()),
        introduction_id: Set("00000000-0000-4000-8000-00000000beef".to_owned()),
        payload: Set(payload),
        attempts: Set(0),
        next_attempt_at_ms: Set(now),
        delivered_at_ms: Set(0),
        last_error: Set(String::new()),
        created_at_ms: Set(now),
        leased_until_ms: Set(0),
        dead_lettered_at_ms: Set(0),
    })
    .exec(&harness.db)
    .await
    .expect("insert")
    .last_insert_id
}

async fn row(harness: &Harness, id: i64) -> outbox::Model {
    outbox::Entity::find_by_id(id)
        .one(&harness.db)
        .await
        .expect("query")
        .expect("row")
}

async fn make_due(harness: &Harness) {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptAtMs, Expr::value(0i64))
        .exec(&harness.db)
        .await
        .expect("make due");
}

async fn dead_letters(harness: &Harness, node_id: &str) -> Vec<DeadLetter> {
    harness
        .operator()
        .list_dead_letters(ListDeadLettersRequest {
            node_id: node_id.to_owned(),
            ..Default::default()
        })
        .await
        .expect("list dead letters")
        .into_inner()
        .dead_letters
}

/// Returns the `tandem_node_outbox_dead_letters` sample of `node_id` and the dashboard's
/// figure for it.
async fn counted(harness: &Harness, node_id: &str) -> (f64, serde_json::Value) {
    let get = |path: &str| {
        let request = Request::get(path)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", key_of("operator")),
            )
            .body(Body::empty())
            .expect("request");
        let router = tandem_broker::dashboard::router(harness.broker.clone());
        async move {
            let response = router.oneshot(request).await.expect("infallible router");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
                .await
                .expect("body");
            String::from_utf8(bytes.to_vec()).expect("utf-8")
        }
    };
    let metrics = get("/metrics").await;
    let series = format!("tandem_node_outbox_dead_letters{{node=\"{node_id}\"}} ");
    let sample = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("{series} missing:\n{metrics}"))
        .parse()
        .expect("a number");
    let figures: serde_json::Value =
        serde_json::from_str(&get("/api/dashboard").await).expect("dashboard json");
    let node = figures["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["node_id"] == node_id)
        .expect("node")
        .clone();
    (sample, node["outbox_dead_letters"].clone())
}

#[tokio::test]
async fn refused_and_exhausted_messages_become_dead_letters_and_the_lane_flows_on() {
    let harness = Harness::sqlite_with(|c| c.outbox_max_attempts = 2).await;
    let node = node_with_mentors(&harness).await;
    // Ahead of everything else for the node: a kind no broker knows, a tandem copy without
    // its tandem (the node answers INVALID_ARGUMENT) and a payload that does not decode.
    let unknown = write_message(&harness, "assoc", "teleport_mentor", Vec::new()).await;
    let refused = write_message(&harness, "assoc", outbox::UPDATE_TANDEM, Vec::new()).await;
    let garbage = write_message(&harness, "assoc", outbox::CLOSE, vec![0xff; 7]).await;
    let anna = harness
        .broker
        .submit_mentee(ACME, submission("anna", mentee()))
        .await
        .expect("submit")
        .mentee_id;
    let ben = harness
        .broker
        .submit_mentee(ACME, submission("ben", mentee()))
        .await
        .expect("submit")
        .mentee_id;
    assert_eq!(
        harness
            .broker
            .run_matching_round()
            .await
            .expect("round")
            .proposals,
        2
    );
    // The refused messages go to the dead letters at once; the introductions behind them flow.
    assert_eq!(harness.settle().await, 2);
    assert_eq!(node.introductions().len(), 2);
    for (id, error) in [
        (unknown, "unknown message kind \"teleport_mentor\""),
        (refused, "InvalidArgument: tandem: is required"),
        (garbage, "undecodable payload: "),
    ] {
        let r = row(&harness, id).await;
        assert!(r.dead_lettered_at_ms > 0, "{r:?}");
        assert_eq!(
            (r.delivered_at_ms, r.attempts, r.leased_until_ms),
            (0, 1, 0)
        );
        assert!(r.last_error.starts_with(error), "{r:?}");
    }

    // A message that keeps failing becomes one after `outbox_max_attempts`, and what comes
    // after it for the node flows.
    let proposal_of = |m: String| {
        let broker = harness.broker.clone();
        async move {
            broker.list_proposals(ACME, &m).await.expect("list")[0]
                .proposal_id
                .clone()
        }
    };
    let (first, second) = (proposal_of(anna).await, proposal_of(ben).await);
    node.stop().await;
    harness
        .broker
        .respond_to_proposal(ACME, &first, CompanyDecision::Declined as i32)
        .await
        .expect("decline");
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 0);
    make_due(&harness).await;
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 0);
    let exhausted = outbox::Entity::find()
        .filter(outbox::Column::Kind.eq(outbox::CLOSE))
        .filter(outbox::Column::IntroductionId.eq(&first))
        .one(&harness.db)
        .await
        .expect("query")
        .expect("the close");
    assert!(exhausted.dead_lettered_at_ms > 0, "{exhausted:?}");
    assert_eq!(exhausted.attempts, 2);
    assert!(
        exhausted.last_error.ends_with("(gave up after 2 attempts)"),
        "{exhausted:?}"
    );
    harness
        .broker
        .respond_to_proposal(ACME, &second, CompanyDecision::Declined as i32)
        .await
        .expect("decline");
    node.restart().await;
    assert_eq!(harness.settle().await, 1);
    assert_eq!(
        node.introduction(&second).expect("intro").closed.as_deref(),
        Some("company_declined")
    );
    assert_eq!(node.introduction(&first).expect("intro").closed, None);

    // The operator lists them, oldest first, and can page and filter.
    let listed = dead_letters(&harness, "").await;
    let ids: Vec<u64> = listed.iter().map(|d| d.message_id).collect();
    let expected: Vec<u64> = [unknown, refused, garbage, exhausted.id]
        .iter()
        .map(|id| u64::try_from(*id).expect("positive"))
        .collect();
    assert_eq!(ids, expected);
    let last = &listed[3];
    assert_eq!(
        (
            last.node_id.as_str(),
            last.kind.as_str(),
            last.introduction_id.as_str(),
            last.attempts
        ),
        ("assoc", outbox::CLOSE, first.as_str(), 2)
    );
    assert_eq!(last.last_error, exhausted.last_error);
    assert_eq!(last.dead_lettered_at_ms, exhausted.dead_lettered_at_ms);
    assert_eq!(dead_letters(&harness, "assoc").await, listed);
    assert!(dead_letters(&harness, "elsewhere").await.is_empty());
    let page = harness
        .operator()
        .list_dead_letters(ListDeadLettersRequest {
            node_id: String::new(),
            after_id: expected[0],
            limit: 2,
        })
        .await
        .expect("page")
        .into_inner()
        .dead_letters;
    assert_eq!(
        page.iter().map(|d| d.message_id).collect::<Vec<_>>(),
        expected[1..3]
    );
    assert_eq!(counted(&harness, "assoc").await, (4.0, 4.into()));

    // Retried, the close goes out at once (first in the node's line) with its attempts reset.
    harness
        .operator()
        .retry_dead_letter(RetryDeadLetterRequest {
            message_id: expected[3],
        })
        .await
        .expect("retry");
    let retried = row(&harness, exhausted.id).await;
    assert_eq!((retried.dead_lettered_at_ms, retried.attempts), (0, 0));
    assert_eq!(harness.settle().await, 1);
    assert_eq!(
        node.introduction(&first).expect("intro").closed.as_deref(),
        Some("company_declined")
    );
    assert_eq!(row(&harness, exhausted.id).await.attempts, 1);
    // Dropped, a dead letter is done with and never delivered.
    harness
        .operator()
        .drop_dead_letter(DropDeadLetterRequest {
            message_id: expected[0],
        })
        .await
        .expect("drop");
    let dropped = row(&harness, unknown).await;
    assert!(dropped.delivered_at_ms > 0);
    assert!(
        dropped
            .last_error
            .starts_with("dropped by an operator; unknown message kind"),
        "{dropped:?}"
    );
    assert_eq!(
        dead_letters(&harness, "")
            .await
            .iter()
            .map(|d| d.message_id)
            .collect::<Vec<_>>(),
        expected[1..3]
    );
    assert_eq!(counted(&harness, "assoc").await, (2.0, 2.into()));

    // Each change is audited as the operator's.
    let audit = harness
        .operator()
        .list_audit_events(ListAuditEventsRequest::default())
        .await
        .expect("audit")
        .into_inner()
        .events;
    let changes: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|e| e.action.starts_with("dead_letter."))
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.object_id.as_str()))
        .collect();
    let (retried_id, dropped_id) = (expected[3].to_string(), expected[0].to_string());
    assert_eq!(
        changes,
        [
            ("operator", "dead_letter.retried", retried_id.as_str()),
            ("operator", "dead_letter.dropped", dropped_id.as_str()),
        ]
    );
    let retry_entry = audit
        .iter()
        .find(|e| e.action == "dead_letter.retried")
        .expect("entry");
    assert_eq!(
        retry_entry.detail,
        format!("node=assoc kind=close_introduction introduction={first} attempts=2")
    );
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn wrong_requests_name_the_field_and_unknown_ids_are_not_found() {
    let harness = Harness::sqlite().await;
    let mut operator = harness.operator();
    let status = operator
        .list_dead_letters(ListDeadLettersRequest {
            node_id: "Not A Node".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad node id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("node_id: "), "{status:?}");
    for (message_id, code) in [
        (0, Code::InvalidArgument),
        (4242, Code::NotFound),
        (u64::MAX, Code::NotFound),
    ] {
        let retry = operator
            .retry_dead_letter(RetryDeadLetterRequest { message_id })
            .await
            .expect_err("retry");
        let dropped = operator
            .drop_dead_letter(DropDeadLetterRequest { message_id })
            .await
            .expect_err("drop");
        for status in [retry, dropped] {
            assert_eq!(status.code(), code, "{message_id}: {status:?}");
            if code == Code::InvalidArgument {
                assert_eq!(status.message(), "message_id: is required");
            } else {
                assert_eq!(status.message(), "dead letter not found");
            }
        }
    }
    // A pending message, or one delivered, is no dead letter.
    let pending = write_message(&harness, support::HOME, outbox::FORGET, Vec::new()).await;
    let id = u64::try_from(pending).expect("positive");
    let status = operator
        .retry_dead_letter(RetryDeadLetterRequest { message_id: id })
        .await
        .expect_err("not a dead letter");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(harness.settle().await, 1, "the node had nothing to forget");
    let status = operator
        .drop_dead_letter(DropDeadLetterRequest { message_id: id })
        .await
        .expect_err("delivered");
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        operator
            .list_audit_events(ListAuditEventsRequest::default())
            .await
            .expect("audit")
            .into_inner()
            .events
            .iter()
            .all(|e| !e.action.starts_with("dead_letter.")),
        "nothing changed, nothing audited"
    );
    harness.stop().await;
}

#[tokio::test]
async fn a_message_whose_holders_keep_dying_becomes_a_dead_letter() {
    let harness = Harness::sqlite_with(|c| c.outbox_max_attempts = 2).await;
    // Claimed twice by replicas that died mid-attempt (their leases ran out, no result).
    let abandoned = write_message(&harness, support::HOME, outbox::FORGET, Vec::new()).await;
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Attempts, Expr::value(2))
        .col_expr(
            outbox::Column::LeasedUntilMs,
            Expr::value(harness.broker.now() - 1),
        )
        .col_expr(outbox::Column::LastError, Expr::value("Unavailable: reset"))
        .filter(outbox::Column::Id.eq(abandoned))
        .exec(&harness.db)
        .await
        .expect("abandon");
    let next = write_message(&harness, support::HOME, outbox::FORGET, Vec::new()).await;
    assert_eq!(harness.settle().await, 1, "the next message flows");
    let r = row(&harness, abandoned).await;
    assert!(r.dead_lettered_at_ms > 0 && r.delivered_at_ms == 0, "{r:?}");
    assert_eq!(
        r.last_error,
        "gave up after 2 attempts; last error: Unavailable: reset"
    );
    assert!(row(&harness, next).await.delivered_at_ms > 0);
    harness.stop().await;
}
