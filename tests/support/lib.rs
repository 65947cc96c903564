//! Helpers for the end-to-end tests: start a whole federation (a broker and nodes as real gRPC
//! servers on ephemeral loopback ports, each with its own database), and build requests.
//!
//! The databases are SQLite files in a temporary directory, or — when
//! `TANDEM_TEST_POSTGRES_URL` is set — fresh databases on that PostgreSQL server.

use std::collections::BTreeMap;

use tandem_cli::demo::federation::{
    Databases, EnrolledCompany, Federation, NodeAdminClient, NodeSpec, OperatorClient,
};
use tandem_proto::mentee_service_client::MenteeServiceClient;
use tandem_proto::{
    CareerLevel, CompanySizeBand, Format, Goal, Industry, MenteeRequest, Mentor,
    SubmitMenteeRequest, Topic,
};
use tonic::transport::Channel;

pub use tandem_cli::demo::federation::with_key;

/// Member companies every test federation admits at its last node and enrols: the name tests
/// call a company by, its legal name and its commercial-register number.
pub const COMPANIES: [(&str, &str, &str); 2] = [
    ("acme", "Acme GmbH", "HRB 9 Berlin"),
    ("globex", "Globex AG", "HRB 7 Hamburg"),
];

/// The federation-wide key of test federations.
pub const FEDERATION_KEY: &str = "test-federation-key-0123456789abcdef";

/// A running test federation with clients for every role.
#[derive(Debug)]
pub struct TestFederation {
    pub federation: Federation,
    pub operator: OperatorClient,
    pub mentees: MenteeServiceClient<Channel>,
    /// One admin client per node (with that node's staff key), in the order of the node ids
    /// given to [`start`].
    pub admins: Vec<NodeAdminClient>,
    /// The enrolled member companies, by the name tests call them ([`COMPANIES`]).
    pub companies: BTreeMap<String, EnrolledCompany>,
    _dir: tempfile::TempDir,
}

impl TestFederation {
    /// Wraps a message in a request made on behalf of `company` (a name of [`COMPANIES`] or
    /// of [`TestFederation::enrol`]) with the key it got at enrolment.
    pub fn as_company<T>(&self, company: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
        let enrolled = self
            .companies
            .get(company)
            .ok_or_else(|| anyhow::anyhow!("no company {company} enrolled in this federation"))?;
        with_key(&enrolled.api_key, message)
    }

    /// Waits until the broker delivered what its outbox holds for the nodes and is due
    /// ([`Federation::settle`]): calls to the broker return before their messages reach the
    /// nodes.
    pub async fn settle(&self) -> anyhow::Result<()> {
        self.federation.settle().await
    }

    /// Admits a company with `register_number` at the `k`-th node and enrols it under `name`.
    pub async fn enrol(
        &mut self,
        name: &str,
        k: usize,
        register_number: &str,
    ) -> anyhow::Result<EnrolledCompany> {
        let enrolled = self
            .federation
            .admit_and_enrol(k, admission(name, register_number))
            .await?;
        self.companies.insert(name.to_owned(), enrolled.clone());
        Ok(enrolled)
    }
}

/// Returns what an association records when it admits the company `name`.
pub fn admission(name: &str, register_number: &str) -> tandem_proto::Company {
    tandem_proto::Company {
        legal_name: format!("{name} GmbH"),
        register_number: register_number.to_owned(),
        reference: name.to_owned(),
        ..Default::default()
    }
}

/// Returns where tests keep databases: PostgreSQL when `TANDEM_TEST_POSTGRES_URL` is set.
pub fn databases(dir: &std::path::Path) -> Databases {
    match std::env::var("TANDEM_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Databases::Postgres(url),
        _ => Databases::Sqlite(dir.to_path_buf()),
    }
}

/// A clock the test moves forward by hand: the real time plus an offset, shared by the broker
/// and the nodes.
#[derive(Debug, Clone, Default)]
pub struct TestClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl TestClock {
    /// Returns a clock that stands at the real time until it is moved.
    pub fn now() -> Self {
        Self::default()
    }

    /// Returns the clock's time in Unix milliseconds.
    pub fn get(&self) -> i64 {
        tandem_broker::Clock::system().now_ms() + self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Moves the clock forward by `days`.
    pub fn advance_days(&self, days: i64) {
        self.0.fetch_add(
            days * tandem_domain::lifecycle::DAY_MS,
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    fn as_clock(&self) -> tandem_broker::Clock {
        let clock = self.clone();
        tandem_broker::Clock::from_fn(move || clock.get())
    }
}

/// Starts a broker and one node per id, with clients connected.
pub async fn start(node_ids: &[&str]) -> anyhow::Result<TestFederation> {
    start_with_clock(node_ids, None).await
}

/// Like [`start`], reading the time from `clock` when given.
pub async fn start_with_clock(
    node_ids: &[&str],
    clock: Option<&TestClock>,
) -> anyhow::Result<TestFederation> {
    let dir = tempfile::tempdir()?;
    let specs: Vec<NodeSpec> = node_ids
        .iter()
        .map(|id| NodeSpec {
            node_id: (*id).to_owned(),
            display_name: format!("Network {id}"),
            // These federations hold one or two mentors per node; k-anonymity has its own
            // tests in the node crate. A test that moves the clock by months would cross
            // pseudonym epochs, so those run without rotation (it has its own tests too).
            publication: tandem_node::PublicationConfig {
                k: 1,
                epoch_days: if clock.is_some() {
                    0
                } else {
                    tandem_node::PublicationConfig::default().epoch_days
                },
            },
        })
        .collect();
    let clock = clock.map_or_else(tandem_broker::Clock::system, TestClock::as_clock);
    let federation = Federation::start_with_clock(
        &databases(dir.path()),
        FEDERATION_KEY,
        &specs,
        clock,
        |_| {},
    )
    .await?;
    // The member companies belong to the last network (the start-up network in two-node
    // federations, so that their tandems with the first node's mentors cross a boundary).
    let home = federation.nodes.len().saturating_sub(1);
    let mut companies = BTreeMap::new();
    for (name, legal_name, register_number) in COMPANIES {
        let company = tandem_proto::Company {
            legal_name: legal_name.to_owned(),
            register_number: register_number.to_owned(),
            reference: name.to_owned(),
            ..Default::default()
        };
        companies.insert(
            name.to_owned(),
            federation.admit_and_enrol(home, company).await?,
        );
    }
    let operator = federation.operator_client().await?;
    let mentees = federation.mentee_client().await?;
    let mut admins = Vec::new();
    for k in 0..federation.nodes.len() {
        admins.push(federation.admin_client(k).await?);
    }
    Ok(TestFederation {
        federation,
        operator,
        mentees,
        admins,
        companies,
        _dir: dir,
    })
}

/// Sends a GET over HTTP/1.1 inside TLS, trusting the CA certificate in `ca` and verifying the
/// server as `host` (blocking; call it from `spawn_blocking`). Returns the status code and the
/// body.
pub fn https_get(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
    key: &str,
    ca: &std::path::Path,
) -> anyhow::Result<(u16, String)> {
    use anyhow::Context;
    use rustls_pki_types::pem::PemObject;
    use std::io::{Read, Write};

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())?;
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name)?;
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        // A peer that closes without a TLS close_notify after a complete answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    let response = String::from_utf8(response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no end of headers")?;
    let status = head
        .split(' ')
        .nth(1)
        .context("no status")?
        .parse()
        .context("status code")?;
    anyhow::ensure!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "unexpected chunked answer"
    );
    Ok((status, body.to_owned()))
}

/// Returns the employer token of a registry number under the test federation key.
pub fn token(registry_number: &str) -> String {
    tandem_domain::pseudonym::employer_token(FEDERATION_KEY.as_bytes(), registry_number)
}

/// A mentor who fits [`mentee`]: an executive covering leadership and financing, remote, German
/// and English speaking.
pub fn mentor(name: &str, employer_registry: &str) -> Mentor {
    Mentor {
        display_name: name.to_owned(),
        email: format!("{}@mentors.example", name.to_lowercase().replace(' ', ".")),
        employer_name: format!("{name} Holding GmbH"),
        employer_registry_number: employer_registry.to_owned(),
        title: "Managing Director".into(),
        career_level: CareerLevel::Executive as i32,
        years_of_experience: 25,
        industries: vec![Industry::Manufacturing as i32],
        expertise: vec![Topic::Leadership as i32, Topic::Financing as i32],
        languages: vec!["de".into(), "en".into()],
        region: "DE-BY".into(),
        formats: vec![Format::Remote as i32],
        capacity: 2,
        publication_consent: tandem_proto::PublicationConsent::Granted as i32,
        ..Mentor::default()
    }
}

/// A team lead who wants to grow in leadership and financing, remotely, in German. Which
/// company submits it (and so its employer and home node) comes from the key it is sent with.
pub fn mentee() -> MenteeRequest {
    MenteeRequest {
        career_level: CareerLevel::TeamLead as i32,
        goals: vec![
            Goal {
                topic: Topic::Leadership as i32,
                priority: 3,
            },
            Goal {
                topic: Topic::Financing as i32,
                priority: 2,
            },
        ],
        languages: vec!["de".into()],
        region: "DE-BE".into(),
        preferred_format: Format::Remote as i32,
        industry: Industry::ItSoftware as i32,
        industry_preference: 0,
        company_size_band: CompanySizeBand::Small as i32,
    }
}

/// Wraps a mentee in a submission with an idempotency key.
pub fn submission(key: &str, mentee: MenteeRequest) -> SubmitMenteeRequest {
    SubmitMenteeRequest {
        idempotency_key: key.to_owned(),
        mentee: Some(mentee),
    }
}
