//! The double opt-in over real servers, without waiting for a sync: once the mentor accepted
//! at the node and the company confirmed, in either order, the company gets the contact card
//! on its next call; a refusal names the side that has not said yes. No test here syncs
//! between the answers and the card (the test federation's periodic sync is off).

use tandem_e2e::{TestFederation, mentee, mentor, start, submission};
use tandem_proto::{
    CompanyDecision, ContactCard, CreateMentorRequest, GetContactCardRequest, GetMenteeRequest,
    ListAuditEventsRequest, ListProposalsRequest, MenteeStatus, MentorDecision, Proposal,
    ProposalStatus, RecordDecisionRequest, RespondToProposalRequest, RunMatchingRoundRequest,
    SyncNodesRequest,
};
use tonic::Code;

/// The refusal's common part; what follows names the missing yes.
const REFUSED: &str = "contact card is released only after both sides accepted: ";

/// Has the chamber's mentor proposed for acme's mentee; returns the mentee id and the
/// proposal id.
async fn proposed(f: &mut TestFederation) -> anyhow::Result<(String, String)> {
    f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(mentor("Erika Berg", "HRB 1 München")),
        })
        .await?;
    let m = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("k1", mentee()))?)
        .await?
        .into_inner();
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    let round = f
        .operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?
        .into_inner();
    anyhow::ensure!(round.proposals == 1, "{round:?}");
    f.settle().await?;
    let proposal = f
        .mentees
        .list_proposals(f.as_company(
            "acme",
            ListProposalsRequest {
                mentee_id: m.mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner()
        .proposals
        .remove(0);
    Ok((m.mentee_id, proposal.proposal_id))
}

async fn mentor_answers(
    f: &mut TestFederation,
    proposal_id: &str,
    decision: MentorDecision,
) -> anyhow::Result<()> {
    f.admins[0]
        .record_decision(RecordDecisionRequest {
            introduction_id: proposal_id.to_owned(),
            decision: decision as i32,
        })
        .await?;
    Ok(())
}

async fn company_confirms(
    f: &mut TestFederation,
    proposal_id: &str,
) -> Result<Proposal, tonic::Status> {
    let request = f
        .as_company(
            "acme",
            RespondToProposalRequest {
                proposal_id: proposal_id.to_owned(),
                decision: CompanyDecision::Confirmed as i32,
            },
        )
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    f.mentees
        .respond_to_proposal(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn contact_card(
    f: &mut TestFederation,
    proposal_id: &str,
) -> Result<ContactCard, tonic::Status> {
    let request = f
        .as_company(
            "acme",
            GetContactCardRequest {
                proposal_id: proposal_id.to_owned(),
            },
        )
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    f.mentees
        .get_contact_card(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Returns the refusal's message after checking it is FAILED_PRECONDITION.
fn refusal(result: Result<ContactCard, tonic::Status>) -> anyhow::Result<String> {
    match result {
        Ok(card) => anyhow::bail!("card released too early: {card:?}"),
        Err(s) if s.code() == Code::FailedPrecondition => Ok(s.message().to_owned()),
        Err(s) => anyhow::bail!("expected FAILED_PRECONDITION, got {s:?}"),
    }
}

async fn mentee_status(f: &mut TestFederation, mentee_id: &str) -> anyhow::Result<i32> {
    Ok(f.mentees
        .get_mentee(f.as_company(
            "acme",
            GetMenteeRequest {
                mentee_id: mentee_id.to_owned(),
            },
        )?)
        .await?
        .into_inner()
        .status)
}

#[tokio::test]
async fn the_card_is_released_right_after_the_mentor_accepted_and_the_company_confirmed()
-> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let (m, p) = proposed(&mut f).await?;

    mentor_answers(&mut f, &p, MentorDecision::Accepted).await?;
    let confirmed = company_confirms(&mut f, &p).await?;
    assert_eq!(
        confirmed.status,
        ProposalStatus::Tandem as i32,
        "the confirmation completes the tandem: {confirmed:?}"
    );
    assert_eq!(confirmed.mentor_decision, MentorDecision::Accepted as i32);
    assert_eq!(
        mentee_status(&mut f, &m).await?,
        MenteeStatus::InTandem as i32
    );
    let card = contact_card(&mut f, &p).await?;
    assert_eq!(card.display_name, "Erika Berg");
    assert_eq!(card.node_id, "chamber");

    // The sync brings the same decision: nothing is applied or recorded twice.
    let sync = f
        .operator
        .sync_nodes(SyncNodesRequest::default())
        .await?
        .into_inner();
    assert_eq!(sync.results[0].decisions, 0, "{sync:?}");
    assert_eq!(sync.results[0].error, "", "{sync:?}");
    let log = f
        .operator
        .list_audit_events(ListAuditEventsRequest::default())
        .await?
        .into_inner()
        .events;
    let accepted: Vec<(&str, &str)> = log
        .iter()
        .filter(|e| e.action == "proposal.mentor_accepted")
        .map(|e| (e.actor.as_str(), e.object_id.as_str()))
        .collect();
    assert_eq!(accepted, [("node:chamber", p.as_str())]);

    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_card_is_released_right_after_the_company_confirmed_and_the_mentor_accepted()
-> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let (m, p) = proposed(&mut f).await?;

    let confirmed = company_confirms(&mut f, &p).await?;
    assert_eq!(confirmed.status, ProposalStatus::Open as i32);
    assert_eq!(
        refusal(contact_card(&mut f, &p).await)?,
        format!("{REFUSED}the mentor has not accepted yet")
    );
    mentor_answers(&mut f, &p, MentorDecision::Accepted).await?;
    let card = contact_card(&mut f, &p).await?;
    assert_eq!(card.display_name, "Erika Berg");
    assert_eq!(card.email, "erika.berg@mentors.example");
    assert_eq!(
        mentee_status(&mut f, &m).await?,
        MenteeStatus::InTandem as i32
    );

    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_refusal_names_the_mentor_while_the_mentor_has_not_answered() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let (m, p) = proposed(&mut f).await?;

    assert_eq!(
        refusal(contact_card(&mut f, &p).await)?,
        format!("{REFUSED}the mentor has not accepted yet and the company has not confirmed yet")
    );
    company_confirms(&mut f, &p).await?;
    assert_eq!(
        refusal(contact_card(&mut f, &p).await)?,
        format!("{REFUSED}the mentor has not accepted yet")
    );

    // A decline at the node is named at once, and the mentee waits again.
    mentor_answers(&mut f, &p, MentorDecision::Declined).await?;
    assert_eq!(
        refusal(contact_card(&mut f, &p).await)?,
        format!("{REFUSED}the mentor declined")
    );
    assert_eq!(
        mentee_status(&mut f, &m).await?,
        MenteeStatus::Waiting as i32
    );

    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_refusal_names_the_company_after_the_mentor_accepted() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let (_, p) = proposed(&mut f).await?;

    mentor_answers(&mut f, &p, MentorDecision::Accepted).await?;
    assert_eq!(
        refusal(contact_card(&mut f, &p).await)?,
        format!("{REFUSED}the company has not confirmed yet")
    );
    company_confirms(&mut f, &p).await?;
    let card = contact_card(&mut f, &p).await?;
    assert_eq!(card.display_name, "Erika Berg");

    f.federation.shutdown().await;
    Ok(())
}
