//! Entities of the broker's database. Nothing here identifies a person: mentors appear only as
//! pseudonymised profiles, mentees only as the needs their company submitted. Its API keys and
//! audit log have the shape every Tandem database shares ([`crate::api_key`],
//! [`crate::audit_event`]).

pub use crate::{api_key, audit_event};

pub mod matching_round;
pub mod membership;
pub mod mentee;
pub mod node;
pub mod outbox;
pub mod profile;
pub mod proposal;
pub mod tandem;
