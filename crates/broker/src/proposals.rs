//! What a company does with the proposals for its mentees: read them, confirm or decline
//! them, and fetch the mentor's contact card after the double opt-in. Also the expiry of
//! proposals nobody answered in time.
//!
//! A company's confirmation and its request for the card do not wait for the next sync to
//! learn the mentor's answer: when the broker has not heard it yet, it asks the mentor's node
//! for that one decision (`decisions`).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tandem_domain::FieldViolation;
use tandem_proto::{
    CompanyDecision, ContactCard, MentorDecision, Proposal, ProposalStatus,
    ReleaseContactCardRequest,
};
use tandem_storage::broker::proposal;

use crate::nodes::node_error;
use crate::proposal_state::{self, Ending};
use crate::{Broker, BrokerError, audit, convert};

/// Most proposals one expiry pass ends.
const EXPIRY_BATCH: u64 = 500;

impl Broker {
    /// Lists the proposals made for one of the company's mentees, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_proposals(
        &self,
        company: &str,
        mentee_id: &str,
    ) -> Result<Vec<Proposal>, BrokerError> {
        let m = self.own_mentee(self.db(), company, mentee_id).await?;
        proposal::Entity::find()
            .filter(proposal::Column::MenteeId.eq(&m.id))
            .filter(proposal::Column::CompanyId.eq(company))
            .order_by_desc(proposal::Column::CreatedAtMs)
            .order_by_desc(proposal::Column::Id)
            .all(self.db())
            .await?
            .iter()
            .map(convert::proposal)
            .collect()
    }

    /// Records the company's answer to one of its open proposals. A confirmation completes
    /// the tandem when the mentor already accepted; a decline sends the mentee back to waiting
    /// and tells the mentor's node.
    #[tracing::instrument(skip(self))]
    pub async fn respond_to_proposal(
        &self,
        company: &str,
        proposal_id: &str,
        decision: i32,
    ) -> Result<Proposal, BrokerError> {
        let decision = match CompanyDecision::try_from(decision) {
            Ok(d @ (CompanyDecision::Confirmed | CompanyDecision::Declined)) => d,
            _ => {
                return Err(
                    FieldViolation::new("decision", "must be CONFIRMED or DECLINED").into(),
                );
            }
        };
        if decision == CompanyDecision::Confirmed {
            // The mentor may have accepted at the node since the last sync: learning it now
            // lets this confirmation complete the tandem at once. Without the node the
            // confirmation still stands, and the sync brings the mentor's answer.
            let p = self.own_proposal(self.db(), company, proposal_id).await?;
            match self.learn_mentor_decision(&p).await {
                Ok(_) => {}
                Err(e @ BrokerError::NodeUnavailable { .. }) => {
                    tracing::warn!(proposal = %p.id, error = %e, "mentor decision not learnt");
                }
                Err(e) => return Err(e),
            }
        }
        let now = self.now();
        let txn = self.write().await?;
        let p = self.own_proposal(&*txn, company, proposal_id).await?;
        let applied = match decision {
            CompanyDecision::Confirmed => {
                proposal_state::company_confirmed(&*txn, &p.id, now, self.config.lifecycle_rules())
                    .await?
            }
            _ => proposal_state::end_proposal(&*txn, &p, Ending::CompanyDeclined, now).await?,
        };
        let updated = self.own_proposal(&*txn, company, proposal_id).await?;
        if !applied {
            let ending = match ending(&updated) {
                Some(e) => format!(": {e}"),
                None if updated.status == ProposalStatus::Tandem as i32 => {
                    ": both sides accepted".to_owned()
                }
                None => String::new(),
            };
            return Err(BrokerError::WrongState(format!(
                "proposal is no longer open{ending}"
            )));
        }
        let action = match decision {
            CompanyDecision::Confirmed => "proposal.confirmed",
            _ => "proposal.declined",
        };
        audit::record(
            &*txn,
            now,
            &audit::company(company),
            action,
            "proposal",
            &p.id,
            "",
        )
        .await?;
        txn.commit().await?;
        tracing::info!(proposal = %p.id, decision = ?decision, "company answered");
        // A decline closes the introduction at the node; a confirmation that completed the
        // tandem gives the node its copy. The lanes take them there; nobody waits for it.
        self.wake_outbox();
        convert::proposal(&updated)
    }

    /// Fetches the mentor's contact card from the mentor's node for one of the company's
    /// tandems and relays it; the broker keeps nothing of it. When the broker has not heard
    /// the mentor's answer yet, it asks the node first, so a card is released as soon as both
    /// sides said yes; a refusal says which side has not.
    #[tracing::instrument(skip(self))]
    pub async fn get_contact_card(
        &self,
        company: &str,
        proposal_id: &str,
    ) -> Result<ContactCard, BrokerError> {
        let mut p = self.own_proposal(self.db(), company, proposal_id).await?;
        if self.learn_mentor_decision(&p).await? {
            p = self.own_proposal(self.db(), company, proposal_id).await?;
            if p.status == ProposalStatus::Tandem as i32 {
                // The tandem just formed: the node gets its copy as after a sync.
                self.wake_outbox();
            }
        }
        if p.status != ProposalStatus::Tandem as i32 {
            return Err(BrokerError::WrongState(format!(
                "contact card is released only after both sides accepted: {}",
                missing_yes(&p)
            )));
        }
        let n = self.node(&p.node_id).await?;
        let mut client = self.node_client(&n)?;
        let request = ReleaseContactCardRequest {
            introduction_id: p.id.clone(),
        };
        let mut card = match client.release_contact_card(request).await {
            Ok(response) => response.into_inner(),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                return Err(BrokerError::WrongState(
                    "the mentor's node does not release the contact card".to_owned(),
                ));
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                return Err(BrokerError::NotFound("contact card"));
            }
            Err(s) => return Err(node_error(&n.id, &s)),
        };
        if card.node_id.is_empty() {
            card.node_id = p.node_id.clone();
        }
        let detail = format!("node={}", p.node_id);
        audit::record(
            self.db(),
            self.now(),
            &audit::company(company),
            "contact_card.released",
            "proposal",
            &p.id,
            &detail,
        )
        .await?;
        tracing::info!(proposal = %p.id, node = %p.node_id, "contact card relayed");
        Ok(card)
    }

    /// Ends open proposals whose time ran out: the mentees wait again and the nodes are told.
    /// Returns how many expired.
    #[tracing::instrument(skip(self))]
    pub async fn expire_proposals(&self) -> Result<usize, BrokerError> {
        let now = self.now();
        let mut expired = 0;
        loop {
            let txn = self.write().await?;
            let due = proposal::Entity::find()
                .filter(proposal::Column::Status.eq(ProposalStatus::Open as i32))
                .filter(proposal::Column::ExpiresAtMs.lt(now))
                .order_by_asc(proposal::Column::ExpiresAtMs)
                .limit(EXPIRY_BATCH)
                .all(&*txn)
                .await?;
            let batch = due.len();
            for p in &due {
                if proposal_state::end_proposal(&*txn, p, Ending::Expired, now).await? {
                    audit::record(
                        &*txn,
                        now,
                        audit::BROKER,
                        "proposal.expired",
                        "proposal",
                        &p.id,
                        "",
                    )
                    .await?;
                    expired += 1;
                }
            }
            txn.commit().await?;
            if u64::try_from(batch).unwrap_or(u64::MAX) < EXPIRY_BATCH {
                break;
            }
        }
        if expired > 0 {
            tracing::info!(expired, "proposals expired");
        }
        Ok(expired)
    }
}

/// Says how a proposal that is no longer open ended; none while it is open or a tandem.
fn ending(p: &proposal::Model) -> Option<&'static str> {
    match ProposalStatus::try_from(p.status).ok()? {
        ProposalStatus::DeclinedByMentor => Some("the mentor declined"),
        ProposalStatus::DeclinedByCompany => Some("the company declined"),
        ProposalStatus::Expired => Some("the proposal expired"),
        ProposalStatus::Withdrawn => Some("the proposal was withdrawn"),
        ProposalStatus::Open | ProposalStatus::Tandem | ProposalStatus::Unspecified => None,
    }
}

/// Says which side of a proposal that is not a tandem has not said yes, or how it ended.
fn missing_yes(p: &proposal::Model) -> &'static str {
    if let Some(ending) = ending(p) {
        return ending;
    }
    let mentor = p.mentor_decision == MentorDecision::Accepted as i32;
    let company = p.company_decision == CompanyDecision::Confirmed as i32;
    match (mentor, company) {
        (false, false) => "the mentor has not accepted yet and the company has not confirmed yet",
        (false, true) => "the mentor has not accepted yet",
        (true, false) => "the company has not confirmed yet",
        // Both said yes, so the proposal is a tandem; only a broken row gets here.
        (true, true) => "the proposal is in an unknown state",
    }
}
