//! Tombstones of introductions: a delivery that arrives after the broker closed the
//! introduction or had its mentee forgotten — or after it told the node to before the node had
//! stored it, as two broker replicas racing can — is refused with FAILED_PRECONDITION, so an
//! erased mentee never reappears at the node. A live introduction delivered again, even by
//! many deliveries at once, is stored exactly once. Tombstones hold no personal data.

mod common;

use common::{TestNode, erika, introduction, postgres_node, sqlite_node};
use sea_orm::EntityTrait;
use tandem_storage::node::introduction_tombstone;
use tonic::Code;

fn refusal(err: tandem_node::NodeError) -> tonic::Status {
    tonic::Status::from(err)
}

async fn late_deliveries_are_refused(node: &TestNode) {
    let state = &node.state;
    let mentor = state
        .create_mentor(&node.staff, erika())
        .await
        .expect("create");
    let deliver = |id: &str| state.deliver_introduction(introduction(id, &mentor.pseudonym));

    // A live introduction delivered again is a duplicate, nothing changes.
    assert!(!deliver("live").await.expect("deliver").duplicate);
    assert!(deliver("live").await.expect("again").duplicate);

    // Closed, then delivered again: refused, and the introduction stays as it was.
    assert!(!deliver("closed").await.expect("deliver").duplicate);
    state
        .close_introduction("closed", "company_declined")
        .await
        .expect("close");
    let status = refusal(deliver("closed").await.expect_err("after the close"));
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.message(),
        "introduction closed was closed at this node; it is not delivered again"
    );

    // Forgotten (the mentee was erased), then delivered again: refused, the summary stays gone.
    assert!(!deliver("forgotten").await.expect("deliver").duplicate);
    state.forget_mentee("forgotten").await.expect("forget");
    let status = refusal(deliver("forgotten").await.expect_err("after the forget"));
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("was forgotten"), "{status:?}");

    // Told to forget and to close before the delivery arrived (the delivery lost a race
    // between two broker replicas): both answer OK, and the late delivery is refused.
    state
        .forget_mentee("erased-early")
        .await
        .expect("forget an id never stored");
    state
        .close_introduction("erased-early", "mentee_withdrawn")
        .await
        .expect("close an id never stored");
    state
        .close_introduction("closed-early", "expired")
        .await
        .expect("close an id never stored");
    for (id, how) in [("erased-early", "forgotten"), ("closed-early", "closed")] {
        let status = refusal(deliver(id).await.expect_err("a late delivery"));
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(
            status.message().contains(&format!("was {how}")),
            "{status:?}"
        );
    }

    // The mentor is removed: the open introductions close, and a late delivery is refused.
    state
        .remove_mentor(&node.staff, &mentor.id)
        .await
        .expect("remove");
    let status = refusal(deliver("live").await.expect_err("after the removal"));
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    let introductions = state.list_introductions(None).await.expect("list");
    let mut ids: Vec<&str> = introductions
        .iter()
        .map(|i| i.introduction_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["closed", "forgotten", "live"], "nothing stored late");
    let forgotten = introductions
        .iter()
        .find(|i| i.introduction_id == "forgotten")
        .expect("kept for the records");
    assert!(forgotten.mentee.is_none() && forgotten.reasons.is_empty());

    // A tombstone is an id, what ended it and when: no personal data.
    let mut tombstones = introduction_tombstone::Entity::find()
        .all(&node.db)
        .await
        .expect("tombstones");
    tombstones.sort_by(|a, b| a.introduction_id.cmp(&b.introduction_id));
    let kinds: Vec<(&str, &str)> = tombstones
        .iter()
        .map(|t| (t.introduction_id.as_str(), t.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("closed", "closed"),
            ("closed-early", "closed"),
            ("erased-early", "forgotten"),
            ("forgotten", "forgotten"),
            ("live", "closed"),
        ]
    );
    assert!(tombstones.iter().all(|t| t.at_ms > 0));
}

#[tokio::test]
async fn late_deliveries_are_refused_on_sqlite() {
    late_deliveries_are_refused(&sqlite_node().await).await;
}

#[tokio::test]
async fn late_deliveries_are_refused_on_postgres() {
    if let Some(node) = postgres_node().await {
        late_deliveries_are_refused(&node).await;
    }
}

/// Many deliveries of one introduction at once (retries of several replicas) store it once.
async fn concurrent_redelivery_stores_once(node: &TestNode) {
    let mentor = node
        .state
        .create_mentor(&node.staff, erika())
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let state = node.state.clone();
        let request = introduction("retried", &mentor.pseudonym);
        tasks.push(tokio::spawn(async move {
            state.deliver_introduction(request).await
        }));
    }
    let mut first = 0;
    for task in tasks {
        let answer = task
            .await
            .expect("join")
            .expect("every delivery is acknowledged");
        first += usize::from(!answer.duplicate);
    }
    assert_eq!(first, 1, "exactly one delivery stored it");
    assert_eq!(
        node.state
            .list_introductions(None)
            .await
            .expect("list")
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redelivery_stores_once_on_sqlite() {
    concurrent_redelivery_stores_once(&sqlite_node().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redelivery_stores_once_on_postgres() {
    if let Some(node) = postgres_node().await {
        concurrent_redelivery_stores_once(&node).await;
    }
}
