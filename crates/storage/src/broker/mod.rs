//! Entities of the broker's database. Nothing here identifies a person: mentors appear only as
//! pseudonymised profiles, mentees only as the needs their company submitted.

pub mod api_key;
pub mod audit_event;
pub mod matching_round;
pub mod mentee;
pub mod node;
pub mod outbox;
pub mod profile;
pub mod proposal;
pub mod tandem;
