//! `tandem bench service`: the service path at scale, as users meet it. A broker and its nodes
//! run in this process over real gRPC and TLS (the demo's federation, on SQLite files or
//! scratch PostgreSQL databases); the benchmark imports the mentors at the nodes, admits and
//! enrols the member companies, submits the mentees through the API from concurrent clients,
//! syncs, runs a round while a company keeps submitting, waits until every introduction of the
//! round has arrived at its node, reads the operators' figures, and prints each phase's time,
//! rate and the process's peak memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde::Serialize;
use tandem_proto::mentee_service_client::MenteeServiceClient;
use tandem_proto::{
    GetNetworkStatsRequest, RunMatchingRoundRequest, SubmitMenteeRequest, SyncNodesRequest,
};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use super::peak_memory_mib;
use crate::demo::federation::{Databases, Federation, NodeSpec, demo_key, with_key};
use crate::demo::population::{self, NETWORKS};

/// Options of `tandem bench service`.
#[derive(Debug, Clone, Args)]
pub struct BenchServiceOptions {
    /// Mentees the member companies submit.
    #[arg(long, default_value_t = 20_000)]
    pub mentees: usize,
    /// Mentors the associations enter, spread evenly over the nodes.
    #[arg(long, default_value_t = 10_000)]
    pub mentors: usize,
    /// Nodes (associations), 1 to 3.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub nodes: u8,
    /// Clients submitting mentees at the same time.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// A PostgreSQL server's URL (of an existing database, used to create one scratch database
    /// per part, e.g. `postgres://postgres@127.0.0.1:5432/postgres`); SQLite files in a
    /// temporary directory without it.
    #[arg(long)]
    pub database: Option<String>,
    /// How long to wait for the round's introductions to arrive at the nodes.
    #[arg(long, default_value_t = 900)]
    pub delivery_timeout_secs: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Prints the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Time and rate of a phase that handles `items` things.
#[derive(Debug, Serialize)]
struct Phase {
    items: usize,
    ms: u64,
    per_second: f64,
}

impl Phase {
    fn new(items: usize, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        Self {
            items,
            ms: elapsed.as_millis() as u64,
            per_second: if secs > 0.0 { items as f64 / secs } else { 0.0 },
        }
    }
}

/// Latencies of a set of calls, in milliseconds.
#[derive(Debug, Serialize)]
struct Latency {
    calls: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| {
            if samples.is_empty() {
                return 0.0;
            }
            let k = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[k].as_secs_f64() * 1000.0
        };
        Self {
            calls: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// The round as the operator sees it.
#[derive(Debug, Serialize)]
struct RoundFigures {
    mentees_considered: u32,
    mentors_considered: u32,
    proposals: u32,
    /// `RunMatchingRound` as the operator's client waits for it.
    wall_ms: u64,
    /// The engine's share: candidates, solve and pricing.
    engine_ms: i64,
    /// Wall time over the engine's share.
    wall_over_engine: f64,
    /// The broker's phases: reading the input, planning, writing.
    load_ms: i64,
    plan_ms: i64,
    write_ms: i64,
    /// Submissions a company sent while the round ran.
    submissions_during_round: Latency,
}

/// How the round's introductions reached one node.
#[derive(Debug, Serialize)]
struct NodeDelivery {
    node_id: String,
    mentors: usize,
    introductions: u64,
    /// From the round's answer to the node's last introduction.
    ms: u64,
    per_second: f64,
}

/// The round's introductions at the nodes.
#[derive(Debug, Serialize)]
struct Delivery {
    expected: u64,
    arrived: u64,
    /// From the round's answer until every introduction had arrived (or the timeout).
    ms: u64,
    complete: bool,
    nodes: Vec<NodeDelivery>,
}

/// Median times of the operators' reads.
#[derive(Debug, Serialize)]
struct Reads {
    dashboard_ms: f64,
    metrics_ms: f64,
    network_stats_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    database: &'static str,
    mentees: usize,
    mentors: usize,
    nodes: u8,
    companies: usize,
    concurrency: usize,
    seed: u64,
    mentor_entry: Phase,
    enrolment: Phase,
    submission: Phase,
    submission_latency: Latency,
    sync: Phase,
    round: RoundFigures,
    delivery: Delivery,
    reads: Reads,
    /// The whole process's: broker, nodes and clients together.
    peak_memory_mib: Option<f64>,
}

/// Runs `tandem bench service`.
pub async fn bench_service(options: &BenchServiceOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.mentees > 0, "--mentees must be at least 1");
    anyhow::ensure!(options.mentors > 0, "--mentors must be at least 1");
    anyhow::ensure!(options.concurrency > 0, "--concurrency must be at least 1");
    let tmp = tempfile::Builder::new().prefix("tandem-bench-").tempdir()?;
    let databases = match &options.database {
        Some(url) => Databases::Postgres(url.clone()),
        None => Databases::Sqlite(tmp.path().to_owned()),
    };
    let networks = &NETWORKS[..usize::from(options.nodes)];
    let specs: Vec<NodeSpec> = networks
        .iter()
        .map(|n| NodeSpec {
            node_id: n.node_id.into(),
            display_name: n.display_name.into(),
            publication: tandem_node::PublicationConfig::default(),
        })
        .collect();
    let federation_key = format!("bench-federation-key-{:016x}", options.seed);
    let federation = Federation::start(&databases, &federation_key, &specs, |config| {
        // One process drives every company: no per-key limits.
        config.rate_limit_per_second = 0;
    })
    .await?;
    let result = run(&federation, options).await;
    federation.shutdown().await;
    let report = result?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

async fn run(federation: &Federation, options: &BenchServiceOptions) -> anyhow::Result<Report> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let node_count = federation.nodes.len();

    // Each association imports its mentors at its node, as `tandem import mentors` does.
    let started = Instant::now();
    let mut employers = Vec::new();
    let mut mentors_per_node = Vec::new();
    for (k, network) in NETWORKS[..node_count].iter().enumerate() {
        let count = options.mentors / node_count + usize::from(k < options.mentors % node_count);
        let node_employers = population::employers(&mut rng, (count / 3).max(3));
        let mut mentors = Vec::with_capacity(count);
        for i in 0..count {
            let mut mentor = population::mentor(&mut rng, network, &node_employers);
            mentor.id = uuid::Builder::from_random_bytes(rng.random())
                .into_uuid()
                .to_string();
            mentor.member_number = format!("M-{i:06}");
            mentors.push(mentor);
        }
        federation.nodes[k]
            .state
            .import_mentors("bench", &mentors, false)
            .await
            .with_context(|| format!("importing mentors at {}", network.node_id))?;
        mentors_per_node.push(count);
        employers.extend(node_employers);
    }
    let mentor_entry = Phase::new(options.mentors, started.elapsed());

    // The associations admit their member companies; each enrols with its code.
    let started = Instant::now();
    let mut companies = population::companies(&mut rng, (options.mentees / 50).max(1), &employers);
    for (i, company) in companies.iter_mut().enumerate() {
        company.home_node_id = NETWORKS[i % node_count].node_id;
    }
    let mut keys = Vec::with_capacity(companies.len());
    for (i, company) in companies.iter().enumerate() {
        let enrolled = federation
            .admit_and_enrol(i % node_count, company.admission())
            .await?;
        keys.push(enrolled.api_key);
    }
    let enrolment = Phase::new(companies.len(), started.elapsed());

    // The companies submit their young leaders, `concurrency` calls at a time.
    let submissions: Vec<(String, SubmitMenteeRequest)> = (0..options.mentees)
        .map(|number| {
            let company = rng.random_range(0..companies.len());
            let seed = population::mentee(&mut rng, &companies, company, number);
            let request = SubmitMenteeRequest {
                idempotency_key: seed.idempotency_key,
                mentee: Some(seed.request),
            };
            (keys[company].clone(), request)
        })
        .collect();
    let submissions = Arc::new(submissions);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..options.concurrency {
        let mut client = federation.mentee_client().await?;
        let (submissions, next) = (Arc::clone(&submissions), Arc::clone(&next));
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((key, request)) = submissions.get(i) else {
                    return anyhow::Ok(latencies);
                };
                let sent = Instant::now();
                client
                    .submit_mentee(with_key(key, request.clone())?)
                    .await
                    .context("submitting a mentee")?;
                latencies.push(sent.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(options.mentees);
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    let submission = Phase::new(options.mentees, started.elapsed());
    let submission_latency = Latency::of(latencies);

    let mut operator = federation.operator_client().await?;
    let started = Instant::now();
    let synced = operator
        .sync_nodes(SyncNodesRequest::default())
        .await?
        .into_inner();
    if let Some(r) = synced.results.iter().find(|r| !r.error.is_empty()) {
        anyhow::bail!("sync of node {} failed: {}", r.node_id, r.error);
    }
    let published: u32 = synced.results.iter().map(|r| r.upserts).sum();
    let sync = Phase::new(published as usize, started.elapsed());

    // The round, while one company keeps submitting.
    let nodes: Vec<_> = node_databases(federation).await?;
    let before: Vec<u64> = count_each(&nodes).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let mut client = federation.mentee_client().await?;
        let key = keys[0].clone();
        let template = submissions[0].1.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move { probe_submissions(&mut client, &key, template, &stop).await })
    };
    let started = Instant::now();
    let round = operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?
        .into_inner();
    let round_wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during_round = probe.await??;
    let engine_ms = round.candidates_ms + round.solve_ms + round.pricing_ms;
    let round_figures = RoundFigures {
        mentees_considered: round.mentees_considered,
        mentors_considered: round.mentors_considered,
        proposals: round.proposals,
        wall_ms: round_wall.as_millis() as u64,
        engine_ms,
        wall_over_engine: round_wall.as_secs_f64() * 1000.0 / (engine_ms.max(1) as f64),
        load_ms: round.load_ms,
        plan_ms: round.plan_ms,
        write_ms: round.write_ms,
        submissions_during_round: Latency::of(during_round),
    };

    // Every introduction of the round at its node.
    let expected = u64::from(round.proposals);
    let deadline = started + round_wall + Duration::from_secs(options.delivery_timeout_secs);
    let mut last_change = vec![Duration::ZERO; nodes.len()];
    let mut seen = before.clone();
    let arrived = loop {
        let counts = count_each(&nodes).await?;
        for (k, &c) in counts.iter().enumerate() {
            if c != seen[k] {
                seen[k] = c;
                last_change[k] = started.elapsed().saturating_sub(round_wall);
            }
        }
        let arrived: u64 = counts.iter().zip(&before).map(|(c, b)| c - b).sum();
        if arrived >= expected || Instant::now() >= deadline {
            break arrived;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let delivery = Delivery {
        expected,
        arrived,
        ms: last_change
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_millis() as u64,
        complete: arrived >= expected,
        nodes: federation
            .nodes
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let introductions = seen[k] - before[k];
                let secs = last_change[k].as_secs_f64();
                NodeDelivery {
                    node_id: n.node_id.clone(),
                    mentors: mentors_per_node[k],
                    introductions,
                    ms: last_change[k].as_millis() as u64,
                    per_second: if secs > 0.0 {
                        introductions as f64 / secs
                    } else {
                        0.0
                    },
                }
            })
            .collect(),
    };

    // What the operators read.
    let operator_key = demo_key("operator");
    let mut dashboard = Vec::new();
    let mut metrics = Vec::new();
    let mut stats = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (status, _) = federation
            .dashboard_get("/api/dashboard", &operator_key)
            .await?;
        anyhow::ensure!(status == 200, "/api/dashboard answered {status}");
        dashboard.push(t.elapsed());
        let t = Instant::now();
        let (status, _) = federation.dashboard_get("/metrics", &operator_key).await?;
        anyhow::ensure!(status == 200, "/metrics answered {status}");
        metrics.push(t.elapsed());
        let t = Instant::now();
        operator
            .get_network_stats(GetNetworkStatsRequest {})
            .await?;
        stats.push(t.elapsed());
    }
    let reads = Reads {
        dashboard_ms: Latency::of(dashboard).p50_ms,
        metrics_ms: Latency::of(metrics).p50_ms,
        network_stats_ms: Latency::of(stats).p50_ms,
    };

    Ok(Report {
        database: if options.database.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        mentees: options.mentees,
        mentors: options.mentors,
        nodes: options.nodes,
        companies: companies.len(),
        concurrency: options.concurrency,
        seed: options.seed,
        mentor_entry,
        enrolment,
        submission,
        submission_latency,
        sync,
        round: round_figures,
        delivery,
        reads,
        peak_memory_mib: peak_memory_mib(),
    })
}

/// Connects to every node's database, to count the introductions that arrived.
async fn node_databases(
    federation: &Federation,
) -> anyhow::Result<Vec<sea_orm::DatabaseConnection>> {
    let mut out = Vec::new();
    for n in &federation.nodes {
        out.push(
            tandem_storage::connect(&n.database_url)
                .await
                .with_context(|| format!("opening the database of node {}", n.node_id))?,
        );
    }
    Ok(out)
}

async fn count_each(nodes: &[sea_orm::DatabaseConnection]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(nodes.len());
    for db in nodes {
        out.push(
            tandem_storage::node::introduction::Entity::find()
                .count(db)
                .await?,
        );
    }
    Ok(out)
}

/// Submits a new mentee every 20 ms until `stop`, and returns each call's latency.
async fn probe_submissions(
    client: &mut MenteeServiceClient<Channel>,
    key: &str,
    template: SubmitMenteeRequest,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut number = 0u32;
    while !stop.load(Ordering::Relaxed) {
        number += 1;
        let request = SubmitMenteeRequest {
            idempotency_key: format!("bench-during-round-{number:06}"),
            ..template.clone()
        };
        let sent = Instant::now();
        client
            .submit_mentee(with_key(key, request)?)
            .await
            .context("submitting a mentee during the round")?;
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(latencies)
}

fn print_report(r: &Report) {
    let phase = |name: &str, p: &Phase, unit: &str| {
        println!(
            "{name:<22} {:>8} {unit:<14} {:>9.1} s  {:>9.0}/s",
            p.items,
            p.ms as f64 / 1000.0,
            p.per_second
        );
    };
    println!(
        "tandem bench service: {} mentees, {} mentors on {} node(s), {} companies, {} ({} clients, seed {})",
        r.mentees, r.mentors, r.nodes, r.companies, r.database, r.concurrency, r.seed
    );
    phase("mentors imported", &r.mentor_entry, "mentors");
    phase("companies enrolled", &r.enrolment, "companies");
    phase("mentees submitted", &r.submission, "mentees");
    let l = &r.submission_latency;
    println!(
        "  SubmitMentee latency  p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        l.p50_ms, l.p99_ms, l.max_ms
    );
    phase("profiles synced", &r.sync, "profiles");
    let round = &r.round;
    println!(
        "matching round         {} mentees x {} mentors -> {} proposals: {:.2} s wall, engine {:.2} s ({:.1}x)",
        round.mentees_considered,
        round.mentors_considered,
        round.proposals,
        round.wall_ms as f64 / 1000.0,
        round.engine_ms as f64 / 1000.0,
        round.wall_over_engine
    );
    println!(
        "  phases: load {:.2} s, plan {:.2} s, write {:.2} s",
        round.load_ms as f64 / 1000.0,
        round.plan_ms as f64 / 1000.0,
        round.write_ms as f64 / 1000.0
    );
    let d = &round.submissions_during_round;
    println!(
        "  submissions during the round: {} calls, p50 {:.1} ms, max {:.1} ms",
        d.calls, d.p50_ms, d.max_ms
    );
    let delivery = &r.delivery;
    println!(
        "introductions at nodes {} of {} within {:.1} s of the round's answer{}",
        delivery.arrived,
        delivery.expected,
        delivery.ms as f64 / 1000.0,
        if delivery.complete {
            ""
        } else {
            " (timed out)"
        }
    );
    for n in &delivery.nodes {
        if n.ms == 0 {
            println!(
                "  {:<20} {:>6} mentors {:>7} introductions, delivered within the round's call",
                n.node_id, n.mentors, n.introductions
            );
            continue;
        }
        println!(
            "  {:<20} {:>6} mentors {:>7} introductions in {:>7.1} s  {:>7.0}/s",
            n.node_id,
            n.mentors,
            n.introductions,
            n.ms as f64 / 1000.0,
            n.per_second
        );
    }
    println!(
        "reads (median of 5)    /api/dashboard {:.1} ms, /metrics {:.1} ms, GetNetworkStats {:.1} ms",
        r.reads.dashboard_ms, r.reads.metrics_ms, r.reads.network_stats_ms
    );
    if let Some(mib) = r.peak_memory_mib {
        println!(
            "peak memory            {mib:.0} MiB (the whole process: broker, nodes and clients)"
        );
    }
}
