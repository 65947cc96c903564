//! Mentor records at the node and what the federation sees of them: the published profile
//! carries no personal data, consent and removal withdraw it, and bad records are refused.

mod common;

use common::{FEDERATION_KEY, TestNode, erika, introduction, max, postgres_node, sqlite_node};
use prost::Message;
use sea_orm::{EntityTrait, PaginatorTrait};
use tandem_node::NodeError;
use tandem_proto::profile_change::Change;
use tandem_proto::{
    AnonymisedProfile, ExperienceBand, GetProfileChangesResponse, Mentor, Withdrawal,
};
use tandem_storage::node::{introduction as introduction_row, mentor as mentor_row};
use tonic::Code;

fn upserts(response: &GetProfileChangesResponse) -> Vec<&AnonymisedProfile> {
    response
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Some(Change::Upsert(p)) => Some(p),
            _ => None,
        })
        .collect()
}

fn withdrawals(response: &GetProfileChangesResponse) -> Vec<&Withdrawal> {
    response
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Some(Change::Withdrawal(w)) => Some(w),
            _ => None,
        })
        .collect()
}

fn personal_data(mentor: &Mentor) -> Vec<&str> {
    vec![
        &mentor.display_name,
        &mentor.email,
        &mentor.employer_name,
        &mentor.employer_registry_number,
        &mentor.title,
        "Erika",
        "Muster",
    ]
}

#[tokio::test]
async fn a_created_mentor_is_published_without_personal_data() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let input = erika();
    let created = node
        .state
        .create_mentor(&staff, input.clone())
        .await
        .expect("create");
    assert!(uuid::Uuid::parse_str(&created.id).is_ok(), "{}", created.id);
    assert_eq!(created.pseudonym, node.state.pseudonym(&created.id));
    assert_eq!(created.pseudonym.len(), 64);
    assert_eq!(created.free_capacity, 2);
    assert_eq!(created.display_name, input.display_name);

    let feed = node.state.profile_changes(0, 0).await.expect("feed");
    assert!(!feed.has_more);
    let profiles = upserts(&feed);
    assert_eq!(profiles.len(), 1, "{feed:?}");
    let profile = profiles[0];
    assert_eq!(profile.pseudonym, created.pseudonym);
    assert_eq!(profile.version, feed.next_version);
    assert_eq!(profile.experience_band(), ExperienceBand::TwentyPlus);
    assert_eq!(profile.career_level, input.career_level);
    // Only the first industry is published: it is the quasi-identifier k-anonymity covers.
    assert_eq!(profile.industries, input.industries[..1]);
    assert_eq!(profile.expertise, input.expertise);
    assert_eq!(profile.languages, input.languages);
    assert_eq!(profile.formats, input.formats);
    assert_eq!(profile.region, "DE-BY");
    assert_eq!(profile.free_capacity, 2);
    let token = tandem_domain::pseudonym::employer_token(
        FEDERATION_KEY.as_bytes(),
        &input.employer_registry_number,
    );
    assert_eq!(profile.employer_token, token);
    assert_eq!(
        profile.group_token, token,
        "no group: the group token is the employer's"
    );
    assert!(tandem_domain::validate::profile("profile", profile).is_ok());

    // Nothing personal crosses the boundary, in any encoding.
    let bytes = feed.encode_to_vec();
    for secret in personal_data(&input) {
        let needle = secret.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the feed leaks {secret:?}"
        );
    }

    let info = node.state.node_info().await.expect("info");
    assert_eq!(info.node_id, "ind-assoc");
    assert_eq!(info.display_name, "Industry Association");
    assert_eq!(info.feed_version, feed.next_version);
    assert_eq!(info.published_profiles, 1);
}

#[tokio::test]
async fn a_group_gets_its_own_token() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    node.state
        .create_mentor(&staff, max())
        .await
        .expect("create");
    let feed = node.state.profile_changes(0, 0).await.expect("feed");
    let profile = upserts(&feed)[0];
    let key = FEDERATION_KEY.as_bytes();
    assert_eq!(
        profile.group_token,
        tandem_domain::pseudonym::employer_token(key, "HRB 1 Berlin")
    );
    assert_ne!(profile.group_token, profile.employer_token);
    assert_eq!(profile.experience_band(), ExperienceBand::FiveToNine);
}

#[tokio::test]
async fn without_consent_the_profile_is_withdrawn() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let created = node
        .state
        .create_mentor(
            &staff,
            Mentor {
                publication_consent: tandem_proto::PublicationConsent::Refused as i32,
                ..erika()
            },
        )
        .await
        .expect("create");
    // Staff see why nothing is published, and no pseudonym.
    assert_eq!(
        created.publication_state,
        tandem_proto::PublicationState::NoConsent as i32
    );
    assert!(created.pseudonym.is_empty());
    // Nothing at all reaches the feed, not even a withdrawal that would tell the broker a
    // mentor without consent exists.
    let feed = node.state.profile_changes(0, 0).await.expect("feed");
    assert!(feed.changes.is_empty(), "{feed:?}");
    assert_eq!(
        node.state
            .node_info()
            .await
            .expect("info")
            .published_profiles,
        0
    );

    // Giving consent later publishes the profile at a newer version.
    let updated = node
        .state
        .update_mentor(
            &staff,
            Mentor {
                id: created.id.clone(),
                publication_consent: tandem_proto::PublicationConsent::Granted as i32,
                ..erika()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.pseudonym, node.state.pseudonym(&created.id));
    assert_eq!(
        updated.publication_state,
        tandem_proto::PublicationState::Published as i32
    );
    let later = node
        .state
        .profile_changes(feed.next_version, 0)
        .await
        .expect("feed");
    assert_eq!(upserts(&later).len(), 1);
    assert!(later.next_version > feed.next_version);

    // And taking it back withdraws it again.
    node.state
        .update_mentor(
            &staff,
            Mentor {
                id: created.id.clone(),
                publication_consent: tandem_proto::PublicationConsent::Refused as i32,
                ..erika()
            },
        )
        .await
        .expect("update");
    let last = node
        .state
        .profile_changes(later.next_version, 0)
        .await
        .expect("feed");
    assert_eq!(withdrawals(&last).len(), 1);
}

/// Removes a mentor with an open introduction and checks what is left, on any database.
async fn removal(node: &TestNode) {
    let staff = node.staff.clone();
    let created = node
        .state
        .create_mentor(&staff, erika())
        .await
        .expect("create");
    node.state
        .deliver_introduction(introduction("intro-1", &created.pseudonym))
        .await
        .expect("deliver");
    let before = node.state.profile_changes(0, 0).await.expect("feed");

    node.state
        .remove_mentor(&staff, &created.id)
        .await
        .expect("remove");

    let after = node
        .state
        .profile_changes(before.next_version, 0)
        .await
        .expect("feed");
    assert_eq!(after.changes.len(), 1, "{after:?}");
    assert_eq!(withdrawals(&after)[0].pseudonym, created.pseudonym);
    assert_eq!(
        withdrawals(&after)[0].reason(),
        tandem_proto::WithdrawalReason::Removed,
        "the broker ends the mentor's open proposals"
    );

    let row = mentor_row::Entity::find_by_id(created.id.clone())
        .one(&node.db)
        .await
        .expect("query")
        .expect("row kept as a tombstone");
    assert!(row.removed);
    for field in [
        &row.display_name,
        &row.email,
        &row.employer_name,
        &row.employer_registry_number,
        &row.group_registry_number,
        &row.title,
    ] {
        assert_eq!(field, "", "personal field left after erasure: {row:?}");
    }

    let intro = introduction_row::Entity::find_by_id("intro-1".to_owned())
        .one(&node.db)
        .await
        .expect("query")
        .expect("row");
    assert!(intro.closed);
    assert_eq!(intro.close_reason, "mentor_removed");

    let err = node.state.get_mentor(&created.id).await.expect_err("gone");
    assert_eq!(tonic::Status::from(err).code(), Code::NotFound);
    assert!(node.state.list_mentors().await.expect("list").is_empty());
    let err = node
        .state
        .deliver_introduction(introduction("intro-2", &created.pseudonym))
        .await
        .expect_err("a removed mentor's pseudonym is unknown");
    assert_eq!(
        tonic::Status::from(err).message(),
        "pseudonym: unknown mentor"
    );
    let err = node
        .state
        .remove_mentor(&staff, &created.id)
        .await
        .expect_err("twice");
    assert_eq!(tonic::Status::from(err).code(), Code::NotFound);
    let err = node
        .state
        .update_mentor(
            &staff,
            Mentor {
                id: created.id.clone(),
                ..erika()
            },
        )
        .await
        .expect_err("update after removal");
    assert_eq!(tonic::Status::from(err).code(), Code::NotFound);
    assert_eq!(
        node.state
            .node_info()
            .await
            .expect("info")
            .published_profiles,
        0
    );
}

#[tokio::test]
async fn removal_erases_personal_data_and_withdraws_the_profile() {
    removal(&sqlite_node().await).await;
}

#[tokio::test]
async fn removal_on_postgres() {
    if let Some(node) = postgres_node().await {
        removal(&node).await;
    }
}

#[tokio::test]
async fn a_capacity_out_of_range_is_refused_and_nothing_stored() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    for capacity in [0, 1000] {
        let err = node
            .state
            .create_mentor(
                &staff,
                Mentor {
                    capacity,
                    ..erika()
                },
            )
            .await
            .expect_err("refused");
        assert!(matches!(&err, NodeError::Invalid(e) if e.fields() == ["mentor.capacity"]));
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            format!("mentor.capacity: must be 1 to 10, got {capacity}")
        );
    }
    let stored = mentor_row::Entity::find()
        .count(&node.db)
        .await
        .expect("count");
    assert_eq!(stored, 0);
    assert_eq!(node.state.node_info().await.expect("info").feed_version, 0);

    // An update with a bad capacity leaves the record as it was.
    let created = node
        .state
        .create_mentor(&staff, erika())
        .await
        .expect("create");
    let err = node
        .state
        .update_mentor(
            &staff,
            Mentor {
                id: created.id.clone(),
                capacity: 0,
                display_name: "Someone Else".into(),
                ..erika()
            },
        )
        .await
        .expect_err("refused");
    assert_eq!(tonic::Status::from(err).code(), Code::InvalidArgument);
    assert_eq!(
        node.state.get_mentor(&created.id).await.expect("get"),
        created
    );
}

#[tokio::test]
async fn other_bad_records_name_their_field() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let cases: Vec<(Mentor, &str)> = vec![
        (
            Mentor {
                email: "not an address".into(),
                ..erika()
            },
            "mentor.email",
        ),
        (
            Mentor {
                languages: vec!["de".into(), "xx".into()],
                ..erika()
            },
            "mentor.languages[1]",
        ),
        (
            Mentor {
                career_level: 0,
                ..erika()
            },
            "mentor.career_level",
        ),
    ];
    for (mentor, field) in cases {
        let status = tonic::Status::from(
            node.state
                .create_mentor(&staff, mentor)
                .await
                .expect_err(field),
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "{status:?}"
        );
    }
    let status = tonic::Status::from(
        node.state
            .update_mentor(&staff, erika())
            .await
            .expect_err("no id"),
    );
    assert_eq!(status.message(), "mentor.id: is required");
    let status = tonic::Status::from(
        node.state
            .update_mentor(
                &staff,
                Mentor {
                    id: "no-such-mentor".into(),
                    ..erika()
                },
            )
            .await
            .expect_err("unknown"),
    );
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn mentors_are_listed_by_name() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let max = node
        .state
        .create_mentor(&staff, max())
        .await
        .expect("create");
    let erika = node
        .state
        .create_mentor(&staff, erika())
        .await
        .expect("create");
    let listed = node.state.list_mentors().await.expect("list");
    let names: Vec<&str> = listed.iter().map(|m| m.display_name.as_str()).collect();
    assert_eq!(names, ["Erika Mustermann", "Max Beispiel"]);
    assert_eq!(listed[0], erika);
    assert_eq!(listed[1], max);
}

#[tokio::test]
async fn the_feed_pages_in_version_order() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let mut pseudonyms = Vec::new();
    for _ in 0..5 {
        pseudonyms.push(
            node.state
                .create_mentor(&staff, erika())
                .await
                .expect("create")
                .pseudonym,
        );
    }
    let mut seen = Vec::new();
    let mut since = 0;
    let mut pages = 0;
    loop {
        let page = node.state.profile_changes(since, 2).await.expect("page");
        pages += 1;
        let versions: Vec<u64> = upserts(&page).iter().map(|p| p.version).collect();
        assert!(
            versions.iter().all(|&v| v > since),
            "{versions:?} after {since}"
        );
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        seen.extend(upserts(&page).iter().map(|p| p.pseudonym.clone()));
        since = page.next_version;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    // One snapshot publishes the five together, in pseudonym order.
    pseudonyms.sort();
    assert_eq!(seen, pseudonyms);
    assert_eq!(since, 5);
    let empty = node.state.profile_changes(since, 2).await.expect("page");
    assert!(empty.changes.is_empty());
    assert_eq!(empty.next_version, since);
    assert!(!empty.has_more);
}

#[tokio::test]
async fn staff_may_bring_their_own_mentor_id() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let id = "5b0c43f4-4a2f-4b7e-9b43-2f7d1c0e9a11";
    let created = node
        .state
        .create_mentor(
            &staff,
            Mentor {
                id: id.into(),
                ..erika()
            },
        )
        .await
        .expect("created");
    assert_eq!(created.id, id);
    assert_eq!(created.pseudonym, node.state.pseudonym(id));
    for (bad, reason) in [
        (id, "is already in use"),
        ("crm-17", "must be empty or a UUID"),
    ] {
        let err = node
            .state
            .create_mentor(
                &staff,
                Mentor {
                    id: bad.into(),
                    ..max()
                },
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, NodeError::Invalid(e) if e
                .iter()
                .map(|v| (v.field.as_str(), v.description.as_str()))
                .eq([("mentor.id", reason)])),
            "{err:?}"
        );
    }
    let stored = mentor_row::Entity::find()
        .count(&node.db)
        .await
        .expect("count");
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn a_retried_create_with_the_same_member_number_makes_no_second_mentor() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let with_number = Mentor {
        member_number: "M-7".into(),
        ..erika()
    };
    let first = node
        .state
        .create_mentor(&staff, with_number.clone())
        .await
        .expect("create");
    assert_eq!(first.member_number, "M-7");
    let retried = node
        .state
        .create_mentor(&staff, with_number.clone())
        .await
        .expect("retry");
    assert_eq!(
        retried, first,
        "the retry returns the mentor made the first time"
    );
    assert_eq!(node.state.list_mentors().await.expect("list").len(), 1);

    // The same member number with another record is someone else's: refused, nothing stored.
    let err = node
        .state
        .create_mentor(
            &staff,
            Mentor {
                display_name: "Somebody Else".into(),
                ..with_number.clone()
            },
        )
        .await
        .expect_err("taken");
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        status.message().contains("mentor.member_number"),
        "{}",
        status.message()
    );
    assert_eq!(node.state.list_mentors().await.expect("list").len(), 1);

    // Consent is an explicit choice: leaving it unspecified is refused, naming the field.
    let err = node
        .state
        .create_mentor(
            &staff,
            Mentor {
                publication_consent: tandem_proto::PublicationConsent::Unspecified as i32,
                ..max()
            },
        )
        .await
        .expect_err("no consent given");
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("mentor.publication_consent"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_mentor_whose_places_are_all_taken_is_shown_as_such() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let created = node
        .state
        .create_mentor(
            &staff,
            Mentor {
                capacity: 1,
                ..erika()
            },
        )
        .await
        .expect("create");
    assert_eq!(
        created.publication_state,
        tandem_proto::PublicationState::Published as i32
    );
    node.state
        .deliver_introduction(introduction("intro-1", &created.pseudonym))
        .await
        .expect("deliver");
    node.state
        .record_decision(
            &staff,
            "intro-1",
            tandem_proto::MentorDecision::Accepted as i32,
        )
        .await
        .expect("accept");
    let full = node.state.get_mentor(&created.id).await.expect("get");
    assert_eq!(full.free_capacity, 0);
    assert_eq!(
        full.publication_state,
        tandem_proto::PublicationState::NoFreePlace as i32
    );
    assert_eq!(
        full.pseudonym, created.pseudonym,
        "still published, under its pseudonym"
    );
}

#[tokio::test]
async fn an_import_with_bad_records_names_each_and_stores_nothing() {
    let node = sqlite_node().await;
    let good = Mentor {
        member_number: "M-1".into(),
        ..erika()
    };
    let no_number = max();
    let bad_capacity = Mentor {
        member_number: "M-3".into(),
        capacity: 0,
        ..erika()
    };
    let err = node
        .state
        .import_mentors("cli", &[good.clone(), no_number, bad_capacity], false)
        .await
        .expect_err("bad records");
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), Code::InvalidArgument);
    for field in ["mentors[1].member_number", "mentors[2].capacity"] {
        assert!(
            status.message().contains(field),
            "{field} in {}",
            status.message()
        );
    }
    assert!(
        !status.message().contains("mentors[0]"),
        "{}",
        status.message()
    );
    assert!(node.state.list_mentors().await.expect("list").is_empty());

    let report = node
        .state
        .import_mentors("cli", &[good], false)
        .await
        .expect("import");
    assert_eq!(report.created, 1);
}
