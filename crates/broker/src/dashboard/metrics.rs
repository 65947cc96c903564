//! The dashboard's figures in the Prometheus text exposition format (version 0.0.4), encoded by
//! `prometheus-client`: gauges named `tandem_…` computed from the database when scraped, and
//! the time to match as a histogram over every tandem (`histogram_quantile` gives its
//! quantiles), and the gRPC server's call metrics (`tandem_rpc_server_*`, see
//! `tandem_service::rpc::metrics`). Counts are exact (the "<5" rule is for the page).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::figures::Dashboard;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the time-to-match buckets: an hour, six hours, then days to half a year.
const TIME_TO_MATCH_BUCKETS_SECS: [f64; 11] = [
    3_600.0,
    21_600.0,
    86_400.0,
    3.0 * 86_400.0,
    7.0 * 86_400.0,
    14.0 * 86_400.0,
    30.0 * 86_400.0,
    60.0 * 86_400.0,
    90.0 * 86_400.0,
    120.0 * 86_400.0,
    180.0 * 86_400.0,
];

/// One sample: label pairs and a value.
type Sample<'a> = (Vec<(&'a str, &'a str)>, f64);

type Labels = Vec<(String, String)>;

/// The families of one scrape, registered as they are written.
struct Exposition {
    registry: Registry,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str, samples: &[Sample<'_>]) {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (labels, value) in samples {
            let labels: Labels = labels
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            family.get_or_create(&labels).set(*value);
        }
        self.registry.register(name, sentence(help), family);
    }

    fn single(&mut self, name: &str, help: &str, value: f64) {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(value);
        self.registry.register(name, sentence(help), gauge);
    }
}

/// The help text as `prometheus-client` wants it: it ends every help text with a full stop.
fn sentence(help: &str) -> &str {
    help.strip_suffix('.').unwrap_or(help)
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Renders the figures as Prometheus text.
pub fn render(d: &Dashboard) -> String {
    render_with(d, None)
}

/// Renders the figures and, when given, the gRPC server's call metrics as Prometheus text.
pub fn render_with(d: &Dashboard, rpc: Option<&tandem_service::rpc::RpcMetrics>) -> String {
    let mut e = Exposition {
        registry: Registry::default(),
    };
    let per_node = |f: &dyn Fn(&super::figures::NodeHealth) -> f64| -> Vec<Sample<'_>> {
        d.nodes
            .iter()
            .map(|n| (vec![("node", n.node_id.as_str())], f(n)))
            .collect()
    };
    e.family(
        "tandem_node_profiles",
        "Pseudonymised mentor profiles the broker holds per node.",
        &per_node(&|n| n.profiles as f64),
    );
    e.family(
        "tandem_node_free_capacity",
        "Free mentoring places per node.",
        &per_node(&|n| n.free_capacity as f64),
    );
    e.family(
        "tandem_node_tandems",
        "Tandems with a mentor of the node.",
        &per_node(&|n| n.tandems as f64),
    );
    e.family(
        "tandem_node_stale",
        "1 when the node has not synced within profile_staleness_secs (its profiles sit out of rounds).",
        &per_node(&|n| f64::from(u8::from(n.stale))),
    );
    e.family(
        "tandem_node_sync_error",
        "1 when the node's last sync failed.",
        &per_node(&|n| f64::from(u8::from(n.last_error.is_some()))),
    );
    e.family(
        "tandem_node_outbox_pending",
        "Messages for the node not yet acknowledged.",
        &per_node(&|n| n.outbox_pending as f64),
    );
    e.family(
        "tandem_node_outbox_dead_letters",
        "Messages for the node the broker gave up on (refused for good or failed too often), waiting for an operator.",
        &per_node(&|n| n.outbox_dead_letters as f64),
    );
    let synced: Vec<Sample<'_>> = d
        .nodes
        .iter()
        .filter_map(|n| Some((vec![("node", n.node_id.as_str())], secs(n.last_sync_at_ms?))))
        .collect();
    e.family(
        "tandem_node_last_sync_timestamp_seconds",
        "Unix time of the node's last successful sync (absent if never synced).",
        &synced,
    );
    let lag: Vec<Sample<'_>> = d
        .nodes
        .iter()
        .filter_map(|n| Some((vec![("node", n.node_id.as_str())], n.sync_lag_secs? as f64)))
        .collect();
    e.family(
        "tandem_node_sync_lag_seconds",
        "Seconds since the node's last successful sync (absent if never synced).",
        &lag,
    );

    let m = &d.mentees;
    e.family(
        "tandem_mentees",
        "Mentees by status.",
        &[
            (vec![("status", "waiting")], m.waiting as f64),
            (vec![("status", "proposed")], m.proposed as f64),
            (vec![("status", "in_tandem")], m.in_tandem as f64),
            (vec![("status", "withdrawn")], m.withdrawn as f64),
            (vec![("status", "finished")], m.finished as f64),
        ],
    );
    let t = &d.tandems;
    e.family(
        "tandem_tandems_by_state",
        "Tandems by lifecycle state.",
        &[
            (vec![("state", "starting")], t.starting as f64),
            (vec![("state", "active")], t.active as f64),
            (vec![("state", "completed")], t.completed as f64),
            (vec![("state", "ended_early")], t.ended_early as f64),
        ],
    );
    e.single(
        "tandem_tandems_overdue",
        "Active tandems whose next meeting is overdue (no check-in within cadence plus grace).",
        t.overdue as f64,
    );
    if let Some(attainment) = t.goal_attainment_percent {
        e.single(
            "tandem_goal_attainment_percent",
            "Mean goal attainment, percent of the way from baseline to target.",
            attainment as f64,
        );
    }
    e.single(
        "tandem_mentees_submitted",
        "Mentees submitted by member companies.",
        m.submitted as f64,
    );
    e.single("tandem_tandems", "Tandems formed.", d.tandems.total as f64);
    e.single(
        "tandem_tandems_cross_node",
        "Tandems whose mentor's node differs from the mentee's home node.",
        d.tandems.cross_node as f64,
    );
    if let Some(share) = d.tandems.cross_node_share {
        e.single(
            "tandem_tandems_cross_node_ratio",
            "Share of tandems that cross node boundaries.",
            share,
        );
    }

    let stages: Vec<Sample<'_>> = d
        .funnel
        .stages
        .iter()
        .map(|s| (vec![("stage", s.key)], s.count as f64))
        .collect();
    e.family(
        "tandem_funnel_proposals",
        "Proposals that reached each stage of the funnel (and every stage before it).",
        &stages,
    );
    let o = &d.funnel.outcomes;
    e.family(
        "tandem_proposals",
        "Proposals by current status.",
        &[
            (vec![("status", "open")], o.open as f64),
            (vec![("status", "tandem")], o.tandem as f64),
            (
                vec![("status", "declined_by_mentor")],
                o.declined_by_mentor as f64,
            ),
            (
                vec![("status", "declined_by_company")],
                o.declined_by_company as f64,
            ),
            (vec![("status", "expired")], o.expired as f64),
            (vec![("status", "withdrawn")], o.withdrawn as f64),
        ],
    );

    let time_to_match = Histogram::new(TIME_TO_MATCH_BUCKETS_SECS);
    for &wait_ms in &d.time_to_match.waits_ms {
        time_to_match.observe(secs(wait_ms));
    }
    e.registry.register(
        "tandem_time_to_match_seconds",
        sentence("Seconds from a mentee's submission until the tandem formed, over all tandems."),
        time_to_match,
    );

    e.single(
        "tandem_matching_rounds",
        "Matching rounds run.",
        d.rounds.total as f64,
    );
    if let Some(r) = d.rounds.latest.first() {
        e.single(
            "tandem_last_round_timestamp_seconds",
            "Unix time the latest matching round started.",
            secs(r.started_at_ms),
        );
        e.single(
            "tandem_last_round_duration_seconds",
            "Duration of the latest matching round.",
            secs(r.duration_ms),
        );
        e.single(
            "tandem_last_round_mentees_considered",
            "Waiting mentees the latest matching round considered.",
            r.mentees_considered as f64,
        );
        e.single(
            "tandem_last_round_proposals",
            "Proposals the latest matching round made.",
            r.proposals as f64,
        );
        e.single(
            "tandem_last_round_objective",
            "Total score of the latest matching round's assignment.",
            r.objective as f64,
        );
    }

    let reasons: Vec<Sample<'_>> = d
        .unmatched
        .iter()
        .map(|r| (vec![("reason", r.reason.as_str())], r.mentees as f64))
        .collect();
    e.family(
        "tandem_unmatched_mentees",
        "Waiting mentees by the reason they remain unmatched.",
        &reasons,
    );
    if let Some(rpc) = rpc {
        rpc.register(&mut e.registry);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &e.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_has_help_type_and_escaped_samples() {
        let mut e = Exposition {
            registry: Registry::default(),
        };
        e.family(
            "tandem_x",
            "An x.",
            &[(vec![("node", "a")], 1.0), (vec![("node", "b\"")], 2.5)],
        );
        let mut out = String::new();
        prometheus_text::encode(&mut out, &e.registry).expect("encoded");
        assert!(
            out.starts_with("# HELP tandem_x An x.\n# TYPE tandem_x gauge\n"),
            "{out}"
        );
        assert!(out.contains("tandem_x{node=\"a\"} 1.0\n"), "{out}");
        assert!(out.contains("tandem_x{node=\"b\\\"\"} 2.5\n"), "{out}");
    }
}
