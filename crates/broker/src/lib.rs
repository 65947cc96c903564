//! The Tandem broker: the network operator's service that collects pseudonymised mentor
//! profiles from the nodes, takes mentees from member companies, matches them in rounds and
//! carries introductions to the mentors' nodes.
//!
//! [`Broker`] holds the logic as plain async methods that tests call directly; the gRPC
//! handlers in [`grpc`] only read the caller (which the service toolkit's gate admitted, see
//! `tandem-service`), convert and map errors. [`serve`] runs the `MenteeService`,
//! `EnrolmentService` and `OperatorService` on a bound listener together with the background
//! jobs (periodic sync, the outbox's delivery lanes, expiry) until a shutdown future completes.
//! The database is migrated by the caller, never by the broker.
//!
//! The flow: an association admits a member company at its node, which publishes the
//! membership ([`memberships`]); the company exchanges the enrolment code it was handed for its
//! API key ([`enrolment`]) and submits mentees, which carry the tokens and home node of its
//! membership ([`intake`]); nodes are synced for memberships, profiles and mentor decisions
//! ([`sync`]); a matching round proposes mentors ([`round`]) and queues introductions in the
//! [`outbox`], which one delivery lane per node carries there (`delivery`; what a node refuses
//! for good waits in the [`dead_letters`]), so that no caller waits for a node; the company
//! answers and, after the double opt-in, gets the mentor's contact card
//! relayed from the node ([`proposals`]), which is asked for the mentor's answer right then
//! when the broker has not synced it yet (`decisions`). A company can erase a mentee, and the
//! nodes forget its summary ([`erasure`]). When a node removes a company, its keys stop
//! working and its mentees not yet in a tandem leave matching ([`memberships`]).
//!
//! Several brokers (replicas) may share one PostgreSQL database: rounds and each node's sync
//! run on one replica at a time under advisory locks (`replicas`); SQLite is one process's.
//!
//! In the workspace: builds on `tandem-domain` (rules), `tandem-matching` (rounds),
//! `tandem-storage` (its database), `tandem-service` (keys, gate, audit, clock, errors) and
//! `tandem-tls`; the `tandem` command (`tandem-cli`) runs it.

#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod dashboard;
pub mod dead_letters;
pub mod enrolment;
pub mod erasure;
pub mod error;
pub mod grpc;
pub mod intake;
pub mod keys;
pub mod memberships;
pub mod nodes;
pub mod outbox;
pub mod proposals;
pub mod round;
pub mod stats;
pub mod sync;
pub mod tandems;

mod convert;
mod decisions;
mod delivery;
mod proposal_state;
mod replicas;
mod server;
mod store;
mod workers;

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tandem_service::rate_limit::RateLimiter;
use tandem_service::{Gate, Scope, Writer};
use tokio::sync::Mutex;

pub use config::{BrokerConfig, NodeEntry};
pub use error::BrokerError;
pub use server::{Listeners, serve};
pub use tandem_service::Clock;

/// The scopes of the keys the broker issues.
const ISSUED_SCOPES: &[Scope] = &[Scope::Company, Scope::Operator];

/// The broker's service logic over one database.
pub struct Broker {
    /// The database, and the lock that serialises this process's write transactions. On
    /// PostgreSQL the conditional updates in `proposal_state` keep concurrent replicas
    /// correct, and the lock only spares them retries.
    writer: Writer,
    config: BrokerConfig,
    clients: nodes::NodeClients,
    /// Checks the API keys of companies and operators and their rate limits.
    gate: Arc<Gate>,
    /// Limits enrolment attempts per peer address (enrolment calls carry no key).
    enrolment_limiter: RateLimiter,
    /// Only one matching round of this process runs at a time (a second one waits); across
    /// replicas the round's advisory lock decides (`replicas`).
    round_lock: Mutex<()>,
    /// One sync of each node in this process at a time (a second one waits); across replicas
    /// the node's advisory lock decides.
    sync_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// The outbox's delivery lanes in this process: one per node, woken by every change that
    /// writes messages.
    lanes: delivery::Lanes,
    /// What time it is: every timestamp the broker writes, and the tandem lifecycle.
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
        Self::with_clock(db, config, Clock::system()).await
    }

    /// Like [`Broker::new`], with the clock the broker reads.
    pub async fn with_clock(
        db: DatabaseConnection,
        config: BrokerConfig,
        clock: Clock,
    ) -> Result<Arc<Broker>, BrokerError> {
        let clients = nodes::NodeClients::new(config.tls.clone())?;
        let limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
        let gate = Arc::new(Gate::new(db.clone(), ISSUED_SCOPES, limiter));
        let enrolment_limiter = RateLimiter::per_minute(
            config.enrolment_rate_limit_per_minute,
            config.enrolment_rate_limit_burst,
        );
        let broker = Arc::new(Broker {
            writer: Writer::new(db),
            config,
            clients,
            gate,
            enrolment_limiter,
            round_lock: Mutex::new(()),
            sync_locks: std::sync::Mutex::default(),
            lanes: delivery::Lanes::default(),
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
        self.clock.now_ms()
    }

    /// Returns the broker's database connection.
    pub fn db(&self) -> &DatabaseConnection {
        self.writer.db()
    }

    /// Returns the gate that admits the broker's callers.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }
}
