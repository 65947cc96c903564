//! `tandem health`, as a container health check runs it: exit 0 while the server's health port
//! says SERVING, 1 with the reason otherwise. The real binary against a real node
//! (`TANDEM_HEALTH_LISTEN`), and the command against a health port that says NOT_SERVING.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tandem_cli::health::{HealthOptions, run};
use tonic_health::ServingStatus;

/// The binary with no `TANDEM_*` variables of the test's own environment.
fn tandem(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("TANDEM_") || key.starts_with("OTEL_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Stops the node when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_health_command_reports_a_running_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        ("TANDEM_NODE_ID", "chamber".to_owned()),
        ("TANDEM_DISPLAY_NAME", "Rhine Chamber".to_owned()),
        (
            "TANDEM_DATABASE_URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("n.sqlite").display()
            ),
        ),
        (
            "TANDEM_PSEUDONYM_SECRET",
            "0123456789abcdef0123456789abcdef".to_owned(),
        ),
        (
            "TANDEM_FEDERATION_KEY",
            "fedcba9876543210fedcba9876543210".to_owned(),
        ),
        ("TANDEM_LISTEN", "127.0.0.1:0".to_owned()),
        ("TANDEM_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ("TANDEM_HEALTH_LISTEN", "127.0.0.1:0".to_owned()),
        ("TANDEM_INSTANCE_ID", "chamber-0".to_owned()),
        ("TANDEM_LOG_FORMAT", "json".to_owned()),
    ];
    let migrated = tandem(&["migrate", "node"], &env)
        .output()
        .expect("migrate");
    assert!(migrated.status.success(), "{}", text(&migrated));
    let mut child = tandem(&["node", "--insecure-dev"], &env)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let pipe = child.stderr.take().expect("stderr");
    let _node = Running(child);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The health port's address, from the line that announces it; SERVING once the log says
    // the first look at the database found it well.
    let mut seen = Vec::new();
    let mut addr = None;
    let mut serving = false;
    while addr.is_none() || !serving {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no health port, or never serving: {seen:#?}"));
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let fields = &event["fields"];
        let message = fields["message"].as_str().unwrap_or_default();
        if message.starts_with("health port listening") {
            addr = fields["addr"].as_str().map(str::to_owned);
        }
        serving |= message == "health changed" && fields["status"] == "serving";
        seen.push(line);
    }
    let addr = addr.expect("the health port's address");

    let ask = |service: &str| {
        tandem(&["health", "--addr", &addr, "--service", service], &[])
            .output()
            .expect("run tandem health")
    };
    let answer = ask("");
    assert!(answer.status.success(), "{}", text(&answer));
    assert!(text(&answer).contains("is SERVING"), "{}", text(&answer));
    let admin = ask("tandem.v1.NodeAdminService");
    assert!(admin.status.success(), "{}", text(&admin));

    let unknown = ask("tandem.v1.MenteeService");
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("does not serve"),
        "{}",
        text(&unknown)
    );

    let malformed = tandem(&["health", "--addr", "http://127.0.0.1:1"], &[])
        .output()
        .expect("run tandem health");
    assert_eq!(malformed.status.code(), Some(1));
    assert!(text(&malformed).contains("--addr"), "{}", text(&malformed));
}

#[tokio::test]
async fn not_serving_and_nobody_listening_are_failures_that_say_so() {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let options = |addr: String| HealthOptions {
        addr,
        service: String::new(),
        timeout: 3,
    };
    let err = run(&options(addr.to_string()))
        .await
        .expect_err("not serving")
        .to_string();
    assert!(err.ends_with("is NOT_SERVING"), "{err}");
    server.abort();

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address");
    let err = run(&options(closed.to_string()))
        .await
        .expect_err("nobody listening");
    assert!(
        format!("{err:#}").contains("cannot connect to the health port"),
        "{err:#}"
    );
}
