//! A `NodeService` for the handshake tests: it only answers `GetNodeInfo` and counts the calls
//! that reached it, so a test can tell a refused handshake from a refused call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tandem_proto::node_service_client::NodeServiceClient;
use tandem_proto::node_service_server::NodeService;
use tandem_proto::*;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Calls `GetNodeInfo` over `channel`.
pub async fn call(channel: Channel) -> Result<NodeInfo, Status> {
    NodeServiceClient::new(channel)
        .get_node_info(GetNodeInfoRequest::default())
        .await
        .map(Response::into_inner)
}

/// A `NodeService` that counts the calls that reached it.
#[derive(Clone, Default)]
pub struct Counting(pub Arc<AtomicUsize>);

#[tonic::async_trait]
impl NodeService for Counting {
    async fn get_node_info(
        &self,
        _: Request<GetNodeInfoRequest>,
    ) -> Result<Response<NodeInfo>, Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(NodeInfo {
            node_id: "ind-assoc".into(),
            ..NodeInfo::default()
        }))
    }
    async fn get_profile_changes(
        &self,
        _: Request<GetProfileChangesRequest>,
    ) -> Result<Response<GetProfileChangesResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn deliver_introduction(
        &self,
        _: Request<DeliverIntroductionRequest>,
    ) -> Result<Response<DeliverIntroductionResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn deliver_introductions(
        &self,
        _: Request<DeliverIntroductionsRequest>,
    ) -> Result<Response<DeliverIntroductionsResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn get_decisions(
        &self,
        _: Request<GetDecisionsRequest>,
    ) -> Result<Response<GetDecisionsResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn get_decision(
        &self,
        _: Request<GetDecisionRequest>,
    ) -> Result<Response<IntroductionDecision>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn close_introduction(
        &self,
        _: Request<CloseIntroductionRequest>,
    ) -> Result<Response<CloseIntroductionResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn release_contact_card(
        &self,
        _: Request<ReleaseContactCardRequest>,
    ) -> Result<Response<ContactCard>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn update_tandem(
        &self,
        _request: Request<UpdateTandemRequest>,
    ) -> Result<Response<UpdateTandemResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn get_tandem_events(
        &self,
        _request: Request<GetTandemEventsRequest>,
    ) -> Result<Response<GetTandemEventsResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn forget_mentee(
        &self,
        _: Request<tandem_proto::ForgetMenteeRequest>,
    ) -> Result<Response<tandem_proto::ForgetMenteeResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn get_membership_changes(
        &self,
        _: Request<GetMembershipChangesRequest>,
    ) -> Result<Response<GetMembershipChangesResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
}
