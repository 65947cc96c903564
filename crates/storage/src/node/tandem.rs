//! The node's copy of a tandem of one of its mentors, as the broker last sent it, plus what
//! the mentor's side recorded here since. The mentor's feedback comment stays here.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tandems")]
pub struct Model {
    /// The introduction id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub mentor_id: String,
    /// The broker's version of the copy.
    pub version: i64,
    /// Protobuf-encoded `Tandem`.
    pub state: Vec<u8>,
    /// The mentor's feedback comment; never sent to the broker.
    pub mentor_comment: String,
    pub updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
