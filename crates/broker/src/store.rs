//! Database helpers shared by the broker's modules: the write transaction and small queries.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tandem_service::WriteTxn;
use tandem_storage::broker::{mentee, node, proposal};

use crate::{Broker, BrokerError};

impl Broker {
    /// Begins a write transaction under the broker's write lock.
    pub(crate) async fn write(&self) -> Result<WriteTxn<'_>, BrokerError> {
        Ok(self.writer.begin().await?)
    }

    /// Begins a write transaction that runs beside the broker's other writes on PostgreSQL
    /// (under the write lock on SQLite); see `Writer::begin_concurrent`.
    pub(crate) async fn write_concurrent(&self) -> Result<WriteTxn<'_>, BrokerError> {
        Ok(self.writer.begin_concurrent().await?)
    }

    /// Returns a registered node, or `NotFound`.
    pub(crate) async fn node(&self, id: &str) -> Result<node::Model, BrokerError> {
        node::Entity::find_by_id(id.to_owned())
            .one(self.db())
            .await?
            .ok_or(BrokerError::NotFound("node"))
    }

    /// Returns one of the company's mentees, or `NotFound` (also for another company's).
    pub(crate) async fn own_mentee(
        &self,
        conn: &impl ConnectionTrait,
        company: &str,
        id: &str,
    ) -> Result<mentee::Model, BrokerError> {
        mentee::Entity::find_by_id(id.to_owned())
            .filter(mentee::Column::CompanyId.eq(company))
            .one(conn)
            .await?
            .ok_or(BrokerError::NotFound("mentee"))
    }

    /// Returns one of the company's proposals, or `NotFound` (also for another company's).
    pub(crate) async fn own_proposal(
        &self,
        conn: &impl ConnectionTrait,
        company: &str,
        id: &str,
    ) -> Result<proposal::Model, BrokerError> {
        proposal::Entity::find_by_id(id.to_owned())
            .filter(proposal::Column::CompanyId.eq(company))
            .one(conn)
            .await?
            .ok_or(BrokerError::NotFound("proposal"))
    }
}
