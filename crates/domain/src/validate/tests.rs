//! Unit tests of the validators: each names the wrong field, and a record with several wrong
//! fields gets them all.

use tandem_proto::Goal as ProtoGoal;

use super::*;

#[test]
fn company_ids_are_checked() {
    assert!(company_id("company", "acme-gmbh").is_ok());
    for bad in ["", "a b", &"x".repeat(129)] {
        assert!(company_id("company", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn endpoints_and_their_schemes_are_checked() {
    assert!(endpoint("endpoint", "https://node.example:7001").is_ok());
    for bad in ["node.example:7001", "ftp://node", "https://exa mple"] {
        assert!(endpoint("endpoint", bad).is_err(), "{bad:?}");
    }
    assert!(endpoint_scheme("endpoint", "http://n", true).is_err());
    assert!(endpoint_scheme("endpoint", "https://n", false).is_err());
    assert!(endpoint_scheme("endpoint", "https://n", true).is_ok());
}

#[test]
fn labels_and_display_names_are_bounded_and_printable() {
    assert!(label("label", "front desk").is_ok());
    assert!(label("label", &"x".repeat(201)).is_err());
    assert!(label("label", "a\tb").is_err());
    assert_eq!(
        display_name("display_name", "  Chamber ").ok(),
        Some("Chamber")
    );
    assert!(display_name("display_name", "a\u{7}").is_err());
}

fn good_mentee() -> MenteeRequest {
    MenteeRequest {
        career_level: CareerLevel::TeamLead as i32,
        goals: vec![ProtoGoal {
            topic: Topic::Leadership as i32,
            priority: 3,
        }],
        languages: vec!["de".into()],
        region: "DE-BY".into(),
        preferred_format: Format::Remote as i32,
        industry: Industry::ItSoftware as i32,
        industry_preference: 0,
        company_size_band: CompanySizeBand::Small as i32,
    }
}

/// The submitting company as its membership describes it.
fn employer() -> crate::Employer {
    crate::Employer {
        employer_token: "a".repeat(64),
        group_token: "b".repeat(64),
        home_node_id: "startups".into(),
    }
}

fn mentee(m: &MenteeRequest) -> Result<crate::MenteeNeeds, crate::Violations> {
    super::mentee(m, &employer())
}

fn good_mentor() -> Mentor {
    Mentor {
        display_name: "Erika Muster".into(),
        email: "erika@example.org".into(),
        employer_name: "Muster GmbH".into(),
        employer_registry_number: "HRB 1234".into(),
        career_level: CareerLevel::Director as i32,
        years_of_experience: 22,
        industries: vec![Industry::Manufacturing as i32],
        expertise: vec![Topic::Leadership as i32],
        languages: vec!["de".into()],
        region: "DE-BY".into(),
        formats: vec![Format::Remote as i32],
        capacity: 2,
        publication_consent: tandem_proto::PublicationConsent::Granted as i32,
        ..Default::default()
    }
}

#[test]
fn a_good_mentee_takes_its_tokens_and_home_node_from_the_membership() {
    let needs = mentee(&good_mentee()).expect("valid");
    assert_eq!(needs.employer_token, "a".repeat(64));
    assert_eq!(needs.group_token, "b".repeat(64));
    assert_eq!(needs.home_node_id, "startups");
}

fn good_company() -> tandem_proto::Company {
    tandem_proto::Company {
        legal_name: " Muster GmbH ".into(),
        register_number: "HRB 1234 München".into(),
        reference: "M-17".into(),
        ..Default::default()
    }
}

#[test]
fn a_company_is_checked_whole() {
    let record = company(&good_company()).expect("valid");
    assert_eq!(record.legal_name, "Muster GmbH");
    assert_eq!(record.group_register_number, "");
    let err = company(&tandem_proto::Company {
        legal_name: String::new(),
        register_number: " - ".into(),
        group_register_number: "a\u{7}".into(),
        reference: "x".repeat(65),
        ..Default::default()
    })
    .expect_err("four problems");
    assert_eq!(
        err.fields(),
        [
            "company.legal_name",
            "company.register_number",
            "company.group_register_number",
            "company.reference",
        ],
        "{err}"
    );
    let empty = company(&tandem_proto::Company {
        register_number: "  ".into(),
        ..good_company()
    })
    .expect_err("empty register number");
    assert_eq!(empty.to_string(), "company.register_number: is required");
}

#[test]
fn a_membership_from_a_node_must_carry_tokens_and_a_uuid() {
    let good = tandem_proto::Membership {
        company_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
        employer_token: "a".repeat(64),
        group_token: "b".repeat(64),
        enrolment_code_hash: String::new(),
        enrolment_code_expires_at_ms: 0,
        active: true,
        version: 3,
    };
    assert!(membership("memberships[0]", &good).is_ok());
    let bad = tandem_proto::Membership {
        company_id: "acme".into(),
        employer_token: "nope".into(),
        enrolment_code_hash: "xyz".into(),
        ..good
    };
    assert_eq!(
        membership("memberships[0]", &bad)
            .expect_err("bad")
            .fields(),
        [
            "memberships[0].company_id",
            "memberships[0].employer_token",
            "memberships[0].enrolment_code_hash",
        ]
    );
}

#[test]
fn names_the_field_of_a_bad_mentee() {
    type Mutation = fn(&mut MenteeRequest);
    let cases: Vec<(Mutation, &str)> = vec![
        (|m| m.goals.clear(), "mentee.goals"),
        (
            |m| m.languages = vec!["de".into(), "xx".into()],
            "mentee.languages[1]",
        ),
        (|m| m.career_level = 99, "mentee.career_level"),
        (|m| m.career_level = 0, "mentee.career_level"),
        (|m| m.goals[0].priority = 7, "mentee.goals[0].priority"),
        (
            |m| m.preferred_format = Format::InPerson as i32,
            "mentee.region",
        ),
    ];
    for (mutate, field) in cases {
        let mut m = good_mentee();
        mutate(&mut m);
        if field == "mentee.region" {
            m.region.clear();
        }
        let err = mentee(&m).expect_err(field);
        assert_eq!(err.fields(), [field], "{err}");
    }
}

#[test]
fn refuses_capacity_out_of_range() {
    for capacity in [0, 11, 1000] {
        let err = mentor(&Mentor {
            capacity,
            ..good_mentor()
        })
        .expect_err("capacity");
        assert_eq!(err.fields(), ["mentor.capacity"]);
    }
    assert!(mentor(&good_mentor()).is_ok());
}

#[test]
fn refuses_an_empty_idempotency_key() {
    assert_eq!(
        idempotency_key("").expect_err("empty").field,
        "idempotency_key"
    );
    assert!(idempotency_key("order-17").is_ok());
}

#[test]
fn a_mentee_with_several_problems_gets_them_all_at_once() {
    let m = MenteeRequest {
        career_level: CareerLevel::Executive as i32,
        goals: vec![
            ProtoGoal {
                topic: Topic::Leadership as i32,
                priority: 7,
            },
            ProtoGoal {
                topic: Topic::Leadership as i32,
                priority: 2,
            },
        ],
        languages: vec!["de".into(), "xx".into()],
        region: "XX-YY".into(),
        preferred_format: Format::InPerson as i32,
        industry: 0,
        ..good_mentee()
    };
    let err = mentee(&m).expect_err("several problems");
    assert_eq!(
        err.fields(),
        [
            "mentee.career_level",
            "mentee.goals[0].priority",
            "mentee.goals[1].topic",
            "mentee.languages[1]",
            "mentee.region",
            "mentee.industry",
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("mentee.career_level: no mentor level stands above executive; "),
        "{text}"
    );
    assert!(
        text.contains("mentee.goals[1].topic: duplicate topic"),
        "{text}"
    );
    assert!(
        text.contains("mentee.region: unknown region \"XX-YY\""),
        "{text}"
    );
}

#[test]
fn an_empty_mentor_names_every_required_field() {
    let err = mentor(&Mentor::default()).expect_err("empty");
    assert_eq!(
        err.fields(),
        [
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
        "{err}"
    );
    for v in &err {
        assert!(!v.description.is_empty(), "{v}");
    }
}

#[test]
fn each_bad_entry_of_a_list_is_its_own_violation() {
    let err = mentor(&Mentor {
        industries: vec![
            0,
            Industry::Manufacturing as i32,
            999,
            Industry::Manufacturing as i32,
        ],
        languages: vec!["xx".into(), "de".into(), "de".into()],
        ..good_mentor()
    })
    .expect_err("bad entries");
    assert_eq!(
        err.fields(),
        [
            "mentor.industries[0]",
            "mentor.industries[2]",
            "mentor.industries[3]",
            "mentor.languages[0]",
            "mentor.languages[2]",
        ],
        "{err}"
    );
}

#[test]
fn regions_must_exist_in_iso_3166() {
    for fake in ["XX-YY", "ZZ", "DE-XX"] {
        let err = mentor(&Mentor {
            region: fake.into(),
            ..good_mentor()
        })
        .expect_err(fake);
        assert_eq!(err.fields(), ["mentor.region"], "{err}");
        assert!(err.to_string().contains(fake), "{err}");
        let err = mentee(&MenteeRequest {
            region: fake.into(),
            ..good_mentee()
        })
        .expect_err(fake);
        assert_eq!(err.fields(), ["mentee.region"], "{err}");
    }
    for real in ["DE", "DE-BY", "FR-75C", "AT-9"] {
        let record = mentor(&Mentor {
            region: real.into(),
            ..good_mentor()
        })
        .expect(real);
        assert_eq!(record.region, real);
    }
}

#[test]
fn a_remote_mentee_may_leave_the_region_empty_but_not_wrong() {
    let remote = MenteeRequest {
        region: String::new(),
        ..good_mentee()
    };
    assert_eq!(mentee(&remote).expect("remote").region, "");
    let unknown_format = MenteeRequest {
        preferred_format: 42,
        region: "XX-YY".into(),
        ..good_mentee()
    };
    assert_eq!(
        mentee(&unknown_format).expect_err("two problems").fields(),
        ["mentee.preferred_format", "mentee.region"]
    );
}

#[test]
fn a_bad_profile_lists_every_field() {
    let err = profile("changes[3].upsert", &AnonymisedProfile::default()).expect_err("empty");
    assert_eq!(
        err.fields(),
        [
            "changes[3].upsert.pseudonym",
            "changes[3].upsert.career_level",
            "changes[3].upsert.experience_band",
            "changes[3].upsert.industries",
            "changes[3].upsert.expertise",
            "changes[3].upsert.languages",
            "changes[3].upsert.region",
            "changes[3].upsert.formats",
            "changes[3].upsert.employer_token",
            "changes[3].upsert.group_token",
        ],
        "{err}"
    );
}
