//! The broker's configuration: where it listens, which database it uses, how often its
//! background jobs run, how long proposals and profiles stay valid, the scoring weights, and the
//! nodes registered at start.
//!
//! The `tandem` binary layers defaults, a TOML file, `TANDEM_*` variables and flags into this
//! struct; [`BrokerConfig::validate`] then checks it and names the offending key.

use serde::{Deserialize, Serialize};
use tandem_domain::scoring::ScoreWeights;
use tandem_matching::{CandidateLimits, Priority, RoundOptions};

fn default_rate_limit_per_second() -> u32 {
    50
}

fn default_rate_limit_burst() -> u32 {
    200
}

fn default_enrolment_rate_limit_per_minute() -> u32 {
    10
}

fn default_enrolment_rate_limit_burst() -> u32 {
    5
}

fn default_listen() -> String {
    "127.0.0.1:7000".to_owned()
}

fn default_sync_interval_secs() -> u64 {
    60
}

fn default_outbox_interval_secs() -> u64 {
    5
}

fn default_outbox_deadline_ms() -> u64 {
    5_000
}

fn default_outbox_retry_base_ms() -> u64 {
    1_000
}

fn default_outbox_max_attempts() -> u32 {
    20
}

fn default_proposal_ttl_hours() -> u64 {
    336
}

fn default_profile_staleness_secs() -> u64 {
    86_400
}

fn default_checkin_grace_days() -> u32 {
    tandem_domain::lifecycle::Rules::default().grace_days
}

fn default_rematch_window_days() -> u32 {
    tandem_domain::lifecycle::Rules::default().rematch_window_days
}

/// Everything the broker needs to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Socket address the gRPC services listen on (over TLS with `[api_tls]`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Socket address of the operators' dashboard (web page, `/api/dashboard` JSON and
    /// Prometheus `/metrics`, all behind an operator key; over TLS with `[api_tls]`); no
    /// dashboard when unset.
    #[serde(default)]
    pub dashboard_listen: Option<String>,
    /// Socket address of a plain-text port that serves only `grpc.health.v1.Health` (the same
    /// answers as on `listen`), for probes that cannot speak TLS such as the kubelet's native
    /// gRPC probe; none when unset.
    #[serde(default)]
    pub health_listen: Option<String>,
    /// `sqlite://…` or `postgres://…`; the database must already be migrated.
    pub database_url: String,
    /// Seconds between two syncs of every node; 0 disables the periodic sync.
    #[serde(default = "default_sync_interval_secs")]
    pub sync_interval_secs: u64,
    /// Seconds between two scans of the outbox for due messages. Every change that writes a
    /// message wakes delivery at once; the scan is the safety net (messages another replica
    /// wrote, leases of a replica that died). 0 turns background delivery off: messages then
    /// wait until something calls `Broker::deliver_outbox` (tests that drive every step).
    #[serde(default = "default_outbox_interval_secs")]
    pub outbox_interval_secs: u64,
    /// Milliseconds one delivery attempt to a node may take before it counts as failed (100 to
    /// 10000, the node client's own limit for one call). Each node has its own delivery lane,
    /// so a node that hangs holds up only its own messages.
    #[serde(default = "default_outbox_deadline_ms")]
    pub outbox_deadline_ms: u64,
    /// Milliseconds before the first retry of a failed delivery; each further failure doubles
    /// the wait (with random jitter), up to five minutes.
    #[serde(default = "default_outbox_retry_base_ms")]
    pub outbox_retry_base_ms: u64,
    /// Failed attempts after which a message becomes a dead letter, so that it stops holding
    /// back the later messages to its node (a message the node refuses for good becomes one at
    /// once). Operators list, retry and drop dead letters through `OperatorService`.
    #[serde(default = "default_outbox_max_attempts")]
    pub outbox_max_attempts: u32,
    /// Hours an open proposal waits for both answers before it expires.
    #[serde(default = "default_proposal_ttl_hours")]
    pub proposal_ttl_hours: u64,
    /// Profiles of a node not synced successfully within this many seconds are left out of
    /// matching rounds.
    #[serde(default = "default_profile_staleness_secs")]
    pub profile_staleness_secs: u64,
    /// Scoring weights of the matching rounds.
    #[serde(default)]
    pub weights: ScoreWeights,
    /// How many candidates a round keeps per mentee and per free mentor place before pricing
    /// checks every other feasible pair.
    #[serde(default)]
    pub candidate_limits: CandidateLimits,
    /// `best_total_score` (default) or `most_mentees_first`.
    #[serde(default)]
    pub priority: Priority,
    /// Requests per second each API key may send on average (0 disables the limit).
    #[serde(default = "default_rate_limit_per_second")]
    pub rate_limit_per_second: u32,
    /// Requests an API key may send in a burst above its average rate.
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// Enrolments (`EnrolmentService.EnrolCompany`, called without a key) each peer address
    /// may attempt per minute on average, so that nobody can try codes in bulk (0 disables the
    /// limit).
    #[serde(default = "default_enrolment_rate_limit_per_minute")]
    pub enrolment_rate_limit_per_minute: u32,
    /// Enrolments a peer address may attempt in a burst above its average rate.
    #[serde(default = "default_enrolment_rate_limit_burst")]
    pub enrolment_rate_limit_burst: u32,
    /// Days beyond a tandem's agreed cadence before its next meeting counts as overdue.
    #[serde(default = "default_checkin_grace_days")]
    pub checkin_grace_days: u32,
    /// A tandem ended early within this many days of its start sends the mentee back to
    /// waiting for another mentor.
    #[serde(default = "default_rematch_window_days")]
    pub rematch_window_days: u32,
    /// Nodes registered (or updated) when the broker starts.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    /// The broker's certificate, key and the CA of node certificates: every call to a node
    /// then runs over mutual TLS. Without it calls go in plain text, which the CLI allows only
    /// with `--insecure-dev`.
    #[serde(default)]
    pub tls: Option<tandem_tls::TlsFiles>,
    /// The certificate and key that the gRPC API (`MenteeService`, `EnrolmentService`,
    /// `OperatorService`) and the dashboard present to their callers, who authenticate with
    /// API keys or enrolment codes (no client certificates). Without it both serve plain text,
    /// which the CLI allows only with `--insecure-dev`.
    #[serde(default)]
    pub api_tls: Option<tandem_tls::CertFiles>,
}

/// A node to register at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: String,
    /// gRPC endpoint, e.g. `http://127.0.0.1:7001`.
    pub endpoint: String,
    #[serde(default)]
    pub display_name: String,
    /// Identity (DNS name) the node's certificate must carry; empty means
    /// `<id>.node.tandem`.
    #[serde(default)]
    pub identity: String,
}

/// Longest ttl accepted, ten years, so that `now + ttl` can never overflow.
const MAX_TTL_HOURS: u64 = 24 * 365 * 10;
/// Bounds of `outbox_deadline_ms`: a tenth of a second up to the node client's own timeout
/// of one call, which would cut a longer attempt short anyway.
const OUTBOX_DEADLINE_MS: std::ops::RangeInclusive<u64> = 100..=crate::nodes::REQUEST_TIMEOUT_MS;
/// Bounds of `outbox_retry_base_ms`: up to the longest wait between two attempts.
const OUTBOX_RETRY_BASE_MS: std::ops::RangeInclusive<u64> = 1..=crate::delivery::MAX_BACKOFF_MS;
/// Bounds of `outbox_max_attempts`.
const OUTBOX_MAX_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=1000;

impl BrokerConfig {
    /// Returns the options of a matching round.
    pub fn round_options(&self) -> RoundOptions {
        RoundOptions {
            weights: self.weights.clone(),
            limits: self.candidate_limits,
            priority: self.priority,
        }
    }

    /// Returns the rules of the tandem lifecycle.
    pub fn lifecycle_rules(&self) -> tandem_domain::lifecycle::Rules {
        tandem_domain::lifecycle::Rules {
            grace_days: self.checkin_grace_days,
            rematch_window_days: self.rematch_window_days,
        }
    }

    /// Returns a configuration with the defaults and the given database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            listen: default_listen(),
            dashboard_listen: None,
            health_listen: None,
            database_url: database_url.into(),
            sync_interval_secs: default_sync_interval_secs(),
            outbox_interval_secs: default_outbox_interval_secs(),
            outbox_deadline_ms: default_outbox_deadline_ms(),
            outbox_retry_base_ms: default_outbox_retry_base_ms(),
            outbox_max_attempts: default_outbox_max_attempts(),
            proposal_ttl_hours: default_proposal_ttl_hours(),
            profile_staleness_secs: default_profile_staleness_secs(),
            weights: ScoreWeights::default(),
            candidate_limits: CandidateLimits::default(),
            priority: Priority::default(),
            rate_limit_per_second: default_rate_limit_per_second(),
            rate_limit_burst: default_rate_limit_burst(),
            enrolment_rate_limit_per_minute: default_enrolment_rate_limit_per_minute(),
            enrolment_rate_limit_burst: default_enrolment_rate_limit_burst(),
            checkin_grace_days: default_checkin_grace_days(),
            rematch_window_days: default_rematch_window_days(),
            nodes: Vec::new(),
            tls: None,
            api_tls: None,
        }
    }

    /// Checks the configuration; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "listen: {:?} is not a socket address such as 127.0.0.1:7000",
                self.listen
            ));
        }
        if let Some(addr) = &self.dashboard_listen
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(format!(
                "dashboard_listen: {addr:?} is not a socket address such as 127.0.0.1:7080"
            ));
        }
        if self
            .dashboard_listen
            .as_ref()
            .is_some_and(|d| d == &self.listen && !d.ends_with(":0"))
        {
            return Err("dashboard_listen: must differ from listen".to_owned());
        }
        if let Some(addr) = &self.health_listen {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!(
                    "health_listen: {addr:?} is not a socket address such as 0.0.0.0:7090"
                ));
            }
            let taken = [Some(&self.listen), self.dashboard_listen.as_ref()];
            if !addr.ends_with(":0") && taken.contains(&Some(addr)) {
                return Err(
                    "health_listen: must differ from listen and dashboard_listen".to_owned(),
                );
            }
        }
        let url = &self.database_url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err("database_url: expected sqlite://… or postgres://…".to_owned());
        }
        if self.proposal_ttl_hours == 0 || self.proposal_ttl_hours > MAX_TTL_HOURS {
            return Err(format!("proposal_ttl_hours: must be 1 to {MAX_TTL_HOURS}"));
        }
        if !OUTBOX_DEADLINE_MS.contains(&self.outbox_deadline_ms) {
            return Err(format!(
                "outbox_deadline_ms: must be {} to {} (milliseconds)",
                OUTBOX_DEADLINE_MS.start(),
                OUTBOX_DEADLINE_MS.end()
            ));
        }
        if !OUTBOX_RETRY_BASE_MS.contains(&self.outbox_retry_base_ms) {
            return Err(format!(
                "outbox_retry_base_ms: must be {} to {} (milliseconds)",
                OUTBOX_RETRY_BASE_MS.start(),
                OUTBOX_RETRY_BASE_MS.end()
            ));
        }
        if !OUTBOX_MAX_ATTEMPTS.contains(&self.outbox_max_attempts) {
            return Err(format!(
                "outbox_max_attempts: must be {} to {}",
                OUTBOX_MAX_ATTEMPTS.start(),
                OUTBOX_MAX_ATTEMPTS.end()
            ));
        }
        if self.profile_staleness_secs == 0 {
            return Err("profile_staleness_secs: must be at least 1".to_owned());
        }
        if self.checkin_grace_days > 60 {
            return Err("checkin_grace_days: must be 0 to 60".to_owned());
        }
        if self.rematch_window_days > 365 {
            return Err("rematch_window_days: must be 0 to 365".to_owned());
        }
        let w = &self.weights;
        let weights = [
            ("goal_coverage", w.goal_coverage),
            ("level_gap", w.level_gap),
            ("industry", w.industry),
            ("region", w.region),
            ("breadth", w.breadth),
        ];
        for (key, value) in weights {
            if !(0..=1_000_000).contains(&value) {
                return Err(format!("weights.{key}: must be 0 to 1000000"));
            }
        }
        if !(1..=5).contains(&w.ideal_level_gap) {
            return Err("weights.ideal_level_gap: must be 1 to 5".to_owned());
        }
        let limits = &self.candidate_limits;
        if !(1..=200).contains(&limits.per_mentee) {
            return Err("candidate_limits.per_mentee: must be 1 to 200".to_owned());
        }
        if !(1..=200).contains(&limits.per_place) {
            return Err("candidate_limits.per_place: must be 1 to 200".to_owned());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            tandem_domain::validate::node_id(&format!("nodes[{i}].id"), &node.id)
                .map_err(|e| e.to_string())?;
            tandem_domain::validate::endpoint(&format!("nodes[{i}].endpoint"), &node.endpoint)
                .map_err(|e| e.to_string())?;
            tandem_domain::validate::endpoint_scheme(
                &format!("nodes[{i}].endpoint"),
                &node.endpoint,
                self.tls.is_some(),
            )
            .map_err(|e| e.to_string())?;
            if !node.identity.is_empty() {
                tandem_tls::check_identity(&format!("nodes[{i}].identity"), &node.identity)?;
            }
            if !seen.insert(&node.id) {
                return Err(format!("nodes[{i}].id: duplicate node id {:?}", node.id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_everything_but_the_database() {
        let config: BrokerConfig =
            serde_json::from_str(r#"{"database_url": "sqlite://broker.db"}"#).expect("parse");
        assert_eq!(config.listen, "127.0.0.1:7000");
        assert_eq!(config.sync_interval_secs, 60);
        assert_eq!(config.outbox_interval_secs, 5);
        assert_eq!(
            (
                config.outbox_deadline_ms,
                config.outbox_retry_base_ms,
                config.outbox_max_attempts
            ),
            (5_000, 1_000, 20)
        );
        assert_eq!(config.proposal_ttl_hours, 336);
        assert_eq!(config.profile_staleness_secs, 86_400);
        assert_eq!(
            (
                config.enrolment_rate_limit_per_minute,
                config.enrolment_rate_limit_burst
            ),
            (10, 5)
        );
        assert!(config.validate().is_ok());
    }

    #[test]
    fn rejects_unknown_keys() {
        let parsed: Result<BrokerConfig, _> =
            serde_json::from_str(r#"{"database_url": "sqlite://b.db", "colour": "red"}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn names_the_bad_key() {
        let mut config = BrokerConfig::new("sqlite://b.db");
        config.nodes.push(NodeEntry {
            id: "assoc".into(),
            endpoint: "127.0.0.1:7001".into(),
            display_name: String::new(),
            identity: String::new(),
        });
        let err = config.validate().expect_err("endpoint without scheme");
        assert!(err.starts_with("nodes[0].endpoint:"), "{err}");

        let mut config = BrokerConfig::new("mysql://x");
        assert!(
            config
                .validate()
                .expect_err("url")
                .starts_with("database_url:")
        );
        config.database_url = "sqlite://b.db".into();
        config.dashboard_listen = Some("localhost:7080".into());
        assert!(
            config
                .validate()
                .expect_err("dashboard address")
                .starts_with("dashboard_listen:")
        );
        config.dashboard_listen = Some(config.listen.clone());
        assert!(
            config
                .validate()
                .expect_err("same address")
                .starts_with("dashboard_listen:")
        );
        config.dashboard_listen = Some("127.0.0.1:7080".into());
        assert!(config.validate().is_ok());
        config.health_listen = Some("health".into());
        assert!(
            config
                .validate()
                .expect_err("health address")
                .starts_with("health_listen:")
        );
        config.health_listen = Some("127.0.0.1:7080".into());
        assert!(
            config
                .validate()
                .expect_err("same address as the dashboard")
                .starts_with("health_listen:")
        );
        config.health_listen = Some("127.0.0.1:7090".into());
        assert!(config.validate().is_ok());
        config.proposal_ttl_hours = 0;
        assert!(
            config
                .validate()
                .expect_err("ttl")
                .starts_with("proposal_ttl_hours:")
        );
    }

    #[test]
    fn names_a_bad_outbox_setting() {
        type Spoil = fn(&mut BrokerConfig);
        let cases: [(&str, Spoil); 5] = [
            ("outbox_deadline_ms:", |c| c.outbox_deadline_ms = 0),
            ("outbox_deadline_ms:", |c| c.outbox_deadline_ms = 10_001),
            ("outbox_retry_base_ms:", |c| c.outbox_retry_base_ms = 0),
            ("outbox_retry_base_ms:", |c| {
                c.outbox_retry_base_ms = 300_001
            }),
            ("outbox_max_attempts:", |c| c.outbox_max_attempts = 0),
        ];
        for (key, spoil) in cases {
            let mut config = BrokerConfig::new("sqlite://b.db");
            spoil(&mut config);
            let err = config.validate().expect_err(key);
            assert!(err.starts_with(key), "{err}");
        }
        let mut config = BrokerConfig::new("sqlite://b.db");
        (
            config.outbox_deadline_ms,
            config.outbox_retry_base_ms,
            config.outbox_max_attempts,
        ) = (10_000, 300_000, 1000);
        assert!(config.validate().is_ok());
    }
}
