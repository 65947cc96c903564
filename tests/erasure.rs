//! Erasure of a mentee across the federation, over the real gRPC API: the company erases its
//! mentee at the broker, the broker keeps only a tombstone, and the mentor's node forgets the
//! mentee summary it received while keeping the introduction for its records. Nothing of any
//! other mentee is lost.

use tandem_e2e::{mentee, mentor, start, submission};
use tandem_proto::{
    CreateMentorRequest, EraseMenteeRequest, GetMenteeRequest, Introduction,
    ListAuditEventsRequest, ListIntroductionsRequest, ListNodeAuditEventsRequest,
    ListProposalsRequest, MenteeStatus, MentorDecision, Proposal, RecordDecisionRequest,
    RunMatchingRoundRequest, SyncNodesRequest,
};
use tonic::Code;

const NODES: [&str; 2] = ["chamber", "guild"];

#[tokio::test]
async fn an_erased_mentee_is_forgotten_by_the_broker_and_the_mentors_node() -> anyhow::Result<()> {
    let mut f = start(&NODES).await?;
    for (k, name) in [(0, "Erika Berg"), (1, "Max Roth")] {
        f.admins[k]
            .create_mentor(CreateMentorRequest {
                mentor: Some(mentor(name, &format!("HRB {k}00"))),
            })
            .await?;
    }
    let mut ids = Vec::new();
    for (company, key) in [("acme", "anna"), ("globex", "ben")] {
        let submitted = f
            .mentees
            .submit_mentee(f.as_company(company, submission(key, mentee()))?)
            .await?
            .into_inner();
        ids.push(submitted.mentee_id);
    }
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    let round = f
        .operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?
        .into_inner();
    assert_eq!(round.proposals, 2, "{round:?}");
    f.settle().await?;

    let mut proposals: Vec<Proposal> = Vec::new();
    for (company, id) in [("acme", &ids[0]), ("globex", &ids[1])] {
        let listed = f
            .mentees
            .list_proposals(f.as_company(
                company,
                ListProposalsRequest {
                    mentee_id: id.clone(),
                },
            )?)
            .await?
            .into_inner()
            .proposals;
        proposals.push(listed.into_iter().next().expect("one proposal each"));
    }
    let node_of = |p: &Proposal| {
        NODES
            .iter()
            .position(|n| *n == p.node_id)
            .expect("a known node")
    };
    let (erased_node, kept_node) = (node_of(&proposals[0]), node_of(&proposals[1]));
    // The erased mentee's mentor already accepted.
    f.admins[erased_node]
        .record_decision(RecordDecisionRequest {
            introduction_id: proposals[0].proposal_id.clone(),
            decision: MentorDecision::Accepted as i32,
        })
        .await?;
    let before = introduction(&mut f, erased_node, &proposals[0].proposal_id).await?;
    assert!(before.mentee.is_some() && !before.reasons.is_empty());

    // Globex cannot erase acme's mentee, and learns nothing about it.
    let status = f
        .mentees
        .erase_mentee(f.as_company(
            "globex",
            EraseMenteeRequest {
                mentee_id: ids[0].clone(),
            },
        )?)
        .await
        .expect_err("foreign mentee");
    assert_eq!(status.code(), Code::NotFound);
    assert!(!status.message().contains(&ids[0]));

    let tombstone = f
        .mentees
        .erase_mentee(f.as_company(
            "acme",
            EraseMenteeRequest {
                mentee_id: ids[0].clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(tombstone.status(), MenteeStatus::Withdrawn);
    assert!(tombstone.erased_at_ms > 0);
    assert_eq!(tombstone.request, None);
    let read = f
        .mentees
        .get_mentee(f.as_company(
            "acme",
            GetMenteeRequest {
                mentee_id: ids[0].clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(read, tombstone);

    // The mentor's node forgot the mentee but keeps the introduction, its decision and state.
    f.settle().await?;
    let after = introduction(&mut f, erased_node, &proposals[0].proposal_id).await?;
    assert!(after.mentee_forgotten);
    assert_eq!(after.mentee, None);
    assert!(after.reasons.is_empty());
    assert_eq!(after.decision(), MentorDecision::Accepted);
    assert!(after.closed);
    assert_eq!(after.close_reason, "mentee_withdrawn");
    assert_eq!(after.mentor_id, before.mentor_id);
    let node_audit = f.admins[erased_node]
        .list_audit_events(ListNodeAuditEventsRequest::default())
        .await?
        .into_inner()
        .events;
    assert!(
        node_audit.iter().any(|e| e.key_id == "broker"
            && e.action == "introduction.mentee_forgotten"
            && e.object_id == proposals[0].proposal_id),
        "{node_audit:?}"
    );

    // Nothing else lost: the other mentee, its proposal and its introduction are intact.
    let kept = f
        .mentees
        .get_mentee(f.as_company(
            "globex",
            GetMenteeRequest {
                mentee_id: ids[1].clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(kept.status(), MenteeStatus::Proposed);
    assert!(kept.request.is_some() && kept.erased_at_ms == 0);
    let other = introduction(&mut f, kept_node, &proposals[1].proposal_id).await?;
    assert!(other.mentee.is_some() && !other.mentee_forgotten && !other.closed);
    assert!(!other.reasons.is_empty());

    // The operator sees the erasure in the broker's audit log, without personal data.
    let audit = f
        .operator
        .list_audit_events(ListAuditEventsRequest::default())
        .await?
        .into_inner()
        .events;
    let erasure = audit
        .iter()
        .find(|e| e.action == "mentee.erased")
        .expect("erasure audited");
    assert_eq!(
        (erasure.actor.clone(), erasure.object_id.as_str()),
        (
            format!("company:{}", f.companies["acme"].company_id),
            ids[0].as_str()
        )
    );
    f.federation.shutdown().await;
    Ok(())
}

async fn introduction(
    f: &mut tandem_e2e::TestFederation,
    node: usize,
    id: &str,
) -> anyhow::Result<Introduction> {
    f.admins[node]
        .list_introductions(ListIntroductionsRequest::default())
        .await?
        .into_inner()
        .introductions
        .into_iter()
        .find(|i| i.introduction_id == id)
        .ok_or_else(|| anyhow::anyhow!("introduction {id} not at node {node}"))
}
