//! The node's publication to the broker: who the node is and the profile feed, an ordered log
//! of pseudonymised profiles and withdrawals keyed by feed version.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tandem_domain::taxonomy::experience_band;
use tandem_proto::profile_change::Change;
use tandem_proto::{
    AnonymisedProfile, GetProfileChangesResponse, NodeInfo, ProfileChange, Withdrawal,
};
use tandem_storage::node::{counter, mentor};

use crate::records::{self, MentorLists};
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
    /// Returns the node's identity, its latest feed version and how many profiles it publishes.
    pub async fn node_info(&self) -> Result<NodeInfo, NodeError> {
        let feed_version = counters::current(&self.db, counter::FEED_VERSION).await?;
        let published = mentor::Entity::find()
            .filter(mentor::Column::Removed.eq(false))
            .filter(mentor::Column::PublishConsent.eq(true))
            .count(&self.db)
            .await?;
        Ok(NodeInfo {
            node_id: self.node_id.clone(),
            display_name: self.display_name.clone(),
            feed_version: wire(feed_version),
            published_profiles: u32::try_from(published).unwrap_or(u32::MAX),
        })
    }

    /// Returns the feed entries after `since_version`, oldest first: an upsert for every
    /// published mentor, a withdrawal for a removed or non-consenting one.
    pub async fn profile_changes(
        &self,
        since_version: u64,
        limit: u32,
    ) -> Result<GetProfileChangesResponse, NodeError> {
        let limit = page_size(limit);
        let mut rows = mentor::Entity::find()
            .filter(mentor::Column::Version.gt(cursor(since_version)))
            .order_by_asc(mentor::Column::Version)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);

        let published: Vec<String> = rows
            .iter()
            .filter(|row| is_published(row))
            .map(|row| row.id.clone())
            .collect();
        let taken = records::places_taken(&self.db, &published).await?;

        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let change = if is_published(row) {
                let free =
                    records::free_places(row.capacity, taken.get(&row.id).copied().unwrap_or(0));
                Change::Upsert(self.anonymised_profile(row, free)?)
            } else {
                Change::Withdrawal(Withdrawal {
                    pseudonym: self.pseudonym(&row.id),
                    version: wire(row.version),
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

    /// Returns the profile the federation may see of a mentor. It carries no name, e-mail,
    /// title, employer name or registry number: only the taxonomy, bands and keyed hashes.
    fn anonymised_profile(
        &self,
        row: &mentor::Model,
        free_capacity: u32,
    ) -> Result<AnonymisedProfile, NodeError> {
        let lists = MentorLists::of_row(row)?;
        let employer_token = self.employer_token(&row.employer_registry_number);
        let group_token = if row.group_registry_number.is_empty() {
            employer_token.clone()
        } else {
            self.employer_token(&row.group_registry_number)
        };
        Ok(AnonymisedProfile {
            pseudonym: self.pseudonym(&row.id),
            career_level: row.career_level,
            experience_band: experience_band(u32::try_from(row.years_of_experience).unwrap_or(0))
                as i32,
            industries: lists.industries,
            expertise: lists.expertise,
            languages: lists.languages,
            region: row.region.clone(),
            formats: lists.formats,
            free_capacity,
            employer_token,
            group_token,
            version: wire(row.version),
        })
    }
}

/// Returns whether a mentor's profile is published (not removed, consent given).
fn is_published(row: &mentor::Model) -> bool {
    !row.removed && row.publish_consent
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
