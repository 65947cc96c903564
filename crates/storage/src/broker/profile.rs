//! A mentor's pseudonymised profile as synced from its node.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub node_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub pseudonym: String,
    pub career_level: i32,
    pub experience_band: i32,
    /// JSON array of `Industry` numbers.
    pub industries: String,
    /// JSON array of `Topic` numbers.
    pub expertise: String,
    /// JSON array of ISO 639-1 codes.
    pub languages: String,
    pub region: String,
    /// JSON array of `Format` numbers.
    pub formats: String,
    pub free_capacity: i32,
    pub employer_token: String,
    pub group_token: String,
    /// Node feed version of this profile.
    pub version: i64,
    pub synced_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
