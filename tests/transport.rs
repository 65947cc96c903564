//! Every connection of a federation runs over TLS.
//!
//! The broker reaches every node's `NodeService` over mutual TLS only: the nodes are registered
//! with `https://` endpoints and their identities, syncs succeed, and neither a plain-text
//! client nor a TLS client without the broker's certificate gets through the handshake.
//! Companies, operators and association staff reach the broker's gRPC API, the dashboard and
//! their node's `NodeAdminService` over TLS with the development CA and their keys; a caller
//! that does not trust that CA, or that speaks plain text, never reaches a handler.

use std::time::Duration;

use tandem_cli::demo::federation::{Bearer, demo_key, demo_staff_key};
use tandem_e2e::{COMPANIES, https_get, mentee, start, submission};
use tandem_proto::mentee_service_client::MenteeServiceClient;
use tandem_proto::node_admin_service_client::NodeAdminServiceClient;
use tandem_proto::node_service_client::NodeServiceClient;
use tandem_proto::{
    GetNodeInfoRequest, ListMenteesRequest, ListMentorsRequest, ListNodesRequest, SyncNodesRequest,
};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

/// A channel that speaks plain text to an `https://` address.
fn plain_channel(https_endpoint: &str) -> anyhow::Result<Channel> {
    let http = https_endpoint.replacen("https://", "http://", 1);
    Ok(Endpoint::from_shared(http)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect_lazy())
}

/// Asserts that a call failed in the transport, not in a handler.
fn assert_transport_error(status: &tonic::Status, case: &str) {
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Unknown),
        "{case}: not a transport error: {status:?}"
    );
}

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
    // Plain text on the NodeService port: the handshake fails, the connection is closed.
    let err = NodeServiceClient::new(plain_channel(&node.endpoint())?)
        .get_node_info(GetNodeInfoRequest::default())
        .await
        .expect_err("plain text must not reach NodeService");
    assert_transport_error(&err, "plain text");

    // TLS that trusts the CA but presents no broker certificate (what a staff client has).
    let no_certificate = f.federation.channel(&node.endpoint()).await;
    match no_certificate {
        Err(_) => {}
        Ok(channel) => {
            let err = NodeServiceClient::new(channel)
                .get_node_info(GetNodeInfoRequest::default())
                .await
                .expect_err("no client certificate must not reach NodeService");
            assert_transport_error(&err, "no client certificate");
        }
    }

    // The staff's TLS port serves NodeAdminService only.
    let err = NodeServiceClient::new(f.federation.channel(&node.admin_endpoint()).await?)
        .get_node_info(GetNodeInfoRequest::default())
        .await
        .expect_err("the admin port does not serve NodeService");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn companies_and_operators_reach_the_broker_over_tls_only() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let endpoint = f.federation.broker_endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");

    // With the development CA and a company key, the API works.
    let acme = Bearer::new(&f.companies[COMPANIES[0].0].api_key)?;
    let mut company =
        MenteeServiceClient::with_interceptor(f.federation.channel(&endpoint).await?, acme.clone());
    company.submit_mentee(submission("tls-1", mentee())).await?;

    // A company client that trusts another CA is refused in the handshake.
    let other = tempfile::tempdir()?;
    let other_ca = tandem_tls::mint::init(other.path())?;
    let untrusting = tandem_tls::ApiClientTls::new(&other_ca)?;
    let mut refused = MenteeServiceClient::with_interceptor(
        untrusting.channel(&Endpoint::from_shared(endpoint.clone())?),
        acme.clone(),
    );
    let err = refused
        .submit_mentee(submission("tls-2", mentee()))
        .await
        .expect_err("a client that does not trust the ca");
    assert_transport_error(&err, "untrusted ca");

    // A plain-text client never gets an answer from a handler, key or not.
    let mut plain = MenteeServiceClient::with_interceptor(plain_channel(&endpoint)?, acme);
    let err = plain
        .submit_mentee(submission("tls-3", mentee()))
        .await
        .expect_err("plain text");
    assert_transport_error(&err, "plain text");

    // Only the submission over TLS arrived.
    let listed = company
        .list_mentees(ListMenteesRequest {})
        .await?
        .into_inner()
        .mentees;
    assert_eq!(listed.len(), 1, "{listed:?}");

    // The operator's API too.
    let nodes = f.operator.list_nodes(ListNodesRequest::default()).await?;
    assert_eq!(nodes.into_inner().nodes.len(), 1);
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_dashboard_serves_https_only() -> anyhow::Result<()> {
    let f = start(&["chamber"]).await?;
    let addr = f.federation.dashboard_addr;
    let ca = f.federation.ca_cert();
    assert!(f.federation.dashboard_url().starts_with("https://"));
    let key = demo_key("operator");
    let (status, body) = {
        let (key, ca) = (key.clone(), ca.clone());
        tokio::task::spawn_blocking(move || {
            https_get(addr, "127.0.0.1", "/api/dashboard", &key, &ca)
        })
        .await??
    };
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body)?;
    let (status, _) = {
        let ca = ca.clone();
        tokio::task::spawn_blocking(move || {
            https_get(addr, "localhost", "/metrics", "tdm_kwrong_0", &ca)
        })
        .await??
    };
    assert_eq!(status, 401, "a wrong key over tls is still refused");

    // Another CA: the handshake fails.
    let other = tempfile::tempdir()?;
    let other_ca = tandem_tls::mint::init(other.path())?;
    let untrusted = tokio::task::spawn_blocking(move || {
        https_get(addr, "127.0.0.1", "/healthz", "", &other_ca)
    })
    .await?;
    assert!(untrusted.is_err(), "{untrusted:?}");

    // Plain HTTP: no answer at all, only a closed connection.
    let plain = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(15)))?;
        let request = format!(
            "GET /api/dashboard HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        );
        let mut answer = Vec::new();
        // The server may close the connection before the request is written
        // (broken pipe, reset): that too is "no answer".
        if tcp.write_all(request.as_bytes()).is_err() {
            return Ok(answer);
        }
        let _ = tcp.read_to_end(&mut answer);
        Ok(answer)
    })
    .await??;
    assert!(
        !String::from_utf8_lossy(&plain).contains("HTTP/1.1"),
        "plain http got an http answer: {:?}",
        String::from_utf8_lossy(&plain)
    );
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn staff_reach_node_admin_service_over_tls_only() -> anyhow::Result<()> {
    let mut f = start(&["chamber"]).await?;
    let node = f.federation.nodes[0].clone();
    assert!(node.admin_endpoint().starts_with("https://"));
    assert_ne!(
        node.admin_addr, node.addr,
        "staff and broker use separate ports"
    );

    // Over TLS with the development CA and a staff key.
    let mentors = f.admins[0].list_mentors(ListMentorsRequest {}).await?;
    assert!(mentors.into_inner().mentors.is_empty());

    // Plain text, even with the right key: no handler answers.
    let staff = Bearer::new(&demo_staff_key("chamber"))?;
    let mut plain =
        NodeAdminServiceClient::with_interceptor(plain_channel(&node.admin_endpoint())?, staff);
    let err = plain
        .list_mentors(ListMentorsRequest {})
        .await
        .expect_err("plain text");
    assert_transport_error(&err, "plain text to the admin port");
    f.federation.shutdown().await;
    Ok(())
}
