//! The Tandem broker: the network operator's service that collects pseudonymised mentor
//! profiles from the nodes, takes mentees from member companies, matches them in rounds and
//! carries introductions to the mentors' nodes.
//!
//! [`Broker`] holds the logic as plain async methods that tests call directly; the gRPC
//! handlers in [`grpc`] only authenticate, convert and map errors. [`serve`] runs the
//! `MenteeService` and `OperatorService` on a bound listener together with the background jobs
//! (periodic sync, outbox delivery, expiry) until a shutdown future completes. The database is
//! migrated by the caller, never by the broker.
//!
//! The flow: a company submits a mentee ([`intake`]); nodes are synced for profiles and mentor
//! decisions ([`sync`]); a matching round proposes mentors ([`round`]) and queues introductions
//! in the [`outbox`]; the company answers and, after the double opt-in, gets the mentor's
//! contact card relayed from the node ([`proposals`]). A company can erase a mentee, and the
//! nodes forget its summary ([`erasure`]).

#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod dashboard;
pub mod erasure;
pub mod error;
pub mod grpc;
pub mod intake;
pub mod keys;
pub mod nodes;
pub mod outbox;
pub mod proposals;
pub mod round;
pub mod stats;
pub mod sync;
pub mod tandems;

mod convert;
mod lifecycle;
mod server;
mod store;
mod workers;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::Mutex;

pub use config::{BrokerConfig, NodeEntry};
pub use error::BrokerError;
pub use server::{Listeners, serve};

/// The broker's clock: Unix milliseconds. Tests replace it to move time forward.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The broker's service logic over one database.
pub struct Broker {
    db: DatabaseConnection,
    config: BrokerConfig,
    clients: nodes::NodeClients,
    /// Serialises the broker's write transactions within this process. SQLite allows one
    /// writer, and a transaction that read before writing fails outright when another write
    /// slipped in between; on PostgreSQL the conditional updates in [`lifecycle`] keep
    /// concurrent replicas correct, and this lock only spares them retries.
    write_lock: Mutex<()>,
    /// Only one matching round runs at a time.
    round_lock: Mutex<()>,
    /// Only one outbox pass runs at a time, so that a node sees its messages in order.
    outbox_lock: Mutex<()>,
    /// Per-caller request rate limits.
    limiter: tandem_domain::rate_limit::RateLimiter,
    /// What time it is for the tandem lifecycle (meeting dates, overdue flags).
    clock: Clock,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("listen", &self.config.listen)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Creates the broker over an already migrated database and registers the nodes of the
    /// configuration.
    pub async fn new(
        db: DatabaseConnection,
        config: BrokerConfig,
    ) -> Result<Arc<Broker>, BrokerError> {
        Self::with_clock(db, config, Arc::new(tandem_storage::now_ms)).await
    }

    /// Like [`Broker::new`], with the clock the tandem lifecycle reads.
    pub async fn with_clock(
        db: DatabaseConnection,
        config: BrokerConfig,
        clock: Clock,
    ) -> Result<Arc<Broker>, BrokerError> {
        let clients = nodes::NodeClients::new(config.tls.clone())?;
        let limiter = tandem_domain::rate_limit::RateLimiter::new(
            config.rate_limit_per_second,
            config.rate_limit_burst,
        );
        let broker = Arc::new(Broker {
            limiter,
            db,
            config,
            clients,
            write_lock: Mutex::new(()),
            round_lock: Mutex::new(()),
            outbox_lock: Mutex::new(()),
            clock,
        });
        for node in broker.config.nodes.clone() {
            broker
                .register_node(&node.id, &node.endpoint, &node.display_name, &node.identity)
                .await?;
        }
        Ok(broker)
    }

    /// Returns the configuration the broker runs with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Returns the current time of the broker's clock, in Unix milliseconds.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Returns the broker's database connection.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}
