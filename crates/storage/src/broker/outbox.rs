//! Messages to nodes (deliver or close an introduction, update a tandem, forget a mentee),
//! retried until acknowledged, or until they become dead letters: refused by the node for
//! good, or failed too often.

use sea_orm::entity::prelude::*;

/// `kind` of a message that delivers an introduction.
pub const DELIVER: &str = "deliver_introduction";
/// `kind` of a message that closes an introduction.
pub const CLOSE: &str = "close_introduction";
/// `kind` of a message that gives the node its copy of a tandem.
pub const UPDATE_TANDEM: &str = "update_tandem";
/// `kind` of a message that tells a node to forget an introduction's mentee summary.
pub const FORGET: &str = "forget_mentee";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub node_id: String,
    pub kind: String,
    pub introduction_id: String,
    /// Protobuf-encoded request for the node.
    pub payload: Vec<u8>,
    pub attempts: i32,
    pub next_attempt_at_ms: i64,
    /// Unix ms when the node acknowledged (or the message was cancelled or dropped); 0 while
    /// pending.
    pub delivered_at_ms: i64,
    pub last_error: String,
    pub created_at_ms: i64,
    /// Unix ms until which a broker replica holds the message for one delivery attempt; 0 (or
    /// past) when nobody does.
    pub leased_until_ms: i64,
    /// Unix ms when the message became a dead letter; 0 while it is not one.
    pub dead_lettered_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
