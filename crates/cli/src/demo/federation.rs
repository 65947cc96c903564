//! A whole federation in one process: a broker and any number of nodes, each with its own
//! database, serving real gRPC on loopback ports. The demo and the end-to-end tests use it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tandem_storage::MigratorTrait;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where the federation keeps its databases.
#[derive(Debug, Clone)]
pub enum Databases {
    /// One SQLite file per part under this directory.
    Sqlite(PathBuf),
    /// One fresh database per part on this PostgreSQL server (URL of an existing database used
    /// to create them).
    Postgres(String),
}

/// A node to start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub node_id: String,
    pub display_name: String,
}

/// A running node.
#[derive(Debug, Clone)]
pub struct RunningNode {
    pub node_id: String,
    pub display_name: String,
    pub addr: SocketAddr,
    pub database_url: String,
}

impl RunningNode {
    /// Returns the node's gRPC endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A running federation. Dropping it does not stop the servers; call [`Federation::shutdown`].
#[derive(Debug)]
pub struct Federation {
    pub broker_addr: SocketAddr,
    pub broker_database_url: String,
    pub nodes: Vec<RunningNode>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // A closed channel also means stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn database_url(databases: &Databases, name: &str) -> anyhow::Result<String> {
    Ok(match databases {
        Databases::Sqlite(dir) => tandem_storage::sqlite_url(&dir.join(format!("{name}.sqlite"))),
        Databases::Postgres(server) => {
            tandem_storage::create_scratch_database(server, &format!("tandem_{name}")).await?
        }
    })
}

fn secret(federation_key: &str, node_id: &str) -> String {
    // Demo and test secrets derive from the federation key so a seeded run is reproducible;
    // real nodes configure their own random secret.
    tandem_domain::pseudonym::employer_token(
        federation_key.as_bytes(),
        &format!("secret-{node_id}"),
    )
}

impl Federation {
    /// Starts the nodes, then the broker with those nodes registered, each after migrating its
    /// database. `broker` adjusts the broker configuration (sync interval, weights, …).
    pub async fn start(
        databases: &Databases,
        federation_key: &str,
        nodes: &[NodeSpec],
        broker: impl FnOnce(&mut tandem_broker::BrokerConfig),
    ) -> anyhow::Result<Self> {
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut running = Vec::new();
        for spec in nodes {
            let url = database_url(databases, &spec.node_id).await?;
            let db = tandem_storage::connect(&url).await?;
            tandem_storage::NodeMigrator::up(&db, None).await?;
            let config = tandem_node::NodeConfig {
                node_id: spec.node_id.clone(),
                display_name: spec.display_name.clone(),
                listen: "127.0.0.1:0".into(),
                database_url: url.clone(),
                pseudonym_secret: secret(federation_key, &spec.node_id),
                federation_key: federation_key.to_owned(),
            };
            config.validate().map_err(anyhow::Error::msg)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let state = tandem_node::NodeState::new(db, &config);
            let shutdown = stopped(rx.clone());
            let node_id = spec.node_id.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(err) = tandem_node::serve(state, listener, shutdown).await {
                    tracing::error!(node = %node_id, %err, "node server failed");
                }
            }));
            running.push(RunningNode {
                node_id: spec.node_id.clone(),
                display_name: spec.display_name.clone(),
                addr,
                database_url: url,
            });
        }

        let url = database_url(databases, "broker").await?;
        let db = tandem_storage::connect(&url).await?;
        tandem_storage::BrokerMigrator::up(&db, None).await?;
        let mut config: tandem_broker::BrokerConfig = serde_json::from_value(serde_json::json!({
            "listen": "127.0.0.1:0",
            "database_url": url,
            "sync_interval_secs": 0,
        }))
        .context("default broker configuration")?;
        config.nodes = running
            .iter()
            .map(|n| tandem_broker::NodeEntry {
                id: n.node_id.clone(),
                endpoint: n.endpoint(),
                display_name: n.display_name.clone(),
            })
            .collect();
        broker(&mut config);
        config.validate().map_err(anyhow::Error::msg)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let broker_addr = listener.local_addr()?;
        let broker = tandem_broker::Broker::new(db, config).await?;
        let shutdown = stopped(rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(err) = tandem_broker::serve(broker, listener, shutdown).await {
                tracing::error!(%err, "broker server failed");
            }
        }));
        Ok(Self {
            broker_addr,
            broker_database_url: url,
            nodes: running,
            stop,
            tasks,
        })
    }

    /// Returns the broker's gRPC endpoint URL.
    pub fn broker_endpoint(&self) -> String {
        format!("http://{}", self.broker_addr)
    }

    /// Stops every server and waits for them to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Returns the directory for the demo's databases: the given one (created), or a new temporary
/// one that is removed when the returned guard drops.
pub fn data_dir(given: Option<&Path>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
            Ok((dir.to_path_buf(), None))
        }
        None => {
            let tmp = tempfile::Builder::new().prefix("tandem-demo-").tempdir()?;
            Ok((tmp.path().to_path_buf(), Some(tmp)))
        }
    }
}
