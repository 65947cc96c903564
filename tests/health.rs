//! Probes and tools see every gRPC server of a running federation, over TLS as it really runs,
//! without an API key: the standard health service answers SERVING for each server and each of
//! its services, and server reflection lists what a port serves, so that
//! `grpcurl -cacert ca.pem host:port list` needs no `.proto` files. The nodes' `NodeService`
//! port answers health too, behind its mutual TLS (with the broker's certificate).

use std::collections::BTreeSet;
use std::time::Duration;

use tandem_e2e::start;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// Long enough for a few looks of the health watcher (every five seconds).
const PATIENCE: Duration = Duration::from_secs(30);

fn asking(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

/// Asserts that `services` and the server as a whole are SERVING, once the health watcher had
/// its first look (waited for on the Watch stream, never with a sleep).
async fn assert_serving(channel: Channel, services: &[&str]) -> anyhow::Result<()> {
    let mut health = HealthClient::new(channel);
    let mut changes = health.watch(asking("")).await?.into_inner();
    tokio::time::timeout(PATIENCE, async {
        while let Some(change) = changes.next().await {
            if change?.status() == ServingStatus::Serving {
                return Ok(());
            }
        }
        anyhow::bail!("the health stream ended before SERVING")
    })
    .await??;
    for service in std::iter::once(&"").chain(services) {
        let status = health.check(asking(service)).await?.into_inner().status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    Ok(())
}

/// Asks a server's reflection service, as `grpcurl list` and `describe` do, to list its
/// services and for the file that declares `symbol` and the files it imports; returns the
/// names listed and how many descriptor files came back.
async fn reflect(channel: Channel, symbol: &str) -> anyhow::Result<(BTreeSet<String>, usize)> {
    let request = |message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let requests = tokio_stream::iter([
        request(MessageRequest::ListServices(String::new())),
        request(MessageRequest::FileContainingSymbol(symbol.to_owned())),
        request(MessageRequest::FileByFilename(
            "tandem/v1/common.proto".into(),
        )),
        request(MessageRequest::FileByFilename(
            "tandem/v1/tandem.proto".into(),
        )),
    ]);
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(requests)
        .await?
        .into_inner();
    let mut listed = BTreeSet::new();
    let mut files = 0;
    while let Some(answer) = answers.next().await {
        match answer?.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                listed.extend(list.service.into_iter().map(|s| s.name));
            }
            Some(MessageResponse::FileDescriptorResponse(found)) => {
                files += found.file_descriptor_proto.len();
            }
            other => anyhow::bail!("unexpected reflection answer: {other:?}"),
        }
    }
    Ok((listed, files))
}

/// Lists a server's services with the older reflection protocol (v1alpha), which some tools
/// still speak.
async fn list_v1alpha(channel: Channel) -> anyhow::Result<BTreeSet<String>> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let mut listed = BTreeSet::new();
    while let Some(answer) = answers.next().await {
        match answer?.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                listed.extend(list.service.into_iter().map(|s| s.name));
            }
            other => anyhow::bail!("unexpected reflection answer: {other:?}"),
        }
    }
    Ok(listed)
}

/// The services reflection lists on every port that has it, besides the port's own.
const ALWAYS_LISTED: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn listing(own: &[&str]) -> BTreeSet<String> {
    own.iter()
        .chain(&ALWAYS_LISTED)
        .map(|s| (*s).to_owned())
        .collect()
}

#[tokio::test]
async fn probes_and_tools_see_every_server_without_a_key() -> anyhow::Result<()> {
    let federation = start(&["ind-assoc", "startup-net"]).await?;
    let fed = &federation.federation;

    let broker_services = [
        "tandem.v1.MenteeService",
        "tandem.v1.OperatorService",
        "tandem.v1.EnrolmentService",
    ];
    let broker = fed.channel(&fed.broker_endpoint()).await?;
    assert_serving(broker.clone(), &broker_services).await?;
    let (listed, files) = reflect(broker.clone(), "tandem.v1.MenteeService").await?;
    assert_eq!(listed, listing(&broker_services));
    assert_eq!(list_v1alpha(broker).await?, listing(&broker_services));
    // broker.proto and the two files it imports.
    assert_eq!(files, 3);

    let broker_tls =
        tandem_tls::ClientTls::new(tandem_tls::TlsFiles::in_dir(fed.certs_dir(), "broker"))?;
    for node in &fed.nodes {
        let admin = fed.channel(&node.admin_endpoint()).await?;
        assert_serving(admin.clone(), &["tandem.v1.NodeAdminService"]).await?;
        let (listed, files) = reflect(admin, "tandem.v1.NodeAdminService").await?;
        assert_eq!(files, 3, "{}", node.node_id);
        assert_eq!(
            listed,
            listing(&["tandem.v1.NodeAdminService"]),
            "{}",
            node.node_id
        );

        // The NodeService port takes only the broker's certificate, probes included.
        let endpoint = Endpoint::from_shared(node.endpoint())?;
        let node_port = broker_tls.channel(&endpoint, &tandem_tls::node_identity(&node.node_id))?;
        assert_serving(node_port, &["tandem.v1.NodeService"]).await?;
    }

    federation.federation.shutdown().await;
    Ok(())
}
