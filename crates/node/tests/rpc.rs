//! What the broker, staff and probes see of a node's gRPC calls over real loopback gRPC: an
//! undecodable or oversized request body is the caller's error with an actionable code, a
//! database that went away is UNAVAILABLE, and the plain-text health port answers health (and
//! nothing else) from the same reporter as the API ports.

mod common;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use prost::Message;
use tandem_node::{Listeners, serve_on};
use tandem_proto::node_service_client::NodeServiceClient;
use tandem_proto::{CreateMentorRequest, GetNodeInfoRequest, ListMentorsRequest};
use tokio::net::TcpListener;
use tonic::codegen::{Bytes, http};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::{Service, ServiceExt};

/// Long enough for a few looks of the health watcher (every five seconds).
const PATIENCE: Duration = Duration::from_secs(30);

/// The largest NodeAdminService request the node decodes.
const ADMIN_LIMIT: usize = 64 * 1024;

async fn channel(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

/// A body of one chunk.
struct Once(Option<Bytes>);

impl http_body::Body for Once {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }
}

/// Sends `message` in one gRPC frame to `path`; returns the status of a trailers-only answer.
async fn raw(channel: &Channel, path: &str, message: &[u8]) -> tonic::Status {
    let mut body = vec![0];
    body.extend_from_slice(&u32::try_from(message.len()).expect("short").to_be_bytes());
    body.extend_from_slice(message);
    let request = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Once(Some(Bytes::from(body)))))
        .expect("request");
    let mut channel = channel.clone();
    let response = channel
        .ready()
        .await
        .expect("ready")
        .call(request)
        .await
        .expect("an HTTP answer");
    tonic::Status::from_header_map(response.headers()).expect("a trailers-only answer")
}

/// Waits until the health of `service` becomes `want`, following the Watch stream.
async fn wait_for(client: &mut HealthClient<Channel>, service: &str, want: ServingStatus) {
    let mut changes = client
        .watch(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("watch")
        .into_inner();
    let seen = tokio::time::timeout(PATIENCE, async {
        while let Some(change) = changes.next().await {
            if change.expect("change").status() == want {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "{service:?} never became {want:?}");
}

#[tokio::test]
async fn codes_callers_can_act_on_and_a_health_port_for_probes() {
    let node = common::sqlite_node().await;
    let bind = || async { TcpListener::bind("127.0.0.1:0").await.expect("bind") };
    let listeners = Listeners {
        node: bind().await,
        node_tls: None,
        admin: bind().await,
        admin_tls: None,
        health: Some(bind().await),
    };
    let node_addr = listeners.node.local_addr().expect("address");
    let admin_addr = listeners.admin.local_addr().expect("address");
    let health_addr = listeners
        .health
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(node.state.clone(), listeners, async {
        let _ = stopped.await;
    }));

    // The health port answers for the node and both its services, and serves nothing else.
    let health_channel = channel(health_addr).await;
    let mut health = HealthClient::new(health_channel.clone());
    wait_for(&mut health, "", ServingStatus::Serving).await;
    for service in ["tandem.v1.NodeService", "tandem.v1.NodeAdminService"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("check");
        assert_eq!(
            answer.into_inner().status(),
            ServingStatus::Serving,
            "{service}"
        );
    }
    let elsewhere = NodeServiceClient::new(health_channel.clone())
        .get_node_info(GetNodeInfoRequest::default())
        .await
        .expect_err("no NodeService on the health port");
    assert_eq!(
        elsewhere.code(),
        tonic::Code::Unimplemented,
        "{elsewhere:?}"
    );

    // A body that is not the message, to the broker's service.
    let node_channel = channel(node_addr).await;
    let status = raw(
        &node_channel,
        "/tandem.v1.NodeService/GetProfileChanges",
        &[0x08, 0xff],
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("request body is not a valid tandem.v1.GetProfileChangesRequest: "),
        "{}",
        status.message()
    );

    // An oversized staff request.
    let mut admin = common::admin_client(format!("http://{admin_addr}"), common::STAFF_KEY).await;
    let mut mentor = common::erika();
    mentor.title = "x".repeat(ADMIN_LIMIT);
    let request = CreateMentorRequest {
        mentor: Some(mentor),
    };
    let size = request.encoded_len();
    let status = admin.create_mentor(request).await.expect_err("too large");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        format!("request of {size} bytes exceeds the limit of {ADMIN_LIMIT} bytes")
    );

    // The database goes away: UNAVAILABLE for the broker and for staff, NOT_SERVING for probes.
    node.db.close_by_ref().await.expect("close the database");
    let status = NodeServiceClient::new(node_channel)
        .get_node_info(GetNodeInfoRequest::default())
        .await
        .expect_err("no database");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "database unavailable; retry later");
    let status = admin
        .list_mentors(ListMentorsRequest::default())
        .await
        .expect_err("no database");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    wait_for(&mut health, "", ServingStatus::NotServing).await;

    stop.send(()).expect("server still running");
    server.await.expect("join").expect("server ends cleanly");
}
