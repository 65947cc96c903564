//! The association's staff: who may call `NodeAdminService`.
//!
//! Staff present an API key of scope `node-admin` (`authorization: Bearer tdm_<id>_<secret>`,
//! the format the broker uses too, see [`tandem_domain::api_key`]). The node issues these keys
//! itself, keeps only a hash of the secret in its own database and binds each key to its own
//! node id, so a key of another node, a key the broker issued, a revoked key and a made-up key
//! all get the same `UNAUTHENTICATED` answer. Every `NodeAdminService` handler starts with
//! [`NodeState::staff`]; the [`Staff`] it returns is what the state-changing methods take, so
//! the audit log always knows which key made a change.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use tandem_domain::api_key as key_format;
use tandem_storage::node::api_key::{self, NODE_ADMIN};
use tandem_storage::now_ms;
use tracing::info;

use crate::{NodeError, NodeState, audit};

/// Request metadata carrying the API key.
pub const AUTHORIZATION: &str = "authorization";

/// An authenticated member of the association's staff. Only [`NodeState::staff`] and
/// [`NodeState::authenticate_staff`] make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    key_id: String,
}

impl Staff {
    /// Returns the id of the key the caller presented (as the audit log records it).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

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

fn info_of(row: api_key::Model) -> StaffKey {
    StaffKey {
        id: row.id,
        scope: row.scope,
        node_id: row.node_id,
        label: row.label,
        created_at_ms: row.created_at_ms,
        revoked: row.revoked_at_ms != 0,
    }
}

fn refused() -> NodeError {
    NodeError::Unauthenticated("invalid api key".to_owned())
}

impl NodeState {
    /// Returns the staff member a `NodeAdminService` request comes from, or `UNAUTHENTICATED`.
    /// Every `NodeAdminService` handler calls this first.
    pub async fn staff<T>(&self, request: &tonic::Request<T>) -> Result<Staff, NodeError> {
        let value = request.metadata().get(AUTHORIZATION).ok_or_else(|| {
            NodeError::Unauthenticated("missing api key (authorization: Bearer …)".to_owned())
        })?;
        let key = value
            .to_str()
            .ok()
            .and_then(key_format::from_authorization)
            .ok_or_else(refused)?;
        let staff = self.authenticate_staff(key).await?;
        self.limiter
            .admit(&staff.key_id)
            .map_err(|e| NodeError::ResourceExhausted(e.to_string()))?;
        Ok(staff)
    }

    /// Checks a presented key. Unknown, malformed, revoked, other nodes' and wrong keys all
    /// give the same `Unauthenticated` answer, so a caller learns nothing about which keys
    /// exist.
    pub async fn authenticate_staff(&self, presented: &str) -> Result<Staff, NodeError> {
        let (id, secret) = key_format::split(presented).ok_or_else(refused)?;
        let key = api_key::Entity::find_by_id(id.to_owned())
            .filter(api_key::Column::RevokedAtMs.eq(0))
            .one(&self.db)
            .await?
            .ok_or_else(refused)?;
        if !key_format::verify(&key.secret_hash, secret)
            || key.scope != NODE_ADMIN
            || key.node_id != self.node_id
        {
            return Err(refused());
        }
        Ok(Staff { key_id: key.id })
    }

    /// Creates a staff key bound to this node and returns it in full; this is the only time
    /// the secret is visible.
    pub async fn create_staff_key(&self, label: &str) -> Result<(StaffKey, String), NodeError> {
        let new = key_format::generate();
        let row = self
            .store_staff_key(&new.id, new.secret_hash.clone(), label, "key.created")
            .await?;
        Ok((info_of(row), new.key))
    }

    /// Stores a staff key whose secret the caller chose (`tdm_<id>_<secret>`, secret at least
    /// 32 characters), e.g. keys provisioned by tooling; only the hash is kept. An existing key
    /// with the same id is left as it is.
    pub async fn install_staff_key(&self, label: &str, key: &str) -> Result<StaffKey, NodeError> {
        let (id, secret) = key_format::parse_installable(key)?;
        if let Some(existing) = api_key::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        {
            return Ok(info_of(existing));
        }
        let row = self
            .store_staff_key(id, key_format::hash_secret(secret), label, "key.installed")
            .await?;
        Ok(info_of(row))
    }

    async fn store_staff_key(
        &self,
        id: &str,
        secret_hash: String,
        label: &str,
        action: &str,
    ) -> Result<api_key::Model, NodeError> {
        if label.chars().count() > 200 || label.chars().any(char::is_control) {
            return Err(NodeError::invalid(
                "label",
                "at most 200 characters, no control characters",
            ));
        }
        let (_guard, txn) = self.begin_write().await?;
        let row = api_key::ActiveModel {
            id: Set(id.to_owned()),
            secret_hash: Set(secret_hash),
            scope: Set(NODE_ADMIN.to_owned()),
            node_id: Set(self.node_id.clone()),
            label: Set(label.to_owned()),
            created_at_ms: Set(now_ms()),
            revoked_at_ms: Set(0),
        }
        .insert(&txn)
        .await?;
        audit::record(&txn, audit::CLI, action, "api_key", id, NODE_ADMIN).await?;
        txn.commit().await?;
        info!(key_id = id, "staff key stored");
        Ok(row)
    }

    /// Revokes a staff key; calls with it fail from now on. Revoking twice is harmless.
    pub async fn revoke_staff_key(&self, id: &str) -> Result<(), NodeError> {
        let (_guard, txn) = self.begin_write().await?;
        let key = api_key::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await?
            .ok_or_else(|| NodeError::NotFound("key not found".to_owned()))?;
        if key.revoked_at_ms == 0 {
            let mut row = key.into_active_model();
            row.revoked_at_ms = Set(now_ms());
            row.update(&txn).await?;
            audit::record(&txn, audit::CLI, "key.revoked", "api_key", id, "").await?;
        }
        txn.commit().await?;
        info!(key_id = id, "staff key revoked");
        Ok(())
    }

    /// Lists every staff key, newest first, without secrets.
    pub async fn list_staff_keys(&self) -> Result<Vec<StaffKey>, NodeError> {
        Ok(api_key::Entity::find()
            .order_by_desc(api_key::Column::CreatedAtMs)
            .order_by_asc(api_key::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(info_of)
            .collect())
    }
}
