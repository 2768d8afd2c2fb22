//! Logs and traces: the process's `tracing` subscriber and its log format, and orgql's
//! OpenTelemetry spans.
//!
//! Logs go through `tracing`. Each request's `tracing` span (target [`REQUEST`]) carries its
//! request id onto every log line of the request.
//!
//! Traces do not: every span of a trace (the request, parse, validate, execute, each SQL
//! statement, each loader batch) is a [`Span`] made with the OpenTelemetry SDK directly, and
//! a span's children find it as the current OpenTelemetry `Context`, which [`Span::around`]
//! makes current on each poll of the future it runs. Going through `tracing` instead (its
//! registry and `tracing-opentelemetry`) cost about 15,000 instructions a span; see
//! `bench/README.md`, "The cost of metrics and traces". Spans exist only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: otherwise
//! making one costs a load and a branch. Within a request the sampler decides once, for the
//! root span: a request it does not sample makes no other span. Outside a request (the live
//! feed's reads, for instance) no span is made. Validation and execution, which
//! async-graphql runs itself, get their spans from [`super::stages`].
//!
//! The export is OTLP over HTTP with protobuf, batched on a thread of its own
//! ([`super::otlp`]); the standard `OTEL_*` variables (endpoint, headers, timeout, service name, resource
//! attributes, sampler, batch size and delay) apply. Plain HTTP only: send to a local
//! collector or agent, which forwards over TLS.

use std::borrow::Cow;
use std::future::Future;
use std::sync::OnceLock;

use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The target of each request's `tracing` span.
pub const REQUEST: &str = "orgql::request";

/// The tracer of every span, once traces are exported.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Whether this process exports traces.
pub fn exporting() -> bool {
    TRACER.get().is_some()
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

/// Whether `OTEL_SDK_DISABLED` turns traces off whatever else is set.
fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Installs the process's subscriber (log lines in `format`, filtered by `RUST_LOG`, default
/// `info,sqlx=warn,sea_orm=warn`) and the OTLP exporter when the environment sets one.
pub fn init(format: LogFormat) -> anyhow::Result<Guard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let logs = match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .try_init()?;
    if sdk_disabled() {
        return Ok(Guard(None));
    }
    let Some(exporter) = super::otlp::Exporter::from_env()? else {
        return Ok(Guard(None));
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("orgql");
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(super::otlp::Batching::new(exporter)?)
        .with_resource(resource.build())
        .build();
    let _ = TRACER.set(provider.tracer("orgql"));
    Ok(Guard(Some(provider)))
}

/// One span of a trace, or nothing (traces not exported, no request's trace current, or a
/// request the sampler dropped). It ends when dropped.
#[must_use = "a span ends when dropped"]
pub struct Span(Option<Made>);

/// A span that exists.
enum Made {
    /// One that others may be children of: in a context of its own, which makes it current.
    Parent(Context),
    /// One without children (a statement, parse, validation): the SDK's span itself, without
    /// the context and lock a parent needs.
    Leaf(Box<opentelemetry_sdk::trace::Span>),
}

impl Span {
    /// The root span of an HTTP request named `name` (until [`Span::rename_current`] names it
    /// after its operation), continuing the trace of an incoming W3C `traceparent` in
    /// `headers`. `attributes` are made only for a span that exists.
    pub fn request(
        name: impl FnOnce() -> Cow<'static, str>,
        headers: &axum::http::HeaderMap,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        let Some(tracer) = TRACER.get() else {
            return Span(None);
        };
        let parent = if headers.contains_key("traceparent") {
            opentelemetry_sdk::propagation::TraceContextPropagator::new().extract_with_context(
                &Context::new(),
                &opentelemetry_http::HeaderExtractor(headers),
            )
        } else {
            Context::new()
        };
        let span = tracer
            .span_builder(name())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes())
            .start_with_context(tracer, &parent);
        if !span.span_context().is_sampled() {
            return Span(None);
        }
        Span(Some(Made::Parent(parent.with_span(span))))
    }

    /// A child of the current span (see [`Span::around`]) that may have children of its own.
    pub fn child(
        name: &'static str,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        if TRACER.get().is_none() {
            return Span(None);
        }
        Context::map_current(|parent| Span::child_of(Some(parent), name, kind, attributes))
    }

    /// A child of `parent`'s span (a context kept from [`Span::current`]) that may have
    /// children of its own.
    pub fn child_of(
        parent: Option<&Context>,
        name: &'static str,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        match start(parent, name, kind, attributes) {
            Some(span) => Span(parent.map(|parent| Made::Parent(parent.with_span(span)))),
            None => Span(None),
        }
    }

    /// A child of the current span that has none: cheaper than [`Span::child`].
    pub fn leaf(
        name: &'static str,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        if TRACER.get().is_none() {
            return Span(None);
        }
        Span(
            Context::map_current(|parent| start(Some(parent), name, kind, attributes))
                .map(|span| Made::Leaf(Box::new(span))),
        )
    }

    /// The current context, for spans a task of its own makes (a loader's batches): `None`
    /// when traces are not exported.
    pub fn current() -> Option<Context> {
        TRACER.get().map(|_| Context::current())
    }

    /// The span of one SQL statement: its text, with placeholders instead of values.
    pub fn statement(sql: &str) -> Span {
        Span::leaf("db.statement", SpanKind::Client, || {
            vec![KeyValue::new("db.query.text", sql.to_owned())]
        })
    }

    /// Whether this span exists (is being recorded).
    pub fn exists(&self) -> bool {
        self.0.is_some()
    }

    /// The context whose span this is, for futures that run in it (`None` for a leaf).
    pub fn context(&self) -> Option<&Context> {
        match &self.0 {
            Some(Made::Parent(cx)) => Some(cx),
            _ => None,
        }
    }

    /// Runs `future` with this span current, so that the spans it makes are its children.
    pub async fn around<F: Future>(&self, future: F) -> F::Output {
        match self.context() {
            None => future.await,
            Some(cx) => future.with_context(cx.clone()).await,
        }
    }

    /// Sets an attribute of this span.
    pub fn set(&mut self, attribute: impl FnOnce() -> KeyValue) {
        match &mut self.0 {
            Some(Made::Parent(cx)) => cx.span().set_attribute(attribute()),
            Some(Made::Leaf(span)) => span.set_attribute(attribute()),
            None => {}
        }
    }

    /// Names the current span (a request's: see [`Span::around`]) `name`, and sets
    /// `attribute` on it.
    pub fn rename_current(name: &str, attribute: impl FnOnce() -> KeyValue) {
        if TRACER.get().is_none() {
            return;
        }
        Context::map_current(|cx| {
            if cx.has_active_span() {
                let span = cx.span();
                span.update_name(name.to_owned());
                span.set_attribute(attribute());
            }
        });
    }
}

/// A new span under `parent`'s, if traces are exported and `parent` has a sampled span.
fn start(
    parent: Option<&Context>,
    name: &'static str,
    kind: SpanKind,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Option<opentelemetry_sdk::trace::Span> {
    let (Some(tracer), Some(parent)) = (TRACER.get(), parent) else {
        return None;
    };
    if !parent.has_active_span() || !parent.span().span_context().is_sampled() {
        return None;
    }
    Some(
        tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes())
            .start_with_context(tracer, parent),
    )
}

impl Drop for Span {
    fn drop(&mut self) {
        // A leaf ends as the SDK's span drops.
        if let Some(Made::Parent(cx)) = &self.0 {
            cx.span().end();
        }
    }
}
