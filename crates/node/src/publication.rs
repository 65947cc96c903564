//! The node's publication snapshot: which anonymised profiles the broker may see, under which
//! pseudonyms.
//!
//! Mentor writes only mark the records changed. Before the feed is read, the node recomputes
//! the snapshot from every consenting mentor (k-anonymity over the quasi-identifiers, the
//! current epoch's pseudonyms, free places), diffs it against the stored publication and gives
//! the next feed version to each pseudonym whose published form changed: an upsert for a new or
//! changed profile, a withdrawal for one that is no longer published (removed, consent
//! withdrawn, suppressed, or renamed by a new epoch). The snapshot is also recomputed when the
//! epoch turns or k changes, so a rotation needs no write to happen.

use std::collections::{BTreeMap, HashMap};

use prost::Message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
};
use tandem_proto::{AnonymisedProfile, PublicationReport};
use tandem_storage::node::{counter, mentor, publication};
use tracing::{info, warn};

use crate::anonymity::{self, PublishedForm, QuasiIdentifiers};
use crate::records::{self, MentorLists};
use crate::{NodeError, NodeState, counters};

/// Epoch recorded for pseudonyms published while rotation is off.
const NO_EPOCH: i64 = -1;

/// Returns the value stored in `publication_epoch` for an epoch (0 means no snapshot yet).
fn epoch_mark(epoch: Option<u64>) -> i64 {
    epoch.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX - 1) + 1)
}

/// What the node publishes at one moment.
struct Snapshot {
    /// Consenting mentors.
    consenting: usize,
    generalised: u32,
    suppressed: u32,
    /// True when nothing is published because no k-anonymous publication exists.
    withheld: bool,
    /// The published profiles by pseudonym.
    wanted: BTreeMap<String, Wanted>,
}

/// One profile the snapshot publishes.
struct Wanted {
    mentor_id: String,
    epoch: i64,
    generalisation: i32,
    profile: Vec<u8>,
}

impl NodeState {
    /// Brings the publication up to date when a mentor changed, the epoch turned or k changed
    /// since the last snapshot; does nothing otherwise.
    pub(crate) async fn refresh_publication(&self) -> Result<(), NodeError> {
        let epoch = self.epoch();
        if !self.publication_is_stale(self.db(), epoch).await? {
            return Ok(());
        }
        let txn = self.write().await?;
        // Another reader may have refreshed while this one waited for the lock.
        if !self.publication_is_stale(&*txn, epoch).await? {
            return Ok(());
        }
        self.publish_snapshot(&txn, epoch).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn publication_is_stale(
        &self,
        db: &impl ConnectionTrait,
        epoch: Option<u64>,
    ) -> Result<bool, NodeError> {
        let changed = counters::current(db, counter::MENTOR_SEQ).await?
            != counters::current(db, counter::PUBLISHED_MENTOR_SEQ).await?;
        let epoch_turned =
            counters::current(db, counter::PUBLICATION_EPOCH).await? != epoch_mark(epoch);
        let k_changed =
            counters::current(db, counter::PUBLICATION_K).await? != i64::from(self.publication.k);
        Ok(changed || epoch_turned || k_changed)
    }

    /// Returns where each mentor stands in the current publication: the pseudonym and
    /// generalisation of each published mentor, by mentor id. When records changed since the
    /// last snapshot, this is the snapshot the next read of the feed will publish, computed
    /// without writing it.
    pub(crate) async fn published_forms(
        &self,
    ) -> Result<HashMap<String, (String, i32)>, NodeError> {
        let epoch = self.epoch();
        if self.publication_is_stale(self.db(), epoch).await? {
            let snapshot = self.snapshot(self.db(), epoch).await?;
            return Ok(snapshot
                .wanted
                .into_iter()
                .map(|(pseudonym, want)| (want.mentor_id, (pseudonym, want.generalisation)))
                .collect());
        }
        Ok(publication::Entity::find()
            .filter(publication::Column::Live.eq(true))
            .all(self.db())
            .await?
            .into_iter()
            .map(|row| (row.mentor_id, (row.pseudonym, row.generalisation)))
            .collect())
    }

    /// Computes what the node publishes now: the k-anonymous plan over the consenting mentors
    /// and each published profile by pseudonym.
    async fn snapshot(
        &self,
        db: &impl ConnectionTrait,
        epoch: Option<u64>,
    ) -> Result<Snapshot, NodeError> {
        let rows = mentor::Entity::find()
            .filter(mentor::Column::Removed.eq(false))
            .filter(mentor::Column::PublishConsent.eq(true))
            .order_by_asc(mentor::Column::Id)
            .all(db)
            .await?;
        let lists = rows
            .iter()
            .map(MentorLists::of_row)
            .collect::<Result<Vec<_>, _>>()?;
        let quasi: Vec<QuasiIdentifiers> = rows
            .iter()
            .zip(&lists)
            .map(|(row, lists)| QuasiIdentifiers {
                career_level: row.career_level,
                years_of_experience: u32::try_from(row.years_of_experience).unwrap_or(0),
                region: row.region.clone(),
                industry: lists.industries.first().copied().unwrap_or(0),
            })
            .collect();
        let plan = anonymity::anonymise(&quasi, self.publication.k);
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let taken = records::places_taken(db, &ids).await?;

        let epoch_column = epoch.map_or(NO_EPOCH, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        for ((row, lists), form) in rows.iter().zip(lists).zip(&plan.forms) {
            let Some(form) = form else { continue };
            let free = records::free_places(row.capacity, taken.get(&row.id).copied().unwrap_or(0));
            let pseudonym = self.pseudonym_in(epoch, &row.id);
            let profile = self.anonymised_profile(row, lists, form, free, pseudonym.clone());
            wanted.insert(
                pseudonym,
                Wanted {
                    mentor_id: row.id.clone(),
                    epoch: epoch_column,
                    generalisation: form.generalisation as i32,
                    profile: profile.encode_to_vec(),
                },
            );
        }
        Ok(Snapshot {
            consenting: rows.len(),
            generalised: plan.generalised,
            suppressed: plan.suppressed,
            withheld: plan.withheld,
            wanted,
        })
    }

    /// Recomputes the snapshot and writes the difference to the feed.
    async fn publish_snapshot(
        &self,
        txn: &DatabaseTransaction,
        epoch: Option<u64>,
    ) -> Result<(), NodeError> {
        let mentor_seq = counters::current(txn, counter::MENTOR_SEQ).await?;
        let Snapshot {
            consenting,
            generalised,
            suppressed,
            withheld,
            wanted,
        } = self.snapshot(txn, epoch).await?;

        let live: HashMap<String, publication::Model> = publication::Entity::find()
            .filter(publication::Column::Live.eq(true))
            .order_by_asc(publication::Column::Pseudonym)
            .all(txn)
            .await?
            .into_iter()
            .map(|row| (row.pseudonym.clone(), row))
            .collect();
        let mut version = counters::current(txn, counter::FEED_VERSION).await?;
        let now = self.now();
        let (mut withdrawn, mut upserted) = (0u32, 0u32);

        let mut gone: Vec<&publication::Model> = live
            .values()
            .filter(|row| !wanted.contains_key(&row.pseudonym))
            .collect();
        gone.sort_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
        for row in gone {
            version += 1;
            let mut row = row.clone().into_active_model();
            row.live = Set(false);
            row.profile = Set(Vec::new());
            row.version = Set(version);
            row.updated_at_ms = Set(now);
            row.update(txn).await?;
            withdrawn += 1;
        }
        for (pseudonym, want) in wanted {
            let existing = match live.get(&pseudonym) {
                Some(row)
                    if row.profile == want.profile && row.generalisation == want.generalisation =>
                {
                    continue;
                }
                Some(row) => Some(row.clone()),
                // A pseudonym published earlier in this epoch and withdrawn since comes back.
                None => {
                    publication::Entity::find_by_id(pseudonym.clone())
                        .one(txn)
                        .await?
                }
            };
            version += 1;
            let is_new = existing.is_none();
            let mut row = match existing {
                Some(row) => row.into_active_model(),
                None => publication::ActiveModel {
                    pseudonym: Set(pseudonym),
                    ..Default::default()
                },
            };
            row.mentor_id = Set(want.mentor_id);
            row.epoch = Set(want.epoch);
            row.live = Set(true);
            row.generalisation = Set(want.generalisation);
            row.profile = Set(want.profile);
            row.version = Set(version);
            row.updated_at_ms = Set(now);
            if is_new {
                row.insert(txn).await?;
            } else {
                row.update(txn).await?;
            }
            upserted += 1;
        }

        counters::set(txn, counter::FEED_VERSION, version).await?;
        counters::set(txn, counter::PUBLISHED_MENTOR_SEQ, mentor_seq).await?;
        counters::set(txn, counter::PUBLICATION_EPOCH, epoch_mark(epoch)).await?;
        counters::set(txn, counter::PUBLICATION_K, i64::from(self.publication.k)).await?;
        counters::set(
            txn,
            counter::PUBLICATION_GENERALISED,
            i64::from(generalised),
        )
        .await?;
        counters::set(txn, counter::PUBLICATION_SUPPRESSED, i64::from(suppressed)).await?;
        counters::set(txn, counter::PUBLICATION_WITHHELD, i64::from(withheld)).await?;

        if withheld {
            warn!(
                node = %self.node_id,
                k = self.publication.k,
                consenting,
                "publication withheld: the profiles cannot be made k-anonymous"
            );
        }
        info!(
            node = %self.node_id,
            k = self.publication.k,
            epoch = ?epoch,
            consenting,
            generalised,
            suppressed,
            upserted,
            withdrawn,
            feed_version = version,
            "publication refreshed"
        );
        Ok(())
    }

    /// Returns the profile the federation may see of a mentor: the published form of the
    /// quasi-identifiers, the taxonomy lists, free places and keyed hashes. It carries no name,
    /// e-mail, title, employer name or registry number.
    fn anonymised_profile(
        &self,
        row: &mentor::Model,
        lists: MentorLists,
        form: &PublishedForm,
        free_capacity: u32,
        pseudonym: String,
    ) -> AnonymisedProfile {
        let employer_token = self.employer_token(&row.employer_registry_number);
        let group_token = if row.group_registry_number.is_empty() {
            employer_token.clone()
        } else {
            self.employer_token(&row.group_registry_number)
        };
        AnonymisedProfile {
            pseudonym,
            career_level: form.career_level,
            experience_band: form.experience_band,
            industries: form.industries.clone(),
            expertise: lists.expertise,
            languages: lists.languages,
            region: form.region.clone(),
            formats: lists.formats,
            free_capacity,
            employer_token,
            group_token,
            version: 0,
        }
    }

    /// Returns what the node publishes and how much k-anonymity cost: the staff's and the
    /// operator's view of the current snapshot.
    pub async fn publication_report(&self) -> Result<PublicationReport, NodeError> {
        self.refresh_publication().await?;
        let read = |name| counters::current(self.db(), name);
        let wire = |value: i64| u32::try_from(value).unwrap_or(0);
        let published = publication::Entity::find()
            .filter(publication::Column::Live.eq(true))
            .count(self.db())
            .await?;
        Ok(PublicationReport {
            k: self.publication.k,
            epoch_days: self.publication.epoch_days,
            published_profiles: u32::try_from(published).unwrap_or(u32::MAX),
            generalised_profiles: wire(read(counter::PUBLICATION_GENERALISED).await?),
            suppressed_profiles: wire(read(counter::PUBLICATION_SUPPRESSED).await?),
            withheld: read(counter::PUBLICATION_WITHHELD).await? != 0,
        })
    }
}
