//! Joining the federation over real servers: an association admits a member company at its
//! node, the company exchanges the one-time enrolment code for its key at the broker and
//! submits mentees without declaring anything about itself; the broker takes the employer and
//! the home node from the membership. Codes work once, expire, and every refusal of a
//! well-formed code looks the same. A node that removes a company ends the membership at the
//! broker's next sync.

use tandem_e2e::{
    TestClock, TestFederation, admission, mentee, mentor, start, start_with_clock, submission,
    with_key,
};
use tandem_proto::{
    AdmitCompanyRequest, CompanyDecision, CreateMentorRequest, EnrolCompanyRequest,
    GetMenteeRequest, IssueEnrolmentCodeRequest, ListAuditEventsRequest, ListCompaniesRequest,
    ListIntroductionsRequest, ListNodeAuditEventsRequest, ListProposalsRequest, ListTandemsRequest,
    MenteeStatus, MentorDecision, RecordDecisionRequest, RemoveCompanyRequest,
    RespondToProposalRequest, RunMatchingRoundRequest, SyncNodesRequest,
};
use tonic::Code;

/// Admits `name` at the `k`-th node and returns the enrolment code, without enrolling.
async fn admit(
    f: &mut TestFederation,
    k: usize,
    name: &str,
    register_number: &str,
) -> anyhow::Result<(String, String)> {
    let admitted = f.admins[k]
        .admit_company(AdmitCompanyRequest {
            company: Some(admission(name, register_number)),
        })
        .await?
        .into_inner();
    let id = admitted.company.expect("company").company_id;
    Ok((id, admitted.enrolment_code))
}

async fn enrol(
    f: &TestFederation,
    code: &str,
) -> Result<tandem_proto::EnrolCompanyResponse, tonic::Status> {
    let mut client = f
        .federation
        .enrolment_client()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    client
        .enrol_company(EnrolCompanyRequest {
            enrolment_code: code.to_owned(),
            label: "HR system".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_company_enrols_with_its_code_and_submits_without_tokens() -> anyhow::Result<()> {
    let mut f = start(&["chamber", "startups"]).await?;
    let (company_id, code) = admit(&mut f, 1, "initech", "HRB 4711 Köln").await?;
    assert!(code.starts_with("tec_"), "{code}");
    // No sync, no operator step: the broker asks the nodes when it does not know a code.
    let enrolled = enrol(&f, &code).await?;
    assert_eq!(enrolled.company_id, company_id);
    assert_eq!(enrolled.node_id, "startups");
    assert!(enrolled.api_key.starts_with("tdm_"));
    let submitted = f
        .mentees
        .submit_mentee(with_key(&enrolled.api_key, submission("k1", mentee()))?)
        .await?
        .into_inner();
    assert_eq!(submitted.home_node_id, "startups", "from the membership");
    assert_eq!(submitted.status(), MenteeStatus::Waiting);

    // The company's name and register number stay at the node; the broker's audit log knows
    // the company only by its membership id.
    let audit = f
        .operator
        .list_audit_events(ListAuditEventsRequest::default())
        .await?
        .into_inner()
        .events;
    let enrolment = audit
        .iter()
        .find(|e| e.action == "company.enrolled" && e.actor == format!("company:{company_id}"))
        .expect("the enrolment is audited under the company's membership id");
    assert_eq!(enrolment.object_id, company_id);
    let text = format!("{audit:?}");
    assert!(
        !text.contains("4711") && !text.contains("initech"),
        "{text}"
    );
    assert!(!text.contains(&code), "the code is never logged");
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wrong_used_and_expired_codes_get_one_answer() -> anyhow::Result<()> {
    let clock = TestClock::now();
    let mut f = start_with_clock(&["chamber"], Some(&clock)).await?;
    let (_, code) = admit(&mut f, 0, "initech", "HRB 4711").await?;
    enrol(&f, &code).await?;

    let reused = enrol(&f, &code).await.expect_err("a code works once");
    let never_admitted = enrol(&f, &format!("tec_{}", "0".repeat(32)))
        .await
        .expect_err("never issued");
    let (company_id, late) = admit(&mut f, 0, "hooli", "HRB 815").await?;
    clock.advance_days(15);
    let expired = enrol(&f, &late).await.expect_err("expired after 14 days");
    for status in [&reused, &never_admitted, &expired] {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(
            status.message(),
            reused.message(),
            "nothing tells them apart"
        );
    }
    assert!(reused.message().contains("association"), "{reused:?}");

    // The association issues a fresh code; the old one stays dead.
    let fresh = f.admins[0]
        .issue_enrolment_code(IssueEnrolmentCodeRequest {
            company_id: company_id.clone(),
        })
        .await?
        .into_inner()
        .enrolment_code;
    assert_ne!(fresh, late);
    assert_eq!(enrol(&f, &fresh).await?.company_id, company_id);
    assert_eq!(
        enrol(&f, &late).await.expect_err("replaced").code(),
        Code::PermissionDenied
    );

    // A malformed code is named as such, whatever exists.
    for bad in ["", "tec_123", "tdm_kabc_0123", &"x".repeat(10_000)] {
        let status = enrol(&f, bad).await.expect_err("malformed");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().starts_with("enrolment_code"),
            "{}",
            status.message()
        );
    }
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_company_admitted_by_two_nodes_is_one_employer() -> anyhow::Result<()> {
    let mut f = start(&["chamber", "startups"]).await?;
    // Erika works for initech; Max for someone else.
    for (name, employer) in [("Erika Berg", "HRB 4711 Köln"), ("Max Roth", "HRB 2")] {
        f.admins[0]
            .create_mentor(CreateMentorRequest {
                mentor: Some(tandem_proto::Mentor {
                    capacity: 4,
                    ..mentor(name, employer)
                }),
            })
            .await?;
    }
    // initech is a member of both networks, spelled differently at each.
    f.enrol("initech-at-chamber", 0, "HRB 4711 Köln").await?;
    f.enrol("initech-at-startups", 1, "hrb4711 KÖLN").await?;
    for (n, company) in ["initech-at-chamber", "initech-at-startups"]
        .iter()
        .enumerate()
    {
        f.mentees
            .submit_mentee(f.as_company(company, submission(&format!("k{n}"), mentee()))?)
            .await?;
    }
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    let round = f
        .operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?
        .into_inner();
    assert_eq!(round.proposals, 2, "{round:?}");
    for company in ["initech-at-chamber", "initech-at-startups"] {
        let mentee_id = f
            .mentees
            .list_mentees(f.as_company(company, tandem_proto::ListMenteesRequest {})?)
            .await?
            .into_inner()
            .mentees
            .remove(0)
            .mentee_id;
        let proposals = f
            .mentees
            .list_proposals(f.as_company(company, ListProposalsRequest { mentee_id })?)
            .await?
            .into_inner()
            .proposals;
        let token = tandem_e2e::token("HRB 4711 Köln");
        for p in proposals {
            let m = p.mentor.expect("profile");
            assert_ne!(
                m.employer_token, token,
                "{company} got its own employer's mentor"
            );
        }
    }
    f.federation.shutdown().await;
    Ok(())
}

/// Returns the status of the refusal of a call with acme's key.
async fn acme_refused(f: &mut TestFederation) -> tonic::Status {
    let request = f
        .as_company("acme", submission("after-removal", mentee()))
        .expect("request");
    f.mentees
        .submit_mentee(request)
        .await
        .expect_err("acme's membership ended")
}

#[tokio::test]
async fn removal_revokes_the_keys_and_withdraws_waiting_mentees_but_not_tandems()
-> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(mentor("Erika Berg", "HRB 1")),
        })
        .await?;
    // acme's first mentee gets a tandem with Erika, its second a proposal for her other
    // place, its third waits.
    let mut ids = Vec::new();
    let mut proposals = Vec::new();
    for n in 0..2 {
        let m = f
            .mentees
            .submit_mentee(f.as_company("acme", submission(&format!("k{n}"), mentee()))?)
            .await?
            .into_inner();
        ids.push(m.mentee_id);
        f.operator.sync_nodes(SyncNodesRequest::default()).await?;
        f.operator
            .run_matching_round(RunMatchingRoundRequest {})
            .await?;
        f.settle().await?;
        let proposal = f
            .mentees
            .list_proposals(f.as_company(
                "acme",
                ListProposalsRequest {
                    mentee_id: ids[n].clone(),
                },
            )?)
            .await?
            .into_inner()
            .proposals
            .remove(0);
        proposals.push(proposal.proposal_id.clone());
        if n == 0 {
            f.admins[0]
                .record_decision(RecordDecisionRequest {
                    introduction_id: proposal.proposal_id.clone(),
                    decision: MentorDecision::Accepted as i32,
                })
                .await?;
            f.mentees
                .respond_to_proposal(f.as_company(
                    "acme",
                    RespondToProposalRequest {
                        proposal_id: proposal.proposal_id,
                        decision: CompanyDecision::Confirmed as i32,
                    },
                )?)
                .await?;
            f.settle().await?;
        }
    }
    let waiting = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("k2", mentee()))?)
        .await?
        .into_inner();
    ids.push(waiting.mentee_id);
    let status = |f: &TestFederation, n: usize| {
        let request = f.as_company(
            "acme",
            GetMenteeRequest {
                mentee_id: ids[n].clone(),
            },
        );
        let mut client = f.mentees.clone();
        async move { Ok::<_, anyhow::Error>(client.get_mentee(request?).await?.into_inner().status()) }
    };
    assert_eq!(status(&f, 0).await?, MenteeStatus::InTandem);
    assert_eq!(status(&f, 1).await?, MenteeStatus::Proposed);
    assert_eq!(status(&f, 2).await?, MenteeStatus::Waiting);

    // The chamber ends acme's membership; until the broker's next sync nothing changes there.
    let acme = f.companies["acme"].company_id.clone();
    let removed = f.admins[0]
        .remove_company(RemoveCompanyRequest {
            company_id: acme.clone(),
        })
        .await?
        .into_inner();
    assert!(!removed.active);
    let results = f
        .operator
        .sync_nodes(SyncNodesRequest::default())
        .await?
        .into_inner()
        .results;
    assert_eq!(results[0].memberships, 1, "{results:?}");

    // acme's key is refused with the reason; globex is untouched.
    let refused = acme_refused(&mut f).await;
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("membership ended"),
        "{}",
        refused.message()
    );
    f.mentees
        .submit_mentee(f.as_company("globex", submission("g1", mentee()))?)
        .await?;

    // The waiting and the proposed mentee were withdrawn, the tandem was not.
    let audit = f
        .operator
        .list_audit_events(ListAuditEventsRequest::default())
        .await?
        .into_inner()
        .events;
    let withdrawn: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "mentee.withdrawn")
        .map(|e| e.object_id.as_str())
        .collect();
    assert_eq!(withdrawn, [ids[1].as_str(), ids[2].as_str()], "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "membership.ended" && e.object_id == acme),
        "{audit:?}"
    );
    assert!(audit.iter().any(|e| e.action == "key.revoked"), "{audit:?}");

    // At the node: the open introduction ends (through the outbox), the tandem runs on.
    f.settle().await?;
    let introductions = f.admins[0]
        .list_introductions(ListIntroductionsRequest::default())
        .await?
        .into_inner()
        .introductions;
    let open: Vec<&str> = introductions
        .iter()
        .filter(|i| !i.closed)
        .map(|i| i.introduction_id.as_str())
        .collect();
    assert_eq!(
        open,
        [proposals[0].as_str()],
        "the proposed mentee's introduction was closed at the node"
    );
    let tandems = f.admins[0]
        .list_tandems(ListTandemsRequest::default())
        .await?
        .into_inner()
        .tandems;
    assert_eq!(tandems.len(), 1);
    assert!(
        tandems[0].ended_at_ms == 0,
        "the tandem runs on: {:?}",
        tandems[0]
    );
    let node_audit = f.admins[0]
        .list_audit_events(ListNodeAuditEventsRequest::default())
        .await?
        .into_inner()
        .events;
    assert!(
        node_audit
            .iter()
            .any(|e| e.action == "company.removed" && e.object_id == acme),
        "{node_audit:?}"
    );
    let companies = f.admins[0]
        .list_companies(ListCompaniesRequest {})
        .await?
        .into_inner()
        .companies;
    assert_eq!(companies.iter().filter(|c| c.active).count(), 1);
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn bad_admissions_are_refused_naming_the_field() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let before = f.admins[0]
        .list_companies(ListCompaniesRequest {})
        .await?
        .into_inner()
        .companies;
    let empty = f.admins[0]
        .admit_company(AdmitCompanyRequest {
            company: Some(admission("nameless", "  ")),
        })
        .await
        .expect_err("empty register number");
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(
        empty.message().starts_with("company.register_number"),
        "{}",
        empty.message()
    );
    let missing = f.admins[0]
        .admit_company(AdmitCompanyRequest { company: None })
        .await
        .expect_err("no company");
    assert_eq!(missing.code(), Code::InvalidArgument);
    // acme's register number, written differently, for another company.
    let duplicate = f.admins[0]
        .admit_company(AdmitCompanyRequest {
            company: Some(admission("impostor", "hrb 9 berlin")),
        })
        .await
        .expect_err("a register number in use");
    assert_eq!(duplicate.code(), Code::AlreadyExists, "{duplicate:?}");
    assert!(
        duplicate.message().contains("company.register_number"),
        "{}",
        duplicate.message()
    );
    let after = f.admins[0]
        .list_companies(ListCompaniesRequest {})
        .await?
        .into_inner()
        .companies;
    assert_eq!(before, after, "nothing stored");
    f.federation.shutdown().await;
    Ok(())
}
