//! Mentee erasure: a company withdraws a mentee and has the network forget what it knew.
//!
//! In one transaction the mentee is withdrawn (open proposals end and their nodes are told to
//! close, as on withdrawal), its needs and goals are deleted and the row becomes a tombstone (id,
//! company, status `WITHDRAWN`, `erased_at_ms`); the idempotency key, which the company chose
//! and which might name the person, is replaced by `erased-<id>`. The score reasons of its
//! proposals (they describe the goals) are emptied, and so are the payloads of the outbox
//! messages that carried its summary; one still waiting is cancelled instead of delivered.
//! Every node that was sent an introduction for the mentee gets a `ForgetMentee` message
//! through the outbox, after any earlier message for that introduction.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tandem_proto::{Mentee, MenteeStatus, ProposalStatus};
use tandem_storage::broker::{mentee, outbox as outbox_row, proposal};

use crate::proposal_state::{self, Ending};
use crate::{Broker, BrokerError, audit, convert, outbox};

/// `last_error` of a delivery cancelled because its mentee was erased.
const CANCELLED: &str = "cancelled: mentee erased";

impl Broker {
    /// Withdraws and erases one of the company's mentees and returns its tombstone. Erasing
    /// twice returns the same tombstone; another company's mentee is `NotFound`.
    #[tracing::instrument(skip(self))]
    pub async fn erase_mentee(
        &self,
        company: &str,
        mentee_id: &str,
    ) -> Result<Mentee, BrokerError> {
        let now = self.now().max(1);
        let txn = self.write().await?;
        let m = self.own_mentee(&*txn, company, mentee_id).await?;
        if m.erased_at_ms != 0 {
            return convert::mentee(&m);
        }
        let proposals = proposal::Entity::find()
            .filter(proposal::Column::MenteeId.eq(&m.id))
            .all(&*txn)
            .await?;
        let mut ended = 0;
        for p in proposals
            .iter()
            .filter(|p| p.status == ProposalStatus::Open as i32)
        {
            if proposal_state::end_proposal(&*txn, p, Ending::MenteeWithdrawn, now).await? {
                ended += 1;
            }
        }
        mentee::Entity::update_many()
            .col_expr(
                mentee::Column::Status,
                Expr::value(MenteeStatus::Withdrawn as i32),
            )
            .col_expr(mentee::Column::Needs, Expr::value(""))
            .col_expr(mentee::Column::RequestHash, Expr::value(""))
            .col_expr(
                mentee::Column::IdempotencyKey,
                Expr::value(format!("erased-{}", m.id)),
            )
            .col_expr(mentee::Column::WaitingReason, Expr::value(""))
            .col_expr(mentee::Column::WaitingDetail, Expr::value(""))
            .col_expr(mentee::Column::UpdatedAtMs, Expr::value(now))
            .col_expr(mentee::Column::ErasedAtMs, Expr::value(now))
            .filter(mentee::Column::Id.eq(&m.id))
            .exec(&*txn)
            .await?;

        let ids: Vec<String> = proposals.iter().map(|p| p.id.clone()).collect();
        if !ids.is_empty() {
            proposal::Entity::update_many()
                .col_expr(proposal::Column::Reasons, Expr::value("[]"))
                .filter(proposal::Column::Id.is_in(ids.clone()))
                .exec(&*txn)
                .await?;
            let deliveries = outbox_row::Entity::find()
                .filter(outbox_row::Column::Kind.eq(outbox_row::DELIVER))
                .filter(outbox_row::Column::IntroductionId.is_in(ids.clone()))
                .all(&*txn)
                .await?;
            // A delivery still waiting is cancelled: the summary never leaves the broker.
            outbox_row::Entity::update_many()
                .col_expr(outbox_row::Column::DeliveredAtMs, Expr::value(now))
                .col_expr(outbox_row::Column::LastError, Expr::value(CANCELLED))
                .filter(outbox_row::Column::Kind.eq(outbox_row::DELIVER))
                .filter(outbox_row::Column::IntroductionId.is_in(ids.clone()))
                .filter(outbox_row::Column::DeliveredAtMs.eq(0))
                .exec(&*txn)
                .await?;
            outbox_row::Entity::update_many()
                .col_expr(outbox_row::Column::Payload, Expr::value(Vec::<u8>::new()))
                .filter(outbox_row::Column::Kind.eq(outbox_row::DELIVER))
                .filter(outbox_row::Column::IntroductionId.is_in(ids))
                .exec(&*txn)
                .await?;
            // Every introduction that was (or, in a delivery pass running right now, may be)
            // sent gets a forget message. For one it never got the node keeps a tombstone and
            // refuses the delivery should it still arrive (from another replica's pass).
            let forget: Vec<_> = deliveries
                .iter()
                .filter_map(|d| proposals.iter().find(|p| p.id == d.introduction_id))
                .map(|p| outbox::forget_message(p, now))
                .collect();
            outbox::enqueue(&*txn, forget).await?;
        }
        // A running tandem ends (the mentor's place is freed) and the tandem keeps no text the
        // company wrote about the mentee.
        let tandems = crate::tandems::erase_mentee(
            &*txn,
            company,
            &m.id,
            self.now().max(now),
            self.config.lifecycle_rules(),
        )
        .await?;
        let detail = format!(
            "ended_proposals={ended} proposals={} tandems={tandems}",
            proposals.len()
        );
        audit::record(
            &*txn,
            now,
            &audit::company(company),
            "mentee.erased",
            "mentee",
            &m.id,
            &detail,
        )
        .await?;
        let tombstone = self.own_mentee(&*txn, company, mentee_id).await?;
        txn.commit().await?;
        tracing::info!(mentee = %m.id, ended_proposals = ended, proposals = proposals.len(), "mentee erased");
        if !proposals.is_empty() || tandems > 0 {
            self.wake_outbox();
        }
        convert::mentee(&tombstone)
    }
}
