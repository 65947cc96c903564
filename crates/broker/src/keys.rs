//! API keys: who may call the broker, in which scope, and for which company.
//!
//! A key looks like `tdm_<id>_<secret>`. The broker stores the id, the scope, the company a
//! company key is bound to, and a SHA-256 hash of the secret; the key itself is shown once, when
//! created. Callers send it as `authorization: Bearer <key>` metadata. The tenant always comes
//! from the key, never from the request. The format, the table and the checks are the service
//! toolkit's ([`tandem_service::keys`], [`tandem_service::Gate`]), shared with the nodes' staff
//! keys.
//!
//! A company gets its key by enrolment ([`crate::enrolment`]): the key is bound to its
//! membership, and everything the broker knows about the company comes from there. The
//! operator's key changes (`tandem keys`) are audited as the operator's; a company key the
//! operator creates by hand must name a membership's company id to submit mentees. When a
//! membership ends, the broker revokes its keys, and their holders are told so.

pub use tandem_service::keys::KeyInfo;
use tandem_service::keys::{self, Grant};
pub use tandem_service::{Caller, Scope};

use crate::{Broker, BrokerError, audit};

impl Broker {
    /// Creates a key and returns it in full; this is the only time the secret is visible.
    pub async fn create_key(
        &self,
        scope: Scope,
        tenant: &str,
        label: &str,
    ) -> Result<(KeyInfo, String), BrokerError> {
        let grant = Grant {
            scope,
            tenant,
            label,
        };
        let txn = self.write().await?;
        let created = keys::create(&*txn, self.now(), audit::OPERATOR, grant).await?;
        txn.commit().await?;
        Ok(created)
    }

    /// Stores a key whose secret the caller chose (`tdm_<id>_<secret>`, secret at least 32
    /// characters), e.g. keys provisioned by tooling; like [`Broker::create_key`], only the
    /// hash is kept. An existing key with the same id is left as it is.
    pub async fn install_key(
        &self,
        scope: Scope,
        tenant: &str,
        label: &str,
        key: &str,
    ) -> Result<KeyInfo, BrokerError> {
        let grant = Grant {
            scope,
            tenant,
            label,
        };
        let txn = self.write().await?;
        let installed = keys::install(&*txn, self.now(), audit::OPERATOR, grant, key).await?;
        txn.commit().await?;
        Ok(installed)
    }

    /// Revokes a key; calls with it fail from now on.
    pub async fn revoke_key(&self, id: &str) -> Result<(), BrokerError> {
        let txn = self.write().await?;
        keys::revoke(&*txn, self.now(), audit::OPERATOR, id).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Lists every key, newest first, without secrets.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, BrokerError> {
        Ok(keys::list(self.db()).await?)
    }

    /// Checks a presented key. Unknown, malformed, revoked or wrong keys all give the same
    /// answer, so a caller learns nothing about which keys exist; only the holder of a key
    /// revoked because its membership ended is told so.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller, BrokerError> {
        Ok(self.gate.authenticate(presented).await?)
    }
}
