//! The operators' dashboard: network health and matching figures, served over HTTP on the
//! broker's own dashboard address as a web page, as JSON (`/api/dashboard`) and as Prometheus
//! metrics (`/metrics`).
//!
//! [`figures`] computes one [`Dashboard`] from the database; [`metrics`] renders it as
//! Prometheus text; [`http`] serves the page (static assets shipped in the crate, no CDN), the
//! JSON and the metrics behind an operator key. The page's script applies the "<5" rule to
//! counts of people; the JSON and the metrics carry exact figures for the operators' machines.

pub mod figures;
pub mod http;
pub mod metrics;
pub mod timing;

pub use figures::Dashboard;
pub use http::{router, serve};
