//! Entities of a node's database: full mentor records, received introductions and counters.

pub mod counter;
pub mod introduction;
pub mod mentor;
