//! Enrolment over real gRPC: a member company exchanges the code its association handed it for
//! its key, which submits mentees as the membership says — and codes that are wrong, used,
//! expired or replaced, malformed ones, and too many attempts from one address are refused.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use sea_orm::EntityTrait;
use support::node::employer_token;
use support::{Harness, TestNode, mentee, submission};
use tandem_proto::{EnrolCompanyRequest, EnrolCompanyResponse, ListMenteesRequest};
use tandem_storage::broker::mentee as mentee_row;
use tonic::Code;

/// The one answer for every code that is not accepted.
const NOT_ACCEPTED: &str = "enrolment code not accepted: it is unknown, already used or expired; \
                            ask your association for a new one";

fn request(code: &str) -> EnrolCompanyRequest {
    EnrolCompanyRequest {
        enrolment_code: code.to_owned(),
        label: "HR system".to_owned(),
    }
}

async fn enrol(harness: &Harness, code: &str) -> Result<EnrolCompanyResponse, tonic::Status> {
    harness
        .enrolment()
        .enrol_company(request(code))
        .await
        .map(tonic::Response::into_inner)
}

fn assert_not_accepted(status: &tonic::Status) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(status.message(), NOT_ACCEPTED);
}

/// A harness whose PostgreSQL database (when configured) is named after enrolment.
async fn harness() -> Harness {
    Harness::from_env("tandem_enrolment", |_| {}).await
}

/// Starts a node `chamber` registered at the broker.
async fn chamber(harness: &Harness) -> TestNode {
    let node = TestNode::start("chamber").await;
    harness.register(&node).await;
    node
}

#[tokio::test]
async fn an_enrolled_key_submits_mentees_with_the_membership_tokens_and_node() {
    let harness = harness().await;
    let chamber = chamber(&harness).await;
    let admitted = chamber.admit("HRB 777 Beispiel");
    let synced = harness
        .broker
        .sync_nodes(Some("chamber"))
        .await
        .expect("sync");
    assert_eq!(synced[0].memberships, 1, "{synced:?}");

    let enrolled = enrol(&harness, &admitted.code).await.expect("enrol");
    assert_eq!(enrolled.company_id, admitted.company_id);
    assert_eq!(enrolled.node_id, "chamber");
    assert!(
        enrolled
            .api_key
            .starts_with(&format!("tdm_{}_", enrolled.key_id))
    );

    let mut company = harness.with_key(&enrolled.api_key);
    let submitted = company
        .submit_mentee(submission("k", mentee()))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(submitted.home_node_id, "chamber");
    let row = mentee_row::Entity::find_by_id(submitted.mentee_id.clone())
        .one(&harness.db)
        .await
        .expect("query")
        .expect("stored");
    assert_eq!(row.company_id, admitted.company_id);
    let needs: serde_json::Value = serde_json::from_str(&row.needs).expect("needs");
    assert_eq!(needs["employer_token"], employer_token("HRB 777 Beispiel"));
    assert_eq!(needs["group_token"], employer_token("HRB 777 Beispiel"));
    let listed = company
        .list_mentees(ListMenteesRequest {})
        .await
        .expect("list")
        .into_inner()
        .mentees;
    assert_eq!(listed.len(), 1);

    let keys = harness.broker.list_keys().await.expect("keys");
    let key = keys.iter().find(|k| k.id == enrolled.key_id).expect("key");
    assert_eq!(
        (key.scope.as_str(), key.tenant.as_str(), key.label.as_str()),
        ("company", admitted.company_id.as_str(), "HR system")
    );
    let audit = harness
        .broker
        .list_audit_events(0, 1000)
        .await
        .expect("audit");
    let actor = format!("company:{}", admitted.company_id);
    let enrolment = audit
        .iter()
        .find(|e| e.action == "company.enrolled")
        .expect("audited");
    assert_eq!(
        (enrolment.actor.as_str(), enrolment.object_id.as_str()),
        (actor.as_str(), admitted.company_id.as_str())
    );
    assert!(enrolment.detail.contains(&enrolled.key_id), "{enrolment:?}");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "key.created" && e.actor == actor && e.object_id == key.id)
    );
    assert!(
        !audit.iter().any(|e| e.detail.contains(&admitted.code)),
        "the code is never recorded"
    );
    chamber.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_company_enrols_right_after_its_admission_without_a_sync() {
    let harness = harness().await;
    let chamber = chamber(&harness).await;
    let admitted = chamber.admit("HRB 778 Sofort");
    // Spaces, dashes and capitals from a letter are fine.
    let typed = format!(" {} ", admitted.code.to_uppercase().replacen("_", "_-", 1));
    let enrolled = enrol(&harness, &typed).await.expect("enrol at once");
    assert_eq!(enrolled.company_id, admitted.company_id);
    let nodes = harness.broker.list_nodes().await.expect("nodes");
    let row = nodes.iter().find(|n| n.node_id == "chamber").expect("node");
    assert_eq!(row.profiles, 0, "only the membership feed was pulled");
    harness
        .with_key(&enrolled.api_key)
        .submit_mentee(submission("k", mentee()))
        .await
        .expect("submit");
    chamber.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_code_works_once_and_a_new_code_replaces_the_old_one() {
    let harness = harness().await;
    let chamber = chamber(&harness).await;
    let admitted = chamber.admit("HRB 779 Einmal");
    enrol(&harness, &admitted.code).await.expect("first");
    let again = enrol(&harness, &admitted.code).await.expect_err("used");
    assert_not_accepted(&again);

    // The association issues a new code (the first key was lost, say): the old one stays
    // refused, the new one gives a second key for the same company.
    let fresh = chamber.issue_code(&admitted.company_id);
    let old = enrol(&harness, &admitted.code).await.expect_err("replaced");
    assert_not_accepted(&old);
    let second = enrol(&harness, &fresh).await.expect("new code");
    assert_eq!(second.company_id, admitted.company_id);
    let keys = harness.broker.list_keys().await.expect("keys");
    let company_keys = keys
        .iter()
        .filter(|k| k.tenant == admitted.company_id && !k.revoked)
        .count();
    assert_eq!(company_keys, 2);
    chamber.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn two_enrolments_with_one_code_at_once_give_one_key() {
    let harness = harness().await;
    let chamber = chamber(&harness).await;
    let admitted = chamber.admit("HRB 780 Zugleich");
    harness.broker.sync_nodes(None).await.expect("sync");
    let (a, b) = tokio::join!(
        enrol(&harness, &admitted.code),
        enrol(&harness, &admitted.code)
    );
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        (a, b) => panic!("exactly one enrolment must succeed: {a:?} {b:?}"),
    };
    assert_not_accepted(&lost);
    assert_eq!(won.company_id, admitted.company_id);
    let keys = harness.broker.list_keys().await.expect("keys");
    assert_eq!(
        keys.iter()
            .filter(|k| k.tenant == admitted.company_id)
            .count(),
        1
    );
    chamber.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn expired_unknown_and_removed_codes_get_the_same_refusal() {
    let harness = harness().await;
    let chamber = chamber(&harness).await;
    let expired = chamber.admit("HRB 781 Abgelaufen");
    chamber.expire_code(&expired.company_id);
    let removed = chamber.admit("HRB 782 Entfernt");
    chamber.remove(&removed.company_id);
    let unknown = tandem_service::enrolment::generate().code;
    for code in [&expired.code, &removed.code, &unknown] {
        let refused = enrol(&harness, code).await.expect_err("not accepted");
        assert_not_accepted(&refused);
    }
    assert!(
        harness
            .broker
            .list_keys()
            .await
            .expect("keys")
            .iter()
            .all(|k| k.tenant != expired.company_id && k.tenant != removed.company_id)
    );
    chamber.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_malformed_code_or_label_is_refused_naming_the_field() {
    let harness = harness().await;
    for (code, label, field) in [
        ("tec_123", "", "enrolment_code"),
        ("", "", "enrolment_code"),
        (
            "tdm_k1_0123456789abcdef0123456789abcdef",
            "",
            "enrolment_code",
        ),
        (
            "tec_0123456789abcdef0123456789abcdef",
            "line\nbreak",
            "label",
        ),
    ] {
        let refused = harness
            .enrolment()
            .enrol_company(EnrolCompanyRequest {
                enrolment_code: code.to_owned(),
                label: label.to_owned(),
            })
            .await
            .expect_err(field);
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            refused.message().starts_with(&format!("{field}: ")),
            "{}",
            refused.message()
        );
        let details = tonic_types::StatusExt::get_error_details(&refused);
        let violations = &details.bad_request().expect("details").field_violations;
        assert_eq!(violations[0].field, field);
    }
    harness.stop().await;
}

#[tokio::test]
async fn attempts_are_limited_per_peer_address() {
    let harness = Harness::from_env("tandem_enrolment", |c| {
        c.enrolment_rate_limit_per_minute = 1;
        c.enrolment_rate_limit_burst = 2;
    })
    .await;
    let unknown = || tandem_service::enrolment::generate().code;
    for _ in 0..2 {
        let refused = enrol(&harness, &unknown()).await.expect_err("unknown");
        assert_not_accepted(&refused);
    }
    let limited = enrol(&harness, &unknown()).await.expect_err("limited");
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    // Even a malformed code counts, and the limit is checked first.
    let limited = enrol(&harness, "nonsense").await.expect_err("limited");
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");

    // The calls above came from 127.0.0.1, which the broker saw: another address still
    // gets in, that one does not.
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    let err = harness
        .broker
        .enrol_company(Some(other), request(&unknown()))
        .await
        .expect_err("unknown code");
    assert_eq!(err.to_string(), NOT_ACCEPTED);
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let err = harness
        .broker
        .enrol_company(Some(local), request(&unknown()))
        .await
        .expect_err("limited");
    assert!(err.to_string().starts_with("rate limit"), "{err}");
    harness.stop().await;
}

#[tokio::test]
async fn behind_tls_the_broker_still_knows_the_peer_address() {
    use tandem_tls::mint::{self, Validity};
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = mint::init(dir.path()).expect("ca");
    let names = ["127.0.0.1".to_owned()];
    let files = mint::issue_api(dir.path(), "api", &names, Validity::days(1)).expect("cert");
    let url = tandem_storage::sqlite_url(&dir.path().join("broker.sqlite"));
    let mut config = support::quiet_config(&url);
    config.enrolment_rate_limit_per_minute = 1;
    config.enrolment_rate_limit_burst = 1;
    let db = tandem_storage::connect(&url).await.expect("connect");
    <tandem_storage::BrokerMigrator as tandem_storage::MigratorTrait>::up(&db, None)
        .await
        .expect("migrate");
    let broker = tandem_broker::Broker::new(db, config)
        .await
        .expect("broker");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listeners = tandem_broker::Listeners {
        grpc: listener,
        dashboard: None,
        health: None,
        tls: Some(tandem_tls::ApiTls::new(files.cert_files()).expect("api tls")),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tandem_broker::serve(
        std::sync::Arc::clone(&broker),
        listeners,
        async {
            let _ = stopped.await;
        },
    ));
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))
            .expect("endpoint");
    let channel = tandem_tls::ApiClientTls::new(&ca)
        .expect("client tls")
        .connect(&endpoint)
        .await
        .expect("connect");
    let mut client = tandem_proto::enrolment_service_client::EnrolmentServiceClient::new(channel);
    let unknown = || request(&tandem_service::enrolment::generate().code);
    let refused = client.enrol_company(unknown()).await.expect_err("unknown");
    assert_not_accepted(&refused);
    let limited = client.enrol_company(unknown()).await.expect_err("limited");
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    // The limit was counted against 127.0.0.1, not against an unknown peer.
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let err = broker
        .enrol_company(Some(local), unknown())
        .await
        .expect_err("limited");
    assert!(err.to_string().starts_with("rate limit"), "{err}");
    assert!(
        broker
            .enrol_company(None, unknown())
            .await
            .is_err_and(|e| e.to_string() == NOT_ACCEPTED),
        "a caller without an address has its own allowance"
    );
    let _ = stop.send(());
    server.await.expect("join").expect("served");
}
