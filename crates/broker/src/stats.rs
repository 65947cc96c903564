//! Network-wide counts for the operator: mentees by status, proposals, tandems, rounds, and
//! per node the profiles, free places and tandems.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tandem_proto::{MenteeStatus, NetworkStats, NodeStats, ProposalStatus, UnmatchedReason};
use tandem_storage::broker::{matching_round, mentee, node, profile, proposal};

use crate::{Broker, BrokerError, convert};

impl Broker {
    /// Returns per node the number of profiles held and the sum of their free places.
    pub(crate) async fn profile_totals(&self) -> Result<HashMap<String, (i64, i64)>, BrokerError> {
        let rows: Vec<(String, i64, Option<i64>)> = profile::Entity::find()
            .select_only()
            .column(profile::Column::NodeId)
            .column_as(Expr::col(profile::Column::Pseudonym).count(), "profiles")
            .column_as(
                Expr::col(profile::Column::FreeCapacity).sum(),
                "free_capacity",
            )
            .group_by(profile::Column::NodeId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(node, profiles, free)| (node, (profiles, free.unwrap_or(0))))
            .collect())
    }

    /// Returns the network-wide counts.
    #[tracing::instrument(skip(self))]
    pub async fn network_stats(&self) -> Result<NetworkStats, BrokerError> {
        let by_status: Vec<(i32, i64)> = mentee::Entity::find()
            .select_only()
            .column(mentee::Column::Status)
            .column_as(Expr::col(mentee::Column::Id).count(), "mentees")
            .group_by(mentee::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        let by_status: HashMap<i32, i64> = by_status.into_iter().collect();
        let mentees =
            |s: MenteeStatus| convert::count(by_status.get(&(s as i32)).copied().unwrap_or(0));

        let proposals_with = |status: ProposalStatus| {
            proposal::Entity::find().filter(proposal::Column::Status.eq(status as i32))
        };
        let proposals_open = proposals_with(ProposalStatus::Open).count(&self.db).await?;
        let tandems = proposals_with(ProposalStatus::Tandem)
            .count(&self.db)
            .await?;
        let cross_node_tandems = proposals_with(ProposalStatus::Tandem)
            .filter(proposal::Column::CrossNode.eq(true))
            .count(&self.db)
            .await?;
        let rounds = matching_round::Entity::find().count(&self.db).await?;

        let tandems_by_node: Vec<(String, i64)> = proposals_with(ProposalStatus::Tandem)
            .select_only()
            .column(proposal::Column::NodeId)
            .column_as(Expr::col(proposal::Column::Id).count(), "tandems")
            .group_by(proposal::Column::NodeId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let tandems_by_node: HashMap<String, i64> = tandems_by_node.into_iter().collect();
        let totals = self.profile_totals().await?;
        let nodes = node::Entity::find()
            .order_by_asc(node::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|n| {
                let (profiles, free) = totals.get(&n.id).copied().unwrap_or_default();
                NodeStats {
                    profiles: convert::count(profiles),
                    free_capacity: convert::count(free),
                    tandems: convert::count(tandems_by_node.get(&n.id).copied().unwrap_or(0)),
                    node_id: n.id,
                }
            })
            .collect();

        let reasons: Vec<(String, i64)> = mentee::Entity::find()
            .select_only()
            .column(mentee::Column::WaitingReason)
            .column_as(Expr::col(mentee::Column::Id).count(), "mentees")
            .filter(mentee::Column::Status.eq(MenteeStatus::Waiting as i32))
            .filter(mentee::Column::WaitingReason.ne(""))
            .group_by(mentee::Column::WaitingReason)
            .into_tuple()
            .all(&self.db)
            .await?;
        let reasons: BTreeMap<String, i64> = reasons.into_iter().collect();

        let as_u32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(NetworkStats {
            nodes,
            mentees_waiting: mentees(MenteeStatus::Waiting),
            mentees_proposed: mentees(MenteeStatus::Proposed),
            mentees_in_tandem: mentees(MenteeStatus::InTandem),
            mentees_withdrawn: mentees(MenteeStatus::Withdrawn),
            proposals_open: as_u32(proposals_open),
            tandems: as_u32(tandems),
            cross_node_tandems: as_u32(cross_node_tandems),
            matching_rounds: as_u32(rounds),
            waiting_reasons: reasons
                .into_iter()
                .map(|(reason, n)| UnmatchedReason {
                    reason,
                    mentees: convert::count(n),
                })
                .collect(),
        })
    }
}
