//! A matching round's bulk write and submissions sent while it runs both commit: no submission
//! is lost, none is proposed twice, and every proposal of the round is for a mentee that was
//! waiting when the round read its input. On PostgreSQL when `TANDEM_TEST_POSTGRES_URL` is
//! set, else on SQLite.

mod support;

use std::collections::HashMap;

use sea_orm::{EntityTrait, PaginatorTrait};
use support::{ACME, GLOBEX, Harness, TestNode, mentee, mentor, submission};
use tandem_proto::{
    CareerLevel, MenteeStatus, ProposalStatus, RunMatchingRoundRequest, SyncNodesRequest, Topic,
};
use tandem_storage::broker::{mentee as mentee_row, proposal};

#[tokio::test]
async fn a_round_and_concurrent_submissions_both_commit_with_nothing_lost_or_doubled() {
    let harness = Harness::from_env("tandem_round_intake", |_| {}).await;
    let assoc = TestNode::start("assoc").await;
    for n in 0..60 {
        assoc.publish(mentor(
            n,
            CareerLevel::Director,
            &[Topic::Leadership, Topic::Financing],
        ));
    }
    harness.register(&assoc).await;
    let mut operator = harness.operator();
    operator
        .sync_nodes(SyncNodesRequest::default())
        .await
        .expect("sync");

    let mut acme = harness.company(ACME);
    for n in 0..150 {
        acme.submit_mentee(submission(&format!("before-{n}"), mentee()))
            .await
            .expect("submit before the round");
    }

    // Globex submits while the round runs; each of its calls must succeed.
    let mut globex = harness.company(GLOBEX);
    let during = tokio::spawn(async move {
        let mut ids = Vec::new();
        for n in 0..60 {
            let m = globex
                .submit_mentee(submission(&format!("during-{n}"), mentee()))
                .await
                .expect("submit during the round")
                .into_inner();
            ids.push(m.mentee_id);
        }
        ids
    });
    let round = operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await
        .expect("round")
        .into_inner();
    let during = during.await.expect("submissions");
    assert_eq!(during.len(), 60);

    // Nothing lost: every submission is stored once.
    let stored = mentee_row::Entity::find()
        .count(&harness.db)
        .await
        .expect("count");
    assert_eq!(stored, 210);

    // Nothing doubled: one open proposal per proposed mentee, as many as the round made, each
    // for a mentee the round saw (a submission the round did not read stays waiting).
    let proposals = proposal::Entity::find()
        .all(&harness.db)
        .await
        .expect("proposals");
    assert_eq!(proposals.len(), round.proposals as usize);
    assert!(round.proposals > 0, "{round:?}");
    let mut per_mentee: HashMap<&str, usize> = HashMap::new();
    for p in &proposals {
        assert_eq!(p.status, ProposalStatus::Open as i32);
        *per_mentee.entry(p.mentee_id.as_str()).or_default() += 1;
    }
    assert!(per_mentee.values().all(|&n| n == 1), "{per_mentee:?}");
    let mentees = mentee_row::Entity::find()
        .all(&harness.db)
        .await
        .expect("mentees");
    for m in &mentees {
        let proposed = per_mentee.contains_key(m.id.as_str());
        assert_eq!(
            m.status == MenteeStatus::Proposed as i32,
            proposed,
            "mentee {} has status {} and {} proposals",
            m.id,
            m.status,
            usize::from(proposed)
        );
        if !proposed {
            assert_eq!(m.status, MenteeStatus::Waiting as i32);
        }
    }
    // Each mentor got at most its free places.
    let mut per_mentor: HashMap<&str, u32> = HashMap::new();
    for p in &proposals {
        *per_mentor.entry(p.pseudonym.as_str()).or_default() += 1;
    }
    assert!(per_mentor.values().all(|&n| n <= 2), "{per_mentor:?}");
    harness.stop().await;
}
