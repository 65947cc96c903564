//! A mentor's full record. Personal data lives only here, in the node's own database.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mentors")]
pub struct Model {
    /// UUID assigned by the node.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub employer_name: String,
    pub employer_registry_number: String,
    pub group_registry_number: String,
    pub title: String,
    pub career_level: i32,
    pub years_of_experience: i32,
    /// JSON array of `Industry` numbers.
    pub industries: String,
    /// JSON array of `Topic` numbers.
    pub expertise: String,
    /// JSON array of ISO 639-1 codes.
    pub languages: String,
    pub region: String,
    /// JSON array of `Format` numbers.
    pub formats: String,
    pub capacity: i32,
    pub publish_consent: bool,
    /// The association's own reference (member number); empty when none was given. Unique
    /// among the mentors that carry one.
    pub member_number: String,
    /// True once removed: personal data is blanked and the profile is withdrawn.
    pub removed: bool,
    /// Position of the latest change to this record in the node's mentor change sequence
    /// (before the publication snapshot, the feed version of the profile).
    pub version: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
