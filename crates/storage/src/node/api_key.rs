//! An API key of the association's staff (scope `node-admin`, bound to this node). Only a hash
//! of the secret is stored; the key itself is shown once, when it is created.

use sea_orm::entity::prelude::*;

/// The one scope a node issues.
pub const NODE_ADMIN: &str = "node-admin";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// Public key id, e.g. `k3f9a1c2d0e`; part of the key the caller sends.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 (hex) of the secret part.
    pub secret_hash: String,
    /// Always [`NODE_ADMIN`].
    pub scope: String,
    /// The node the key is bound to; a key works only at that node.
    pub node_id: String,
    /// A note for people (who holds the key), never checked.
    pub label: String,
    pub created_at_ms: i64,
    /// Unix ms of revocation; 0 while valid.
    pub revoked_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
