//! `tandem keys`: create, list and revoke API keys, at the broker or at a node.
//!
//! Which database the command works on follows from the configuration file: a node's
//! configuration (it has `node_id`) manages that node's staff keys (scope `node-admin`), a
//! broker's configuration manages company and operator keys. Asking one for the other's scope is
//! refused with a message that says which file to use.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use figment::Figment;
use figment::providers::{Format, Toml};
use tandem_broker::keys::Scope;

/// Key management.
#[derive(Debug, Clone, Args)]
pub struct KeysOptions {
    /// The broker's configuration file (company and operator keys) or a node's (its staff's
    /// `node-admin` keys); its `database_url` is used.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: KeysAction,
}

/// What to do with keys.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysAction {
    /// Creates a key and prints it once; only its hash is stored.
    Create {
        /// `company` or `operator` with a broker configuration; `node-admin` with a node's.
        #[arg(long, value_enum)]
        scope: KeyScope,
        /// The company a `company` key acts for: its membership id (as `ListCompanies` shows it
        /// at its node). Companies normally get their first key by enrolment.
        #[arg(long, required_if_eq("scope", "company"))]
        company: Option<String>,
        /// Who holds the key (a note for people).
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Lists keys without their secrets.
    List,
    /// Revokes a key by its id (the `k…` part).
    Revoke {
        #[arg(long)]
        id: String,
    },
}

/// Scopes a key can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyScope {
    /// A member company at the broker.
    Company,
    /// The network operator at the broker.
    Operator,
    /// The association's staff at one node (`NodeAdminService`).
    NodeAdmin,
}

/// Whose configuration a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    Broker,
    Node,
}

impl ConfigKind {
    /// Tells a node's configuration (it names its `node_id`) from the broker's.
    pub fn of(path: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            path.is_file(),
            "configuration file {} does not exist",
            path.display()
        );
        let file = Figment::new().merge(Toml::file(path));
        // A syntax error is reported by the full load that follows, naming its line.
        Ok(if file.contains("node_id") {
            Self::Node
        } else {
            Self::Broker
        })
    }
}

/// Refuses a scope that the configuration's party does not issue, naming the right file.
fn check_scope(scope: KeyScope, kind: ConfigKind, path: &Path) -> anyhow::Result<()> {
    match (scope, kind) {
        (KeyScope::NodeAdmin, ConfigKind::Broker) => anyhow::bail!(
            "--scope node-admin: staff keys are issued by a node; {} is a broker configuration, \
             pass the node's configuration (the file with node_id) as --config",
            path.display()
        ),
        (KeyScope::Company | KeyScope::Operator, ConfigKind::Node) => anyhow::bail!(
            "--scope {}: company and operator keys are issued by the broker; {} is a node \
             configuration, which issues only --scope node-admin",
            if scope == KeyScope::Company {
                "company"
            } else {
                "operator"
            },
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Runs `tandem keys`.
pub async fn run(options: KeysOptions) -> anyhow::Result<()> {
    let path = options
        .config
        .ok_or_else(|| anyhow::anyhow!("--config FILE is required"))?;
    let kind = ConfigKind::of(&path)?;
    if let KeysAction::Create { scope, company, .. } = &options.action {
        check_scope(*scope, kind, &path)?;
        anyhow::ensure!(
            company.is_none() || *scope == KeyScope::Company,
            "--company: only for --scope company"
        );
    }
    match kind {
        ConfigKind::Broker => broker_keys(&path, options.action).await,
        ConfigKind::Node => node_keys(&path, options.action).await,
    }
}

async fn broker_keys(path: &Path, action: KeysAction) -> anyhow::Result<()> {
    let mut config = crate::config::load_broker(path)?;
    // Key management must not register or change nodes.
    config.nodes.clear();
    let db = tandem_storage::connect(&config.database_url).await?;
    crate::require_migrated::<tandem_storage::BrokerMigrator>(&db, "broker").await?;
    let broker = tandem_broker::Broker::new(db, config).await?;
    match action {
        KeysAction::Create {
            scope,
            company,
            label,
        } => {
            let scope = match scope {
                KeyScope::Company => Scope::Company,
                KeyScope::Operator => Scope::Operator,
                KeyScope::NodeAdmin => anyhow::bail!("--scope node-admin: needs a node config"),
            };
            let (info, key) = broker
                .create_key(scope, company.as_deref().unwrap_or_default(), &label)
                .await?;
            println!("{key}");
            eprintln!(
                "created {} key {} at the broker{}; it is shown only now — store it safely",
                info.scope,
                info.id,
                if info.tenant.is_empty() {
                    String::new()
                } else {
                    format!(" for {}", info.tenant)
                }
            );
        }
        KeysAction::List => {
            for k in broker.list_keys().await? {
                println!(
                    "{}  {:<10} {:<24} {}{}",
                    k.id,
                    k.scope,
                    k.tenant,
                    k.label,
                    if k.revoked { "  (revoked)" } else { "" }
                );
            }
        }
        KeysAction::Revoke { id } => {
            broker.revoke_key(&id).await?;
            println!("revoked {id} at the broker");
        }
    }
    Ok(())
}

async fn node_keys(path: &Path, action: KeysAction) -> anyhow::Result<()> {
    let config = crate::config::load_node(path)?;
    let db = tandem_storage::connect(&config.database_url).await?;
    crate::require_migrated::<tandem_storage::NodeMigrator>(&db, "node").await?;
    let node = tandem_node::NodeState::new(db, &config);
    match action {
        KeysAction::Create { label, .. } => {
            let (info, key) = node.create_staff_key(&label).await?;
            println!("{key}");
            eprintln!(
                "created {} key {} for node {}; it is shown only now — store it safely",
                info.scope, info.id, info.node_id
            );
        }
        KeysAction::List => {
            for k in node.list_staff_keys().await? {
                println!(
                    "{}  {:<10} {:<24} {}{}",
                    k.id,
                    k.scope,
                    k.node_id,
                    k.label,
                    if k.revoked { "  (revoked)" } else { "" }
                );
            }
        }
        KeysAction::Revoke { id } => {
            node.revoke_staff_key(&id).await?;
            println!("revoked {id} at node {}", config.node_id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_kind_follows_node_id_and_wrong_scopes_name_the_right_file() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let node = deploy.join("node.toml");
        let broker = deploy.join("broker.toml");
        assert_eq!(ConfigKind::of(&node).expect("node"), ConfigKind::Node);
        assert_eq!(ConfigKind::of(&broker).expect("broker"), ConfigKind::Broker);
        let err = check_scope(KeyScope::NodeAdmin, ConfigKind::Broker, &broker)
            .expect_err("node-admin at the broker")
            .to_string();
        assert!(err.starts_with("--scope node-admin: "), "{err}");
        assert!(err.contains("broker configuration"), "{err}");
        for scope in [KeyScope::Company, KeyScope::Operator] {
            let err = check_scope(scope, ConfigKind::Node, &node)
                .expect_err("broker scope at a node")
                .to_string();
            assert!(err.contains("node configuration"), "{err}");
        }
        assert!(check_scope(KeyScope::NodeAdmin, ConfigKind::Node, &node).is_ok());
        assert!(check_scope(KeyScope::Operator, ConfigKind::Broker, &broker).is_ok());
        assert!(ConfigKind::of(Path::new("/nonexistent/x.toml")).is_err());
    }
}
