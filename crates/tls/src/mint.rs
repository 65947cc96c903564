//! Minting a development CA and node, broker or API server certificates with rcgen, as
//! `tandem certs init|issue` and the demo federation do.
//!
//! A node certificate names the node's identity as a DNS subject alternative name and may
//! only serve (server-auth); a broker certificate may only dial (client-auth). An API server
//! certificate (the broker's gRPC API and dashboard, a node's `NodeAdminService`) names the
//! host names and IP addresses its callers dial and may only serve. Production deployments may
//! use any CA that issues certificates of the same shape.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::{TlsError, TlsFiles, check_identity};

/// File name of the CA certificate in a certificate directory.
pub const CA_CERT: &str = "ca.pem";
/// File name of the CA's private key in a certificate directory.
pub const CA_KEY: &str = "ca-key.pem";

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A node serving `NodeService` (server-auth).
    Node,
    /// A broker calling nodes (client-auth).
    Broker,
    /// A server of a caller-facing API (server-auth), see [`issue_api`].
    Api,
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "node" => Ok(Kind::Node),
            "broker" => Ok(Kind::Broker),
            "api" => Ok(Kind::Api),
            other => Err(format!("kind: expected node, broker or api, got {other:?}")),
        }
    }
}

/// The period in which a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Returns a validity from an hour ago (tolerating clock skew) for `days` days.
    pub fn days(days: u32) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(i64::from(days)),
        }
    }
}

/// Creates a CA in `dir` (created if missing): `ca.pem` and `ca-key.pem`, valid for ten years.
/// Refuses to overwrite an existing CA. Returns the path of `ca.pem`.
pub fn init(dir: &Path) -> Result<PathBuf, TlsError> {
    std::fs::create_dir_all(dir).map_err(|e| TlsError::io(dir, e))?;
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    for path in [&cert_path, &key_path] {
        if path.exists() {
            return Err(TlsError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "refusing to overwrite an existing ca",
                ),
            ));
        }
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.distinguished_name = name("Tandem development CA");
    let validity = Validity::days(3650);
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.self_signed(&key)?;
    write(&key_path, &key.serialize_pem(), true)?;
    write(&cert_path, &cert.pem(), false)?;
    Ok(cert_path)
}

/// Issues a certificate for `identity` (a DNS name such as `ind-assoc.node.tandem`), signed
/// by the CA in `dir`, and writes `<dir>/<name>.pem` and `<dir>/<name>-key.pem` (replacing
/// them if present). Returns the files a node or broker configures. A [`Kind::Api`]
/// certificate names only `identity` here; [`issue_api`] adds more names.
pub fn issue(
    dir: &Path,
    name_: &str,
    identity: &str,
    kind: Kind,
    validity: Validity,
) -> Result<TlsFiles, TlsError> {
    check_identity("identity", identity).map_err(TlsError::Identity)?;
    sign(dir, name_, &[identity.to_owned()], kind, validity)
}

/// Issues an API server certificate for every name in `names` (DNS names such as `localhost`
/// or `broker.example.org`, or IP addresses such as `127.0.0.1`), signed by the CA in `dir`,
/// and writes `<dir>/<name>.pem` and `<dir>/<name>-key.pem` (replacing them if present).
pub fn issue_api(
    dir: &Path,
    name_: &str,
    names: &[String],
    validity: Validity,
) -> Result<TlsFiles, TlsError> {
    if names.is_empty() {
        return Err(TlsError::Identity(
            "names: at least one host name or ip address is required".to_owned(),
        ));
    }
    for (i, host) in names.iter().enumerate() {
        if host.parse::<std::net::IpAddr>().is_err() {
            check_identity(&format!("names[{i}]"), host).map_err(|_| {
                TlsError::Identity(format!(
                    "names[{i}]: {host:?} is neither a dns name such as \"broker.example.org\" nor an ip address"
                ))
            })?;
        }
    }
    sign(dir, name_, names, Kind::Api, validity)
}

/// Signs a certificate for `names` (the first is also the common name) with the CA in `dir`.
fn sign(
    dir: &Path,
    name_: &str,
    names: &[String],
    kind: Kind,
    validity: Validity,
) -> Result<TlsFiles, TlsError> {
    if name_.is_empty()
        || !name_
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        || name_.starts_with('.')
        || name_ == "ca"
    {
        return Err(TlsError::Identity(format!(
            "name: {name_:?} must be a file name of a-z, 0-9, '-', '_' and '.', not \"ca\""
        )));
    }
    let ca_pem = std::fs::read_to_string(dir.join(CA_CERT))
        .map_err(|e| TlsError::io(dir.join(CA_CERT), e))?;
    let ca_key_pem =
        std::fs::read_to_string(dir.join(CA_KEY)).map_err(|e| TlsError::io(dir.join(CA_KEY), e))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;

    let key = KeyPair::generate()?;
    // rcgen turns a name that parses as an IP address into an IP address SAN.
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name = name(names.first().map_or("", String::as_str));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match kind {
        Kind::Node | Kind::Api => ExtendedKeyUsagePurpose::ServerAuth,
        Kind::Broker => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.signed_by(&key, &issuer)?;

    let files = TlsFiles::in_dir(dir, name_);
    // Key first: a reloading server that sees the new certificate already finds its key.
    write(&files.key, &key.serialize_pem(), true)?;
    write(&files.cert, &cert.pem(), false)?;
    Ok(files)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Writes a file whole through a temporary sibling and a rename, so a reader never sees half
/// of it; private keys are readable by the owner only.
fn write(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(|e| TlsError::io(&tmp, e))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| TlsError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TlsError::io(path, e))
}
