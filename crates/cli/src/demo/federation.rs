//! A whole federation in one process: a broker and any number of nodes, each with its own
//! database, serving real gRPC on loopback ports. The demo and the end-to-end tests use it.
//!
//! Every connection runs over TLS, as in production. The federation mints a development CA in
//! a temporary directory at start, one certificate per node (`<node id>.node.tandem`) and one
//! for the broker (`broker.tandem`), with which the broker calls the nodes' `NodeService` over
//! mutual TLS; and one API server certificate for `localhost` and `127.0.0.1`, which the
//! broker's gRPC API and dashboard and every node's `NodeAdminService` (on its own port)
//! present to their callers. The clients this module builds trust that CA
//! ([`Federation::ca_cert`]) and present no certificate.
//!
//! Callers present API keys as in production: the broker knows an operator key; every node
//! knows one staff key of its own ([`demo_staff_key`], scope `node-admin`), which
//! [`Federation::admin_client`] sends. Member companies join as in production
//! ([`Federation::admit_and_enrol`]): a node's staff admit the company, and the company
//! exchanges the one-time enrolment code for its API key at the broker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tandem_service::CancellationToken;
use tandem_storage::MigratorTrait;
use tokio::task::JoinHandle;

/// Where the federation keeps its databases.
#[derive(Debug, Clone)]
pub enum Databases {
    /// One SQLite file per part under this directory.
    Sqlite(PathBuf),
    /// One fresh database per part on this PostgreSQL server (URL of an existing database used
    /// to create them).
    Postgres(String),
}

/// A node to start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub node_id: String,
    pub display_name: String,
    /// k-anonymity and pseudonym epochs of the node's publication.
    pub publication: tandem_node::PublicationConfig,
}

/// A running node.
#[derive(Debug, Clone)]
pub struct RunningNode {
    pub node_id: String,
    pub display_name: String,
    /// Where the node serves `NodeService` (mutual TLS).
    pub addr: SocketAddr,
    /// Where the node serves `NodeAdminService` (TLS with the federation's API certificate).
    pub admin_addr: SocketAddr,
    pub database_url: String,
    /// The node's service logic, for what staff would do in bulk outside the API (the
    /// benchmark imports mentors through it, as `tandem import` does).
    pub state: Arc<tandem_node::NodeState>,
}

impl RunningNode {
    /// Returns the node's mutual-TLS endpoint URL, where the broker reaches `NodeService`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Returns the URL where the node's staff reach `NodeAdminService` over TLS.
    pub fn admin_endpoint(&self) -> String {
        format!("https://{}", self.admin_addr)
    }
}

/// A running federation. Dropping it does not stop the servers; call [`Federation::shutdown`].
#[derive(Debug)]
pub struct Federation {
    pub broker_addr: SocketAddr,
    /// Where the broker serves the operators' dashboard (HTTPS).
    pub dashboard_addr: SocketAddr,
    pub broker_database_url: String,
    pub nodes: Vec<RunningNode>,
    /// The configuration and clock the broker runs with, for [`Federation::replica`].
    broker_config: tandem_broker::BrokerConfig,
    clock: tandem_broker::Clock,
    /// The broker, for [`Federation::settle`].
    broker: Arc<tandem_broker::Broker>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// The development CA and the certificates of the broker and every node.
    certs: tempfile::TempDir,
    /// Callers' TLS: trusts the development CA.
    callers: Arc<tandem_tls::ApiClientTls>,
}

/// Host names and addresses on the federation's API certificate.
const API_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// Returns the API key the demo and the tests use for `tenant` (`operator`, or a node's staff
/// via [`demo_staff_key`]). It is derived from the name so that helpers can attach it without
/// a lookup; real keys are random (`tandem keys create`). A federation knows only the keys it
/// installed. Companies get random keys by enrolment.
pub fn demo_key(tenant: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(
        format!("tandem-demo-key/{tenant}").as_bytes(),
    ));
    format!("tdm_d{}_{}", &digest[..12], &digest[12..])
}

/// Returns the staff key (scope `node-admin`) the demo and the tests use at node `node_id`;
/// like [`demo_key`] derived from the name, and known only to that node.
pub fn demo_staff_key(node_id: &str) -> String {
    demo_key(&format!("node-admin@{node_id}"))
}

/// Attaches an API key to every request of a client.
#[derive(Debug, Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// Returns the interceptor for `key`.
    pub fn new(key: &str) -> anyhow::Result<Self> {
        Ok(Self(format!("Bearer {key}").parse()?))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// An `OperatorService` client that sends the operator's key.
pub type OperatorClient = tandem_proto::operator_service_client::OperatorServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

/// A member company that enrolled: its id at the broker (its membership's id), its API key and
/// the node that admitted it.
#[derive(Debug, Clone)]
pub struct EnrolledCompany {
    pub company_id: String,
    /// The `company` key the broker returned at enrolment, shown once.
    pub api_key: String,
    pub node_id: String,
}

/// Wraps a message in a request that carries `api_key` (a company's key from
/// [`Federation::admit_and_enrol`]).
pub fn with_key<T>(api_key: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {api_key}").parse()?);
    Ok(request)
}

/// A `NodeAdminService` client that sends a staff key of its node.
pub type NodeAdminClient = tandem_proto::node_admin_service_client::NodeAdminServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

async fn database_url(databases: &Databases, name: &str) -> anyhow::Result<String> {
    Ok(match databases {
        Databases::Sqlite(dir) => tandem_storage::sqlite_url(&dir.join(format!("{name}.sqlite"))),
        Databases::Postgres(server) => {
            tandem_storage::create_scratch_database(server, &format!("tandem_{name}")).await?
        }
    })
}

fn secret(federation_key: &str, node_id: &str) -> String {
    // Demo and test secrets derive from the federation key so a seeded run is reproducible;
    // real nodes configure their own random secret.
    tandem_domain::pseudonym::employer_token(
        federation_key.as_bytes(),
        &format!("secret-{node_id}"),
    )
}

impl Federation {
    /// Starts the nodes, then the broker with those nodes registered, each after migrating its
    /// database. `broker` adjusts the broker configuration (sync interval, weights, …).
    pub async fn start(
        databases: &Databases,
        federation_key: &str,
        nodes: &[NodeSpec],
        broker: impl FnOnce(&mut tandem_broker::BrokerConfig),
    ) -> anyhow::Result<Self> {
        let clock = tandem_broker::Clock::system();
        Self::start_with_clock(databases, federation_key, nodes, clock, broker).await
    }

    /// Like [`Federation::start`], with one clock for the broker and every node, so that tests
    /// can move time forward.
    pub async fn start_with_clock(
        databases: &Databases,
        federation_key: &str,
        nodes: &[NodeSpec],
        clock: tandem_broker::Clock,
        broker: impl FnOnce(&mut tandem_broker::BrokerConfig),
    ) -> anyhow::Result<Self> {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut running = Vec::new();
        let certs = tempfile::Builder::new().prefix("tandem-certs-").tempdir()?;
        let ca = tandem_tls::mint::init(certs.path())?;
        let validity = tandem_tls::mint::Validity::days(2);
        let api_names = API_NAMES.map(str::to_owned);
        let api_files = tandem_tls::mint::issue_api(certs.path(), "api", &api_names, validity)?;
        let api_tls = tandem_tls::ApiTls::new(api_files.cert_files())?;
        let callers = tandem_tls::ApiClientTls::new(&ca)?;
        for spec in nodes {
            let url = database_url(databases, &spec.node_id).await?;
            let db = tandem_storage::connect(&url).await?;
            tandem_storage::NodeMigrator::up(&db, None).await?;
            let config = tandem_node::NodeConfig {
                node_id: spec.node_id.clone(),
                display_name: spec.display_name.clone(),
                listen: "127.0.0.1:0".into(),
                admin_listen: "127.0.0.1:0".into(),
                health_listen: None,
                database_url: url.clone(),
                pseudonym_secret: secret(federation_key, &spec.node_id),
                federation_key: federation_key.to_owned(),
                publication: spec.publication.clone(),
                // The demo's script (and the tests) enter mentors and answers as fast as the
                // node takes them; real staff keys are limited.
                staff_rate_limit_per_second: 0,
                staff_rate_limit_burst: 1,
                enrolment_code_days: tandem_node::config::DEFAULT_ENROLMENT_CODE_DAYS,
                // The servers are built from the minted files below.
                tls: None,
                admin_tls: Some(api_files.cert_files()),
            };
            config.validate().map_err(anyhow::Error::msg)?;
            let files = tandem_tls::mint::issue(
                certs.path(),
                &spec.node_id,
                &tandem_tls::node_identity(&spec.node_id),
                tandem_tls::mint::Kind::Node,
                validity,
            )?;
            let tls = tandem_tls::ServerTls::new(
                files,
                &[tandem_tls::DEFAULT_BROKER_IDENTITY.to_owned()],
            )?;
            let listeners = tandem_node::Listeners {
                node: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
                node_tls: Some(tls),
                admin: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
                admin_tls: Some(Arc::clone(&api_tls)),
                health: None,
            };
            let addr = listeners.node.local_addr()?;
            let admin_addr = listeners.admin.local_addr()?;
            let state = tandem_node::NodeState::with_clock(db, &config, clock.clone());
            state
                .install_staff_key("demo staff", &demo_staff_key(&spec.node_id))
                .await?;
            let shutdown = stop.clone().cancelled_owned();
            let node_id = spec.node_id.clone();
            let serving = Arc::clone(&state);
            tasks.push(tokio::spawn(async move {
                if let Err(err) = tandem_node::serve_on(serving, listeners, shutdown).await {
                    tracing::error!(node = %node_id, %err, "node server failed");
                }
            }));
            running.push(RunningNode {
                node_id: spec.node_id.clone(),
                display_name: spec.display_name.clone(),
                addr,
                admin_addr,
                database_url: url,
                state,
            });
        }

        let url = database_url(databases, "broker").await?;
        let db = tandem_storage::connect(&url).await?;
        tandem_storage::BrokerMigrator::up(&db, None).await?;
        let mut config: tandem_broker::BrokerConfig = serde_json::from_value(serde_json::json!({
            "listen": "127.0.0.1:0",
            "database_url": url,
            "sync_interval_secs": 0,
        }))
        .context("default broker configuration")?;
        config.nodes = running
            .iter()
            .map(|n| tandem_broker::NodeEntry {
                id: n.node_id.clone(),
                endpoint: n.endpoint(),
                display_name: n.display_name.clone(),
                identity: String::new(),
            })
            .collect();
        config.tls = Some(tandem_tls::mint::issue(
            certs.path(),
            "broker",
            tandem_tls::DEFAULT_BROKER_IDENTITY,
            tandem_tls::mint::Kind::Broker,
            validity,
        )?);
        config.api_tls = Some(api_files.cert_files());
        // Every company of the demo (and of the tests) enrols from the same loopback address;
        // real companies enrol from their own, each within the per-address limit.
        config.enrolment_rate_limit_per_minute = 0;
        broker(&mut config);
        config.validate().map_err(anyhow::Error::msg)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let broker_addr = listener.local_addr()?;
        let dashboard = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let dashboard_addr = dashboard.local_addr()?;
        config.dashboard_listen = Some(dashboard_addr.to_string());
        let broker_config = config.clone();
        let broker = tandem_broker::Broker::with_clock(db, config, clock.clone()).await?;
        broker
            .install_key(
                tandem_broker::keys::Scope::Operator,
                "",
                "demo operator",
                &demo_key("operator"),
            )
            .await?;
        let serving = Arc::clone(&broker);
        let shutdown = stop.clone().cancelled_owned();
        tasks.push(tokio::spawn(async move {
            let listeners = tandem_broker::Listeners {
                grpc: listener,
                dashboard: Some(dashboard),
                health: None,
                tls: Some(api_tls),
            };
            if let Err(err) = tandem_broker::serve(serving, listeners, shutdown).await {
                tracing::error!(%err, "broker server failed");
            }
        }));
        Ok(Self {
            broker_addr,
            dashboard_addr,
            broker_database_url: url,
            nodes: running,
            broker_config,
            clock,
            broker,
            stop,
            tasks,
            certs,
            callers,
        })
    }

    /// Admits `company` at the `k`-th node, as that node's staff do, and enrols it at the broker
    /// with the one-time code the node issued, as the company does: returns the company's key.
    pub async fn admit_and_enrol(
        &self,
        k: usize,
        company: tandem_proto::Company,
    ) -> anyhow::Result<EnrolledCompany> {
        let legal_name = company.legal_name.clone();
        let admitted = self
            .admin_client(k)
            .await?
            .admit_company(tandem_proto::AdmitCompanyRequest {
                company: Some(company),
            })
            .await
            .with_context(|| format!("admitting {legal_name}"))?
            .into_inner();
        let company_id = admitted.company.map(|c| c.company_id).unwrap_or_default();
        anyhow::ensure!(
            !admitted.enrolment_code.is_empty(),
            "{legal_name} was admitted before; issue a new enrolment code to enrol it again"
        );
        let enrolled = self
            .enrolment_client()
            .await?
            .enrol_company(tandem_proto::EnrolCompanyRequest {
                enrolment_code: admitted.enrolment_code,
                // A note about who holds the key; never the company's name, which stays at
                // its node.
                label: "HR system".into(),
            })
            .await
            .with_context(|| format!("enrolling {legal_name}"))?
            .into_inner();
        anyhow::ensure!(
            enrolled.company_id == company_id,
            "the broker enrolled {legal_name} as {} instead of {company_id}",
            enrolled.company_id
        );
        Ok(EnrolledCompany {
            company_id,
            api_key: enrolled.api_key,
            node_id: enrolled.node_id,
        })
    }

    /// Returns a second broker over the federation's broker database — its own connection
    /// pool, its own locks, the same certificate towards the nodes — as a second replica of
    /// the broker is. It serves nothing and runs no background job; callers use its methods.
    pub async fn replica(&self) -> anyhow::Result<Arc<tandem_broker::Broker>> {
        let db = tandem_storage::connect(&self.broker_database_url).await?;
        let config = self.broker_config.clone();
        Ok(tandem_broker::Broker::with_clock(db, config, self.clock.clone()).await?)
    }

    /// Returns an `EnrolmentService` client of the broker (its calls carry no key).
    pub async fn enrolment_client(
        &self,
    ) -> anyhow::Result<
        tandem_proto::enrolment_service_client::EnrolmentServiceClient<tonic::transport::Channel>,
    > {
        Ok(
            tandem_proto::enrolment_service_client::EnrolmentServiceClient::new(
                self.channel(&self.broker_endpoint()).await?,
            ),
        )
    }

    /// Connects a gRPC channel to `endpoint` (one of this federation's `https://` URLs) over
    /// TLS, trusting the federation's development CA and presenting no certificate, as a
    /// company, an operator or a node's staff do.
    pub async fn channel(&self, endpoint: &str) -> anyhow::Result<tonic::transport::Channel> {
        let endpoint = tonic::transport::Endpoint::from_shared(endpoint.to_owned())?;
        Ok(self.callers.connect(&endpoint).await?)
    }

    /// Returns a `MenteeService` client of the broker that sends no key (the tests and the
    /// demo attach a company's per request).
    pub async fn mentee_client(
        &self,
    ) -> anyhow::Result<
        tandem_proto::mentee_service_client::MenteeServiceClient<tonic::transport::Channel>,
    > {
        Ok(
            tandem_proto::mentee_service_client::MenteeServiceClient::new(
                self.channel(&self.broker_endpoint()).await?,
            ),
        )
    }

    /// Returns an operator client of the broker.
    pub async fn operator_client(&self) -> anyhow::Result<OperatorClient> {
        let channel = self.channel(&self.broker_endpoint()).await?;
        Ok(
            tandem_proto::operator_service_client::OperatorServiceClient::with_interceptor(
                channel,
                Bearer::new(&demo_key("operator"))?,
            ),
        )
    }

    /// Returns a `NodeAdminService` client of the `k`-th node that presents the node's
    /// [`demo_staff_key`].
    pub async fn admin_client(&self, k: usize) -> anyhow::Result<NodeAdminClient> {
        let node = self
            .nodes
            .get(k)
            .with_context(|| format!("no node number {k} in this federation"))?;
        let channel = self.channel(&node.admin_endpoint()).await?;
        Ok(
            tandem_proto::node_admin_service_client::NodeAdminServiceClient::with_interceptor(
                channel,
                Bearer::new(&demo_staff_key(&node.node_id))?,
            ),
        )
    }

    /// GETs `path` from the broker's dashboard over HTTPS with `api_key` and returns the
    /// status code and the body.
    pub async fn dashboard_get(&self, path: &str, api_key: &str) -> anyhow::Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = self
            .callers
            .connect_http1(self.dashboard_addr, "127.0.0.1")
            .await
            .with_context(|| format!("connecting to the dashboard at {}", self.dashboard_addr))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api_key}\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .context("the dashboard's answer has no header end")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("the dashboard's answer has no status line: {head:?}"))?;
        Ok((status, body.to_owned()))
    }

    /// Returns the broker's gRPC endpoint URL (TLS with the federation's API certificate).
    pub fn broker_endpoint(&self) -> String {
        format!("https://{}", self.broker_addr)
    }

    /// Returns the dashboard's URL with the operator's [`demo_key`] in the fragment, where the
    /// page takes it from (a fragment never reaches the server or its logs).
    pub fn dashboard_url(&self) -> String {
        format!(
            "https://{}/#key={}",
            self.dashboard_addr,
            demo_key("operator")
        )
    }

    /// Returns the directory with the development CA (`ca.pem`, `ca-key.pem`) and the
    /// certificates of the broker (`broker.pem`), each node (`<node id>.pem`) and the APIs
    /// (`api.pem`, for `localhost` and `127.0.0.1`).
    pub fn certs_dir(&self) -> &Path {
        self.certs.path()
    }

    /// Returns the development CA's certificate, which callers of the APIs trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.certs.path().join(tandem_tls::mint::CA_CERT)
    }

    /// Waits until the broker delivered what its outbox holds for the nodes and is due: the
    /// broker's calls return before their messages reach the nodes (its delivery lanes carry
    /// them in the background), so the demo and the tests settle before they look at a node.
    pub async fn settle(&self) -> anyhow::Result<()> {
        self.broker
            .settle_outbox()
            .await
            .context("delivering the broker's outbox")?;
        Ok(())
    }

    /// Stops every server and waits for them to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Returns the directory for the demo's databases: the given one (created), or a new temporary
/// one that is removed when the returned guard drops.
pub fn data_dir(given: Option<&Path>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
            Ok((dir.to_path_buf(), None))
        }
        None => {
            let tmp = tempfile::Builder::new().prefix("tandem-demo-").tempdir()?;
            Ok((tmp.path().to_path_buf(), Some(tmp)))
        }
    }
}
