//! Enrolment codes: the one-time secret an association hands to a member company it admitted,
//! which the company exchanges for its API key at the broker.
//!
//! A code is `tec_` and 32 hex digits (128 random bits). The node shows it once and keeps only
//! its SHA-256 hash, which it publishes with the membership; the broker compares hashes. A
//! code of 128 random bits needs no slow hash: nobody can guess one, and a leaked hash does
//! not give the code back.

use rand::RngCore;
use sha2::{Digest, Sha256};
use tandem_domain::FieldViolation;

/// Prefix of every code.
pub const PREFIX: &str = "tec_";
/// Random bytes in a code.
const RANDOM_BYTES: usize = 16;
/// Longest input looked at when parsing a presented code.
const MAX_PRESENTED: usize = 128;

/// A freshly generated code. The code exists only in this value; store `hash`.
pub struct NewCode {
    /// The code to show once.
    pub code: String,
    /// SHA-256 (hex) of the code: what the node stores and publishes.
    pub hash: String,
}

// Written by hand so that the code never reaches a log line.
impl std::fmt::Debug for NewCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCode")
            .field("code", &"<redacted>")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Returns a fresh random code and its hash.
pub fn generate() -> NewCode {
    let mut random = [0u8; RANDOM_BYTES];
    rand::rng().fill_bytes(&mut random);
    let code = format!("{PREFIX}{}", hex::encode(random));
    NewCode {
        hash: hash(&code),
        code,
    }
}

/// Returns the hash of a code in its canonical form.
fn hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// Checks the shape of a presented code and returns its hash. Surrounding spaces, dashes or
/// spaces between digit groups and upper case are accepted, as people copy codes from
/// letters and e-mails. The error names `field` and says what a code looks like; it does not
/// say whether a code exists.
pub fn parse(field: &str, presented: &str) -> Result<String, FieldViolation> {
    let malformed = || {
        FieldViolation::new(
            field,
            format!(
                "must be an enrolment code: {PREFIX} followed by {} hex digits",
                RANDOM_BYTES * 2
            ),
        )
    };
    if presented.trim().is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if presented.len() > MAX_PRESENTED {
        return Err(malformed());
    }
    let compact: String = presented
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    let digits = compact.strip_prefix(PREFIX).ok_or_else(malformed)?;
    let well_formed = digits.len() == RANDOM_BYTES * 2
        && digits
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(malformed());
    }
    Ok(hash(&compact))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_code_parses_to_its_hash_however_it_was_copied() {
        let new = generate();
        assert_eq!(new.code.len(), PREFIX.len() + 32);
        assert_eq!(parse("code", &new.code).expect("valid"), new.hash);
        let shouted = format!("  {}  ", new.code.to_uppercase());
        assert_eq!(parse("code", &shouted).expect("upper case"), new.hash);
        let grouped: String = new
            .code
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i > 4 && i % 4 == 0).then_some('-').into_iter().chain([c]))
            .collect();
        assert_eq!(parse("code", &grouped).expect("grouped"), new.hash);
        assert_ne!(generate().hash, new.hash);
    }

    #[test]
    fn a_malformed_code_names_the_field() {
        for bad in [
            "",
            "   ",
            "tec_123",
            "tdm_k1_abc",
            &format!("tec_{}", "g".repeat(32)),
        ] {
            let err = parse("enrolment_code", bad).expect_err(bad);
            assert_eq!(err.field, "enrolment_code");
        }
        let long = "x".repeat(10_000);
        assert!(parse("enrolment_code", &long).is_err());
    }

    #[test]
    fn debug_output_hides_the_code() {
        let new = generate();
        assert!(!format!("{new:?}").contains(&new.code));
    }
}
