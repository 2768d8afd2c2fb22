//! Logs and traces: the process's `tracing` subscriber, its log format, and the OpenTelemetry
//! export.
//!
//! Every span orgql makes for a trace (parse, validate, execute, each SQL statement, each
//! loader batch) has the target [`TRACE`]. Only the OpenTelemetry layer listens to that
//! target, and it exists only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: otherwise no layer is interested in those
//! spans, `tracing` marks their call sites disabled once, and creating one costs a load and a
//! branch. The request's own span (target [`REQUEST`]) is always there: it carries the
//! request id onto every log line of the request, and it is the trace's root span.
//!
//! The export is OTLP over HTTP with protobuf (`opentelemetry-otlp`'s `http-proto`), batched
//! on the SDK's own thread; the standard `OTEL_*` variables (endpoint, headers, timeout,
//! service name, resource attributes, sampler) apply. Plain HTTP only: send to a local
//! collector or agent, which forwards over TLS.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The target of every span that only a trace wants.
pub const TRACE: &str = "orgql::trace";
/// The target of each request's span.
pub const REQUEST: &str = "orgql::request";

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Pretty,
    /// One JSON object per line, the request's span (and its `request_id`) included.
    Json,
}

/// Keeps the trace exporter running; dropping it sends what is still buffered.
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("orgql: flushing traces failed: {error}");
        }
    }
}

/// Whether the environment asks for trace export.
fn otlp_configured() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Installs the process's subscriber: log lines in `format`, filtered by `RUST_LOG` (default
/// `info,sqlx=warn,sea_orm=warn`), and the OTLP exporter when the environment sets one.
pub fn init(format: LogFormat) -> anyhow::Result<Guard> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    // Log lines never show the trace's own spans (their names would prefix every line). The
    // hints keep the process's most verbose level `RUST_LOG`'s: without them `tracing` (and
    // the `log` records of crates such as tungstenite, one per WebSocket frame) would ask
    // every layer about every `trace!` call site.
    let logged = filter.and(
        filter_fn(|metadata| metadata.target() != TRACE).with_max_level_hint(LevelFilter::TRACE),
    );
    let logs = match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let mut provider = None;
    let traces = if otlp_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var("OTEL_SERVICE_NAME").is_err() {
            resource = resource.with_service_name("orgql");
        }
        let tracer_provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = tracer_provider.tracer("orgql");
        provider = Some(tracer_provider);
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        EXPORTING.store(true, Ordering::Relaxed);
        Some(
            // Only the spans' own fields: no source location, thread, target or busy/idle
            // times on every span (each an attribute to allocate, encode and send).
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                // No OpenTelemetry context made current on each entry into a span (every poll
                // of an instrumented future): nothing in orgql reads the current context, and
                // each activation starts a span and pushes a guard.
                .with_context_activation(false)
                .with_filter(
                    filter_fn(|metadata| {
                        metadata.is_span()
                            && (metadata.target() == TRACE || metadata.target() == REQUEST)
                    })
                    // Every span orgql makes for a trace is an `info` span.
                    .with_max_level_hint(LevelFilter::INFO),
                ),
        )
    } else {
        None
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(logged))
        .with(traces)
        .try_init()?;
    Ok(Guard(provider))
}

/// Makes `span` (a request's) continue the trace of an incoming W3C `traceparent` header.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !exporting() || !headers.contains_key("traceparent") {
        return;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
}

/// The span of one SQL statement: its text, with placeholders instead of values.
pub fn statement_span(sql: &str) -> tracing::Span {
    tracing::info_span!(
        target: TRACE,
        "db.statement",
        otel.kind = "client",
        db.query.text = sql,
    )
}

/// Spans for the stages async-graphql runs itself: validation and execution. Installed on
/// the schema only while traces are exported (an extension costs every field a hook).
pub struct Stages;

impl async_graphql::extensions::ExtensionFactory for Stages {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(Stages)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for Stages {
    async fn validation(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextValidation<'_>,
    ) -> Result<async_graphql::ValidationResult, Vec<async_graphql::ServerError>> {
        use tracing::Instrument;
        let span = tracing::info_span!(target: TRACE, "graphql.validate");
        next.run(ctx).instrument(span).await
    }

    async fn execute(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        use tracing::Instrument;
        let span = tracing::info_span!(
            target: TRACE,
            "graphql.execute",
            graphql.operation.name = operation_name.unwrap_or_default()
        );
        next.run(ctx, operation_name).instrument(span).await
    }
}
