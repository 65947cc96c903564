//! A Tandem node: one association's or start-up network's server.
//!
//! The node keeps its mentors' full records (names, contacts, employer) in its own database and
//! publishes only pseudonymised profiles. It serves two gRPC services: `NodeService` to the
//! broker (the profile feed, introductions, decisions, contact cards after the double opt-in) and
//! `NodeAdminService` to the association's own staff (mentor records and decisions).
//!
//! [`NodeState`] holds the logic as plain async methods that tests call directly; [`serve`]
//! puts thin tonic adapters in front of it. Every write goes through one lock and one database
//! transaction, so the profile feed version and the decision sequence grow without gaps on
//! SQLite and PostgreSQL alike. Migrations are not run here: the CLI migrates the database
//! before it builds a node.

pub mod config;
mod counters;
mod error;
mod feed;
mod grpc;
mod introductions;
mod mentors;
mod records;

use std::future::Future;
use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tandem_proto::node_admin_service_server::NodeAdminServiceServer;
use tandem_proto::node_service_server::NodeServiceServer;
use tokio::sync::{Mutex, MutexGuard};

pub use config::NodeConfig;
pub use error::NodeError;

/// The state and logic of one node: its database, identity and keys.
pub struct NodeState {
    db: DatabaseConnection,
    node_id: String,
    display_name: String,
    pseudonym_secret: Vec<u8>,
    federation_key: Vec<u8>,
    /// Serialises every write of this node (it runs as a single process), which keeps the
    /// counters gap-free and commits in counter order.
    write_lock: Mutex<()>,
}

impl NodeState {
    /// Builds a node on an already migrated database.
    pub fn new(db: DatabaseConnection, config: &NodeConfig) -> Arc<NodeState> {
        Arc::new(NodeState {
            db,
            node_id: config.node_id.clone(),
            display_name: config.display_name.clone(),
            pseudonym_secret: config.pseudonym_secret.as_bytes().to_vec(),
            federation_key: config.federation_key.as_bytes().to_vec(),
            write_lock: Mutex::new(()),
        })
    }

    /// Returns the node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Returns the pseudonym under which a mentor is published.
    pub fn pseudonym(&self, mentor_id: &str) -> String {
        tandem_domain::pseudonym::mentor_pseudonym(&self.pseudonym_secret, mentor_id)
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
        .add_service(NodeAdminServiceServer::new(grpc::AdminApi::new(state)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
