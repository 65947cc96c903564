//! API keys: who may call the broker, in which scope, and for which company.
//!
//! A key looks like `tdm_<id>_<secret>`. The broker stores the id, the scope, the company a
//! company key is bound to, and a SHA-256 hash of the secret; the key itself is shown once, when
//! created. Callers send it as `authorization: Bearer <key>` metadata. The tenant always comes
//! from the key, never from the request. The format and the hash are shared with the nodes'
//! staff keys ([`tandem_domain::api_key`]).

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use tandem_domain::api_key as key_format;
use tandem_storage::broker::api_key;
use tandem_storage::now_ms;

use crate::{Broker, BrokerError};

/// What a key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A member company: its own mentees and proposals.
    Company,
    /// The network operator: nodes, rounds, statistics, the audit log.
    Operator,
}

impl Scope {
    /// Returns the scope's name as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Self::Company => "company",
            Self::Operator => "operator",
        }
    }

    /// Parses a scope name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "company" => Some(Self::Company),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub scope: Scope,
    /// The company of a company key; empty for operators.
    pub tenant: String,
}

/// A key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub scope: String,
    pub tenant: String,
    pub label: String,
    pub created_at_ms: i64,
    pub revoked: bool,
}

impl Broker {
    /// Creates a key and returns it in full; this is the only time the secret is visible.
    pub async fn create_key(
        &self,
        scope: Scope,
        tenant: &str,
        label: &str,
    ) -> Result<(KeyInfo, String), BrokerError> {
        let tenant = match scope {
            Scope::Company => {
                crate::grpc::check_company_id(tenant)?;
                tenant.to_owned()
            }
            Scope::Operator => String::new(),
        };
        let new = key_format::generate();
        let id = new.id.clone();
        let now = now_ms();
        let row = api_key::ActiveModel {
            id: Set(id.clone()),
            secret_hash: Set(new.secret_hash.clone()),
            scope: Set(scope.name().to_owned()),
            tenant: Set(tenant.clone()),
            label: Set(label.to_owned()),
            created_at_ms: Set(now),
            revoked_at_ms: Set(0),
        };
        let txn = self.write().await?;
        row.insert(&*txn).await?;
        crate::audit::record(
            &*txn,
            crate::audit::OPERATOR,
            "key.created",
            "api_key",
            &id,
            scope.name(),
        )
        .await?;
        txn.commit().await?;
        let info = KeyInfo {
            id: id.clone(),
            scope: scope.name().to_owned(),
            tenant,
            label: label.to_owned(),
            created_at_ms: now,
            revoked: false,
        };
        Ok((info, new.key))
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
        let (id, secret) = key_format::parse_installable(key)?;
        if scope == Scope::Company {
            crate::grpc::check_company_id(tenant)?;
        }
        let now = now_ms();
        let txn = self.write().await?;
        if api_key::Entity::find_by_id(id.to_owned())
            .one(&*txn)
            .await?
            .is_none()
        {
            api_key::ActiveModel {
                id: Set(id.to_owned()),
                secret_hash: Set(key_format::hash_secret(secret)),
                scope: Set(scope.name().to_owned()),
                tenant: Set(if scope == Scope::Company {
                    tenant.to_owned()
                } else {
                    String::new()
                }),
                label: Set(label.to_owned()),
                created_at_ms: Set(now),
                revoked_at_ms: Set(0),
            }
            .insert(&*txn)
            .await?;
            crate::audit::record(
                &*txn,
                crate::audit::OPERATOR,
                "key.installed",
                "api_key",
                id,
                scope.name(),
            )
            .await?;
        }
        txn.commit().await?;
        Ok(KeyInfo {
            id: id.to_owned(),
            scope: scope.name().to_owned(),
            tenant: tenant.to_owned(),
            label: label.to_owned(),
            created_at_ms: now,
            revoked: false,
        })
    }

    /// Revokes a key; calls with it fail from now on.
    pub async fn revoke_key(&self, id: &str) -> Result<(), BrokerError> {
        let txn = self.write().await?;
        let key = api_key::Entity::find_by_id(id.to_owned())
            .one(&*txn)
            .await?
            .ok_or(BrokerError::NotFound("key"))?;
        if key.revoked_at_ms == 0 {
            let mut row: api_key::ActiveModel = key.into();
            row.revoked_at_ms = Set(now_ms());
            row.update(&*txn).await?;
            crate::audit::record(
                &*txn,
                crate::audit::OPERATOR,
                "key.revoked",
                "api_key",
                id,
                "",
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Lists every key, newest first, without secrets.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, BrokerError> {
        Ok(api_key::Entity::find()
            .order_by_desc(api_key::Column::CreatedAtMs)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|k| KeyInfo {
                id: k.id,
                scope: k.scope,
                tenant: k.tenant,
                label: k.label,
                created_at_ms: k.created_at_ms,
                revoked: k.revoked_at_ms != 0,
            })
            .collect())
    }

    /// Checks a presented key. Unknown, malformed, revoked or wrong keys all give the same
    /// `Unauthenticated` answer, so a caller learns nothing about which keys exist.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller, BrokerError> {
        let refused = || BrokerError::Unauthenticated("invalid api key".to_owned());
        let (id, secret) = key_format::split(presented).ok_or_else(refused)?;
        let key = api_key::Entity::find_by_id(id.to_owned())
            .filter(api_key::Column::RevokedAtMs.eq(0))
            .one(&self.db)
            .await?
            .ok_or_else(refused)?;
        if !key_format::verify(&key.secret_hash, secret) {
            return Err(refused());
        }
        let scope = Scope::parse(&key.scope).ok_or_else(refused)?;
        Ok(Caller {
            key_id: key.id,
            scope,
            tenant: key.tenant,
        })
    }
}
