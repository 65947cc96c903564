//! Memberships from the nodes' feeds: a removal ends the company at the broker (keys refused
//! with the reason, waiting and proposed mentees withdrawn, introductions closed, tandems left
//! running), a company admitted by two nodes is one employer for the conflict check, and a node
//! cannot publish another node's company or a malformed membership.

mod support;

use support::node::employer_token;
use support::{ACME, GLOBEX, HOME, Harness, TestNode, mentee, mentor, submission};
use tandem_broker::BrokerError;
use tandem_proto::{
    CareerLevel, CompanyDecision, EnrolCompanyRequest, ListMenteesRequest, Membership,
    MenteeStatus, MentorDecision, ProposalStatus, Topic,
};
use tandem_service::ServiceError;
use tonic::Code;

async fn harness() -> Harness {
    Harness::from_env("tandem_membership", |_| {}).await
}

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

async fn submit(harness: &Harness, company: &str, key: &str) -> String {
    harness
        .broker
        .submit_mentee(company, submission(key, mentee()))
        .await
        .expect("submit")
        .mentee_id
}

async fn status(harness: &Harness, company: &str, id: &str) -> i32 {
    harness
        .broker
        .get_mentee(company, id)
        .await
        .expect("mentee")
        .status
}

/// Returns the audit entries of `action` as (actor, object id, detail).
async fn audited(harness: &Harness, action: &str) -> Vec<(String, String, String)> {
    harness
        .broker
        .list_audit_events(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| (e.actor, e.object_id, e.detail))
        .collect()
}

#[tokio::test]
async fn a_removed_company_loses_its_keys_and_its_mentees_leave_matching_but_tandems_run_on() {
    let harness = harness().await;
    let assoc = two_mentors(&harness).await;
    let in_tandem = submit(&harness, ACME, "in-tandem").await;
    let proposed = submit(&harness, ACME, "proposed").await;
    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!(round.proposals, 2, "{round:?}");
    harness.settle().await;
    let proposal = |m: String| {
        let broker = harness.broker.clone();
        async move { broker.list_proposals(ACME, &m).await.expect("list")[0].clone() }
    };
    let tandem_proposal = proposal(in_tandem.clone()).await;
    let open_proposal = proposal(proposed.clone()).await;
    assoc.decide(&tandem_proposal.proposal_id, MentorDecision::Accepted);
    harness.broker.sync_nodes(None).await.expect("sync");
    let confirmed = harness
        .broker
        .respond_to_proposal(
            ACME,
            &tandem_proposal.proposal_id,
            CompanyDecision::Confirmed as i32,
        )
        .await
        .expect("confirm");
    assert_eq!(confirmed.status, ProposalStatus::Tandem as i32);
    let waiting = submit(&harness, ACME, "waiting").await;
    let other = submit(&harness, GLOBEX, "other").await;

    harness.home.remove(ACME);
    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    let home = synced.iter().find(|r| r.node_id == HOME).expect("home");
    assert_eq!((home.memberships, home.error.as_str()), (1, ""), "{home:?}");

    // The key is refused with the reason, whatever the company calls.
    let refused = harness
        .company(ACME)
        .list_mentees(ListMenteesRequest {})
        .await
        .expect_err("membership ended");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(refused.message(), "membership ended");
    // A key that escaped revocation still cannot submit.
    let err = harness
        .broker
        .submit_mentee(ACME, submission("late", mentee()))
        .await
        .expect_err("membership ended");
    assert!(matches!(err, BrokerError::MembershipEnded), "{err:?}");
    assert_eq!(err.code(), tandem_service::ErrorCode::PermissionDenied);
    assert!(err.to_string().starts_with("membership ended: "), "{err}");

    // Waiting and proposed mentees are withdrawn, and the mentor's node heard of it; the
    // tandem runs on.
    assert_eq!(
        status(&harness, ACME, &waiting).await,
        MenteeStatus::Withdrawn as i32
    );
    assert_eq!(
        status(&harness, ACME, &proposed).await,
        MenteeStatus::Withdrawn as i32
    );
    assert_eq!(
        proposal(proposed.clone()).await.status,
        ProposalStatus::Withdrawn as i32
    );
    harness.settle().await;
    let intro = assoc
        .introduction(&open_proposal.proposal_id)
        .expect("intro");
    assert_eq!(intro.closed.as_deref(), Some("mentee_withdrawn"));
    assert_eq!(
        status(&harness, ACME, &in_tandem).await,
        MenteeStatus::InTandem as i32
    );
    let tandems = harness
        .broker
        .list_tandems(ACME, "")
        .await
        .expect("tandems");
    assert_eq!(tandems.len(), 1);
    assert_eq!(tandems[0].ended_at_ms, 0, "the tandem runs on");
    let tandem_intro = assoc
        .introduction(&tandem_proposal.proposal_id)
        .expect("intro");
    assert_eq!(tandem_intro.closed, None);

    // Another member company is not touched.
    assert_eq!(
        status(&harness, GLOBEX, &other).await,
        MenteeStatus::Waiting as i32
    );
    submit(&harness, GLOBEX, "still-member").await;

    // Every step is in the audit log.
    let ended = audited(&harness, "membership.ended").await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!((ended[0].0.as_str(), ended[0].1.as_str()), ("broker", ACME));
    assert!(
        ended[0]
            .2
            .contains("revoked_keys=1 withdrawn_mentees=2 ended_proposals=1"),
        "{ended:?}"
    );
    let mut withdrawn: Vec<(String, String, String)> = audited(&harness, "mentee.withdrawn").await;
    withdrawn.sort();
    let mut expected = [proposed.clone(), waiting.clone()]
        .map(|id| ("broker".to_owned(), id, "membership_ended".to_owned()))
        .to_vec();
    expected.sort();
    assert_eq!(withdrawn, expected);
    let revoked = audited(&harness, "key.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        (revoked[0].0.as_str(), revoked[0].2.as_str()),
        ("broker", "membership ended")
    );

    // The next sync has nothing to apply.
    let synced = harness.broker.sync_nodes(Some(HOME)).await.expect("sync");
    assert_eq!(synced[0].memberships, 0);
    assert_eq!(audited(&harness, "membership.ended").await.len(), 1);
    assoc.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_company_admitted_by_two_nodes_is_never_proposed_a_mentor_of_its_own() {
    let harness = harness().await;
    let register = "HRB 900 Doppelt";
    let assoc = TestNode::start("assoc").await;
    let mut own = mentor(
        1,
        CareerLevel::Director,
        &[Topic::Leadership, Topic::Financing],
    );
    own.employer_token = employer_token(register);
    own.group_token = employer_token(register);
    assoc.publish(own.clone());
    assoc.publish(mentor(
        2,
        CareerLevel::HeadOfDepartment,
        &[Topic::Leadership],
    ));
    let chamber = TestNode::start("chamber").await;
    let at_assoc = assoc.admit(register);
    let at_chamber = chamber.admit(register);
    harness.register(&assoc).await;
    harness.register(&chamber).await;
    harness.broker.sync_nodes(None).await.expect("sync");

    let mut companies = Vec::new();
    for code in [&at_assoc.code, &at_chamber.code] {
        let enrolled = harness
            .broker
            .enrol_company(
                None,
                EnrolCompanyRequest {
                    enrolment_code: code.clone(),
                    label: String::new(),
                },
            )
            .await
            .expect("enrol");
        companies.push(enrolled.company_id);
    }
    let mut own_mentees = Vec::new();
    for company in &companies {
        own_mentees.push((company, submit(&harness, company, "k").await));
    }
    let globex = submit(&harness, GLOBEX, "k").await;

    let round = harness.broker.run_matching_round().await.expect("round");
    assert_eq!(round.proposals, 3, "{round:?}");
    for (company, m) in own_mentees {
        let proposals = harness
            .broker
            .list_proposals(company, &m)
            .await
            .expect("list");
        assert_eq!(proposals.len(), 1);
        let proposed = proposals[0].mentor.as_ref().expect("mentor");
        assert_ne!(
            proposed.pseudonym, own.pseudonym,
            "a mentor of its own employer"
        );
    }
    // The director was free and the better match: only the conflict kept them apart.
    let proposals = harness
        .broker
        .list_proposals(GLOBEX, &globex)
        .await
        .expect("list");
    assert_eq!(
        proposals[0].mentor.as_ref().expect("mentor").pseudonym,
        own.pseudonym
    );
    assoc.stop().await;
    chamber.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_node_cannot_publish_another_nodes_company_or_a_malformed_membership() {
    let harness = harness().await;
    let chamber = TestNode::start("chamber").await;
    let token = employer_token("HRB 1 Fremd");
    chamber.publish_membership(Membership {
        company_id: ACME.to_owned(),
        employer_token: token.clone(),
        group_token: token.clone(),
        enrolment_code_hash: String::new(),
        enrolment_code_expires_at_ms: 0,
        active: false,
        version: 0,
    });
    let garbage = TestNode::start("garbage").await;
    garbage.admit("HRB 2 Gut");
    garbage.publish_membership(Membership {
        company_id: "not-a-uuid".to_owned(),
        employer_token: "nope".to_owned(),
        group_token: token,
        enrolment_code_hash: String::new(),
        enrolment_code_expires_at_ms: 0,
        active: true,
        version: 0,
    });
    harness.register(&chamber).await;
    harness.register(&garbage).await;

    let synced = harness.broker.sync_nodes(None).await.expect("sync");
    let result = |id: &str| synced.iter().find(|r| r.node_id == id).expect("result");
    let claimed = result("chamber");
    assert_eq!(claimed.memberships, 0);
    assert!(
        claimed.error.contains("node chamber") && claimed.error.contains("belongs to node home"),
        "{}",
        claimed.error
    );
    let malformed = result("garbage");
    assert_eq!(malformed.memberships, 0, "the whole page is rejected");
    for field in ["memberships[1].company_id", "memberships[1].employer_token"] {
        assert!(malformed.error.contains(field), "{}", malformed.error);
    }
    // ACME is still a member of home and submits as before.
    submit(&harness, ACME, "k").await;
    let nodes = harness.broker.list_nodes().await.expect("nodes");
    let chamber_row = nodes.iter().find(|n| n.node_id == "chamber").expect("row");
    assert_eq!(chamber_row.last_error, claimed.error);
    chamber.stop().await;
    garbage.stop().await;
    harness.stop().await;
}
