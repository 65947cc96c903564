//! Importing member companies at the node: all or nothing, every wrong field and every
//! duplicate of the import named, known members left alone, changed ones refused.

mod common;

use common::{TestNode, sqlite_node};
use sha2::{Digest, Sha256};
use tandem_proto::{Company, Membership};
use tonic::Code;
use tonic_types::StatusExt;

fn muster() -> Company {
    Company {
        legal_name: "Muster Maschinenbau GmbH".into(),
        register_number: "HRB 12345 München".into(),
        reference: "M-17".into(),
        ..Default::default()
    }
}

fn beispiel() -> Company {
    Company {
        legal_name: "Beispiel AG".into(),
        register_number: "HRB 999 Berlin".into(),
        group_register_number: "HRB 1 Berlin".into(),
        reference: "M-18".into(),
        ..Default::default()
    }
}

fn sha256(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

async fn feed(node: &TestNode, since: u64) -> Vec<Membership> {
    node.state
        .membership_changes(since, 0)
        .await
        .expect("membership feed")
        .memberships
}

#[tokio::test]
async fn an_import_admits_the_new_companies_once() {
    let node = sqlite_node().await;
    let known = node
        .state
        .admit_company(&node.staff, muster())
        .await
        .expect("admit")
        .company
        .expect("company");
    let file = [
        Company {
            // The same company in another spelling, as the file has it.
            register_number: "hrb 12345 münchen".into(),
            ..muster()
        },
        beispiel(),
        Company {
            legal_name: "Ohne Nummer KG".into(),
            register_number: "HRA 5 Hamburg".into(),
            ..Default::default()
        },
    ];

    let dry = node
        .state
        .import_companies("cli", &file, true)
        .await
        .expect("dry run");
    assert_eq!((dry.admitted(), dry.unchanged()), (2, 1));
    assert!(
        dry.companies.iter().all(|c| c.enrolment_code.is_empty()),
        "a dry run issues no codes"
    );
    assert_eq!(node.state.list_companies().await.expect("list").len(), 1);
    assert_eq!(feed(&node, 1).await, [], "a dry run stores nothing");

    let report = node
        .state
        .import_companies("cli", &file, false)
        .await
        .expect("import");
    assert_eq!((report.admitted(), report.unchanged()), (2, 1));
    let first = &report.companies[0];
    assert_eq!(
        (
            first.company_id.as_str(),
            first.admitted,
            first.enrolment_code.as_str()
        ),
        (known.company_id.as_str(), false, "")
    );
    let memberships = feed(&node, 1).await;
    for (imported, membership) in report.companies[1..].iter().zip(&memberships) {
        assert!(imported.admitted);
        assert_eq!(imported.company_id, membership.company_id);
        assert_eq!(
            membership.enrolment_code_hash,
            sha256(&imported.enrolment_code)
        );
        assert!(
            !format!("{imported:?}").contains(&imported.enrolment_code),
            "debug output hides the code"
        );
    }
    assert_eq!(report.companies[1].reference, "M-18");
    assert_eq!(report.companies[2].legal_name, "Ohne Nummer KG");
    let listed = node.state.list_companies().await.expect("list");
    assert_eq!(listed.len(), 3);

    let again = node
        .state
        .import_companies("cli", &file, false)
        .await
        .expect("import again");
    assert_eq!((again.admitted(), again.unchanged()), (0, 3));
    assert!(again.companies.iter().all(|c| c.enrolment_code.is_empty()));
    assert_eq!(node.state.list_companies().await.expect("list"), listed);
    assert_eq!(feed(&node, 3).await, [], "a re-import changes nothing");
    let audited = node
        .state
        .list_audit_events(0, 0)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "company.admitted" && e.key_id == "cli")
        .count();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn an_import_with_bad_duplicate_or_changed_records_names_each_and_stores_nothing() {
    let node = sqlite_node().await;
    node.state
        .admit_company(&node.staff, muster())
        .await
        .expect("admit");
    let bad = [
        beispiel(),
        Company {
            legal_name: String::new(),
            register_number: "-".into(),
            ..beispiel()
        },
        Company {
            register_number: "hrb999berlin".into(),
            reference: "M-30".into(),
            ..beispiel()
        },
        Company {
            register_number: "HRB 31".into(),
            ..beispiel()
        },
    ];
    let status = tonic::Status::from(
        node.state
            .import_companies("cli", &bad, false)
            .await
            .expect_err("bad records"),
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_error_details()
        .bad_request()
        .expect("details")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(
        fields,
        [
            "companies[1].legal_name",
            "companies[1].register_number",
            "companies[2].register_number",
            "companies[3].reference",
        ]
    );
    assert!(
        status
            .message()
            .contains("companies[2].register_number: is also the register number of companies[0]"),
        "{}",
        status.message()
    );

    // A record that would change a member refuses the whole import.
    node.state
        .admit_company(
            &node.staff,
            Company {
                legal_name: "Dritte GmbH".into(),
                register_number: "HRB 3".into(),
                ..Default::default()
            },
        )
        .await
        .expect("admit");
    let changed = [
        beispiel(),
        Company {
            legal_name: "Muster Holding GmbH".into(),
            ..muster()
        },
        Company {
            legal_name: "Dritte Zwei GmbH".into(),
            register_number: "hrb3".into(),
            ..Default::default()
        },
    ];
    let status = tonic::Status::from(
        node.state
            .import_companies("cli", &changed, false)
            .await
            .expect_err("changed"),
    );
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        status
            .message()
            .starts_with("companies[1].reference: already admitted as company"),
        "{}",
        status.message()
    );
    assert!(
        status
            .message()
            .contains("; companies[2].register_number: "),
        "{}",
        status.message()
    );
    assert!(
        status
            .message()
            .ends_with("an import does not change companies"),
        "{}",
        status.message()
    );
    assert_eq!(node.state.list_companies().await.expect("list").len(), 2);
    assert_eq!(feed(&node, 2).await, []);
}
