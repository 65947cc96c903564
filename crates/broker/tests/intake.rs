//! Mentee intake over gRPC: idempotent submission, refusal of bad input naming the field
//! (with nothing stored), the company identity, and withdrawal.

mod support;

use support::{Harness, TestNode, mentee, submission};
use tandem_proto::{
    GetMenteeRequest, ListMenteesRequest, MenteeStatus, SubmitMenteeRequest, WithdrawMenteeRequest,
};
use tonic::Code;

#[tokio::test]
async fn the_same_key_and_payload_return_the_same_mentee() {
    let harness = Harness::sqlite().await;
    let mut acme = harness.company("acme-gmbh");
    let first = acme
        .submit_mentee(submission("order-1", mentee("")))
        .await
        .expect("first")
        .into_inner();
    let second = acme
        .submit_mentee(submission("order-1", mentee("")))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first.mentee_id, second.mentee_id);
    assert_eq!(first.submitted_at_ms, second.submitted_at_ms);
    let listed = acme
        .list_mentees(ListMenteesRequest {})
        .await
        .expect("list")
        .into_inner()
        .mentees;
    assert_eq!(listed.len(), 1);

    // Another company may use the same key for its own mentee.
    let other = harness
        .company("globex-ag")
        .submit_mentee(submission("order-1", mentee("")))
        .await
        .expect("other company")
        .into_inner();
    assert_ne!(other.mentee_id, first.mentee_id);
    harness.stop().await;
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_refused() {
    let harness = Harness::sqlite().await;
    let mut acme = harness.company("acme-gmbh");
    acme.submit_mentee(submission("order-1", mentee("")))
        .await
        .expect("first");
    let mut changed = mentee("");
    changed.languages = vec!["en".into()];
    let err = acme
        .submit_mentee(submission("order-1", changed))
        .await
        .expect_err("conflicting reuse");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        err.message().starts_with("idempotency_key"),
        "{}",
        err.message()
    );
    harness.stop().await;
}

#[tokio::test]
async fn concurrent_retries_store_one_mentee() {
    let harness = Harness::sqlite().await;
    let calls = (0..8).map(|_| {
        let mut acme = harness.company("acme-gmbh");
        async move {
            acme.submit_mentee(submission("order-7", mentee("")))
                .await
                .map(|r| r.into_inner().mentee_id)
        }
    });
    let ids: Vec<String> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("every retry succeeds"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let listed = harness
        .broker
        .list_mentees("acme-gmbh")
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    harness.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_stored() {
    let harness = Harness::sqlite().await;
    let mut acme = harness.company("acme-gmbh");
    let mut no_goals = mentee("");
    no_goals.goals.clear();
    let mut bad_language = mentee("");
    bad_language.languages = vec!["de".into(), "xx".into()];
    let mut bad_level = mentee("");
    bad_level.career_level = 99;
    let cases = [
        (submission("k1", no_goals), "mentee.goals"),
        (submission("k2", bad_language), "mentee.languages[1]"),
        (submission("k3", bad_level), "mentee.career_level"),
        (submission("", mentee("")), "idempotency_key"),
        (submission("k5", mentee("nowhere")), "mentee.home_node_id"),
        (
            SubmitMenteeRequest {
                idempotency_key: "k6".into(),
                mentee: None,
            },
            "mentee",
        ),
    ];
    for (request, field) in cases {
        let err = acme.submit_mentee(request).await.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{field}: {}",
            err.message()
        );
    }
    let listed = acme
        .list_mentees(ListMenteesRequest {})
        .await
        .expect("list")
        .into_inner()
        .mentees;
    assert!(listed.is_empty());
    harness.stop().await;
}

#[tokio::test]
async fn a_registered_home_node_is_accepted() {
    let harness = Harness::sqlite().await;
    let node = TestNode::start("startups").await;
    harness.register(&node).await;
    let stored = harness
        .company("acme-gmbh")
        .submit_mentee(submission("k", mentee("startups")))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(stored.request.expect("request").home_node_id, "startups");
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn calls_without_a_company_are_unauthenticated() {
    let harness = Harness::sqlite().await;
    let err = harness
        .anonymous()
        .list_mentees(ListMenteesRequest {})
        .await
        .expect_err("no company");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = harness
        .anonymous()
        .submit_mentee(submission("k", mentee("")))
        .await
        .expect_err("no company");
    assert_eq!(err.code(), Code::Unauthenticated);
    harness.stop().await;
}

#[tokio::test]
async fn a_withdrawn_mentee_leaves_matching() {
    let harness = Harness::sqlite().await;
    let mut acme = harness.company("acme-gmbh");
    let m = acme
        .submit_mentee(submission("k", mentee("")))
        .await
        .expect("submit")
        .into_inner();
    let withdrawn = acme
        .withdraw_mentee(WithdrawMenteeRequest {
            mentee_id: m.mentee_id.clone(),
        })
        .await
        .expect("withdraw")
        .into_inner();
    assert_eq!(withdrawn.status, MenteeStatus::Withdrawn as i32);
    let again = acme
        .get_mentee(GetMenteeRequest {
            mentee_id: m.mentee_id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(again.status, MenteeStatus::Withdrawn as i32);
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!(round.mentees_considered, 0);
    let stats = harness.broker.network_stats().await.expect("stats");
    assert_eq!((stats.mentees_withdrawn, stats.mentees_waiting), (1, 0));
    harness.stop().await;
}
