//! Network-wide counts for the operator: mentees by status, proposals, tandems, rounds, and
//! per node the profiles, free places and tandems.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tandem_proto::{
    MenteeStatus, NetworkStats, NodeStats, ProposalStatus, TandemStatus, UnmatchedReason,
};
use tandem_storage::broker::{matching_round, mentee, node, profile, proposal, tandem};

use crate::{Broker, BrokerError, convert};

/// Tandems by lifecycle state, for the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TandemTotals {
    pub starting: i64,
    pub active: i64,
    pub completed: i64,
    pub ended_early: i64,
    /// Active tandems whose next meeting is overdue now.
    pub overdue: i64,
    /// Mean goal attainment in percent over tandems with recorded goals; 0 without any.
    pub attainment_percent: i64,
}

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
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(node, profiles, free)| (node, (profiles, free.unwrap_or(0))))
            .collect())
    }

    /// Returns the tandems by lifecycle state, how many active ones are overdue now, and the
    /// mean goal attainment in percent over tandems with recorded goals.
    pub async fn tandem_totals(&self) -> Result<TandemTotals, BrokerError> {
        let by_status: Vec<(i32, i64)> = tandem::Entity::find()
            .select_only()
            .column(tandem::Column::Status)
            .column_as(Expr::col(tandem::Column::Id).count(), "tandems")
            .group_by(tandem::Column::Status)
            .into_tuple()
            .all(self.db())
            .await?;
        let by_status: HashMap<i32, i64> = by_status.into_iter().collect();
        let of = |s: TandemStatus| by_status.get(&(s as i32)).copied().unwrap_or(0);
        let overdue = tandem::Entity::find()
            .filter(tandem::Column::Status.eq(TandemStatus::Active as i32))
            .filter(tandem::Column::NextDueAtMs.lt(self.now()))
            .count(self.db())
            .await?;
        let attainment: Option<(Option<i64>, i64)> = tandem::Entity::find()
            .select_only()
            .column_as(Expr::col(tandem::Column::AttainmentPercent).sum(), "sum")
            .column_as(Expr::col(tandem::Column::Id).count(), "n")
            .filter(tandem::Column::AttainmentPercent.gte(0))
            .into_tuple()
            .one(self.db())
            .await?;
        let attainment_percent = match attainment {
            Some((Some(sum), n)) if n > 0 => sum / n,
            _ => 0,
        };
        Ok(TandemTotals {
            starting: of(TandemStatus::Starting),
            active: of(TandemStatus::Active),
            completed: of(TandemStatus::Completed),
            ended_early: of(TandemStatus::EndedEarly),
            overdue: i64::try_from(overdue).unwrap_or(i64::MAX),
            attainment_percent,
        })
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
            .all(self.db())
            .await?;
        let by_status: HashMap<i32, i64> = by_status.into_iter().collect();
        let mentees =
            |s: MenteeStatus| convert::count(by_status.get(&(s as i32)).copied().unwrap_or(0));

        let proposals_with = |status: ProposalStatus| {
            proposal::Entity::find().filter(proposal::Column::Status.eq(status as i32))
        };
        let proposals_open = proposals_with(ProposalStatus::Open)
            .count(self.db())
            .await?;
        let tandems = proposals_with(ProposalStatus::Tandem)
            .count(self.db())
            .await?;
        let cross_node_tandems = proposals_with(ProposalStatus::Tandem)
            .filter(proposal::Column::CrossNode.eq(true))
            .count(self.db())
            .await?;
        let rounds = matching_round::Entity::find().count(self.db()).await?;

        let tandems_by_node: Vec<(String, i64)> = proposals_with(ProposalStatus::Tandem)
            .select_only()
            .column(proposal::Column::NodeId)
            .column_as(Expr::col(proposal::Column::Id).count(), "tandems")
            .group_by(proposal::Column::NodeId)
            .into_tuple()
            .all(self.db())
            .await?;
        let tandems_by_node: HashMap<String, i64> = tandems_by_node.into_iter().collect();
        let totals = self.profile_totals().await?;
        let nodes = node::Entity::find()
            .order_by_asc(node::Column::Id)
            .all(self.db())
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
            .all(self.db())
            .await?;
        let reasons: BTreeMap<String, i64> = reasons.into_iter().collect();

        let as_u32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let lifecycle = self.tandem_totals().await?;
        Ok(NetworkStats {
            tandems_starting: convert::count(lifecycle.starting),
            tandems_active: convert::count(lifecycle.active),
            tandems_completed: convert::count(lifecycle.completed),
            tandems_ended_early: convert::count(lifecycle.ended_early),
            tandems_overdue: convert::count(lifecycle.overdue),
            goal_attainment_percent: convert::count(lifecycle.attainment_percent),
            mentees_finished: mentees(MenteeStatus::Finished),
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
