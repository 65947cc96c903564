//! Write transactions of one process, one at a time. SQLite allows one writer, and a
//! transaction that read before writing fails outright when another write slipped in between;
//! a node also needs its counters to grow without gaps and commit in order. [`Writer::begin`]
//! opens a transaction under the process's write lock, which the [`WriteTxn`] holds until it is
//! committed or dropped (a dropped transaction rolls back).

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
        Ok(WriteTxn { txn, _guard: guard })
    }
}

/// A transaction that holds the write lock until it is committed or dropped.
pub struct WriteTxn<'a> {
    txn: DatabaseTransaction,
    _guard: MutexGuard<'a, ()>,
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
