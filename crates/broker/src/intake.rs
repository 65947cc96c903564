//! Mentee intake: a company submits, reads, lists and withdraws its own mentees.
//!
//! Only a company with a current membership submits. What the matching needs to know about
//! the company itself — its employer and group tokens for the conflict check, and its home
//! node — comes from that membership (see `memberships`), never from the request.
//!
//! Submission is idempotent per company on the idempotency key: the same key with the same
//! request returns the original mentee, the same key with another request is refused.

use prost::Message;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};
use tandem_domain::{Violations, validate};
use tandem_proto::{Mentee, MenteeStatus, SubmitMenteeRequest};
use tandem_storage::broker::mentee;

use crate::proposal_state;
use crate::{Broker, BrokerError, audit, convert};

impl Broker {
    /// Validates and stores a mentee for `company`, with the tokens and home node of its
    /// membership, or returns the one stored earlier under the same idempotency key with the
    /// same request. A company without a current membership is refused.
    #[tracing::instrument(skip(self, request), fields(key = %request.idempotency_key))]
    pub async fn submit_mentee(
        &self,
        company: &str,
        request: SubmitMenteeRequest,
    ) -> Result<Mentee, BrokerError> {
        // Who the company is comes from its membership, before anything it sent is looked at.
        let employer = self.employer(company).await?;
        let mut found = Violations::new();
        found.check(validate::idempotency_key(&request.idempotency_key));
        let Some(mentee_request) = request.mentee else {
            found.add("mentee", "is required");
            return Err(found.into());
        };
        let needs = found.check(validate::mentee(&mentee_request, &employer));
        let needs = found.finish(|| needs)?;
        let hash = hex::encode(Sha256::digest(mentee_request.encode_to_vec()));
        let key = request.idempotency_key;
        if let Some(existing) = self.by_key(company, &key).await? {
            return replay(&existing, &hash);
        }
        let now = self.now();
        let row = mentee::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            company_id: Set(company.to_owned()),
            idempotency_key: Set(key.clone()),
            request_hash: Set(hash.clone()),
            needs: Set(serde_json::to_string(&needs)
                .map_err(|e| BrokerError::Corrupt(format!("mentee needs: {e}")))?),
            status: Set(MenteeStatus::Waiting as i32),
            waiting_reason: Set(String::new()),
            waiting_detail: Set(String::new()),
            submitted_at_ms: Set(now),
            updated_at_ms: Set(now),
            erased_at_ms: Set(0),
        };
        // An insert under the unique index of (company, key): it needs no order with the
        // broker's other writes, and a submission never waits for a round's write on
        // PostgreSQL.
        let txn = self.write_concurrent().await?;
        // The membership is read again under a shared row lock, so that a removal committing
        // meanwhile either waits for this submission (and then withdraws it) or is seen here.
        crate::memberships::lock_active(&*txn, company).await?;
        let inserted = row.insert(&*txn).await;
        match inserted {
            Ok(stored) => {
                audit::record(
                    &*txn,
                    now,
                    &audit::company(company),
                    "mentee.submitted",
                    "mentee",
                    &stored.id,
                    "",
                )
                .await?;
                txn.commit().await?;
                tracing::info!(mentee = %stored.id, "mentee submitted");
                convert::mentee(&stored)
            }
            Err(err) => {
                drop(txn);
                // Another request with the same key won the race for the unique index.
                match self.by_key(company, &key).await? {
                    Some(existing) => replay(&existing, &hash),
                    None => Err(err.into()),
                }
            }
        }
    }

    async fn by_key(&self, company: &str, key: &str) -> Result<Option<mentee::Model>, BrokerError> {
        Ok(mentee::Entity::find()
            .filter(mentee::Column::CompanyId.eq(company))
            .filter(mentee::Column::IdempotencyKey.eq(key))
            .one(self.db())
            .await?)
    }

    /// Returns one of the company's mentees.
    #[tracing::instrument(skip(self))]
    pub async fn get_mentee(&self, company: &str, mentee_id: &str) -> Result<Mentee, BrokerError> {
        convert::mentee(&self.own_mentee(self.db(), company, mentee_id).await?)
    }

    /// Lists the company's mentees, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_mentees(&self, company: &str) -> Result<Vec<Mentee>, BrokerError> {
        mentee::Entity::find()
            .filter(mentee::Column::CompanyId.eq(company))
            .order_by_asc(mentee::Column::SubmittedAtMs)
            .order_by_asc(mentee::Column::Id)
            .all(self.db())
            .await?
            .iter()
            .map(convert::mentee)
            .collect()
    }

    /// Withdraws one of the company's mentees: it leaves matching, its open proposals end and
    /// the mentors' nodes are told. Withdrawing twice is harmless.
    #[tracing::instrument(skip(self))]
    pub async fn withdraw_mentee(
        &self,
        company: &str,
        mentee_id: &str,
    ) -> Result<Mentee, BrokerError> {
        let now = self.now();
        let txn = self.write().await?;
        let m = self.own_mentee(&*txn, company, mentee_id).await?;
        if m.status == MenteeStatus::Withdrawn as i32 {
            return convert::mentee(&m);
        }
        mark_withdrawn(&*txn, &m.id, now, &[]).await?;
        let ended = proposal_state::end_open_proposals(&*txn, &m.id, now).await?;
        // A running tandem ends too: the mentor's place is freed.
        let tandems = crate::tandems::end_running(
            &*txn,
            company,
            &m.id,
            self.now().max(now),
            self.config.lifecycle_rules(),
        )
        .await?;
        let stored = self.own_mentee(&*txn, company, mentee_id).await?;
        let detail = format!("ended_proposals={ended}");
        audit::record(
            &*txn,
            now,
            &audit::company(company),
            "mentee.withdrawn",
            "mentee",
            &m.id,
            &detail,
        )
        .await?;
        txn.commit().await?;
        tracing::info!(mentee = %m.id, ended_proposals = ended, "mentee withdrawn");
        if ended > 0 || !tandems.is_empty() {
            self.wake_outbox();
        }
        convert::mentee(&stored)
    }
}

/// Answers a repeated submission: the original mentee for the same request, a conflict for
/// another.
fn replay(existing: &mentee::Model, hash: &str) -> Result<Mentee, BrokerError> {
    if existing.request_hash == hash {
        convert::mentee(existing)
    } else {
        Err(BrokerError::IdempotencyKeyReused)
    }
}

/// Sets a mentee's status to WITHDRAWN (clearing its waiting reason) when its status is one of
/// `from`, or whatever it is when `from` is empty. Returns whether it changed. Its proposals
/// and tandem are the caller's to end.
pub(crate) async fn mark_withdrawn(
    conn: &impl sea_orm::ConnectionTrait,
    mentee_id: &str,
    now: i64,
    from: &[MenteeStatus],
) -> Result<bool, sea_orm::DbErr> {
    let mut update = mentee::Entity::update_many()
        .col_expr(
            mentee::Column::Status,
            Expr::value(MenteeStatus::Withdrawn as i32),
        )
        .col_expr(mentee::Column::WaitingReason, Expr::value(""))
        .col_expr(mentee::Column::WaitingDetail, Expr::value(""))
        .col_expr(mentee::Column::UpdatedAtMs, Expr::value(now))
        .filter(mentee::Column::Id.eq(mentee_id));
    if !from.is_empty() {
        update = update.filter(mentee::Column::Status.is_in(from.iter().map(|s| *s as i32)));
    }
    Ok(update.exec(conn).await?.rows_affected > 0)
}
