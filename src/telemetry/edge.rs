//! What every HTTP request goes through first: its request id, its span (the trace's root
//! and every log line's context), the HTTP and GraphQL metrics, and one log line when it
//! is answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::metrics::{Metrics, Outcome};
use super::traces::{REQUEST, continue_trace, exporting};

/// The request id header, read and answered.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest incoming request id kept.
const MAX_REQUEST_ID: usize = 128;

/// What the GraphQL handler tells the edge about a response: its operations and the codes of
/// its errors (a response extension, counted here, where the metrics are).
#[derive(Clone, Default)]
pub struct Observed {
    /// Each operation: its name (`None`: anonymous), how it ended, and how long it took.
    pub operations: Vec<(Option<String>, Outcome, Duration)>,
    /// `extensions.code` of every error in the response.
    pub codes: Vec<String>,
}

/// An incoming request id, if well-formed: 1 to 128 visible ASCII characters among letters,
/// digits and `-_.:/+=` (what UUIDs, ULIDs, AWS and GCP trace ids use).
fn well_formed(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= MAX_REQUEST_ID
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    ok.then_some(text)
}

/// A new request id: 128 random bits as 32 hex digits.
fn generated() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// The `route` label of `path`: one of the server's routes, or `(other)`; a bounded set
/// whatever paths clients ask for.
fn route_of(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/graphql" => "/graphql",
        "/graphql/stream" => "/graphql/stream",
        "/health" => "/health",
        "/livez" => "/livez",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        _ if path.starts_with("/graphiql/") => "/graphiql/*",
        _ => "(other)",
    }
}

/// Names the current request's span (and its trace's root span) after its GraphQL operation.
pub fn name_request(operation: &str) {
    let span = tracing::Span::current();
    span.record("operation", operation);
    if exporting() {
        // The OpenTelemetry span has started (its context is active): rename it there.
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        span.context().span().update_name(operation.to_owned());
    }
}

/// The middleware: see the module's documentation.
pub async fn observe(
    State(metrics): State<Option<Arc<Metrics>>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(well_formed)
        .map(str::to_owned)
        .unwrap_or_else(generated);
    let route = route_of(request.uri().path());
    let method = request.method().clone();
    // The fields a trace alone wants are recorded only while traces are exported (log lines
    // show every recorded field).
    let span = tracing::info_span!(
        target: REQUEST,
        "request",
        request_id = %id,
        method = %method,
        path = %request.uri().path(),
        operation = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let exporting = exporting();
    if exporting {
        span.record("otel.name", format!("{method} {route}"));
        span.record("otel.kind", "server");
        continue_trace(&span, request.headers());
    }
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    if exporting {
        span.record("http.response.status_code", status.as_u16());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let observed = response.extensions_mut().remove::<Observed>();
    if let Some(metrics) = &metrics {
        metrics.http_response(route, status.as_u16());
        if let Some(observed) = &observed {
            for code in &observed.codes {
                metrics.error(code);
            }
            if observed.operations.is_empty() {
                // Refused (or failed) before any operation was known.
                let outcome = if status.is_client_error() || status == StatusCode::OK {
                    Outcome::Refused
                } else {
                    Outcome::Error
                };
                metrics.unknown_operation(outcome, started.elapsed());
            }
            for (name, outcome, elapsed) in &observed.operations {
                metrics.operation(name.as_deref(), *outcome, *elapsed);
            }
        }
    }
    let _entered = span.enter();
    tracing::info!(
        target: REQUEST,
        status = status.as_u16(),
        latency_ms = %format_args!("{:.3}", started.elapsed().as_secs_f64() * 1000.0),
        "answered"
    );
    response
}
