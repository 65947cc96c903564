//! Bad input from a company or from association staff is refused with INVALID_ARGUMENT naming
//! the field, and nothing is stored. A request with several problems gets them all at once:
//! one `google.rpc.BadRequest` field violation per wrong field, and the message lists them.

use tandem_e2e::{mentee, mentor, start, submission};
use tandem_proto::{
    CareerLevel, CreateMentorRequest, Format, Goal, ListMenteesRequest, ListMentorsRequest,
    MenteeRequest, Mentor, Topic,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Returns the field violations of a refused request's `google.rpc.BadRequest`, decoded as a
/// client would, as `(field, description)` pairs in their order.
fn field_violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Returns the fields of [`field_violations`].
fn fields(status: &Status) -> Vec<String> {
    field_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

/// Checks that `status` refuses bad input and names exactly `expected`, in the details and in
/// the message.
fn assert_names_every_field(status: &Status, expected: &[&str]) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(status), expected, "{}", status.message());
    for (field, description) in field_violations(status) {
        assert!(!description.is_empty(), "{field}");
        assert!(
            status
                .message()
                .contains(&format!("{field}: {description}")),
            "the message lists {field}: {}",
            status.message()
        );
    }
}

#[tokio::test]
async fn bad_mentees_are_refused_naming_the_field() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let cases: Vec<(&str, &str, MenteeRequest)> = vec![
        (
            "k1",
            "mentee.goals",
            MenteeRequest {
                goals: vec![],
                ..mentee()
            },
        ),
        (
            "k2",
            "mentee.languages[0]",
            MenteeRequest {
                languages: vec!["xx".into()],
                ..mentee()
            },
        ),
        (
            "k3",
            "mentee.career_level",
            MenteeRequest {
                career_level: 42,
                ..mentee()
            },
        ),
        ("", "idempotency_key", mentee()),
    ];
    for (key, field, request) in cases {
        let status = f
            .mentees
            .submit_mentee(f.as_company("acme", submission(key, request))?)
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    let missing = f
        .mentees
        .submit_mentee(tonic::Request::new(submission("k6", mentee())))
        .await
        .expect_err("no company");
    assert_eq!(missing.code(), Code::Unauthenticated);
    let stored = f
        .mentees
        .list_mentees(f.as_company("acme", ListMenteesRequest {})?)
        .await?
        .into_inner();
    assert!(stored.mentees.is_empty(), "nothing stored: {stored:?}");
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn mentors_with_capacity_out_of_range_are_refused() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    for capacity in [0, 1000] {
        let status = f.admins[0]
            .create_mentor(CreateMentorRequest {
                mentor: Some(Mentor {
                    capacity,
                    ..mentor("Erika Berg", "HRB 1")
                }),
            })
            .await
            .expect_err("capacity");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with("mentor.capacity"),
            "{}",
            status.message()
        );
    }
    let missing = f.admins[0]
        .create_mentor(CreateMentorRequest { mentor: None })
        .await
        .expect_err("no mentor");
    assert_eq!(missing.code(), Code::InvalidArgument);
    let stored = f.admins[0]
        .list_mentors(ListMentorsRequest {})
        .await?
        .into_inner();
    assert!(stored.mentors.is_empty());
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_mentee_with_several_problems_gets_them_all_at_once() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let good = mentee();
    let bad = MenteeRequest {
        goals: vec![
            Goal {
                topic: Topic::Leadership as i32,
                priority: 9,
            },
            Goal {
                topic: Topic::Leadership as i32,
                priority: 2,
            },
        ],
        languages: vec!["xx".into()],
        preferred_format: Format::InPerson as i32,
        region: "XX-YY".into(),
        industry: 0,
        company_size_band: 0,
        ..good.clone()
    };
    let status = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("", bad))?)
        .await
        .expect_err("seven problems");
    assert_names_every_field(
        &status,
        &[
            "idempotency_key",
            "mentee.goals[0].priority",
            "mentee.goals[1].topic",
            "mentee.languages[0]",
            "mentee.region",
            "mentee.industry",
            "mentee.company_size_band",
        ],
    );
    let region = field_violations(&status)
        .into_iter()
        .find(|(field, _)| field == "mentee.region")
        .map(|(_, description)| description)
        .unwrap_or_default();
    assert!(region.contains("XX-YY"), "{region}");
    let stored = f
        .mentees
        .list_mentees(f.as_company("acme", ListMenteesRequest {})?)
        .await?
        .into_inner();
    assert!(stored.mentees.is_empty(), "nothing stored: {stored:?}");

    // With every named field fixed, the second attempt goes through, in person in Bavaria.
    let fixed = MenteeRequest {
        preferred_format: Format::InPerson as i32,
        region: "DE-BY".into(),
        ..good
    };
    let stored = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("k1", fixed))?)
        .await?
        .into_inner();
    assert_eq!(
        stored.request.map(|r| r.region).as_deref(),
        Some("DE-BY"),
        "a real ISO 3166-2 subdivision is accepted"
    );
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_mentor_with_several_problems_gets_them_all_at_once() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let status = f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(Mentor::default()),
        })
        .await
        .expect_err("an empty record");
    assert_names_every_field(
        &status,
        &[
            "mentor.display_name",
            "mentor.email",
            "mentor.employer_name",
            "mentor.employer_registry_number",
            "mentor.career_level",
            "mentor.industries",
            "mentor.expertise",
            "mentor.languages",
            "mentor.region",
            "mentor.formats",
            "mentor.capacity",
            "mentor.publication_consent",
        ],
    );

    let status = f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(Mentor {
                id: "crm-17".into(),
                email: "erika at example".into(),
                career_level: CareerLevel::Staff as i32,
                industries: vec![],
                languages: vec!["de".into(), "de".into()],
                region: "XX-YY".into(),
                capacity: 0,
                ..mentor("Erika Berg", "HRB 1")
            }),
        })
        .await
        .expect_err("seven problems");
    assert_names_every_field(
        &status,
        &[
            "mentor.id",
            "mentor.email",
            "mentor.career_level",
            "mentor.industries",
            "mentor.languages[1]",
            "mentor.region",
            "mentor.capacity",
        ],
    );
    let stored = f.admins[0]
        .list_mentors(ListMentorsRequest {})
        .await?
        .into_inner();
    assert!(stored.mentors.is_empty(), "nothing stored: {stored:?}");

    for fake in ["ZZ", "DE-XX"] {
        let status = f.admins[0]
            .create_mentor(CreateMentorRequest {
                mentor: Some(Mentor {
                    region: fake.into(),
                    ..mentor("Erika Berg", "HRB 1")
                }),
            })
            .await
            .expect_err(fake);
        assert_names_every_field(&status, &["mentor.region"]);
        assert!(status.message().contains(fake), "{}", status.message());
    }
    let created = f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(Mentor {
                region: "FR-75C".into(),
                ..mentor("Erika Berg", "HRB 1")
            }),
        })
        .await?
        .into_inner();
    assert_eq!(
        created.region, "FR-75C",
        "Paris is an ISO 3166-2 subdivision"
    );
    f.federation.shutdown().await;
    Ok(())
}
