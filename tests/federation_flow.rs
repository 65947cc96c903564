//! The whole path through the gRPC API of real servers: a company submits a mentee, the broker
//! syncs two nodes and proposes a mentor across the node boundary, the mentor's node receives
//! the introduction, both sides say yes, and the contact card reaches that company only.

use tandem_e2e::{mentee, mentor, start, submission};
use tandem_proto::{
    CompanyDecision, CreateMentorRequest, GetContactCardRequest, GetMenteeRequest,
    ListAuditEventsRequest, ListIntroductionsRequest, ListMenteesRequest, ListProposalsRequest,
    MenteeStatus, MentorDecision, ProposalStatus, RecordDecisionRequest, RespondToProposalRequest,
    RunMatchingRoundRequest, SyncNodesRequest,
};
use tonic::Code;

#[tokio::test]
async fn a_tandem_forms_across_nodes_and_only_the_submitting_company_gets_the_card()
-> anyhow::Result<()> {
    let mut f = start(&["chamber", "startups"]).await?;
    // The chamber's mentor; the company is a member of the start-up network.
    let created = f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(mentor("Erika Berg", "HRB 1 München")),
        })
        .await?
        .into_inner();
    let submitted = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("k1", mentee()))?)
        .await?
        .into_inner();
    assert_eq!(submitted.status, MenteeStatus::Waiting as i32);

    let sync = f
        .operator
        .sync_nodes(SyncNodesRequest::default())
        .await?
        .into_inner();
    assert_eq!(
        sync.results.iter().map(|r| r.upserts).sum::<u32>(),
        1,
        "{sync:?}"
    );
    let round = f
        .operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?
        .into_inner();
    assert_eq!(
        (round.proposals, round.cross_node_proposals),
        (1, 1),
        "{round:?}"
    );
    assert!(
        round.optimal && round.pricing_passes >= 1 && round.feasible_pairs == 1,
        "the round certifies its optimum: {round:?}"
    );

    let proposals = f
        .mentees
        .list_proposals(f.as_company(
            "acme",
            ListProposalsRequest {
                mentee_id: submitted.mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner()
        .proposals;
    let proposal = proposals.first().expect("one proposal").clone();
    assert_eq!(proposal.node_id, "chamber");
    assert!(
        proposal
            .reasons
            .iter()
            .any(|r| r.criterion == "goal_coverage" && r.points > 0),
        "{proposal:?}"
    );

    // The introduction reaches the chamber's node, about the right mentor, without the company.
    f.settle().await?;
    let intros = f.admins[0]
        .list_introductions(ListIntroductionsRequest::default())
        .await?
        .into_inner()
        .introductions;
    assert_eq!(intros.len(), 1);
    assert_eq!(intros[0].introduction_id, proposal.proposal_id);
    assert_eq!(intros[0].mentor_id, created.id);

    // Before any yes, and after only the company's yes, the card is refused.
    let card = f
        .mentees
        .get_contact_card(f.as_company(
            "acme",
            GetContactCardRequest {
                proposal_id: proposal.proposal_id.clone(),
            },
        )?)
        .await;
    assert_eq!(
        card.expect_err("no opt-in yet").code(),
        Code::FailedPrecondition
    );
    let confirmed = f
        .mentees
        .respond_to_proposal(f.as_company(
            "acme",
            RespondToProposalRequest {
                proposal_id: proposal.proposal_id.clone(),
                decision: CompanyDecision::Confirmed as i32,
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(
        confirmed.status,
        ProposalStatus::Open as i32,
        "mentor has not answered yet"
    );
    let card = f
        .mentees
        .get_contact_card(f.as_company(
            "acme",
            GetContactCardRequest {
                proposal_id: proposal.proposal_id.clone(),
            },
        )?)
        .await;
    assert_eq!(
        card.expect_err("mentor has not accepted").code(),
        Code::FailedPrecondition
    );

    f.admins[0]
        .record_decision(RecordDecisionRequest {
            introduction_id: proposal.proposal_id.clone(),
            decision: MentorDecision::Accepted as i32,
        })
        .await?;
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;

    let mentee_now = f
        .mentees
        .get_mentee(f.as_company(
            "acme",
            GetMenteeRequest {
                mentee_id: submitted.mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(mentee_now.status, MenteeStatus::InTandem as i32);
    let card = f
        .mentees
        .get_contact_card(f.as_company(
            "acme",
            GetContactCardRequest {
                proposal_id: proposal.proposal_id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(card.display_name, "Erika Berg");
    assert_eq!(card.email, "erika.berg@mentors.example");
    assert_eq!(card.node_id, "chamber");

    // Another company sees none of it.
    let other = f
        .mentees
        .get_contact_card(f.as_company(
            "globex",
            GetContactCardRequest {
                proposal_id: proposal.proposal_id.clone(),
            },
        )?)
        .await
        .expect_err("foreign company");
    assert_eq!(other.code(), Code::NotFound);
    assert!(!other.message().contains("Erika"), "{other:?}");
    let other = f
        .mentees
        .get_mentee(f.as_company(
            "globex",
            GetMenteeRequest {
                mentee_id: submitted.mentee_id.clone(),
            },
        )?)
        .await
        .expect_err("foreign company");
    assert_eq!(other.code(), Code::NotFound);
    let listed = f
        .mentees
        .list_mentees(f.as_company("globex", ListMenteesRequest {})?)
        .await?
        .into_inner()
        .mentees;
    assert!(listed.is_empty());

    // The operator reads who did what; the card release is on record, without the card.
    let log = f
        .operator
        .list_audit_events(ListAuditEventsRequest::default())
        .await?
        .into_inner()
        .events;
    let entries: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.object_id.as_str()))
        .collect();
    let acme = format!("company:{}", f.companies["acme"].company_id);
    let acme = acme.as_str();
    for expected in [
        (acme, "mentee.submitted", submitted.mentee_id.as_str()),
        ("operator", "round.completed", round.round_id.as_str()),
        (acme, "proposal.confirmed", proposal.proposal_id.as_str()),
        (acme, "contact_card.released", proposal.proposal_id.as_str()),
    ] {
        assert!(
            entries.contains(&expected),
            "{expected:?} missing from {entries:?}"
        );
    }
    assert!(
        log.windows(2).all(|w| w[0].id < w[1].id),
        "append-only order"
    );
    assert!(
        log.iter()
            .all(|e| !e.detail.contains("Erika") && !e.detail.contains('@'))
    );

    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_declined_mentor_is_replaced_by_another_in_the_next_round() -> anyhow::Result<()> {
    let mut f = start(&["ind-assoc", "startups"]).await?;
    f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(mentor("Anna Alt", "HRB 1")),
        })
        .await?;
    f.admins[1]
        .create_mentor(CreateMentorRequest {
            mentor: Some(mentor("Bernd Bach", "HRB 2")),
        })
        .await?;
    let m = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("k1", mentee()))?)
        .await?
        .into_inner();
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    f.operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?;
    f.settle().await?;
    let first = f
        .mentees
        .list_proposals(f.as_company(
            "acme",
            ListProposalsRequest {
                mentee_id: m.mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner()
        .proposals;
    assert_eq!(first.len(), 1);
    let first = first[0].clone();
    let node = f
        .federation
        .nodes
        .iter()
        .position(|n| n.node_id == first.node_id)
        .expect("node");
    f.admins[node]
        .record_decision(RecordDecisionRequest {
            introduction_id: first.proposal_id.clone(),
            decision: MentorDecision::Declined as i32,
        })
        .await?;
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    let waiting = f
        .mentees
        .get_mentee(f.as_company(
            "acme",
            GetMenteeRequest {
                mentee_id: m.mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(waiting.status, MenteeStatus::Waiting as i32);

    let round = f
        .operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?
        .into_inner();
    assert_eq!(round.proposals, 1);
    let all = f
        .mentees
        .list_proposals(f.as_company(
            "acme",
            ListProposalsRequest {
                mentee_id: m.mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner()
        .proposals;
    assert_eq!(all.len(), 2);
    let second = all
        .iter()
        .find(|p| p.proposal_id != first.proposal_id)
        .expect("second proposal");
    assert_ne!(
        (
            second.node_id.clone(),
            second.mentor.clone().map(|p| p.pseudonym)
        ),
        (
            first.node_id.clone(),
            first.mentor.clone().map(|p| p.pseudonym)
        )
    );
    assert_eq!(
        all.iter()
            .find(|p| p.proposal_id == first.proposal_id)
            .map(|p| p.status),
        Some(ProposalStatus::DeclinedByMentor as i32)
    );

    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn resubmitting_with_the_same_key_creates_no_second_mentee() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let first = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("same-key", mentee()))?)
        .await?
        .into_inner();
    let again = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("same-key", mentee()))?)
        .await?
        .into_inner();
    assert_eq!(first.mentee_id, again.mentee_id);
    let mut changed = mentee();
    changed.languages = vec!["en".into()];
    let conflict = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("same-key", changed))?)
        .await
        .expect_err("same key, other payload");
    assert_eq!(conflict.code(), Code::AlreadyExists);
    assert!(
        conflict.message().contains("idempotency_key"),
        "{conflict:?}"
    );
    // The same key from another company is that company's own mentee.
    let other = f
        .mentees
        .submit_mentee(f.as_company("globex", submission("same-key", mentee()))?)
        .await?
        .into_inner();
    assert_ne!(other.mentee_id, first.mentee_id);
    let listed = f
        .mentees
        .list_mentees(f.as_company("acme", ListMenteesRequest {})?)
        .await?
        .into_inner()
        .mentees;
    assert_eq!(listed.len(), 1);
    f.federation.shutdown().await;
    Ok(())
}
