//! `tandem demo`: a whole federation in one process. Three networks start their nodes, the
//! broker registers them, association staff enter mentors, member companies submit mentees,
//! the broker syncs and matches across node boundaries, mentors and companies answer, and the
//! demo prints what happened.

pub mod federation;
pub mod population;
pub mod script;
pub mod summary;

use std::path::PathBuf;

use clap::Args;

pub use script::run;
pub use summary::DemoSummary;

/// Options of `tandem demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoOptions {
    /// Directory for the broker's and nodes' SQLite databases (default: a temporary directory,
    /// removed at exit). Must not already hold a federation.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed of the synthetic population; the same seed gives the same federation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Mentors each of the three networks enters.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub mentors_per_node: u32,
    /// Mentees the member companies submit.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=20000))]
    pub mentees: u32,
    /// Matching rounds to run (mentees declined in one round get a new proposal in the next).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub rounds: u32,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep the federation running after the script, print the operators' dashboard URL and
    /// key, and serve until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub serve: bool,
}

/// Runs the demo and prints its summary; with `--serve`, then serves until `shutdown`
/// completes.
pub async fn run_and_print(
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let json = options.json;
    let serve = options.serve;
    let demo = script::start(options, !json).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&demo.summary)?);
    } else {
        print!("{}", demo.summary.render());
    }
    if serve {
        let key = federation::demo_key("operator");
        let ca = demo.federation.ca_cert();
        println!();
        println!("Operators' dashboard: {}", demo.federation.dashboard_url());
        println!("Operator API key:     {key}");
        println!("Development CA:       {}", ca.display());
        println!(
            "The federation keeps running over TLS with a certificate from this demo's own CA: a browser warns about it (accept it for this address), curl and grpcurl take it with --cacert / -cacert. Open the URL (the key travels in the fragment, never to a log), or query it, e.g.\n  curl --cacert {ca} -H \"Authorization: Bearer {key}\" https://{addr}/metrics\nand gRPC at {grpc}. Ctrl-C stops it.",
            ca = ca.display(),
            addr = demo.federation.dashboard_addr,
            grpc = demo.federation.broker_endpoint(),
        );
        shutdown.await;
        demo.federation.shutdown().await;
        println!("federation stopped");
        return Ok(());
    }
    demo.federation.shutdown().await;
    Ok(())
}
