//! A Tandem node: one association's or start-up network's server.
//!
//! The node keeps its mentors' full records (names, contacts, employer) in its own database and
//! publishes only pseudonymised profiles. It serves two gRPC services: `NodeService` to the
//! broker (the profile feed, introductions, decisions, contact cards after the double opt-in) and
//! `NodeAdminService` to the association's own staff (mentor records and decisions), who present
//! API keys of scope `node-admin` that the node issues and checks itself. Every change is
//! recorded in the node's append-only audit log.
//!
//! The two services listen on two addresses ([`Listeners`]): `NodeService` over mutual TLS
//! (the broker's client certificate is checked in the handshake) and `NodeAdminService` over
//! TLS with the node's server certificate only (staff authenticate with their keys). Neither
//! port serves the other's service, so a caller without a broker certificate never reaches
//! `NodeService`, whatever key it holds.
//!
//! [`NodeState`] holds the logic as plain async methods that tests call directly; [`serve_on`]
//! (and [`serve`], both services in plain text on one port, for tests) puts thin tonic adapters
//! in front of it. Every write goes through one lock and one database
//! transaction, so the profile feed version and the decision sequence grow without gaps on
//! SQLite and PostgreSQL alike. Migrations are not run here: the CLI migrates the database
//! before it builds a node.

mod anonymity;
mod audit;
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

use std::future::Future;
use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tandem_proto::node_admin_service_server::NodeAdminServiceServer;
use tandem_proto::node_service_server::NodeServiceServer;
use tokio::sync::{Mutex, MutexGuard};

pub use config::{NodeConfig, PublicationConfig};
pub use error::NodeError;
pub use staff::{AUTHORIZATION, Staff, StaffKey};

/// Returns the current time in Unix milliseconds; tests inject one they can move forward.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Milliseconds in a day, the unit of the pseudonym epoch.
const DAY_MS: i64 = 86_400_000;

/// The state and logic of one node: its database, identity and keys.
pub struct NodeState {
    db: DatabaseConnection,
    node_id: String,
    display_name: String,
    pseudonym_secret: Vec<u8>,
    federation_key: Vec<u8>,
    publication: PublicationConfig,
    clock: Clock,
    /// Per-staff-key request rate limits of `NodeAdminService`.
    limiter: tandem_domain::rate_limit::RateLimiter,
    /// Serialises every write of this node (it runs as a single process), which keeps the
    /// counters gap-free and commits in counter order.
    write_lock: Mutex<()>,
}

impl NodeState {
    /// Builds a node on an already migrated database.
    pub fn new(db: DatabaseConnection, config: &NodeConfig) -> Arc<NodeState> {
        Self::with_clock(db, config, Arc::new(tandem_storage::now_ms))
    }

    /// Builds a node that reads the time from `clock` (Unix milliseconds), which decides the
    /// pseudonym epoch.
    pub fn with_clock(db: DatabaseConnection, config: &NodeConfig, clock: Clock) -> Arc<NodeState> {
        Arc::new(NodeState {
            db,
            node_id: config.node_id.clone(),
            display_name: config.display_name.clone(),
            pseudonym_secret: config.pseudonym_secret.as_bytes().to_vec(),
            federation_key: config.federation_key.as_bytes().to_vec(),
            publication: config.publication.clone(),
            clock,
            limiter: tandem_domain::rate_limit::RateLimiter::new(
                config.staff_rate_limit_per_second,
                config.staff_rate_limit_burst,
            ),
            write_lock: Mutex::new(()),
        })
    }

    /// Returns the node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Returns the current pseudonym epoch: whole epochs since the Unix epoch, or `None` when
    /// the node never rotates (`publication.epoch_days = 0`).
    fn epoch(&self) -> Option<u64> {
        let days = i64::from(self.publication.epoch_days);
        (days > 0).then(|| u64::try_from((self.clock)().max(0) / (days * DAY_MS)).unwrap_or(0))
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
    async fn begin_write(&self) -> Result<(MutexGuard<'_, ()>, DatabaseTransaction), NodeError> {
        let guard = self.write_lock.lock().await;
        let txn = self.db.begin().await?;
        Ok((guard, txn))
    }
}

/// Largest `NodeAdminService` request the node decodes: a mentor record is a few hundred bytes.
const MAX_ADMIN_REQUEST_BYTES: usize = 64 * 1024;

fn admin_server(state: Arc<NodeState>) -> NodeAdminServiceServer<grpc::AdminApi> {
    NodeAdminServiceServer::new(grpc::AdminApi::new(state))
        .max_decoding_message_size(MAX_ADMIN_REQUEST_BYTES)
}

/// Serves NodeService and NodeAdminService in plain text on one `listener` until `shutdown`
/// completes: for tests and tools on loopback. A deployed node uses [`serve_on`].
pub async fn serve(
    state: Arc<NodeState>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let addr = listener.local_addr().ok();
    tracing::info!(node = %state.node_id, addr = ?addr, "node serving");
    // Without TCP_NODELAY, small gRPC replies wait for delayed ACKs (about 40 ms each).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .trace_fn(tandem_telemetry::grpc_request_span)
        .add_service(NodeServiceServer::new(grpc::NodeApi::new(state.clone())))
        .add_service(admin_server(state))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
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
}

/// Serves `NodeService` on `listeners.node` and `NodeAdminService` on `listeners.admin`, each
/// over its TLS when configured, until `shutdown` completes.
///
/// A connection to the `NodeService` port must complete the handshake with a broker
/// certificate that chains to the configured CA and names a trusted broker; one that does not
/// (no certificate, another CA, expired, another identity, plain text) is closed before any
/// RPC. The admin port serves `NodeAdminService` only.
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
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopped_when = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        // A dropped sender also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let node_router = tonic::transport::Server::builder()
        .trace_fn(tandem_telemetry::grpc_request_span)
        .add_service(NodeServiceServer::new(grpc::NodeApi::new(state.clone())));
    let node_service = async {
        match node_tls {
            Some(tls) => {
                let incoming = Arc::new(tls).incoming(node, stopped_when(stopped.clone()));
                node_router
                    .serve_with_incoming_shutdown(incoming, stopped_when(stopped.clone()))
                    .await
            }
            None => {
                node_router
                    .serve_with_incoming_shutdown(plain(node), stopped_when(stopped.clone()))
                    .await
            }
        }
    };
    let admin_router = tonic::transport::Server::builder()
        .trace_fn(tandem_telemetry::grpc_request_span)
        .add_service(admin_server(state));
    let admin_service = async {
        match admin_tls {
            Some(tls) => {
                let incoming =
                    tls.incoming(admin, tandem_tls::Alpn::Grpc, stopped_when(stopped.clone()));
                admin_router
                    .serve_with_incoming_shutdown(incoming, stopped_when(stopped.clone()))
                    .await
            }
            None => {
                admin_router
                    .serve_with_incoming_shutdown(plain(admin), stopped_when(stopped.clone()))
                    .await
            }
        }
    };
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let ((), node_served, admin_served) = tokio::join!(signal, node_service, admin_service);
    node_served.and(admin_served)
}

fn plain(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    // Without TCP_NODELAY, small gRPC replies wait for delayed ACKs (about 40 ms each).
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
