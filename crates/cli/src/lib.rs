//! The `tandem` command: run a node, run the broker, apply migrations, ask a server's health,
//! or run a whole demo federation in one process.
//!
//! The binary only parses flags and configuration and calls the node and broker libraries; the
//! demo drives the federation through the same gRPC API that companies, association staff and
//! operators use.
//!
//! In the workspace: the top; it starts `tandem-node` and `tandem-broker`, and its bench
//! commands drive `tandem-matching` and `tandem-assignment` directly.

pub mod bench;
pub mod config;
pub mod demo;
pub mod health;
pub mod import;
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
    /// Log lines on stderr: `text` for people, `json` (one object per line) for log
    /// collectors.
    #[arg(
        long,
        global = true,
        env = "TANDEM_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    /// The `service.instance.id` of this process's telemetry, e.g. the pod's name; default the
    /// host name (`HOSTNAME`), else a random UUID. `OTEL_RESOURCE_ATTRIBUTES` overrides it.
    #[arg(long, global = true, env = "TANDEM_INSTANCE_ID", value_name = "ID")]
    pub instance_id: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Formats of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl From<LogFormat> for tandem_telemetry::LogFormat {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Text => Self::Text,
            LogFormat::Json => Self::Json,
        }
    }
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a whole federation (a broker and three nodes) in one process, seeds synthetic
    /// mentors and mentees, matches them and prints what happened.
    Demo(demo::DemoOptions),
    /// Runs a node (one association's server) from a TOML configuration file and `TANDEM_*`
    /// variables.
    Node {
        /// Configuration file (see deploy/node.toml); `TANDEM_*` variables override it. Without
        /// it the environment alone configures the node.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serves NodeService in plain text when the configuration has no `[tls]` section, and
        /// NodeAdminService in plain text when it has no `[admin_tls]` section. For development
        /// only: anyone who reaches the port can call NodeService, and staff keys cross the
        /// network in clear.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Runs the broker from a TOML configuration file and `TANDEM_*` variables.
    Broker {
        /// Configuration file (see deploy/broker.toml); `TANDEM_*` variables override it.
        /// Without it the environment alone configures the broker.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Calls nodes in plain text when the configuration has no `[tls]` section, and serves
        /// the gRPC API and the dashboard in plain text when it has no `[api_tls]` section.
        /// For development only: API keys then cross the network in clear.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Mints a development CA, node and broker certificates for mutual TLS, and server
    /// certificates for the APIs (broker gRPC and dashboard, node admin).
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Creates, lists and revokes API keys: company and operator keys with the broker's
    /// configuration, staff (`node-admin`) keys with a node's.
    Keys(keys::KeysOptions),
    /// Imports a node's mentors or member companies from a CSV file, all or nothing;
    /// `--dry-run` only checks it. The columns are listed in docs/import.md.
    Import(import::ImportOptions),
    /// Solves a bare assignment instance from a file (see `tandem solve --help`).
    Solve(bench::SolveOptions),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Asks a server's plain-text health port (`health_listen`) whether it is SERVING; exits 0
    /// when it is, 1 otherwise. For container health checks and operators.
    Health(health::HealthOptions),
    /// Applies pending database migrations of a node or the broker.
    Migrate {
        /// Whose database to migrate.
        role: Role,
        /// The node's or broker's configuration file (its `database_url` is used); without it
        /// the `TANDEM_*` variables alone.
        #[arg(long)]
        config: Option<PathBuf>,
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
        /// `broker.tandem`; for `--kind api` the host name callers dial, e.g.
        /// `broker.example.org` or `localhost`.
        #[arg(long)]
        identity: String,
        /// `node` (serves NodeService), `broker` (calls nodes) or `api` (serves the broker's
        /// gRPC API and dashboard, or a node's NodeAdminService, to callers with API keys).
        #[arg(long)]
        kind: CertKind,
        /// More host names or IP addresses an `api` certificate carries besides `--identity`,
        /// e.g. `--san localhost --san 127.0.0.1`; repeatable.
        #[arg(long = "san", value_name = "NAME_OR_IP")]
        sans: Vec<String>,
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
    Api,
}

/// A part of the federation.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Node,
    Broker,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let log_format = cli.log_format.into();
    let instance = cli.instance_id.clone();
    let identity = |service: &str| tandem_telemetry::Identity::new(service, instance.as_deref());
    let telemetry = |service: &str, filter| {
        tandem_telemetry::init_telemetry_for(&identity(service), filter, log_format)
    };
    match cli.command {
        Command::Demo(options) => {
            let _telemetry = telemetry("tandem-demo", "warn")?;
            demo::run_and_print(options, shutdown_signal()).await
        }
        Command::Keys(options) => keys::run(options).await,
        Command::Import(options) => import::run(options).await,
        Command::Solve(options) => bench::solve(&options),
        Command::Bench(bench::BenchCommand::Match(options)) => bench::bench_match(&options),
        Command::Health(options) => health::run(&options).await,
        Command::Bench(bench::BenchCommand::Service(options)) => {
            let _telemetry = telemetry("tandem-bench", "warn")?;
            bench::service::bench_service(&options).await
        }
        Command::Node {
            config,
            insecure_dev,
        } => {
            let config = config::load_node_from(config.as_deref())?;
            let _telemetry = tandem_telemetry::init_telemetry_for(
                &identity("tandem-node").with_node(&config.node_id),
                "info",
                log_format,
            )?;
            run_node(config, insecure_dev).await
        }
        Command::Broker {
            config,
            insecure_dev,
        } => {
            let _telemetry = telemetry("tandem-broker", "info")?;
            run_broker(config::load_broker_from(config.as_deref())?, insecure_dev).await
        }
        Command::Certs(command) => certs(command),
        Command::Migrate { role, config } => {
            let _telemetry = telemetry("tandem-migrate", "info")?;
            let url = match role {
                Role::Node => config::load_node_from(config.as_deref())?.database_url,
                Role::Broker => config::load_broker_from(config.as_deref())?.database_url,
            };
            let db = tandem_storage::connect_for_migrations(&url).await?;
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
        "the {role} database has {pending} pending migration(s); run `tandem migrate {role}` with the same configuration first"
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
            sans,
            days,
        } => {
            anyhow::ensure!(days > 0, "--days: must be at least 1");
            let validity = tandem_tls::mint::Validity::days(days);
            let (files, names) = match kind {
                CertKind::Api => {
                    let names: Vec<String> = std::iter::once(identity).chain(sans).collect();
                    let files = tandem_tls::mint::issue_api(&dir, &name, &names, validity)?;
                    (files, names.join(", "))
                }
                CertKind::Node | CertKind::Broker => {
                    anyhow::ensure!(sans.is_empty(), "--san: only with --kind api");
                    let kind = match kind {
                        CertKind::Node => tandem_tls::mint::Kind::Node,
                        _ => tandem_tls::mint::Kind::Broker,
                    };
                    let files = tandem_tls::mint::issue(&dir, &name, &identity, kind, validity)?;
                    (files, identity)
                }
            };
            println!(
                "issued {names} for {days} days: cert {}, key {}",
                files.cert.display(),
                files.key.display()
            );
        }
    }
    Ok(())
}

/// A TLS section of a configuration and what it secures.
struct TlsSection {
    /// The section's key, e.g. `api_tls`.
    key: &'static str,
    /// Whether the configuration has it.
    present: bool,
    /// What it secures, for the message.
    secures: &'static str,
    /// How to set it up, for the message.
    how: &'static str,
}

/// Refuses plain-text transport unless `--insecure-dev` asked for it, and then warns. The
/// message names the first missing section.
fn require_tls_or_insecure_dev(sections: &[TlsSection], insecure_dev: bool) -> anyhow::Result<()> {
    for section in sections.iter().filter(|s| !s.present) {
        let TlsSection {
            key, secures, how, ..
        } = section;
        anyhow::ensure!(
            insecure_dev,
            "{key}: the configuration has no [{key}] section, so {secures} would run in plain text; configure it ({how}) or pass --insecure-dev for development"
        );
        tracing::warn!(section = %key, "plain-text transport: development only");
    }
    Ok(())
}

/// The TLS sections of a node's configuration.
fn node_tls_sections(config: &tandem_node::NodeConfig) -> [TlsSection; 2] {
    [
        TlsSection {
            key: "tls",
            present: config.tls.is_some(),
            secures: "NodeService (the broker's calls)",
            how: "mutual tls, see `tandem certs issue --kind node`",
        },
        TlsSection {
            key: "admin_tls",
            present: config.admin_tls.is_some(),
            secures: "NodeAdminService (staff keys)",
            how: "a server certificate, see `tandem certs issue --kind api`",
        },
    ]
}

/// The TLS sections of the broker's configuration.
fn broker_tls_sections(config: &tandem_broker::BrokerConfig) -> [TlsSection; 2] {
    [
        TlsSection {
            key: "tls",
            present: config.tls.is_some(),
            secures: "calls to the nodes",
            how: "mutual tls, see `tandem certs issue --kind broker`",
        },
        TlsSection {
            key: "api_tls",
            present: config.api_tls.is_some(),
            secures: "the grpc api and the dashboard (company and operator keys)",
            how: "a server certificate, see `tandem certs issue --kind api`",
        },
    ]
}

async fn run_node(config: tandem_node::NodeConfig, insecure_dev: bool) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    require_tls_or_insecure_dev(&node_tls_sections(&config), insecure_dev)?;
    let node_tls = match &config.tls {
        Some(tls) => Some(
            tandem_tls::ServerTls::new(tls.files(), &tls.trusted_brokers)
                .map_err(|e| anyhow::anyhow!("tls: {e}"))?,
        ),
        None => None,
    };
    let admin_tls = match &config.admin_tls {
        Some(files) => Some(
            tandem_tls::ApiTls::new(files.clone())
                .map_err(|e| anyhow::anyhow!("admin_tls: {e}"))?,
        ),
        None => None,
    };
    let db = tandem_storage::connect(&config.database_url).await?;
    require_migrated::<tandem_storage::NodeMigrator>(&db, "node").await?;
    let bind = |addr: &str| {
        let addr = addr.to_owned();
        async move {
            tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))
        }
    };
    let health = match &config.health_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let listeners = tandem_node::Listeners {
        node: bind(&config.listen).await?,
        node_tls,
        admin: bind(&config.admin_listen).await?,
        admin_tls,
        health,
    };
    let state = tandem_node::NodeState::new(db, &config);
    tandem_node::serve_on(state, listeners, shutdown).await?;
    tracing::info!("node stopped");
    Ok(())
}

async fn run_broker(config: tandem_broker::BrokerConfig, insecure_dev: bool) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    require_tls_or_insecure_dev(&broker_tls_sections(&config), insecure_dev)?;
    let db = tandem_storage::connect(&config.database_url).await?;
    require_migrated::<tandem_storage::BrokerMigrator>(&db, "broker").await?;
    let listeners = tandem_broker::Listeners::bind(&config).await?;
    let broker = tandem_broker::Broker::new(db, config).await?;
    tandem_broker::serve(broker, listeners, shutdown).await?;
    tracing::info!("broker stopped");
    Ok(())
}

/// Returns a future that completes on Ctrl-C (SIGINT) or SIGTERM. On Unix the handlers are
/// installed when this is called, not when the future is first polled, so that a signal that
/// arrives while a server is still starting shuts it down instead of killing the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|err| tracing::error!(%err, signal = name, "cannot listen for signal"))
                .ok()
        };
        [
            listen(SignalKind::interrupt(), "SIGINT"),
            listen(SignalKind::terminate(), "SIGTERM"),
        ]
    };
    async move {
        #[cfg(unix)]
        {
            let [interrupt, terminate] = signals;
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_text_needs_insecure_dev_and_the_message_names_the_section() {
        let mut broker = tandem_broker::BrokerConfig::new("sqlite://b.db");
        broker.tls = Some(tandem_tls::TlsFiles::in_dir(
            std::path::Path::new("certs"),
            "broker",
        ));
        let err = super::require_tls_or_insecure_dev(&super::broker_tls_sections(&broker), false)
            .expect_err("no api_tls")
            .to_string();
        assert!(err.starts_with("api_tls: "), "{err}");
        assert!(err.contains("[api_tls]"), "{err}");
        assert!(err.contains("--insecure-dev"), "{err}");
        assert!(
            super::require_tls_or_insecure_dev(&super::broker_tls_sections(&broker), true).is_ok()
        );
        broker.api_tls = Some(tandem_tls::CertFiles {
            cert: "certs/api.pem".into(),
            key: "certs/api-key.pem".into(),
        });
        assert!(
            super::require_tls_or_insecure_dev(&super::broker_tls_sections(&broker), false).is_ok()
        );
        broker.tls = None;
        let err = super::require_tls_or_insecure_dev(&super::broker_tls_sections(&broker), false)
            .expect_err("no tls")
            .to_string();
        assert!(err.starts_with("tls: "), "{err}");
    }

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
