//! The errors of loading, building and minting TLS material.

use std::path::PathBuf;

/// What went wrong with a certificate, a key or a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file holds no usable PEM data.
    #[error("{path}: {detail}")]
    Pem { path: PathBuf, detail: String },
    /// rustls refused the certificates or keys.
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client verifier could not be built (e.g. an empty CA file).
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// An identity is not a DNS name.
    #[error("{0}")]
    Identity(String),
    /// A certificate could not be generated.
    #[error("certificate generation: {0}")]
    Mint(#[from] rcgen::Error),
}

impl TlsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TlsError::Io {
            path: path.into(),
            source,
        }
    }
}
