//! The node over real gRPC: `serve` on an ephemeral port, the generated clients of both
//! services, and the status codes a caller sees.

mod common;

use common::{STAFF_KEY, admin_client, erika, introduction, sqlite_node};
use tandem_proto::ListNodeAuditEventsRequest;
use tandem_proto::node_admin_service_client::NodeAdminServiceClient;
use tandem_proto::node_service_client::NodeServiceClient;
use tandem_proto::profile_change::Change;
use tandem_proto::{
    CloseIntroductionRequest, CreateMentorRequest, ForgetMenteeRequest, GetDecisionRequest,
    GetDecisionsRequest, GetMentorRequest, GetNodeInfoRequest, GetProfileChangesRequest,
    ListIntroductionsRequest, ListMentorsRequest, Mentor, MentorDecision, RecordDecisionRequest,
    ReleaseContactCardRequest, RemoveMentorRequest, UpdateMentorRequest,
};
use tokio::net::TcpListener;
use tonic::Code;

#[tokio::test]
async fn broker_and_staff_talk_to_a_served_node() {
    let node = sqlite_node().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tandem_node::serve(node.state.clone(), listener, async {
        let _ = stopped.await;
    }));

    let endpoint = format!("http://{addr}");
    let mut admin = admin_client(endpoint.clone(), STAFF_KEY).await;
    let mut broker = NodeServiceClient::connect(endpoint).await.expect("client");

    // Staff create a mentor; a bad record is refused naming the field.
    let status = admin
        .create_mentor(CreateMentorRequest {
            mentor: Some(Mentor {
                capacity: 0,
                ..erika()
            }),
        })
        .await
        .expect_err("capacity 0");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "mentor.capacity: must be 1 to 10, got 0");
    let status = admin
        .create_mentor(CreateMentorRequest { mentor: None })
        .await
        .expect_err("no mentor");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "mentor: is required");

    let mentor = admin
        .create_mentor(CreateMentorRequest {
            mentor: Some(erika()),
        })
        .await
        .expect("create")
        .into_inner();
    let fetched = admin
        .get_mentor(GetMentorRequest {
            mentor_id: mentor.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, mentor);
    let updated = admin
        .update_mentor(UpdateMentorRequest {
            mentor: Some(Mentor {
                id: mentor.id.clone(),
                capacity: 3,
                ..erika()
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.free_capacity, 3);

    // The broker syncs the feed.
    let info = broker
        .get_node_info(GetNodeInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(info.node_id, "ind-assoc");
    // Create and update before the first read publish one snapshot: one feed version.
    assert_eq!(info.feed_version, 1);
    assert_eq!(info.published_profiles, 1);
    let feed = broker
        .get_profile_changes(GetProfileChangesRequest {
            since_version: 0,
            limit: 0,
        })
        .await
        .expect("feed")
        .into_inner();
    let Some(Change::Upsert(profile)) = &feed.changes[0].change else {
        panic!("expected an upsert: {feed:?}");
    };
    assert_eq!(profile.pseudonym, mentor.pseudonym);
    assert_eq!(profile.free_capacity, 3);
    assert_eq!(profile.version, 1);

    // An introduction arrives, twice; the mentor accepts; the broker reads the decision.
    let request = introduction("intro-1", &mentor.pseudonym);
    let first = broker
        .deliver_introduction(request.clone())
        .await
        .expect("deliver")
        .into_inner();
    assert!(!first.duplicate);
    let again = broker
        .deliver_introduction(request)
        .await
        .expect("deliver again")
        .into_inner();
    assert!(again.duplicate);
    let status = broker
        .deliver_introduction(introduction("intro-2", &"f".repeat(64)))
        .await
        .expect_err("unknown mentor");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "pseudonym: unknown mentor");

    let status = broker
        .release_contact_card(ReleaseContactCardRequest {
            introduction_id: "intro-1".into(),
        })
        .await
        .expect_err("not accepted yet");
    assert_eq!(status.code(), Code::FailedPrecondition);

    let intro = admin
        .record_decision(RecordDecisionRequest {
            introduction_id: "intro-1".into(),
            decision: MentorDecision::Accepted as i32,
        })
        .await
        .expect("accept")
        .into_inner();
    assert_eq!(intro.decision(), MentorDecision::Accepted);
    let status = admin
        .record_decision(RecordDecisionRequest {
            introduction_id: "intro-1".into(),
            decision: MentorDecision::Pending as i32,
        })
        .await
        .expect_err("pending is no decision");
    assert_eq!(status.code(), Code::InvalidArgument);

    let decisions = broker
        .get_decisions(GetDecisionsRequest { since: 0, limit: 0 })
        .await
        .expect("decisions")
        .into_inner();
    assert_eq!(decisions.decisions.len(), 1);
    assert_eq!(decisions.decisions[0].decision(), MentorDecision::Accepted);
    let one = broker
        .get_decision(GetDecisionRequest {
            introduction_id: "intro-1".into(),
        })
        .await
        .expect("one decision")
        .into_inner();
    assert_eq!(one, decisions.decisions[0]);
    let status = broker
        .get_decision(GetDecisionRequest {
            introduction_id: "intro-2".into(),
        })
        .await
        .expect_err("an introduction the node does not hold");
    assert_eq!(status.code(), Code::NotFound);

    let card = broker
        .release_contact_card(ReleaseContactCardRequest {
            introduction_id: "intro-1".into(),
        })
        .await
        .expect("card")
        .into_inner();
    assert_eq!(card.email, erika().email);
    assert_eq!(card.node_id, "ind-assoc");

    let listed = admin
        .list_introductions(ListIntroductionsRequest {
            mentor_id: mentor.id.clone(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.introductions.len(), 1);
    assert!(listed.introductions[0].contact_released);
    let none = admin
        .list_introductions(ListIntroductionsRequest {
            mentor_id: "someone-else".into(),
        })
        .await
        .expect("list")
        .into_inner();
    assert!(none.introductions.is_empty());

    // The company erased the mentee: the node forgets the summary and the reasons, keeps the
    // introduction and its state; forgetting again is harmless. An id the node never stored is
    // forgotten too (its tombstone refuses a delivery arriving later).
    for _ in 0..2 {
        broker
            .forget_mentee(ForgetMenteeRequest {
                introduction_id: "intro-1".into(),
            })
            .await
            .expect("forget");
    }
    let forgotten = admin
        .list_introductions(ListIntroductionsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .introductions
        .remove(0);
    assert_eq!(forgotten.introduction_id, "intro-1");
    assert!(forgotten.mentee_forgotten);
    assert_eq!(forgotten.mentee, None);
    assert!(forgotten.reasons.is_empty());
    assert_eq!(forgotten.decision(), MentorDecision::Accepted);
    assert!(forgotten.contact_released);
    broker
        .forget_mentee(ForgetMenteeRequest {
            introduction_id: "unknown".into(),
        })
        .await
        .expect("an unknown id is forgotten too");

    broker
        .close_introduction(CloseIntroductionRequest {
            introduction_id: "intro-1".into(),
            reason: "tandem_completed".into(),
        })
        .await
        .expect("close");
    broker
        .close_introduction(CloseIntroductionRequest {
            introduction_id: "never-delivered".into(),
            reason: "expired".into(),
        })
        .await
        .expect("an unknown id is closed too");
    for (id, how) in [
        ("unknown", "forgotten"),
        ("never-delivered", "closed"),
        ("intro-1", "forgotten"),
    ] {
        let status = broker
            .deliver_introduction(introduction(id, &mentor.pseudonym))
            .await
            .expect_err("a late delivery");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(
            status
                .message()
                .contains(&format!("was {how} at this node")),
            "{status:?}"
        );
    }

    // Erasure: the mentor disappears from the staff's list and the feed withdraws the profile.
    admin
        .remove_mentor(RemoveMentorRequest {
            mentor_id: mentor.id.clone(),
        })
        .await
        .expect("remove");
    let mentors = admin
        .list_mentors(ListMentorsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert!(mentors.mentors.is_empty());
    let feed = broker
        .get_profile_changes(GetProfileChangesRequest {
            since_version: feed.next_version,
            limit: 0,
        })
        .await
        .expect("feed")
        .into_inner();
    assert!(
        matches!(feed.changes.last().and_then(|c| c.change.as_ref()), Some(Change::Withdrawal(w)) if w.pseudonym == mentor.pseudonym),
        "{feed:?}"
    );

    stop.send(()).expect("server still running");
    server.await.expect("join").expect("server ends cleanly");
}

/// Serves `node` on a loopback port; returns its endpoint and the sender that stops it.
async fn serve(
    node: &common::TestNode,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tandem_node::serve(node.state.clone(), listener, async {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop, server)
}

#[tokio::test]
async fn staff_need_a_valid_key_of_this_node() {
    let node = sqlite_node().await;
    let other = sqlite_node().await;
    let (endpoint, stop, server) = serve(&node).await;

    // A key the other node issued (same format, same node software) means nothing here.
    let (_, other_key) = other
        .state
        .create_staff_key("staff of another node")
        .await
        .expect("other key");
    let (info, own_key) = node.state.create_staff_key("desk").await.expect("own key");
    assert_eq!(info.scope, "node-admin");
    assert_eq!(info.node_id, "ind-assoc");

    let mut anonymous = NodeAdminServiceClient::connect(endpoint.clone())
        .await
        .expect("client");
    let status = anonymous
        .list_mentors(ListMentorsRequest {})
        .await
        .expect_err("no key");
    assert_eq!(status.code(), Code::Unauthenticated);
    let refused_with = |key: String| {
        let endpoint = endpoint.clone();
        async move {
            let mut client = admin_client(endpoint, &key).await;
            let list = client
                .list_mentors(ListMentorsRequest {})
                .await
                .expect_err("list refused");
            let create = client
                .create_mentor(CreateMentorRequest {
                    mentor: Some(erika()),
                })
                .await
                .expect_err("create refused");
            for status in [list, create] {
                assert_eq!(status.code(), Code::Unauthenticated, "{key}: {status:?}");
                assert_eq!(status.message(), "invalid api key");
            }
        }
    };
    refused_with(other_key.clone()).await;
    refused_with("tdm_knothere_0123456789abcdef0123456789abcdef".into()).await;
    refused_with("not a key".into()).await;
    let (id, _) = own_key[4..].split_once('_').expect("key id");
    refused_with(format!(
        "tdm_{id}_0123456789abcdef0123456789abcdef0123456789abcdef"
    ))
    .await;

    // A key row bound to another node, even in this node's database, is refused.
    let secret = "f".repeat(40);
    sea_orm::ActiveModelTrait::insert(
        tandem_storage::node::api_key::ActiveModel {
            id: sea_orm::ActiveValue::Set("kforeign".into()),
            secret_hash: sea_orm::ActiveValue::Set(tandem_service::api_key::hash_secret(&secret)),
            scope: sea_orm::ActiveValue::Set("node-admin".into()),
            tenant: sea_orm::ActiveValue::Set("chamber".into()),
            label: sea_orm::ActiveValue::Set(String::new()),
            created_at_ms: sea_orm::ActiveValue::Set(1),
            revoked_at_ms: sea_orm::ActiveValue::Set(0),
            revoked_reason: sea_orm::ActiveValue::Set(String::new()),
        },
        &node.db,
    )
    .await
    .expect("foreign row");
    refused_with(format!("tdm_kforeign_{secret}")).await;

    // The node's own key works until it is revoked.
    let mut desk = admin_client(endpoint.clone(), &own_key).await;
    let created = desk
        .create_mentor(CreateMentorRequest {
            mentor: Some(erika()),
        })
        .await
        .expect("create with own key")
        .into_inner();
    node.state.revoke_staff_key(&info.id).await.expect("revoke");
    node.state
        .revoke_staff_key(&info.id)
        .await
        .expect("revoke again");
    let status = desk
        .get_mentor(GetMentorRequest {
            mentor_id: created.id.clone(),
        })
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "invalid api key");
    let listed = node.state.list_staff_keys().await.expect("keys");
    assert!(listed.iter().any(|k| k.id == info.id && k.revoked));

    stop.send(()).expect("server still running");
    server.await.expect("join").expect("server ends cleanly");
}

#[tokio::test]
async fn the_audit_log_names_the_key_of_every_change_and_no_personal_data() {
    let node = sqlite_node().await;
    let (endpoint, stop, server) = serve(&node).await;
    let (desk, desk_key) = node.state.create_staff_key("desk").await.expect("key");
    let mut admin = admin_client(endpoint.clone(), &desk_key).await;
    let mut broker = NodeServiceClient::connect(endpoint).await.expect("client");

    let mentor = admin
        .create_mentor(CreateMentorRequest {
            mentor: Some(erika()),
        })
        .await
        .expect("create")
        .into_inner();
    admin
        .update_mentor(UpdateMentorRequest {
            mentor: Some(Mentor {
                id: mentor.id.clone(),
                capacity: 3,
                ..erika()
            }),
        })
        .await
        .expect("update");
    // Reading changes nothing and is not logged; a refused change is not logged either.
    admin
        .list_mentors(ListMentorsRequest {})
        .await
        .expect("list");
    admin
        .update_mentor(UpdateMentorRequest {
            mentor: Some(Mentor {
                id: mentor.id.clone(),
                capacity: 0,
                ..erika()
            }),
        })
        .await
        .expect_err("capacity 0");
    broker
        .deliver_introduction(introduction("intro-1", &mentor.pseudonym))
        .await
        .expect("deliver");
    admin
        .record_decision(RecordDecisionRequest {
            introduction_id: "intro-1".into(),
            decision: MentorDecision::Accepted as i32,
        })
        .await
        .expect("accept");
    broker
        .release_contact_card(ReleaseContactCardRequest {
            introduction_id: "intro-1".into(),
        })
        .await
        .expect("card");
    broker
        .forget_mentee(ForgetMenteeRequest {
            introduction_id: "intro-1".into(),
        })
        .await
        .expect("forget");
    broker
        .close_introduction(CloseIntroductionRequest {
            introduction_id: "intro-1".into(),
            reason: "mentee_withdrawn".into(),
        })
        .await
        .expect("close");
    admin
        .remove_mentor(RemoveMentorRequest {
            mentor_id: mentor.id.clone(),
        })
        .await
        .expect("remove");

    let events = admin
        .list_audit_events(ListNodeAuditEventsRequest::default())
        .await
        .expect("audit")
        .into_inner()
        .events;
    let seen: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.key_id.as_str(),
                e.action.as_str(),
                e.object_type.as_str(),
                e.object_id.as_str(),
            )
        })
        .collect();
    let test_key = tandem_service::api_key::split(STAFF_KEY).expect("key").0;
    let desk_id = desk.id.as_str();
    let mentor_id = mentor.id.as_str();
    assert_eq!(
        seen,
        vec![
            ("cli", "key.installed", "api_key", test_key),
            ("cli", "key.created", "api_key", desk_id),
            (desk_id, "mentor.created", "mentor", mentor_id),
            (desk_id, "mentor.updated", "mentor", mentor_id),
            (
                "broker",
                "introduction.delivered",
                "introduction",
                "intro-1"
            ),
            (desk_id, "introduction.decided", "introduction", "intro-1"),
            ("broker", "contact_card.released", "introduction", "intro-1"),
            (
                "broker",
                "introduction.mentee_forgotten",
                "introduction",
                "intro-1"
            ),
            ("broker", "introduction.closed", "introduction", "intro-1"),
            (desk_id, "mentor.removed", "mentor", mentor_id),
        ]
    );
    assert_eq!(events[5].detail, "MENTOR_DECISION_ACCEPTED");
    assert_eq!(events[8].detail, "mentee_withdrawn");
    assert_eq!(events[9].detail, "closed_introductions=0");
    assert!(
        events
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].at_ms <= w[1].at_ms)
    );
    let erika = erika();
    for event in &events {
        for personal in [
            erika.display_name.as_str(),
            erika.email.as_str(),
            erika.employer_name.as_str(),
            erika.employer_registry_number.as_str(),
        ] {
            assert!(!event.detail.contains(personal), "{event:?}");
        }
    }
    // Paging: after the fifth entry come the rest.
    let later = admin
        .list_audit_events(ListNodeAuditEventsRequest {
            after_id: events[4].id,
            limit: 2,
        })
        .await
        .expect("page")
        .into_inner()
        .events;
    assert_eq!(later, events[5..7].to_vec());

    stop.send(()).expect("server still running");
    server.await.expect("join").expect("server ends cleanly");
}

#[tokio::test]
async fn a_staff_key_over_its_rate_is_refused_and_other_keys_are_not() {
    let node = sqlite_node().await;
    let (endpoint, stop, server) = serve(&node).await;
    let (_, busy_key) = node.state.create_staff_key("busy").await.expect("key");
    let (_, calm_key) = node.state.create_staff_key("calm").await.expect("key");
    let mut busy = admin_client(endpoint.clone(), &busy_key).await;
    let mut calm = admin_client(endpoint.clone(), &calm_key).await;
    // The test configuration allows bursts of 100 at 20 per second.
    let mut refused = None;
    for _ in 0..200 {
        if let Err(status) = busy.list_mentors(ListMentorsRequest {}).await {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("a burst of 200 goes over the limit");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("rate limit"), "{status:?}");
    calm.list_mentors(ListMentorsRequest {})
        .await
        .expect("another key is not slowed");
    stop.send(()).expect("server still running");
    server.await.expect("join").expect("server ends cleanly");
}
