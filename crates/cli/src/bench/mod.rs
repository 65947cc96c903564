//! `tandem solve` and `tandem bench match`: the matching engine on its own, with figures;
//! `tandem bench service`: the whole service around it ([`service`]).

pub mod population;
pub mod service;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tandem_assignment::Solver;
use tandem_assignment::arcs_file::{read_instance, write_assignment, write_instance};
use tandem_matching::{Round, RoundOptions, RoundStats};

/// Options of `tandem solve`.
#[derive(Debug, Clone, Args)]
pub struct SolveOptions {
    /// Instance file: a header line `<mentees> <mentors> <arcs>`, a line of capacities, then
    /// one `<mentee> <mentor> <weight>` line per arc ('#' lines are comments).
    #[arg(long)]
    pub arcs: PathBuf,
    /// Writes one `<mentee> <mentor>` line per matched pair.
    #[arg(long)]
    pub assignment_out: Option<PathBuf>,
    /// Prints `{"objective": …, "matched": …, "solve_ms": …}`.
    #[arg(long)]
    pub json: bool,
}

/// Benchmarks.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// A whole matching round over a generated national population.
    Match(BenchMatchOptions),
    /// The service path: a broker and nodes over real gRPC and TLS, fed through the API.
    Service(service::BenchServiceOptions),
}

/// Options of `tandem bench match`.
#[derive(Debug, Clone, Args)]
pub struct BenchMatchOptions {
    #[arg(long, default_value_t = 50_000)]
    pub mentees: usize,
    #[arg(long, default_value_t = 25_000)]
    pub mentors: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Writes the solver's final graph (candidates plus pricing arcs) in `tandem solve`'s format.
    #[arg(long)]
    pub export_arcs: Option<PathBuf>,
    /// Prints the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct SolveReport {
    objective: i64,
    matched: usize,
    solve_ms: f64,
}

/// Runs `tandem solve`.
pub fn solve(options: &SolveOptions) -> anyhow::Result<()> {
    let file = File::open(&options.arcs)
        .with_context(|| format!("cannot open {}", options.arcs.display()))?;
    let instance = read_instance(BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("{}: {e}", options.arcs.display()))?;
    let started = Instant::now();
    let mut solver = Solver::new(&instance);
    solver.solve();
    let assignment = solver.assignment();
    let solve_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(path) = &options.assignment_out {
        let out =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        write_assignment(&assignment, BufWriter::new(out))?;
    }
    let report = SolveReport {
        objective: assignment.objective,
        matched: assignment.pairs.len(),
        solve_ms,
    };
    if options.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} mentees, {} mentors, {} arcs: objective {}, {} matched, solved in {:.1} ms",
            instance.agents,
            instance.capacities.len(),
            instance.edges.len(),
            report.objective,
            report.matched,
            report.solve_ms
        );
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct BenchReport {
    mentees: usize,
    mentors: usize,
    seed: u64,
    free_places: u64,
    generate_ms: u64,
    #[serde(flatten)]
    stats: RoundStats,
    graph_arcs: usize,
    round_ms: u64,
    objective: i64,
    matched: usize,
    warm_start_ms: f64,
    peak_memory_mib: Option<f64>,
}

/// Returns the process's peak resident memory in MiB (Linux), if known.
pub(crate) fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs `tandem bench match`.
pub fn bench_match(options: &BenchMatchOptions) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let generating = Instant::now();
    let mentors = population::mentors(&mut rng, options.mentors, 12);
    let mut mentees = population::mentees(&mut rng, options.mentees + 1, options.mentors);
    let extra = mentees.pop();
    let generate_ms = generating.elapsed().as_millis() as u64;

    let started = Instant::now();
    let mut round = Round::run(&mentees, &mentors, &RoundOptions::default());
    let round_ms = started.elapsed().as_millis() as u64;
    let graph = round.graph();
    if let Some(path) = &options.export_arcs {
        let out =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        write_instance(&graph, BufWriter::new(out))?;
    }
    let objective = round.plan.objective;
    let matched = round.plan.proposals.len();
    let warm = Instant::now();
    if let Some(extra) = &extra {
        round.add_mentee(extra);
    }
    let warm_start_ms = warm.elapsed().as_secs_f64() * 1000.0;

    let report = BenchReport {
        mentees: options.mentees,
        mentors: options.mentors,
        seed: options.seed,
        free_places: mentors.iter().map(|m| u64::from(m.free_capacity)).sum(),
        generate_ms,
        stats: round.plan.stats.clone(),
        graph_arcs: graph.edges.len(),
        round_ms,
        objective,
        matched,
        warm_start_ms,
        peak_memory_mib: peak_memory_mib(),
    };
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let s = &report.stats;
        println!(
            "population: {} mentees, {} mentors with {} free places (seed {}), generated in {} ms",
            report.mentees, report.mentors, report.free_places, report.seed, report.generate_ms
        );
        println!("feasible pairs:     {}", s.feasible_pairs);
        println!(
            "candidates:         {} arcs in {} ms",
            s.candidate_arcs, s.candidates_ms
        );
        println!("solve:              {} ms", s.solve_ms);
        println!(
            "pricing:            {} passes (every pair, then the pairs whose duals moved), {} arcs added, {} ms; optimal: {}",
            s.pricing_passes, s.pricing_arcs, s.pricing_ms, s.optimal
        );
        println!("explanations:       {} ms", s.explain_ms);
        println!("whole round:        {} ms", report.round_ms);
        println!(
            "objective:          {} ({} mentees matched)",
            report.objective, report.matched
        );
        println!("warm start (+1):    {:.2} ms", report.warm_start_ms);
        if let Some(mib) = report.peak_memory_mib {
            println!("peak memory:        {mib:.0} MiB");
        }
        if let Some(path) = &options.export_arcs {
            println!(
                "graph written to {} ({} arcs)",
                path.display(),
                report.graph_arcs
            );
        }
    }
    Ok(())
}
