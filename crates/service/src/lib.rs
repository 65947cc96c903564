//! The service toolkit the broker and the nodes share, so that each cross-cutting concern is
//! one piece of code:
//!
//! - who is calling: the API key format ([`api_key`]), the table of issued keys ([`keys`]) and
//!   the [`Gate`] that checks a presented key, applies the caller's rate limit
//!   ([`rate_limit`]) and hands the handlers a typed [`Caller`] — as a tower service in front
//!   of a gRPC service ([`Guarded`]) or called directly by an HTTP handler;
//! - the append-only audit log ([`audit`]) and the write transaction that serialises one
//!   process's writes ([`write`]);
//! - time ([`Clock`]: the only place the service reads the system clock) and shutdown
//!   ([`shutdown`]: one cancellation token for every server and worker);
//! - what probes and tools see of a gRPC server: the standard health service, kept true by a
//!   watcher of the database, also on a plain-text port of its own for probes ([`health`]), and
//!   server reflection ([`reflection`]);
//! - the one layer in front of every gRPC server ([`rpc`]): server spans and per-call metrics
//!   after OpenTelemetry's RPC conventions, and actionable codes for request bodies tonic
//!   cannot decode;
//! - what an error becomes for a peer ([`ErrorCode`]: each error variant names its cause and
//!   one code, which gives its gRPC status and its HTTP status; a database that cannot be
//!   reached now is UNAVAILABLE, see [`error::database_code`]).
//!
//! The broker and a node each keep their own database; both have an `api_keys` and an
//! `audit_events` table of the same shape (`tandem-storage`), which this crate reads and writes.
//!
//! In the workspace: builds on `tandem-storage` (the key and audit tables), `tandem-domain`
//! (input checks) and `tandem-telemetry` (span conventions); `tandem-broker` and `tandem-node`
//! use it.

#![forbid(unsafe_code)]

pub mod api_key;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod enrolment;
pub mod error;
pub mod health;
pub mod keys;
pub mod rate_limit;
pub mod reflection;
pub mod rpc;
pub mod shutdown;
pub mod write;

pub use auth::{AUTHORIZATION, AuthError, Caller, Gate, Guarded, Scope, caller};
pub use clock::Clock;
pub use error::{ErrorCode, ServiceError, status};
pub use shutdown::CancellationToken;
pub use write::{WriteTxn, Writer};
