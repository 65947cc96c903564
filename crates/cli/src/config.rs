//! Configuration loading in layers: the structure's defaults, then a TOML file, then `TANDEM_*`
//! environment variables (`TANDEM_DATABASE_URL`, nested keys with `__`, e.g.
//! `TANDEM_WEIGHTS__GOAL_COVERAGE`). Unknown keys in the file are rejected, and `validate()`
//! names the key that is wrong.
//!
//! The file is optional: in a container the environment alone may carry the whole
//! configuration. Without a file, the error for an incomplete environment names every missing
//! required key with its variable.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

/// Top-level keys of a node configuration that environment variables may override.
const NODE_KEYS: &[&str] = &[
    "node_id",
    "display_name",
    "listen",
    "admin_listen",
    "health_listen",
    "database_url",
    "pseudonym_secret",
    "federation_key",
    "publication",
    "staff_rate_limit_per_second",
    "staff_rate_limit_burst",
    "enrolment_code_days",
    "tls",
    "admin_tls",
];

/// Top-level keys of a broker configuration that environment variables may override.
const BROKER_KEYS: &[&str] = &[
    "listen",
    "dashboard_listen",
    "health_listen",
    "database_url",
    "sync_interval_secs",
    "outbox_interval_secs",
    "outbox_deadline_ms",
    "outbox_retry_base_ms",
    "outbox_max_attempts",
    "proposal_ttl_hours",
    "profile_staleness_secs",
    "weights",
    "candidate_limits",
    "priority",
    "rate_limit_per_second",
    "rate_limit_burst",
    "enrolment_rate_limit_per_minute",
    "enrolment_rate_limit_burst",
    "checkin_grace_days",
    "rematch_window_days",
    "tls",
    "api_tls",
    "nodes",
];

/// Keys a node configuration must set: they have no default.
const NODE_REQUIRED: &[&str] = &[
    "node_id",
    "display_name",
    "database_url",
    "pseudonym_secret",
    "federation_key",
];

/// Keys a broker configuration must set: they have no default.
const BROKER_REQUIRED: &[&str] = &["database_url"];

/// Where a configuration came from, for messages.
fn source(file: Option<&Path>) -> String {
    match file {
        Some(path) => path.display().to_string(),
        None => "the environment".to_owned(),
    }
}

fn load<T: DeserializeOwned>(
    file: Option<&Path>,
    env_keys: &'static [&'static str],
    required: &[&str],
) -> anyhow::Result<T> {
    if let Some(path) = file {
        anyhow::ensure!(
            path.is_file(),
            "configuration file {} does not exist",
            path.display()
        );
    }
    let env = Env::prefixed("TANDEM_").split("__").filter(move |key| {
        // Figment hands the key over as written in the environment (upper case).
        let top = key.as_str().split('.').next().unwrap_or_default();
        env_keys.iter().any(|k| k.eq_ignore_ascii_case(top))
    });
    let mut figment = Figment::new();
    if let Some(path) = file {
        figment = figment.merge(Toml::file(path));
    }
    let figment = figment.merge(env);
    // A file with a syntax error is reported below, naming its line, rather than as missing keys.
    let missing: Vec<String> = required
        .iter()
        .filter(|key| figment.find_value(key).is_err())
        .map(|key| format!("{key} (TANDEM_{})", key.to_ascii_uppercase()))
        .collect();
    if file.is_none() && !missing.is_empty() {
        anyhow::bail!(
            "missing configuration: {}; set them in the environment or pass --config FILE",
            missing.join(", ")
        );
    }
    figment
        .extract()
        .map_err(|err| anyhow::anyhow!("invalid configuration in {}: {err}", source(file)))
}

/// Loads and validates a node configuration from a file and the environment.
pub fn load_node(path: &Path) -> anyhow::Result<tandem_node::NodeConfig> {
    load_node_from(Some(path))
}

/// Loads and validates a node configuration from a file, when given, and the environment.
pub fn load_node_from(file: Option<&Path>) -> anyhow::Result<tandem_node::NodeConfig> {
    let config: tandem_node::NodeConfig = load(file, NODE_KEYS, NODE_REQUIRED)?;
    config
        .validate()
        .map_err(|err| anyhow::anyhow!("invalid configuration in {}: {err}", source(file)))?;
    Ok(config)
}

/// Loads and validates a broker configuration from a file and the environment.
pub fn load_broker(path: &Path) -> anyhow::Result<tandem_broker::BrokerConfig> {
    load_broker_from(Some(path))
}

/// Loads and validates a broker configuration from a file, when given, and the environment.
pub fn load_broker_from(file: Option<&Path>) -> anyhow::Result<tandem_broker::BrokerConfig> {
    let config: tandem_broker::BrokerConfig = load(file, BROKER_KEYS, BROKER_REQUIRED)?;
    config
        .validate()
        .map_err(|err| anyhow::anyhow!("invalid configuration in {}: {err}", source(file)))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    const NODE: &str = r#"
node_id = "ind-assoc"
display_name = "Industry Association"
database_url = "sqlite://node.sqlite?mode=rwc"
pseudonym_secret = "0123456789abcdef0123456789abcdef"
federation_key = "fedcba9876543210fedcba9876543210"
"#;

    #[test]
    fn loads_the_shipped_examples() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        load_node(&deploy.join("node.toml")).expect("deploy/node.toml");
        let broker = load_broker(&deploy.join("broker.toml")).expect("deploy/broker.toml");
        // The example spells out the outbox's defaults.
        let defaults = tandem_broker::BrokerConfig::new("sqlite://b.db");
        assert_eq!(
            (
                broker.outbox_interval_secs,
                broker.outbox_deadline_ms,
                broker.outbox_retry_base_ms,
                broker.outbox_max_attempts
            ),
            (
                defaults.outbox_interval_secs,
                defaults.outbox_deadline_ms,
                defaults.outbox_retry_base_ms,
                defaults.outbox_max_attempts
            )
        );
    }

    /// Uncomments the example section `[name]` of a shipped configuration and its keys.
    fn uncomment(text: &str, name: &str) -> String {
        let mut out = Vec::new();
        let mut inside = false;
        for line in text.lines() {
            if line == format!("# [{name}]") {
                inside = true;
                out.push(line.trim_start_matches("# ").to_owned());
            } else if inside && line.starts_with("# ") && line.contains(" = ") {
                out.push(line.trim_start_matches("# ").to_owned());
            } else {
                inside = false;
                out.push(line.to_owned());
            }
        }
        out.join("\n")
    }

    #[test]
    fn the_shipped_tls_sections_of_the_apis_parse() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = std::fs::read_to_string(deploy.join("broker.toml")).expect("broker.toml");
        let path = write(&dir, &uncomment(&broker, "api_tls"));
        let config = load_broker(&path).expect("broker with [api_tls]");
        let api = config.api_tls.expect("api_tls");
        assert_eq!(api.cert, Path::new("certs/broker-api.pem"));
        assert_eq!(api.key, Path::new("certs/broker-api-key.pem"));

        let node = std::fs::read_to_string(deploy.join("node.toml")).expect("node.toml");
        let path = write(&dir, &uncomment(&node, "admin_tls"));
        let config = load_node(&path).expect("node with [admin_tls]");
        assert_eq!(config.admin_listen, "127.0.0.1:7002");
        let admin = config.admin_tls.expect("admin_tls");
        assert_eq!(admin.cert, Path::new("certs/ind-assoc-admin.pem"));

        // The API sections take a certificate and a key, nothing else (no client CA).
        let path = write(
            &dir,
            "database_url = \"sqlite://b.db\"\n[api_tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nca = \"ca.pem\"\n",
        );
        let err = load_broker(&path).expect_err("unknown key").to_string();
        assert!(err.contains("ca"), "{err}");
    }

    #[test]
    fn rejects_unknown_keys_naming_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, &format!("{NODE}\ncolour = \"blue\"\n"));
        let err = load_node(&path).expect_err("unknown key").to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn names_the_line_of_a_syntax_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "node_id = \"a\"\nlisten = \n");
        let err = load_node(&path).expect_err("syntax").to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = load_node(Path::new("/nonexistent/node.toml"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("/nonexistent/node.toml"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            &NODE.replace("0123456789abcdef0123456789abcdef", "short"),
        );
        let err = load_node(&path).expect_err("short secret").to_string();
        assert!(err.contains("pseudonym_secret"), "{err}");
    }
}
