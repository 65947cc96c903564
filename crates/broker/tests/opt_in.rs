//! The double opt-in without waiting for a sync: when a company confirms or asks for the
//! contact card and the broker has not heard the mentor's answer yet, it asks the mentor's
//! node for that one decision and applies it as the sync would.

mod support;

use support::{ACME, Harness, TestNode, mentee, mentor, submission};
use tandem_proto::{
    CareerLevel, CompanyDecision, GetContactCardRequest, MenteeStatus, MentorDecision,
    ProposalStatus, RespondToProposalRequest, Topic,
};
use tonic::Code;

/// A node with one mentor, synced, and one proposal for a mentee of acme; returns the node,
/// the mentee id and the proposal id.
async fn proposed(harness: &Harness) -> (TestNode, String, String) {
    let node = TestNode::start("assoc").await;
    node.publish(mentor(
        1,
        CareerLevel::Director,
        &[Topic::Leadership, Topic::Financing],
    ));
    harness.register(&node).await;
    harness.broker.sync_nodes(None).await.expect("sync");
    let m = harness
        .broker
        .submit_mentee(ACME, submission("k", mentee()))
        .await
        .expect("submit")
        .mentee_id;
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!(round.proposals, 1);
    let p = harness.broker.list_proposals(ACME, &m).await.expect("list")[0]
        .proposal_id
        .clone();
    assert_eq!(harness.settle().await, 1);
    assert!(node.introduction(&p).is_some(), "delivered");
    (node, m, p)
}

fn confirm(proposal_id: &str) -> RespondToProposalRequest {
    RespondToProposalRequest {
        proposal_id: proposal_id.to_owned(),
        decision: CompanyDecision::Confirmed as i32,
    }
}

fn card(proposal_id: &str) -> GetContactCardRequest {
    GetContactCardRequest {
        proposal_id: proposal_id.to_owned(),
    }
}

/// Returns the broker's audit entries of `action`.
async fn audited(harness: &Harness, action: &str) -> Vec<(String, String)> {
    harness
        .broker
        .list_audit_events(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| (e.actor, e.object_id))
        .collect()
}

#[tokio::test]
async fn a_confirmation_after_the_mentor_accepted_makes_the_tandem_and_the_sync_changes_nothing() {
    let harness = Harness::sqlite().await;
    let (node, m, p) = proposed(&harness).await;
    node.decide(&p, MentorDecision::Accepted);

    let confirmed = harness
        .company(ACME)
        .respond_to_proposal(confirm(&p))
        .await
        .expect("confirm")
        .into_inner();
    assert_eq!(confirmed.status, ProposalStatus::Tandem as i32);
    assert_eq!(confirmed.mentor_decision, MentorDecision::Accepted as i32);
    let mentee = harness.broker.get_mentee(ACME, &m).await.expect("mentee");
    assert_eq!(mentee.status, MenteeStatus::InTandem as i32);
    let card = harness
        .company(ACME)
        .get_contact_card(card(&p))
        .await
        .expect("card at once")
        .into_inner();
    assert_eq!(card.node_id, "assoc");
    assert!(node.introduction(&p).expect("intro").released);

    // The sync brings the same decision again: nothing changes, nothing is recorded twice.
    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    assert_eq!(synced[0].decisions, 0, "{synced:?}");
    assert_eq!(
        audited(&harness, "proposal.mentor_accepted").await,
        vec![("node:assoc".to_owned(), p.clone())]
    );
    assert_eq!(
        harness
            .broker
            .list_tandems(ACME, "")
            .await
            .expect("tandems")
            .len(),
        1
    );
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_refused_card_names_the_side_that_has_not_said_yes() {
    let harness = Harness::sqlite().await;
    let (node, _, p) = proposed(&harness).await;
    let acme = harness.company(ACME);
    let refusal = |s: tonic::Status| {
        assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
        s.message().to_owned()
    };

    let neither = acme
        .clone()
        .get_contact_card(card(&p))
        .await
        .expect_err("no yes");
    assert_eq!(
        refusal(neither),
        "contact card is released only after both sides accepted: \
         the mentor has not accepted yet and the company has not confirmed yet"
    );
    node.decide(&p, MentorDecision::Accepted);
    let mentor_only = acme
        .clone()
        .get_contact_card(card(&p))
        .await
        .expect_err("mentor's yes");
    assert_eq!(
        refusal(mentor_only),
        "contact card is released only after both sides accepted: \
         the company has not confirmed yet"
    );
    // The broker learnt the acceptance then; the sync has nothing left to apply.
    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    assert_eq!(synced[0].decisions, 0, "{synced:?}");
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_decline_at_the_node_is_named_at_once_and_the_mentee_waits_again() {
    let harness = Harness::sqlite().await;
    let (node, m, p) = proposed(&harness).await;
    node.decide(&p, MentorDecision::Declined);

    let refused = harness
        .company(ACME)
        .get_contact_card(card(&p))
        .await
        .expect_err("declined");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().ends_with(": the mentor declined"),
        "{refused:?}"
    );
    let mentee = harness.broker.get_mentee(ACME, &m).await.expect("mentee");
    assert_eq!(mentee.status, MenteeStatus::Waiting as i32);
    let late = harness
        .company(ACME)
        .respond_to_proposal(confirm(&p))
        .await
        .expect_err("no longer open");
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(
        late.message(),
        "proposal is no longer open: the mentor declined"
    );

    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    assert_eq!(synced[0].decisions, 0, "{synced:?}");
    assert_eq!(audited(&harness, "proposal.mentor_declined").await.len(), 1);
    node.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn with_the_node_down_a_confirmation_stands_and_the_card_names_the_node() {
    let harness = Harness::sqlite().await;
    let (node, _, p) = proposed(&harness).await;
    node.decide(&p, MentorDecision::Accepted);
    node.stop().await;

    let confirmed = harness
        .company(ACME)
        .respond_to_proposal(confirm(&p))
        .await
        .expect("a confirmation does not need the node")
        .into_inner();
    assert_eq!(confirmed.status, ProposalStatus::Open as i32);
    assert_eq!(
        confirmed.company_decision,
        CompanyDecision::Confirmed as i32
    );
    let unavailable = harness
        .company(ACME)
        .get_contact_card(card(&p))
        .await
        .expect_err("node down");
    assert_eq!(unavailable.code(), Code::Unavailable);
    assert_eq!(unavailable.message(), "node assoc is unavailable");

    // Back up, the next call completes the tandem and relays the card.
    node.restart().await;
    let card = harness
        .company(ACME)
        .get_contact_card(card(&p))
        .await
        .expect("card")
        .into_inner();
    assert_eq!(card.node_id, "assoc");
    node.stop().await;
    harness.stop().await;
}
