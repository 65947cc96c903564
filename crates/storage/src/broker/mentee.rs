//! A mentee a member company submitted: needs, no name.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mentees")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The submitting company (the tenant).
    pub company_id: String,
    pub idempotency_key: String,
    /// SHA-256 (hex) of the submitted request, to tell a retry from a conflicting reuse.
    pub request_hash: String,
    /// JSON of `tandem_domain::MenteeNeeds`; empty once the mentee was erased.
    pub needs: String,
    /// `MenteeStatus` number.
    pub status: i32,
    pub waiting_reason: String,
    pub waiting_detail: String,
    pub submitted_at_ms: i64,
    pub updated_at_ms: i64,
    /// Unix ms when the company erased the mentee; `needs` is empty from then on. 0 otherwise.
    pub erased_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
