//! Migrations apply, roll back and re-apply on SQLite and, when `TANDEM_TEST_POSTGRES_URL` is
//! set, on a real PostgreSQL server.

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tandem_storage::{
    BrokerMigrator, MigratorTrait, NodeMigrator, connect, connect_for_migrations, sqlite_url,
};

async fn table_count(db: &DatabaseConnection) -> usize {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> 'seaql_migrations'"
        }
        _ => {
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name <> 'seaql_migrations'"
        }
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("list tables")
        .len()
}

async fn columns(db: &DatabaseConnection, table: &str) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}')"),
        _ => format!(
            "SELECT column_name AS name FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = '{table}'"
        ),
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("list columns")
        .iter()
        .map(|row| row.try_get::<String>("", "name").expect("column name"))
        .collect()
}

/// The outbox has the lease and dead-letter columns of the delivery lanes.
async fn assert_outbox_lanes(db: &DatabaseConnection) {
    let columns = columns(db, "outbox").await;
    assert_eq!(columns.len(), 12, "{columns:?}");
    for column in ["leased_until_ms", "dead_lettered_at_ms"] {
        assert!(columns.iter().any(|c| c == column), "{column}: {columns:?}");
    }
}

async fn round_trip(url: &str) {
    let db = connect_for_migrations(url).await.expect("connect");
    NodeMigrator::up(&db, None).await.expect("node up");
    assert_eq!(table_count(&db).await, 10);
    NodeMigrator::down(&db, None).await.expect("node down");
    assert_eq!(table_count(&db).await, 0);
    NodeMigrator::refresh(&db).await.expect("node refresh");
    assert_eq!(table_count(&db).await, 10);
    NodeMigrator::reset(&db).await.expect("node reset");

    BrokerMigrator::up(&db, None).await.expect("broker up");
    assert_eq!(table_count(&db).await, 10);
    assert_outbox_lanes(&db).await;
    BrokerMigrator::refresh(&db).await.expect("broker refresh");
    assert_eq!(table_count(&db).await, 10);
    assert_outbox_lanes(&db).await;
    // One step down takes the lanes' columns away again.
    BrokerMigrator::down(&db, Some(1))
        .await
        .expect("broker down one");
    assert_eq!(columns(&db, "outbox").await.len(), 10);
    BrokerMigrator::up(&db, None)
        .await
        .expect("broker up again");
    BrokerMigrator::down(&db, None).await.expect("broker down");
    assert_eq!(table_count(&db).await, 0);
}

/// The tombstone migration gives every introduction closed or forgotten before it a
/// tombstone, and none to an open one.
async fn tombstones_backfill(url: &str) {
    let db = connect_for_migrations(url).await.expect("connect");
    let before = NodeMigrator::migrations().len() - 1;
    NodeMigrator::up(&db, Some(u32::try_from(before).expect("few")))
        .await
        .expect("node up to the companies");
    let insert = "INSERT INTO introductions (id, mentor_id, mentee_summary, reasons, score, \
         decision, decision_seq, closed, close_reason, contact_released, received_at_ms, \
         decided_at_ms, mentee_forgotten_at_ms, mentee_ref) VALUES \
         ('open', 'm', '', '', 1, 1, 0, FALSE, '', FALSE, 10, 0, 0, ''), \
         ('closed', 'm', '', '', 1, 1, 0, TRUE, 'expired', FALSE, 20, 0, 0, ''), \
         ('forgotten', 'm', '', '', 1, 1, 0, TRUE, 'mentee_withdrawn', FALSE, 30, 0, 35, '')";
    db.execute_unprepared(insert).await.expect("introductions");
    NodeMigrator::up(&db, None).await.expect("node up");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT introduction_id, kind, at_ms FROM introduction_tombstones \
             ORDER BY introduction_id",
        ))
        .await
        .expect("tombstones");
    let found: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "introduction_id").expect("id"),
                r.try_get("", "kind").expect("kind"),
                r.try_get("", "at_ms").expect("at"),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("closed".to_owned(), "closed".to_owned(), 20),
            ("forgotten".to_owned(), "forgotten".to_owned(), 35),
        ]
    );
    NodeMigrator::reset(&db).await.expect("node reset");
}

#[tokio::test]
async fn tombstones_backfill_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    tombstones_backfill(&sqlite_url(&dir.path().join("db.sqlite"))).await;
}

#[tokio::test]
async fn tombstones_backfill_on_postgres() {
    let Ok(server) = std::env::var("TANDEM_TEST_POSTGRES_URL") else {
        eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the PostgreSQL variant");
        return;
    };
    let url = tandem_storage::create_scratch_database(&server, "tandem_tombstones")
        .await
        .expect("scratch database");
    tombstones_backfill(&url).await;
}

#[tokio::test]
async fn migrations_round_trip_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    round_trip(&sqlite_url(&dir.path().join("db.sqlite"))).await;
}

#[tokio::test]
async fn migrations_round_trip_on_postgres() {
    let Ok(server) = std::env::var("TANDEM_TEST_POSTGRES_URL") else {
        eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the PostgreSQL variant");
        return;
    };
    let url = tandem_storage::create_scratch_database(&server, "tandem_migrations")
        .await
        .expect("scratch database");
    round_trip(&url).await;
}

#[tokio::test]
async fn a_bad_url_names_itself() {
    let err = connect("mysql://localhost/x").await.expect_err("refused");
    assert!(err.to_string().contains("mysql://localhost/x"), "{err}");
}
