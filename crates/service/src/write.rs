//! Write transactions of one process, one at a time. SQLite allows one writer, and a
//! transaction that read before writing fails outright when another write slipped in between;
//! a node also needs its counters to grow without gaps and commit in order. [`Writer::begin`]
//! opens a transaction under the process's write lock, which the [`WriteTxn`] holds until it is
//! committed or dropped (a dropped transaction rolls back).
//!
//! A write that only inserts rows guarded by unique constraints needs no such order on
//! PostgreSQL, whose transactions run concurrently: [`Writer::begin_concurrent`] takes the lock
//! only on SQLite.

use sea_orm::DatabaseBackend;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use tokio::sync::{Mutex, MutexGuard};

/// A database and the lock that serialises this process's writes to it.
#[derive(Debug)]
pub struct Writer {
    db: DatabaseConnection,
    lock: Mutex<()>,
}

impl Writer {
    /// Returns the writer of `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            lock: Mutex::new(()),
        }
    }

    /// Returns the database, for reads.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Waits for the write lock and begins a transaction.
    pub async fn begin(&self) -> Result<WriteTxn<'_>, DbErr> {
        let guard = self.lock.lock().await;
        let txn = self.db.begin().await?;
        Ok(WriteTxn {
            txn,
            _guard: Some(guard),
        })
    }

    /// Begins a transaction that may run beside this process's other writes where the
    /// database allows it (PostgreSQL); on SQLite it waits for the write lock like
    /// [`Writer::begin`]. For writes whose correctness rests on the database alone (inserts
    /// under unique constraints, conditional updates), never on the order of commits.
    pub async fn begin_concurrent(&self) -> Result<WriteTxn<'_>, DbErr> {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            return self.begin().await;
        }
        let txn = self.db.begin().await?;
        Ok(WriteTxn { txn, _guard: None })
    }
}

/// A transaction that holds the write lock (when it took it) until it is committed or
/// dropped.
pub struct WriteTxn<'a> {
    txn: DatabaseTransaction,
    _guard: Option<MutexGuard<'a, ()>>,
}

impl WriteTxn<'_> {
    /// Commits the transaction and releases the lock.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

impl std::ops::Deref for WriteTxn<'_> {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}
