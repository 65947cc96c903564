//! Introductions at the node: idempotent delivery, the mentor's decision and its effect on the
//! published free capacity, the double opt-in before a contact card moves, and closing.

mod common;

use common::{TestNode, erika, introduction, postgres_node, sqlite_node};
use tandem_proto::profile_change::Change;
use tandem_proto::{
    AnonymisedProfile, DeliverIntroductionRequest, GetProfileChangesResponse, Mentor,
    MentorDecision,
};
use tonic::Code;

const ACCEPTED: i32 = MentorDecision::Accepted as i32;
const DECLINED: i32 = MentorDecision::Declined as i32;

fn code(err: tandem_node::NodeError) -> Code {
    tonic::Status::from(err).code()
}

fn only_upsert(response: &GetProfileChangesResponse) -> &AnonymisedProfile {
    match response.changes.as_slice() {
        [change] => match &change.change {
            Some(Change::Upsert(p)) => p,
            other => panic!("expected an upsert, got {other:?}"),
        },
        changes => panic!("expected one change, got {changes:?}"),
    }
}

#[tokio::test]
async fn delivery_is_idempotent() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let mentor = node
        .state
        .create_mentor(&staff, erika())
        .await
        .expect("create");
    let request = introduction("intro-1", &mentor.pseudonym);
    let first = node
        .state
        .deliver_introduction(request.clone())
        .await
        .expect("deliver");
    assert!(!first.duplicate);
    let again = node
        .state
        .deliver_introduction(request.clone())
        .await
        .expect("deliver again");
    assert!(again.duplicate);

    let listed = node.state.list_introductions(None).await.expect("list");
    assert_eq!(listed.len(), 1);
    let intro = &listed[0];
    assert_eq!(intro.introduction_id, "intro-1");
    assert_eq!(intro.mentor_id, mentor.id);
    assert_eq!(intro.mentee, request.mentee);
    assert_eq!(intro.reasons, request.reasons);
    assert_eq!(intro.score, 87);
    assert_eq!(intro.decision(), MentorDecision::Pending);
    assert!(!intro.closed && !intro.contact_released);
    assert!(intro.received_at_ms > 0);
    let decisions = node.state.decisions(0, 0).await.expect("decisions");
    assert!(decisions.decisions.is_empty(), "pending is not a decision");
}

#[tokio::test]
async fn bad_deliveries_are_refused() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let mentor = node
        .state
        .create_mentor(&staff, erika())
        .await
        .expect("create");
    let err = node
        .state
        .deliver_introduction(introduction("intro-1", &"0".repeat(64)))
        .await
        .expect_err("unknown pseudonym");
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "pseudonym: unknown mentor");

    let cases: Vec<(DeliverIntroductionRequest, &str)> = vec![
        (introduction("", &mentor.pseudonym), "introduction_id: "),
        (
            introduction(&"x".repeat(129), &mentor.pseudonym),
            "introduction_id: ",
        ),
        (
            DeliverIntroductionRequest {
                mentee: None,
                ..introduction("intro-2", &mentor.pseudonym)
            },
            "mentee: ",
        ),
    ];
    for (request, prefix) in cases {
        let status = tonic::Status::from(
            node.state
                .deliver_introduction(request)
                .await
                .expect_err(prefix),
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with(prefix), "{status:?}");
    }
    assert!(
        node.state
            .list_introductions(None)
            .await
            .expect("list")
            .is_empty()
    );
}

/// The whole life of introductions for a mentor with one place, on any database.
async fn decision_flow(node: &TestNode) {
    let state = &node.state;
    let staff = node.staff.clone();
    let mentor = state
        .create_mentor(
            &staff,
            Mentor {
                capacity: 1,
                ..erika()
            },
        )
        .await
        .expect("create");
    state
        .deliver_introduction(introduction("intro-a", &mentor.pseudonym))
        .await
        .expect("deliver a");
    state
        .deliver_introduction(introduction("intro-b", &mentor.pseudonym))
        .await
        .expect("deliver b");
    let feed = state.profile_changes(0, 0).await.expect("feed");
    assert_eq!(only_upsert(&feed).free_capacity, 1);
    let pending = state.decision("intro-a").await.expect("decision");
    assert_eq!(
        (
            pending.introduction_id.as_str(),
            pending.decision(),
            pending.sequence
        ),
        ("intro-a", MentorDecision::Pending, 0)
    );

    // No contact card before the mentor said yes.
    let err = state
        .release_contact_card("intro-a")
        .await
        .expect_err("too early");
    assert_eq!(code(err), Code::FailedPrecondition);

    let accepted = state
        .record_decision(&staff, "intro-a", ACCEPTED)
        .await
        .expect("accept");
    assert_eq!(accepted.decision(), MentorDecision::Accepted);
    let decisions = state.decisions(0, 0).await.expect("decisions");
    assert_eq!(decisions.decisions.len(), 1);
    assert_eq!(decisions.decisions[0].introduction_id, "intro-a");
    assert_eq!(decisions.decisions[0].decision(), MentorDecision::Accepted);
    assert_eq!(decisions.decisions[0].sequence, 1);
    assert_eq!(decisions.next, 1);
    assert!(!decisions.has_more);
    // Asked for one introduction, the node gives the same answer as in its log.
    assert_eq!(
        state.decision("intro-a").await.expect("decision"),
        decisions.decisions[0]
    );

    // The place is taken, and the feed says so at a new version.
    assert_eq!(
        state
            .get_mentor(&mentor.id)
            .await
            .expect("get")
            .free_capacity,
        0
    );
    let after_accept = state
        .profile_changes(feed.next_version, 0)
        .await
        .expect("feed");
    assert!(after_accept.next_version > feed.next_version);
    assert_eq!(only_upsert(&after_accept).free_capacity, 0);

    // A second accept finds no place; a decline is fine; a decision is final.
    let err = state
        .record_decision(&staff, "intro-b", ACCEPTED)
        .await
        .expect_err("no place");
    assert_eq!(code(err), Code::FailedPrecondition);
    state
        .record_decision(&staff, "intro-b", DECLINED)
        .await
        .expect("decline");
    let err = state
        .record_decision(&staff, "intro-b", ACCEPTED)
        .await
        .expect_err("already decided");
    assert_eq!(code(err), Code::FailedPrecondition);
    let err = state
        .release_contact_card("intro-b")
        .await
        .expect_err("declined");
    assert_eq!(code(err), Code::FailedPrecondition);
    let page = state.decisions(1, 0).await.expect("decisions");
    assert_eq!(page.decisions.len(), 1);
    assert_eq!(page.decisions[0].introduction_id, "intro-b");
    assert_eq!(page.decisions[0].decision(), MentorDecision::Declined);
    assert_eq!(page.next, 2);
    assert_eq!(
        state.decision("intro-b").await.expect("decision"),
        page.decisions[0]
    );
    let first = state.decisions(0, 1).await.expect("decisions");
    assert_eq!(first.decisions.len(), 1);
    assert!(first.has_more);
    assert_eq!(first.next, 1);

    // After the double opt-in the contact card moves.
    let card = state.release_contact_card("intro-a").await.expect("card");
    assert_eq!(card.display_name, "Erika Mustermann");
    assert_eq!(card.email, "erika.mustermann@muster-maschinenbau.example");
    assert_eq!(card.title, "Geschäftsführerin Vertrieb");
    assert_eq!(card.organisation, "Muster Maschinenbau GmbH");
    assert_eq!(card.node_id, "ind-assoc");
    let listed = state
        .list_introductions(Some(&mentor.id))
        .await
        .expect("list");
    let intro_a = listed
        .iter()
        .find(|i| i.introduction_id == "intro-a")
        .expect("intro-a");
    assert!(intro_a.contact_released);

    // Closing the accepted introduction frees the place and republishes the profile.
    state
        .close_introduction("intro-a", "tandem_completed")
        .await
        .expect("close");
    assert_eq!(
        state
            .get_mentor(&mentor.id)
            .await
            .expect("get")
            .free_capacity,
        1
    );
    let after_close = state
        .profile_changes(after_accept.next_version, 0)
        .await
        .expect("feed");
    assert_eq!(only_upsert(&after_close).free_capacity, 1);

    // Closing is idempotent: no new version, the first reason stays.
    state
        .close_introduction("intro-a", "expired")
        .await
        .expect("close again");
    let unchanged = state
        .profile_changes(after_close.next_version, 0)
        .await
        .expect("feed");
    assert!(unchanged.changes.is_empty());
    let listed = state.list_introductions(None).await.expect("list");
    let intro_a = listed
        .iter()
        .find(|i| i.introduction_id == "intro-a")
        .expect("intro-a");
    assert!(intro_a.closed);
    assert_eq!(intro_a.close_reason, "tandem_completed");

    // A closed introduction neither releases a card nor takes a decision.
    let err = state
        .release_contact_card("intro-a")
        .await
        .expect_err("closed");
    assert_eq!(code(err), Code::FailedPrecondition);
    state
        .deliver_introduction(introduction("intro-c", &mentor.pseudonym))
        .await
        .expect("deliver c");
    state
        .close_introduction("intro-c", "expired")
        .await
        .expect("close c");
    let err = state
        .record_decision(&staff, "intro-c", ACCEPTED)
        .await
        .expect_err("closed");
    assert_eq!(code(err), Code::FailedPrecondition);

    // Closing a declined introduction leaves the feed alone.
    let before = state.node_info().await.expect("info").feed_version;
    state
        .close_introduction("intro-b", "mentor_declined")
        .await
        .expect("close b");
    assert_eq!(state.node_info().await.expect("info").feed_version, before);
}

#[tokio::test]
async fn the_decision_flow_on_sqlite() {
    decision_flow(&sqlite_node().await).await;
}

#[tokio::test]
async fn the_decision_flow_on_postgres() {
    if let Some(node) = postgres_node().await {
        decision_flow(&node).await;
    }
}

#[tokio::test]
async fn unknown_introductions_and_bad_decisions_are_refused() {
    let node = sqlite_node().await;
    let state = &node.state;
    let staff = node.staff.clone();
    assert_eq!(
        code(
            state
                .record_decision(&staff, "nope", ACCEPTED)
                .await
                .expect_err("unknown")
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            state
                .release_contact_card("nope")
                .await
                .expect_err("unknown")
        ),
        Code::NotFound
    );
    assert_eq!(
        code(state.decision("nope").await.expect_err("unknown")),
        Code::NotFound
    );
    assert_eq!(
        code(state.decision("").await.expect_err("empty")),
        Code::InvalidArgument
    );

    let mentor = state.create_mentor(&staff, erika()).await.expect("create");
    state
        .deliver_introduction(introduction("intro-1", &mentor.pseudonym))
        .await
        .expect("deliver");
    for decision in [
        MentorDecision::Unspecified as i32,
        MentorDecision::Pending as i32,
        42,
    ] {
        let status = tonic::Status::from(
            state
                .record_decision(&staff, "intro-1", decision)
                .await
                .expect_err("bad decision"),
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with("decision: "), "{status:?}");
    }
    let status = tonic::Status::from(
        state
            .close_introduction("intro-1", "line\nbreak")
            .await
            .expect_err("control characters"),
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("reason: "), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_get_distinct_versions() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let state = node.state.clone();
        let staff = staff.clone();
        tasks.push(tokio::spawn(async move {
            state.create_mentor(&staff, erika()).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("create");
    }
    let feed = node.state.profile_changes(0, 0).await.expect("feed");
    let mut versions: Vec<u64> = feed
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Some(Change::Upsert(p)) => Some(p.version),
            _ => None,
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
}
