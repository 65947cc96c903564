//! What happens to proposals after a round: declines, erasure at the node, expiry, withdrawal,
//! rejected profile batches, and introductions that wait in the outbox while a node is down.

mod support;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use support::{ACME, Harness, TestNode, mentee, mentor, submission};
use tandem_proto::{
    CareerLevel, CompanyDecision, GetContactCardRequest, ListNodesRequest, MenteeStatus,
    MentorDecision, ProposalStatus, RespondToProposalRequest, Topic, WithdrawMenteeRequest,
    WithdrawalReason,
};
use tandem_storage::broker::{outbox, profile, proposal};
use tonic::Code;

/// A node with two mentors who both cover the mentee's goals, the director scoring higher.
async fn two_mentors(harness: &Harness) -> TestNode {
    let node = TestNode::start("assoc").await;
    node.publish(mentor(
        1,
        CareerLevel::Director,
        &[Topic::Leadership, Topic::Financing],
    ));
    node.publish(mentor(
        2,
        CareerLevel::HeadOfDepartment,
        &[Topic::Leadership],
    ));
    harness.register(&node).await;
    harness.broker.sync_nodes(None).await.expect("sync");
    node
}

async fn submit(harness: &Harness, key: &str) -> String {
    harness
        .broker
        .submit_mentee(ACME, submission(key, mentee()))
        .await
        .expect("submit")
        .mentee_id
}

async fn mentee_status(harness: &Harness, id: &str) -> i32 {
    harness
        .broker
        .get_mentee(ACME, id)
        .await
        .expect("mentee")
        .status
}

#[tokio::test]
async fn after_a_mentor_declines_the_next_round_proposes_another_mentor() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    assert_eq!(
        harness
            .broker
            .run_matching_round()
            .await
            .expect("round")
            .proposals,
        1
    );
    harness.settle().await;
    let first = harness.broker.list_proposals(ACME, &m).await.expect("list");
    let first = &first[0];
    assert_eq!(
        first.mentor.as_ref().expect("mentor").pseudonym,
        support::token(1001)
    );

    node.decide(&first.proposal_id, MentorDecision::Declined);
    let synced = harness
        .broker
        .sync_nodes(Some("assoc"))
        .await
        .expect("sync");
    assert_eq!(synced[0].decisions, 1);
    assert_eq!(
        mentee_status(&harness, &m).await,
        MenteeStatus::Waiting as i32
    );

    assert_eq!(
        harness
            .broker
            .run_matching_round()
            .await
            .expect("round")
            .proposals,
        1
    );
    harness.settle().await;
    let proposals = harness.broker.list_proposals(ACME, &m).await.expect("list");
    assert_eq!(proposals.len(), 2);
    // Newest first: the second mentor now, the declined one before.
    assert_eq!(
        proposals[0].mentor.as_ref().expect("m").pseudonym,
        support::token(1002)
    );
    assert_eq!(proposals[0].status, ProposalStatus::Open as i32);
    assert_eq!(proposals[1].status, ProposalStatus::DeclinedByMentor as i32);
    assert_eq!(
        proposals[1].mentor_decision,
        MentorDecision::Declined as i32
    );
    assert!(node.introduction(&proposals[0].proposal_id).is_some());

    // Nobody is left: the third round explains why the mentee waits.
    node.decide(&proposals[0].proposal_id, MentorDecision::Declined);
    harness.broker.sync_nodes(None).await.expect("sync");
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!(round.proposals, 0);
    assert_eq!(round.unmatched[0].reason, "all_candidates_proposed_before");
    let waiting = harness.broker.get_mentee(ACME, &m).await.expect("m");
    assert_eq!(waiting.waiting_reason, "all_candidates_proposed_before");
    let stats = harness.broker.network_stats().await.expect("stats");
    assert_eq!(
        stats.waiting_reasons[0].reason,
        "all_candidates_proposed_before"
    );
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_mentor_withdrawn_at_the_node_ends_the_open_proposal() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    harness.broker.run_matching_round().await.expect("round");
    let proposal_id = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();
    assert_eq!(
        harness.settle().await,
        1,
        "the introduction reached the node"
    );

    node.withdraw(&support::token(1001));
    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    assert_eq!(synced[0].withdrawals, 1);
    let ended = &harness.broker.list_proposals(ACME, &m).await.expect("list")[0];
    assert_eq!(ended.status, ProposalStatus::Withdrawn as i32);
    assert_eq!(
        mentee_status(&harness, &m).await,
        MenteeStatus::Waiting as i32
    );
    let profiles = profile::Entity::find()
        .count(&harness.db)
        .await
        .expect("count");
    assert_eq!(profiles, 1, "the withdrawn profile is erased at the broker");

    assert_eq!(harness.settle().await, 1);
    let intro = node.introduction(&proposal_id).expect("intro");
    assert_eq!(intro.closed.as_deref(), Some("mentor_withdrawn"));

    // The next round proposes the remaining mentor.
    harness.broker.run_matching_round().await.expect("round");
    let latest = &harness.broker.list_proposals(ACME, &m).await.expect("list")[0];
    assert_eq!(
        latest.mentor.as_ref().expect("m").pseudonym,
        support::token(1002)
    );
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_new_pseudonym_or_suppression_keeps_the_open_proposal() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    harness.broker.run_matching_round().await.expect("round");
    harness.settle().await;
    let proposal = harness.broker.list_proposals(ACME, &m).await.expect("list")[0].clone();
    let pseudonym = proposal.mentor.expect("mentor").pseudonym;
    node.decide(&proposal.proposal_id, MentorDecision::Accepted);

    // The node moved to a new epoch: the mentor is still there and already said yes.
    node.withdraw_because(&pseudonym, WithdrawalReason::Rotated);
    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    assert_eq!(synced[0].withdrawals, 1);
    let kept = &harness.broker.list_proposals(ACME, &m).await.expect("list")[0];
    assert_eq!(kept.status, ProposalStatus::Open as i32);
    assert_eq!(kept.mentor_decision, MentorDecision::Accepted as i32);
    let tandem = harness
        .broker
        .respond_to_proposal(
            ACME,
            &proposal.proposal_id,
            CompanyDecision::Confirmed as i32,
        )
        .await
        .expect("confirm");
    assert_eq!(tandem.status, ProposalStatus::Tandem as i32);
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn an_invalid_profile_rejects_the_whole_batch() {
    let harness = Harness::sqlite().await;
    let node = TestNode::start("assoc").await;
    node.publish(mentor(1, CareerLevel::Director, &[Topic::Leadership]));
    let mut bad = mentor(2, CareerLevel::Director, &[Topic::Leadership]);
    bad.languages = vec!["xx".into()];
    node.publish(bad);
    harness.register(&node).await;

    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    assert_eq!(synced[0].upserts, 0);
    assert!(synced[0].error.contains("assoc"), "{}", synced[0].error);
    assert!(
        synced[0].error.contains("changes[1].upsert.languages[0]"),
        "{}",
        synced[0].error
    );
    let nodes = harness
        .operator()
        .list_nodes(ListNodesRequest {})
        .await
        .expect("nodes")
        .into_inner()
        .nodes;
    assert_eq!(nodes[0].profiles, 0);
    assert_eq!(nodes[0].feed_version, 0);
    assert_eq!(nodes[0].last_sync_at_ms, 0);
    assert_eq!(nodes[0].last_error, synced[0].error);
    assert_eq!(
        profile::Entity::find()
            .count(&harness.db)
            .await
            .expect("count"),
        0
    );

    // Profiles of a node that never synced successfully are not matched.
    submit(&harness, "k").await;
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!((round.mentors_considered, round.proposals), (0, 0));
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn an_unreachable_node_is_recorded_and_its_profiles_stay() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    node.stop().await;
    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    assert!(
        synced[0].error.contains("unreachable"),
        "{}",
        synced[0].error
    );
    let nodes = harness.broker.list_nodes().await.expect("nodes");
    assert_eq!(nodes[0].profiles, 2);
    assert!(nodes[0].last_sync_at_ms > 0);
    assert!(!nodes[0].last_error.is_empty());
    harness.stop().await;
}

#[tokio::test]
async fn introductions_wait_in_the_outbox_while_the_node_is_down() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    node.stop().await;

    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!(round.proposals, 1);
    let proposal_id = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();
    let pending = outbox::Entity::find()
        .filter(outbox::Column::IntroductionId.eq(&proposal_id))
        .one(&harness.db)
        .await
        .expect("query")
        .expect("queued");
    assert_eq!(pending.delivered_at_ms, 0);
    assert_eq!(pending.attempts, 0, "the round only queued it");

    // The node is down: the attempt fails and the message waits for a retry.
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 0);
    let failed = outbox::Entity::find_by_id(pending.id)
        .one(&harness.db)
        .await
        .expect("query")
        .expect("row");
    assert_eq!((failed.delivered_at_ms, failed.attempts), (0, 1));
    assert!(!failed.last_error.is_empty());
    assert!(failed.next_attempt_at_ms > failed.created_at_ms);
    assert_eq!(failed.leased_until_ms, 0, "the lease ends with the attempt");

    // Not due yet: nothing is attempted.
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 0);
    node.restart().await;
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 0);

    // Once due, it is delivered.
    make_due(&harness).await;
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 1);
    assert!(node.introduction(&proposal_id).is_some());
    let done = outbox::Entity::find_by_id(pending.id)
        .one(&harness.db)
        .await
        .expect("query")
        .expect("row");
    assert!(done.delivered_at_ms > 0);
    assert_eq!(done.attempts, 2);
    assert_eq!(harness.broker.deliver_outbox().await.expect("deliver"), 0);
    node.stop().await;
    harness.stop().await;
}

async fn make_due(harness: &Harness) {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptAtMs, Expr::value(0i64))
        .exec(&harness.db)
        .await
        .expect("make due");
}

#[tokio::test]
async fn the_background_job_delivers_once_the_node_is_back() {
    let harness = Harness::sqlite_with(|c| c.outbox_interval_secs = 1).await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    node.stop().await;
    harness.broker.run_matching_round().await.expect("round");
    let proposal_id = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();
    node.restart().await;
    // The first retry is due a second after the failure; the job runs every second.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while node.introduction(&proposal_id).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_company_decline_closes_the_introduction_and_the_mentee_waits() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    harness.broker.run_matching_round().await.expect("round");
    harness.settle().await;
    let mut acme = harness.company(ACME);
    let proposal_id = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();

    let err = acme
        .respond_to_proposal(RespondToProposalRequest {
            proposal_id: proposal_id.clone(),
            decision: CompanyDecision::Pending as i32,
        })
        .await
        .expect_err("pending is no answer");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("decision: "));

    let declined = acme
        .respond_to_proposal(RespondToProposalRequest {
            proposal_id: proposal_id.clone(),
            decision: CompanyDecision::Declined as i32,
        })
        .await
        .expect("decline")
        .into_inner();
    assert_eq!(declined.status, ProposalStatus::DeclinedByCompany as i32);
    assert_eq!(declined.company_decision, CompanyDecision::Declined as i32);
    assert_eq!(
        mentee_status(&harness, &m).await,
        MenteeStatus::Waiting as i32
    );
    assert_eq!(harness.settle().await, 1);
    let intro = node.introduction(&proposal_id).expect("intro");
    assert_eq!(intro.closed.as_deref(), Some("company_declined"));
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_confirmation_before_the_mentor_accepts_completes_on_sync() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    harness.broker.run_matching_round().await.expect("round");
    harness.settle().await;
    let proposal_id = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();
    let confirmed = harness
        .broker
        .respond_to_proposal(ACME, &proposal_id, CompanyDecision::Confirmed as i32)
        .await
        .expect("confirm");
    assert_eq!(confirmed.status, ProposalStatus::Open as i32);
    let err = harness
        .company(ACME)
        .get_contact_card(GetContactCardRequest {
            proposal_id: proposal_id.clone(),
        })
        .await
        .expect_err("mentor has not accepted");
    assert_eq!(err.code(), Code::FailedPrecondition);

    node.decide(&proposal_id, MentorDecision::Accepted);
    harness.broker.sync_nodes(None).await.expect("sync");
    assert_eq!(
        mentee_status(&harness, &m).await,
        MenteeStatus::InTandem as i32
    );
    let card = harness
        .broker
        .get_contact_card(ACME, &proposal_id)
        .await
        .expect("card");
    assert_eq!(card.node_id, "assoc");
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn expired_proposals_end_and_the_node_is_told() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    harness.broker.run_matching_round().await.expect("round");
    harness.settle().await;
    let proposal_id = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();
    assert_eq!(harness.broker.expire_proposals().await.expect("expire"), 0);
    proposal::Entity::update_many()
        .col_expr(proposal::Column::ExpiresAtMs, Expr::value(1i64))
        .exec(&harness.db)
        .await
        .expect("age the proposal");
    assert_eq!(harness.broker.expire_proposals().await.expect("expire"), 1);
    let expired = &harness.broker.list_proposals(ACME, &m).await.expect("list")[0];
    assert_eq!(expired.status, ProposalStatus::Expired as i32);
    assert_eq!(
        mentee_status(&harness, &m).await,
        MenteeStatus::Waiting as i32
    );
    assert_eq!(harness.settle().await, 1);
    assert_eq!(
        node.introduction(&proposal_id)
            .expect("intro")
            .closed
            .as_deref(),
        Some("expired")
    );
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn withdrawing_a_proposed_mentee_closes_the_introduction() {
    let harness = Harness::sqlite().await;
    let node = two_mentors(&harness).await;
    let m = submit(&harness, "k").await;
    harness.broker.run_matching_round().await.expect("round");
    harness.settle().await;
    let proposal_id = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();
    harness
        .company(ACME)
        .withdraw_mentee(WithdrawMenteeRequest {
            mentee_id: m.clone(),
        })
        .await
        .expect("withdraw");
    let ended = &harness.broker.list_proposals(ACME, &m).await.expect("list")[0];
    assert_eq!(ended.status, ProposalStatus::Withdrawn as i32);
    assert_eq!(
        mentee_status(&harness, &m).await,
        MenteeStatus::Withdrawn as i32
    );
    assert_eq!(harness.settle().await, 1);
    assert_eq!(
        node.introduction(&proposal_id)
            .expect("intro")
            .closed
            .as_deref(),
        Some("mentee_withdrawn")
    );
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn pending_introductions_hold_back_a_mentors_places() {
    let harness = Harness::sqlite().await;
    let node = TestNode::start("assoc").await;
    let mut only = mentor(1, CareerLevel::Director, &[Topic::Leadership]);
    only.free_capacity = 1;
    node.publish(only);
    harness.register(&node).await;
    harness.broker.sync_nodes(None).await.expect("sync");
    submit(&harness, "a").await;
    assert_eq!(
        harness
            .broker
            .run_matching_round()
            .await
            .expect("r")
            .proposals,
        1
    );
    submit(&harness, "b").await;
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!(round.proposals, 0);
    assert_eq!(round.unmatched[0].reason, "mentors_full");
    node.stop().await;
    harness.stop().await;
}
