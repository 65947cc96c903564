//! The whole path of one mentee over real gRPC and a real database: submitted by a member
//! company of one node, matched with a mentor on another node, introduced at the node, accepted
//! by the mentor, confirmed by the company, and the contact card relayed — and another company
//! sees none of it.

mod support;

use support::{ACME, GLOBEX, Harness, TestNode, mentee, mentor, submission};
use tandem_proto::{
    CareerLevel, CompanyDecision, GetContactCardRequest, GetMenteeRequest, GetNetworkStatsRequest,
    ListMenteesRequest, ListNodesRequest, ListProposalsRequest, MenteeStatus, MentorDecision,
    ProposalStatus, RespondToProposalRequest, RunMatchingRoundRequest, SyncNodesRequest, Topic,
    WithdrawMenteeRequest,
};
use tonic::Code;

async fn main_flow(harness: &Harness) {
    let assoc = TestNode::start("assoc").await;
    let director = mentor(
        1,
        CareerLevel::Director,
        &[Topic::Leadership, Topic::Financing],
    );
    assoc.publish(director.clone());
    assoc.publish(mentor(
        2,
        CareerLevel::HeadOfDepartment,
        &[Topic::Marketing],
    ));
    harness.register(&assoc).await;
    let mut operator = harness.operator();
    let mut acme = harness.company(ACME);
    let mut globex = harness.company(GLOBEX);

    let submitted = acme
        .submit_mentee(submission("order-1", mentee()))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(submitted.status, MenteeStatus::Waiting as i32);
    assert_eq!(submitted.home_node_id, support::HOME, "the company's node");

    let synced = operator
        .sync_nodes(SyncNodesRequest::default())
        .await
        .expect("sync")
        .into_inner()
        .results;
    assert_eq!(synced.len(), 2);
    let assoc_sync = synced.iter().find(|r| r.node_id == "assoc").expect("assoc");
    assert_eq!((assoc_sync.upserts, assoc_sync.error.as_str()), (2, ""));
    let nodes = operator
        .list_nodes(ListNodesRequest {})
        .await
        .expect("nodes")
        .into_inner()
        .nodes;
    let assoc_row = nodes.iter().find(|n| n.node_id == "assoc").expect("assoc");
    assert_eq!((assoc_row.profiles, assoc_row.free_capacity), (2, 4));
    assert!(assoc_row.last_sync_at_ms > 0);

    let round = operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await
        .expect("round")
        .into_inner();
    assert_eq!(round.mentees_considered, 1);
    assert_eq!(round.proposals, 1);
    assert_eq!(round.cross_node_proposals, 1);
    assert!(round.objective > 0);

    let proposals = acme
        .list_proposals(ListProposalsRequest {
            mentee_id: submitted.mentee_id.clone(),
        })
        .await
        .expect("proposals")
        .into_inner()
        .proposals;
    assert_eq!(proposals.len(), 1);
    let proposal = &proposals[0];
    assert_eq!(proposal.status, ProposalStatus::Open as i32);
    assert_eq!(proposal.node_id, "assoc");
    assert_eq!(proposal.round_id, round.round_id);
    let snapshot = proposal.mentor.as_ref().expect("profile snapshot");
    assert_eq!(snapshot.pseudonym, director.pseudonym);
    assert!(
        proposal
            .reasons
            .iter()
            .any(|r| r.criterion == "goal_coverage")
    );

    // The introduction reaches the node once the outbox settled.
    assert_eq!(harness.settle().await, 1);
    let intro = assoc
        .introduction(&proposal.proposal_id)
        .expect("introduction delivered");
    assert_eq!(intro.request.pseudonym, director.pseudonym);
    assert_eq!(intro.request.score, proposal.score);
    let summary = intro.request.mentee.as_ref().expect("summary");
    assert_eq!(summary.career_level, CareerLevel::TeamLead as i32);
    assert!(
        summary.region.is_empty(),
        "remote mentees keep their region"
    );
    assert_eq!(
        acme.get_mentee(GetMenteeRequest {
            mentee_id: submitted.mentee_id.clone()
        })
        .await
        .expect("mentee")
        .into_inner()
        .status,
        MenteeStatus::Proposed as i32
    );

    // Another company sees nothing of it.
    let id = || submitted.mentee_id.clone();
    let pid = || proposal.proposal_id.clone();
    let codes = [
        globex
            .get_mentee(GetMenteeRequest { mentee_id: id() })
            .await
            .map(drop),
        globex
            .list_proposals(ListProposalsRequest { mentee_id: id() })
            .await
            .map(drop),
        globex
            .respond_to_proposal(RespondToProposalRequest {
                proposal_id: pid(),
                decision: CompanyDecision::Declined as i32,
            })
            .await
            .map(drop),
        globex
            .get_contact_card(GetContactCardRequest { proposal_id: pid() })
            .await
            .map(drop),
        globex
            .withdraw_mentee(WithdrawMenteeRequest { mentee_id: id() })
            .await
            .map(drop),
    ];
    for result in codes {
        assert_eq!(
            result.expect_err("another company's").code(),
            Code::NotFound
        );
    }
    assert!(
        globex
            .list_mentees(ListMenteesRequest {})
            .await
            .expect("list")
            .into_inner()
            .mentees
            .is_empty()
    );

    // No card before the double opt-in.
    let early = acme
        .get_contact_card(GetContactCardRequest { proposal_id: pid() })
        .await
        .expect_err("no card yet");
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert_eq!(
        early.message(),
        "contact card is released only after both sides accepted: \
         the mentor has not accepted yet and the company has not confirmed yet"
    );

    assoc.decide(&proposal.proposal_id, MentorDecision::Accepted);
    let synced = operator
        .sync_nodes(SyncNodesRequest {
            node_id: "assoc".into(),
        })
        .await
        .expect("sync")
        .into_inner()
        .results;
    assert_eq!(synced[0].decisions, 1);
    let still_open = acme
        .get_contact_card(GetContactCardRequest { proposal_id: pid() })
        .await
        .expect_err("company has not confirmed");
    assert_eq!(still_open.code(), Code::FailedPrecondition);

    let confirmed = acme
        .respond_to_proposal(RespondToProposalRequest {
            proposal_id: pid(),
            decision: CompanyDecision::Confirmed as i32,
        })
        .await
        .expect("confirm")
        .into_inner();
    assert_eq!(confirmed.status, ProposalStatus::Tandem as i32);
    assert_eq!(confirmed.mentor_decision, MentorDecision::Accepted as i32);
    let again = acme
        .respond_to_proposal(RespondToProposalRequest {
            proposal_id: pid(),
            decision: CompanyDecision::Declined as i32,
        })
        .await
        .expect_err("no longer open");
    assert_eq!(again.code(), Code::FailedPrecondition);

    let card = acme
        .get_contact_card(GetContactCardRequest { proposal_id: pid() })
        .await
        .expect("card")
        .into_inner();
    assert_eq!(card, support::node::card_for("assoc", &director.pseudonym));
    assert!(
        assoc
            .introduction(&proposal.proposal_id)
            .expect("intro")
            .released
    );
    assert_eq!(
        acme.get_mentee(GetMenteeRequest { mentee_id: id() })
            .await
            .expect("mentee")
            .into_inner()
            .status,
        MenteeStatus::InTandem as i32
    );

    let stats = operator
        .get_network_stats(GetNetworkStatsRequest {})
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(stats.mentees_in_tandem, 1);
    assert_eq!(stats.tandems, 1);
    assert_eq!(stats.cross_node_tandems, 1);
    assert_eq!(stats.proposals_open, 0);
    assert_eq!(stats.matching_rounds, 1);
    let assoc_stats = stats
        .nodes
        .iter()
        .find(|n| n.node_id == "assoc")
        .expect("assoc");
    assert_eq!((assoc_stats.profiles, assoc_stats.tandems), (2, 1));

    assoc.stop().await;
}

#[tokio::test]
async fn a_mentee_reaches_a_tandem_on_sqlite_and_the_card_is_not_kept() {
    let harness = Harness::sqlite().await;
    main_flow(&harness).await;
    // The contact card passed through the broker: nothing of it may be in its database files
    // (the main file, the write-ahead log and its index).
    let email = support::node::card_for("assoc", &support::token(1001)).email;
    let dir = harness.dir.as_ref().expect("tempdir").path();
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let Ok(bytes) = std::fs::read(entry.expect("entry").path()) else {
            continue;
        };
        files += 1;
        let hit = bytes.windows(email.len()).any(|w| w == email.as_bytes());
        assert!(!hit, "the broker stored the mentor's e-mail");
    }
    assert!(files >= 1);
    harness.stop().await;
}

#[tokio::test]
async fn a_mentee_reaches_a_tandem_on_postgres() {
    let Ok(server) = std::env::var("TANDEM_TEST_POSTGRES_URL") else {
        eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the PostgreSQL variant");
        return;
    };
    let url = tandem_storage::create_scratch_database(&server, "tandem_broker")
        .await
        .expect("scratch database");
    let harness = Harness::start(support::quiet_config(&url), None).await;
    main_flow(&harness).await;
    harness.stop().await;
}
