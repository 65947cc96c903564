//! What the demo tells its user: per node, per mentee state, per round, and a few example
//! tandems with the reasons the broker gave.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use tandem_domain::taxonomy::{level_name, topic_name};
use tandem_proto::{CareerLevel, MatchingRound, Mentee, Proposal, Topic};

use super::population::Company;

/// One node's line.
#[derive(Debug, Clone, Serialize)]
pub struct NodeLine {
    pub node_id: String,
    pub display_name: String,
    pub mentors: u32,
    pub profiles_published: u32,
    /// Published profiles the node generalised for k-anonymity.
    pub generalised: u32,
    /// Consenting mentors the node did not publish (their combination stayed below k).
    pub suppressed: u32,
    pub free_places: u32,
    pub tandems: u32,
}

/// Mentees by state, and why the waiting ones wait.
#[derive(Debug, Clone, Serialize)]
pub struct MenteeCounts {
    pub submitted: u32,
    pub in_tandem: u32,
    pub proposed: u32,
    pub waiting: u32,
    pub waiting_reasons: BTreeMap<String, u32>,
}

/// One matching round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundLine {
    pub round_id: String,
    pub mentees_considered: u32,
    pub mentors_considered: u32,
    pub candidate_pairs: u32,
    pub proposals: u32,
    pub cross_node_proposals: u32,
    pub objective: i64,
    pub duration_ms: i64,
    /// Feasible pairs in the population.
    pub feasible_pairs: u64,
    /// Certified optimal over all feasible pairs by the pricing check.
    pub optimal: bool,
}

impl From<&MatchingRound> for RoundLine {
    fn from(r: &MatchingRound) -> Self {
        Self {
            round_id: r.round_id.clone(),
            mentees_considered: r.mentees_considered,
            mentors_considered: r.mentors_considered,
            candidate_pairs: r.candidate_pairs,
            proposals: r.proposals,
            cross_node_proposals: r.cross_node_proposals,
            objective: r.objective,
            duration_ms: r.duration_ms,
            feasible_pairs: r.feasible_pairs,
            optimal: r.optimal,
        }
    }
}

/// An example tandem with its explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub company: String,
    pub home_node: String,
    pub mentee_level: String,
    pub goals: Vec<String>,
    pub mentor_node: String,
    pub mentor_level: String,
    pub score: i64,
    pub reasons: Vec<String>,
}

impl Example {
    /// Describes the tandem `proposal` of `mentee`.
    pub fn new(company: &Company, mentee: &Mentee, proposal: &Proposal) -> Self {
        let request = mentee.request.clone().unwrap_or_default();
        let level = |n: i32| level_name(CareerLevel::try_from(n).unwrap_or_default());
        Self {
            company: company.id.clone(),
            home_node: mentee.home_node_id.clone(),
            mentee_level: level(request.career_level),
            goals: request
                .goals
                .iter()
                .map(|g| {
                    format!(
                        "{} (priority {})",
                        topic_name(Topic::try_from(g.topic).unwrap_or_default()),
                        g.priority
                    )
                })
                .collect(),
            mentor_node: proposal.node_id.clone(),
            mentor_level: level(proposal.mentor.as_ref().map_or(0, |m| m.career_level)),
            score: proposal.score,
            reasons: proposal
                .reasons
                .iter()
                .map(|r| format!("{:<14} {:>5}  {}", r.criterion, r.points, r.detail))
                .collect(),
        }
    }
}

/// Everything the demo reports.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub seed: u64,
    /// Where the databases are, when the user chose the directory (a temporary one is removed).
    pub data_dir: Option<String>,
    pub nodes: Vec<NodeLine>,
    pub mentees: MenteeCounts,
    pub rounds: Vec<RoundLine>,
    pub mentor_accepted: u32,
    pub mentor_declined: u32,
    pub company_confirmed: u32,
    pub company_declined: u32,
    pub tandems: u32,
    pub cross_node_tandems: u32,
    pub contact_cards_released: u32,
    /// What happened after the tandems formed.
    pub lifecycle: LifecycleLine,
    pub examples: Vec<Example>,
    pub elapsed_ms: u64,
}

/// How the demo's tandems got going.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LifecycleLine {
    /// Tandems whose goals and cadence were recorded.
    pub started: u32,
    /// First meetings recorded by companies.
    pub company_check_ins: u32,
    /// First meetings recorded by mentors at their nodes.
    pub mentor_check_ins: u32,
    /// Tandems ended early in their first weeks (their mentees wait again).
    pub ended_early: u32,
}

impl DemoSummary {
    /// Renders the summary as text for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n== Nodes ==");
        let _ = writeln!(
            out,
            "{:<12} {:<32} {:>7} {:>10} {:>11} {:>10} {:>11} {:>7}",
            "node",
            "network",
            "mentors",
            "published",
            "generalised",
            "suppressed",
            "free places",
            "tandems"
        );
        for n in &self.nodes {
            let _ = writeln!(
                out,
                "{:<12} {:<32} {:>7} {:>10} {:>11} {:>10} {:>11} {:>7}",
                n.node_id,
                n.display_name,
                n.mentors,
                n.profiles_published,
                n.generalised,
                n.suppressed,
                n.free_places,
                n.tandems
            );
        }
        let m = &self.mentees;
        let _ = writeln!(out, "\n== Mentees ==");
        let _ = writeln!(
            out,
            "{} submitted: {} in a tandem, {} awaiting answers, {} waiting",
            m.submitted, m.in_tandem, m.proposed, m.waiting
        );
        for (reason, count) in &m.waiting_reasons {
            let _ = writeln!(
                out,
                "  waiting because {:<32} {count:>4}",
                reason.replace('_', " ")
            );
        }
        let _ = writeln!(out, "\n== Matching ==");
        for (k, r) in self.rounds.iter().enumerate() {
            let _ = writeln!(
                out,
                "round {}: {} mentees x {} mentors, {} feasible pairs -> {} proposals, total score {}{} ({} ms)",
                k + 1,
                r.mentees_considered,
                r.mentors_considered,
                r.feasible_pairs,
                r.proposals,
                r.objective,
                if r.optimal { ", certified optimal" } else { "" },
                r.duration_ms
            );
        }
        let _ = writeln!(
            out,
            "mentors accepted {} / declined {}; companies confirmed {} / declined {}",
            self.mentor_accepted,
            self.mentor_declined,
            self.company_confirmed,
            self.company_declined
        );
        let share = (100 * self.cross_node_tandems)
            .checked_div(self.tandems)
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "{} tandems, {} of them ({share}%) across node boundaries; {} contact cards released to the submitting companies only",
            self.tandems, self.cross_node_tandems, self.contact_cards_released
        );
        let l = &self.lifecycle;
        let _ = writeln!(
            out,
            "{} tandems recorded goals and a cadence; {} first meetings recorded ({} by mentors at their nodes); {} ended early (mentees waiting again)",
            l.started,
            l.company_check_ins + l.mentor_check_ins,
            l.mentor_check_ins,
            l.ended_early
        );
        let _ = writeln!(out, "\n== Example tandems ==");
        for e in &self.examples {
            let _ = writeln!(
                out,
                "{} (member of {}): {} wants {}\n  mentor: {} from node {}, score {}",
                e.company,
                e.home_node,
                e.mentee_level,
                e.goals.join(", "),
                e.mentor_level,
                e.mentor_node,
                e.score
            );
            for r in &e.reasons {
                let _ = writeln!(out, "    {r}");
            }
        }
        let _ = writeln!(
            out,
            "\nfinished in {:.1} s",
            self.elapsed_ms as f64 / 1000.0
        );
        if let Some(dir) = &self.data_dir {
            let _ = writeln!(out, "databases kept in {dir}");
        }
        out
    }
}
