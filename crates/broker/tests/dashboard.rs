//! The operators' dashboard over HTTP: who may read it (401/403), that its figures match what
//! happened in the network, and that `/metrics` is valid Prometheus text.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use support::{ACME, GLOBEX, Harness, TestNode, key_of, mentee, mentor, submission};
use tandem_proto::{
    CareerLevel, CompanyDecision, ListProposalsRequest, MentorDecision, RegisterNodeRequest,
    RespondToProposalRequest, RunMatchingRoundRequest, SyncNodesRequest, Topic,
};
use tower::ServiceExt;

/// An answer of the dashboard's router.
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("json body")
    }
}

async fn get(harness: &Harness, path: &str, authorization: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = tandem_broker::dashboard::router(harness.broker.clone())
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible router");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
    }
}

/// Starts a broker over PostgreSQL when `TANDEM_TEST_POSTGRES_URL` is set, else over SQLite.
async fn harness() -> Harness {
    match std::env::var("TANDEM_TEST_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => {
            let url = tandem_storage::create_scratch_database(&server, "tandem_dashboard")
                .await
                .expect("scratch database");
            Harness::start(support::quiet_config(&url), None).await
        }
        _ => Harness::sqlite().await,
    }
}

fn bearer(tenant: &str) -> String {
    format!("Bearer {}", key_of(tenant))
}

#[tokio::test]
async fn data_needs_an_operator_key_and_the_page_carries_a_strict_policy() {
    let harness = harness().await;
    for path in ["/api/dashboard", "/metrics"] {
        let missing = get(&harness, path, None).await;
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            missing.json()["error"]
                .as_str()
                .expect("error")
                .contains("missing api key"),
            "{}",
            missing.body
        );
        assert!(missing.headers.contains_key(header::WWW_AUTHENTICATE));

        for wrong in [
            "Bearer tdm_nope_0000000000000000000000000000000000",
            "Basic b3BlcmF0b3I6eA==",
            "Bearer",
        ] {
            let refused = get(&harness, path, Some(wrong)).await;
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path} {wrong}");
            assert_eq!(refused.json()["error"], "invalid api key");
        }

        let company = get(&harness, path, Some(&bearer(ACME))).await;
        assert_eq!(company.status, StatusCode::FORBIDDEN, "{path}");
        let message = company.json()["error"].as_str().expect("error").to_owned();
        assert!(message.contains("operator key"), "{message}");

        let operator = get(&harness, path, Some(&bearer("operator"))).await;
        assert_eq!(operator.status, StatusCode::OK, "{path}: {}", operator.body);
        assert_eq!(
            operator.headers[header::CACHE_CONTROL],
            "no-store",
            "figures are never cached"
        );
    }

    let page = get(&harness, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<script src=\"/dashboard.js\""));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert!(
        !page.body.contains("<script>") && !page.body.contains("style="),
        "no inline code or style: the policy would block it"
    );
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    for (asset, kind) in [
        ("/dashboard.js", "text/javascript"),
        ("/dashboard.css", "text/css"),
    ] {
        let answer = get(&harness, asset, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        assert!(
            answer.headers[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with(kind)
        );
        // The SVG namespace is a name, not an address the page loads.
        let body = answer.body.replace("'http://www.w3.org/2000/svg'", "");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset} refers to nothing outside the broker"
        );
    }
    let health = get(&harness, "/healthz", None).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let unknown = get(&harness, "/api/nothing", Some(&bearer("operator"))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"], "no such page");
    harness.stop().await;
}

/// Runs a small network: two mentors at `assoc`, a node nobody can reach, four mentees of
/// which one speaks no mentor's language; one proposal becomes a tandem, one is declined by
/// the mentor.
async fn small_network(harness: &Harness) -> (TestNode, u32) {
    let assoc = TestNode::start("assoc").await;
    assoc.publish(mentor(
        1,
        CareerLevel::Director,
        &[Topic::Leadership, Topic::Financing],
    ));
    assoc.publish(mentor(2, CareerLevel::Director, &[Topic::Leadership]));
    harness.register(&assoc).await;
    let mut operator = harness.operator();
    // A port nothing listens on: its sync fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_endpoint = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    operator
        .register_node(RegisterNodeRequest {
            node_id: "offline".into(),
            endpoint: dead_endpoint,
            display_name: "Offline network".into(),
            identity: String::new(),
        })
        .await
        .expect("register");

    let mut acme = harness.company(ACME);
    let mut ids = Vec::new();
    for n in 0..3 {
        let m = acme
            .submit_mentee(submission(&format!("m{n}"), mentee()))
            .await
            .expect("submit")
            .into_inner();
        ids.push(m.mentee_id);
    }
    let mut finnish = mentee();
    finnish.languages = vec!["fi".into()];
    harness
        .company(GLOBEX)
        .submit_mentee(submission("fi", finnish))
        .await
        .expect("submit");

    operator
        .sync_nodes(SyncNodesRequest::default())
        .await
        .expect("sync");
    let round = operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await
        .expect("round")
        .into_inner();
    assert_eq!(round.proposals, 3, "{round:?}");
    harness.settle().await;

    let mut proposals = Vec::new();
    for id in &ids {
        let list = acme
            .list_proposals(ListProposalsRequest {
                mentee_id: id.clone(),
            })
            .await
            .expect("proposals")
            .into_inner()
            .proposals;
        proposals.push(list[0].proposal_id.clone());
    }
    assoc.decide(&proposals[0], MentorDecision::Accepted);
    assoc.decide(&proposals[1], MentorDecision::Declined);
    operator
        .sync_nodes(SyncNodesRequest {
            node_id: "assoc".into(),
        })
        .await
        .expect("sync");
    acme.respond_to_proposal(RespondToProposalRequest {
        proposal_id: proposals[0].clone(),
        decision: CompanyDecision::Confirmed as i32,
    })
    .await
    .expect("confirm");
    (assoc, round.proposals)
}

#[tokio::test]
async fn the_figures_match_what_happened() {
    let harness = harness().await;
    let (assoc, _) = small_network(&harness).await;
    let answer = get(&harness, "/api/dashboard", Some(&bearer("operator"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let d = answer.json();

    assert_eq!(d["mentees"]["submitted"], 4);
    assert_eq!(d["mentees"]["in_tandem"], 1);
    assert_eq!(d["mentees"]["proposed"], 1);
    // The declined mentee and the Finnish speaker wait.
    assert_eq!(d["mentees"]["waiting"], 2);
    assert_eq!(d["tandems"]["total"], 1);
    assert_eq!(d["tandems"]["cross_node"], 1);
    assert_eq!(d["tandems"]["cross_node_share"], 1.0);

    let stages: Vec<(String, u64)> = d["funnel"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["key"].as_str().expect("key").to_owned(),
                s["count"].as_u64().expect("count"),
            )
        })
        .collect();
    let expected = [
        ("proposals_made", 3),
        ("mentor_accepted", 1),
        ("company_confirmed", 1),
        ("tandem_formed", 1),
        // Nobody recorded goals yet.
        ("tandem_active", 0),
        ("tandem_completed", 0),
    ];
    assert_eq!(
        stages,
        expected.map(|(k, n)| (k.to_owned(), n)).to_vec(),
        "{}",
        d["funnel"]
    );
    let rate = d["funnel"]["stages"][1]["rate_of_previous"]
        .as_f64()
        .expect("rate");
    assert!((rate - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(d["funnel"]["outcomes"]["open"], 1);
    assert_eq!(d["funnel"]["outcomes"]["declined_by_mentor"], 1);

    let ttm = &d["time_to_match"];
    assert_eq!(ttm["tandems"], 1);
    let median = ttm["median_ms"].as_i64().expect("median");
    assert!(median >= 0 && ttm["p90_ms"].as_i64() == Some(median));
    assert_eq!(ttm["by_round"].as_array().expect("series").len(), 1);
    assert_eq!(ttm["by_day"][0]["tandems"], 1);

    let nodes = d["nodes"].as_array().expect("nodes");
    let node = |id: &str| {
        nodes
            .iter()
            .find(|n| n["node_id"] == id)
            .unwrap_or_else(|| panic!("node {id}"))
    };
    let a = node("assoc");
    assert_eq!(a["profiles"], 2);
    assert_eq!(a["tandems"], 1);
    assert_eq!(a["stale"], false);
    assert_eq!(a["outbox_dead_letters"], 0);
    assert!(a["last_error"].is_null());
    assert!(a["last_sync_at_ms"].as_i64().expect("synced") > 0);
    assert!(a["sync_lag_secs"].as_u64().expect("lag") < 60);
    let off = node("offline");
    assert_eq!(off["stale"], true, "never synced");
    assert!(off["last_sync_at_ms"].is_null());
    assert!(!off["last_error"].as_str().expect("error").is_empty());

    assert_eq!(d["rounds"]["total"], 1);
    assert_eq!(d["rounds"]["latest"][0]["proposals"], 3);
    assert_eq!(d["rounds"]["latest"][0]["mentees_considered"], 4);

    let reasons: u64 = d["unmatched"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["mentees"].as_u64().expect("count"))
        .sum();
    assert_eq!(reasons, 2, "every waiting mentee has a reason");
    assert!(
        d["unmatched"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r["reason"] == "awaiting_round"),
        "the declined mentee waits for the next round: {}",
        d["unmatched"]
    );
    assoc.stop().await;
    harness.stop().await;
}

/// Checks one line of the text exposition format: a comment, or `name{labels} value`.
fn check_line(line: &str) -> Result<Option<(String, f64)>, String> {
    if let Some(comment) = line.strip_prefix("# ") {
        let mut words = comment.splitn(3, ' ');
        return match (words.next(), words.next(), words.next()) {
            (Some("HELP"), Some(name), Some(_)) if name.starts_with("tandem_") => Ok(None),
            (Some("TYPE"), Some(name), Some("gauge" | "counter" | "histogram"))
                if name.starts_with("tandem_") =>
            {
                Ok(None)
            }
            _ => Err(format!("bad comment {line:?}")),
        };
    }
    let (series, value) = line
        .rsplit_once(' ')
        .ok_or_else(|| format!("no value: {line:?}"))?;
    let value: f64 = value
        .parse()
        .map_err(|_| format!("bad value in {line:?}"))?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (
            name,
            Some(
                rest.strip_suffix('}')
                    .ok_or_else(|| format!("unclosed labels: {line:?}"))?,
            ),
        ),
        None => (series, None),
    };
    let valid_name = name.starts_with("tandem_")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if !valid_name {
        return Err(format!("bad metric name in {line:?}"));
    }
    if let Some(labels) = labels {
        // label="value" pairs separated by commas; values escape \ " and newlines.
        let mut rest = labels;
        while !rest.is_empty() {
            let (label, after) = rest
                .split_once("=\"")
                .ok_or_else(|| format!("bad label in {line:?}"))?;
            if label.is_empty()
                || !label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(format!("bad label name in {line:?}"));
            }
            let mut end = None;
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| format!("unterminated label value in {line:?}"))?;
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    Ok(Some((series.to_owned(), value)))
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_exact_figures() {
    let harness = harness().await;
    let (assoc, proposals) = small_network(&harness).await;
    let answer = get(&harness, "/metrics", Some(&bearer("operator"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let mut samples = std::collections::HashMap::new();
    for line in answer.body.lines() {
        match check_line(line) {
            Ok(Some((series, value))) => {
                samples.insert(series, value);
            }
            Ok(None) => {}
            Err(problem) => panic!("{problem}\n{}", answer.body),
        }
    }
    let sample = |s: &str| {
        *samples
            .get(s)
            .unwrap_or_else(|| panic!("{s} missing:\n{}", answer.body))
    };
    assert_eq!(sample("tandem_tandems"), 1.0);
    // Exact counts, no "<5" here.
    assert_eq!(sample("tandem_mentees{status=\"waiting\"}"), 2.0);
    assert_eq!(
        sample("tandem_funnel_proposals{stage=\"proposals_made\"}"),
        f64::from(proposals)
    );
    assert_eq!(sample("tandem_node_profiles{node=\"assoc\"}"), 2.0);
    assert_eq!(sample("tandem_node_stale{node=\"offline\"}"), 1.0);
    assert_eq!(sample("tandem_node_sync_error{node=\"offline\"}"), 1.0);
    assert_eq!(sample("tandem_node_stale{node=\"assoc\"}"), 0.0);
    assert_eq!(
        sample("tandem_node_outbox_dead_letters{node=\"assoc\"}"),
        0.0
    );
    assert_eq!(sample("tandem_matching_rounds"), 1.0);
    // The time to match is a histogram over every tandem: one tandem, in some bucket.
    assert_eq!(sample("tandem_time_to_match_seconds_count"), 1.0);
    assert_eq!(
        sample("tandem_time_to_match_seconds_bucket{le=\"+Inf\"}"),
        1.0
    );
    assert!(sample("tandem_time_to_match_seconds_sum") >= 0.0);
    assert!(samples.contains_key("tandem_node_sync_lag_seconds{node=\"assoc\"}"));
    assert!(
        !samples.contains_key("tandem_node_sync_lag_seconds{node=\"offline\"}"),
        "a node never synced has no lag"
    );
    // Every sample's family was announced before it.
    for line in answer.body.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().expect("name");
        let histogram = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| answer.body.contains(&format!("# TYPE {base} histogram\n")));
        assert!(
            histogram.is_some() || answer.body.contains(&format!("# TYPE {name} gauge\n")),
            "{name} has no TYPE line"
        );
    }
    assoc.stop().await;
    harness.stop().await;
}

#[test]
fn the_line_checker_rejects_malformed_lines() {
    assert!(check_line("tandem_x 1").is_ok());
    assert!(check_line("tandem_x{a=\"b\\\"c\",d=\"e\"} 2.5").is_ok());
    for bad in [
        "tandem_x",
        "tandem_x one",
        "other_x 1",
        "tandem_x{a=b} 1",
        "tandem_x{a=\"b} 1",
        "# NOTE tandem_x",
    ] {
        assert!(check_line(bad).is_err(), "{bad}");
    }
}
