//! The delivery lanes in the background: one loop per broker process that starts a lane for
//! every node whose next message is due, when woken, when a retry falls due and at least every
//! `outbox_interval_secs`, and keeps at most one lane per node running.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tandem_service::CancellationToken;
use tokio::task::JoinSet;

use super::LaneRun;
use crate::{Broker, BrokerError};

/// How long the background loop leaves a lane alone after a run that finished nothing (its
/// next message was held by another replica's claim).
const IDLE_PAUSE_MS: i64 = 200;

/// Runs the delivery lanes in the background until `stop`: a lane for every node whose next
/// message is due, started when woken ([`Broker::wake_outbox`]), when a retry falls due and
/// at least every `period`. A lane still running at the stop is abandoned and its lease given
/// up.
pub(crate) async fn run(broker: Arc<Broker>, period: Duration, stop: CancellationToken) {
    let mut lanes: JoinSet<(String, Result<LaneRun, BrokerError>)> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut not_before: HashMap<String, i64> = HashMap::new();
    let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
    loop {
        let now = broker.now();
        let mut next = now.saturating_add(period_ms);
        match broker.lane_heads().await {
            Ok(heads) => {
                for head in heads {
                    if busy.contains(&head.node_id) {
                        continue;
                    }
                    let due = head
                        .due_at_ms
                        .max(not_before.get(&head.node_id).copied().unwrap_or(0));
                    if due > now {
                        next = next.min(due);
                        continue;
                    }
                    busy.insert(head.node_id.clone());
                    let broker = Arc::clone(&broker);
                    lanes.spawn(async move {
                        let run = broker.drive_lane(&head.node_id).await;
                        (head.node_id, run)
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "outbox scan failed"),
        }
        let wait = Duration::from_millis(u64::try_from(next.saturating_sub(now)).unwrap_or(0));
        tokio::select! {
            () = stop.cancelled() => break,
            () = broker.lanes.wake.notified() => {}
            Some(done) = lanes.join_next(), if !lanes.is_empty() => {
                if let Ok((node_id, run)) = done {
                    busy.remove(&node_id);
                    match run {
                        Ok(run) if run.finished > 0 => {
                            not_before.remove(&node_id);
                        }
                        Ok(_) => {
                            not_before.insert(node_id, broker.now().saturating_add(IDLE_PAUSE_MS));
                        }
                        Err(e) => {
                            tracing::warn!(node = %node_id, error = %e, "delivery lane failed");
                            not_before.insert(node_id, broker.now().saturating_add(period_ms.min(5_000)));
                        }
                    }
                } else {
                    // A lane panicked; which node is lost with it, so start over.
                    tracing::error!("delivery lane panicked");
                    busy.clear();
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
    lanes.shutdown().await;
    broker.release_abandoned_leases().await;
    tracing::debug!("delivery lanes stopped");
}
