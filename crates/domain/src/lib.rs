//! Tandem's domain: the vocabulary of the federation and the rules of a good mentoring match.
//!
//! Everything here is plain, synchronous Rust that nodes, the broker and tests call directly:
//! validation of what companies and association staff submit ([`validate`]), the keyed hashes
//! that pseudonymise mentors and employers ([`pseudonym`]), the API key format that the broker
//! and the nodes both issue and check ([`api_key`]), and the hard constraints and the explained
//! score of a mentee–mentor pair ([`scoring`]), which the matching round of `tandem-matching`
//! builds on. The gRPC types of `tandem-proto` are the shared vocabulary; this crate adds the
//! rules.

pub mod api_key;
pub mod error;
pub mod lifecycle;
pub mod model;
pub mod pseudonym;
pub mod rate_limit;
pub mod scoring;
pub mod taxonomy;
pub mod validate;

pub use error::ValidationError;
pub use model::{Goal, MenteeNeeds, MentorProfile, MentorRecord};
