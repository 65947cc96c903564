//! Bad input from a company or from association staff is refused with INVALID_ARGUMENT naming
//! the field, and nothing is stored.

use tandem_e2e::{as_company, mentee, mentor, start, submission};
use tandem_proto::{
    CreateMentorRequest, ListMenteesRequest, ListMentorsRequest, MenteeRequest, Mentor,
};
use tonic::Code;

#[tokio::test]
async fn bad_mentees_are_refused_naming_the_field() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let cases: Vec<(&str, &str, MenteeRequest)> = vec![
        (
            "k1",
            "mentee.goals",
            MenteeRequest {
                goals: vec![],
                ..mentee("HRB 9", "chamber")
            },
        ),
        (
            "k2",
            "mentee.languages[0]",
            MenteeRequest {
                languages: vec!["xx".into()],
                ..mentee("HRB 9", "chamber")
            },
        ),
        (
            "k3",
            "mentee.career_level",
            MenteeRequest {
                career_level: 42,
                ..mentee("HRB 9", "chamber")
            },
        ),
        ("", "idempotency_key", mentee("HRB 9", "chamber")),
        ("k5", "mentee.home_node_id", mentee("HRB 9", "no-such-node")),
    ];
    for (key, field, request) in cases {
        let status = f
            .mentees
            .submit_mentee(as_company("acme", submission(key, request))?)
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
        .submit_mentee(tonic::Request::new(submission(
            "k6",
            mentee("HRB 9", "chamber"),
        )))
        .await
        .expect_err("no company");
    assert_eq!(missing.code(), Code::Unauthenticated);
    let stored = f
        .mentees
        .list_mentees(as_company("acme", ListMenteesRequest {})?)
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
