//! The `tandem` command: run a node, run the broker, apply migrations, or run a whole demo
//! federation in one process.
//!
//! The binary only parses flags and configuration and calls the node and broker libraries; the
//! demo drives the federation through the same gRPC API that companies, association staff and
//! operators use.

pub mod bench;
pub mod config;
pub mod demo;
pub mod keys;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tandem_storage::MigratorTrait;

/// Command-line interface of `tandem`.
#[derive(Debug, Parser)]
#[command(
    name = "tandem",
    version,
    about = "Tandem: a federated mentoring network"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a whole federation (a broker and three nodes) in one process, seeds synthetic
    /// mentors and mentees, matches them and prints what happened.
    Demo(demo::DemoOptions),
    /// Runs a node (one association's server) from a TOML configuration file.
    Node {
        /// Configuration file (see deploy/node.toml); `TANDEM_*` variables override it.
        #[arg(long)]
        config: PathBuf,
        /// Serves NodeService in plain text when the configuration has no `[tls]` section.
        /// For development only: anyone who reaches the port can call it.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Runs the broker from a TOML configuration file.
    Broker {
        /// Configuration file (see deploy/broker.toml); `TANDEM_*` variables override it.
        #[arg(long)]
        config: PathBuf,
        /// Calls nodes in plain text when the configuration has no `[tls]` section.
        /// For development only.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Mints a development CA and node or broker certificates for mutual TLS.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Creates, lists and revokes API keys: company and operator keys with the broker's
    /// configuration, staff (`node-admin`) keys with a node's.
    Keys(keys::KeysOptions),
    /// Solves a bare assignment instance from a file (see `tandem solve --help`).
    Solve(bench::SolveOptions),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Applies pending database migrations of a node or the broker.
    Migrate {
        /// Whose database to migrate.
        role: Role,
        /// The node's or broker's configuration file (its `database_url` is used).
        #[arg(long)]
        config: PathBuf,
    },
}

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Creates a CA (`ca.pem`, `ca-key.pem`) in a directory.
    Init {
        /// Directory for the CA; created if missing. An existing CA is never overwritten.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issues a certificate signed by the CA in a directory: `<name>.pem` and `<name>-key.pem`.
    Issue {
        /// Directory holding `ca.pem` and `ca-key.pem`; the certificate is written there.
        #[arg(long)]
        dir: PathBuf,
        /// File name stem, e.g. `ind-assoc` or `broker`.
        #[arg(long)]
        name: String,
        /// Identity (DNS name) the certificate carries, e.g. `ind-assoc.node.tandem` or
        /// `broker.tandem`.
        #[arg(long)]
        identity: String,
        /// `node` (serves NodeService) or `broker` (calls nodes).
        #[arg(long)]
        kind: CertKind,
        /// Days the certificate stays valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CertKind {
    Node,
    Broker,
}

/// A part of the federation.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Node,
    Broker,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(options) => {
            let _telemetry = tandem_telemetry::init_telemetry("tandem-demo", "warn")?;
            demo::run_and_print(options, shutdown_signal()).await
        }
        Command::Keys(options) => keys::run(options).await,
        Command::Solve(options) => bench::solve(&options),
        Command::Bench(bench::BenchCommand::Match(options)) => bench::bench_match(&options),
        Command::Node {
            config,
            insecure_dev,
        } => {
            let _telemetry = tandem_telemetry::init_telemetry("tandem-node", "info")?;
            run_node(config::load_node(&config)?, insecure_dev).await
        }
        Command::Broker {
            config,
            insecure_dev,
        } => {
            let _telemetry = tandem_telemetry::init_telemetry("tandem-broker", "info")?;
            run_broker(config::load_broker(&config)?, insecure_dev).await
        }
        Command::Certs(command) => certs(command),
        Command::Migrate { role, config } => {
            let _telemetry = tandem_telemetry::init_telemetry("tandem-migrate", "info")?;
            let url = match role {
                Role::Node => config::load_node(&config)?.database_url,
                Role::Broker => config::load_broker(&config)?.database_url,
            };
            let db = tandem_storage::connect(&url).await?;
            let applied = match role {
                Role::Node => migrate::<tandem_storage::NodeMigrator>(&db).await?,
                Role::Broker => migrate::<tandem_storage::BrokerMigrator>(&db).await?,
            };
            println!("applied {applied} migration(s) to {}", redact(&url));
            Ok(())
        }
    }
}

async fn migrate<M: MigratorTrait>(
    db: &tandem_storage::DatabaseConnection,
) -> anyhow::Result<usize> {
    let pending = M::get_pending_migrations(db).await?.len();
    M::up(db, None).await?;
    Ok(pending)
}

/// Refuses to start on a database with pending migrations, naming the command that fixes it.
async fn require_migrated<M: MigratorTrait>(
    db: &tandem_storage::DatabaseConnection,
    role: &str,
) -> anyhow::Result<()> {
    let pending = M::get_pending_migrations(db).await?.len();
    anyhow::ensure!(
        pending == 0,
        "the {role} database has {pending} pending migration(s); run `tandem migrate {role} --config FILE` first"
    );
    Ok(())
}

/// Hides a password in a database URL for display.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Runs `tandem certs init|issue`.
fn certs(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init { dir } => {
            let ca = tandem_tls::mint::init(&dir)?;
            println!("created ca {}", ca.display());
        }
        CertsCommand::Issue {
            dir,
            name,
            identity,
            kind,
            days,
        } => {
            anyhow::ensure!(days > 0, "--days: must be at least 1");
            let kind = match kind {
                CertKind::Node => tandem_tls::mint::Kind::Node,
                CertKind::Broker => tandem_tls::mint::Kind::Broker,
            };
            let files = tandem_tls::mint::issue(
                &dir,
                &name,
                &identity,
                kind,
                tandem_tls::mint::Validity::days(days),
            )?;
            println!(
                "issued {identity} for {days} days: cert {}, key {}",
                files.cert.display(),
                files.key.display()
            );
        }
    }
    Ok(())
}

/// Refuses plain-text transport unless `--insecure-dev` asked for it, and then warns.
fn require_tls_or_insecure_dev(has_tls: bool, insecure_dev: bool) -> anyhow::Result<()> {
    if has_tls {
        return Ok(());
    }
    anyhow::ensure!(
        insecure_dev,
        "tls: the configuration has no [tls] section; configure mutual tls (see `tandem certs --help`) or pass --insecure-dev for development"
    );
    tracing::warn!("plain-text transport: development only");
    Ok(())
}

async fn run_node(config: tandem_node::NodeConfig, insecure_dev: bool) -> anyhow::Result<()> {
    require_tls_or_insecure_dev(config.tls.is_some(), insecure_dev)?;
    let tls = match &config.tls {
        Some(tls) => Some(tandem_tls::ServerTls::new(
            tls.files(),
            &tls.trusted_brokers,
        )?),
        None => None,
    };
    let db = tandem_storage::connect(&config.database_url).await?;
    require_migrated::<tandem_storage::NodeMigrator>(&db, "node").await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(node = %config.node_id, addr = %listener.local_addr()?, "node listening");
    let state = tandem_node::NodeState::new(db, &config);
    match tls {
        Some(tls) => tandem_node::serve_tls(state, listener, tls, shutdown_signal()).await?,
        None => tandem_node::serve(state, listener, shutdown_signal()).await?,
    }
    tracing::info!("node stopped");
    Ok(())
}

async fn run_broker(config: tandem_broker::BrokerConfig, insecure_dev: bool) -> anyhow::Result<()> {
    require_tls_or_insecure_dev(config.tls.is_some(), insecure_dev)?;
    let db = tandem_storage::connect(&config.database_url).await?;
    require_migrated::<tandem_storage::BrokerMigrator>(&db, "broker").await?;
    let listeners = tandem_broker::Listeners::bind(&config).await?;
    if let Some(dashboard) = &listeners.dashboard {
        tracing::info!(addr = %dashboard.local_addr()?, "dashboard listening");
    }
    let broker = tandem_broker::Broker::new(db, config).await?;
    tandem_broker::serve(broker, listeners, shutdown_signal()).await?;
    tracing::info!("broker stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@db/x"),
            "postgres://***@db/x"
        );
        assert_eq!(
            super::redact("sqlite://a.sqlite?mode=rwc"),
            "sqlite://a.sqlite?mode=rwc"
        );
    }
}
