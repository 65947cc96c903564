//! The node's publication: k-anonymity over the quasi-identifiers, failing closed, the report
//! to staff, and pseudonyms that rotate per epoch.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proptest::prelude::*;
use tandem_node::{Clock, NodeState, PublicationConfig};
use tandem_proto::profile_change::Change;
use tandem_proto::{
    AnonymisedProfile, CareerLevel, DeliverIntroductionRequest, Industry, Mentor, MentorDecision,
    WithdrawalReason,
};
use tandem_storage::{MigratorTrait, NodeMigrator};

const DAY_MS: i64 = 86_400_000;

/// A node on a fresh SQLite file with the given publication settings and clock.
async fn node(publication: PublicationConfig, clock: Clock) -> (Arc<NodeState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = tandem_storage::sqlite_url(&dir.path().join("node.sqlite"));
    let mut config = common::config(&url);
    config.publication = publication;
    config.validate().expect("valid config");
    let db = tandem_storage::connect(&url).await.expect("connect");
    NodeMigrator::up(&db, None).await.expect("migrate");
    (NodeState::with_clock(db, &config, clock), dir)
}

fn fixed_clock(at: &Arc<AtomicI64>) -> Clock {
    let at = at.clone();
    Clock::from_fn(move || at.load(Ordering::SeqCst))
}

/// What a broker holds after applying the feed: live profiles by pseudonym.
#[derive(Default)]
struct Broker {
    profiles: HashMap<String, AnonymisedProfile>,
    cursor: u64,
    withdrawn: Vec<String>,
    /// Why each withdrawal happened, in order.
    reasons: Vec<WithdrawalReason>,
}

impl Broker {
    /// Pulls every change after the cursor, in small pages as a broker may.
    async fn sync(&mut self, node: &NodeState) {
        loop {
            let page = node.profile_changes(self.cursor, 7).await.expect("feed");
            for change in page.changes {
                match change.change {
                    Some(Change::Upsert(p)) => {
                        self.profiles.insert(p.pseudonym.clone(), p);
                    }
                    Some(Change::Withdrawal(w)) => {
                        self.profiles.remove(&w.pseudonym);
                        self.reasons.push(w.reason());
                        self.withdrawn.push(w.pseudonym);
                    }
                    None => panic!("empty change"),
                }
            }
            assert!(page.next_version >= self.cursor);
            self.cursor = page.next_version;
            if !page.has_more {
                return;
            }
        }
    }
}

type Combination = (i32, i32, String, Vec<i32>);

fn combination(p: &AnonymisedProfile) -> Combination {
    (
        p.career_level,
        p.experience_band,
        p.region.clone(),
        p.industries.clone(),
    )
}

/// Returns the combinations shared by fewer than `k` of `profiles`.
fn small_groups<'a>(
    profiles: impl IntoIterator<Item = &'a AnonymisedProfile>,
    k: u32,
) -> Vec<(Combination, usize)> {
    let mut counts: HashMap<Combination, usize> = HashMap::new();
    for p in profiles {
        *counts.entry(combination(p)).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n < k as usize)
        .collect()
}

/// A valid mentor with the given quasi-identifiers.
fn mentor(
    level: CareerLevel,
    years: u32,
    region: &str,
    industry: Industry,
    consent: bool,
) -> Mentor {
    Mentor {
        career_level: level as i32,
        years_of_experience: years,
        region: region.to_owned(),
        industries: if industry == Industry::Education {
            vec![industry as i32]
        } else {
            vec![industry as i32, Industry::Education as i32]
        },
        publication_consent: if consent {
            tandem_proto::PublicationConsent::Granted
        } else {
            tandem_proto::PublicationConsent::Refused
        } as i32,
        ..common::erika()
    }
}

#[tokio::test]
async fn too_few_mentors_publish_nothing_until_k_share_a_combination() {
    let at = Arc::new(AtomicI64::new(0));
    let (node, _dir) = node(PublicationConfig::default(), fixed_clock(&at)).await;
    let staff = common::staff(&node).await;
    let mut broker = Broker::default();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let m = mentor(CareerLevel::Director, 22, "DE-BY", Industry::Energy, true);
        ids.push(node.create_mentor(&staff, m).await.expect("created").id);
    }
    broker.sync(&node).await;
    assert!(
        broker.profiles.is_empty(),
        "four mentors cannot be 5-anonymous"
    );
    let report = node.publication_report().await.expect("report");
    assert!(report.withheld);
    assert_eq!(
        (
            report.k,
            report.published_profiles,
            report.suppressed_profiles
        ),
        (5, 0, 4)
    );

    // A fifth in Berlin: only the country makes a group of five.
    let m = mentor(CareerLevel::Director, 25, "DE-BE", Industry::Energy, true);
    ids.push(node.create_mentor(&staff, m).await.expect("created").id);
    broker.sync(&node).await;
    assert_eq!(broker.profiles.len(), 5);
    for p in broker.profiles.values() {
        assert_eq!(p.region, "DE");
        // Only the first industry is published, never the whole list.
        assert_eq!(p.industries, vec![Industry::Energy as i32]);
    }
    let info = node.node_info().await.expect("info");
    assert_eq!(
        (
            info.published_profiles,
            info.generalised_profiles,
            info.suppressed_profiles,
            info.k
        ),
        (5, 5, 0, 5)
    );

    // Erasing one breaks k for the rest: the node withdraws everything.
    node.remove_mentor(&staff, &ids[0]).await.expect("removed");
    broker.sync(&node).await;
    assert!(broker.profiles.is_empty());

    // Replaying from 0 ends in the same, empty publication.
    let mut fresh = Broker::default();
    fresh.sync(&node).await;
    assert!(fresh.profiles.is_empty());
}

#[tokio::test]
async fn pseudonyms_rotate_per_epoch_and_the_previous_one_still_resolves() {
    let at = Arc::new(AtomicI64::new(1_000 * DAY_MS));
    let publication = PublicationConfig {
        k: 1,
        epoch_days: 30,
    };
    let (node, _dir) = node(publication, fixed_clock(&at)).await;
    let staff = common::staff(&node).await;
    let created = node
        .create_mentor(&staff, common::erika())
        .await
        .expect("created");
    let mut broker = Broker::default();
    broker.sync(&node).await;
    let first = created.pseudonym.clone();
    assert_eq!(broker.profiles.keys().collect::<Vec<_>>(), vec![&first]);

    // The next epoch: the old pseudonym is withdrawn and the profile comes under a new one,
    // without any write at the node.
    at.fetch_add(30 * DAY_MS, Ordering::SeqCst);
    broker.sync(&node).await;
    let second = node.pseudonym(&created.id);
    assert_ne!(second, first);
    assert_eq!(broker.profiles.keys().collect::<Vec<_>>(), vec![&second]);
    assert_eq!(broker.withdrawn, vec![first.clone()]);
    assert_eq!(
        broker.reasons,
        vec![WithdrawalReason::Rotated],
        "the broker keeps the mentor's open proposals"
    );
    let (old, new) = (&first, &second);
    assert_eq!(
        broker.profiles[new].employer_token.len(),
        64,
        "the profile itself is unchanged"
    );
    assert_ne!(old, new);

    // An introduction the broker proposed just before the rotation still reaches the mentor.
    node.deliver_introduction(common::introduction("intro-1", &first))
        .await
        .expect("previous epoch resolves");
    let intros = node.list_introductions(None).await.expect("list");
    assert_eq!(intros[0].mentor_id, created.id);

    // The broker cannot link the two pseudonyms, so it may propose the same mentee again under
    // the new one; the node recognises the mentee's reference and declines at once.
    let reference = tandem_domain::pseudonym::mentee_ref("node", "mentee-1");
    for (id, pseudonym) in [("intro-a", &first), ("intro-b", &second)] {
        node.deliver_introduction(DeliverIntroductionRequest {
            mentee_ref: reference.clone(),
            ..common::introduction(id, pseudonym)
        })
        .await
        .expect("delivered");
    }
    let decisions = node.decisions(0, 0).await.expect("decisions").decisions;
    assert_eq!(
        decisions
            .iter()
            .map(|d| (d.introduction_id.as_str(), d.decision()))
            .collect::<Vec<_>>(),
        vec![("intro-b", MentorDecision::Declined)],
        "the second proposal of the pair is declined, the first waits for the mentor"
    );

    // Two epochs later the first pseudonym is gone for good.
    at.fetch_add(30 * DAY_MS, Ordering::SeqCst);
    broker.sync(&node).await;
    let err = node
        .deliver_introduction(common::introduction("intro-2", &first))
        .await
        .expect_err("two epochs old");
    assert!(matches!(err, tandem_node::NodeError::NotFound(_)), "{err}");
    let third = node.pseudonym(&created.id);
    assert_eq!(broker.profiles.keys().collect::<Vec<_>>(), vec![&third]);

    // Replaying from 0 yields only the current pseudonym as live.
    let mut fresh = Broker::default();
    fresh.sync(&node).await;
    assert_eq!(fresh.profiles.keys().collect::<Vec<_>>(), vec![&third]);
}

#[tokio::test]
async fn without_rotation_the_pseudonym_stays() {
    let at = Arc::new(AtomicI64::new(0));
    let publication = PublicationConfig {
        k: 1,
        epoch_days: 0,
    };
    let (node, _dir) = node(publication, fixed_clock(&at)).await;
    let staff = common::staff(&node).await;
    let created = node
        .create_mentor(&staff, common::erika())
        .await
        .expect("created");
    assert_eq!(
        created.pseudonym,
        tandem_domain::pseudonym::mentor_pseudonym(
            common::PSEUDONYM_SECRET.as_bytes(),
            &created.id
        )
    );
    let mut broker = Broker::default();
    broker.sync(&node).await;
    at.fetch_add(3_650 * DAY_MS, Ordering::SeqCst);
    broker.sync(&node).await;
    assert!(broker.withdrawn.is_empty());
    assert!(broker.profiles.contains_key(&created.pseudonym));
}

/// One generated mentor: quasi-identifiers drawn from skewed distributions, so that some
/// combinations are crowded and others are rare.
#[derive(Debug, Clone)]
struct Draw {
    level: CareerLevel,
    years: u32,
    region: &'static str,
    industry: Industry,
    consent: bool,
}

fn draw() -> impl Strategy<Value = Draw> {
    let level = prop_oneof![
        6 => Just(CareerLevel::Director),
        3 => Just(CareerLevel::Executive),
        1 => Just(CareerLevel::HeadOfDepartment),
        1 => Just(CareerLevel::TeamLead),
    ];
    let years = prop_oneof![6 => 15u32..30, 2 => 5u32..15, 1 => 0u32..60];
    let region = prop_oneof![
        6 => Just("DE-BY"),
        3 => Just("DE-BE"),
        2 => Just("DE"),
        1 => Just("AT-9"),
        1 => Just("FR-IDF"),
    ];
    let industry = prop_oneof![
        6 => Just(Industry::Manufacturing),
        3 => Just(Industry::Energy),
        2 => Just(Industry::ItSoftware),
        1 => (1i32..=14).prop_map(|n| Industry::try_from(n).unwrap_or(Industry::Trade)),
    ];
    (level, years, region, industry, prop::bool::weighted(0.85)).prop_map(
        |(level, years, region, industry, consent)| Draw {
            level,
            years,
            region,
            industry,
            consent,
        },
    )
}

/// A change after the initial population: update mentor `index` to a new draw, or remove it.
#[derive(Debug, Clone)]
enum Step {
    Update(usize, Draw),
    Remove(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<usize>(), draw()).prop_map(|(i, d)| Step::Update(i, d)),
        1 => any::<usize>().prop_map(Step::Remove),
    ]
}

fn record(d: &Draw) -> Mentor {
    mentor(d.level, d.years, d.region, d.industry, d.consent)
}

/// Checks the broker's view against k and the node's records.
async fn check_batch(node: &NodeState, broker: &Broker, k: u32, consenting: &HashSet<String>) {
    let small = small_groups(broker.profiles.values(), k);
    assert!(small.is_empty(), "combinations below k={k}: {small:?}");
    let allowed: HashSet<String> = consenting.iter().map(|id| node.pseudonym(id)).collect();
    for pseudonym in broker.profiles.keys() {
        assert!(
            allowed.contains(pseudonym),
            "published a removed or non-consenting mentor"
        );
    }
    if consenting.len() < k as usize {
        assert!(broker.profiles.is_empty());
    }
    let report = node.publication_report().await.expect("report");
    assert_eq!(report.published_profiles as usize, broker.profiles.len());
    assert_eq!(
        (report.published_profiles + report.suppressed_profiles) as usize,
        consenting.len()
    );
}

async fn run_population(k: u32, population: Vec<Draw>, steps: Vec<Step>) {
    let at = Arc::new(AtomicI64::new(0));
    let publication = PublicationConfig { k, epoch_days: 30 };
    let (node, _dir) = node(publication, fixed_clock(&at)).await;
    let staff = common::staff(&node).await;
    let mut broker = Broker::default();
    let mut ids: Vec<Option<String>> = Vec::new();
    let mut consenting = HashSet::new();
    for d in &population {
        let created = node
            .create_mentor(&staff, record(d))
            .await
            .expect("created");
        if d.consent {
            consenting.insert(created.id.clone());
        }
        ids.push(Some(created.id));
    }
    broker.sync(&node).await;
    check_batch(&node, &broker, k, &consenting).await;

    for step in steps {
        if ids.is_empty() {
            break;
        }
        match step {
            Step::Update(i, d) => {
                let i = i % ids.len();
                let Some(id) = ids[i].clone() else { continue };
                let updated = Mentor {
                    id: id.clone(),
                    ..record(&d)
                };
                node.update_mentor(&staff, updated).await.expect("updated");
                if d.consent {
                    consenting.insert(id);
                } else {
                    consenting.remove(&id);
                }
            }
            Step::Remove(i) => {
                let i = i % ids.len();
                let Some(id) = ids[i].take() else { continue };
                node.remove_mentor(&staff, &id).await.expect("removed");
                consenting.remove(&id);
            }
        }
        broker.sync(&node).await;
        check_batch(&node, &broker, k, &consenting).await;
    }

    // A broker that starts from scratch sees exactly the same publication.
    let mut fresh = Broker::default();
    fresh.sync(&node).await;
    let mut a: Vec<_> = fresh.profiles.keys().collect();
    let mut b: Vec<_> = broker.profiles.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for (pseudonym, p) in &fresh.profiles {
        assert_eq!(p, &broker.profiles[pseudonym]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// For random mentor populations and random changes to them, every batch the broker holds
    /// is k-anonymous over the published quasi-identifiers and holds no profile of a removed
    /// or non-consenting mentor.
    #[test]
    fn every_published_batch_is_k_anonymous(
        k in prop_oneof![3 => Just(5u32), 1 => 1u32..=8],
        population in prop::collection::vec(draw(), 0..200),
        steps in prop::collection::vec(step(), 0..12),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_population(k, population, steps));
    }
}

#[tokio::test]
async fn each_mentor_shows_where_it_stands_in_the_k_anonymous_publication() {
    let at = Arc::new(AtomicI64::new(0));
    let config = PublicationConfig {
        k: 2,
        ..PublicationConfig::default()
    };
    let (node, _dir) = node(config, fixed_clock(&at)).await;
    let staff = common::staff(&node).await;
    for m in [
        mentor(CareerLevel::Director, 22, "DE-BY", Industry::Energy, true),
        mentor(CareerLevel::Director, 22, "DE-BY", Industry::Energy, true),
        mentor(CareerLevel::Director, 22, "DE-HE", Industry::Energy, true),
        mentor(CareerLevel::Director, 22, "DE-NW", Industry::Energy, true),
        // Alone at its level: no generalisation gives it company.
        mentor(
            CareerLevel::Executive,
            3,
            "FR",
            Industry::Construction,
            true,
        ),
        mentor(CareerLevel::Director, 22, "DE-BY", Industry::Energy, false),
    ] {
        node.create_mentor(&staff, m).await.expect("create");
    }
    let mentors = node.list_mentors().await.expect("list");
    let count = |state: tandem_proto::PublicationState| {
        mentors
            .iter()
            .filter(|m| m.publication_state == state as i32)
            .count()
    };
    use tandem_proto::PublicationState as S;
    // Read before any feed read: what the next publication will be, without writing it.
    let report = node.publication_report().await.expect("report");
    assert_eq!(count(S::NoConsent), 1);
    assert_eq!(count(S::Suppressed), report.suppressed_profiles as usize);
    assert!(
        count(S::Suppressed) >= 1,
        "the lone executive is suppressed"
    );
    assert_eq!(count(S::Generalised), report.generalised_profiles as usize);
    assert!(
        count(S::Generalised) >= 2,
        "DE-HE and DE-NW share only the country"
    );
    assert_eq!(
        count(S::Published) + count(S::Generalised),
        report.published_profiles as usize
    );
    for m in &mentors {
        let published = [S::Published as i32, S::Generalised as i32].contains(&m.publication_state);
        assert_eq!(!m.pseudonym.is_empty(), published, "{m:?}");
    }
    // After the publication is written, staff see the same.
    assert_eq!(node.list_mentors().await.expect("list"), mentors);
}
