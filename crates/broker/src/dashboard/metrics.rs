//! The dashboard's figures in the Prometheus text exposition format (version 0.0.4): gauges
//! named `tandem_…`, computed when scraped. Counts are exact (the "<5" rule is for the page).

use std::fmt::Write as _;

use super::figures::Dashboard;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes metric families; each family's samples follow its `# HELP` and `# TYPE` lines.
struct Exposition {
    out: String,
}

/// One sample: label pairs and a value.
type Sample<'a> = (Vec<(&'a str, &'a str)>, f64);

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str, samples: &[Sample<'_>]) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            self.out.push_str(name);
            if !labels.is_empty() {
                let pairs: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let _ = write!(self.out, "{{{}}}", pairs.join(","));
            }
            let _ = writeln!(self.out, " {}", number(*value));
        }
    }

    fn single(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, &[(Vec::new(), value)]);
    }
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Renders the figures as Prometheus text.
pub fn render(d: &Dashboard) -> String {
    let mut e = Exposition { out: String::new() };
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

    let t = &d.time_to_match;
    let quantiles: Vec<Sample<'_>> = [("0.5", t.median_ms), ("0.9", t.p90_ms)]
        .into_iter()
        .filter_map(|(q, ms)| Some((vec![("quantile", q)], secs(ms?))))
        .collect();
    e.family(
        "tandem_time_to_match_seconds",
        "Seconds from a mentee's submission until the tandem formed, over all tandems.",
        &quantiles,
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
    e.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.25), "0.25");
    }

    #[test]
    fn a_family_has_help_type_and_samples() {
        let mut e = Exposition { out: String::new() };
        e.family(
            "tandem_x",
            "An x.",
            &[(vec![("node", "a")], 1.0), (vec![("node", "b\"")], 2.5)],
        );
        assert_eq!(
            e.out,
            "# HELP tandem_x An x.\n# TYPE tandem_x gauge\ntandem_x{node=\"a\"} 1\ntandem_x{node=\"b\\\"\"} 2.5\n"
        );
    }
}
