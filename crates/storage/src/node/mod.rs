//! Entities of a node's database: full mentor records, their publication (the profile feed),
//! received introductions, counters, the staff's API keys and the audit log.

pub mod api_key;
pub mod audit_event;
pub mod counter;
pub mod introduction;
pub mod mentor;
pub mod publication;
pub mod tandem;
pub mod tandem_event;
