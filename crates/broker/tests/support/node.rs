//! A small but real node for the broker's tests: it serves `NodeService` over gRPC on an
//! ephemeral port and keeps its state in memory — a versioned profile feed, a versioned
//! membership feed of the member companies it admitted (with their enrolment codes),
//! introductions (idempotent on their id), a decision log, closing, and contact cards released
//! only for accepted, open introductions, forgetting a mentee summary. It logs every message
//! the broker's outbox brings, in order. It can be stopped, made to hang (accept connections
//! and never answer) and restarted on the same port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tandem_proto::node_service_server::{NodeService, NodeServiceServer};
use tandem_proto::profile_change::Change;
use tandem_proto::{
    AnonymisedProfile, CloseIntroductionRequest, CloseIntroductionResponse, ContactCard,
    DeliverIntroductionRequest, DeliverIntroductionResponse, DeliverIntroductionsRequest,
    DeliverIntroductionsResponse, DeliveryOutcome, ForgetMenteeRequest, ForgetMenteeResponse,
    GetDecisionRequest, GetDecisionsRequest, GetDecisionsResponse, GetMembershipChangesRequest,
    GetMembershipChangesResponse, GetNodeInfoRequest, GetProfileChangesRequest,
    GetProfileChangesResponse, GetTandemEventsRequest, GetTandemEventsResponse,
    IntroductionDecision, Membership, MentorDecision, NodeInfo, ProfileChange,
    ReleaseContactCardRequest, Tandem, UpdateTandemRequest, UpdateTandemResponse, Withdrawal,
    WithdrawalReason,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// An introduction as the test node keeps it.
#[derive(Debug, Clone)]
pub struct Intro {
    pub request: DeliverIntroductionRequest,
    pub decision: MentorDecision,
    /// The close reason once the broker closed it.
    pub closed: Option<String>,
    pub released: bool,
    /// How many times the broker delivered it.
    pub deliveries: u32,
    /// True once the broker asked to forget the mentee (summary and reasons are gone then).
    pub forgotten: bool,
}

#[derive(Default)]
struct State {
    version: u64,
    feed: Vec<(u64, ProfileChange)>,
    published: BTreeMap<String, AnonymisedProfile>,
    introductions: BTreeMap<String, Intro>,
    decisions: Vec<IntroductionDecision>,
    /// The newest copy of each tandem the broker sent.
    tandems: BTreeMap<String, Tandem>,
    /// The membership feed's version.
    membership_version: u64,
    /// Every outbox message the broker sent, in order of arrival: (kind, introduction id).
    calls: Vec<(&'static str, String)>,
    /// Each membership in its current state, by company id.
    memberships: BTreeMap<String, Membership>,
}

/// The federation-wide key the test nodes compute employer tokens with.
pub const FEDERATION_KEY: &[u8] = b"tandem test federation key";

/// How long an enrolment code of a test node stays valid.
const CODE_DAYS_MS: i64 = 14 * 24 * 60 * 60 * 1000;

/// A member company a test node admitted, and the enrolment code its staff handed over.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub company_id: String,
    pub code: String,
}

/// Returns the employer token of a register number, as every test node computes it.
pub fn employer_token(register_number: &str) -> String {
    tandem_domain::pseudonym::employer_token(FEDERATION_KEY, register_number)
}

fn now_ms() -> i64 {
    tandem_broker::Clock::system().now_ms()
}

#[derive(Clone)]
struct Service {
    id: String,
    state: Arc<Mutex<State>>,
}

impl Service {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

const DEFAULT_LIMIT: usize = 500;

fn limit(requested: u32) -> usize {
    match usize::try_from(requested).unwrap_or(DEFAULT_LIMIT) {
        0 => DEFAULT_LIMIT,
        n => n.min(DEFAULT_LIMIT),
    }
}

#[tonic::async_trait]
impl NodeService for Service {
    async fn get_node_info(
        &self,
        _request: Request<GetNodeInfoRequest>,
    ) -> Result<Response<NodeInfo>, Status> {
        let state = self.state();
        Ok(Response::new(NodeInfo {
            node_id: self.id.clone(),
            display_name: format!("Test node {}", self.id),
            feed_version: state.version,
            published_profiles: u32::try_from(state.published.len()).unwrap_or(u32::MAX),
            ..NodeInfo::default()
        }))
    }

    async fn get_profile_changes(
        &self,
        request: Request<GetProfileChangesRequest>,
    ) -> Result<Response<GetProfileChangesResponse>, Status> {
        let r = request.into_inner();
        let state = self.state();
        let after: Vec<_> = state
            .feed
            .iter()
            .filter(|(v, _)| *v > r.since_version)
            .collect();
        let n = limit(r.limit);
        let page: Vec<_> = after.iter().take(n).collect();
        Ok(Response::new(GetProfileChangesResponse {
            next_version: page.last().map_or(r.since_version, |(v, _)| *v),
            has_more: after.len() > n,
            changes: page.into_iter().map(|(_, c)| c.clone()).collect(),
        }))
    }

    async fn deliver_introduction(
        &self,
        request: Request<DeliverIntroductionRequest>,
    ) -> Result<Response<DeliverIntroductionResponse>, Status> {
        let r = request.into_inner();
        let mut state = self.state();
        state
            .calls
            .push(("deliver_introduction", r.introduction_id.clone()));
        if let Some(known) = state.introductions.get_mut(&r.introduction_id) {
            known.deliveries += 1;
            return Ok(Response::new(DeliverIntroductionResponse {
                duplicate: true,
            }));
        }
        if !state.published.contains_key(&r.pseudonym) {
            return Err(Status::not_found("unknown mentor"));
        }
        state.introductions.insert(
            r.introduction_id.clone(),
            Intro {
                request: r,
                decision: MentorDecision::Pending,
                closed: None,
                released: false,
                deliveries: 1,
                forgotten: false,
            },
        );
        Ok(Response::new(DeliverIntroductionResponse {
            duplicate: false,
        }))
    }

    async fn deliver_introductions(
        &self,
        request: Request<DeliverIntroductionsRequest>,
    ) -> Result<Response<DeliverIntroductionsResponse>, Status> {
        let mut outcomes = Vec::new();
        for r in request.into_inner().introductions {
            let introduction_id = r.introduction_id.clone();
            let outcome = match self.deliver_introduction(Request::new(r)).await {
                Ok(answer) => DeliveryOutcome {
                    introduction_id,
                    code: 0,
                    message: String::new(),
                    duplicate: answer.into_inner().duplicate,
                },
                Err(status) => DeliveryOutcome {
                    introduction_id,
                    code: status.code() as i32,
                    message: status.message().to_owned(),
                    duplicate: false,
                },
            };
            outcomes.push(outcome);
        }
        Ok(Response::new(DeliverIntroductionsResponse { outcomes }))
    }

    async fn get_decisions(
        &self,
        request: Request<GetDecisionsRequest>,
    ) -> Result<Response<GetDecisionsResponse>, Status> {
        let r = request.into_inner();
        let state = self.state();
        let after: Vec<_> = state
            .decisions
            .iter()
            .filter(|d| d.sequence > r.since)
            .collect();
        let n = limit(r.limit);
        let page: Vec<IntroductionDecision> = after.iter().take(n).map(|d| (*d).clone()).collect();
        Ok(Response::new(GetDecisionsResponse {
            next: page.last().map_or(r.since, |d| d.sequence),
            has_more: after.len() > n,
            decisions: page,
        }))
    }

    async fn get_decision(
        &self,
        request: Request<GetDecisionRequest>,
    ) -> Result<Response<IntroductionDecision>, Status> {
        let r = request.into_inner();
        let state = self.state();
        let intro = state
            .introductions
            .get(&r.introduction_id)
            .ok_or_else(|| Status::not_found("unknown introduction"))?;
        let sequence = state
            .decisions
            .iter()
            .rfind(|d| d.introduction_id == r.introduction_id)
            .map_or(0, |d| d.sequence);
        Ok(Response::new(IntroductionDecision {
            introduction_id: r.introduction_id,
            decision: intro.decision as i32,
            sequence,
        }))
    }

    async fn close_introduction(
        &self,
        request: Request<CloseIntroductionRequest>,
    ) -> Result<Response<CloseIntroductionResponse>, Status> {
        let r = request.into_inner();
        let mut state = self.state();
        state
            .calls
            .push(("close_introduction", r.introduction_id.clone()));
        let intro = state
            .introductions
            .get_mut(&r.introduction_id)
            .ok_or_else(|| Status::not_found("unknown introduction"))?;
        if intro.closed.is_none() {
            intro.closed = Some(r.reason);
        }
        Ok(Response::new(CloseIntroductionResponse {}))
    }

    async fn release_contact_card(
        &self,
        request: Request<ReleaseContactCardRequest>,
    ) -> Result<Response<ContactCard>, Status> {
        let r = request.into_inner();
        let mut state = self.state();
        let intro = state
            .introductions
            .get_mut(&r.introduction_id)
            .ok_or_else(|| Status::not_found("unknown introduction"))?;
        if intro.decision != MentorDecision::Accepted || intro.closed.is_some() {
            return Err(Status::failed_precondition("the mentor has not accepted"));
        }
        intro.released = true;
        Ok(Response::new(card_for(&self.id, &intro.request.pseudonym)))
    }

    async fn update_tandem(
        &self,
        request: Request<UpdateTandemRequest>,
    ) -> Result<Response<UpdateTandemResponse>, Status> {
        let mut state = self.state();
        let request = request.into_inner();
        let id = request
            .tandem
            .as_ref()
            .map(|t| t.tandem_id.clone())
            .unwrap_or_default();
        state.calls.push(("update_tandem", id));
        let tandem = request
            .tandem
            .ok_or_else(|| Status::invalid_argument("tandem: is required"))?;
        if !state.introductions.contains_key(&tandem.tandem_id) {
            return Err(Status::not_found("unknown introduction"));
        }
        let newer = state
            .tandems
            .get(&tandem.tandem_id)
            .is_none_or(|held| held.version <= tandem.version);
        if newer {
            state.tandems.insert(tandem.tandem_id.clone(), tandem);
        }
        Ok(Response::new(UpdateTandemResponse {}))
    }

    async fn get_membership_changes(
        &self,
        request: Request<GetMembershipChangesRequest>,
    ) -> Result<Response<GetMembershipChangesResponse>, Status> {
        let r = request.into_inner();
        let state = self.state();
        let mut after: Vec<&Membership> = state
            .memberships
            .values()
            .filter(|m| m.version > r.since_version)
            .collect();
        after.sort_by_key(|m| m.version);
        let n = limit(r.limit);
        let page: Vec<Membership> = after.iter().take(n).map(|m| (*m).clone()).collect();
        Ok(Response::new(GetMembershipChangesResponse {
            next_version: page.last().map_or(r.since_version, |m| m.version),
            has_more: after.len() > n,
            memberships: page,
        }))
    }

    /// This node's mentors record nothing themselves: its tandem log stays empty.
    async fn get_tandem_events(
        &self,
        request: Request<GetTandemEventsRequest>,
    ) -> Result<Response<GetTandemEventsResponse>, Status> {
        Ok(Response::new(GetTandemEventsResponse {
            events: Vec::new(),
            next: request.into_inner().since,
            has_more: false,
        }))
    }

    async fn forget_mentee(
        &self,
        request: Request<ForgetMenteeRequest>,
    ) -> Result<Response<ForgetMenteeResponse>, Status> {
        let r = request.into_inner();
        let mut state = self.state();
        state
            .calls
            .push(("forget_mentee", r.introduction_id.clone()));
        let intro = state
            .introductions
            .get_mut(&r.introduction_id)
            .ok_or_else(|| Status::not_found("unknown introduction"))?;
        intro.request.mentee = None;
        intro.request.reasons.clear();
        intro.forgotten = true;
        Ok(Response::new(ForgetMenteeResponse {}))
    }
}

/// Returns the contact card the test node keeps for a mentor.
pub fn card_for(node_id: &str, pseudonym: &str) -> ContactCard {
    let short = &pseudonym[pseudonym.len().saturating_sub(6)..];
    ContactCard {
        display_name: format!("Mentor {short}"),
        email: format!("mentor-{short}@{node_id}.example.org"),
        title: "Managing Director".to_owned(),
        organisation: format!("Organisation {short}"),
        node_id: node_id.to_owned(),
    }
}

/// A running (or stopped) test node.
pub struct TestNode {
    pub id: String,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
    /// The listener that takes connections and never answers, while the node hangs.
    hung: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl TestNode {
    /// Starts a node on an ephemeral port.
    pub async fn start(id: &str) -> TestNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
        let addr = listener.local_addr().expect("node address");
        let node = TestNode {
            id: id.to_owned(),
            addr,
            state: Arc::new(Mutex::new(State::default())),
            server: Mutex::new(None),
            hung: Mutex::new(None),
        };
        node.serve_on(listener);
        node
    }

    fn serve_on(&self, listener: TcpListener) {
        let service = Service {
            id: self.id.clone(),
            state: Arc::clone(&self.state),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(NodeServiceServer::new(service))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await
                .expect("test node serves");
        });
        *self.server.lock().expect("server slot") = Some((tx, handle));
    }

    /// Returns the endpoint the broker dials.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving (or hanging); the state stays.
    pub async fn stop(&self) {
        let server = self.server.lock().expect("server slot").take();
        if let Some((tx, handle)) = server {
            let _ = tx.send(());
            handle.await.expect("test node stopped");
        }
        let hung = self.hung.lock().expect("hung slot").take();
        if let Some((tx, handle)) = hung {
            // The connections it held close: callers waiting on them see them reset.
            let _ = tx.send(());
            handle.await.expect("hung listener stopped");
        }
    }

    /// Serves again on the same port with the same state (after a stop or a hang).
    pub async fn restart(&self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind node");
        self.serve_on(listener);
    }

    /// Stops serving and hangs instead: the port accepts connections and never answers (a
    /// node whose process is stuck, or a network that drops its replies).
    pub async fn hang(&self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind node");
        let (tx, mut rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((socket, _)) = accepted {
                            held.push(socket);
                        }
                    }
                    _ = &mut rx => break,
                }
            }
        });
        *self.hung.lock().expect("hung slot") = Some((tx, handle));
    }

    /// Returns every outbox message the broker sent, in order: (kind, introduction id).
    pub fn calls(&self) -> Vec<(&'static str, String)> {
        self.state().calls.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes (or changes) a profile, as is: no validation, so tests can publish garbage.
    pub fn publish(&self, mut profile: AnonymisedProfile) {
        let mut state = self.state();
        state.version += 1;
        profile.version = state.version;
        let version = state.version;
        state
            .published
            .insert(profile.pseudonym.clone(), profile.clone());
        state.feed.push((
            version,
            ProfileChange {
                change: Some(Change::Upsert(profile)),
            },
        ));
    }

    /// Withdraws a profile because the mentor left.
    pub fn withdraw(&self, pseudonym: &str) {
        self.withdraw_because(pseudonym, WithdrawalReason::Removed);
    }

    /// Withdraws a profile for `reason`.
    pub fn withdraw_because(&self, pseudonym: &str, reason: WithdrawalReason) {
        let mut state = self.state();
        state.version += 1;
        let version = state.version;
        state.published.remove(pseudonym);
        state.feed.push((
            version,
            ProfileChange {
                change: Some(Change::Withdrawal(Withdrawal {
                    pseudonym: pseudonym.to_owned(),
                    version,
                    reason: reason as i32,
                })),
            },
        ));
    }

    /// Admits a member company under a fresh random id and returns the id with its enrolment
    /// code (valid for 14 days).
    pub fn admit(&self, register_number: &str) -> Admitted {
        let company_id = uuid::Uuid::new_v4().to_string();
        let code = self.admit_as(&company_id, register_number);
        Admitted { company_id, code }
    }

    /// Admits a member company under `company_id` (a UUID) and returns its enrolment code.
    pub fn admit_as(&self, company_id: &str, register_number: &str) -> String {
        let new = tandem_service::enrolment::generate();
        let token = employer_token(register_number);
        self.publish_membership(Membership {
            company_id: company_id.to_owned(),
            employer_token: token.clone(),
            group_token: token,
            enrolment_code_hash: new.hash,
            enrolment_code_expires_at_ms: now_ms() + CODE_DAYS_MS,
            active: true,
            version: 0,
        });
        new.code
    }

    /// Issues a fresh enrolment code for an admitted company; the previous one stops working.
    pub fn issue_code(&self, company_id: &str) -> String {
        let new = tandem_service::enrolment::generate();
        self.change_membership(company_id, |m| {
            m.enrolment_code_hash = new.hash;
            m.enrolment_code_expires_at_ms = now_ms() + CODE_DAYS_MS;
        });
        new.code
    }

    /// Lets the company's open enrolment code expire.
    pub fn expire_code(&self, company_id: &str) {
        self.change_membership(company_id, |m| {
            m.enrolment_code_expires_at_ms = now_ms() - 1;
        });
    }

    /// Removes a member company: its membership turns inactive.
    pub fn remove(&self, company_id: &str) {
        self.change_membership(company_id, |m| {
            m.active = false;
            m.enrolment_code_hash.clear();
            m.enrolment_code_expires_at_ms = 0;
        });
    }

    fn change_membership(&self, company_id: &str, change: impl FnOnce(&mut Membership)) {
        let mut m = self
            .state()
            .memberships
            .get(company_id)
            .cloned()
            .expect("an admitted company");
        change(&mut m);
        self.publish_membership(m);
    }

    /// Publishes a membership as is at the next version: no validation, so tests can publish
    /// garbage or another node's company.
    pub fn publish_membership(&self, mut membership: Membership) {
        let mut state = self.state();
        state.membership_version += 1;
        membership.version = state.membership_version;
        state
            .memberships
            .insert(membership.company_id.clone(), membership);
    }

    /// Records the mentor's decision on an introduction.
    pub fn decide(&self, introduction_id: &str, decision: MentorDecision) {
        let mut state = self.state();
        let sequence = u64::try_from(state.decisions.len()).expect("small") + 1;
        let intro = state
            .introductions
            .get_mut(introduction_id)
            .expect("introduction delivered to the node");
        assert!(intro.closed.is_none(), "introduction already closed");
        intro.decision = decision;
        state.decisions.push(IntroductionDecision {
            introduction_id: introduction_id.to_owned(),
            decision: decision as i32,
            sequence,
        });
    }

    /// Returns the introductions the node received, by id.
    pub fn introductions(&self) -> BTreeMap<String, Intro> {
        self.state().introductions.clone()
    }

    /// Returns one introduction.
    pub fn introduction(&self, id: &str) -> Option<Intro> {
        self.state().introductions.get(id).cloned()
    }
}
