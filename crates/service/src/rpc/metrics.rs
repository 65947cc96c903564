//! Per-call metrics of a gRPC server, in the Prometheus text format of the broker's `/metrics`:
//!
//! - `tandem_rpc_server_duration_seconds{service, method, code}`: a histogram of how long the
//!   calls took, from the request's arrival to the response's last byte (for a stream, its
//!   whole life), by the code they ended with;
//! - `tandem_rpc_server_errors_total{service, method, code}`: the calls that ended with a code
//!   other than OK.
//!
//! Recording a call takes no allocation once its label set exists: the labels are the shared
//! names of the method table and the code's static name.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::Code;

use super::methods::Method;

/// Name of the duration histogram.
pub const DURATION: &str = "tandem_rpc_server_duration_seconds";
/// Name of the error counter (the text format adds `_total`).
pub const ERRORS: &str = "tandem_rpc_server_errors";

/// Upper bounds of the duration buckets, in seconds: a millisecond to ten seconds (the broker's
/// request timeout towards nodes).
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The labels of one series: service and method, then the code.
type Labels = (
    [(&'static str, Arc<str>); 2],
    [(&'static str, &'static str); 1],
);

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The call metrics of one server (or of several that report together); clones share them.
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    errors: Family<Labels, Counter>,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        Self {
            duration: Family::new_with_constructor(histogram),
            errors: Family::default(),
        }
    }
}

impl RpcMetrics {
    /// Records one call of `method` that ended with `code` after `seconds`.
    pub fn observe(&self, method: &Method, code: Code, seconds: f64) {
        let labels = (
            [
                ("service", Arc::clone(&method.service)),
                ("method", Arc::clone(&method.method)),
            ],
            [("code", tandem_telemetry::rpc::code_name(code))],
        );
        self.duration.get_or_create(&labels).observe(seconds);
        if code != Code::Ok {
            self.errors.get_or_create(&labels).inc();
        }
    }

    /// Adds the metrics to `registry` (as it is encoded next, with the values of that moment).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            DURATION,
            "Duration of the gRPC calls the server answered, by service, method and code",
            self.duration.clone(),
        );
        registry.register(
            ERRORS,
            "gRPC calls the server answered with a code other than OK, by service, method and code",
            self.errors.clone(),
        );
    }

    /// Returns the metrics alone in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::Methods;

    #[test]
    fn calls_are_counted_by_method_and_code() {
        let methods = Methods::new(&[]).expect("decode");
        let check = methods.get("/grpc.health.v1.Health/Check");
        let metrics = RpcMetrics::default();
        metrics.observe(check, Code::Ok, 0.002);
        metrics.observe(check, Code::Ok, 0.004);
        metrics.observe(check, Code::NotFound, 0.001);
        let text = metrics.render();
        let series = "service=\"grpc.health.v1.Health\",method=\"Check\"";
        assert!(
            text.contains(&format!("{DURATION}_count{{{series},code=\"OK\"}} 2\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{DURATION}_bucket{{{series},code=\"OK\",le=\"0.0025\"}} 1\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{ERRORS}_total{{{series},code=\"NOT_FOUND\"}} 1\n"
            )),
            "{text}"
        );
        assert!(
            !text.contains(&format!("{ERRORS}_total{{{series},code=\"OK\"}}")),
            "{text}"
        );
    }
}
