//! API keys as the broker and every node issue them: `tdm_<id>_<secret>`.
//!
//! The id is public (it names the key in lists, the audit log and revocations); only a SHA-256
//! hash of the secret is stored, and the whole key is shown once, when it is created. Callers
//! send it as `authorization: Bearer <key>` request metadata. The broker and the nodes share
//! this format and check; each keeps its own table of keys ([`crate::keys`]), so a key issued
//! by one party means nothing to any other.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tandem_domain::FieldViolation;

/// Prefix of every key.
pub const PREFIX: &str = "tdm_";
/// Longest key id.
const MAX_ID: usize = 32;
/// Longest secret accepted when checking a key (longer ones are refused unread).
const MAX_SECRET: usize = 128;
/// Shortest secret of a key provisioned by tooling rather than generated here.
pub const MIN_INSTALLED_SECRET: usize = 32;

/// A newly generated key. The full key exists only in this value; store `secret_hash`.
pub struct NewKey {
    /// Public id, e.g. `k3f9a1c2d0e`.
    pub id: String,
    /// SHA-256 (hex) of the secret, the only part that is stored.
    pub secret_hash: String,
    /// The key to hand to its holder once: `tdm_<id>_<secret>`.
    pub key: String,
}

// Written by hand so that the key never reaches a log line.
impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Returns a fresh random key: a 10-hex-digit id after `k` and a 48-hex-digit secret.
pub fn generate() -> NewKey {
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let mut id = [0u8; 5];
    rand::rng().fill_bytes(&mut id);
    let id = format!("k{}", hex::encode(id));
    NewKey {
        key: format!("{PREFIX}{id}_{secret}"),
        secret_hash: hash_secret(&secret),
        id,
    }
}

/// Splits a presented key into id and secret, or `None` when it cannot be a key. Used when
/// checking a caller: every refusal looks the same to the caller.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.strip_prefix(PREFIX)?.split_once('_')?;
    let well_formed = !id.is_empty()
        && id.len() <= MAX_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && !secret.is_empty()
        && secret.len() <= MAX_SECRET;
    well_formed.then_some((id, secret))
}

/// Checks a key chosen by tooling (`tdm_<id>_<secret>`, secret at least 32 characters) and
/// returns its id and secret; the error names the field `key`.
pub fn parse_installable(key: &str) -> Result<(&str, &str), FieldViolation> {
    let malformed = || {
        FieldViolation::new(
            "key",
            format!(
                "must look like tdm_<id>_<secret> with a secret of at least {MIN_INSTALLED_SECRET} characters"
            ),
        )
    };
    let (id, secret) = split(key).ok_or_else(malformed)?;
    if secret.len() < MIN_INSTALLED_SECRET {
        return Err(malformed());
    }
    Ok((id, secret))
}

/// Returns the SHA-256 (hex) of a secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Returns whether `secret` matches a stored hash, in time independent of where they differ.
pub fn verify(stored_hash: &str, secret: &str) -> bool {
    same(stored_hash, &hash_secret(secret))
}

/// Returns the key of an `authorization` metadata value (`Bearer <key>`), if it has that form.
pub fn from_authorization(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Compares two strings in time independent of where they differ (their lengths, those of
/// two SHA-256 hashes, are public).
fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_verifies_and_splits_into_its_id() {
        let new = generate();
        let (id, secret) = split(&new.key).expect("well formed");
        assert_eq!(id, new.id);
        assert!(verify(&new.secret_hash, secret));
        assert!(!verify(&new.secret_hash, "0".repeat(48).as_str()));
        assert!(!format!("{new:?}").contains(secret));
    }

    #[test]
    fn malformed_keys_do_not_split() {
        for bad in [
            "",
            "tdm_",
            "tdm_k1",
            "tdm__secret",
            "tdm_k1_",
            "abc_k1_secret",
            "tdm_k-1_secret",
            &format!("tdm_{}_s", "k".repeat(33)),
            &format!("tdm_k1_{}", "s".repeat(129)),
        ] {
            assert!(split(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn installable_keys_need_a_long_secret_and_name_the_field() {
        assert!(parse_installable(&format!("tdm_d1_{}", "a".repeat(32))).is_ok());
        let err = parse_installable("tdm_d1_short").expect_err("short");
        assert_eq!(err.field, "key");
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn bearer_values_yield_their_key() {
        assert_eq!(from_authorization("Bearer tdm_a_b"), Some("tdm_a_b"));
        assert_eq!(from_authorization("Basic xyz"), None);
        assert_eq!(from_authorization("Bearer  "), None);
    }
}
