//! Shared set-up of the node's tests: a migrated database (a SQLite file in a temporary
//! directory, or a scratch PostgreSQL database), a node on it, and sample records.

#![allow(dead_code)]

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tandem_node::{NodeConfig, NodeState, PublicationConfig, Staff};
use tandem_proto::{
    CareerLevel, CompanySizeBand, DeliverIntroductionRequest, Format, Goal, Industry,
    MenteeSummary, Mentor, ScoreReason, Topic,
};
use tandem_storage::{MigratorTrait, NodeMigrator};

pub const PSEUDONYM_SECRET: &str = "node-secret-for-tests-0123456789abcdef";
pub const FEDERATION_KEY: &str = "federation-key-for-tests-0123456789abcdef";

/// The staff key the tests install at every node (scope `node-admin`).
pub const STAFF_KEY: &str = "tdm_kteststaff_0123456789abcdef0123456789abcdef01";

/// Installs [`STAFF_KEY`] at `state` and returns the staff member it authenticates.
pub async fn staff(state: &NodeState) -> Staff {
    state
        .install_staff_key("tests", STAFF_KEY)
        .await
        .expect("install staff key");
    state
        .authenticate_staff(STAFF_KEY)
        .await
        .expect("staff key authenticates")
}

/// A `NodeAdminService` client that sends `key` as `authorization: Bearer <key>`.
pub async fn admin_client(
    endpoint: String,
    key: &str,
) -> tandem_proto::node_admin_service_client::NodeAdminServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor + Clone,
    >,
> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {key}").parse().expect("ascii key");
    tandem_proto::node_admin_service_client::NodeAdminServiceClient::with_interceptor(
        channel,
        move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
            Ok(request)
        },
    )
}

/// A node under test, with its own handle on the database for looking behind the API.
pub struct TestNode {
    pub state: Arc<NodeState>,
    /// An authenticated member of the node's staff, for the calls that need one.
    pub staff: Staff,
    pub db: DatabaseConnection,
    pub config: NodeConfig,
    _dir: Option<tempfile::TempDir>,
}

pub fn config(database_url: &str) -> NodeConfig {
    NodeConfig {
        node_id: "ind-assoc".into(),
        display_name: "Industry Association".into(),
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        health_listen: None,
        database_url: database_url.into(),
        pseudonym_secret: PSEUDONYM_SECRET.into(),
        federation_key: FEDERATION_KEY.into(),
        staff_rate_limit_per_second: 20,
        staff_rate_limit_burst: 100,
        enrolment_code_days: 14,
        tls: None,
        admin_tls: None,
        // The tests here publish one or two mentors; k-anonymity has its own tests.
        publication: PublicationConfig {
            k: 1,
            ..PublicationConfig::default()
        },
    }
}

async fn node_on(url: &str, dir: Option<tempfile::TempDir>) -> TestNode {
    let config = config(url);
    config.validate().expect("valid test config");
    let db = tandem_storage::connect(url).await.expect("connect");
    NodeMigrator::up(&db, None).await.expect("migrate");
    let state = NodeState::new(db.clone(), &config);
    TestNode {
        staff: staff(&state).await,
        state,
        db,
        config,
        _dir: dir,
    }
}

/// Returns a node on a fresh SQLite file.
pub async fn sqlite_node() -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = tandem_storage::sqlite_url(&dir.path().join("node.sqlite"));
    node_on(&url, Some(dir)).await
}

/// Returns a node on a scratch PostgreSQL database when `TANDEM_TEST_POSTGRES_URL` is set.
pub async fn postgres_node() -> Option<TestNode> {
    let Ok(server) = std::env::var("TANDEM_TEST_POSTGRES_URL") else {
        eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the PostgreSQL variant");
        return None;
    };
    let url = tandem_storage::create_scratch_database(&server, "tandem_node")
        .await
        .expect("scratch database");
    Some(node_on(&url, None).await)
}

/// A complete, valid mentor record.
pub fn erika() -> Mentor {
    Mentor {
        display_name: "Erika Mustermann".into(),
        email: "erika.mustermann@muster-maschinenbau.example".into(),
        employer_name: "Muster Maschinenbau GmbH".into(),
        employer_registry_number: "HRB 12345 München".into(),
        group_registry_number: String::new(),
        title: "Geschäftsführerin Vertrieb".into(),
        career_level: CareerLevel::Director as i32,
        years_of_experience: 22,
        industries: vec![Industry::Manufacturing as i32, Industry::Energy as i32],
        expertise: vec![Topic::Leadership as i32, Topic::Sales as i32],
        languages: vec!["de".into(), "en".into()],
        region: "DE-BY".into(),
        formats: vec![Format::Remote as i32, Format::InPerson as i32],
        capacity: 2,
        publication_consent: tandem_proto::PublicationConsent::Granted as i32,
        ..Default::default()
    }
}

/// Another mentor, named so that it sorts after Erika.
pub fn max() -> Mentor {
    Mentor {
        display_name: "Max Beispiel".into(),
        email: "max@beispiel.example".into(),
        employer_name: "Beispiel AG".into(),
        employer_registry_number: "HRB 999 Berlin".into(),
        group_registry_number: "HRB 1 Berlin".into(),
        career_level: CareerLevel::Executive as i32,
        years_of_experience: 7,
        region: "DE-BE".into(),
        ..erika()
    }
}

/// An introduction for the mentor published under `pseudonym`.
pub fn introduction(id: &str, pseudonym: &str) -> DeliverIntroductionRequest {
    DeliverIntroductionRequest {
        introduction_id: id.into(),
        pseudonym: pseudonym.into(),
        mentee: Some(MenteeSummary {
            career_level: CareerLevel::TeamLead as i32,
            goals: vec![Goal {
                topic: Topic::Leadership as i32,
                priority: 3,
            }],
            languages: vec!["de".into()],
            format: Format::Remote as i32,
            region: String::new(),
            industry: Industry::ItSoftware as i32,
            company_size_band: CompanySizeBand::Small as i32,
        }),
        reasons: vec![ScoreReason {
            criterion: "goal_coverage".into(),
            points: 40,
            detail: "covers 1 of 1 goals (leadership)".into(),
        }],
        score: 87,
        mentee_ref: String::new(),
    }
}
