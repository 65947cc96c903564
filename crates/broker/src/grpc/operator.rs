//! `OperatorService`: what the network operator calls, with an operator API key.

use std::sync::Arc;

use tandem_proto::operator_service_server::OperatorService;
use tandem_proto::{
    DropDeadLetterRequest, DropDeadLetterResponse, GetNetworkStatsRequest, ListAuditEventsRequest,
    ListAuditEventsResponse, ListDeadLettersRequest, ListDeadLettersResponse, ListNodesRequest,
    ListNodesResponse, MatchingRound, NetworkStats, Node, RegisterNodeRequest,
    RetryDeadLetterRequest, RetryDeadLetterResponse, RunMatchingRoundRequest, SyncNodesRequest,
    SyncNodesResponse,
};
use tonic::{Request, Response, Status};

use super::operator;
use crate::Broker;

/// The `OperatorService` handlers over a [`Broker`].
#[derive(Debug, Clone)]
pub struct OperatorGrpc {
    broker: Arc<Broker>,
}

impl OperatorGrpc {
    /// Returns the service over `broker`.
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }
}

#[tonic::async_trait]
impl OperatorService for OperatorGrpc {
    #[tracing::instrument(name = "OperatorService/RegisterNode", skip_all)]
    async fn register_node(
        &self,
        request: Request<RegisterNodeRequest>,
    ) -> Result<Response<Node>, Status> {
        operator(&request)?;
        let r = request.into_inner();
        let node = self
            .broker
            .register_node(&r.node_id, &r.endpoint, &r.display_name, &r.identity)
            .await?;
        Ok(Response::new(node))
    }

    #[tracing::instrument(name = "OperatorService/ListNodes", skip_all)]
    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        operator(&request)?;
        let nodes = self.broker.list_nodes().await?;
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    #[tracing::instrument(name = "OperatorService/SyncNodes", skip_all)]
    async fn sync_nodes(
        &self,
        request: Request<SyncNodesRequest>,
    ) -> Result<Response<SyncNodesResponse>, Status> {
        operator(&request)?;
        let node_id = &request.get_ref().node_id;
        let only = (!node_id.is_empty()).then_some(node_id.as_str());
        let results = self.broker.sync_nodes(only).await?;
        Ok(Response::new(SyncNodesResponse { results }))
    }

    #[tracing::instrument(name = "OperatorService/RunMatchingRound", skip_all)]
    async fn run_matching_round(
        &self,
        request: Request<RunMatchingRoundRequest>,
    ) -> Result<Response<MatchingRound>, Status> {
        operator(&request)?;
        let round = self.broker.run_matching_round().await?;
        Ok(Response::new(round))
    }

    #[tracing::instrument(name = "OperatorService/GetNetworkStats", skip_all)]
    async fn get_network_stats(
        &self,
        request: Request<GetNetworkStatsRequest>,
    ) -> Result<Response<NetworkStats>, Status> {
        operator(&request)?;
        let stats = self.broker.network_stats().await?;
        Ok(Response::new(stats))
    }

    #[tracing::instrument(name = "OperatorService/ListAuditEvents", skip_all)]
    async fn list_audit_events(
        &self,
        request: Request<ListAuditEventsRequest>,
    ) -> Result<Response<ListAuditEventsResponse>, Status> {
        operator(&request)?;
        let r = request.into_inner();
        let events = self.broker.list_audit_events(r.after_id, r.limit).await?;
        Ok(Response::new(ListAuditEventsResponse { events }))
    }

    #[tracing::instrument(name = "OperatorService/ListDeadLetters", skip_all)]
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        operator(&request)?;
        let r = request.into_inner();
        let dead_letters = self
            .broker
            .list_dead_letters(&r.node_id, r.after_id, r.limit)
            .await?;
        Ok(Response::new(ListDeadLettersResponse { dead_letters }))
    }

    #[tracing::instrument(name = "OperatorService/RetryDeadLetter", skip_all)]
    async fn retry_dead_letter(
        &self,
        request: Request<RetryDeadLetterRequest>,
    ) -> Result<Response<RetryDeadLetterResponse>, Status> {
        operator(&request)?;
        self.broker
            .retry_dead_letter(request.get_ref().message_id)
            .await?;
        Ok(Response::new(RetryDeadLetterResponse {}))
    }

    #[tracing::instrument(name = "OperatorService/DropDeadLetter", skip_all)]
    async fn drop_dead_letter(
        &self,
        request: Request<DropDeadLetterRequest>,
    ) -> Result<Response<DropDeadLetterResponse>, Status> {
        operator(&request)?;
        self.broker
            .drop_dead_letter(request.get_ref().message_id)
            .await?;
        Ok(Response::new(DropDeadLetterResponse {}))
    }
}
