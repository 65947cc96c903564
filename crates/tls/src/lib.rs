//! TLS of Tandem: mutual TLS between the broker and its nodes, and server-authenticated TLS of
//! the caller-facing APIs.
//!
//! The broker calls every node's `NodeService` over gRPC on TLS with client certificates: the
//! node presents a certificate for its registered identity (a DNS name such as
//! `ind-assoc.node.tandem`) and accepts only clients whose certificate chains to its configured
//! CA *and* names one of the brokers it trusts; the broker checks the node's certificate against
//! the CA and the identity registered for that node. Both checks happen in the handshake, so a
//! refused peer never reaches an RPC handler.
//!
//! The APIs that companies, operators and association staff call (`MenteeService`,
//! `OperatorService`, the operators' dashboard, `NodeAdminService`) authenticate their callers by
//! API key, so their servers present a certificate and ask for none: [`ApiTls`] on the server,
//! [`ApiClientTls`] for a caller that trusts a CA file.
//!
//! [`ServerTls`], [`ClientTls`] and [`ApiTls`] re-read their PEM files when they change on disk,
//! so renewed certificates take effect at the next handshake without a restart. [`mint`] creates
//! a development CA and node, broker or API server certificates (`tandem certs init|issue`).
//! Only rustls with the `ring` provider is used.
//!
//! In the workspace: used by `tandem-node`, `tandem-broker` and `tandem-cli`; depends only on
//! `tandem-proto`.

mod api;
mod client;
mod error;
mod files;
mod incoming;
pub mod mint;
mod reload;
mod server;

pub use api::{Alpn, ApiClientTls, ApiTls};
pub use client::{ClientTls, TlsConnector};
pub use error::TlsError;
pub use files::{CertFiles, TlsFiles};
pub use incoming::{TlsConn, TlsIncoming};
pub use server::ServerTls;

/// The identity a broker certificate carries unless configured otherwise.
pub const DEFAULT_BROKER_IDENTITY: &str = "broker.tandem";

/// Returns the identity a node's certificate carries unless its registration names another:
/// `<node_id>.node.tandem`.
pub fn node_identity(node_id: &str) -> String {
    format!("{node_id}.node.tandem")
}

/// Checks that `identity` can stand in a certificate and be verified: a DNS name such as
/// `ind-assoc.node.tandem`. The message names `field`.
pub fn check_identity(field: &str, identity: &str) -> Result<(), String> {
    let valid = !identity.is_empty()
        && identity.len() <= 253
        && identity.parse::<std::net::IpAddr>().is_err()
        && rustls_pki_types::DnsName::try_from(identity).is_ok();
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{field}: {identity:?} is not a dns name such as \"ind-assoc.node.tandem\""
        ))
    }
}

/// Returns the process-wide crypto provider: rustls' `ring` provider.
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_dns_names() {
        assert_eq!(node_identity("ind-assoc"), "ind-assoc.node.tandem");
        assert!(check_identity("identity", "ind-assoc.node.tandem").is_ok());
        assert!(check_identity("identity", DEFAULT_BROKER_IDENTITY).is_ok());
        for bad in ["", "127.0.0.1", "spaces are bad", "a..b"] {
            let err = check_identity("identity", bad).expect_err(bad);
            assert!(err.starts_with("identity: "), "{err}");
        }
    }
}
