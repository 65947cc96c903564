//! The association's staff: who may call `NodeAdminService`.
//!
//! Staff present an API key of scope `node-admin` (`authorization: Bearer tdm_<id>_<secret>`,
//! the format the broker uses too). The node issues these keys itself, keeps only a hash of
//! the secret in its own database and binds each key to its own node id, so a key of another
//! node, a key the broker issued, a revoked key and a made-up key all get the same
//! `UNAUTHENTICATED` answer. The keys, their checks and the rate limit are the service
//! toolkit's ([`tandem_service::keys`], [`tandem_service::Gate`]): the gate in front of
//! `NodeAdminService` admits a request and hands the handler its [`Staff`], which the
//! state-changing methods take, so the audit log always knows which key made a change.

use tandem_service::Scope;
use tandem_service::keys::{self, Grant, KeyInfo};

use crate::{NodeError, NodeState, audit};

/// An authenticated member of the association's staff: a caller with a `node-admin` key of
/// this node. Only the node's gate makes one.
pub type Staff = tandem_service::Caller;

/// A staff key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffKey {
    pub id: String,
    /// Always `node-admin`.
    pub scope: String,
    /// The node the key is bound to.
    pub node_id: String,
    pub label: String,
    pub created_at_ms: i64,
    pub revoked: bool,
}

impl From<KeyInfo> for StaffKey {
    fn from(key: KeyInfo) -> Self {
        Self {
            id: key.id,
            scope: key.scope,
            node_id: key.tenant,
            label: key.label,
            created_at_ms: key.created_at_ms,
            revoked: key.revoked,
        }
    }
}

impl NodeState {
    fn staff_grant<'a>(&'a self, label: &'a str) -> Grant<'a> {
        Grant {
            scope: Scope::NodeAdmin,
            tenant: &self.node_id,
            label,
        }
    }

    /// Checks a presented key. Unknown, malformed, revoked, other nodes' and wrong keys all
    /// give the same `Unauthenticated` answer, so a caller learns nothing about which keys
    /// exist.
    pub async fn authenticate_staff(&self, presented: &str) -> Result<Staff, NodeError> {
        Ok(self.gate.authenticate(presented).await?)
    }

    /// Creates a staff key bound to this node and returns it in full; this is the only time
    /// the secret is visible.
    pub async fn create_staff_key(&self, label: &str) -> Result<(StaffKey, String), NodeError> {
        let txn = self.write().await?;
        let (info, key) =
            keys::create(&*txn, self.now(), audit::CLI, self.staff_grant(label)).await?;
        txn.commit().await?;
        Ok((info.into(), key))
    }

    /// Stores a staff key whose secret the caller chose (`tdm_<id>_<secret>`, secret at least
    /// 32 characters), e.g. keys provisioned by tooling; only the hash is kept. An existing key
    /// with the same id is left as it is.
    pub async fn install_staff_key(&self, label: &str, key: &str) -> Result<StaffKey, NodeError> {
        let txn = self.write().await?;
        let grant = self.staff_grant(label);
        let info = keys::install(&*txn, self.now(), audit::CLI, grant, key).await?;
        txn.commit().await?;
        Ok(info.into())
    }

    /// Revokes a staff key; calls with it fail from now on. Revoking twice is harmless.
    pub async fn revoke_staff_key(&self, id: &str) -> Result<(), NodeError> {
        let txn = self.write().await?;
        keys::revoke(&*txn, self.now(), audit::CLI, id).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Lists every staff key, newest first, without secrets.
    pub async fn list_staff_keys(&self) -> Result<Vec<StaffKey>, NodeError> {
        Ok(keys::list(self.db())
            .await?
            .into_iter()
            .map(StaffKey::from)
            .collect())
    }
}
