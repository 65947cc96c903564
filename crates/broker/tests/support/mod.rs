//! Shared test support: a broker served on an ephemeral port over a real database, gRPC
//! clients for companies and the operator, the in-memory test node, and test data.
//!
//! Every harness starts a test node `home` that admitted the member companies [`ACME`] and
//! [`GLOBEX`], syncs their memberships, and installs a deterministic company key for each
//! ([`key_of`]), so that most tests need not enrol; `tests/enrolment.rs` goes through the real
//! enrolment instead.

#![allow(dead_code)]

pub mod node;
pub mod served;

use std::net::SocketAddr;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tandem_broker::keys::Scope;
use tandem_broker::{Broker, BrokerConfig, serve};
use tandem_proto::enrolment_service_client::EnrolmentServiceClient;
use tandem_proto::mentee_service_client::MenteeServiceClient;
use tandem_proto::operator_service_client::OperatorServiceClient;
use tandem_proto::{
    AnonymisedProfile, CareerLevel, CompanySizeBand, ExperienceBand, Format, Goal, Industry,
    MenteeRequest, RegisterNodeRequest, SubmitMenteeRequest, Topic,
};
use tandem_storage::{BrokerMigrator, MigratorTrait};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use node::TestNode;

/// Adds the company metadata to every call.
#[derive(Clone)]
pub struct AsCompany(MetadataValue<Ascii>);

impl Interceptor for AsCompany {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert(tandem_broker::grpc::AUTHORIZATION, self.0.clone());
        Ok(request)
    }
}

pub type CompanyClient = MenteeServiceClient<InterceptedService<Channel, AsCompany>>;
pub type OperatorClient = OperatorServiceClient<InterceptedService<Channel, AsCompany>>;

/// The company id of ACME GmbH, a member company of every harness's `home` node.
pub const ACME: &str = "0000ac3e-0000-4000-8000-000000000001";
/// The company id of Globex AG, another member company of `home`.
pub const GLOBEX: &str = "0061ab3c-0000-4000-8000-000000000002";
/// The id of the node that admitted [`ACME`] and [`GLOBEX`].
pub const HOME: &str = "home";

/// The member companies every harness provisions, with their register numbers.
pub const COMPANIES: [(&str, &str); 2] = [(ACME, "HRB 1001 Acme"), (GLOBEX, "HRB 2002 Globex")];

/// Returns the register number a harness company was admitted with.
pub fn register_number(company: &str) -> &'static str {
    COMPANIES
        .iter()
        .find(|(id, _)| *id == company)
        .map(|(_, number)| *number)
        .expect("a harness company")
}

/// Returns the test API key of `tenant` (a company, or `operator`).
pub fn key_of(tenant: &str) -> String {
    let digest = hex_digest(tenant);
    format!("tdm_t{}_{}", &digest[..10], &digest[10..])
}

fn hex_digest(tenant: &str) -> String {
    use std::fmt::Write;
    // A tiny deterministic stretch of the name; the keys only need to differ per tenant.
    let mut out = String::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    while out.len() < 48 {
        for b in tenant.bytes().chain(out.len().to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let _ = write!(out, "{h:016x}");
    }
    out
}

fn bearer(tenant: &str) -> AsCompany {
    bearer_key(&key_of(tenant))
}

fn bearer_key(key: &str) -> AsCompany {
    AsCompany(format!("Bearer {key}").parse().expect("ascii key"))
}

/// A broker served on an ephemeral port.
pub struct Harness {
    pub broker: Arc<Broker>,
    pub db: DatabaseConnection,
    pub addr: SocketAddr,
    pub dir: Option<tempfile::TempDir>,
    /// The node that admitted the harness's companies.
    pub home: TestNode,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

/// Returns a configuration for tests: background jobs off, so that tests drive every step.
pub fn quiet_config(url: &str) -> BrokerConfig {
    let mut config = BrokerConfig::new(url);
    config.sync_interval_secs = 0;
    config.outbox_interval_secs = 0;
    config
}

impl Harness {
    /// Starts a broker over a fresh SQLite file with background jobs off.
    pub async fn sqlite() -> Harness {
        Self::sqlite_with(|_| {}).await
    }

    /// Starts a broker over a fresh SQLite file with an adjusted configuration.
    pub async fn sqlite_with(adjust: impl FnOnce(&mut BrokerConfig)) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = tandem_storage::sqlite_url(&dir.path().join("broker.sqlite"));
        let mut config = quiet_config(&url);
        adjust(&mut config);
        Self::start(config, Some(dir)).await
    }

    /// Starts a broker over a fresh PostgreSQL database when `TANDEM_TEST_POSTGRES_URL` is set
    /// (named after `name`), else over a fresh SQLite file; background jobs off.
    pub async fn from_env(name: &str, adjust: impl FnOnce(&mut BrokerConfig)) -> Harness {
        match std::env::var("TANDEM_TEST_POSTGRES_URL") {
            Ok(server) if !server.is_empty() => {
                let url = tandem_storage::create_scratch_database(&server, name)
                    .await
                    .expect("scratch database");
                let mut config = quiet_config(&url);
                adjust(&mut config);
                Self::start(config, None).await
            }
            _ => Self::sqlite_with(adjust).await,
        }
    }

    /// Migrates the configuration's database and starts a broker over it.
    pub async fn start(config: BrokerConfig, dir: Option<tempfile::TempDir>) -> Harness {
        config.validate().expect("valid config");
        let db = tandem_storage::connect(&config.database_url)
            .await
            .expect("connect");
        BrokerMigrator::up(&db, None).await.expect("migrate");
        let broker = Broker::new(db.clone(), config).await.expect("broker");
        broker
            .install_key(Scope::Operator, "", "test operator", &key_of("operator"))
            .await
            .expect("operator key");
        let home = TestNode::start(HOME).await;
        for (company, number) in COMPANIES {
            home.admit_as(company, number);
        }
        broker
            .register_node(HOME, &home.endpoint(), "Home association", "")
            .await
            .expect("register home");
        let synced = broker.sync_nodes(Some(HOME)).await.expect("sync home");
        assert_eq!(
            (synced[0].memberships, synced[0].error.as_str()),
            (2, ""),
            "{synced:?}"
        );
        for (company, _) in COMPANIES {
            broker
                .install_key(Scope::Company, company, "test company", &key_of(company))
                .await
                .expect("company key");
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind broker");
        let addr = listener.local_addr().expect("broker address");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(Arc::clone(&broker), listener, async {
            let _ = rx.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
            .expect("connect to broker");
        Harness {
            broker,
            db,
            addr,
            dir,
            home,
            channel,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Delivers everything the outbox holds that is due, as the background delivery lanes
    /// would (they are off in most tests, so that tests drive every step): what a call sent
    /// to the nodes has reached them once this returns. Returns how many messages the nodes
    /// acknowledged.
    pub async fn settle(&self) -> usize {
        self.broker
            .settle_outbox()
            .await
            .expect("settle the outbox")
    }

    /// Returns an operator client.
    pub fn operator(&self) -> OperatorClient {
        OperatorServiceClient::with_interceptor(self.channel.clone(), bearer("operator"))
    }

    /// Returns a client that calls on behalf of `company` (one of [`COMPANIES`]).
    pub fn company(&self, company: &str) -> CompanyClient {
        MenteeServiceClient::with_interceptor(self.channel.clone(), bearer(company))
    }

    /// Returns a client that calls with `api_key`, e.g. one from enrolment.
    pub fn with_key(&self, api_key: &str) -> CompanyClient {
        MenteeServiceClient::with_interceptor(self.channel.clone(), bearer_key(api_key))
    }

    /// Returns a client of the enrolment service (its calls carry no key).
    pub fn enrolment(&self) -> EnrolmentServiceClient<Channel> {
        EnrolmentServiceClient::new(self.channel.clone())
    }

    /// Returns a client that sends no company.
    pub fn anonymous(&self) -> MenteeServiceClient<Channel> {
        MenteeServiceClient::new(self.channel.clone())
    }

    /// Registers a test node through the operator service.
    pub async fn register(&self, node: &TestNode) {
        self.operator()
            .register_node(RegisterNodeRequest {
                node_id: node.id.clone(),
                endpoint: node.endpoint(),
                display_name: format!("Test node {}", node.id),
                identity: String::new(),
            })
            .await
            .expect("register node");
    }

    /// Stops the broker and waits for it and its background jobs.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("join").expect("broker served");
        }
        self.home.stop().await;
    }
}

/// Returns a 64-hex-character token or pseudonym derived from `n`.
pub fn token(n: u64) -> String {
    format!("{n:064x}")
}

/// Returns a mentor's published profile.
pub fn mentor(n: u64, level: CareerLevel, expertise: &[Topic]) -> AnonymisedProfile {
    AnonymisedProfile {
        pseudonym: token(1000 + n),
        career_level: level as i32,
        experience_band: ExperienceBand::TwentyPlus as i32,
        industries: vec![Industry::Manufacturing as i32],
        expertise: expertise.iter().map(|t| *t as i32).collect(),
        languages: vec!["de".into(), "en".into()],
        region: "DE-BY".into(),
        formats: vec![Format::Remote as i32, Format::InPerson as i32],
        free_capacity: 2,
        employer_token: token(5000 + n),
        group_token: token(5000 + n),
        version: 0,
    }
}

/// Returns a mentee a company submits.
pub fn mentee() -> MenteeRequest {
    MenteeRequest {
        career_level: CareerLevel::TeamLead as i32,
        goals: vec![
            Goal {
                topic: Topic::Leadership as i32,
                priority: 3,
            },
            Goal {
                topic: Topic::Financing as i32,
                priority: 2,
            },
        ],
        languages: vec!["de".into()],
        region: "DE-BY".into(),
        preferred_format: Format::Remote as i32,
        industry: Industry::ItSoftware as i32,
        industry_preference: 0,
        company_size_band: CompanySizeBand::Small as i32,
    }
}

/// Returns a submission with an idempotency key.
pub fn submission(key: &str, mentee: MenteeRequest) -> SubmitMenteeRequest {
    SubmitMenteeRequest {
        idempotency_key: key.to_owned(),
        mentee: Some(mentee),
    }
}
