//! Seeing a running server: Prometheus metrics ([`metrics`]), logs and OpenTelemetry traces
//! ([`traces`]), and the request id, span and counters every HTTP request gets ([`edge`]).
//! The probes `/livez` and `/readyz` are in the server (`crate::server`).

pub mod cells;
pub mod edge;
pub mod metrics;
pub mod otlp;
pub mod stages;
pub mod traces;

pub use metrics::{Metrics, Outcome, Statements};
