//! What callers and operators see of every gRPC call, over real loopback gRPC: actionable codes
//! for request bodies tonic cannot decode and for a database that went away, and the per-call
//! metrics on the dashboard's `/metrics`. The spans are in `tests/spans.rs`.

mod support;

use prost::Message;
use sea_orm::ConnectionTrait;
use tandem_proto::enrolment_service_client::EnrolmentServiceClient;
use tandem_proto::operator_service_client::OperatorServiceClient;
use tandem_proto::{EnrolCompanyRequest, ListNodesRequest};
use tonic_health::pb::health_check_response::ServingStatus;

use support::served::{Served, frame, wait_for};

/// The largest request the broker decodes (`MAX_REQUEST_BYTES` of its server).
const LIMIT: usize = 64 * 1024;

/// Returns the value of the sample `name{labels}` in a Prometheus text exposition.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn a_body_that_is_not_the_message_is_invalid_argument_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = Served::sqlite(&dir).await;

    // A well-framed gRPC message whose bytes are no RegisterNodeRequest: field 1 claims five
    // bytes and has one.
    let status = served
        .raw(
            "/tandem.v1.OperatorService/RegisterNode",
            frame(&[0x0a, 0x05, 0x01]),
        )
        .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("request body is not a valid tandem.v1.RegisterNodeRequest: "),
        "{}",
        status.message()
    );

    // Bytes that are not even a gRPC frame.
    let status = served
        .raw(
            "/tandem.v1.OperatorService/ListNodes",
            b"this is not protobuf".to_vec(),
        )
        .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("request body is not a gRPC message"),
        "{}",
        status.message()
    );

    // A body that stops inside its message.
    let mut truncated = frame(&[0x0a, 0x03, b'a', b'b', b'c']);
    truncated.truncate(7);
    let status = served
        .raw("/tandem.v1.OperatorService/RegisterNode", truncated)
        .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // The service still answers well-formed calls, and a handler's own errors pass unchanged.
    let nodes = served
        .operator()
        .list_nodes(ListNodesRequest::default())
        .await
        .expect("list nodes");
    assert_eq!(nodes.into_inner().nodes.len(), 1);
    served.stop().await;
}

#[tokio::test]
async fn an_oversized_request_is_resource_exhausted_naming_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = Served::sqlite(&dir).await;
    let request = EnrolCompanyRequest {
        enrolment_code: "x".repeat(100_000),
        label: String::new(),
    };
    let size = request.encoded_len();
    assert!(size > LIMIT);
    let status = EnrolmentServiceClient::new(served.channel.clone())
        .enrol_company(request)
        .await
        .expect_err("too large");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        format!("request of {size} bytes exceeds the limit of {LIMIT} bytes")
    );
    served.stop().await;
}

#[tokio::test]
async fn a_closed_database_is_unavailable_and_the_health_port_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut served = Served::sqlite(&dir).await;
    served
        .operator()
        .list_nodes(ListNodesRequest::default())
        .await
        .expect("list nodes");

    served.db.close_by_ref().await.expect("close the database");
    let status = served
        .operator()
        .list_nodes(ListNodesRequest::default())
        .await
        .expect_err("no database");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "database unavailable; retry later");
    wait_for(&mut served.health, ServingStatus::NotServing).await;

    let (status, _) = served.scrape().await;
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    served.stop().await;
}

#[tokio::test]
async fn a_dropped_postgres_database_is_unavailable() {
    let Ok(server) = std::env::var("TANDEM_TEST_POSTGRES_URL") else {
        eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the PostgreSQL variant");
        return;
    };
    let url = tandem_storage::create_scratch_database(&server, "tandem_rpc")
        .await
        .expect("scratch database");
    let mut served = Served::on(&url).await;
    served
        .operator()
        .list_nodes(ListNodesRequest::default())
        .await
        .expect("list nodes");
    let name = url.rsplit('/').next().expect("database name");
    let admin = tandem_storage::connect(&server).await.expect("connect");
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the database under the broker");
    let status = served
        .operator()
        .list_nodes(ListNodesRequest::default())
        .await
        .expect_err("no database");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "database unavailable; retry later");
    wait_for(&mut served.health, ServingStatus::NotServing).await;
    served.stop().await;
}

#[tokio::test]
async fn metrics_count_every_call_by_method_and_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = Served::sqlite(&dir).await;
    let mut operator = served.operator();
    for _ in 0..3 {
        operator
            .list_nodes(ListNodesRequest::default())
            .await
            .expect("list nodes");
    }
    let refused = served
        .raw("/tandem.v1.OperatorService/RegisterNode", frame(&[0xff]))
        .await;
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let anonymous = OperatorServiceClient::new(served.channel.clone())
        .list_nodes(ListNodesRequest::default())
        .await
        .expect_err("no key");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let unknown = served
        .raw("/tandem.v1.NoSuchService/Anything", frame(&[]))
        .await;
    assert_eq!(unknown.code(), tonic::Code::Unimplemented);

    let text = served.metrics().await;
    let duration = "tandem_rpc_server_duration_seconds";
    let errors = "tandem_rpc_server_errors_total";
    let list_ok = r#"service="tandem.v1.OperatorService",method="ListNodes",code="OK""#;
    assert!(
        text.contains(&format!("# TYPE {duration} histogram\n")),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("{duration}_count"), list_ok),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("{duration}_bucket"),
            &format!(r#"{list_ok},le="+Inf""#)
        ),
        Some(3.0),
        "{text}"
    );
    assert!(sample(&text, &format!("{duration}_sum"), list_ok).is_some_and(|s| s > 0.0));
    assert_eq!(
        sample(&text, errors, list_ok),
        None,
        "OK is no error: {text}"
    );
    assert_eq!(
        sample(
            &text,
            errors,
            r#"service="tandem.v1.OperatorService",method="RegisterNode",code="INVALID_ARGUMENT""#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            errors,
            r#"service="tandem.v1.OperatorService",method="ListNodes",code="UNAUTHENTICATED""#
        ),
        Some(1.0),
        "{text}"
    );
    // Unknown paths share one series; made-up names never become labels.
    assert_eq!(
        sample(
            &text,
            errors,
            r#"service="_OTHER",method="_OTHER",code="UNIMPLEMENTED""#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("NoSuchService"), "{text}");
    // The health port's probes are calls of the same server.
    assert!(
        text.contains(r#"service="grpc.health.v1.Health",method="Watch""#),
        "{text}"
    );
    // The dashboard's own figures are still there.
    assert!(
        text.contains("tandem_node_profiles{node=\"home\"}"),
        "{text}"
    );
    served.stop().await;
}
