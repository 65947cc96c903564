//! Mentee intake over gRPC: idempotent submission, refusal of bad input naming the field
//! (with nothing stored), the company identity and what its membership gives the mentee, and
//! withdrawal.

mod support;

use sea_orm::EntityTrait;
use support::node::employer_token;
use support::{ACME, GLOBEX, Harness, mentee, submission};
use tandem_broker::keys::Scope;
use tandem_proto::{
    GetMenteeRequest, ListMenteesRequest, MenteeStatus, SubmitMenteeRequest, WithdrawMenteeRequest,
};
use tandem_storage::broker::mentee as mentee_row;
use tonic::Code;

#[tokio::test]
async fn the_same_key_and_payload_return_the_same_mentee() {
    let harness = Harness::sqlite().await;
    let mut acme = harness.company(ACME);
    let first = acme
        .submit_mentee(submission("order-1", mentee()))
        .await
        .expect("first")
        .into_inner();
    let second = acme
        .submit_mentee(submission("order-1", mentee()))
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
        .company(GLOBEX)
        .submit_mentee(submission("order-1", mentee()))
        .await
        .expect("other company")
        .into_inner();
    assert_ne!(other.mentee_id, first.mentee_id);
    harness.stop().await;
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_refused() {
    let harness = Harness::sqlite().await;
    let mut acme = harness.company(ACME);
    acme.submit_mentee(submission("order-1", mentee()))
        .await
        .expect("first");
    let mut changed = mentee();
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
        let mut acme = harness.company(ACME);
        async move {
            acme.submit_mentee(submission("order-7", mentee()))
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
    let listed = harness.broker.list_mentees(ACME).await.expect("list");
    assert_eq!(listed.len(), 1);
    harness.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_stored() {
    let harness = Harness::sqlite().await;
    let mut acme = harness.company(ACME);
    let mut no_goals = mentee();
    no_goals.goals.clear();
    let mut bad_language = mentee();
    bad_language.languages = vec!["de".into(), "xx".into()];
    let mut bad_level = mentee();
    bad_level.career_level = 99;
    let cases = [
        (submission("k1", no_goals), "mentee.goals"),
        (submission("k2", bad_language), "mentee.languages[1]"),
        (submission("k3", bad_level), "mentee.career_level"),
        (submission("", mentee()), "idempotency_key"),
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
async fn a_mentee_carries_the_tokens_and_the_node_of_the_companys_membership() {
    let harness = Harness::sqlite().await;
    let stored = harness
        .company(ACME)
        .submit_mentee(submission("k", mentee()))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(stored.home_node_id, support::HOME);
    let row = mentee_row::Entity::find_by_id(stored.mentee_id)
        .one(&harness.db)
        .await
        .expect("query")
        .expect("stored");
    let needs: serde_json::Value = serde_json::from_str(&row.needs).expect("needs");
    let token = employer_token(support::register_number(ACME));
    assert_eq!(needs["employer_token"], token.as_str());
    assert_eq!(
        needs["group_token"],
        token.as_str(),
        "no group: the employer"
    );
    assert_eq!(needs["home_node_id"], support::HOME);
    harness.stop().await;
}

#[tokio::test]
async fn a_company_key_without_a_membership_cannot_submit() {
    let harness = Harness::sqlite().await;
    let key = support::key_of("no-membership");
    harness
        .broker
        .install_key(Scope::Company, "no-membership", "by hand", &key)
        .await
        .expect("key");
    let err = harness
        .with_key(&key)
        .submit_mentee(submission("k", mentee()))
        .await
        .expect_err("no membership");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "no membership: company keys come from enrolment with a code from your association"
    );
    assert!(
        harness
            .broker
            .list_mentees("no-membership")
            .await
            .expect("list")
            .is_empty()
    );
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
        .submit_mentee(submission("k", mentee()))
        .await
        .expect_err("no company");
    assert_eq!(err.code(), Code::Unauthenticated);
    harness.stop().await;
}

#[tokio::test]
async fn a_withdrawn_mentee_leaves_matching() {
    let harness = Harness::sqlite().await;
    let mut acme = harness.company(ACME);
    let m = acme
        .submit_mentee(submission("k", mentee()))
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
