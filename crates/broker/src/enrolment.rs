//! Enrolment: a member company exchanges the one-time code its association handed it for its
//! `company` API key (`EnrolmentService.EnrolCompany`, called without a key).
//!
//! The broker knows the code only as the hash in the membership the company's node published
//! (see `memberships`). A code the broker does not know yet may belong to a company admitted
//! since the last sync, so the broker pulls the nodes' membership feeds once before it refuses.
//! Wrong, used, expired and removed codes all get the same refusal; calls are rate-limited per
//! peer address, so that nobody can try codes in bulk. Marking the code used and creating the
//! key are one transaction, conditional on the code being unused: one code gives one key, even
//! to two calls at the same moment.

use std::net::IpAddr;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tandem_domain::{Violations, validate};
use tandem_proto::{EnrolCompanyRequest, EnrolCompanyResponse};
use tandem_service::auth::AuthError;
use tandem_service::keys::{self, Grant};
use tandem_service::{Scope, enrolment};
use tandem_storage::broker::membership;

use crate::{Broker, BrokerError, audit};

impl Broker {
    /// Exchanges an enrolment code for a `company` API key bound to the code's membership,
    /// returned this once. `peer` is the caller's address, whose rate of attempts is limited.
    #[tracing::instrument(skip_all, fields(peer = ?peer))]
    pub async fn enrol_company(
        &self,
        peer: Option<IpAddr>,
        request: EnrolCompanyRequest,
    ) -> Result<EnrolCompanyResponse, BrokerError> {
        let caller = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_canonical().to_string());
        self.enrolment_limiter
            .admit(&caller)
            .map_err(|_| AuthError::RateLimited)?;
        let mut found = Violations::new();
        found.check(validate::label("label", &request.label));
        let hash = found.check(enrolment::parse("enrolment_code", &request.enrolment_code));
        let hash = found.finish(|| hash)?;

        let open = match self.open_membership(&hash).await? {
            Some(m) => m,
            None => {
                // Perhaps admitted since the last sync.
                self.pull_all_memberships().await?;
                self.open_membership(&hash).await?.ok_or_else(|| {
                    tracing::info!(peer = %caller, "enrolment code not accepted");
                    BrokerError::CodeNotAccepted
                })?
            }
        };

        let now = self.now();
        let txn = self.write().await?;
        let used = membership::Entity::update_many()
            .col_expr(membership::Column::CodeUsedAtMs, Expr::value(now.max(1)))
            .filter(membership::Column::CompanyId.eq(&open.company_id))
            .filter(accepting(&hash, now))
            .exec(&*txn)
            .await?;
        if used.rows_affected == 0 {
            // Another call exchanged the code, or the node replaced it, since we looked.
            return Err(BrokerError::CodeNotAccepted);
        }
        let actor = audit::company(&open.company_id);
        let grant = Grant {
            scope: Scope::Company,
            tenant: &open.company_id,
            label: &request.label,
        };
        let (key, api_key) = keys::create(&*txn, now, &actor, grant).await?;
        let detail = format!("node={} key_id={}", open.node_id, key.id);
        audit::record(
            &*txn,
            now,
            &actor,
            "company.enrolled",
            "membership",
            &open.company_id,
            &detail,
        )
        .await?;
        txn.commit().await?;
        tracing::info!(
            company = %open.company_id,
            node = %open.node_id,
            key_id = %key.id,
            "company enrolled"
        );
        Ok(EnrolCompanyResponse {
            api_key,
            key_id: key.id,
            company_id: open.company_id,
            node_id: open.node_id,
        })
    }

    /// Returns the current membership whose open, unused, unexpired code has `hash`.
    async fn open_membership(&self, hash: &str) -> Result<Option<membership::Model>, BrokerError> {
        Ok(membership::Entity::find()
            .filter(accepting(hash, self.now()))
            .one(self.db())
            .await?)
    }
}

/// Matches a current membership whose code has `hash` and is neither used nor expired at
/// `now`.
fn accepting(hash: &str, now: i64) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(membership::Column::CodeHash.eq(hash))
        .add(membership::Column::CodeUsedAtMs.eq(0))
        .add(membership::Column::CodeExpiresAtMs.gte(now))
        .add(membership::Column::Active.eq(true))
}
