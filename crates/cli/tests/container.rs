//! What a container needs from the binary: configuration from the environment alone (no file),
//! logs as JSON lines on request, and a clean stop on SIGTERM. The real binary, real databases.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A node's required keys as variables, its database in `dir`.
fn node_env(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("TANDEM_NODE_ID", "chamber".to_owned()),
        (
            "TANDEM_DISPLAY_NAME",
            "Rhine Chamber of Commerce".to_owned(),
        ),
        (
            "TANDEM_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("node.sqlite").display()),
        ),
        (
            "TANDEM_PSEUDONYM_SECRET",
            "0123456789abcdef0123456789abcdef".to_owned(),
        ),
        (
            "TANDEM_FEDERATION_KEY",
            "fedcba9876543210fedcba9876543210".to_owned(),
        ),
    ]
}

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

fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    tandem(args, env).output().expect("run tandem")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_environment_alone_configures_migrate_without_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(&["migrate", "node"], &node_env(dir.path()));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("node.sqlite").exists());

    let broker_db = dir.path().join("broker.sqlite");
    let output = run(
        &["migrate", "broker"],
        &[(
            "TANDEM_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", broker_db.display()),
        )],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(broker_db.exists());
}

#[test]
fn without_a_file_every_missing_required_key_is_named_with_its_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env: Vec<_> = node_env(dir.path())
        .into_iter()
        .filter(|(k, _)| *k != "TANDEM_NODE_ID" && *k != "TANDEM_FEDERATION_KEY")
        .collect();
    for command in [&["node"][..], &["migrate", "node"]] {
        let output = run(command, &env);
        assert!(!output.status.success());
        let err = stderr(&output);
        assert!(err.contains("missing configuration"), "{err}");
        assert!(err.contains("node_id (TANDEM_NODE_ID)"), "{err}");
        assert!(
            err.contains("federation_key (TANDEM_FEDERATION_KEY)"),
            "{err}"
        );
        assert!(!err.contains("pseudonym_secret"), "{err}");
        assert!(err.contains("--config"), "{err}");
    }
    let output = run(&["broker"], &[]);
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(err.contains("database_url (TANDEM_DATABASE_URL)"), "{err}");
}

#[test]
fn the_broker_takes_its_nodes_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("b.sqlite").display()
    );
    let env = [
        ("TANDEM_DATABASE_URL", db),
        // A malformed entry: the loader must have read TANDEM_NODES to refuse it.
        (
            "TANDEM_NODES",
            r#"[{id="ind-assoc", endpoint="https://node:7001", display_name="Southern Industry Association", colour="blue"}]"#
                .to_owned(),
        ),
    ];
    let output = run(&["migrate", "broker"], &env);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = node_env(dir.path());
    env.push(("TANDEM_LOG_FORMAT", "json".to_owned()));
    let output = run(&["migrate", "node"], &env);
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert!(!lines.is_empty(), "migrations log what they apply");
    for line in lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["fields"]["message"].is_string(), "{line}");
    }

    // The flag says the same, and a wrong value is refused naming the flag.
    let output = run(
        &["--log-format", "xml", "migrate", "node"],
        &node_env(dir.path()),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--log-format"),
        "{}",
        stderr(&output)
    );
}

#[cfg(unix)]
#[test]
fn sigterm_stops_a_node_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(&["migrate", "node"], &node_env(dir.path()));
    assert!(output.status.success(), "{}", stderr(&output));

    let mut env = node_env(dir.path());
    env.push(("TANDEM_LISTEN", "127.0.0.1:0".to_owned()));
    env.push(("TANDEM_ADMIN_LISTEN", "127.0.0.1:0".to_owned()));
    env.push(("TANDEM_LOG_FORMAT", "json".to_owned()));
    let mut child = tandem(&["node", "--insecure-dev"], &env)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let (lines_tx, lines) = mpsc::channel();
    let pipe = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let message = |line: &str| -> String {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["fields"]["message"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    // Ready once both services are served (the log says so), then SIGTERM.
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("node did not start: {seen:#?}"));
        let serving = message(&line) == "node serving NodeAdminService";
        seen.push(line);
        if serving {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let pid = child.id();
    let (exit_tx, exited) = mpsc::channel();
    std::thread::spawn(move || exit_tx.send(child.wait()));
    let status = match exited.recv_timeout(Duration::from_secs(30)) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("node did not stop within 30 s of SIGTERM: {seen:#?}");
        }
    };
    // The log pipe closes with the process: read it to its end.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        seen.push(line);
    }
    assert!(status.success(), "exit {status}: {seen:#?}");
    let messages: Vec<String> = seen.iter().map(|l| message(l)).collect();
    assert!(messages.iter().any(|m| m == "shutting down"), "{seen:#?}");
    assert!(messages.iter().any(|m| m == "node stopped"), "{seen:#?}");
}
