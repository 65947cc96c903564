//! A node's configuration: who the node is, where it listens, its database and its two keys.
//!
//! The CLI layers defaults, a TOML file, `TANDEM_*` variables and flags into a [`NodeConfig`]
//! and calls [`NodeConfig::validate`] before it starts anything.

use std::fmt;

/// Shortest accepted secret or key, in characters.
const MIN_SECRET_LEN: usize = 32;

fn default_staff_rate() -> u32 {
    20
}

fn default_staff_burst() -> u32 {
    100
}

/// Days an enrolment code stays valid unless the configuration says otherwise.
pub const DEFAULT_ENROLMENT_CODE_DAYS: u32 = 14;

fn default_enrolment_code_days() -> u32 {
    DEFAULT_ENROLMENT_CODE_DAYS
}

/// Configuration of one node.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Stable identifier of the node: 2 to 64 characters of `a-z`, `0-9` and `-`.
    pub node_id: String,
    /// Display name of the association or network.
    pub display_name: String,
    /// Address of `NodeService`, which the broker calls (over mutual TLS with `[tls]`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Address of `NodeAdminService`, which the association's staff call with their keys
    /// (over TLS with `[admin_tls]`).
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Address of a plain-text port that serves only `grpc.health.v1.Health` (the node and
    /// both its services), for probes that cannot speak TLS such as the kubelet's native gRPC
    /// probe; none when unset.
    #[serde(default)]
    pub health_listen: Option<String>,
    /// `sqlite://…?mode=rwc` or `postgres://…`.
    pub database_url: String,
    /// The node's own secret that keys mentor pseudonyms; at least 32 characters.
    pub pseudonym_secret: String,
    /// The federation-wide key for employer and group tokens; at least 32 characters.
    pub federation_key: String,
    /// How the node anonymises its publication: k-anonymity and pseudonym epochs.
    #[serde(default)]
    pub publication: PublicationConfig,
    /// Requests per second each staff key may send to `NodeAdminService` on average (0
    /// disables the limit), and the burst above it.
    #[serde(default = "default_staff_rate")]
    pub staff_rate_limit_per_second: u32,
    #[serde(default = "default_staff_burst")]
    pub staff_rate_limit_burst: u32,
    /// Days an enrolment code the node issues to a member company stays valid: 1 to 365,
    /// 14 by default. A company that did not enrol in time asks for a fresh code.
    #[serde(default = "default_enrolment_code_days")]
    pub enrolment_code_days: u32,
    /// Mutual TLS of `NodeService`; without it the node serves plain text, which the CLI allows
    /// only with `--insecure-dev`.
    #[serde(default)]
    pub tls: Option<NodeTlsConfig>,
    /// The certificate and key `NodeAdminService` presents to staff (no client certificates:
    /// staff authenticate with their keys); without it the node serves `NodeAdminService` in
    /// plain text, which the CLI allows only with `--insecure-dev`.
    #[serde(default)]
    pub admin_tls: Option<tandem_tls::CertFiles>,
}

/// The node's certificate, key and CA, and the brokers it accepts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTlsConfig {
    /// The node's certificate chain (PEM), naming its identity, e.g. `ind-assoc.node.tandem`.
    pub cert: std::path::PathBuf,
    /// The node's private key (PEM).
    pub key: std::path::PathBuf,
    /// The CA that signs broker certificates (PEM).
    pub ca: std::path::PathBuf,
    /// Identities of the brokers allowed to call `NodeService`, e.g. `["broker.tandem"]`.
    pub trusted_brokers: Vec<String>,
}

impl NodeTlsConfig {
    /// Returns the certificate, key and CA files.
    pub fn files(&self) -> tandem_tls::TlsFiles {
        tandem_tls::TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: self.ca.clone(),
        }
    }

    /// Checks the trusted identities; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.trusted_brokers.is_empty() {
            return Err("tls.trusted_brokers: name at least one broker identity".to_owned());
        }
        for (i, identity) in self.trusted_brokers.iter().enumerate() {
            tandem_tls::check_identity(&format!("tls.trusted_brokers[{i}]"), identity)?;
        }
        Ok(())
    }
}

/// How a node anonymises what it publishes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicationConfig {
    /// Every published combination of career level, experience band, region and industry is
    /// shared by at least this many profiles: 1 to 100 (1 switches k-anonymity off).
    pub k: u32,
    /// Length of a pseudonym epoch in days; a new epoch gives every mentor a new pseudonym.
    /// 0 never rotates.
    pub epoch_days: u32,
}

impl Default for PublicationConfig {
    fn default() -> Self {
        Self {
            k: 5,
            epoch_days: 30,
        }
    }
}

impl PublicationConfig {
    /// Checks the keys and names the first bad one (`publication.k: must be 1 to 100`).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.k) {
            return Err("publication.k: must be 1 to 100".to_owned());
        }
        if self.epoch_days > 3660 {
            return Err("publication.epoch_days: must be 0 (never rotate) to 3660".to_owned());
        }
        Ok(())
    }
}

/// Returns the default listen address.
pub fn default_listen() -> String {
    "127.0.0.1:7001".to_owned()
}

/// Returns the default address of `NodeAdminService`.
pub fn default_admin_listen() -> String {
    "127.0.0.1:7002".to_owned()
}

// Written by hand so that the two secrets never reach a log line.
impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("node_id", &self.node_id)
            .field("display_name", &self.display_name)
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("health_listen", &self.health_listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("pseudonym_secret", &"<redacted>")
            .field("federation_key", &"<redacted>")
            .field("publication", &self.publication)
            .field("enrolment_code_days", &self.enrolment_code_days)
            .field("tls", &self.tls)
            .field("admin_tls", &self.admin_tls)
            .finish()
    }
}

/// Hides a password in a database URL (`postgres://user:secret@host` → `postgres://user:…@host`).
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:…@{host}")
        }
        _ => url.to_owned(),
    }
}

impl NodeConfig {
    /// Checks every key and returns the first problem, naming the key
    /// (e.g. `pseudonym_secret: must be at least 32 characters`).
    pub fn validate(&self) -> Result<(), String> {
        tandem_domain::validate::node_id("node_id", &self.node_id).map_err(|e| e.to_string())?;
        if self.display_name.trim().is_empty() {
            return Err("display_name: is required".to_owned());
        }
        if !is_listen_address(&self.listen) {
            return Err(format!(
                "listen: expected host:port, e.g. \"127.0.0.1:7001\", got {:?}",
                self.listen
            ));
        }
        if !is_listen_address(&self.admin_listen) {
            return Err(format!(
                "admin_listen: expected host:port, e.g. \"127.0.0.1:7002\", got {:?}",
                self.admin_listen
            ));
        }
        if self.admin_listen == self.listen && !self.listen.ends_with(":0") {
            return Err("admin_listen: must differ from listen".to_owned());
        }
        if let Some(health) = &self.health_listen {
            if !is_listen_address(health) {
                return Err(format!(
                    "health_listen: expected host:port, e.g. \"0.0.0.0:7003\", got {health:?}"
                ));
            }
            if !health.ends_with(":0") && (*health == self.listen || *health == self.admin_listen) {
                return Err("health_listen: must differ from listen and admin_listen".to_owned());
            }
        }
        let url = &self.database_url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err("database_url: expected sqlite://… or postgres://…".to_owned());
        }
        for (key, value) in [
            ("pseudonym_secret", &self.pseudonym_secret),
            ("federation_key", &self.federation_key),
        ] {
            if value.chars().count() < MIN_SECRET_LEN {
                return Err(format!(
                    "{key}: must be at least {MIN_SECRET_LEN} characters"
                ));
            }
        }
        if self.pseudonym_secret == self.federation_key {
            // The federation key is shared with every node; a pseudonym keyed with it could be
            // recomputed by any other node.
            return Err("pseudonym_secret: must differ from federation_key".to_owned());
        }
        self.publication.validate()?;
        if !(1..=365).contains(&self.enrolment_code_days) {
            return Err(format!(
                "enrolment_code_days: must be 1 to 365, got {}",
                self.enrolment_code_days
            ));
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        Ok(())
    }
}

fn is_listen_address(listen: &str) -> bool {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    listen
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> NodeConfig {
        NodeConfig {
            node_id: "ind-assoc".into(),
            display_name: "Industry Association".into(),
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            health_listen: None,
            database_url: "sqlite://node.db?mode=rwc".into(),
            pseudonym_secret: "p".repeat(32),
            federation_key: "f".repeat(32),
            publication: PublicationConfig::default(),
            staff_rate_limit_per_second: default_staff_rate(),
            staff_rate_limit_burst: default_staff_burst(),
            enrolment_code_days: default_enrolment_code_days(),
            tls: None,
            admin_tls: None,
        }
    }

    #[test]
    fn accepts_a_good_config() {
        assert_eq!(good().validate(), Ok(()));
    }

    type Mutation = fn(&mut NodeConfig);

    #[test]
    fn names_the_offending_key() {
        let cases: Vec<(Mutation, &str)> = vec![
            (|c| c.node_id = "Bad Id".into(), "node_id: "),
            (|c| c.display_name = " ".into(), "display_name: "),
            (|c| c.listen = "nowhere".into(), "listen: "),
            (|c| c.admin_listen = "nowhere".into(), "admin_listen: "),
            (|c| c.admin_listen = c.listen.clone(), "admin_listen: "),
            (
                |c| c.health_listen = Some("nowhere".into()),
                "health_listen: ",
            ),
            (
                |c| c.health_listen = Some(c.admin_listen.clone()),
                "health_listen: ",
            ),
            (|c| c.database_url = "mysql://x".into(), "database_url: "),
            (
                |c| c.pseudonym_secret = "short".into(),
                "pseudonym_secret: ",
            ),
            (|c| c.federation_key = "short".into(), "federation_key: "),
            (|c| c.publication.k = 0, "publication.k: "),
            (|c| c.publication.k = 101, "publication.k: "),
            (|c| c.enrolment_code_days = 0, "enrolment_code_days: "),
            (|c| c.enrolment_code_days = 366, "enrolment_code_days: "),
            (
                |c| c.publication.epoch_days = 100_000,
                "publication.epoch_days: ",
            ),
            (
                |c| c.federation_key = c.pseudonym_secret.clone(),
                "pseudonym_secret: ",
            ),
        ];
        for (mutate, prefix) in cases {
            let mut config = good();
            mutate(&mut config);
            let err = config.validate().expect_err(prefix);
            assert!(err.starts_with(prefix), "{err}");
        }
        let mut config = good();
        config.pseudonym_secret = "short".into();
        assert_eq!(
            config.validate(),
            Err("pseudonym_secret: must be at least 32 characters".to_owned())
        );
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let mut config = good();
        config.database_url = "postgres://tandem:hunter2@db/tandem".into();
        let shown = format!("{config:?}");
        assert!(!shown.contains(&config.pseudonym_secret), "{shown}");
        assert!(!shown.contains(&config.federation_key), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ind-assoc"), "{shown}");
    }

    #[test]
    fn listen_defaults_and_unknown_keys_are_refused() {
        let toml_like = serde_json::json!({
            "node_id": "a1",
            "display_name": "A",
            "database_url": "sqlite://a.db",
            "pseudonym_secret": "p".repeat(32),
            "federation_key": "f".repeat(32),
        });
        let config: NodeConfig = serde_json::from_value(toml_like.clone()).expect("parses");
        assert_eq!(config.listen, "127.0.0.1:7001");
        assert_eq!(config.admin_listen, "127.0.0.1:7002");
        assert_eq!(config.admin_tls, None);
        assert_eq!(config.publication, PublicationConfig::default());
        assert_eq!(config.publication.k, 5);
        assert_eq!(config.enrolment_code_days, 14);
        let mut partial = toml_like.clone();
        partial["publication"] = serde_json::json!({ "k": 3 });
        let config: NodeConfig = serde_json::from_value(partial).expect("parses");
        assert_eq!(config.publication.k, 3);
        assert_eq!(config.publication.epoch_days, 30);
        let mut unknown = toml_like;
        unknown["colour"] = "blue".into();
        assert!(serde_json::from_value::<NodeConfig>(unknown).is_err());
    }
}
