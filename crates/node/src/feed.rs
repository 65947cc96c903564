//! The node's publication to the broker: who the node is and the profile feed, an ordered log
//! of pseudonymised profiles and withdrawals keyed by feed version, served from the stored
//! publication snapshot (see `publication`).

use std::collections::{HashMap, HashSet};

use prost::Message;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tandem_proto::profile_change::Change;
use tandem_proto::{
    AnonymisedProfile, GetProfileChangesResponse, NodeInfo, ProfileChange, Withdrawal,
    WithdrawalReason,
};
use tandem_storage::node::{counter, mentor, publication};

use crate::{NodeError, NodeState, counters};

/// Page size when the broker asks for the default.
pub const DEFAULT_PAGE: u32 = 500;
/// Largest page the node returns.
pub const MAX_PAGE: u32 = 5000;

/// Returns the page size for a requested limit (0 means the default).
pub(crate) fn page_size(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// Converts a wire cursor to the database's signed integers.
pub(crate) fn cursor(since: u64) -> i64 {
    i64::try_from(since).unwrap_or(i64::MAX)
}

/// Converts a stored version or sequence back to the wire.
pub(crate) fn wire(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl NodeState {
    /// Returns the node's identity, its latest feed version, how many profiles it publishes
    /// and what k-anonymity cost (profiles generalised and suppressed).
    pub async fn node_info(&self) -> Result<NodeInfo, NodeError> {
        let report = self.publication_report().await?;
        let feed_version = counters::current(self.db(), counter::FEED_VERSION).await?;
        Ok(NodeInfo {
            node_id: self.node_id.clone(),
            display_name: self.display_name.clone(),
            feed_version: wire(feed_version),
            published_profiles: report.published_profiles,
            generalised_profiles: report.generalised_profiles,
            suppressed_profiles: report.suppressed_profiles,
            k: report.k,
        })
    }

    /// Returns the feed entries after `since_version`, oldest first: an upsert for every
    /// published pseudonym, a withdrawal for one no longer published.
    pub async fn profile_changes(
        &self,
        since_version: u64,
        limit: u32,
    ) -> Result<GetProfileChangesResponse, NodeError> {
        self.refresh_publication().await?;
        let limit = page_size(limit);
        let mut rows = publication::Entity::find()
            .filter(publication::Column::Version.gt(cursor(since_version)))
            .order_by_asc(publication::Column::Version)
            .limit(u64::from(limit) + 1)
            .all(self.db())
            .await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);

        let reasons = self.withdrawal_reasons(&rows).await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let change = if row.live {
                let mut profile =
                    AnonymisedProfile::decode(row.profile.as_slice()).map_err(|e| {
                        NodeError::Corrupt(format!("publication {} profile: {e}", row.pseudonym))
                    })?;
                profile.version = wire(row.version);
                Change::Upsert(profile)
            } else {
                Change::Withdrawal(Withdrawal {
                    pseudonym: row.pseudonym.clone(),
                    version: wire(row.version),
                    reason: reasons
                        .get(&row.mentor_id)
                        .copied()
                        .unwrap_or(WithdrawalReason::Removed) as i32,
                })
            };
            changes.push(ProfileChange {
                change: Some(change),
            });
        }
        let next_version = rows.last().map_or(since_version, |row| wire(row.version));
        Ok(GetProfileChangesResponse {
            changes,
            next_version,
            has_more,
        })
    }
}

impl NodeState {
    /// Returns, for the mentors behind the withdrawals among `rows`, why they are no longer
    /// published under that pseudonym: published under another one (a new epoch), still a
    /// consenting mentor (suppressed for k-anonymity), or removed / consent withdrawn.
    async fn withdrawal_reasons(
        &self,
        rows: &[publication::Model],
    ) -> Result<HashMap<String, WithdrawalReason>, NodeError> {
        let ids: HashSet<&str> = rows
            .iter()
            .filter(|r| !r.live)
            .map(|r| r.mentor_id.as_str())
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let live: HashSet<String> = publication::Entity::find()
            .filter(publication::Column::Live.eq(true))
            .filter(publication::Column::MentorId.is_in(ids.iter().copied()))
            .all(self.db())
            .await?
            .into_iter()
            .map(|p| p.mentor_id)
            .collect();
        let present: HashSet<String> = mentor::Entity::find()
            .filter(mentor::Column::Id.is_in(ids.iter().copied()))
            .filter(mentor::Column::Removed.eq(false))
            .filter(mentor::Column::PublishConsent.eq(true))
            .all(self.db())
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect();
        Ok(ids
            .into_iter()
            .map(|id| {
                let reason = if live.contains(id) {
                    WithdrawalReason::Rotated
                } else if present.contains(id) {
                    WithdrawalReason::Suppressed
                } else {
                    WithdrawalReason::Removed
                };
                (id.to_owned(), reason)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_default_and_cap() {
        assert_eq!(page_size(0), DEFAULT_PAGE);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(u32::MAX), MAX_PAGE);
    }

    #[test]
    fn cursors_survive_the_signed_columns() {
        assert_eq!(cursor(u64::MAX), i64::MAX);
        assert_eq!(wire(-1), 0);
        assert_eq!(wire(cursor(42)), 42);
    }
}
