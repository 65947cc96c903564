//! Registered nodes: registration, listing, and the gRPC clients the broker calls them with.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder};
use tandem_domain::{Violations, validate};
use tandem_proto::Node;
use tandem_proto::node_service_client::NodeServiceClient;
use tandem_storage::broker::node;
use tandem_telemetry::rpc::RpcClient;
use tonic::transport::{Channel, Endpoint};

use crate::{Broker, BrokerError, convert};

/// How long the broker waits for a connection to a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the broker waits for a node to answer one call, in milliseconds.
pub(crate) const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// How long the broker waits for a node to answer one call.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(REQUEST_TIMEOUT_MS);

/// Lazily connected channels to the nodes, one per endpoint and identity, shared by all calls.
pub(crate) struct NodeClients {
    /// The broker's certificate and the CA of the nodes; `None` calls nodes in plain text.
    tls: Option<Arc<tandem_tls::ClientTls>>,
    channels: std::sync::Mutex<HashMap<(String, String), Channel>>,
}

impl NodeClients {
    /// Loads the broker's TLS files, if configured.
    pub(crate) fn new(tls: Option<tandem_tls::TlsFiles>) -> Result<Self, BrokerError> {
        let tls = tls
            .map(tandem_tls::ClientTls::new)
            .transpose()
            .map_err(|e| BrokerError::Tls(e.to_string()))?;
        Ok(NodeClients {
            tls,
            channels: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Returns whether nodes are called over mutual TLS.
    pub(crate) fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Returns a client for the node at `endpoint` whose certificate must name `identity`;
    /// the connection is made on first use and re-made after a failure.
    pub(crate) fn client(
        &self,
        node_id: &str,
        endpoint: &str,
        identity: &str,
    ) -> Result<NodeClient, BrokerError> {
        let unavailable = |detail: String| BrokerError::NodeUnavailable {
            node: node_id.to_owned(),
            detail,
        };
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (endpoint.to_owned(), identity.to_owned());
        if let Some(channel) = channels.get(&key) {
            return Ok(traced(channel.clone(), endpoint));
        }
        let target = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| unavailable(format!("invalid endpoint {endpoint:?}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        let channel = match &self.tls {
            Some(tls) => tls
                .channel(&target, identity)
                .map_err(|e| unavailable(e.to_string()))?,
            None => target.connect_lazy(),
        };
        channels.insert(key, channel.clone());
        Ok(traced(channel, endpoint))
    }
}

/// Returns the identity a node's certificate must carry: the registered one, or
/// `<id>.node.tandem`.
pub(crate) fn expected_identity(n: &node::Model) -> String {
    if n.identity.is_empty() {
        tandem_tls::node_identity(&n.id)
    } else {
        n.identity.clone()
    }
}

/// A client of a node's `NodeService` whose every call gets a client span that the node's
/// server span continues (`tandem_telemetry::rpc`).
pub(crate) type NodeClient = NodeServiceClient<RpcClient<Channel>>;

fn traced(channel: Channel, endpoint: &str) -> NodeClient {
    NodeServiceClient::new(RpcClient::new(channel, endpoint))
}

/// Returns a node as the operator sees it.
pub(crate) fn node_proto(n: &node::Model, profiles: i64, free_capacity: i64) -> Node {
    Node {
        node_id: n.id.clone(),
        endpoint: n.endpoint.clone(),
        display_name: n.display_name.clone(),
        profiles: convert::count(profiles),
        free_capacity: convert::count(free_capacity),
        last_sync_at_ms: n.last_sync_at_ms,
        last_error: n.last_error.clone(),
        feed_version: u64::try_from(n.feed_version).unwrap_or(0),
        identity: expected_identity(n),
    }
}

impl Broker {
    /// Registers a node, or updates the endpoint, name and expected certificate identity of a
    /// registered one (its sync cursors stay). An empty `identity` means `<id>.node.tandem`.
    #[tracing::instrument(skip(self))]
    pub async fn register_node(
        &self,
        id: &str,
        endpoint: &str,
        display_name: &str,
        identity: &str,
    ) -> Result<Node, BrokerError> {
        let mut found = Violations::new();
        found.check(validate::node_id("node_id", id));
        found.check(validate::endpoint("endpoint", endpoint).and_then(|()| {
            validate::endpoint_scheme("endpoint", endpoint, self.clients.uses_tls())
        }));
        if !identity.is_empty()
            && let Err(e) = tandem_tls::check_identity("identity", identity)
        {
            found.add("identity", e.trim_start_matches("identity: "));
        }
        let display_name = found.check(validate::display_name("display_name", display_name));
        let display_name = found.finish(|| display_name)?;
        let row = node::ActiveModel {
            id: Set(id.to_owned()),
            endpoint: Set(endpoint.to_owned()),
            display_name: Set(display_name.to_owned()),
            feed_version: Set(0),
            decision_cursor: Set(0),
            tandem_event_cursor: Set(0),
            membership_cursor: Set(0),
            last_sync_at_ms: Set(0),
            last_error: Set(String::new()),
            registered_at_ms: Set(self.now()),
            identity: Set(identity.to_owned()),
        };
        let txn = self.write().await?;
        node::Entity::insert(row)
            .on_conflict(
                OnConflict::column(node::Column::Id)
                    .update_columns([
                        node::Column::Endpoint,
                        node::Column::DisplayName,
                        node::Column::Identity,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&*txn)
            .await?;
        txn.commit().await?;
        tracing::info!(node = %id, endpoint, "node registered");
        let stored = self.node(id).await?;
        let totals = self.profile_totals().await?;
        let (profiles, free) = totals.get(id).copied().unwrap_or_default();
        Ok(node_proto(&stored, profiles, free))
    }

    /// Lists the registered nodes with their sync state, profile counts and free places.
    #[tracing::instrument(skip(self))]
    pub async fn list_nodes(&self) -> Result<Vec<Node>, BrokerError> {
        let rows = node::Entity::find()
            .order_by_asc(node::Column::Id)
            .all(self.db())
            .await?;
        let totals = self.profile_totals().await?;
        Ok(rows
            .iter()
            .map(|n| {
                let (profiles, free) = totals.get(&n.id).copied().unwrap_or_default();
                node_proto(n, profiles, free)
            })
            .collect())
    }

    /// Returns a client for a registered node.
    pub(crate) fn node_client(&self, n: &node::Model) -> Result<NodeClient, BrokerError> {
        self.clients
            .client(&n.id, &n.endpoint, &expected_identity(n))
    }
}

/// Turns a node's error answer into the broker's error.
pub(crate) fn node_error(node_id: &str, status: &tonic::Status) -> BrokerError {
    BrokerError::NodeUnavailable {
        node: node_id.to_owned(),
        detail: format!("{:?}: {}", status.code(), status.message()),
    }
}
