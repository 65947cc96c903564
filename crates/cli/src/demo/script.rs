//! The demo's script: who does what, in which order, over the real gRPC API.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_proto::mentee_service_client::MenteeServiceClient;
use tandem_proto::{
    CheckIn, EndReason, EndTandemRequest, Format, GetMenteeRequest, GoalProgress,
    ListTandemsRequest, RecordCheckInRequest, StartTandemRequest, TandemGoal, TandemPlan,
};
use tandem_proto::{
    CompanyDecision, CreateMentorRequest, GetContactCardRequest, ListIntroductionsRequest,
    ListMenteesRequest, ListNodesRequest, ListProposalsRequest, MenteeStatus, MentorDecision,
    ProposalStatus, RecordDecisionRequest, RespondToProposalRequest, RunMatchingRoundRequest,
    SubmitMenteeRequest, SyncNodesRequest,
};
use tonic::transport::Channel;

use super::DemoOptions;
use super::federation::{
    Databases, Federation, NodeAdminClient, NodeSpec, OperatorClient, data_dir, with_key,
};
use super::population::{self, NETWORKS};
use super::summary::{DemoSummary, Example, LifecycleLine, MenteeCounts, NodeLine, RoundLine};

/// Chance that a mentor accepts an introduction.
const MENTOR_ACCEPTS: f64 = 0.85;
/// Chance that a company confirms a proposal.
const COMPANY_CONFIRMS: f64 = 0.9;

struct Clients {
    operator: OperatorClient,
    mentees: MenteeServiceClient<Channel>,
    admins: Vec<NodeAdminClient>,
    /// The node id of each admin client.
    admin_nodes: Vec<String>,
    /// The API key each member company got at enrolment, by the demo's company id.
    company_keys: BTreeMap<String, String>,
}

impl Clients {
    /// Wraps a message in a request made on behalf of the demo's company `company`, with the
    /// key it got at enrolment.
    fn as_company<T>(&self, company: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
        let key = self
            .company_keys
            .get(company)
            .with_context(|| format!("company {company} has not enrolled"))?;
        with_key(key, message)
    }
}

/// Runs the demo and returns its summary; with `narrate`, tells on stdout what happens.
pub async fn run(options: DemoOptions, narrate: bool) -> anyhow::Result<DemoSummary> {
    let demo = start(options, narrate).await?;
    demo.federation.shutdown().await;
    Ok(demo.summary)
}

/// A demo federation that ran the script and still serves.
#[derive(Debug)]
pub struct RunningDemo {
    pub federation: Federation,
    pub summary: DemoSummary,
    /// The temporary data directory, removed when this drops.
    _tmp: Option<tempfile::TempDir>,
}

/// Runs the demo script and returns the federation still running, with the summary; the
/// caller shuts it down. On failure the federation is shut down before the error returns.
pub async fn start(options: DemoOptions, narrate: bool) -> anyhow::Result<RunningDemo> {
    let started = Instant::now();
    let say = |line: String| {
        if narrate {
            println!("{line}");
        }
    };
    let (dir, _tmp) = data_dir(options.data_dir.as_deref())?;
    let occupied = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "sqlite"));
    anyhow::ensure!(
        !occupied,
        "data directory {} already holds a federation's databases; choose an empty directory",
        dir.display()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let federation_key = format!(
        "demo-federation-key-{:016x}-{:016x}",
        options.seed,
        rng.random::<u64>()
    );
    let specs: Vec<NodeSpec> = NETWORKS
        .iter()
        .map(|n| NodeSpec {
            node_id: n.node_id.into(),
            display_name: n.display_name.into(),
            publication: tandem_node::PublicationConfig::default(),
        })
        .collect();
    let federation = Federation::start(
        &Databases::Sqlite(dir.clone()),
        &federation_key,
        &specs,
        |_| {},
    )
    .await?;
    say(format!(
        "Tandem demo federation (seed {}), databases in {}",
        options.seed,
        dir.display()
    ));
    for n in &federation.nodes {
        say(format!(
            "  node   {:<12} {:<32} grpc://{}",
            n.node_id, n.display_name, n.addr
        ));
    }
    say(format!(
        "  broker {:<12} {:<32} grpc://{}",
        "broker", "network operator", federation.broker_addr
    ));

    let mut summary = match script(&federation, &options, &mut rng, &say).await {
        Ok(summary) => summary,
        Err(err) => {
            federation.shutdown().await;
            return Err(err);
        }
    };
    summary.data_dir = if options.data_dir.is_some() {
        Some(dir.display().to_string())
    } else {
        None
    };
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(RunningDemo {
        federation,
        summary,
        _tmp,
    })
}

async fn script(
    federation: &Federation,
    options: &DemoOptions,
    rng: &mut ChaCha8Rng,
    say: &impl Fn(String),
) -> anyhow::Result<DemoSummary> {
    let mut clients = Clients {
        operator: federation.operator_client().await?,
        mentees: federation.mentee_client().await?,
        admins: Vec::new(),
        admin_nodes: Vec::new(),
        company_keys: BTreeMap::new(),
    };
    for (k, n) in federation.nodes.iter().enumerate() {
        clients.admins.push(federation.admin_client(k).await?);
        clients.admin_nodes.push(n.node_id.clone());
    }

    // Association staff enter their mentors at their own node.
    let mut mentors_entered = BTreeMap::new();
    let mut all_employers = Vec::new();
    for (k, network) in NETWORKS.iter().enumerate() {
        let employers = population::employers(rng, (options.mentors_per_node as usize / 3).max(3));
        for _ in 0..options.mentors_per_node {
            let mut mentor = population::mentor(rng, network, &employers);
            // Seeded ids make pseudonyms, and with them every round, the same for the same seed.
            mentor.id = uuid::Builder::from_random_bytes(rng.random())
                .into_uuid()
                .to_string();
            clients.admins[k]
                .create_mentor(CreateMentorRequest {
                    mentor: Some(mentor),
                })
                .await
                .with_context(|| format!("creating a mentor at {}", network.node_id))?;
        }
        mentors_entered.insert(network.node_id.to_owned(), options.mentors_per_node);
        all_employers.extend(employers);
    }
    say(format!(
        "\n1. Association staff entered {} mentors at their own nodes (names, e-mails, employers stay there).",
        options.mentors_per_node * 3
    ));

    // Each association admits its member companies at its node and hands each one a one-time
    // enrolment code; the company exchanges the code for its API key at the broker. The
    // broker learns the company's employer token and home node from the membership.
    let companies =
        population::companies(rng, (options.mentees as usize / 4).max(1), &all_employers);
    for company in &companies {
        let k = NETWORKS
            .iter()
            .position(|n| n.node_id == company.home_node_id)
            .context("a company of an unknown network")?;
        let enrolled = federation.admit_and_enrol(k, company.admission()).await?;
        clients
            .company_keys
            .insert(company.id.clone(), enrolled.api_key);
    }
    // Member companies submit their young leaders to the broker, without any token.
    for number in 0..options.mentees as usize {
        let company = rng.random_range(0..companies.len());
        let seed = population::mentee(rng, &companies, company, number);
        let request = clients.as_company(
            &companies[seed.company].id,
            SubmitMenteeRequest {
                idempotency_key: seed.idempotency_key,
                mentee: Some(seed.request),
            },
        )?;
        clients
            .mentees
            .submit_mentee(request)
            .await
            .context("submitting a mentee")?;
    }
    say(format!(
        "2. The associations admitted {} member companies at their nodes (names and register numbers stay there); each company enrolled at the broker with its one-time code and submitted its young leaders, {} mentees in all, with their goals (no names, no tokens: the broker takes the employer from the membership).",
        companies.len(),
        options.mentees
    ));

    let sync = clients
        .operator
        .sync_nodes(SyncNodesRequest::default())
        .await?
        .into_inner();
    let published: u32 = sync.results.iter().map(|r| r.upserts).sum();
    if let Some(r) = sync.results.iter().find(|r| !r.error.is_empty()) {
        anyhow::bail!("sync of node {} failed: {}", r.node_id, r.error);
    }
    say(format!(
        "3. The broker synced {published} pseudonymised profiles from {} nodes (mentors without consent stay unpublished).",
        sync.results.len()
    ));

    let mut rounds = Vec::new();
    let mut answers = Answers::default();
    for round_number in 1..=options.rounds {
        let round = clients
            .operator
            .run_matching_round(RunMatchingRoundRequest {})
            .await?
            .into_inner();
        say(format!(
            "{}. Matching round {round_number}: {} waiting mentees x {} mentors with free places -> {} proposals ({} across node boundaries), total score {}.",
            3 + round_number * 2 - 1,
            round.mentees_considered,
            round.mentors_considered,
            round.proposals,
            round.cross_node_proposals,
            round.objective
        ));
        rounds.push(RoundLine::from(&round));
        // The broker's outbox carries the introductions to the nodes in the background.
        federation.settle().await?;
        let before = answers.clone();
        mentors_answer(&mut clients, options.seed, round_number, &mut answers).await?;
        clients
            .operator
            .sync_nodes(SyncNodesRequest::default())
            .await?;
        companies_answer(
            &mut clients,
            &companies,
            options.seed,
            round_number,
            &mut answers,
        )
        .await?;
        // The nodes hear of the declines and get their copies of the new tandems.
        federation.settle().await?;
        say(format!(
            "{}. Mentors answered at their nodes ({} accepted, {} declined); companies answered ({} confirmed, {} declined); {} contact cards released after the double opt-in.",
            3 + round_number * 2,
            answers.mentor_accepted - before.mentor_accepted,
            answers.mentor_declined - before.mentor_declined,
            answers.company_confirmed - before.company_confirmed,
            answers.company_declined - before.company_declined,
            answers.contact_cards - before.contact_cards,
        ));
    }

    let lifecycle = tandems_get_going(federation, &mut clients, &companies, options.seed).await?;
    federation.settle().await?;
    say(format!(
        "{}. Tandems got going: {} recorded their goals (baseline and target) and a meeting cadence; {} first meetings were recorded ({} of them by mentors at their nodes, picked up at the next sync); {} ended early in the first weeks, so those mentees wait for another mentor.",
        4 + options.rounds * 2,
        lifecycle.started,
        lifecycle.company_check_ins + lifecycle.mentor_check_ins,
        lifecycle.mentor_check_ins,
        lifecycle.ended_early,
    ));

    let mut summary = summarise(
        &mut clients,
        &companies,
        options,
        mentors_entered,
        rounds,
        answers,
    )
    .await?;
    summary.lifecycle = lifecycle;
    Ok(summary)
}

/// Starts every tandem with goals from its mentee's request and records first meetings: most
/// by the company, some by the mentor's node; a few tandems end early. Choices depend only on
/// the seed and the tandem.
async fn tandems_get_going(
    federation: &Federation,
    clients: &mut Clients,
    companies: &[population::Company],
    seed: u64,
) -> anyhow::Result<LifecycleLine> {
    let mut line = LifecycleLine::default();
    for company in companies {
        let tandems = clients
            .mentees
            .list_tandems(clients.as_company(&company.id, ListTandemsRequest::default())?)
            .await?
            .into_inner()
            .tandems;
        for t in tandems {
            let mentee = clients
                .mentees
                .get_mentee(clients.as_company(
                    &company.id,
                    GetMenteeRequest {
                        mentee_id: t.mentee_id.clone(),
                    },
                )?)
                .await?
                .into_inner();
            let goals = mentee
                .request
                .map(|r| r.goals)
                .unwrap_or_default()
                .iter()
                .map(|g| TandemGoal {
                    topic: g.topic,
                    description: String::new(),
                    baseline: if g.priority >= 2 { 1 } else { 2 },
                    target: if g.priority >= 3 { 4 } else { 3 },
                    current: 0,
                })
                .collect();
            let id = t.tandem_id.clone();
            // Ids are random; the company's idempotency key is seeded.
            let who = format!("{}/{}", company.id, mentee.idempotency_key);
            let cadence = if says_yes(seed, &who, "cadence", 0, 0.5) {
                21
            } else {
                28
            };
            clients
                .mentees
                .start_tandem(clients.as_company(
                    &company.id,
                    StartTandemRequest {
                        tandem_id: id.clone(),
                        plan: Some(TandemPlan {
                            starts_at_ms: 0,
                            cadence_days: cadence,
                            programme_months: 6,
                            goals,
                        }),
                    },
                )?)
                .await
                .context("recording a tandem's goals")?;
            line.started += 1;
            if says_yes(seed, &who, "ends early", 0, 0.08) {
                clients
                    .mentees
                    .end_tandem(clients.as_company(
                        &company.id,
                        EndTandemRequest {
                            tandem_id: id.clone(),
                            reason: EndReason::NoTime as i32,
                        },
                    )?)
                    .await
                    .context("ending a tandem early")?;
                line.ended_early += 1;
                continue;
            }
            let first_meeting = CheckIn {
                met_at_ms: tandem_service::Clock::system().now_ms(),
                duration_minutes: 90,
                format: Format::Remote as i32,
                progress: vec![GoalProgress { goal: 0, level: 2 }],
                ..CheckIn::default()
            };
            if says_yes(seed, &who, "mentor records", 0, 0.3) {
                // The mentor records at the node once the node has the tandem's goals.
                federation.settle().await?;
                let node = clients
                    .admin_nodes
                    .iter()
                    .position(|n| *n == t.node_id)
                    .context("tandem of an unknown node")?;
                clients.admins[node]
                    .record_check_in(RecordCheckInRequest {
                        tandem_id: id,
                        check_in: Some(first_meeting),
                    })
                    .await
                    .context("recording a meeting at the mentor's node")?;
                line.mentor_check_ins += 1;
            } else if says_yes(seed, &who, "company records", 0, 0.7) {
                clients
                    .mentees
                    .record_check_in(clients.as_company(
                        &company.id,
                        RecordCheckInRequest {
                            tandem_id: id,
                            check_in: Some(first_meeting),
                        },
                    )?)
                    .await
                    .context("recording a meeting")?;
                line.company_check_ins += 1;
            }
        }
    }
    // The broker picks up what mentors recorded at their nodes.
    clients
        .operator
        .sync_nodes(SyncNodesRequest::default())
        .await?;
    Ok(line)
}

#[derive(Debug, Clone, Default)]
struct Answers {
    mentor_accepted: u32,
    mentor_declined: u32,
    company_confirmed: u32,
    company_declined: u32,
    contact_cards: u32,
}

/// Decides yes with probability `p` from the seed and who decides about what, so that answers
/// do not depend on the order in which the demo visits people.
fn says_yes(seed: u64, who: &str, what: &str, round: u32, p: f64) -> bool {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (seed, who, what, round).hash(&mut h);
    (h.finish() as f64 / u64::MAX as f64) < p
}

async fn mentors_answer(
    clients: &mut Clients,
    seed: u64,
    round: u32,
    answers: &mut Answers,
) -> anyhow::Result<()> {
    for admin in &mut clients.admins {
        let introductions = admin
            .list_introductions(ListIntroductionsRequest::default())
            .await?
            .into_inner()
            .introductions;
        for intro in introductions {
            if intro.closed || intro.decision != MentorDecision::Pending as i32 {
                continue;
            }
            let accept = says_yes(seed, &intro.mentor_id, "mentor", round, MENTOR_ACCEPTS);
            let decision = if accept {
                MentorDecision::Accepted
            } else {
                MentorDecision::Declined
            };
            let request = RecordDecisionRequest {
                introduction_id: intro.introduction_id,
                decision: decision as i32,
            };
            match admin.record_decision(request).await {
                Ok(_) if accept => answers.mentor_accepted += 1,
                Ok(_) => answers.mentor_declined += 1,
                Err(status) => tracing::warn!(%status, "mentor decision refused"),
            }
        }
    }
    Ok(())
}

async fn companies_answer(
    clients: &mut Clients,
    companies: &[population::Company],
    seed: u64,
    round: u32,
    answers: &mut Answers,
) -> anyhow::Result<()> {
    for company in companies {
        let mentees = clients
            .mentees
            .list_mentees(clients.as_company(&company.id, ListMenteesRequest {})?)
            .await?
            .into_inner()
            .mentees;
        for mentee in mentees
            .iter()
            .filter(|m| m.status == MenteeStatus::Proposed as i32)
        {
            let proposals = clients
                .mentees
                .list_proposals(clients.as_company(
                    &company.id,
                    ListProposalsRequest {
                        mentee_id: mentee.mentee_id.clone(),
                    },
                )?)
                .await?
                .into_inner()
                .proposals;
            for p in proposals.iter().filter(|p| {
                p.status == ProposalStatus::Open as i32
                    && p.company_decision == CompanyDecision::Pending as i32
            }) {
                let confirm = says_yes(
                    seed,
                    &company.id,
                    &mentee.idempotency_key,
                    round,
                    COMPANY_CONFIRMS,
                );
                let decision = if confirm {
                    CompanyDecision::Confirmed
                } else {
                    CompanyDecision::Declined
                };
                let answered = clients
                    .mentees
                    .respond_to_proposal(clients.as_company(
                        &company.id,
                        RespondToProposalRequest {
                            proposal_id: p.proposal_id.clone(),
                            decision: decision as i32,
                        },
                    )?)
                    .await?
                    .into_inner();
                if !confirm {
                    answers.company_declined += 1;
                    continue;
                }
                answers.company_confirmed += 1;
                if answered.status == ProposalStatus::Tandem as i32 {
                    clients
                        .mentees
                        .get_contact_card(clients.as_company(
                            &company.id,
                            GetContactCardRequest {
                                proposal_id: p.proposal_id.clone(),
                            },
                        )?)
                        .await
                        .context("fetching a contact card after the double opt-in")?;
                    answers.contact_cards += 1;
                }
            }
        }
    }
    Ok(())
}

async fn summarise(
    clients: &mut Clients,
    companies: &[population::Company],
    options: &DemoOptions,
    mentors_entered: BTreeMap<String, u32>,
    rounds: Vec<RoundLine>,
    answers: Answers,
) -> anyhow::Result<DemoSummary> {
    let stats = clients
        .operator
        .get_network_stats(tandem_proto::GetNetworkStatsRequest {})
        .await?
        .into_inner();
    let nodes = clients
        .operator
        .list_nodes(ListNodesRequest {})
        .await?
        .into_inner()
        .nodes;
    // What k-anonymity cost each node, as its staff see it.
    let mut reports = BTreeMap::new();
    for (admin, node_id) in clients.admins.iter_mut().zip(&clients.admin_nodes) {
        let report = admin
            .get_publication_report(tandem_proto::GetPublicationReportRequest {})
            .await?
            .into_inner();
        reports.insert(node_id.clone(), report);
    }
    let node_lines = nodes
        .iter()
        .map(|n| NodeLine {
            generalised: reports
                .get(&n.node_id)
                .map_or(0, |r| r.generalised_profiles),
            suppressed: reports.get(&n.node_id).map_or(0, |r| r.suppressed_profiles),
            node_id: n.node_id.clone(),
            display_name: n.display_name.clone(),
            mentors: mentors_entered.get(&n.node_id).copied().unwrap_or(0),
            profiles_published: n.profiles,
            free_places: n.free_capacity,
            tandems: stats
                .nodes
                .iter()
                .find(|s| s.node_id == n.node_id)
                .map_or(0, |s| s.tandems),
        })
        .collect();

    let mut examples = Vec::new();
    'companies: for company in companies {
        let mut mentees = clients
            .mentees
            .list_mentees(clients.as_company(&company.id, ListMenteesRequest {})?)
            .await?
            .into_inner()
            .mentees;
        mentees.sort_by(|a, b| a.idempotency_key.cmp(&b.idempotency_key));
        for mentee in mentees
            .iter()
            .filter(|m| m.status == MenteeStatus::InTandem as i32)
        {
            let proposals = clients
                .mentees
                .list_proposals(clients.as_company(
                    &company.id,
                    ListProposalsRequest {
                        mentee_id: mentee.mentee_id.clone(),
                    },
                )?)
                .await?
                .into_inner()
                .proposals;
            if let Some(p) = proposals
                .iter()
                .find(|p| p.status == ProposalStatus::Tandem as i32)
                && examples
                    .iter()
                    .all(|e: &Example| e.mentor_node != p.node_id)
            {
                examples.push(Example::new(company, mentee, p));
                if examples.len() == 3 {
                    break 'companies;
                }
            }
        }
    }

    Ok(DemoSummary {
        seed: options.seed,
        data_dir: None,
        nodes: node_lines,
        mentees: MenteeCounts {
            submitted: options.mentees,
            in_tandem: stats.mentees_in_tandem,
            proposed: stats.mentees_proposed,
            waiting: stats.mentees_waiting,
            waiting_reasons: stats
                .waiting_reasons
                .iter()
                .map(|r| (r.reason.clone(), r.mentees))
                .collect(),
        },
        rounds,
        mentor_accepted: answers.mentor_accepted,
        mentor_declined: answers.mentor_declined,
        company_confirmed: answers.company_confirmed,
        company_declined: answers.company_declined,
        tandems: stats.tandems,
        cross_node_tandems: stats.cross_node_tandems,
        contact_cards_released: answers.contact_cards,
        lifecycle: LifecycleLine::default(),
        examples,
        elapsed_ms: 0,
    })
}
