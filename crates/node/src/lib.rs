//! A Tandem node: one association's or start-up network's server.
//!
//! The node keeps its mentors' full records (names, contacts, employer) in its own database and
//! publishes only pseudonymised profiles. It serves two gRPC services: `NodeService` to the
//! broker (the profile feed, introductions, decisions, contact cards after the double opt-in) and
//! `NodeAdminService` to the association's own staff (mentor records and decisions), who present
//! API keys of scope `node-admin` that the node issues and checks itself. Every change is
//! recorded in the node's append-only audit log.
//!
//! [`NodeState`] holds the logic as plain async methods that tests call directly; [`serve`]
//! puts thin tonic adapters in front of it. Every write goes through one lock and one database
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

/// Serves NodeService and NodeAdminService on `listener` until `shutdown` completes.
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

/// Serves `NodeService` over mutual TLS and `NodeAdminService` over plain text, both on
/// `listener`, until `shutdown` completes.
///
/// Each connection is sorted by its first byte. A TLS connection must complete the handshake
/// with a broker certificate that chains to the configured CA and names a trusted broker;
/// it then reaches `NodeService` only. A plain-text connection reaches `NodeAdminService`
/// only, for the association's staff on a network they control; `NodeService` is never
/// served without TLS here.
pub async fn serve_tls(
    state: Arc<NodeState>,
    listener: tokio::net::TcpListener,
    tls: tandem_tls::ServerTls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let addr = listener.local_addr().ok();
    tracing::info!(node = %state.node_id, addr = ?addr, "node serving, NodeService over mutual tls");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopped_when = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        // A dropped sender also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let (secure, plain) =
        tandem_tls::split_incoming(listener, Arc::new(tls), stopped_when(stopped.clone()));
    let node_service = tonic::transport::Server::builder()
        .trace_fn(tandem_telemetry::grpc_request_span)
        .add_service(NodeServiceServer::new(grpc::NodeApi::new(state.clone())))
        .serve_with_incoming_shutdown(secure, stopped_when(stopped.clone()));
    let admin_service = tonic::transport::Server::builder()
        .trace_fn(tandem_telemetry::grpc_request_span)
        .add_service(admin_server(state))
        .serve_with_incoming_shutdown(plain, stopped_when(stopped));
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let ((), node_served, admin_served) = tokio::join!(signal, node_service, admin_service);
    node_served.and(admin_served)
}
