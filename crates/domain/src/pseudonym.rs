//! Keyed hashes that let profiles cross a boundary without the person: a mentor's pseudonym
//! (keyed with the node's own secret) and employer/group tokens (keyed with the federation-wide
//! key, so equal employers give equal tokens at every node without revealing the employer).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn keyed_hash(key: &[u8], domain: &str, value: &str) -> String {
    // HMAC accepts keys of any length, so construction cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        unreachable!("hmac accepts keys of any length")
    };
    // The domain separates the uses of one key so a pseudonym never equals a token.
    mac.update(domain.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Returns the pseudonym under which a node publishes a mentor: HMAC-SHA-256 of the mentor id
/// with the node's secret, as 64 hex characters.
pub fn mentor_pseudonym(node_secret: &[u8], mentor_id: &str) -> String {
    keyed_hash(node_secret, "tandem/v1/mentor-pseudonym", mentor_id)
}

/// Returns the pseudonym under which a node publishes a mentor during one publication epoch:
/// HMAC-SHA-256 with the node's secret of `epoch:<n>|<mentor id>`, as 64 hex characters. A new
/// epoch gives every mentor a new pseudonym that the broker cannot link to the previous one
/// without the node's secret.
pub fn mentor_pseudonym_in_epoch(node_secret: &[u8], epoch: u64, mentor_id: &str) -> String {
    keyed_hash(
        node_secret,
        "tandem/v1/mentor-pseudonym",
        &format!("epoch:{epoch}|{mentor_id}"),
    )
}

/// Returns the broker's reference to a mentee at one node: hex SHA-256 of the node id and the
/// mentee id. Stable for the pair, different at every node.
pub fn mentee_ref(node_id: &str, mentee_id: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"tandem-mentee-ref\0");
    h.update(node_id.as_bytes());
    h.update(b"\0");
    h.update(mentee_id.as_bytes());
    hex::encode(h.finalize())
}

/// Normalises a registry number so that spelling variants ("HRB 1234", "hrb1234") give one token.
pub fn normalise_registry_number(number: &str) -> String {
    number
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Returns the employer (or group) token for a registry number: HMAC-SHA-256 with the
/// federation-wide key of the normalised number, as 64 hex characters.
pub fn employer_token(federation_key: &[u8], registry_number: &str) -> String {
    keyed_hash(
        federation_key,
        "tandem/v1/employer",
        &normalise_registry_number(registry_number),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_ignore_spelling_but_not_the_key() {
        let a = employer_token(b"federation", "HRB 1234 München");
        assert_eq!(a, employer_token(b"federation", "hrb1234münchen"));
        assert_ne!(a, employer_token(b"other key", "HRB 1234 München"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn pseudonyms_depend_on_the_node_secret() {
        let p = mentor_pseudonym(b"node-a", "m1");
        assert_ne!(p, mentor_pseudonym(b"node-b", "m1"));
        assert_ne!(p, employer_token(b"node-a", "m1"));
    }

    #[test]
    fn epochs_give_unlinkable_pseudonyms() {
        let first = mentor_pseudonym_in_epoch(b"node-a", 7, "m1");
        assert_eq!(first, mentor_pseudonym_in_epoch(b"node-a", 7, "m1"));
        assert_ne!(first, mentor_pseudonym_in_epoch(b"node-a", 8, "m1"));
        assert_ne!(first, mentor_pseudonym(b"node-a", "m1"));
        assert_ne!(first, mentor_pseudonym_in_epoch(b"node-b", 7, "m1"));
        assert_eq!(first.len(), 64);
    }
}
