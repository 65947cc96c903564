//! Thin tonic adapters: each handler converts the request, calls one [`NodeState`] method and
//! maps the error through the one `NodeError → Status` conversion.
//!
//! `NodeAdminService` is served behind the node's gate, which admits only this node's
//! `node-admin` keys; every handler starts with `let staff = staff(&request)?;` (the caller the
//! gate admitted), and state changes take that `staff` so the audit log names the key.
//! `NodeService` is reached only through the broker's mutual TLS.

use std::sync::Arc;

use tandem_proto::node_admin_service_server::NodeAdminService;
use tandem_proto::node_service_server::NodeService;
use tandem_proto::{
    AdmitCompanyRequest, AdmittedCompany, Company, GetCompanyRequest, GetMembershipChangesRequest,
    GetMembershipChangesResponse, IssueEnrolmentCodeRequest, ListCompaniesRequest,
    ListCompaniesResponse, RemoveCompanyRequest,
};
use tandem_proto::{
    CloseIntroductionRequest, CloseIntroductionResponse, ContactCard, CreateMentorRequest,
    DeliverIntroductionRequest, DeliverIntroductionResponse, DeliverIntroductionsRequest,
    DeliverIntroductionsResponse, ForgetMenteeRequest, ForgetMenteeResponse, GetDecisionRequest,
    GetDecisionsRequest, GetDecisionsResponse, GetMentorRequest, GetNodeInfoRequest,
    GetProfileChangesRequest, GetProfileChangesResponse, GetPublicationReportRequest, Introduction,
    IntroductionDecision, ListIntroductionsRequest, ListIntroductionsResponse, ListMentorsRequest,
    ListMentorsResponse, ListNodeAuditEventsRequest, ListNodeAuditEventsResponse, Mentor, NodeInfo,
    PublicationReport, RecordDecisionRequest, ReleaseContactCardRequest, RemoveMentorRequest,
    RemoveMentorResponse, UpdateMentorRequest,
};
use tandem_proto::{
    EndTandemRequest, GetTandemEventsRequest, GetTandemEventsResponse, GiveFeedbackRequest,
    ListTandemsRequest, ListTandemsResponse, RecordCheckInRequest, Tandem, UpdateTandemRequest,
    UpdateTandemResponse,
};
use tonic::{Request, Response, Status};

use tandem_service::Scope;

use crate::{NodeError, NodeState, Staff};

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(result: Result<T, NodeError>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

/// Returns the staff member the gate admitted for this request.
fn staff<T>(request: &Request<T>) -> Result<Staff, Status> {
    let caller = tandem_service::caller(request)?;
    if caller.scope() != Scope::NodeAdmin {
        // The gate checks the scope; a mismatch means the service was served behind the
        // wrong gate, which must not open it.
        tracing::error!("a NodeAdminService request without a node-admin key");
        return Err(Status::internal("internal error"));
    }
    Ok(caller)
}

fn mentor_field(mentor: Option<Mentor>) -> Result<Mentor, NodeError> {
    mentor.ok_or_else(|| NodeError::invalid("mentor", "is required"))
}

fn company_field(company: Option<Company>) -> Result<Company, NodeError> {
    company.ok_or_else(|| NodeError::invalid("company", "is required"))
}

/// `NodeService`, called by the broker.
pub(crate) struct NodeApi {
    state: Arc<NodeState>,
}

impl NodeApi {
    pub(crate) fn new(state: Arc<NodeState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn get_node_info(&self, _request: Request<GetNodeInfoRequest>) -> RpcResult<NodeInfo> {
        reply(self.state.node_info().await)
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, since = request.get_ref().since_version)
    )]
    async fn get_profile_changes(
        &self,
        request: Request<GetProfileChangesRequest>,
    ) -> RpcResult<GetProfileChangesResponse> {
        let request = request.into_inner();
        reply(
            self.state
                .profile_changes(request.since_version, request.limit)
                .await,
        )
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, introduction_id = %request.get_ref().introduction_id)
    )]
    async fn deliver_introduction(
        &self,
        request: Request<DeliverIntroductionRequest>,
    ) -> RpcResult<DeliverIntroductionResponse> {
        reply(self.state.deliver_introduction(request.into_inner()).await)
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, introductions = request.get_ref().introductions.len())
    )]
    async fn deliver_introductions(
        &self,
        request: Request<DeliverIntroductionsRequest>,
    ) -> RpcResult<DeliverIntroductionsResponse> {
        let requests = request.into_inner().introductions;
        reply(
            self.state
                .deliver_introductions(requests)
                .await
                .map(|outcomes| DeliverIntroductionsResponse { outcomes }),
        )
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, since = request.get_ref().since)
    )]
    async fn get_decisions(
        &self,
        request: Request<GetDecisionsRequest>,
    ) -> RpcResult<GetDecisionsResponse> {
        let request = request.into_inner();
        reply(self.state.decisions(request.since, request.limit).await)
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, introduction_id = %request.get_ref().introduction_id)
    )]
    async fn get_decision(
        &self,
        request: Request<GetDecisionRequest>,
    ) -> RpcResult<IntroductionDecision> {
        reply(
            self.state
                .decision(&request.get_ref().introduction_id)
                .await,
        )
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, introduction_id = %request.get_ref().introduction_id)
    )]
    async fn close_introduction(
        &self,
        request: Request<CloseIntroductionRequest>,
    ) -> RpcResult<CloseIntroductionResponse> {
        let request = request.into_inner();
        let result = self
            .state
            .close_introduction(&request.introduction_id, &request.reason)
            .await;
        reply(result.map(|()| CloseIntroductionResponse {}))
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, introduction_id = %request.get_ref().introduction_id)
    )]
    async fn release_contact_card(
        &self,
        request: Request<ReleaseContactCardRequest>,
    ) -> RpcResult<ContactCard> {
        let request = request.into_inner();
        reply(
            self.state
                .release_contact_card(&request.introduction_id)
                .await,
        )
    }

    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn update_tandem(
        &self,
        request: Request<UpdateTandemRequest>,
    ) -> RpcResult<UpdateTandemResponse> {
        let result = self.state.update_tandem(request.into_inner()).await;
        reply(result.map(|()| UpdateTandemResponse {}))
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, since = request.get_ref().since)
    )]
    async fn get_tandem_events(
        &self,
        request: Request<GetTandemEventsRequest>,
    ) -> RpcResult<GetTandemEventsResponse> {
        let request = request.into_inner();
        reply(self.state.tandem_events(request.since, request.limit).await)
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, introduction_id = %request.get_ref().introduction_id)
    )]
    async fn forget_mentee(
        &self,
        request: Request<ForgetMenteeRequest>,
    ) -> RpcResult<ForgetMenteeResponse> {
        let result = self
            .state
            .forget_mentee(&request.get_ref().introduction_id)
            .await;
        reply(result.map(|()| ForgetMenteeResponse {}))
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, since = request.get_ref().since_version)
    )]
    async fn get_membership_changes(
        &self,
        request: Request<GetMembershipChangesRequest>,
    ) -> RpcResult<GetMembershipChangesResponse> {
        let request = request.into_inner();
        reply(
            self.state
                .membership_changes(request.since_version, request.limit)
                .await,
        )
    }
}

/// `NodeAdminService`, called by the association's staff.
pub(crate) struct AdminApi {
    state: Arc<NodeState>,
}

impl AdminApi {
    pub(crate) fn new(state: Arc<NodeState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl NodeAdminService for AdminApi {
    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn create_mentor(&self, request: Request<CreateMentorRequest>) -> RpcResult<Mentor> {
        let staff = staff(&request)?;
        let result = match mentor_field(request.into_inner().mentor) {
            Ok(mentor) => self.state.create_mentor(&staff, mentor).await,
            Err(e) => Err(e),
        };
        reply(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(
            node = %self.state.node_id,
            mentor_id = %request.get_ref().mentor.as_ref().map_or("", |m| m.id.as_str()),
        )
    )]
    async fn update_mentor(&self, request: Request<UpdateMentorRequest>) -> RpcResult<Mentor> {
        let staff = staff(&request)?;
        let result = match mentor_field(request.into_inner().mentor) {
            Ok(mentor) => self.state.update_mentor(&staff, mentor).await,
            Err(e) => Err(e),
        };
        reply(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, mentor_id = %request.get_ref().mentor_id)
    )]
    async fn remove_mentor(
        &self,
        request: Request<RemoveMentorRequest>,
    ) -> RpcResult<RemoveMentorResponse> {
        let staff = staff(&request)?;
        let result = self
            .state
            .remove_mentor(&staff, &request.into_inner().mentor_id)
            .await;
        reply(result.map(|()| RemoveMentorResponse {}))
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, mentor_id = %request.get_ref().mentor_id)
    )]
    async fn get_mentor(&self, request: Request<GetMentorRequest>) -> RpcResult<Mentor> {
        staff(&request)?;
        reply(self.state.get_mentor(&request.into_inner().mentor_id).await)
    }

    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn list_mentors(
        &self,
        request: Request<ListMentorsRequest>,
    ) -> RpcResult<ListMentorsResponse> {
        staff(&request)?;
        let result = self.state.list_mentors().await;
        reply(result.map(|mentors| ListMentorsResponse { mentors }))
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, mentor_id = %request.get_ref().mentor_id)
    )]
    async fn list_introductions(
        &self,
        request: Request<ListIntroductionsRequest>,
    ) -> RpcResult<ListIntroductionsResponse> {
        staff(&request)?;
        let mentor_id = request.into_inner().mentor_id;
        let filter = (!mentor_id.is_empty()).then_some(mentor_id.as_str());
        let result = self.state.list_introductions(filter).await;
        reply(result.map(|introductions| ListIntroductionsResponse { introductions }))
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, introduction_id = %request.get_ref().introduction_id)
    )]
    async fn record_decision(
        &self,
        request: Request<RecordDecisionRequest>,
    ) -> RpcResult<Introduction> {
        let staff = staff(&request)?;
        let request = request.into_inner();
        reply(
            self.state
                .record_decision(&staff, &request.introduction_id, request.decision)
                .await,
        )
    }

    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn get_publication_report(
        &self,
        request: Request<GetPublicationReportRequest>,
    ) -> RpcResult<PublicationReport> {
        staff(&request)?;
        reply(self.state.publication_report().await)
    }

    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn list_tandems(
        &self,
        request: Request<ListTandemsRequest>,
    ) -> RpcResult<ListTandemsResponse> {
        staff(&request)?;
        let result = self.state.list_tandems(&request.get_ref().filter_id).await;
        reply(result.map(|tandems| ListTandemsResponse { tandems }))
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, tandem_id = %request.get_ref().tandem_id)
    )]
    async fn record_check_in(&self, request: Request<RecordCheckInRequest>) -> RpcResult<Tandem> {
        let staff = staff(&request)?;
        let request = request.into_inner();
        reply(
            self.state
                .record_mentor_check_in(&staff, &request.tandem_id, request.check_in)
                .await,
        )
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, tandem_id = %request.get_ref().tandem_id)
    )]
    async fn end_tandem(&self, request: Request<EndTandemRequest>) -> RpcResult<Tandem> {
        let staff = staff(&request)?;
        let request = request.into_inner();
        reply(
            self.state
                .end_mentor_tandem(&staff, &request.tandem_id, request.reason)
                .await,
        )
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, tandem_id = %request.get_ref().tandem_id)
    )]
    async fn give_feedback(&self, request: Request<GiveFeedbackRequest>) -> RpcResult<Tandem> {
        let staff = staff(&request)?;
        let request = request.into_inner();
        reply(
            self.state
                .give_mentor_feedback(&staff, &request.tandem_id, request.feedback)
                .await,
        )
    }

    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn list_audit_events(
        &self,
        request: Request<ListNodeAuditEventsRequest>,
    ) -> RpcResult<ListNodeAuditEventsResponse> {
        staff(&request)?;
        let request = request.into_inner();
        let result = self
            .state
            .list_audit_events(request.after_id, request.limit)
            .await;
        reply(result.map(|events| ListNodeAuditEventsResponse { events }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn admit_company(
        &self,
        request: Request<AdmitCompanyRequest>,
    ) -> RpcResult<AdmittedCompany> {
        let staff = staff(&request)?;
        let result = match company_field(request.into_inner().company) {
            Ok(company) => self.state.admit_company(&staff, company).await,
            Err(e) => Err(e),
        };
        reply(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, company_id = %request.get_ref().company_id)
    )]
    async fn get_company(&self, request: Request<GetCompanyRequest>) -> RpcResult<Company> {
        staff(&request)?;
        reply(self.state.get_company(&request.get_ref().company_id).await)
    }

    #[tracing::instrument(skip_all, fields(node = %self.state.node_id))]
    async fn list_companies(
        &self,
        request: Request<ListCompaniesRequest>,
    ) -> RpcResult<ListCompaniesResponse> {
        staff(&request)?;
        let result = self.state.list_companies().await;
        reply(result.map(|companies| ListCompaniesResponse { companies }))
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, company_id = %request.get_ref().company_id)
    )]
    async fn issue_enrolment_code(
        &self,
        request: Request<IssueEnrolmentCodeRequest>,
    ) -> RpcResult<AdmittedCompany> {
        let staff = staff(&request)?;
        reply(
            self.state
                .issue_enrolment_code(&staff, &request.get_ref().company_id)
                .await,
        )
    }

    #[tracing::instrument(
        skip_all,
        fields(node = %self.state.node_id, company_id = %request.get_ref().company_id)
    )]
    async fn remove_company(&self, request: Request<RemoveCompanyRequest>) -> RpcResult<Company> {
        let staff = staff(&request)?;
        reply(
            self.state
                .remove_company(&staff, &request.get_ref().company_id)
                .await,
        )
    }
}
