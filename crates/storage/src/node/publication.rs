//! One pseudonym a node has published: the profile feed. A row is live while its profile is
//! published and becomes a withdrawal when the mentor is removed, withdraws consent, is
//! suppressed for k-anonymity or gets a new pseudonym in a new epoch. Rows are never deleted,
//! so replaying the feed from version 0 yields every withdrawal a broker may still need.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "publications")]
pub struct Model {
    /// The published pseudonym (64 hex characters).
    #[sea_orm(primary_key, auto_increment = false)]
    pub pseudonym: String,
    /// The mentor behind the pseudonym; the node's mapping for re-identification.
    pub mentor_id: String,
    /// Publication epoch the pseudonym belongs to; -1 for pseudonyms from before epochs.
    pub epoch: i64,
    /// True while the profile is published; false once withdrawn.
    pub live: bool,
    /// How far the quasi-identifiers were generalised: 0 exact, 1 region to country, 2 also
    /// experience band widened, 3 also industry to its section.
    pub generalisation: i32,
    /// Protobuf-encoded `AnonymisedProfile` as published (version 0); empty once withdrawn.
    pub profile: Vec<u8>,
    /// Feed version of the latest change to this row.
    pub version: i64,
    pub updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
