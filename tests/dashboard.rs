//! The operators' dashboard in a real browser: after the demo ran, headless Chromium opens the
//! page over HTTPS with the operator key in the URL fragment. Chromium does not know the demo's
//! CA; it is told to accept the one key of the demo's API certificate (an SPKI pin), so any
//! other certificate problem still fails the page. The numbers it shows must be the broker's
//! (counts of people from 1 to 4 as "<5"), both charts must be drawn, and the page must make
//! no request outside the broker. A screenshot is saved for review.
//!
//! Needs `chromium` (Debian's package). Without it the test fails when `CI` or
//! `TANDEM_REQUIRE_CHROMIUM` is set, and is skipped loudly otherwise.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tandem_cli::demo::{self, DemoOptions, federation::demo_key};
use tandem_e2e::https_get;
use tandem_proto::GetNetworkStatsRequest;

/// Connections Chromium 156 opens at every start whatever the page (it does the same on
/// `about:blank`), which no command-line flag switches off: a sign-in preconnect and the
/// component updater. They are reported, not counted against the page; any other connection
/// fails the test.
fn chromiums_own(first_line: &str) -> bool {
    first_line == "CONNECT accounts.google.com:443 HTTP/1.1"
        || first_line == "CONNECT update.googleapis.com:443 HTTP/1.1"
        || first_line.starts_with("POST http://update.googleapis.com/service/update2/json?")
}

/// Longest a browser run may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// Returns the Chromium binary, or `None` when it is not installed.
fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("TANDEM_CHROMIUM")
        && !path.is_empty()
    {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The "<5" rule of the page: counts of people from 1 to 4 are shown as "<5".
fn shown(n: u64) -> String {
    if (1..=4).contains(&n) {
        "<5".to_owned()
    } else {
        n.to_string()
    }
}

/// A TCP listener that counts connections and keeps what each sent first. Chromium uses it as
/// its proxy: loopback bypasses a proxy, so the broker is reached directly and anything else
/// the page tried would land here.
struct Recorder {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    fn start() -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count, seen) = (Arc::clone(&connections), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut first = [0u8; 256];
                let n = stream.read(&mut first).unwrap_or(0);
                let line = String::from_utf8_lossy(&first[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
                // Refuse whatever it was.
                let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            }
        });
        Ok(Self {
            addr,
            connections,
            requests,
        })
    }
}

/// Runs Chromium headless on `url` with extra arguments; returns its stdout.
fn browse(
    chromium: &Path,
    proxy: SocketAddr,
    url: &str,
    extra: &[String],
) -> anyhow::Result<String> {
    let profile = tempfile::Builder::new()
        .prefix("tandem-chromium-")
        .tempdir()?;
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--hide-scrollbars",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--no-pings",
            // Chromium's own calls home that a flag can switch off: network time, autofill
            // field types (the login form would ask), hints, media router, translation.
            "--disable-features=NetworkTimeServiceQuerying,AutofillServerCommunication,OptimizationHints,MediaRouter,Translate",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://{proxy}"))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", chromium.display()))?;
    let mut stdout = child.stdout.take().context("chromium stdout")?;
    let mut stderr = child.stderr.take().context("chromium stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    anyhow::ensure!(status.success(), "chromium failed ({status}): {stderr}");
    Ok(stdout)
}

/// Returns what Chromium's `--ignore-certificate-errors-spki-list` takes for the certificate
/// whose private key is in `key_pem`: the base64 of the SHA-256 of its SubjectPublicKeyInfo.
/// Chromium then accepts that one key (issued by the demo's own CA, which it does not know) and
/// still refuses any other certificate error.
fn spki_pin(key_pem: &Path) -> anyhow::Result<String> {
    use rcgen::PublicKeyData;
    use sha2::{Digest, Sha256};
    let pem = std::fs::read_to_string(key_pem)
        .with_context(|| format!("cannot read {}", key_pem.display()))?;
    let key = rcgen::KeyPair::from_pem(&pem)?;
    Ok(base64(&Sha256::digest(key.subject_public_key_info())))
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Returns the text of every element with a `data-metric` attribute in a serialised DOM
/// (the page puts plain text, no markup, inside them).
fn metrics_of(dom: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut rest = dom;
    while let Some(at) = rest.find("data-metric=\"") {
        rest = &rest[at + "data-metric=\"".len()..];
        let Some(end) = rest.find('"') else { break };
        let name = rest[..end].to_owned();
        let Some(open) = rest.find('>') else { break };
        let text = &rest[open + 1..];
        let close = text.find('<').unwrap_or(text.len());
        let value = text[..close]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        found.insert(name, value);
    }
    found
}

/// Returns the markup of the `<svg>` with the given id.
fn svg_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let Some(start) = dom.find(&format!("<svg id=\"{id}\"")) else {
        return "";
    };
    let end = dom[start..].find("</svg>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

fn require_chromium() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        let required = ["CI", "TANDEM_REQUIRE_CHROMIUM"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty() && s != "0" && s != "false"));
        assert!(
            !required,
            "chromium not found: install Debian's `chromium` package (apt-get install -y chromium) or set TANDEM_CHROMIUM to the browser binary"
        );
        eprintln!(
            "\n\n!!!!!!!! skipped: chromium not found (install `chromium` to run the dashboard browser test; CI requires it) !!!!!!!!\n"
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_brokers_figures_in_a_browser() -> anyhow::Result<()> {
    let Some(chromium) = require_chromium() else {
        return Ok(());
    };
    let options = DemoOptions {
        data_dir: None,
        seed: 7,
        mentors_per_node: 20,
        mentees: 60,
        rounds: 2,
        json: true,
        serve: false,
    };
    let running = demo::script::start(options, false).await?;
    let result = check_page(&chromium, &running.federation).await;
    running.federation.shutdown().await;
    result
}

async fn check_page(
    chromium: &Path,
    federation: &tandem_cli::demo::federation::Federation,
) -> anyhow::Result<()> {
    let stats = federation
        .operator_client()
        .await?
        .get_network_stats(GetNetworkStatsRequest {})
        .await?
        .into_inner();
    assert!(stats.tandems > 0, "the demo formed tandems: {stats:?}");
    let key = demo_key("operator");
    let addr = federation.dashboard_addr;
    let ca = federation.ca_cert();
    let (status, body) = tokio::task::spawn_blocking(move || {
        https_get(
            addr,
            "127.0.0.1",
            "/api/dashboard",
            &demo_key("operator"),
            &ca,
        )
    })
    .await??;
    assert_eq!(status, 200, "{body}");
    let figures: serde_json::Value = serde_json::from_str(&body)?;

    let recorder = Recorder::start()?;
    let url = federation.dashboard_url();
    assert!(url.starts_with("https://"), "{url}");
    assert!(url.ends_with(&format!("#key={key}")));
    let proxy = recorder.addr;
    let pin = format!(
        "--ignore-certificate-errors-spki-list={}",
        spki_pin(&federation.certs_dir().join("api-key.pem"))?
    );
    let dom = {
        let (chromium, url, pin) = (chromium.to_path_buf(), url.clone(), pin.clone());
        tokio::task::spawn_blocking(move || {
            browse(&chromium, proxy, &url, &["--dump-dom".to_owned(), pin])
        })
        .await??
    };
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page loaded its figures:\n{dom}"
    );
    let shown_on_page = metrics_of(&dom);
    let on_page = |name: &str| -> &str {
        shown_on_page
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no data-metric {name:?} on the page:\n{dom}"))
    };

    // Counts of people, checked against OperatorService.GetNetworkStats.
    let mut expected: Vec<(String, String)> = vec![
        (
            "mentees.waiting".into(),
            shown(stats.mentees_waiting.into()),
        ),
        (
            "mentees.proposed".into(),
            shown(stats.mentees_proposed.into()),
        ),
        (
            "mentees.in_tandem".into(),
            shown(stats.mentees_in_tandem.into()),
        ),
        ("tandems.total".into(), shown(stats.tandems.into())),
        (
            "tandems.cross_node".into(),
            shown(stats.cross_node_tandems.into()),
        ),
        ("rounds.total".into(), stats.matching_rounds.to_string()),
        ("tandems.active".into(), shown(stats.tandems_active.into())),
        (
            "tandems.starting".into(),
            shown(stats.tandems_starting.into()),
        ),
        (
            "tandems.overdue".into(),
            shown(stats.tandems_overdue.into()),
        ),
        (
            "tandems.completed".into(),
            shown(stats.tandems_completed.into()),
        ),
        (
            "tandems.ended_early".into(),
            shown(stats.tandems_ended_early.into()),
        ),
    ];
    for node in &stats.nodes {
        let id = &node.node_id;
        expected.push((format!("node.{id}.tandems"), shown(node.tandems.into())));
        // Profiles and places are not people's counts: exact.
        expected.push((format!("node.{id}.profiles"), node.profiles.to_string()));
        expected.push((
            format!("node.{id}.free_capacity"),
            node.free_capacity.to_string(),
        ));
        expected.push((format!("node.{id}.health"), "healthy".to_owned()));
    }
    // Dead letters per node, checked against the JSON endpoint (the demo has none).
    for node in figures["nodes"].as_array().context("nodes")? {
        let id = node["node_id"].as_str().context("node id")?;
        let dead = node["outbox_dead_letters"]
            .as_u64()
            .context("dead letters")?;
        expected.push((format!("node.{id}.outbox_dead_letters"), dead.to_string()));
    }
    for reason in &stats.waiting_reasons {
        expected.push((
            format!("unmatched.{}", reason.reason),
            shown(reason.mentees.into()),
        ));
    }
    // The funnel, checked against the JSON endpoint.
    for stage in figures["funnel"]["stages"].as_array().context("stages")? {
        let key = stage["key"].as_str().context("stage key")?;
        let count = stage["count"].as_u64().context("stage count")?;
        expected.push((format!("funnel.{key}"), shown(count)));
        if let Some(rate) = stage["rate_of_previous"].as_f64() {
            expected.push((
                format!("funnel.{key}.rate"),
                format!("{}%", (rate * 100.0).round()),
            ));
        }
    }
    let share = figures["tandems"]["cross_node_share"]
        .as_f64()
        .context("share")?;
    expected.push((
        "tandems.cross_node_share".into(),
        format!("{}%", (share * 100.0).round()),
    ));
    for (name, want) in &expected {
        assert_eq!(on_page(name), want, "data-metric {name}");
    }
    assert!(
        expected.iter().any(|(_, v)| v == "<5"),
        "this demo has small counts, so the \"<5\" rule is exercised: {expected:?}"
    );
    assert!(
        expected
            .iter()
            .any(|(_, v)| v.parse::<u64>().is_ok_and(|n| n >= 5)),
        "and counts of 5 or more shown as they are"
    );
    // Durations are shown for people; the raw value rides along for checking.
    let median = figures["time_to_match"]["median_ms"]
        .as_i64()
        .context("median")?;
    assert!(
        dom.contains(&format!(
            "data-metric=\"time_to_match.median\" data-raw=\"{median}\""
        )),
        "the median time to match {median} ms is on the page"
    );
    assert!(!on_page("time_to_match.median").is_empty());

    // Both charts are drawn.
    let funnel = svg_of(&dom, "chart-funnel");
    let stages = figures["funnel"]["stages"].as_array().map_or(0, Vec::len);
    assert_eq!(
        funnel.matches("data-stage=").count(),
        stages,
        "one bar per funnel stage:\n{funnel}"
    );
    let time = svg_of(&dom, "chart-time");
    let series = if figures["time_to_match"]["by_day"]
        .as_array()
        .map_or(0, Vec::len)
        >= 2
    {
        "by_day"
    } else {
        "by_round"
    };
    let points = figures["time_to_match"][series]
        .as_array()
        .map_or(0, Vec::len);
    assert!(points > 0);
    assert_eq!(
        time.matches("data-point=").count(),
        points,
        "one bar per {series} point:\n{time}"
    );
    assert_eq!(time.matches("<circle").count(), points);

    // A screenshot for people to review.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    {
        let (chromium, url, shot) = (chromium.to_path_buf(), url.clone(), shot.clone());
        let pin = pin.clone();
        tokio::task::spawn_blocking(move || {
            browse(
                &chromium,
                proxy,
                &url,
                &[
                    format!("--screenshot={}", shot.display()),
                    "--window-size=1366,900".to_owned(),
                    pin,
                ],
            )
        })
        .await??;
    }
    let png =
        std::fs::read(&shot).with_context(|| format!("no screenshot at {}", shot.display()))?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    println!("dashboard screenshot: {}", shot.display());

    // Every accepted connection is read (up to two seconds) before its line is kept.
    let deadline = Instant::now() + Duration::from_secs(5);
    let requests = loop {
        let requests = recorder
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if requests.len() >= recorder.connections.load(Ordering::SeqCst)
            || Instant::now() > deadline
        {
            break requests;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        recorder.connections.load(Ordering::SeqCst),
        requests.len(),
        "every connection to the recorder was read"
    );
    // A connection that closed or stayed silent carried no request: Chromium opens speculative
    // connections (through the proxy too) and drops them unused when it exits.
    let silent = requests.iter().filter(|line| line.is_empty()).count();
    if silent > 0 {
        println!("{silent} connection(s) to the recorder carried no request");
    }
    let (own, outside): (Vec<&String>, Vec<&String>) = (requests.iter())
        .filter(|line| !line.is_empty())
        .partition(|line| chromiums_own(line));
    if !own.is_empty() {
        println!(
            "chromium's own start-up connections (not the page's), refused by the recorder: {own:?}"
        );
    }
    assert!(
        outside.is_empty(),
        "the page made requests outside the broker: {outside:?}"
    );
    Ok(())
}

#[test]
fn the_rule_and_the_dom_reader() {
    assert!(chromiums_own("CONNECT accounts.google.com:443 HTTP/1.1"));
    assert!(!chromiums_own("CONNECT fonts.googleapis.com:443 HTTP/1.1"));
    assert!(!chromiums_own("GET http://cdn.example/chart.js HTTP/1.1"));
    assert_eq!(
        [0, 1, 4, 5, 12].map(shown),
        ["0", "<5", "<5", "5", "12"].map(String::from)
    );
    let dom = r#"<td class="num" data-metric="a.b">&lt;5</td><span data-metric="c" data-raw="3">3 s</span>"#;
    let found = metrics_of(dom);
    assert_eq!(found["a.b"], "<5");
    assert_eq!(found["c"], "3 s");
}
