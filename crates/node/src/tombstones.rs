//! Tombstones of introductions: the node remembers every introduction it closed or whose
//! mentee it forgot, and every id it was told to close or forget before it stored it, and
//! refuses a delivery of such an id. Several broker replicas deliver concurrently, so a
//! delivery sent before a close or an erasure can arrive after it; without the tombstone an
//! erased mentee's summary would reappear at the node. A tombstone holds the id, what ended
//! the introduction and when — nothing about the mentee or the mentor.

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait};
use tandem_storage::node::introduction_tombstone::{self as tombstone, CLOSED, FORGOTTEN};

use crate::NodeError;

/// What ended an introduction at this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Closed: by the broker, or because the mentor was removed.
    Closed,
    /// Its mentee was erased: the summary forgotten, or never stored.
    Forgotten,
}

impl Ending {
    fn kind(self) -> &'static str {
        match self {
            Self::Closed => CLOSED,
            Self::Forgotten => FORGOTTEN,
        }
    }

    fn past(kind: &str) -> &'static str {
        if kind == FORGOTTEN {
            "forgotten"
        } else {
            "closed"
        }
    }
}

/// Records the tombstones of `ids` (inside the caller's transaction). A forget replaces a
/// close; a close never replaces a forget, and recording twice changes nothing.
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    ids: &[String],
    ending: Ending,
    now: i64,
) -> Result<(), NodeError> {
    let on_conflict = match ending {
        Ending::Closed => OnConflict::column(tombstone::Column::IntroductionId)
            .do_nothing()
            .to_owned(),
        Ending::Forgotten => OnConflict::column(tombstone::Column::IntroductionId)
            .update_columns([tombstone::Column::Kind, tombstone::Column::AtMs])
            .to_owned(),
    };
    for chunk in ids.chunks(500) {
        let rows = chunk.iter().map(|id| tombstone::ActiveModel {
            introduction_id: Set(id.clone()),
            kind: Set(ending.kind().to_owned()),
            at_ms: Set(now),
        });
        tombstone::Entity::insert_many(rows)
            .on_conflict(on_conflict.clone())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Refuses an introduction id that has a tombstone, naming what ended it.
pub(crate) async fn refuse_if_ended(
    conn: &impl ConnectionTrait,
    introduction_id: &str,
) -> Result<(), NodeError> {
    match tombstone::Entity::find_by_id(introduction_id.to_owned())
        .one(conn)
        .await?
    {
        Some(row) => Err(ended(introduction_id, Ending::past(&row.kind))),
        None => Ok(()),
    }
}

/// The refusal of a delivery of an introduction that ended at this node.
pub(crate) fn ended(introduction_id: &str, how: &str) -> NodeError {
    NodeError::WrongState(format!(
        "introduction {introduction_id} was {how} at this node; it is not delivered again"
    ))
}
