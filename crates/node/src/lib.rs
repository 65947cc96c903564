//! A Tandem node: one association's or start-up network's server.
//!
//! The node keeps its mentors' full records (names, contacts, employer) and its member
//! companies in its own database and publishes only pseudonymised profiles and memberships. It
//! serves two gRPC services: `NodeService` to the broker (the profile feed, the membership feed,
//! introductions, decisions, contact cards after the double opt-in) and `NodeAdminService` to
//! the association's own staff (mentor records, decisions, member companies and their
//! enrolment codes), who present API keys of scope `node-admin` that the node issues and checks
//! itself (with the service toolkit's gate, `tandem-service`). Every change is recorded in the
//! node's append-only audit log.
//!
//! The two services listen on two addresses ([`Listeners`]): `NodeService` over mutual TLS
//! (the broker's client certificate is checked in the handshake) and `NodeAdminService` over
//! TLS with the node's server certificate only (staff authenticate with their keys). Neither
//! port serves the other's service, so a caller without a broker certificate never reaches
//! `NodeService`, whatever key it holds. Each port also serves `grpc.health.v1.Health` for its
//! own service (SERVING while the database answers and has no pending migration, see
//! `tandem_service::health`), outside the key gate; the admin port, the one for tools, serves
//! server reflection as well. Probes that cannot speak TLS use the optional plain-text health
//! port (`health_listen`), which serves health for the node and both services and nothing else.
//! One RPC layer (`tandem_service::rpc`) gives every call on every port a server span, which
//! continues the broker's client span.
//!
//! [`NodeState`] holds the logic as plain async methods that tests call directly; [`serve_on`]
//! (and [`serve`], both services in plain text on one port, for tests) puts thin tonic adapters
//! in front of it. Every write goes through one lock and one database transaction (the
//! toolkit's `Writer`), so the feed versions and the decision sequence grow without gaps
//! on SQLite and PostgreSQL alike. Migrations are not run here: the CLI migrates the database
//! before it builds a node.
//!
//! In the workspace: builds on `tandem-domain`, `tandem-storage`, `tandem-service` and
//! `tandem-tls`; the `tandem` command (`tandem-cli`) runs it.

mod anonymity;
mod audit;
mod companies;
pub mod config;
mod counters;
mod error;
mod feed;
mod grpc;
mod introductions;
mod mentors;
mod publication;
mod records;
mod staff;
mod tandems;
mod tombstones;

use std::future::Future;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tandem_domain::time::DAY_MS;
use tandem_proto::node_admin_service_server::NodeAdminServiceServer;
use tandem_proto::node_service_server::NodeServiceServer;
use tandem_service::auth::{Guarded, guard};
use tandem_service::health::{self, ServerHealth};
use tandem_service::rate_limit::RateLimiter;
use tandem_service::reflection::reflection;
use tandem_service::rpc::{Methods, RpcLayer};
use tandem_service::shutdown::{CancellationToken, run_until};
use tandem_service::{Gate, Scope, WriteTxn, Writer};

pub use companies::{CompanyImportReport, ImportedCompany};
pub use config::{NodeConfig, PublicationConfig};
pub use error::NodeError;
pub use introductions::MAX_BATCH as MAX_DELIVERY_BATCH;
pub use mentors::ImportReport;
pub use staff::{Staff, StaffKey};
pub use tandem_service::{AUTHORIZATION, Clock};

/// The state and logic of one node: its database, identity and keys.
pub struct NodeState {
    /// The database, and the lock that serialises every write of this node (it runs as a
    /// single process), which keeps the counters gap-free and commits in counter order.
    writer: Writer,
    node_id: String,
    display_name: String,
    pseudonym_secret: Vec<u8>,
    federation_key: Vec<u8>,
    publication: PublicationConfig,
    /// Days an enrolment code stays valid.
    enrolment_code_days: u32,
    /// What time it is: every timestamp the node writes, and the pseudonym epoch.
    clock: Clock,
    /// Checks the staff's keys (bound to this node) and their rate limits.
    gate: Arc<Gate>,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("NodeState")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl NodeState {
    /// Builds a node on an already migrated database.
    pub fn new(db: DatabaseConnection, config: &NodeConfig) -> Arc<NodeState> {
        Self::with_clock(db, config, Clock::system())
    }

    /// Builds a node that reads the time from `clock`, which decides the pseudonym epoch.
    pub fn with_clock(db: DatabaseConnection, config: &NodeConfig, clock: Clock) -> Arc<NodeState> {
        let limiter = RateLimiter::new(
            config.staff_rate_limit_per_second,
            config.staff_rate_limit_burst,
        );
        let gate = Gate::new(db.clone(), &[Scope::NodeAdmin], limiter).bound_to(&config.node_id);
        Arc::new(NodeState {
            writer: Writer::new(db),
            node_id: config.node_id.clone(),
            display_name: config.display_name.clone(),
            pseudonym_secret: config.pseudonym_secret.as_bytes().to_vec(),
            federation_key: config.federation_key.as_bytes().to_vec(),
            publication: config.publication.clone(),
            enrolment_code_days: config.enrolment_code_days,
            clock,
            gate: Arc::new(gate),
        })
    }

    /// Returns the node's database connection.
    fn db(&self) -> &DatabaseConnection {
        self.writer.db()
    }

    /// Returns the current time of the node's clock, in Unix milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Returns the node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Returns the current pseudonym epoch: whole epochs since the Unix epoch, or `None` when
    /// the node never rotates (`publication.epoch_days = 0`).
    fn epoch(&self) -> Option<u64> {
        let days = i64::from(self.publication.epoch_days);
        (days > 0).then(|| u64::try_from(self.now().max(0) / (days * DAY_MS)).unwrap_or(0))
    }

    /// Returns the pseudonym of a mentor in an epoch (`None`: the node never rotates and keeps
    /// the pseudonym of the mentor id alone).
    fn pseudonym_in(&self, epoch: Option<u64>, mentor_id: &str) -> String {
        match epoch {
            Some(epoch) => tandem_domain::pseudonym::mentor_pseudonym_in_epoch(
                &self.pseudonym_secret,
                epoch,
                mentor_id,
            ),
            None => tandem_domain::pseudonym::mentor_pseudonym(&self.pseudonym_secret, mentor_id),
        }
    }

    /// Returns the pseudonym under which a mentor is published in the current epoch.
    pub fn pseudonym(&self, mentor_id: &str) -> String {
        self.pseudonym_in(self.epoch(), mentor_id)
    }

    /// Returns the employer token of a registry number.
    fn employer_token(&self, registry_number: &str) -> String {
        tandem_domain::pseudonym::employer_token(&self.federation_key, registry_number)
    }

    /// Takes the write lock and opens a transaction. Dropping the transaction without committing
    /// rolls it back.
    async fn write(&self) -> Result<WriteTxn<'_>, NodeError> {
        Ok(self.writer.begin().await?)
    }
}

/// Largest `NodeAdminService` request the node decodes: a mentor record is a few hundred bytes.
const MAX_ADMIN_REQUEST_BYTES: usize = 64 * 1024;

/// The name of `NodeService`, as health names it.
const NODE_SERVICE: &str = tandem_proto::node_service_server::SERVICE_NAME;
/// The name of `NodeAdminService`, as health and reflection name it.
const ADMIN_SERVICE: &str = tandem_proto::node_admin_service_server::SERVICE_NAME;

/// Returns the RPC layer of the node's servers: spans of every call (the node serves no
/// metrics endpoint, so calls are not counted).
fn rpc_layer() -> RpcLayer {
    let methods = Methods::new(&[tandem_proto::FILE_DESCRIPTOR_SET])
        .expect("the descriptor sets built into the binary decode");
    RpcLayer::new(methods, None)
}

/// Watches the node's database for the health of `servers` until `stop` is cancelled.
async fn watch_health(state: &NodeState, servers: Vec<ServerHealth>, stop: CancellationToken) {
    health::watch::<tandem_storage::NodeMigrator>(
        state.db().clone(),
        servers,
        health::CHECK_INTERVAL,
        stop,
    )
    .await;
}

/// Returns `NodeAdminService` behind the node's gate: only the node's staff keys get through.
fn admin_server(state: Arc<NodeState>) -> Guarded<NodeAdminServiceServer<grpc::AdminApi>> {
    let gate = Arc::clone(&state.gate);
    let server = NodeAdminServiceServer::new(grpc::AdminApi::new(state))
        .max_decoding_message_size(MAX_ADMIN_REQUEST_BYTES);
    guard(&gate, Scope::NodeAdmin, server)
}

/// Serves NodeService and NodeAdminService in plain text on one `listener` until `shutdown`
/// completes: for tests and tools on loopback. A deployed node uses [`serve_on`]. Health and
/// reflection are served too, for both services.
pub async fn serve(
    state: Arc<NodeState>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let addr = listener.local_addr().ok();
    tracing::info!(node = %state.node_id, addr = ?addr, "node serving");
    let services = [NODE_SERVICE, ADMIN_SERVICE];
    let (health, health_service) = ServerHealth::new(&services).await;
    let (reflection_v1, reflection_v1alpha) =
        reflection(&[tandem_proto::FILE_DESCRIPTOR_SET], &services)
            .expect("the descriptor sets built into the binary decode");
    let stop = CancellationToken::new();
    let router = tonic::transport::Server::builder()
        .layer(rpc_layer())
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(NodeServiceServer::new(grpc::NodeApi::new(state.clone())))
        .add_service(admin_server(state.clone()));
    let serving = async {
        let served = router
            .serve_with_incoming_shutdown(plain(listener), stop.clone().cancelled_owned())
            .await;
        // A server that failed stops its health watcher too.
        stop.cancel();
        served
    };
    let (served, ()) = run_until(shutdown, &stop, async {
        tokio::join!(serving, watch_health(&state, vec![health], stop.clone()))
    })
    .await;
    served
}

/// The bound sockets a node serves on, and the TLS of each.
#[derive(Debug)]
pub struct Listeners {
    /// `NodeService`, for the broker.
    pub node: tokio::net::TcpListener,
    /// Mutual TLS of `node`: only a trusted broker's certificate completes the handshake.
    /// None serves plain text (development only).
    pub node_tls: Option<tandem_tls::ServerTls>,
    /// `NodeAdminService`, for the association's staff.
    pub admin: tokio::net::TcpListener,
    /// TLS of `admin` (the node's server certificate; staff present keys, not certificates).
    /// None serves plain text (development only).
    pub admin_tls: Option<Arc<tandem_tls::ApiTls>>,
    /// The plain-text health port (`grpc.health.v1.Health` only); none serves none.
    pub health: Option<tokio::net::TcpListener>,
}

/// Serves `NodeService` on `listeners.node` and `NodeAdminService` on `listeners.admin`, each
/// over its TLS when configured, until `shutdown` completes.
///
/// A connection to the `NodeService` port must complete the handshake with a broker
/// certificate that chains to the configured CA and names a trusted broker; one that does not
/// (no certificate, another CA, expired, another identity, plain text) is closed before any
/// RPC. The admin port serves `NodeAdminService` only, besides the health and reflection
/// services that need no key. The `NodeService` port serves health for `NodeService` too,
/// behind the same mutual TLS, and no reflection. The health port, when `listeners` has one,
/// serves health for the node (`""`) and both services in plain text, and nothing else.
pub async fn serve_on(
    state: Arc<NodeState>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let Listeners {
        node,
        node_tls,
        admin,
        admin_tls,
        health: health_port,
    } = listeners;
    tracing::info!(
        node = %state.node_id,
        addr = ?node.local_addr().ok(),
        mutual_tls = node_tls.is_some(),
        "node serving NodeService"
    );
    tracing::info!(
        node = %state.node_id,
        addr = ?admin.local_addr().ok(),
        tls = admin_tls.is_some(),
        "node serving NodeAdminService"
    );
    let stop = CancellationToken::new();
    let stopped = || stop.clone().cancelled_owned();
    let (node_health, node_health_service) = ServerHealth::new(&[NODE_SERVICE]).await;
    let (admin_health, admin_health_service) = ServerHealth::new(&[ADMIN_SERVICE]).await;
    let (port_health, _) = ServerHealth::new(&[NODE_SERVICE, ADMIN_SERVICE]).await;
    let layer = rpc_layer();
    let (reflection_v1, reflection_v1alpha) =
        reflection(&[tandem_proto::FILE_DESCRIPTOR_SET], &[ADMIN_SERVICE])
            .expect("the descriptor sets built into the binary decode");
    let node_router = tonic::transport::Server::builder()
        .layer(layer.clone())
        .add_service(node_health_service)
        .add_service(NodeServiceServer::new(grpc::NodeApi::new(state.clone())));
    let node_service = async {
        match node_tls {
            Some(tls) => {
                let incoming = Arc::new(tls).incoming(node, stopped());
                node_router
                    .serve_with_incoming_shutdown(incoming, stopped())
                    .await
            }
            None => {
                node_router
                    .serve_with_incoming_shutdown(plain(node), stopped())
                    .await
            }
        }
    };
    let admin_router = tonic::transport::Server::builder()
        .layer(layer.clone())
        // No gate: probes and tools carry no key.
        .add_service(admin_health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(admin_server(state.clone()));
    let admin_service = async {
        match admin_tls {
            Some(tls) => {
                let incoming = tls.incoming(admin, tandem_tls::Alpn::Grpc, stopped());
                admin_router
                    .serve_with_incoming_shutdown(incoming, stopped())
                    .await
            }
            None => {
                admin_router
                    .serve_with_incoming_shutdown(plain(admin), stopped())
                    .await
            }
        }
    };
    let health_service = async {
        match health_port {
            Some(listener) => {
                health::serve_port(&port_health, listener, layer.clone(), stopped()).await
            }
            None => Ok(()),
        }
    };
    let health = watch_health(
        &state,
        vec![node_health, admin_health, port_health.clone()],
        stop.clone(),
    );
    let (node_served, admin_served, health_served, ()) = run_until(shutdown, &stop, async {
        tokio::join!(node_service, admin_service, health_service, health)
    })
    .await;
    node_served.and(admin_served).and(health_served)
}

fn plain(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    // Without TCP_NODELAY, small gRPC replies wait for delayed ACKs (about 40 ms each).
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
