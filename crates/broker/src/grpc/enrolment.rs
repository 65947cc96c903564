//! `EnrolmentService`: what a member company calls, without a key, to exchange its enrolment
//! code for one. Served outside the gate; the broker limits attempts per peer address.

use std::sync::Arc;

use tandem_proto::enrolment_service_server::EnrolmentService;
use tandem_proto::{EnrolCompanyRequest, EnrolCompanyResponse};
use tonic::{Request, Response, Status};

use crate::Broker;

/// The `EnrolmentService` handlers over a [`Broker`].
#[derive(Debug, Clone)]
pub struct EnrolmentGrpc {
    broker: Arc<Broker>,
}

impl EnrolmentGrpc {
    /// Returns the service over `broker`.
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }
}

#[tonic::async_trait]
impl EnrolmentService for EnrolmentGrpc {
    #[tracing::instrument(name = "EnrolmentService/EnrolCompany", skip_all)]
    async fn enrol_company(
        &self,
        request: Request<EnrolCompanyRequest>,
    ) -> Result<Response<EnrolCompanyResponse>, Status> {
        // The TCP peer, also behind the broker's TLS (its connections report their TCP info).
        let peer = request.remote_addr().map(|addr| addr.ip());
        let enrolled = self
            .broker
            .enrol_company(peer, request.into_inner())
            .await?;
        Ok(Response::new(enrolled))
    }
}
