//! Every hard constraint holds for every proposal a round makes over a seeded population of
//! several hundred mentors and mentees, checked from outside through the companies' API.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_cli::demo::federation::{Federation, NodeSpec};
use tandem_cli::demo::population::{self, NETWORKS};
use tandem_domain::taxonomy::regions_meet;
use tandem_e2e::{FEDERATION_KEY, databases, with_key};
use tandem_proto::{
    CreateMentorRequest, Format, ListMenteesRequest, ListProposalsRequest, RunMatchingRoundRequest,
    SubmitMenteeRequest, SyncNodesRequest,
};

#[tokio::test]
async fn no_proposal_breaks_a_hard_constraint_in_a_seeded_population() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let specs: Vec<NodeSpec> = NETWORKS
        .iter()
        .map(|n| NodeSpec {
            node_id: n.node_id.into(),
            display_name: n.display_name.into(),
            // A population this size publishes under the default k, generalised profiles
            // included.
            publication: tandem_node::PublicationConfig::default(),
        })
        .collect();
    let federation =
        Federation::start(&databases(dir.path()), FEDERATION_KEY, &specs, |_| {}).await?;
    let mut operator = federation.operator_client().await?;
    let mut mentees = federation.mentee_client().await?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);

    let mut employers = Vec::new();
    for (k, network) in NETWORKS.iter().enumerate() {
        let mut admin = federation.admin_client(k).await?;
        let own = population::employers(&mut rng, 25);
        for _ in 0..100 {
            let mentor = population::mentor(&mut rng, network, &own);
            admin
                .create_mentor(CreateMentorRequest {
                    mentor: Some(mentor),
                })
                .await?;
        }
        employers.extend(own);
    }
    let companies = population::companies(&mut rng, 100, &employers);
    let keys = enrol_all(&federation, &companies).await?;
    for number in 0..400 {
        let company = rng.random_range(0..companies.len());
        let seed = population::mentee(&mut rng, &companies, company, number);
        mentees
            .submit_mentee(with_key(
                &keys[company],
                SubmitMenteeRequest {
                    idempotency_key: seed.idempotency_key,
                    mentee: Some(seed.request),
                },
            )?)
            .await?;
    }
    operator.sync_nodes(SyncNodesRequest::default()).await?;
    let round = operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?
        .into_inner();
    assert!(
        round.proposals > 100,
        "a realistic population gets many proposals: {round:?}"
    );

    let mut load: HashMap<(String, String), (u32, u32)> = HashMap::new();
    let mut checked = 0;
    for (company, key) in companies.iter().zip(&keys) {
        let listed = mentees
            .list_mentees(with_key(key, ListMenteesRequest {})?)
            .await?
            .into_inner();
        for mentee in listed.mentees {
            assert_eq!(mentee.home_node_id, company.home_node_id, "home node");
            let proposals = mentees
                .list_proposals(with_key(
                    key,
                    ListProposalsRequest {
                        mentee_id: mentee.mentee_id.clone(),
                    },
                )?)
                .await?
                .into_inner()
                .proposals;
            assert!(proposals.len() <= 1, "one proposal per mentee and round");
            let request = mentee.request.clone().expect("request");
            for p in proposals {
                let m = p.mentor.clone().expect("profile snapshot");
                assert!(
                    m.career_level > request.career_level,
                    "level: {m:?} {request:?}"
                );
                assert!(
                    request.languages.iter().any(|l| m.languages.contains(l)),
                    "language"
                );
                assert!(m.formats.contains(&request.preferred_format), "format");
                if request.preferred_format != Format::Remote as i32 {
                    assert!(regions_meet(&request.region, &m.region), "region");
                }
                let ours = tandem_e2e::token(&company.registry_number);
                assert!(
                    ours != m.employer_token && ours != m.group_token,
                    "employer"
                );
                assert!(
                    request.goals.iter().any(|g| m.expertise.contains(&g.topic)),
                    "complement"
                );
                let entry = load
                    .entry((p.node_id.clone(), m.pseudonym.clone()))
                    .or_insert((0, m.free_capacity));
                entry.0 += 1;
                checked += 1;
            }
        }
    }
    assert_eq!(checked, round.proposals as usize);
    for ((node, pseudonym), (used, capacity)) in load {
        assert!(used <= capacity, "{node}/{pseudonym}: {used} > {capacity}");
    }
    federation.shutdown().await;
    Ok(())
}

/// Admits every company at its home network and enrols it; returns the keys in order.
async fn enrol_all(
    federation: &Federation,
    companies: &[population::Company],
) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::with_capacity(companies.len());
    for company in companies {
        let k = NETWORKS
            .iter()
            .position(|n| n.node_id == company.home_node_id)
            .expect("a known network");
        keys.push(
            federation
                .admit_and_enrol(k, company.admission())
                .await?
                .api_key,
        );
    }
    Ok(keys)
}

/// Writes a register number as another association might: other spacing and case.
fn respelled(register_number: &str, rng: &mut ChaCha8Rng) -> String {
    let mut out = String::new();
    for c in register_number.chars().filter(|c| !c.is_whitespace()) {
        if rng.random_bool(0.3) {
            out.push(' ');
        }
        if rng.random_bool(0.5) {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
    }
    out
}

/// The first success factor across node boundaries, over random populations: a company
/// admitted at one node whose register number (however it is spelled there) is a mentor's
/// employer at another node never gets that mentor proposed, although the company declares
/// nothing about itself. Every population has such companies, and other mentors who fit.
#[tokio::test]
async fn a_company_never_gets_a_mentor_of_its_own_employer_from_another_node() -> anyhow::Result<()>
{
    for seed in 0..3u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let dir = tempfile::tempdir()?;
        let specs: Vec<NodeSpec> = ["mentors-node", "companies-node"]
            .iter()
            .map(|id| NodeSpec {
                node_id: (*id).into(),
                display_name: format!("Network {id}"),
                publication: tandem_node::PublicationConfig {
                    k: 1,
                    epoch_days: 0,
                },
            })
            .collect();
        let federation =
            Federation::start(&databases(dir.path()), FEDERATION_KEY, &specs, |_| {}).await?;
        let mut operator = federation.operator_client().await?;
        let mut mentees = federation.mentee_client().await?;
        let mut admin = federation.admin_client(0).await?;
        let network = &NETWORKS[0];
        let employers = population::employers(&mut rng, 6);
        for _ in 0..30 {
            let mut mentor = population::mentor(&mut rng, network, &employers);
            // Everyone remote and open to every mentee level, so that employers are what
            // keeps pairs apart.
            mentor.formats = vec![Format::Remote as i32];
            mentor.career_level = tandem_proto::CareerLevel::Executive as i32;
            admin
                .create_mentor(CreateMentorRequest {
                    mentor: Some(mentor),
                })
                .await?;
        }
        // Half of the companies are the mentors' employers, admitted at the other node.
        let mut keys = Vec::new();
        let mut tokens = Vec::new();
        for i in 0..8 {
            let register_number = if i % 2 == 0 {
                respelled(&employers[i / 2].registry_number, &mut rng)
            } else {
                format!("HRB {} Teststadt", 90_000 + seed * 100 + i as u64)
            };
            let company = tandem_proto::Company {
                legal_name: format!("Company {i}"),
                register_number: register_number.clone(),
                ..Default::default()
            };
            keys.push(federation.admit_and_enrol(1, company).await?.api_key);
            tokens.push(tandem_e2e::token(&register_number));
        }
        for (i, key) in keys.iter().enumerate() {
            for n in 0..3 {
                let mut request = tandem_e2e::mentee();
                request.goals.truncate(1);
                mentees
                    .submit_mentee(with_key(
                        key,
                        tandem_e2e::submission(&format!("m{i}-{n}"), request),
                    )?)
                    .await?;
            }
        }
        operator.sync_nodes(SyncNodesRequest::default()).await?;
        let round = operator
            .run_matching_round(RunMatchingRoundRequest {})
            .await?
            .into_inner();
        let mut proposed = 0;
        for (key, token) in keys.iter().zip(&tokens) {
            for mentee in mentees
                .list_mentees(with_key(key, ListMenteesRequest {})?)
                .await?
                .into_inner()
                .mentees
            {
                assert_eq!(mentee.home_node_id, "companies-node");
                for p in mentees
                    .list_proposals(with_key(
                        key,
                        ListProposalsRequest {
                            mentee_id: mentee.mentee_id,
                        },
                    )?)
                    .await?
                    .into_inner()
                    .proposals
                {
                    let m = p.mentor.expect("profile snapshot");
                    assert_eq!(p.node_id, "mentors-node");
                    assert!(
                        &m.employer_token != token && &m.group_token != token,
                        "seed {seed}: a mentor of the company's own employer was proposed"
                    );
                    proposed += 1;
                }
            }
        }
        assert_eq!(proposed, round.proposals as usize, "seed {seed}");
        assert!(
            proposed > 0,
            "seed {seed}: the population must match somebody"
        );
        federation.shutdown().await;
    }
    Ok(())
}
