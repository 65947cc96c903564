//! Entities of a node's database: full mentor records, their publication (the profile feed),
//! received introductions and counters.

pub mod counter;
pub mod introduction;
pub mod mentor;
pub mod publication;
pub mod tandem;
pub mod tandem_event;
