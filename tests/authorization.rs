//! Callers and scopes at the broker: every company RPC against another company's objects, every
//! operator RPC with a company key and every company RPC with the operator's key is refused —
//! `NOT_FOUND` or `PERMISSION_DENIED`, never with the other tenant's data in the message — and
//! a caller over its rate is slowed down without slowing anyone else.

use tandem_cli::demo::federation::{Bearer, demo_key};
use tandem_e2e::{as_company, mentee, mentor, start, submission};
use tandem_proto::mentee_service_client::MenteeServiceClient;
use tandem_proto::operator_service_client::OperatorServiceClient;
use tandem_proto::{
    CompanyDecision, CreateMentorRequest, GetContactCardRequest, GetMenteeRequest,
    GetNetworkStatsRequest, ListAuditEventsRequest, ListMenteesRequest, ListNodesRequest,
    ListProposalsRequest, RegisterNodeRequest, RespondToProposalRequest, RunMatchingRoundRequest,
    SyncNodesRequest, WithdrawMenteeRequest,
};
use tonic::Code;

fn globex<T>(message: T) -> anyhow::Result<tonic::Request<T>> {
    as_company("globex", message)
}

fn refused(result: Result<tonic::Status, ()>, expected: &[Code], secret: &str, what: &str) {
    let Ok(status) = result else {
        panic!("{what}: not refused")
    };
    assert!(expected.contains(&status.code()), "{what}: {status:?}");
    assert!(
        !status.message().contains(secret),
        "{what} leaks: {status:?}"
    );
}

#[tokio::test]
async fn every_rpc_refuses_every_foreign_caller() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(mentor("Erika Berg", "HRB 1")),
        })
        .await?;
    let own = f
        .mentees
        .submit_mentee(as_company(
            "acme",
            submission("k1", mentee("HRB 9", "chamber")),
        )?)
        .await?
        .into_inner();
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    f.operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?;
    let proposal = f
        .mentees
        .list_proposals(as_company(
            "acme",
            ListProposalsRequest {
                mentee_id: own.mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner()
        .proposals
        .remove(0);
    let (m, p) = (own.mentee_id.clone(), proposal.proposal_id.clone());

    // Another company: every object of acme is NOT_FOUND, and its lists are empty.
    let c = &mut f.mentees;
    let not_found = [Code::NotFound];
    refused(
        c.get_mentee(globex(GetMenteeRequest {
            mentee_id: m.clone(),
        })?)
        .await
        .err()
        .ok_or(()),
        &not_found,
        &m,
        "get_mentee",
    );
    refused(
        c.withdraw_mentee(globex(WithdrawMenteeRequest {
            mentee_id: m.clone(),
        })?)
        .await
        .err()
        .ok_or(()),
        &not_found,
        &m,
        "withdraw_mentee",
    );
    refused(
        c.list_proposals(globex(ListProposalsRequest {
            mentee_id: m.clone(),
        })?)
        .await
        .err()
        .ok_or(()),
        &not_found,
        &m,
        "list_proposals",
    );
    let respond = RespondToProposalRequest {
        proposal_id: p.clone(),
        decision: CompanyDecision::Confirmed as i32,
    };
    refused(
        c.respond_to_proposal(globex(respond)?)
            .await
            .err()
            .ok_or(()),
        &not_found,
        &p,
        "respond_to_proposal",
    );
    refused(
        c.get_contact_card(globex(GetContactCardRequest {
            proposal_id: p.clone(),
        })?)
        .await
        .err()
        .ok_or(()),
        &not_found,
        &p,
        "get_contact_card",
    );
    assert!(
        c.list_mentees(globex(ListMenteesRequest {})?)
            .await?
            .into_inner()
            .mentees
            .is_empty()
    );

    // The operator's key is not a company's.
    let mut as_operator = MenteeServiceClient::with_interceptor(
        tonic::transport::Endpoint::from_shared(f.federation.broker_endpoint())?
            .connect()
            .await?,
        Bearer::new(&demo_key("operator"))?,
    );
    let denied = [Code::PermissionDenied];
    refused(
        as_operator
            .list_mentees(ListMenteesRequest {})
            .await
            .err()
            .ok_or(()),
        &denied,
        &m,
        "operator as company",
    );
    refused(
        as_operator
            .get_mentee(GetMenteeRequest {
                mentee_id: m.clone(),
            })
            .await
            .err()
            .ok_or(()),
        &denied,
        &m,
        "operator as company",
    );

    // A company's key is not the operator's: every OperatorService RPC is denied.
    let mut as_acme = OperatorServiceClient::with_interceptor(
        tonic::transport::Endpoint::from_shared(f.federation.broker_endpoint())?
            .connect()
            .await?,
        Bearer::new(&demo_key("acme"))?,
    );
    let register = RegisterNodeRequest {
        node_id: "rogue".into(),
        endpoint: "https://127.0.0.1:1".into(),
        display_name: "x".into(),
        ..Default::default()
    };
    refused(
        as_acme.register_node(register).await.err().ok_or(()),
        &denied,
        "rogue",
        "register_node",
    );
    refused(
        as_acme
            .list_nodes(ListNodesRequest {})
            .await
            .err()
            .ok_or(()),
        &denied,
        "chamber",
        "list_nodes",
    );
    refused(
        as_acme
            .sync_nodes(SyncNodesRequest::default())
            .await
            .err()
            .ok_or(()),
        &denied,
        "chamber",
        "sync_nodes",
    );
    refused(
        as_acme
            .run_matching_round(RunMatchingRoundRequest {})
            .await
            .err()
            .ok_or(()),
        &denied,
        "round",
        "run_matching_round",
    );
    refused(
        as_acme
            .get_network_stats(GetNetworkStatsRequest {})
            .await
            .err()
            .ok_or(()),
        &denied,
        "chamber",
        "get_network_stats",
    );
    refused(
        as_acme
            .list_audit_events(ListAuditEventsRequest::default())
            .await
            .err()
            .ok_or(()),
        &denied,
        &m,
        "list_audit_events",
    );

    // No key, a made-up key: unauthenticated, and the same answer for both.
    let mut anonymous = MenteeServiceClient::connect(f.federation.broker_endpoint()).await?;
    let status = anonymous
        .list_mentees(ListMenteesRequest {})
        .await
        .expect_err("no key");
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut forged = tonic::Request::new(ListMenteesRequest {});
    forged.metadata_mut().insert(
        "authorization",
        "Bearer tdm_dnothere_0123456789abcdef0123456789abcdef".parse()?,
    );
    assert_eq!(
        anonymous
            .list_mentees(forged)
            .await
            .expect_err("forged")
            .code(),
        Code::Unauthenticated
    );

    // The rightful company still sees its mentee, untouched by all of the above.
    let mine = f
        .mentees
        .get_mentee(as_company("acme", GetMenteeRequest { mentee_id: m })?)
        .await?
        .into_inner();
    assert_eq!(mine.status, own.status + 1, "proposed, not withdrawn");
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_caller_over_its_rate_gets_resource_exhausted_and_others_do_not() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let mut exhausted = false;
    // The default allows bursts of 200 requests; a tight loop of 400 runs past it.
    for _ in 0..400 {
        match f
            .mentees
            .list_mentees(as_company("acme", ListMenteesRequest {})?)
            .await
        {
            Ok(_) => {}
            Err(status) if status.code() == Code::ResourceExhausted => {
                exhausted = true;
                break;
            }
            Err(status) => anyhow::bail!("unexpected {status:?}"),
        }
    }
    assert!(exhausted, "acme was never limited");
    f.mentees
        .list_mentees(as_company("globex", ListMenteesRequest {})?)
        .await?;
    f.operator.list_nodes(ListNodesRequest {}).await?;
    f.federation.shutdown().await;
    Ok(())
}
