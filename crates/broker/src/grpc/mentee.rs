//! `MenteeService`: what member companies call, each call on behalf of the company its API key
//! is bound to.

use std::sync::Arc;

use tandem_proto::mentee_service_server::MenteeService;
use tandem_proto::{
    ContactCard, EraseMenteeRequest, GetContactCardRequest, GetMenteeRequest, ListMenteesRequest,
    ListMenteesResponse, ListProposalsRequest, ListProposalsResponse, Mentee, Proposal,
    RespondToProposalRequest, SubmitMenteeRequest, WithdrawMenteeRequest,
};
use tandem_proto::{
    EndTandemRequest, GetTandemRequest, GiveFeedbackRequest, ListTandemsRequest,
    ListTandemsResponse, RecordCheckInRequest, ReviewGoalsRequest, StartTandemRequest, Tandem,
};
use tonic::{Request, Response, Status};

use super::company;
use crate::Broker;

/// The `MenteeService` handlers over a [`Broker`].
#[derive(Debug, Clone)]
pub struct MenteeGrpc {
    broker: Arc<Broker>,
}

impl MenteeGrpc {
    /// Returns the service over `broker`.
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }
}

#[tonic::async_trait]
impl MenteeService for MenteeGrpc {
    #[tracing::instrument(name = "MenteeService/SubmitMentee", skip_all, fields(company))]
    async fn submit_mentee(
        &self,
        request: Request<SubmitMenteeRequest>,
    ) -> Result<Response<Mentee>, Status> {
        let company = company(&request)?;
        let mentee = self
            .broker
            .submit_mentee(&company, request.into_inner())
            .await?;
        Ok(Response::new(mentee))
    }

    #[tracing::instrument(name = "MenteeService/GetMentee", skip_all, fields(company))]
    async fn get_mentee(
        &self,
        request: Request<GetMenteeRequest>,
    ) -> Result<Response<Mentee>, Status> {
        let company = company(&request)?;
        let mentee = self
            .broker
            .get_mentee(&company, &request.get_ref().mentee_id)
            .await?;
        Ok(Response::new(mentee))
    }

    #[tracing::instrument(name = "MenteeService/ListMentees", skip_all, fields(company))]
    async fn list_mentees(
        &self,
        request: Request<ListMenteesRequest>,
    ) -> Result<Response<ListMenteesResponse>, Status> {
        let company = company(&request)?;
        let mentees = self.broker.list_mentees(&company).await?;
        Ok(Response::new(ListMenteesResponse { mentees }))
    }

    #[tracing::instrument(name = "MenteeService/WithdrawMentee", skip_all, fields(company))]
    async fn withdraw_mentee(
        &self,
        request: Request<WithdrawMenteeRequest>,
    ) -> Result<Response<Mentee>, Status> {
        let company = company(&request)?;
        let mentee = self
            .broker
            .withdraw_mentee(&company, &request.get_ref().mentee_id)
            .await?;
        Ok(Response::new(mentee))
    }

    #[tracing::instrument(name = "MenteeService/ListProposals", skip_all, fields(company))]
    async fn list_proposals(
        &self,
        request: Request<ListProposalsRequest>,
    ) -> Result<Response<ListProposalsResponse>, Status> {
        let company = company(&request)?;
        let proposals = self
            .broker
            .list_proposals(&company, &request.get_ref().mentee_id)
            .await?;
        Ok(Response::new(ListProposalsResponse { proposals }))
    }

    #[tracing::instrument(name = "MenteeService/RespondToProposal", skip_all, fields(company))]
    async fn respond_to_proposal(
        &self,
        request: Request<RespondToProposalRequest>,
    ) -> Result<Response<Proposal>, Status> {
        let company = company(&request)?;
        let RespondToProposalRequest {
            proposal_id,
            decision,
        } = request.into_inner();
        let proposal = self
            .broker
            .respond_to_proposal(&company, &proposal_id, decision)
            .await?;
        Ok(Response::new(proposal))
    }

    #[tracing::instrument(name = "MenteeService/GetContactCard", skip_all, fields(company))]
    async fn get_contact_card(
        &self,
        request: Request<GetContactCardRequest>,
    ) -> Result<Response<ContactCard>, Status> {
        let company = company(&request)?;
        let card = self
            .broker
            .get_contact_card(&company, &request.get_ref().proposal_id)
            .await?;
        Ok(Response::new(card))
    }

    #[tracing::instrument(name = "MenteeService/GetTandem", skip_all, fields(company))]
    async fn get_tandem(
        &self,
        request: Request<GetTandemRequest>,
    ) -> Result<Response<Tandem>, Status> {
        let company = company(&request)?;
        let t = self
            .broker
            .get_tandem(&company, &request.get_ref().tandem_id)
            .await?;
        Ok(Response::new(t))
    }

    #[tracing::instrument(name = "MenteeService/ListTandems", skip_all, fields(company))]
    async fn list_tandems(
        &self,
        request: Request<ListTandemsRequest>,
    ) -> Result<Response<ListTandemsResponse>, Status> {
        let company = company(&request)?;
        let tandems = self
            .broker
            .list_tandems(&company, &request.get_ref().filter_id)
            .await?;
        Ok(Response::new(ListTandemsResponse { tandems }))
    }

    #[tracing::instrument(name = "MenteeService/StartTandem", skip_all, fields(company))]
    async fn start_tandem(
        &self,
        request: Request<StartTandemRequest>,
    ) -> Result<Response<Tandem>, Status> {
        let company = company(&request)?;
        let StartTandemRequest { tandem_id, plan } = request.into_inner();
        let t = self.broker.start_tandem(&company, &tandem_id, plan).await?;
        Ok(Response::new(t))
    }

    #[tracing::instrument(name = "MenteeService/RecordCheckIn", skip_all, fields(company))]
    async fn record_check_in(
        &self,
        request: Request<RecordCheckInRequest>,
    ) -> Result<Response<Tandem>, Status> {
        let company = company(&request)?;
        let RecordCheckInRequest {
            tandem_id,
            check_in,
        } = request.into_inner();
        let t = self
            .broker
            .record_check_in(&company, &tandem_id, check_in)
            .await?;
        Ok(Response::new(t))
    }

    #[tracing::instrument(name = "MenteeService/ReviewGoals", skip_all, fields(company))]
    async fn review_goals(
        &self,
        request: Request<ReviewGoalsRequest>,
    ) -> Result<Response<Tandem>, Status> {
        let company = company(&request)?;
        let ReviewGoalsRequest { tandem_id, point } = request.into_inner();
        let t = self
            .broker
            .review_goals(&company, &tandem_id, point)
            .await?;
        Ok(Response::new(t))
    }

    #[tracing::instrument(name = "MenteeService/EndTandem", skip_all, fields(company))]
    async fn end_tandem(
        &self,
        request: Request<EndTandemRequest>,
    ) -> Result<Response<Tandem>, Status> {
        let company = company(&request)?;
        let EndTandemRequest { tandem_id, reason } = request.into_inner();
        let t = self.broker.end_tandem(&company, &tandem_id, reason).await?;
        Ok(Response::new(t))
    }

    #[tracing::instrument(name = "MenteeService/GiveFeedback", skip_all, fields(company))]
    async fn give_feedback(
        &self,
        request: Request<GiveFeedbackRequest>,
    ) -> Result<Response<Tandem>, Status> {
        let company = company(&request)?;
        let GiveFeedbackRequest {
            tandem_id,
            feedback,
        } = request.into_inner();
        let t = self
            .broker
            .give_feedback(&company, &tandem_id, feedback)
            .await?;
        Ok(Response::new(t))
    }

    #[tracing::instrument(name = "MenteeService/EraseMentee", skip_all, fields(company))]
    async fn erase_mentee(
        &self,
        request: Request<EraseMenteeRequest>,
    ) -> Result<Response<Mentee>, Status> {
        let company = company(&request)?;
        let mentee = self
            .broker
            .erase_mentee(&company, &request.get_ref().mentee_id)
            .await?;
        Ok(Response::new(mentee))
    }
}
