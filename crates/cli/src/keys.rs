//! `tandem keys`: create, list and revoke the broker's API keys.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use tandem_broker::keys::Scope;

/// Key management.
#[derive(Debug, Clone, Args)]
pub struct KeysOptions {
    /// The broker's configuration file (its `database_url` is used).
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
        #[arg(long, value_enum)]
        scope: KeyScope,
        /// The company a `company` key acts for.
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
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyScope {
    Company,
    Operator,
}

/// Runs `tandem keys`.
pub async fn run(options: KeysOptions) -> anyhow::Result<()> {
    let path = options
        .config
        .ok_or_else(|| anyhow::anyhow!("--config FILE is required"))?;
    let mut config = crate::config::load_broker(&path)?;
    // Key management must not register or change nodes.
    config.nodes.clear();
    let db = tandem_storage::connect(&config.database_url).await?;
    crate::require_migrated::<tandem_storage::BrokerMigrator>(&db, "broker").await?;
    let broker = tandem_broker::Broker::new(db, config).await?;
    match options.action {
        KeysAction::Create {
            scope,
            company,
            label,
        } => {
            let scope = match scope {
                KeyScope::Company => Scope::Company,
                KeyScope::Operator => Scope::Operator,
            };
            let (info, key) = broker
                .create_key(scope, company.as_deref().unwrap_or_default(), &label)
                .await?;
            println!("{key}");
            eprintln!(
                "created {} key {}{}; it is shown only now — store it safely",
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
                    "{}  {:<8} {:<24} {}{}",
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
            println!("revoked {id}");
        }
    }
    Ok(())
}
