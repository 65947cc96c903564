//! Where a party's certificate, key and CA live, and how they are read.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// The PEM files of one party: its certificate chain, its private key, and the CA that signs
/// its peers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Private key of the leaf (PEM, PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// CA certificate(s) that peers' certificates must chain to (PEM).
    pub ca: PathBuf,
}

impl TlsFiles {
    /// Returns the files `<dir>/<name>.pem`, `<dir>/<name>-key.pem` and `<dir>/ca.pem`, as
    /// `tandem certs issue` writes them.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        TlsFiles {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}-key.pem")),
            ca: dir.join("ca.pem"),
        }
    }

    pub(crate) fn paths(&self) -> [&Path; 3] {
        [&self.cert, &self.key, &self.ca]
    }

    /// Checks that the three files exist; the message names `field`.
    pub fn check(&self, field: &str) -> Result<(), String> {
        for (key, path) in [("cert", &self.cert), ("key", &self.key), ("ca", &self.ca)] {
            if !path.is_file() {
                return Err(format!("{field}.{key}: {} does not exist", path.display()));
            }
        }
        Ok(())
    }

    /// Returns the certificate and key without the CA: what a server of an API presents.
    pub fn cert_files(&self) -> CertFiles {
        CertFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    pub(crate) fn load_chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        load_certs(&self.cert)
    }

    pub(crate) fn load_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        load_key(&self.key)
    }

    pub(crate) fn load_roots(&self) -> Result<RootCertStore, TlsError> {
        load_roots(&self.ca)
    }
}

/// The PEM files of a server that authenticates itself only: its certificate chain and its
/// private key. Its callers authenticate with API keys, not certificates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFiles {
    /// Certificate chain, leaf first (PEM), naming the host names or addresses callers dial.
    pub cert: PathBuf,
    /// Private key of the leaf (PEM, PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

impl CertFiles {
    pub(crate) fn paths(&self) -> [&Path; 2] {
        [&self.cert, &self.key]
    }

    pub(crate) fn load_chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        load_certs(&self.cert)
    }

    pub(crate) fn load_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        load_key(&self.key)
    }
}

/// Reads the CA certificate(s) in `path` (PEM) as trust anchors.
pub(crate) fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            detail: format!("not a usable ca certificate: {e}"),
        })?;
    }
    Ok(roots)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        detail: format!("no private key: {e}"),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::io(path, e))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            detail: "no certificate".to_owned(),
        });
    }
    Ok(certs)
}
