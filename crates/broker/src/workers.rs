//! The broker's background jobs: the periodic sync of every node, the outbox's delivery lanes
//! and the expiry of proposals. Sync and expiry run on their own intervals until the stop
//! signal, each iteration in its own span; a failed iteration is logged and the next one tries
//! again. The delivery lanes run as long (see `delivery`), woken by every change that writes
//! messages and at least every `outbox_interval_secs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tracing::Instrument;

use tandem_service::CancellationToken;

use crate::Broker;

/// How often open proposals are checked for expiry.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Job {
    Sync,
    Expiry,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Expiry => "expiry",
        }
    }

    async fn run_once(self, broker: &Broker) {
        match self {
            Self::Sync => {
                if let Err(e) = broker.sync_nodes(None).await {
                    tracing::warn!(error = %e, "periodic sync failed");
                }
            }
            Self::Expiry => match broker.expire_proposals().await {
                Ok(0) => {}
                Ok(_) => broker.wake_outbox(),
                Err(e) => tracing::warn!(error = %e, "proposal expiry failed"),
            },
        }
    }
}

/// Starts the background jobs; they end when `stop` is cancelled.
pub(crate) fn spawn(broker: Arc<Broker>, stop: CancellationToken) -> JoinSet<()> {
    let config = broker.config();
    let jobs = [
        (Job::Sync, config.sync_interval_secs),
        (Job::Expiry, EXPIRY_INTERVAL.as_secs()),
    ];
    let mut set = JoinSet::new();
    match config.outbox_interval_secs {
        0 => tracing::info!(job = "outbox", "background job disabled"),
        secs => {
            let lanes =
                crate::delivery::run(Arc::clone(&broker), Duration::from_secs(secs), stop.clone());
            set.spawn(lanes.instrument(tracing::info_span!("background_job", job = "outbox")));
        }
    }
    for (job, secs) in jobs {
        if secs == 0 {
            tracing::info!(job = job.name(), "background job disabled");
            continue;
        }
        set.spawn(every(
            Duration::from_secs(secs),
            job,
            Arc::clone(&broker),
            stop.clone(),
        ));
    }
    set
}

/// Runs `job` now and then every `period` until stopped; a running iteration is abandoned at
/// the stop signal (its transaction rolls back).
async fn every(period: Duration, job: Job, broker: Arc<Broker>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => break,
        }
        let span = tracing::info_span!("background_job", job = job.name());
        tokio::select! {
            () = job.run_once(&broker).instrument(span) => {}
            () = stop.cancelled() => break,
        }
    }
    tracing::debug!(job = job.name(), "background job stopped");
}
