//! The gRPC adapters: thin handlers that authenticate the caller, call the [`Broker`] and map
//! its errors to statuses.
//!
//! [`Broker`]: crate::Broker

mod auth;
mod mentee;
mod operator;

pub use auth::{AUTHORIZATION, check_company_id};
pub use mentee::MenteeGrpc;
pub use operator::OperatorGrpc;
