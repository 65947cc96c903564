//! The figures of the operators' dashboard, computed from the broker's database in one pass.
//! The page, the JSON endpoint and the Prometheus metrics all render this one [`Dashboard`].
//!
//! Every count here is exact; the page alone shows small counts of people as "<5".

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use tandem_proto::{CompanyDecision, MentorDecision, ProposalStatus};
use tandem_storage::broker::{matching_round, mentee, node, outbox, proposal, tandem};

use super::timing::{self, TimeToMatch, Wait};
use crate::{Broker, BrokerError};

/// Matching rounds listed on the dashboard (the newest).
pub const LATEST_ROUNDS: u64 = 10;

/// Reason shown for waiting mentees no matching round has considered yet.
pub const AWAITING_ROUND: &str = "awaiting_round";

/// Mentees in a `WHERE id IN (…)` at once; well below every database's parameter limit.
const IN_CHUNK: usize = 500;

/// Everything the operators' dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// When the figures were computed (Unix ms).
    pub generated_at_ms: i64,
    /// A node whose last successful sync is older than this is stale.
    pub profile_staleness_secs: u64,
    pub nodes: Vec<NodeHealth>,
    pub mentees: MenteeCounts,
    pub tandems: TandemCounts,
    pub funnel: Funnel,
    pub time_to_match: TimeToMatch,
    pub rounds: Rounds,
    /// Why waiting mentees still wait, most frequent first.
    pub unmatched: Vec<UnmatchedCount>,
}

/// One node's health and what it contributes.
#[derive(Debug, Clone, Serialize)]
pub struct NodeHealth {
    pub node_id: String,
    pub display_name: String,
    /// Unix ms of the last successful sync; `None` if never synced.
    pub last_sync_at_ms: Option<i64>,
    /// Seconds since the last successful sync; `None` if never synced.
    pub sync_lag_secs: Option<u64>,
    /// Never synced, or not within `profile_staleness_secs`: its profiles sit out of rounds.
    pub stale: bool,
    /// Error of the last failed sync; `None` after a success.
    pub last_error: Option<String>,
    /// Pseudonymised mentor profiles the broker holds from the node.
    pub profiles: u64,
    /// Free mentoring places over those profiles.
    pub free_capacity: u64,
    /// Tandems with a mentor of this node.
    pub tandems: u64,
    /// Messages for the node not yet acknowledged (introductions waiting in the outbox).
    pub outbox_pending: u64,
    /// Messages for the node the broker gave up on (refused for good, or failed too often),
    /// waiting for an operator to retry or drop them (`OperatorService.ListDeadLetters`).
    pub outbox_dead_letters: u64,
}

/// Mentees by state.
#[derive(Debug, Clone, Serialize)]
pub struct MenteeCounts {
    pub submitted: u64,
    pub waiting: u64,
    pub proposed: u64,
    pub in_tandem: u64,
    pub withdrawn: u64,
    /// Their tandem ended (completed, or early after the re-matching window).
    pub finished: u64,
}

/// Tandems formed, how many bridge two networks, and where they stand in their lifecycle.
#[derive(Debug, Clone, Serialize)]
pub struct TandemCounts {
    pub total: u64,
    /// Tandems whose mentor's node differs from the mentee's home node.
    pub cross_node: u64,
    /// `cross_node / total`; `None` while there is no tandem.
    pub cross_node_share: Option<f64>,
    /// Formed, goals and cadence not recorded yet.
    pub starting: u64,
    /// Goals recorded, the pair meets.
    pub active: u64,
    /// Active tandems whose next meeting is overdue now.
    pub overdue: u64,
    pub completed: u64,
    pub ended_early: u64,
    /// Mean goal attainment (percent of the way from baseline to target) over tandems with
    /// recorded goals; `None` while there are none.
    pub goal_attainment_percent: Option<u64>,
}

/// The way from a proposal to a tandem, stage by stage.
#[derive(Debug, Clone, Serialize)]
pub struct Funnel {
    /// Each stage counts the proposals that passed it and every stage before it.
    pub stages: Vec<FunnelStage>,
    /// Every proposal by its current status.
    pub outcomes: ProposalOutcomes,
}

/// One stage of the funnel.
#[derive(Debug, Clone, Serialize)]
pub struct FunnelStage {
    /// Stable key, e.g. `mentor_accepted`; used in metrics labels and `data-metric`.
    pub key: &'static str,
    pub label: &'static str,
    pub count: u64,
    /// Share of the previous stage that reached this one; `None` for the first stage or when
    /// the previous stage is empty.
    pub rate_of_previous: Option<f64>,
}

/// Proposals by current status.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalOutcomes {
    pub open: u64,
    pub tandem: u64,
    pub declined_by_mentor: u64,
    pub declined_by_company: u64,
    pub expired: u64,
    pub withdrawn: u64,
}

/// Matching rounds run.
#[derive(Debug, Clone, Serialize)]
pub struct Rounds {
    pub total: u64,
    /// The newest rounds, newest first.
    pub latest: Vec<RoundSummary>,
}

/// One matching round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundSummary {
    pub round_id: String,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    pub mentees_considered: u64,
    pub mentors_considered: u64,
    pub proposals: u64,
    pub cross_node_proposals: u64,
    /// Total score of the round's assignment.
    pub objective: i64,
    /// Certified optimal over all feasible pairs.
    pub optimal: bool,
}

/// How many waiting mentees wait for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedCount {
    /// Reason code, e.g. `no_shared_language`; [`AWAITING_ROUND`] for mentees no round has
    /// considered yet.
    pub reason: String,
    pub mentees: u64,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Funnel {
    /// Builds the funnel from proposals counted by (status, mentor decision, company decision)
    /// and the lifecycle's counts of tandems that became active and that completed.
    fn from_counts(counts: &[(i32, i32, i32, i64)], lifecycle: (u64, u64)) -> Funnel {
        let sum = |keep: &dyn Fn(i32, i32, i32) -> bool| -> u64 {
            counts
                .iter()
                .filter(|(s, m, c, _)| keep(*s, *m, *c))
                .map(|(_, _, _, n)| unsigned(*n))
                .sum()
        };
        let accepted = MentorDecision::Accepted as i32;
        let confirmed = CompanyDecision::Confirmed as i32;
        let status = |want: ProposalStatus| sum(&|s, _, _| s == want as i32);
        let counts = [
            ("proposals_made", "Proposals made", sum(&|_, _, _| true)),
            (
                "mentor_accepted",
                "Mentor accepted",
                sum(&|_, m, _| m == accepted),
            ),
            (
                "company_confirmed",
                "Company confirmed",
                sum(&|_, m, c| m == accepted && c == confirmed),
            ),
            (
                "tandem_formed",
                "Tandem formed",
                status(ProposalStatus::Tandem),
            ),
            // The lifecycle: goals and cadence recorded (the tandem became active, whatever it
            // is now), and completed at the end of the programme.
            ("tandem_active", "Goals recorded", lifecycle.0),
            ("tandem_completed", "Completed", lifecycle.1),
        ];
        let mut stages = Vec::with_capacity(counts.len());
        let mut previous: Option<u64> = None;
        for (key, label, count) in counts {
            stages.push(FunnelStage {
                key,
                label,
                count,
                rate_of_previous: previous.and_then(|p| share(count, p)),
            });
            previous = Some(count);
        }
        Funnel {
            stages,
            outcomes: ProposalOutcomes {
                open: status(ProposalStatus::Open),
                tandem: status(ProposalStatus::Tandem),
                declined_by_mentor: status(ProposalStatus::DeclinedByMentor),
                declined_by_company: status(ProposalStatus::DeclinedByCompany),
                expired: status(ProposalStatus::Expired),
                withdrawn: status(ProposalStatus::Withdrawn),
            },
        }
    }
}

impl Broker {
    /// Computes the dashboard's figures as of `now_ms`.
    #[tracing::instrument(skip(self))]
    pub async fn dashboard(&self, now_ms: i64) -> Result<Dashboard, BrokerError> {
        let stats = self.network_stats().await?;
        let staleness_ms = i64::try_from(self.config.profile_staleness_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);

        let pending = self.outbox_counts(crate::delivery::pending()).await?;
        let dead_letters = self
            .outbox_counts(
                Condition::all()
                    .add(outbox::Column::DeliveredAtMs.eq(0))
                    .add(outbox::Column::DeadLetteredAtMs.gt(0)),
            )
            .await?;
        let node_stats: HashMap<&str, &tandem_proto::NodeStats> = stats
            .nodes
            .iter()
            .map(|n| (n.node_id.as_str(), n))
            .collect();
        let nodes = node::Entity::find()
            .order_by_asc(node::Column::Id)
            .all(self.db())
            .await?
            .into_iter()
            .map(|n| {
                let counts = node_stats.get(n.id.as_str());
                let synced = n.last_sync_at_ms > 0;
                let lag_ms = Ord::max(now_ms.saturating_sub(n.last_sync_at_ms), 0);
                NodeHealth {
                    last_sync_at_ms: synced.then_some(n.last_sync_at_ms),
                    sync_lag_secs: synced.then_some(unsigned(lag_ms) / 1000),
                    stale: !synced || lag_ms > staleness_ms,
                    last_error: (!n.last_error.is_empty()).then(|| n.last_error.clone()),
                    profiles: counts.map_or(0, |c| u64::from(c.profiles)),
                    free_capacity: counts.map_or(0, |c| u64::from(c.free_capacity)),
                    tandems: counts.map_or(0, |c| u64::from(c.tandems)),
                    outbox_pending: unsigned(pending.get(&n.id).copied().unwrap_or(0)),
                    outbox_dead_letters: unsigned(dead_letters.get(&n.id).copied().unwrap_or(0)),
                    display_name: n.display_name,
                    node_id: n.id,
                }
            })
            .collect();

        let mentees = MenteeCounts {
            submitted: mentee::Entity::find().count(self.db()).await?,
            waiting: u64::from(stats.mentees_waiting),
            proposed: u64::from(stats.mentees_proposed),
            in_tandem: u64::from(stats.mentees_in_tandem),
            withdrawn: u64::from(stats.mentees_withdrawn),
            finished: u64::from(stats.mentees_finished),
        };
        let ever_active = tandem::Entity::find()
            .filter(tandem::Column::StartedAtMs.gt(0))
            .count(self.db())
            .await?;
        let with_goals = tandem::Entity::find()
            .filter(tandem::Column::AttainmentPercent.gte(0))
            .count(self.db())
            .await?;
        let tandems = TandemCounts {
            total: u64::from(stats.tandems),
            cross_node: u64::from(stats.cross_node_tandems),
            cross_node_share: share(
                u64::from(stats.cross_node_tandems),
                u64::from(stats.tandems),
            ),
            starting: u64::from(stats.tandems_starting),
            active: u64::from(stats.tandems_active),
            overdue: u64::from(stats.tandems_overdue),
            completed: u64::from(stats.tandems_completed),
            ended_early: u64::from(stats.tandems_ended_early),
            goal_attainment_percent: (with_goals > 0)
                .then_some(u64::from(stats.goal_attainment_percent)),
        };

        let by_outcome: Vec<(i32, i32, i32, i64)> = proposal::Entity::find()
            .select_only()
            .column(proposal::Column::Status)
            .column(proposal::Column::MentorDecision)
            .column(proposal::Column::CompanyDecision)
            .column_as(Expr::col(proposal::Column::Id).count(), "proposals")
            .group_by(proposal::Column::Status)
            .group_by(proposal::Column::MentorDecision)
            .group_by(proposal::Column::CompanyDecision)
            .into_tuple()
            .all(self.db())
            .await?;
        let funnel = Funnel::from_counts(&by_outcome, (ever_active, tandems.completed));

        let time_to_match = timing::time_to_match(&self.tandem_waits().await?);

        let latest = matching_round::Entity::find()
            .order_by_desc(matching_round::Column::StartedAtMs)
            .order_by_desc(matching_round::Column::Id)
            .limit(LATEST_ROUNDS)
            .all(self.db())
            .await?
            .into_iter()
            .map(|r| RoundSummary {
                round_id: r.id,
                started_at_ms: r.started_at_ms,
                duration_ms: r.duration_ms,
                mentees_considered: unsigned(r.mentees_considered.into()),
                mentors_considered: unsigned(r.mentors_considered.into()),
                proposals: unsigned(r.proposals.into()),
                cross_node_proposals: unsigned(r.cross_node_proposals.into()),
                objective: r.objective,
                optimal: r.optimal,
            })
            .collect();
        let rounds = Rounds {
            total: u64::from(stats.matching_rounds),
            latest,
        };

        let mut unmatched: Vec<UnmatchedCount> = stats
            .waiting_reasons
            .iter()
            .map(|r| UnmatchedCount {
                reason: r.reason.clone(),
                mentees: u64::from(r.mentees),
            })
            .collect();
        let explained: u64 = unmatched.iter().map(|r| r.mentees).sum();
        let awaiting = mentees.waiting.saturating_sub(explained);
        if awaiting > 0 {
            unmatched.push(UnmatchedCount {
                reason: AWAITING_ROUND.to_owned(),
                mentees: awaiting,
            });
        }
        unmatched.sort_by(|a, b| b.mentees.cmp(&a.mentees).then(a.reason.cmp(&b.reason)));

        Ok(Dashboard {
            generated_at_ms: now_ms,
            profile_staleness_secs: self.config.profile_staleness_secs,
            nodes,
            mentees,
            tandems,
            funnel,
            time_to_match,
            rounds,
            unmatched,
        })
    }

    /// Counts the outbox messages `which` selects, by node.
    async fn outbox_counts(&self, which: Condition) -> Result<HashMap<String, i64>, BrokerError> {
        let counts: Vec<(String, i64)> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::NodeId)
            .column_as(Expr::col(outbox::Column::Id).count(), "messages")
            .filter(which)
            .group_by(outbox::Column::NodeId)
            .into_tuple()
            .all(self.db())
            .await?;
        Ok(counts.into_iter().collect())
    }

    /// Returns every tandem's wait from the mentee's submission until the tandem formed.
    ///
    /// A tandem formed at its proposal's last update: the second yes is the last change a
    /// tandem proposal sees.
    async fn tandem_waits(&self) -> Result<Vec<Wait>, BrokerError> {
        // A tandem formed when both sides had said yes: the lifecycle record keeps that time.
        let formed: Vec<(String, String, i64)> = tandem::Entity::find()
            .select_only()
            .column(tandem::Column::MenteeId)
            .column(tandem::Column::Id)
            .column(tandem::Column::FormedAtMs)
            .into_tuple()
            .all(self.db())
            .await?;
        let round_of: HashMap<String, String> = proposal::Entity::find()
            .select_only()
            .column(proposal::Column::Id)
            .column(proposal::Column::RoundId)
            .filter(proposal::Column::Status.eq(ProposalStatus::Tandem as i32))
            .into_tuple::<(String, String)>()
            .all(self.db())
            .await?
            .into_iter()
            .collect();
        let tandems: Vec<(String, String, i64)> = formed
            .into_iter()
            .map(|(mentee_id, id, at)| {
                let round = round_of.get(&id).cloned().unwrap_or_default();
                (mentee_id, round, at)
            })
            .collect();
        let ids: Vec<&String> = tandems.iter().map(|(m, _, _)| m).collect();
        let mut submitted: HashMap<String, i64> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let rows: Vec<(String, i64)> = mentee::Entity::find()
                .select_only()
                .column(mentee::Column::Id)
                .column(mentee::Column::SubmittedAtMs)
                .filter(mentee::Column::Id.is_in(chunk.iter().map(|s| s.as_str())))
                .into_tuple()
                .all(self.db())
                .await?;
            submitted.extend(rows);
        }
        let rounds: Vec<(String, i64)> = matching_round::Entity::find()
            .select_only()
            .column(matching_round::Column::Id)
            .column(matching_round::Column::StartedAtMs)
            .into_tuple()
            .all(self.db())
            .await?;
        let rounds: HashMap<String, i64> = rounds.into_iter().collect();
        Ok(tandems
            .into_iter()
            .filter_map(|(mentee_id, round_id, formed_at_ms)| {
                let at = *submitted.get(&mentee_id)?;
                Some(Wait {
                    formed_at_ms,
                    round_started_at_ms: rounds.get(&round_id).copied().unwrap_or(0),
                    round_id,
                    wait_ms: formed_at_ms.saturating_sub(at),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_funnel_nests_its_stages_and_rates_each_on_the_previous() {
        let open = ProposalStatus::Open as i32;
        let tandem = ProposalStatus::Tandem as i32;
        let declined = ProposalStatus::DeclinedByMentor as i32;
        let company_no = ProposalStatus::DeclinedByCompany as i32;
        let (pending, yes, no) = (
            MentorDecision::Pending as i32,
            MentorDecision::Accepted as i32,
            MentorDecision::Declined as i32,
        );
        let (c_pending, c_yes, c_no) = (
            CompanyDecision::Pending as i32,
            CompanyDecision::Confirmed as i32,
            CompanyDecision::Declined as i32,
        );
        let funnel = Funnel::from_counts(
            &[
                (open, pending, c_pending, 2),
                // The company said yes first; the mentor has not answered.
                (open, pending, c_yes, 1),
                (declined, no, c_pending, 2),
                (company_no, yes, c_no, 1),
                (tandem, yes, c_yes, 4),
            ],
            (3, 1),
        );
        let stages: Vec<(&str, u64)> = funnel.stages.iter().map(|s| (s.key, s.count)).collect();
        assert_eq!(
            stages,
            [
                ("proposals_made", 10),
                ("mentor_accepted", 5),
                ("company_confirmed", 4),
                ("tandem_formed", 4),
                ("tandem_active", 3),
                ("tandem_completed", 1),
            ]
        );
        assert_eq!(funnel.stages[0].rate_of_previous, None);
        assert_eq!(funnel.stages[1].rate_of_previous, Some(0.5));
        assert_eq!(funnel.stages[2].rate_of_previous, Some(0.8));
        assert_eq!(funnel.stages[3].rate_of_previous, Some(1.0));
        assert_eq!(funnel.stages[4].rate_of_previous, Some(0.75));
        let o = &funnel.outcomes;
        assert_eq!(
            (
                o.open,
                o.tandem,
                o.declined_by_mentor,
                o.declined_by_company
            ),
            (3, 4, 2, 1)
        );
    }

    #[test]
    fn an_empty_network_has_no_rates() {
        let funnel = Funnel::from_counts(&[], (0, 0));
        assert!(funnel.stages.iter().all(|s| s.count == 0));
        assert!(funnel.stages.iter().all(|s| s.rate_of_previous.is_none()));
        assert_eq!(share(0, 0), None);
    }
}
