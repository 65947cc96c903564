//! The node over real gRPC: `serve` on an ephemeral port, the generated clients of both
//! services, and the status codes a caller sees.

mod common;

use common::{erika, introduction, sqlite_node};
use tandem_proto::node_admin_service_client::NodeAdminServiceClient;
use tandem_proto::node_service_client::NodeServiceClient;
use tandem_proto::profile_change::Change;
use tandem_proto::{
    CloseIntroductionRequest, CreateMentorRequest, GetDecisionsRequest, GetMentorRequest,
    GetNodeInfoRequest, GetProfileChangesRequest, ListIntroductionsRequest, ListMentorsRequest,
    Mentor, MentorDecision, RecordDecisionRequest, ReleaseContactCardRequest, RemoveMentorRequest,
    UpdateMentorRequest,
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
    let mut admin = NodeAdminServiceClient::connect(endpoint.clone())
        .await
        .expect("admin client");
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

    broker
        .close_introduction(CloseIntroductionRequest {
            introduction_id: "intro-1".into(),
            reason: "tandem_completed".into(),
        })
        .await
        .expect("close");
    let status = broker
        .close_introduction(CloseIntroductionRequest {
            introduction_id: "unknown".into(),
            reason: "expired".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

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
