//! Every hard constraint holds for every proposal a round makes over a seeded population of
//! several hundred mentors and mentees, checked from outside through the companies' API.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_cli::demo::federation::{Federation, NodeSpec};
use tandem_cli::demo::population::{self, NETWORKS};
use tandem_domain::taxonomy::regions_meet;
use tandem_e2e::{FEDERATION_KEY, as_company, databases};
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
    let ids: Vec<&str> = companies.iter().map(|c| c.id.as_str()).collect();
    federation.provision_companies(&ids).await?;
    for number in 0..400 {
        let company = rng.random_range(0..companies.len());
        let token = tandem_e2e::token(&companies[company].registry_number);
        let seed = population::mentee(&mut rng, &companies, company, number, &token);
        mentees
            .submit_mentee(as_company(
                &companies[company].id,
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
    for company in &companies {
        let listed = mentees
            .list_mentees(as_company(&company.id, ListMenteesRequest {})?)
            .await?
            .into_inner();
        for mentee in listed.mentees {
            let proposals = mentees
                .list_proposals(as_company(
                    &company.id,
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
                let ours = [
                    request.employer_token.clone(),
                    tandem_e2e::token(&company.registry_number),
                ];
                assert!(
                    !ours.contains(&m.employer_token) && !ours.contains(&m.group_token),
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
