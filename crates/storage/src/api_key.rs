//! An API key, at the broker (scopes `company` and `operator`) or at a node (scope
//! `node-admin`): both databases keep their keys in a table of this shape. Only a hash of the
//! secret is stored; the key itself is shown once, when it is created.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// Public key id, e.g. `k3f9a1c2d0e`; part of the key the caller sends.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 (hex) of the secret part.
    pub secret_hash: String,
    /// `company` or `operator` at the broker, `node-admin` at a node.
    pub scope: String,
    /// What the key is bound to: the company a `company` key acts for, the node a `node-admin`
    /// key works at; empty for operators.
    pub tenant: String,
    /// A note for people (who holds the key), never checked.
    pub label: String,
    pub created_at_ms: i64,
    /// Unix ms of revocation; 0 while valid.
    pub revoked_at_ms: i64,
    /// Why the key was revoked when its holder may be told (e.g. "membership ended"); empty
    /// for an ordinary revocation, which looks like an unknown key.
    pub revoked_reason: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
