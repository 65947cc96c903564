//! The `tandem` command: run a node, run the broker, apply migrations, or run a whole demo
//! federation in one process.
//!
//! The binary only parses flags and configuration and calls the node and broker libraries; the
//! demo drives the federation through the same gRPC API that companies, association staff and
//! operators use.

pub mod bench;
pub mod config;
pub mod demo;

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
    },
    /// Runs the broker from a TOML configuration file.
    Broker {
        /// Configuration file (see deploy/broker.toml); `TANDEM_*` variables override it.
        #[arg(long)]
        config: PathBuf,
    },
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
            demo::run_and_print(options).await
        }
        Command::Solve(options) => bench::solve(&options),
        Command::Bench(bench::BenchCommand::Match(options)) => bench::bench_match(&options),
        Command::Node { config } => {
            let _telemetry = tandem_telemetry::init_telemetry("tandem-node", "info")?;
            run_node(config::load_node(&config)?).await
        }
        Command::Broker { config } => {
            let _telemetry = tandem_telemetry::init_telemetry("tandem-broker", "info")?;
            run_broker(config::load_broker(&config)?).await
        }
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

async fn run_node(config: tandem_node::NodeConfig) -> anyhow::Result<()> {
    let db = tandem_storage::connect(&config.database_url).await?;
    require_migrated::<tandem_storage::NodeMigrator>(&db, "node").await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(node = %config.node_id, addr = %listener.local_addr()?, "node listening");
    let state = tandem_node::NodeState::new(db, &config);
    tandem_node::serve(state, listener, shutdown_signal()).await?;
    tracing::info!("node stopped");
    Ok(())
}

async fn run_broker(config: tandem_broker::BrokerConfig) -> anyhow::Result<()> {
    let db = tandem_storage::connect(&config.database_url).await?;
    require_migrated::<tandem_storage::BrokerMigrator>(&db, "broker").await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "broker listening");
    let broker = tandem_broker::Broker::new(db, config).await?;
    tandem_broker::serve(broker, listener, shutdown_signal()).await?;
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
