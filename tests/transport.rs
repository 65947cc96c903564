//! The broker reaches every node's `NodeService` over mutual TLS only: the federation's nodes
//! are registered with `https://` endpoints and their identities, syncs succeed over TLS, and
//! a plain-text client on the same port never reaches `NodeService`.

use tandem_e2e::start;
use tandem_proto::node_service_client::NodeServiceClient;
use tandem_proto::{GetNodeInfoRequest, ListNodesRequest, SyncNodesRequest};

#[tokio::test]
async fn node_service_runs_over_mutual_tls_only() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let nodes = f
        .operator
        .list_nodes(ListNodesRequest::default())
        .await?
        .into_inner()
        .nodes;
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].endpoint.starts_with("https://"), "{nodes:?}");
    assert_eq!(nodes[0].identity, "chamber.node.tandem");

    let sync = f
        .operator
        .sync_nodes(SyncNodesRequest::default())
        .await?
        .into_inner();
    assert_eq!(sync.results.len(), 1);
    assert_eq!(sync.results[0].error, "", "{sync:?}");

    let node = &f.federation.nodes[0];
    let mut plain = NodeServiceClient::connect(node.endpoint()).await?;
    let err = plain
        .get_node_info(GetNodeInfoRequest::default())
        .await
        .expect_err("plain text must not reach NodeService");
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
    f.federation.shutdown().await;
    Ok(())
}
