//! `DeliverIntroductions`: many introductions in one call, each treated as a single delivery
//! would be — stored, acknowledged as a duplicate, or refused with its own code — and one
//! refused introduction leaves the others of its batch stored.

mod common;

use common::{TestNode, erika, introduction, postgres_node, sqlite_node};
use tandem_proto::DeliverIntroductionRequest;
use tonic::Code;

async fn a_batch_stores_each_and_refuses_each_on_its_own(node: &TestNode) {
    let state = &node.state;
    let mentor = state
        .create_mentor(&node.staff, erika())
        .await
        .expect("create");
    assert!(
        !state
            .deliver_introduction(introduction("known", &mentor.pseudonym))
            .await
            .expect("deliver")
            .duplicate
    );
    state
        .close_introduction("closed", "company_declined")
        .await
        .expect("close an id never stored");

    let batch = vec![
        introduction("new-1", &mentor.pseudonym),
        introduction("known", &mentor.pseudonym),
        introduction("unknown-mentor", &"0".repeat(64)),
        DeliverIntroductionRequest {
            mentee: None,
            ..introduction("no-mentee", &mentor.pseudonym)
        },
        introduction("closed", &mentor.pseudonym),
        introduction("new-2", &mentor.pseudonym),
    ];
    let outcomes = state.deliver_introductions(batch).await.expect("batch");
    let seen: Vec<(&str, Code, bool)> = outcomes
        .iter()
        .map(|o| (o.introduction_id.as_str(), Code::from(o.code), o.duplicate))
        .collect();
    assert_eq!(
        seen,
        [
            ("new-1", Code::Ok, false),
            ("known", Code::Ok, true),
            ("unknown-mentor", Code::NotFound, false),
            ("no-mentee", Code::InvalidArgument, false),
            ("closed", Code::FailedPrecondition, false),
            ("new-2", Code::Ok, false),
        ]
    );
    assert!(outcomes[3].message.contains("mentee"), "{outcomes:?}");
    let mut stored: Vec<String> = state
        .list_introductions(None)
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.introduction_id)
        .collect();
    stored.sort();
    assert_eq!(stored, ["known", "new-1", "new-2"]);

    // The batch as a whole has a limit, named in the error.
    let too_many: Vec<_> = (0..=tandem_node::MAX_DELIVERY_BATCH)
        .map(|n| introduction(&format!("many-{n}"), &mentor.pseudonym))
        .collect();
    let status = tonic::Status::from(
        state
            .deliver_introductions(too_many)
            .await
            .expect_err("over the limit"),
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("introductions"), "{status:?}");
}

#[tokio::test]
async fn a_batch_stores_each_and_refuses_each_on_its_own_on_sqlite() {
    a_batch_stores_each_and_refuses_each_on_its_own(&sqlite_node().await).await;
}

#[tokio::test]
async fn a_batch_stores_each_and_refuses_each_on_its_own_on_postgres() {
    if let Some(node) = postgres_node().await {
        a_batch_stores_each_and_refuses_each_on_its_own(&node).await;
    }
}
