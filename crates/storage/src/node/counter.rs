//! Named counters of a node: the profile feed version, the decision log sequence, the mentor
//! change sequence, and the bookkeeping of the last publication snapshot (which mentor change,
//! epoch and k it was computed for, and how many profiles it generalised and suppressed).

use sea_orm::entity::prelude::*;

/// Name of the profile feed counter.
pub const FEED_VERSION: &str = "feed_version";
/// Name of the membership feed counter.
pub const MEMBERSHIP_VERSION: &str = "membership_version";
/// Name of the decision log counter.
pub const DECISION_SEQ: &str = "decision_seq";
/// Name of the tandem event log counter.
pub const TANDEM_EVENT_SEQ: &str = "tandem_event_seq";
/// Name of the counter every change to a mentor record (or its free places) increments.
pub const MENTOR_SEQ: &str = "mentor_seq";
/// The mentor change sequence the current publication snapshot was computed from.
pub const PUBLISHED_MENTOR_SEQ: &str = "published_mentor_seq";
/// The publication epoch of the current snapshot, plus one (0: no snapshot yet).
pub const PUBLICATION_EPOCH: &str = "publication_epoch";
/// The k the current snapshot was computed for.
pub const PUBLICATION_K: &str = "publication_k";
/// How many published profiles the current snapshot generalised.
pub const PUBLICATION_GENERALISED: &str = "publication_generalised";
/// How many consenting mentors the current snapshot suppressed.
pub const PUBLICATION_SUPPRESSED: &str = "publication_suppressed";
/// 1 when the current snapshot withholds every profile because it could not be made
/// k-anonymous, else 0.
pub const PUBLICATION_WITHHELD: &str = "publication_withheld";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub value: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
