//! Callers and scopes at the broker: every company RPC against another company's objects, every
//! operator RPC with a company key and every company RPC with the operator's key is refused —
//! `NOT_FOUND` or `PERMISSION_DENIED`, never with the other tenant's data in the message — and
//! a caller over its rate is slowed down without slowing anyone else. At the nodes, every
//! `NodeAdminService` RPC refuses every key but a staff key of that very node.

use tandem_cli::demo::federation::{Bearer, NodeAdminClient, demo_key, demo_staff_key};
use tandem_e2e::{mentee, mentor, start, submission};
use tandem_proto::mentee_service_client::MenteeServiceClient;
use tandem_proto::node_admin_service_client::NodeAdminServiceClient;
use tandem_proto::operator_service_client::OperatorServiceClient;
use tandem_proto::{
    CompanyDecision, CreateMentorRequest, DropDeadLetterRequest, GetContactCardRequest,
    GetMenteeRequest, GetNetworkStatsRequest, ListAuditEventsRequest, ListDeadLettersRequest,
    ListMenteesRequest, ListNodesRequest, ListProposalsRequest, RegisterNodeRequest,
    RespondToProposalRequest, RetryDeadLetterRequest, RunMatchingRoundRequest, SyncNodesRequest,
    WithdrawMenteeRequest,
};
use tandem_proto::{
    GetMentorRequest, GetPublicationReportRequest, ListIntroductionsRequest, ListMentorsRequest,
    ListNodeAuditEventsRequest, MentorDecision, RecordDecisionRequest, RemoveMentorRequest,
    UpdateMentorRequest,
};
use tonic::Code;

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
        .submit_mentee(f.as_company("acme", submission("k1", mentee()))?)
        .await?
        .into_inner();
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    f.operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?;
    let proposal = f
        .mentees
        .list_proposals(f.as_company(
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
    let globex_key = f.companies["globex"].api_key.clone();
    let c = &mut f.mentees;
    let not_found = [Code::NotFound];
    refused(
        c.get_mentee(tandem_e2e::with_key(
            &globex_key,
            GetMenteeRequest {
                mentee_id: m.clone(),
            },
        )?)
        .await
        .err()
        .ok_or(()),
        &not_found,
        &m,
        "get_mentee",
    );
    refused(
        c.withdraw_mentee(tandem_e2e::with_key(
            &globex_key,
            WithdrawMenteeRequest {
                mentee_id: m.clone(),
            },
        )?)
        .await
        .err()
        .ok_or(()),
        &not_found,
        &m,
        "withdraw_mentee",
    );
    refused(
        c.list_proposals(tandem_e2e::with_key(
            &globex_key,
            ListProposalsRequest {
                mentee_id: m.clone(),
            },
        )?)
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
        c.respond_to_proposal(tandem_e2e::with_key(&globex_key, respond)?)
            .await
            .err()
            .ok_or(()),
        &not_found,
        &p,
        "respond_to_proposal",
    );
    refused(
        c.get_contact_card(tandem_e2e::with_key(
            &globex_key,
            GetContactCardRequest {
                proposal_id: p.clone(),
            },
        )?)
        .await
        .err()
        .ok_or(()),
        &not_found,
        &p,
        "get_contact_card",
    );
    assert!(
        c.list_mentees(tandem_e2e::with_key(&globex_key, ListMenteesRequest {})?)
            .await?
            .into_inner()
            .mentees
            .is_empty()
    );

    // The operator's key is not a company's.
    let mut as_operator = MenteeServiceClient::with_interceptor(
        f.federation
            .channel(&f.federation.broker_endpoint())
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
        f.federation
            .channel(&f.federation.broker_endpoint())
            .await?,
        Bearer::new(&f.companies["acme"].api_key)?,
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
    refused(
        as_acme
            .list_dead_letters(ListDeadLettersRequest::default())
            .await
            .err()
            .ok_or(()),
        &denied,
        "chamber",
        "list_dead_letters",
    );
    refused(
        as_acme
            .retry_dead_letter(RetryDeadLetterRequest { message_id: 1 })
            .await
            .err()
            .ok_or(()),
        &denied,
        "chamber",
        "retry_dead_letter",
    );
    refused(
        as_acme
            .drop_dead_letter(DropDeadLetterRequest { message_id: 1 })
            .await
            .err()
            .ok_or(()),
        &denied,
        "chamber",
        "drop_dead_letter",
    );

    // No key, a made-up key: unauthenticated, and the same answer for both.
    let mut anonymous = f.federation.mentee_client().await?;
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
        .get_mentee(f.as_company("acme", GetMenteeRequest { mentee_id: m })?)
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
    // The default allows bursts of 200 requests at 50 per second; 400 requests sent at once
    // run past it however slowly the machine answers them.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let mut client = f.mentees.clone();
        let request = f.as_company("acme", ListMenteesRequest {})?;
        calls.spawn(async move { client.list_mentees(request).await });
    }
    while let Some(answer) = calls.join_next().await {
        match answer? {
            Ok(_) => {}
            Err(status) if status.code() == Code::ResourceExhausted => exhausted = true,
            Err(status) => anyhow::bail!("unexpected {status:?}"),
        }
    }
    assert!(exhausted, "acme was never limited");
    f.mentees
        .list_mentees(f.as_company("globex", ListMenteesRequest {})?)
        .await?;
    f.operator.list_nodes(ListNodesRequest {}).await?;
    f.federation.shutdown().await;
    Ok(())
}

/// Calls every `NodeAdminService` RPC against `mentor_id` and returns each answer's status
/// (`None` for a success).
async fn every_admin_rpc(
    client: &mut NodeAdminClient,
    mentor_id: &str,
) -> Vec<(&'static str, Option<tonic::Status>)> {
    let mut with_id = mentor("Eve Intruder", "HRB 666");
    with_id.id = mentor_id.to_owned();
    vec![
        (
            "create_mentor",
            client
                .create_mentor(CreateMentorRequest {
                    mentor: Some(mentor("Eve Intruder", "HRB 666")),
                })
                .await
                .err(),
        ),
        (
            "update_mentor",
            client
                .update_mentor(UpdateMentorRequest {
                    mentor: Some(with_id),
                })
                .await
                .err(),
        ),
        (
            "get_mentor",
            client
                .get_mentor(GetMentorRequest {
                    mentor_id: mentor_id.to_owned(),
                })
                .await
                .err(),
        ),
        (
            "list_mentors",
            client.list_mentors(ListMentorsRequest {}).await.err(),
        ),
        (
            "list_introductions",
            client
                .list_introductions(ListIntroductionsRequest::default())
                .await
                .err(),
        ),
        (
            "record_decision",
            client
                .record_decision(RecordDecisionRequest {
                    introduction_id: "any".into(),
                    decision: MentorDecision::Accepted as i32,
                })
                .await
                .err(),
        ),
        (
            "get_publication_report",
            client
                .get_publication_report(GetPublicationReportRequest {})
                .await
                .err(),
        ),
        (
            "list_audit_events",
            client
                .list_audit_events(ListNodeAuditEventsRequest::default())
                .await
                .err(),
        ),
        (
            "remove_mentor",
            client
                .remove_mentor(RemoveMentorRequest {
                    mentor_id: mentor_id.to_owned(),
                })
                .await
                .err(),
        ),
    ]
}

#[tokio::test]
async fn node_admin_service_accepts_only_a_staff_key_of_that_node() -> anyhow::Result<()> {
    let mut f = start(&["chamber", "guild"]).await?;
    let erika = f.admins[1]
        .create_mentor(CreateMentorRequest {
            mentor: Some(mentor("Erika Berg", "HRB 1")),
        })
        .await?
        .into_inner();
    let guild = f.federation.nodes[1].admin_endpoint();

    // The chamber's staff key, the companies' and the operator's broker keys, a made-up key:
    // at the guild every RPC is UNAUTHENTICATED with the same message, which names nothing.
    for (who, key) in [
        ("chamber staff", demo_staff_key("chamber")),
        ("company acme", f.companies["acme"].api_key.clone()),
        ("operator", demo_key("operator")),
        (
            "made up",
            "tdm_kmadeup_0123456789abcdef0123456789abcdef".to_owned(),
        ),
    ] {
        let channel = f.federation.channel(&guild).await?;
        let mut client = NodeAdminServiceClient::with_interceptor(channel, Bearer::new(&key)?);
        for (rpc, answer) in every_admin_rpc(&mut client, &erika.id).await {
            let status = answer.unwrap_or_else(|| panic!("{who}: {rpc} was not refused"));
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{who}: {rpc}: {status:?}"
            );
            assert_eq!(status.message(), "invalid api key", "{who}: {rpc}");
            for secret in [erika.id.as_str(), "Erika", "guild", "chamber"] {
                assert!(!status.message().contains(secret), "{who}: {rpc} leaks");
            }
        }
    }
    // Without any key, too.
    let mut anonymous = NodeAdminServiceClient::new(f.federation.channel(&guild).await?);
    let status = anonymous
        .list_mentors(ListMentorsRequest {})
        .await
        .expect_err("no key");
    assert_eq!(status.code(), Code::Unauthenticated);

    // Nothing changed, and the guild's own staff still get in.
    let mentors = f.admins[1]
        .list_mentors(ListMentorsRequest {})
        .await?
        .into_inner()
        .mentors;
    assert_eq!(mentors, vec![erika.clone()]);
    let own = every_admin_rpc(&mut f.admins[1], &erika.id).await;
    for (rpc, answer) in &own {
        if let Some(status) = answer {
            assert_ne!(status.code(), Code::Unauthenticated, "{rpc}: {status:?}");
        }
    }
    f.federation.shutdown().await;
    Ok(())
}
