//! The gRPC adapters: thin handlers that authenticate the caller, call the [`Broker`] and map
//! its errors to statuses.
//!
//! [`Broker`]: crate::Broker

mod auth;
mod mentee;
mod operator;

pub use auth::{COMPANY_HEADER, company};
pub use mentee::MenteeGrpc;
pub use operator::OperatorGrpc;
