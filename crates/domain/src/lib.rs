//! Tandem's domain: the vocabulary of the federation and the rules of a good mentoring match.
//!
//! Everything here is plain, synchronous Rust that nodes, the broker and tests call directly:
//! validation of what companies and association staff submit ([`validate`]), the keyed hashes
//! that pseudonymise mentors and employers ([`pseudonym`]), the hard constraints and the
//! explained score of a mentee–mentor pair ([`scoring`]), the rules of a tandem's life after
//! the match ([`lifecycle`]), and the taxonomy they are written in ([`taxonomy`]). The gRPC
//! types of `tandem-proto` are the shared vocabulary; this crate adds the rules, and the
//! matching round (`tandem-matching`) builds on them.
//!
//! In the workspace: builds on `tandem-proto` only; everything above it (matching, service,
//! node, broker, cli) uses it.

pub mod error;
pub mod lifecycle;
pub mod model;
pub mod pseudonym;
pub mod scoring;
pub mod taxonomy;
pub mod time;
pub mod validate;

pub use error::{FieldViolation, Violations};
pub use model::{CompanyRecord, Employer, Goal, MenteeNeeds, MentorProfile, MentorRecord};
