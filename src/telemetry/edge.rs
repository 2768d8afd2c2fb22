//! What every HTTP request goes through first: its request id, its span (the trace's root
//! and every log line's context), the HTTP and GraphQL metrics, and one log line when it
//! is answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::metrics::{Metrics, Outcome};
use opentelemetry::{KeyValue, Value};

use super::traces::{REQUEST, Span};

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
    tracing::Span::current().record("operation", operation);
    Span::rename_current(operation, || {
        KeyValue::new("graphql.operation.name", operation.to_owned())
    });
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
    let path = request.uri().path();
    let span = tracing::info_span!(
        target: REQUEST,
        "request",
        request_id = %id,
        method = %method,
        path = %path,
        operation = tracing::field::Empty,
    );
    let mut trace = Span::request(
        || match (&method, route) {
            (&Method::POST, "/graphql") => "POST /graphql".into(),
            (&Method::GET, "/graphql") => "GET /graphql".into(),
            _ => format!("{method} {route}").into(),
        },
        request.headers(),
        || {
            let method = match method {
                Method::POST => "POST".into(),
                Method::GET => "GET".into(),
                ref other => other.to_string().into(),
            };
            // A route other than a wildcard is its path: no copy of it.
            let path = match route {
                "/graphiql/*" | "(other)" => path.to_owned().into(),
                _ => route.into(),
            };
            vec![
                KeyValue::new("request_id", id.clone()),
                KeyValue::new("http.request.method", Value::String(method)),
                KeyValue::new("http.route", route),
                KeyValue::new("url.path", Value::String(path)),
            ]
        },
    );
    let mut response = trace
        .around(next.run(request).instrument(span.clone()))
        .await;
    let status = response.status();
    trace.set(|| KeyValue::new("http.response.status_code", i64::from(status.as_u16())));
    drop(trace);
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
