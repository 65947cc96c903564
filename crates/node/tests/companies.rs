//! Member companies at the node: admission with a one-time enrolment code, the membership feed
//! the broker reads (tokens and the code's hash, nothing that names the company), new codes,
//! removal and re-admission, and what the audit log keeps (imports: `company_import.rs`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{FEDERATION_KEY, STAFF_KEY, TestNode, admin_client, postgres_node, sqlite_node};
use prost::Message;
use sha2::{Digest, Sha256};
use tandem_node::{Clock, NodeError, NodeState};
use tandem_proto::node_service_client::NodeServiceClient;
use tandem_proto::{
    AdmitCompanyRequest, Company, GetCompanyRequest, GetMembershipChangesRequest,
    IssueEnrolmentCodeRequest, ListCompaniesRequest, ListNodeAuditEventsRequest, Membership,
    RemoveCompanyRequest,
};
use tandem_storage::{MigratorTrait, NodeMigrator};
use tokio::net::TcpListener;
use tonic::Code;
use tonic_types::StatusExt;

const DAY_MS: i64 = 86_400_000;

/// A member company without a group.
fn muster() -> Company {
    Company {
        legal_name: "Muster Maschinenbau GmbH".into(),
        register_number: "HRB 12345 München".into(),
        reference: "M-17".into(),
        ..Default::default()
    }
}

/// A member company of a group.
fn beispiel() -> Company {
    Company {
        legal_name: "Beispiel AG".into(),
        register_number: "HRB 999 Berlin".into(),
        group_register_number: "HRB 1 Berlin".into(),
        reference: "M-18".into(),
        ..Default::default()
    }
}

fn token(register_number: &str) -> String {
    tandem_domain::pseudonym::employer_token(FEDERATION_KEY.as_bytes(), register_number)
}

fn sha256(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

fn code(err: NodeError) -> Code {
    tonic::Status::from(err).code()
}

async fn feed(node: &TestNode, since: u64) -> Vec<Membership> {
    node.state
        .membership_changes(since, 0)
        .await
        .expect("membership feed")
        .memberships
}

async fn admission(node: &TestNode) {
    let staff = node.staff.clone();
    let admitted = node
        .state
        .admit_company(&staff, muster())
        .await
        .expect("admit");
    assert!(!admitted.already_admitted);
    let code = admitted.enrolment_code.clone();
    assert!(
        code.starts_with("tec_") && code.len() == 36,
        "a code is tec_ and 32 hex digits: {code}"
    );
    let company = admitted.company.expect("company");
    assert!(uuid::Uuid::parse_str(&company.company_id).is_ok());
    assert_eq!(
        (
            company.legal_name.as_str(),
            company.register_number.as_str(),
            company.reference.as_str()
        ),
        ("Muster Maschinenbau GmbH", "HRB 12345 München", "M-17")
    );
    assert!(company.active);
    assert_eq!(company.removed_at_ms, 0);
    assert_eq!(
        company.enrolment_code_expires_at_ms,
        company.admitted_at_ms + 14 * DAY_MS,
        "a code is valid for enrolment_code_days"
    );
    // Reads never show the code again.
    assert_eq!(
        node.state
            .get_company(&company.company_id)
            .await
            .expect("get"),
        company
    );
    assert_eq!(
        node.state.list_companies().await.expect("list"),
        std::slice::from_ref(&company)
    );

    // The broker learns the tokens and the code's hash, nothing that names the company.
    let response = node.state.membership_changes(0, 0).await.expect("feed");
    assert!(!response.has_more);
    assert_eq!(response.next_version, 1);
    let membership = &response.memberships[..];
    assert_eq!(
        membership,
        [Membership {
            company_id: company.company_id.clone(),
            employer_token: token("HRB 12345 München"),
            group_token: token("HRB 12345 München"),
            enrolment_code_hash: sha256(&code),
            enrolment_code_expires_at_ms: company.enrolment_code_expires_at_ms,
            active: true,
            version: 1,
        }]
    );
    assert!(tandem_domain::validate::membership("membership", &membership[0]).is_ok());
    let bytes = response.encode_to_vec();
    for secret in [
        code.as_str(),
        "Muster",
        "HRB",
        "12345",
        "M-17",
        &tandem_domain::pseudonym::normalise_registry_number("HRB 12345 München"),
    ] {
        let needle = secret.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the feed leaks {secret:?}"
        );
    }
}

#[tokio::test]
async fn an_admitted_company_gets_its_code_once_and_the_feed_only_tokens_and_a_hash() {
    admission(&sqlite_node().await).await;
}

#[tokio::test]
async fn admission_on_postgres() {
    if let Some(node) = postgres_node().await {
        admission(&node).await;
    }
}

#[tokio::test]
async fn a_group_register_number_gives_the_group_token() {
    let node = sqlite_node().await;
    node.state
        .admit_company(&node.staff, beispiel())
        .await
        .expect("admit");
    let membership = &feed(&node, 0).await[0];
    assert_eq!(membership.employer_token, token("HRB 999 Berlin"));
    assert_eq!(membership.group_token, token("HRB 1 Berlin"));
    assert_eq!(
        membership.group_token,
        token("hrb1berlin"),
        "any spelling gives the token every node computes"
    );
}

#[tokio::test]
async fn a_retried_admission_admits_nothing_new_and_another_record_is_refused() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let first = node
        .state
        .admit_company(&staff, muster())
        .await
        .expect("admit");
    let company = first.company.expect("company");

    // The same register number in another spelling is the same company.
    for register_number in [
        "HRB 12345 München",
        "hrb12345münchen",
        " HRB-12345-MÜNCHEN ",
    ] {
        let again = node
            .state
            .admit_company(
                &staff,
                Company {
                    register_number: register_number.into(),
                    ..muster()
                },
            )
            .await
            .expect("admit again");
        assert!(again.already_admitted, "{register_number}");
        assert!(again.enrolment_code.is_empty(), "no second code");
        assert_eq!(again.company.as_ref(), Some(&company));
    }
    assert_eq!(feed(&node, 0).await.len(), 1);
    assert_eq!(feed(&node, 1).await, [], "a retry changes no membership");

    let cases = [
        (
            Company {
                legal_name: "Muster Holding GmbH".into(),
                ..muster()
            },
            "company.reference",
        ),
        (
            Company {
                legal_name: "Muster Holding GmbH".into(),
                reference: String::new(),
                ..muster()
            },
            "company.register_number",
        ),
        (
            Company {
                register_number: "HRB 777 Köln".into(),
                ..muster()
            },
            "company.reference",
        ),
        (
            Company {
                reference: "M-99".into(),
                ..muster()
            },
            "company.register_number",
        ),
    ];
    for (record, field) in cases {
        let status = tonic::Status::from(
            node.state
                .admit_company(&staff, record)
                .await
                .expect_err(field),
        );
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert_eq!(
            status.message(),
            format!(
                "{field}: already admitted as company {} with a different record",
                company.company_id
            )
        );
    }
    assert_eq!(node.state.list_companies().await.expect("list"), [company]);
}

#[tokio::test]
async fn a_new_code_replaces_the_old_one_and_removal_ends_the_membership() {
    codes_and_removal(&sqlite_node().await).await;
}

#[tokio::test]
async fn codes_and_removal_on_postgres() {
    if let Some(node) = postgres_node().await {
        codes_and_removal(&node).await;
    }
}

async fn codes_and_removal(node: &TestNode) {
    let staff = node.staff.clone();
    let first = node
        .state
        .admit_company(&staff, muster())
        .await
        .expect("admit");
    let id = first.company.expect("company").company_id;

    let fresh = node
        .state
        .issue_enrolment_code(&staff, &id)
        .await
        .expect("new code");
    assert!(!fresh.already_admitted);
    assert_ne!(fresh.enrolment_code, first.enrolment_code);
    let changed = feed(node, 1).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].version, 2, "a new code is a new version");
    assert_eq!(
        changed[0].enrolment_code_hash,
        sha256(&fresh.enrolment_code)
    );
    assert_eq!(
        feed(node, 0).await,
        changed,
        "the feed serves each membership in its latest state"
    );

    let removed = node
        .state
        .remove_company(&staff, &id)
        .await
        .expect("remove");
    assert!(!removed.active);
    assert!(removed.removed_at_ms > 0);
    assert_eq!(removed.enrolment_code_expires_at_ms, 0, "no open code");
    let gone = feed(node, 2).await;
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (
            gone[0].active,
            gone[0].enrolment_code_hash.as_str(),
            gone[0].version
        ),
        (false, "", 3)
    );
    // Removing again changes nothing.
    assert_eq!(
        node.state
            .remove_company(&staff, &id)
            .await
            .expect("remove again"),
        removed
    );
    assert_eq!(feed(node, 3).await, []);

    let err = node
        .state
        .issue_enrolment_code(&staff, &id)
        .await
        .expect_err("removed");
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), format!("company {id} was removed"));
    for err in [
        node.state
            .issue_enrolment_code(&staff, "no-such-company")
            .await
            .expect_err("unknown"),
        node.state
            .remove_company(&staff, "no-such-company")
            .await
            .expect_err("unknown"),
        node.state
            .get_company("no-such-company")
            .await
            .expect_err("unknown"),
    ] {
        assert_eq!(code(err), Code::NotFound);
    }

    // A removed company can be admitted again: a new membership with a new id and code.
    let back = node
        .state
        .admit_company(&staff, muster())
        .await
        .expect("admit again");
    assert!(!back.already_admitted);
    let back_company = back.company.expect("company");
    assert_ne!(back_company.company_id, id);
    assert!(back.enrolment_code.starts_with("tec_"));
    node.state
        .admit_company(&staff, beispiel())
        .await
        .expect("admit another");
    let listed = node.state.list_companies().await.expect("list");
    let listed: Vec<(&str, bool)> = listed
        .iter()
        .map(|c| (c.legal_name.as_str(), c.active))
        .collect();
    assert_eq!(
        listed,
        [
            ("Beispiel AG", true),
            ("Muster Maschinenbau GmbH", true),
            ("Muster Maschinenbau GmbH", false)
        ],
        "current members first, each part by legal name"
    );
    let replay = feed(node, 0).await;
    let states: Vec<(bool, u64)> = replay.iter().map(|m| (m.active, m.version)).collect();
    assert_eq!(states, [(false, 3), (true, 4), (true, 5)]);
    assert_eq!(replay[0].company_id, id);
    assert_eq!(replay[1].company_id, back_company.company_id);
    assert_eq!(
        replay[0].employer_token, replay[1].employer_token,
        "the same company, the same token"
    );
}

#[tokio::test]
async fn the_membership_feed_pages_in_version_order() {
    let node = sqlite_node().await;
    let mut ids = Vec::new();
    for k in 0..5 {
        let admitted = node
            .state
            .admit_company(
                &node.staff,
                Company {
                    legal_name: format!("Firma {k} GmbH"),
                    register_number: format!("HRB {k}"),
                    reference: String::new(),
                    ..Default::default()
                },
            )
            .await
            .expect("admit");
        ids.push(admitted.company.expect("company").company_id);
    }
    let mut seen = Vec::new();
    let mut since = 0;
    let mut pages = 0;
    loop {
        let page = node.state.membership_changes(since, 2).await.expect("page");
        pages += 1;
        assert!(page.memberships.len() <= 2);
        assert!(page.memberships.iter().all(|m| m.version > since));
        seen.extend(page.memberships.iter().map(|m| m.company_id.clone()));
        since = page.next_version;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "in the order they changed");
    assert_eq!(since, 5);
    let empty = node.state.membership_changes(since, 2).await.expect("page");
    assert_eq!(
        (empty.memberships.len(), empty.next_version, empty.has_more),
        (0, 5, false)
    );
}

#[tokio::test]
async fn a_code_expires_after_the_configured_days() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = tandem_storage::sqlite_url(&dir.path().join("node.sqlite"));
    let mut config = common::config(&url);
    config.enrolment_code_days = 3;
    config.validate().expect("valid config");
    let db = tandem_storage::connect(&url).await.expect("connect");
    NodeMigrator::up(&db, None).await.expect("migrate");
    let at = Arc::new(AtomicI64::new(1_800_000_000_000));
    let clock = {
        let at = at.clone();
        Clock::from_fn(move || at.load(Ordering::SeqCst))
    };
    let state = NodeState::with_clock(db, &config, clock);
    let staff = common::staff(&state).await;

    let admitted = state.admit_company(&staff, muster()).await.expect("admit");
    let company = admitted.company.expect("company");
    assert_eq!(company.admitted_at_ms, 1_800_000_000_000);
    assert_eq!(
        company.enrolment_code_expires_at_ms,
        1_800_000_000_000 + 3 * DAY_MS
    );
    at.fetch_add(DAY_MS, Ordering::SeqCst);
    let fresh = state
        .issue_enrolment_code(&staff, &company.company_id)
        .await
        .expect("new code");
    let expires = fresh.company.expect("company").enrolment_code_expires_at_ms;
    assert_eq!(expires, 1_800_000_000_000 + 4 * DAY_MS);
    let feed = state.membership_changes(0, 0).await.expect("feed");
    assert_eq!(feed.memberships[0].enrolment_code_expires_at_ms, expires);
}

#[tokio::test]
async fn bad_companies_name_every_wrong_field_and_store_nothing() {
    let node = sqlite_node().await;
    let staff = node.staff.clone();
    let fields = |err: NodeError| -> Vec<String> {
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), Code::InvalidArgument);
        status
            .get_error_details()
            .bad_request()
            .expect("bad request details")
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect()
    };
    let empty = node
        .state
        .admit_company(
            &staff,
            Company {
                register_number: "  ".into(),
                ..muster()
            },
        )
        .await
        .expect_err("no register number");
    assert_eq!(fields(empty), ["company.register_number"]);
    let several = node
        .state
        .admit_company(
            &staff,
            Company {
                legal_name: String::new(),
                register_number: " - ".into(),
                group_register_number: "a\u{7}".into(),
                reference: "x".repeat(65),
                ..Default::default()
            },
        )
        .await
        .expect_err("four problems");
    assert_eq!(
        fields(several),
        [
            "company.legal_name",
            "company.register_number",
            "company.group_register_number",
            "company.reference",
        ]
    );
    assert!(node.state.list_companies().await.expect("list").is_empty());
    assert_eq!(feed(&node, 0).await, []);
}

/// Serves `node` on a loopback port; returns its endpoint and the sender that stops it.
async fn serve(
    node: &TestNode,
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
async fn staff_admit_over_grpc_and_the_broker_reads_the_feed() {
    let node = sqlite_node().await;
    let (endpoint, stop, server) = serve(&node).await;
    let mut admin = admin_client(endpoint.clone(), STAFF_KEY).await;
    let mut broker = NodeServiceClient::connect(endpoint.clone())
        .await
        .expect("client");

    // Bad input names each field in the details.
    let status = admin
        .admit_company(AdmitCompanyRequest { company: None })
        .await
        .expect_err("no company");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "company: is required");
    let status = admin
        .admit_company(AdmitCompanyRequest {
            company: Some(Company {
                legal_name: String::new(),
                register_number: String::new(),
                ..muster()
            }),
        })
        .await
        .expect_err("two problems");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_error_details()
        .bad_request()
        .expect("bad request details")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["company.legal_name", "company.register_number"]);

    let admitted = admin
        .admit_company(AdmitCompanyRequest {
            company: Some(muster()),
        })
        .await
        .expect("admit")
        .into_inner();
    let company = admitted.company.clone().expect("company");
    let again = admin
        .admit_company(AdmitCompanyRequest {
            company: Some(muster()),
        })
        .await
        .expect("admit again")
        .into_inner();
    assert!(again.already_admitted && again.enrolment_code.is_empty());
    let status = admin
        .admit_company(AdmitCompanyRequest {
            company: Some(Company {
                legal_name: "Someone Else GmbH".into(),
                ..muster()
            }),
        })
        .await
        .expect_err("another record");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        status.message().starts_with("company.reference: "),
        "{status:?}"
    );

    let fetched = admin
        .get_company(GetCompanyRequest {
            company_id: company.company_id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, company);
    let listed = admin
        .list_companies(ListCompaniesRequest {})
        .await
        .expect("list")
        .into_inner()
        .companies;
    assert_eq!(listed, std::slice::from_ref(&company));
    let fresh = admin
        .issue_enrolment_code(IssueEnrolmentCodeRequest {
            company_id: company.company_id.clone(),
        })
        .await
        .expect("new code")
        .into_inner();
    let feed = broker
        .get_membership_changes(GetMembershipChangesRequest {
            since_version: 0,
            limit: 0,
        })
        .await
        .expect("feed")
        .into_inner();
    assert_eq!(feed.next_version, 2);
    assert_eq!(feed.memberships.len(), 1);
    assert_eq!(
        feed.memberships[0].enrolment_code_hash,
        sha256(&fresh.enrolment_code)
    );
    let removed = admin
        .remove_company(RemoveCompanyRequest {
            company_id: company.company_id.clone(),
        })
        .await
        .expect("remove")
        .into_inner();
    assert!(!removed.active);
    let status = admin
        .issue_enrolment_code(IssueEnrolmentCodeRequest {
            company_id: company.company_id.clone(),
        })
        .await
        .expect_err("removed");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = admin
        .get_company(GetCompanyRequest {
            company_id: "no-such-company".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let feed = broker
        .get_membership_changes(GetMembershipChangesRequest {
            since_version: 2,
            limit: 0,
        })
        .await
        .expect("feed")
        .into_inner();
    assert_eq!(feed.memberships.len(), 1);
    assert!(!feed.memberships[0].active);

    // Without a staff key nothing about companies is answered.
    let mut anonymous =
        tandem_proto::node_admin_service_client::NodeAdminServiceClient::connect(endpoint)
            .await
            .expect("client");
    let status = anonymous
        .list_companies(ListCompaniesRequest {})
        .await
        .expect_err("no key");
    assert_eq!(status.code(), Code::Unauthenticated);

    stop.send(()).expect("server still running");
    server.await.expect("join").expect("server ends cleanly");
}

#[tokio::test]
async fn the_audit_log_records_each_change_of_a_company_without_names_numbers_or_codes() {
    let node = sqlite_node().await;
    let (endpoint, stop, server) = serve(&node).await;
    let (desk, desk_key) = node.state.create_staff_key("desk").await.expect("key");
    let mut admin = admin_client(endpoint, &desk_key).await;
    let admitted = admin
        .admit_company(AdmitCompanyRequest {
            company: Some(muster()),
        })
        .await
        .expect("admit")
        .into_inner();
    let id = admitted.company.expect("company").company_id;
    // A retry, a read and a refused change are not logged.
    admin
        .admit_company(AdmitCompanyRequest {
            company: Some(muster()),
        })
        .await
        .expect("retry");
    admin
        .list_companies(ListCompaniesRequest {})
        .await
        .expect("list");
    let fresh = admin
        .issue_enrolment_code(IssueEnrolmentCodeRequest {
            company_id: id.clone(),
        })
        .await
        .expect("new code")
        .into_inner();
    for _ in 0..2 {
        admin
            .remove_company(RemoveCompanyRequest {
                company_id: id.clone(),
            })
            .await
            .expect("remove");
    }
    admin
        .issue_enrolment_code(IssueEnrolmentCodeRequest {
            company_id: id.clone(),
        })
        .await
        .expect_err("removed");

    let events = admin
        .list_audit_events(ListNodeAuditEventsRequest::default())
        .await
        .expect("audit")
        .into_inner()
        .events;
    let companies: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .filter(|e| e.object_type == "company")
        .map(|e| {
            (
                e.key_id.as_str(),
                e.action.as_str(),
                e.object_type.as_str(),
                e.object_id.as_str(),
            )
        })
        .collect();
    let desk_id = desk.id.as_str();
    assert_eq!(
        companies,
        [
            (desk_id, "company.admitted", "company", id.as_str()),
            (
                desk_id,
                "company.enrolment_code_issued",
                "company",
                id.as_str()
            ),
            (desk_id, "company.removed", "company", id.as_str()),
        ]
    );
    let muster = muster();
    for event in &events {
        for secret in [
            admitted.enrolment_code.as_str(),
            fresh.enrolment_code.as_str(),
            &sha256(&admitted.enrolment_code),
            &sha256(&fresh.enrolment_code),
            muster.legal_name.as_str(),
            muster.register_number.as_str(),
            muster.reference.as_str(),
            "12345",
        ] {
            assert!(!event.detail.contains(secret), "{event:?}");
        }
    }

    stop.send(()).expect("server still running");
    server.await.expect("join").expect("server ends cleanly");
}
