//! The table of issued API keys (`api_keys`), at the broker or at a node: creating, installing,
//! revoking and listing keys. Every change is audited in the same transaction. The secret is
//! stored only as a hash and shown once, when a key is created.
//!
//! Each function works on the connection it is given, normally the caller's write transaction
//! ([`crate::Writer`]), and takes the time and the actor to audit.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use tandem_domain::{FieldViolation, Violations, validate};
use tandem_storage::api_key;

use crate::api_key as key_format;
use crate::audit;
use crate::auth::Scope;

/// A key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    /// The scope's name, e.g. `company`.
    pub scope: String,
    /// The company of a `company` key, the node of a `node-admin` key; empty for operators.
    pub tenant: String,
    pub label: String,
    pub created_at_ms: i64,
    pub revoked: bool,
}

impl From<api_key::Model> for KeyInfo {
    fn from(row: api_key::Model) -> Self {
        Self {
            id: row.id,
            scope: row.scope,
            tenant: row.tenant,
            label: row.label,
            created_at_ms: row.created_at_ms,
            revoked: row.revoked_at_ms != 0,
        }
    }
}

/// What can go wrong with a key change.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A bad tenant, label or provisioned key: every wrong field, each named.
    #[error(transparent)]
    Invalid(#[from] Violations),
    /// No key has that id.
    #[error("key not found")]
    NotFound,
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl From<FieldViolation> for KeyError {
    fn from(violation: FieldViolation) -> Self {
        Self::Invalid(violation.into())
    }
}

/// Who issues a key and what for: the scope, and the tenant it is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub scope: Scope,
    /// The company of a `company` key, the node of a `node-admin` key; ignored for operators.
    pub tenant: &'a str,
    /// A note for people (who holds the key).
    pub label: &'a str,
}

impl Grant<'_> {
    /// Checks the grant and returns the tenant to store; the error names every wrong field.
    fn tenant(&self) -> Result<String, Violations> {
        let mut found = Violations::new();
        found.check(validate::label("label", self.label));
        let checked = match self.scope {
            Scope::Company => validate::company_id("company", self.tenant),
            Scope::NodeAdmin => validate::node_id("node_id", self.tenant),
            Scope::Operator => Ok(()),
        };
        let tenant = found.check(checked).map(|()| match self.scope {
            Scope::Operator => String::new(),
            Scope::Company | Scope::NodeAdmin => self.tenant.to_owned(),
        });
        found.finish(|| tenant)
    }
}

async fn store(
    conn: &impl ConnectionTrait,
    at_ms: i64,
    actor: &str,
    grant: Grant<'_>,
    id: &str,
    secret_hash: String,
    action: &str,
) -> Result<KeyInfo, KeyError> {
    let row = api_key::ActiveModel {
        id: Set(id.to_owned()),
        secret_hash: Set(secret_hash),
        scope: Set(grant.scope.name().to_owned()),
        tenant: Set(grant.tenant()?),
        label: Set(grant.label.to_owned()),
        created_at_ms: Set(at_ms),
        revoked_at_ms: Set(0),
        revoked_reason: Set(String::new()),
    }
    .insert(conn)
    .await?;
    audit::record(
        conn,
        at_ms,
        actor,
        action,
        "api_key",
        id,
        grant.scope.name(),
    )
    .await?;
    tracing::info!(key_id = id, scope = grant.scope.name(), "api key stored");
    Ok(row.into())
}

/// Creates a key and returns it in full; this is the only time the secret is visible.
pub async fn create(
    conn: &impl ConnectionTrait,
    at_ms: i64,
    actor: &str,
    grant: Grant<'_>,
) -> Result<(KeyInfo, String), KeyError> {
    let new = key_format::generate();
    let info = store(
        conn,
        at_ms,
        actor,
        grant,
        &new.id,
        new.secret_hash,
        "key.created",
    )
    .await?;
    Ok((info, new.key))
}

/// Stores a key whose secret the caller chose (`tdm_<id>_<secret>`, secret at least 32
/// characters), e.g. keys provisioned by tooling; only the hash is kept. An existing key with
/// the same id is left as it is and returned.
pub async fn install(
    conn: &impl ConnectionTrait,
    at_ms: i64,
    actor: &str,
    grant: Grant<'_>,
    key: &str,
) -> Result<KeyInfo, KeyError> {
    let (id, secret) = key_format::parse_installable(key)?;
    if let Some(existing) = api_key::Entity::find_by_id(id.to_owned()).one(conn).await? {
        return Ok(existing.into());
    }
    let hash = key_format::hash_secret(secret);
    store(conn, at_ms, actor, grant, id, hash, "key.installed").await
}

/// Revokes a key; calls with it fail from now on. Revoking twice is harmless.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    at_ms: i64,
    actor: &str,
    id: &str,
) -> Result<(), KeyError> {
    let key = api_key::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or(KeyError::NotFound)?;
    if key.revoked_at_ms == 0 {
        let mut row = key.into_active_model();
        row.revoked_at_ms = Set(at_ms);
        row.update(conn).await?;
        audit::record(conn, at_ms, actor, "key.revoked", "api_key", id, "").await?;
        tracing::info!(key_id = id, "api key revoked");
    }
    Ok(())
}

/// Revokes every valid key of `scope` bound to `tenant`, telling their holders `reason` from
/// now on (e.g. "membership ended"): a call with such a key is refused with that reason
/// instead of looking like an unknown key, since only the holder of the secret can see it.
/// Each revocation is audited. Returns the ids revoked.
pub async fn revoke_tenant(
    conn: &impl ConnectionTrait,
    at_ms: i64,
    actor: &str,
    scope: Scope,
    tenant: &str,
    reason: &str,
) -> Result<Vec<String>, DbErr> {
    let keys = api_key::Entity::find()
        .filter(api_key::Column::Scope.eq(scope.name()))
        .filter(api_key::Column::Tenant.eq(tenant))
        .filter(api_key::Column::RevokedAtMs.eq(0))
        .order_by_asc(api_key::Column::Id)
        .all(conn)
        .await?;
    let mut revoked = Vec::with_capacity(keys.len());
    for key in keys {
        let id = key.id.clone();
        let mut row = key.into_active_model();
        row.revoked_at_ms = Set(at_ms);
        row.revoked_reason = Set(reason.to_owned());
        row.update(conn).await?;
        audit::record(conn, at_ms, actor, "key.revoked", "api_key", &id, reason).await?;
        tracing::info!(key_id = %id, reason, "api key revoked");
        revoked.push(id);
    }
    Ok(revoked)
}

/// Lists every key, newest first, without secrets.
pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<KeyInfo>, DbErr> {
    Ok(api_key::Entity::find()
        .order_by_desc(api_key::Column::CreatedAtMs)
        .order_by_asc(api_key::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(KeyInfo::from)
        .collect())
}

/// Returns the key with `id`, revoked or not.
pub(crate) async fn by_id(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find_by_id(id.to_owned()).one(conn).await
}
