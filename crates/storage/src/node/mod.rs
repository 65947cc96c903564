//! Entities of a node's database: full mentor records, their publication (the profile feed),
//! received introductions and the tombstones of those closed or forgotten, member companies,
//! counters, and the staff's API keys and the audit log (of the shape every Tandem database
//! shares: [`crate::api_key`], [`crate::audit_event`]).

pub use crate::{api_key, audit_event};

pub mod company;
pub mod counter;
pub mod introduction;
pub mod introduction_tombstone;
pub mod mentor;
pub mod publication;
pub mod tandem;
pub mod tandem_event;
