//! The state changes of a proposal and its mentee, each one conditional update so that two
//! callers racing on the same proposal (a sync bringing the mentor's answer, the company
//! answering, the expiry job) cannot both apply or undo each other: whoever comes second sees
//! the first's result.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use tandem_domain::lifecycle::Rules;
use tandem_proto::{CompanyDecision, MenteeStatus, MentorDecision, ProposalStatus};
use tandem_storage::broker::{mentee, proposal};

use crate::{BrokerError, outbox};

/// How an open proposal ends without a tandem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The mentor declined at the node.
    MentorDeclined,
    /// The company declined.
    CompanyDeclined,
    /// Nobody answered in time.
    Expired,
    /// The company withdrew the mentee.
    MenteeWithdrawn,
    /// The node withdrew the mentor's profile.
    MentorWithdrawn,
}

impl Ending {
    fn status(self) -> ProposalStatus {
        match self {
            Self::MentorDeclined => ProposalStatus::DeclinedByMentor,
            Self::CompanyDeclined => ProposalStatus::DeclinedByCompany,
            Self::Expired => ProposalStatus::Expired,
            Self::MenteeWithdrawn | Self::MentorWithdrawn => ProposalStatus::Withdrawn,
        }
    }

    /// Returns why the node is told to close the introduction; none when the node itself
    /// ended it.
    fn close_reason(self) -> Option<&'static str> {
        match self {
            Self::MentorDeclined => None,
            Self::CompanyDeclined => Some("company_declined"),
            Self::Expired => Some("expired"),
            Self::MenteeWithdrawn => Some("mentee_withdrawn"),
            Self::MentorWithdrawn => Some("mentor_withdrawn"),
        }
    }
}

/// Ends an open proposal: the mentee waits again (unless it was withdrawn) and the node is
/// told to close the introduction. Returns false when the proposal was no longer open.
pub(crate) async fn end_proposal(
    conn: &impl ConnectionTrait,
    p: &proposal::Model,
    ending: Ending,
    now: i64,
) -> Result<bool, BrokerError> {
    let mut update = proposal::Entity::update_many()
        .col_expr(
            proposal::Column::Status,
            Expr::value(ending.status() as i32),
        )
        .col_expr(proposal::Column::UpdatedAtMs, Expr::value(now))
        .filter(proposal::Column::Id.eq(&p.id))
        .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32));
    update = match ending {
        Ending::MentorDeclined => update.col_expr(
            proposal::Column::MentorDecision,
            Expr::value(MentorDecision::Declined as i32),
        ),
        Ending::CompanyDeclined => update.col_expr(
            proposal::Column::CompanyDecision,
            Expr::value(CompanyDecision::Declined as i32),
        ),
        _ => update,
    };
    if update.exec(conn).await?.rows_affected == 0 {
        return Ok(false);
    }
    leave_proposed(conn, &p.mentee_id, MenteeStatus::Waiting, now).await?;
    if let Some(reason) = ending.close_reason() {
        outbox::enqueue(conn, vec![outbox::close_message(p, reason, now)]).await?;
    }
    tracing::info!(proposal = %p.id, ending = ?ending, "proposal ended");
    Ok(true)
}

/// Ends every open proposal of a mentee its company no longer offers (withdrawn, or its
/// membership ended), telling the mentors' nodes; returns how many ended.
pub(crate) async fn end_open_proposals(
    conn: &impl ConnectionTrait,
    mentee_id: &str,
    now: i64,
) -> Result<usize, BrokerError> {
    let open = proposal::Entity::find()
        .filter(proposal::Column::MenteeId.eq(mentee_id))
        .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32))
        .all(conn)
        .await?;
    let mut ended = 0;
    for p in &open {
        if end_proposal(conn, p, Ending::MenteeWithdrawn, now).await? {
            ended += 1;
        }
    }
    Ok(ended)
}

/// Records one side's yes on an open proposal: sets `own` to `yes` and makes the proposal a
/// tandem when `other` already holds `other_yes`. The proposal must also meet `only`. Returns
/// false when no such open proposal exists.
async fn record_yes(
    conn: &impl ConnectionTrait,
    id: &str,
    only: Condition,
    (own, yes): (proposal::Column, i32),
    (other, other_yes): (proposal::Column, i32),
    now: i64,
    rules: Rules,
) -> Result<bool, BrokerError> {
    let tandem_if = Expr::case(other.eq(other_yes), ProposalStatus::Tandem as i32)
        .finally(Expr::col(proposal::Column::Status));
    let update = proposal::Entity::update_many()
        .col_expr(own, Expr::value(yes))
        .col_expr(proposal::Column::Status, tandem_if.into())
        .col_expr(proposal::Column::UpdatedAtMs, Expr::value(now))
        .filter(proposal::Column::Id.eq(id))
        .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32))
        .filter(only);
    if update.exec(conn).await?.rows_affected == 0 {
        return Ok(false);
    }
    complete_if_tandem(conn, id, now, rules).await?;
    Ok(true)
}

/// Records the mentor's acceptance of an open proposal of `node_id`; the tandem exists when
/// the company had already confirmed. Returns false when no such open proposal exists, or
/// when the broker already knew of the acceptance (asked the node for it, then synced it).
pub(crate) async fn mentor_accepted(
    conn: &impl ConnectionTrait,
    id: &str,
    node_id: &str,
    now: i64,
    rules: Rules,
) -> Result<bool, BrokerError> {
    let own = (
        proposal::Column::MentorDecision,
        MentorDecision::Accepted as i32,
    );
    let other = (
        proposal::Column::CompanyDecision,
        CompanyDecision::Confirmed as i32,
    );
    let only = Condition::all()
        .add(proposal::Column::NodeId.eq(node_id))
        .add(proposal::Column::MentorDecision.ne(MentorDecision::Accepted as i32));
    record_yes(conn, id, only, own, other, now, rules).await
}

/// Records the company's confirmation of an open proposal; the tandem exists when the mentor
/// had already accepted. Returns false when the proposal was no longer open.
pub(crate) async fn company_confirmed(
    conn: &impl ConnectionTrait,
    id: &str,
    now: i64,
    rules: Rules,
) -> Result<bool, BrokerError> {
    let own = (
        proposal::Column::CompanyDecision,
        CompanyDecision::Confirmed as i32,
    );
    let other = (
        proposal::Column::MentorDecision,
        MentorDecision::Accepted as i32,
    );
    record_yes(conn, id, Condition::all(), own, other, now, rules).await
}

/// Moves the mentee into the tandem when the proposal became one, and starts the tandem's
/// lifecycle record.
async fn complete_if_tandem(
    conn: &impl ConnectionTrait,
    id: &str,
    now: i64,
    rules: Rules,
) -> Result<(), BrokerError> {
    let Some(p) = proposal::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
    else {
        return Ok(());
    };
    if p.status != ProposalStatus::Tandem as i32 {
        return Ok(());
    }
    leave_proposed(conn, &p.mentee_id, MenteeStatus::InTandem, now).await?;
    crate::tandems::form(conn, &p, now, rules).await?;
    tracing::info!(proposal = %p.id, node = %p.node_id, cross_node = p.cross_node, "tandem formed");
    Ok(())
}

/// Moves a mentee that is still PROPOSED to `status`, clearing its waiting reason; a mentee
/// that moved on meanwhile (withdrawn, erased) is left alone.
async fn leave_proposed(
    conn: &impl ConnectionTrait,
    mentee_id: &str,
    status: MenteeStatus,
    now: i64,
) -> Result<(), BrokerError> {
    mentee::Entity::update_many()
        .col_expr(mentee::Column::Status, Expr::value(status as i32))
        .col_expr(mentee::Column::WaitingReason, Expr::value(""))
        .col_expr(mentee::Column::WaitingDetail, Expr::value(""))
        .col_expr(mentee::Column::UpdatedAtMs, Expr::value(now))
        .filter(mentee::Column::Id.eq(mentee_id))
        .filter(mentee::Column::Status.eq(MenteeStatus::Proposed as i32))
        .exec(conn)
        .await?;
    Ok(())
}
