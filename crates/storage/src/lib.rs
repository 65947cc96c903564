//! Storage for Tandem: the sea-orm entities and migrations of a node's database and of the
//! broker's database, and the one way to open either.
//!
//! A node and the broker each own a separate database: SQLite files by default (nothing to
//! install), PostgreSQL in production. Migrations are append-only and named so that they sort by
//! date; [`NodeMigrator`] and [`BrokerMigrator`] apply them. The API keys ([`api_key`]) and the
//! audit log ([`audit_event`]) have one shape in both databases, so that one piece of code
//! (`tandem-service`) serves both. Every timestamp is Unix milliseconds.
//!
//! In the workspace: used by `tandem-service`, `tandem-node` and `tandem-broker`; depends on
//! no other Tandem crate.

pub mod api_key;
pub mod audit_event;
pub mod broker;
pub mod migration;
pub mod node;

pub use migration::{BrokerMigrator, NodeMigrator};
pub use sea_orm::DatabaseConnection;
pub use sea_orm_migration::MigratorTrait;

use sea_orm::{ConnectOptions, Database, DbErr};

/// Errors of opening or migrating a database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid database url {url:?}: expected sqlite:// or postgres://")]
    InvalidUrl { url: String },
    #[error("cannot create the directory for {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Returns the SQLite URL for a database file, creating it if missing.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Opens a database by URL (`sqlite://path?mode=rwc` or `postgres://…`). For SQLite the parent
/// directory is created and write-ahead logging is switched on.
pub async fn connect(url: &str) -> Result<DatabaseConnection, StorageError> {
    open(url, Pool::Shared).await
}

/// Opens a database like [`connect`], but on a single connection: the one to change its schema
/// with. SQLite looks up the column of `ALTER TABLE … DROP COLUMN` in the schema its connection
/// has cached and does not re-read it when the column is missing, so a pooled connection that
/// has not yet seen an earlier migration refuses a later one with "no such column". A single
/// connection always sees its own changes.
pub async fn connect_for_migrations(url: &str) -> Result<DatabaseConnection, StorageError> {
    open(url, Pool::Single).await
}

/// How many connections [`open`] may keep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pool {
    Shared,
    Single,
}

async fn open(url: &str, pool: Pool) -> Result<DatabaseConnection, StorageError> {
    let is_sqlite = url.starts_with("sqlite:");
    if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(StorageError::InvalidUrl {
            url: url.to_owned(),
        });
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Directory {
            path: path.to_owned(),
            source,
        })?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    if is_sqlite {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        // Every pooled connection gets these settings. Write-ahead logging with NORMAL sync is
        // crash-safe (a power cut can lose only the last commits, never corrupt the file) and
        // avoids an fsync per transaction.
        options
            .max_connections(if pool == Pool::Single { 1 } else { 4 })
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(std::time::Duration::from_secs(5))
                    .foreign_keys(true)
                    // 32 MiB of page cache per connection (SQLite's default is 2 MiB): the
                    // operators' counts scan whole tables, which at tens of thousands of
                    // mentees no longer fit the default and are read from the file each time.
                    .pragma("cache_size", "-32768")
            });
    } else {
        options.max_connections(if pool == Pool::Single { 1 } else { 10 });
    }
    let db = Database::connect(options).await?;
    Ok(db)
}

/// Creates a new, empty PostgreSQL database next to the one `server_url` points at and returns
/// its URL. Tests use it to give every broker and node a database of its own on one server.
pub async fn create_scratch_database(
    server_url: &str,
    prefix: &str,
) -> Result<String, StorageError> {
    use sea_orm::ConnectionTrait;
    let admin = connect(server_url).await?;
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        SCRATCH_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
    .to_ascii_lowercase();
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await?;
    let base = server_url
        .rsplit_once('/')
        .map_or(server_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

static SCRATCH_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
