//! Coordination of broker replicas that share one PostgreSQL database (a Kubernetes Deployment
//! with two or more pods): at most one matching round at a time across all of them, and at
//! most one sync of each node.
//!
//! Both use PostgreSQL transaction-level advisory locks (`pg_try_advisory_xact_lock`), taken
//! in a transaction of their own on a pooled connection that does nothing else ([`ReplicaLocks`]).
//! The lock lasts exactly as long as that transaction: it ends when the work is done, when the
//! future doing the work is dropped (the transaction rolls back as its connection returns to
//! the pool), and when the replica dies (PostgreSQL ends the session), so a crashed replica
//! never holds a round or a sync hostage. The process-wide write lock is not involved: the
//! lock transaction writes nothing and waits for nobody.
//!
//! SQLite is one process's database: there the locks are always granted and only the
//! in-process mutexes of the callers serialise the work.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

/// The class (first key) of the matching round's lock: "TDM" and 1.
const ROUND_CLASS: i32 = 0x5444_4D01;
/// The class of the node syncs' locks: "TDM" and 2; the second key comes from the node id.
const SYNC_CLASS: i32 = 0x5444_4D02;

/// An advisory lock key of the broker: a class for what it guards and an object within it
/// (PostgreSQL's two-key form, so that the broker's keys stay apart from anyone else's
/// single-key locks on the same database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockKey {
    class: i32,
    object: i32,
}

impl LockKey {
    /// The lock a matching round holds from reading its input until its write committed.
    pub(crate) const ROUND: LockKey = LockKey {
        class: ROUND_CLASS,
        object: 0,
    };

    /// The lock a sync of `node_id` holds. Two node ids whose hashes collide share a lock,
    /// which only means that their syncs do not run at the same time on two replicas.
    pub(crate) fn sync(node_id: &str) -> LockKey {
        let digest = Sha256::digest(node_id.as_bytes());
        LockKey {
            class: SYNC_CLASS,
            object: i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]),
        }
    }
}

/// Advisory locks held for the broker's replicas in one transaction of their own (on
/// PostgreSQL; nothing on SQLite). Dropping it rolls the transaction back and frees them.
pub(crate) struct ReplicaLocks {
    txn: Option<DatabaseTransaction>,
}

impl ReplicaLocks {
    /// Begins the transaction that will hold the locks (on PostgreSQL).
    pub(crate) async fn begin(db: &DatabaseConnection) -> Result<ReplicaLocks, DbErr> {
        let txn = match db.get_database_backend() {
            DbBackend::Postgres => Some(db.begin().await?),
            _ => None,
        };
        Ok(ReplicaLocks { txn })
    }

    /// Takes `key` if no other replica holds it and returns whether it did; never waits.
    /// Always true on SQLite.
    pub(crate) async fn try_lock(&self, key: LockKey) -> Result<bool, DbErr> {
        let Some(txn) = &self.txn else {
            return Ok(true);
        };
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1, $2) AS taken",
                [key.class.into(), key.object.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("pg_try_advisory_xact_lock returned no row".into()))?;
        row.try_get("", "taken")
    }

    /// Fails when the locks' connection is gone (the database ended the session, e.g. for
    /// `idle_in_transaction_session_timeout`): the locks went with it, and work that needs
    /// them must not commit.
    pub(crate) async fn ensure_held(&self) -> Result<(), DbErr> {
        if let Some(txn) = &self.txn {
            txn.execute_unprepared("SELECT 1").await?;
        }
        Ok(())
    }

    /// Frees the locks.
    pub(crate) async fn release(self) -> Result<(), DbErr> {
        match self.txn {
            Some(txn) => txn.rollback().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LockKey;

    #[test]
    fn sync_keys_are_stable_and_apart_from_the_round() {
        assert_eq!(LockKey::sync("chamber"), LockKey::sync("chamber"));
        assert_ne!(LockKey::sync("chamber"), LockKey::sync("guild"));
        assert_ne!(LockKey::sync("chamber").class, LockKey::ROUND.class);
    }
}
