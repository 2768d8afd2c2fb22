//! The OTLP trace exporter: the SDK's batches of finished spans, encoded as an OTLP
//! `ExportTraceServiceRequest` (protobuf) and posted over HTTP to the collector.
//!
//! `opentelemetry-otlp` does the same by first converting each span into
//! `opentelemetry-proto`'s message structs (an allocation per attribute, each span's scope
//! compared and hashed to group it) and then letting prost size every nested message again
//! at each level: about 6,000 instructions a span, more than a small query's whole trace
//! costs to make. This writes each span's fields straight into the request's buffer: about a
//! fifth of that. Protobuf's wire format is small (varints, and length-prefixed bytes and
//! messages), and the few lines that write it are at the end of this file. The wire format is OTLP 1.x's
//! (`opentelemetry/proto/trace/v1/trace.proto`); a unit test decodes what this writes with
//! `opentelemetry-proto`, and the API tests' receiver decodes what the server sends.
//!
//! Configuration is the standard one: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL), or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended; `OTEL_EXPORTER_OTLP_HEADERS` and
//! `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (`key=value,…`, percent-encoded); and
//! `OTEL_EXPORTER_OTLP_TIMEOUT` / `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` (milliseconds, default
//! 10,000). Plain HTTP, no compression. The resource (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`) and the sampler are the SDK's.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{SpanContext, SpanKind, Status};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};

/// Posts batches of spans to an OTLP/HTTP collector.
pub struct Exporter {
    client: reqwest::blocking::Client,
    endpoint: String,
    headers: reqwest::header::HeaderMap,
}

/// The first of `names` the environment sets to something other than blanks.
fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
}

/// The collector's URL for traces.
fn endpoint() -> Option<String> {
    if let Some(url) = env(&["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) {
        return Some(url.trim().to_owned());
    }
    let base = env(&["OTEL_EXPORTER_OTLP_ENDPOINT"])?;
    Some(format!("{}/v1/traces", base.trim().trim_end_matches('/')))
}

/// `key=value,…` pairs, percent-decoded, of the general then the traces-only variable.
fn headers() -> anyhow::Result<reqwest::header::HeaderMap> {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut headers = reqwest::header::HeaderMap::new();
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        let Ok(list) = std::env::var(name) else {
            continue;
        };
        for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s.trim())
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("{name}: `{pair}` is not key=value"))?;
            headers.insert(
                HeaderName::try_from(decode(key))
                    .map_err(|_| anyhow::anyhow!("{name}: bad header name in `{pair}`"))?,
                HeaderValue::try_from(decode(value))
                    .map_err(|_| anyhow::anyhow!("{name}: bad header value in `{pair}`"))?,
            );
        }
    }
    Ok(headers)
}

impl Exporter {
    /// The exporter the environment configures; `None` when it sets no endpoint.
    pub fn from_env() -> anyhow::Result<Option<Exporter>> {
        let Some(endpoint) = endpoint() else {
            return Ok(None);
        };
        let millis = env(&[
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ])
        .map(|v| v.trim().parse::<u64>())
        .transpose()
        .map_err(|_| anyhow::anyhow!("OTEL_EXPORTER_OTLP_TIMEOUT: not a number of milliseconds"))?
        .unwrap_or(10_000);
        if let Some(compression) = env(&[
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ]) && compression.trim() != "none"
        {
            anyhow::bail!("OTEL_EXPORTER_OTLP_COMPRESSION: orgql sends traces uncompressed");
        }
        let headers = headers()?;
        // reqwest's blocking client runs a runtime of its own, which may be neither made nor
        // dropped on a thread of the server's: it is made on a thread of its own here, and
        // used and dropped on the SDK's export thread.
        let timeout = Duration::from_millis(millis);
        let client = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("making the OTLP client panicked"))??;
        Ok(Some(Exporter {
            client,
            endpoint,
            headers,
        }))
    }

    /// Posts `spans`, reporting why not if that failed.
    fn post(&self, resource: &EncodedResource, spans: &[SpanData]) -> Result<(), String> {
        let body = encode(resource, spans);
        let response = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .map_err(|error| error.to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    }
}

/// The process's resource, encoded once for every export.
#[derive(Debug, Default)]
struct EncodedResource {
    /// The `Resource` message's fields.
    message: Vec<u8>,
    schema_url: Option<String>,
}

impl EncodedResource {
    fn new(resource: &Resource) -> EncodedResource {
        let mut message = Vec::new();
        for (key, value) in resource.iter() {
            key_value(&mut message, 1, key.as_str(), value);
        }
        EncodedResource {
            message,
            schema_url: resource.schema_url().map(str::to_owned),
        }
    }
}

/// The span processor: finished spans wait in one queue, and a thread of its own posts them
/// in batches. The SDK's `BatchSpanProcessor` does the same through a channel, moving each
/// span several times on its way; here a span is moved once, into the queue, under a lock
/// held for that push. It honours the standard `OTEL_BSP_SCHEDULE_DELAY` (milliseconds
/// between exports, default 5,000), `OTEL_BSP_MAX_QUEUE_SIZE` (spans waiting at most, default
/// 2,048; more are dropped and counted in a warning) and `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`
/// (spans per export, default 512, exported as soon as that many wait).
#[derive(Debug)]
pub struct Batching {
    shared: Arc<Shared>,
    limits: Limits,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    delay: Duration,
    max_queue: usize,
    batch: usize,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the export thread (a full batch, a flush, shutdown) and flushers (done).
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    spans: Vec<SpanData>,
    /// Spans dropped since the last warning: the queue was full.
    dropped: u64,
    /// Flushes asked for, and done.
    flushes_asked: u64,
    flushes_done: u64,
    shutdown: bool,
    resource: Arc<EncodedResource>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Batching {
    /// A processor posting through `exporter`, its thread started.
    pub fn new(exporter: Exporter) -> anyhow::Result<Batching> {
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            env(&[name])
                .map(|v| v.trim().parse::<u64>())
                .transpose()
                .map_err(|_| anyhow::anyhow!("{name}: not a whole number"))
                .map(|v| v.unwrap_or(default))
        };
        let max_queue = number("OTEL_BSP_MAX_QUEUE_SIZE", 2048)?.max(1) as usize;
        let limits = Limits {
            delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 5000)?),
            max_queue,
            batch: (number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?.max(1) as usize).min(max_queue),
        };
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("orgql-otlp".into())
            .spawn({
                let shared = shared.clone();
                move || export_loop(&shared, &exporter, limits)
            })?;
        Ok(Batching {
            shared,
            limits,
            thread: Mutex::new(Some(thread)),
        })
    }
}

/// The export thread: waits for a full batch, the delay, a flush or shutdown, then posts
/// what waits.
fn export_loop(shared: &Shared, exporter: &Exporter, limits: Limits) {
    let mut last = Instant::now();
    loop {
        let mut queue = lock(&shared.queue);
        loop {
            let now = Instant::now();
            if queue.shutdown
                || queue.flushes_asked > queue.flushes_done
                || queue.spans.len() >= limits.batch
            {
                break;
            }
            if now >= last + limits.delay {
                if !queue.spans.is_empty() {
                    break;
                }
                // Nothing waited this round: the next one starts now.
                last = now;
            }
            let due = last + limits.delay.max(Duration::from_millis(1));
            queue = shared
                .wake
                .wait_timeout(queue, due.saturating_duration_since(now))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        // The queue keeps a batch's room: growing it span by span would copy it each time.
        let spans = std::mem::replace(&mut queue.spans, Vec::with_capacity(limits.batch));
        let dropped = std::mem::take(&mut queue.dropped);
        let (asked, shutdown) = (queue.flushes_asked, queue.shutdown);
        let resource = queue.resource.clone();
        drop(queue);
        last = Instant::now();
        if dropped > 0 {
            tracing::warn!(dropped, "trace spans dropped: the export queue was full");
        }
        for batch in spans.chunks(limits.batch) {
            if let Err(error) = exporter.post(&resource, batch) {
                tracing::warn!(%error, spans = batch.len(), "exporting trace spans failed");
            }
        }
        drop(spans);
        let mut queue = lock(&shared.queue);
        queue.flushes_done = queue.flushes_done.max(asked);
        drop(queue);
        shared.wake.notify_all();
        if shutdown {
            return;
        }
    }
}

impl SpanProcessor for Batching {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let mut queue = lock(&self.shared.queue);
        if queue.shutdown {
            return;
        }
        if queue.spans.len() >= self.limits.max_queue {
            queue.dropped += 1;
            return;
        }
        queue.spans.push(span);
        let full = queue.spans.len() == self.limits.batch;
        drop(queue);
        if full {
            self.shared.wake.notify_all();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let mut queue = lock(&self.shared.queue);
        if queue.shutdown {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        queue.flushes_asked += 1;
        let asked = queue.flushes_asked;
        self.shared.wake.notify_all();
        let (queue, timeout) = self
            .shared
            .wake
            .wait_timeout_while(queue, Duration::from_secs(30), |q| q.flushes_done < asked)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(queue);
        if timeout.timed_out() {
            Err(OTelSdkError::Timeout(Duration::from_secs(30)))
        } else {
            Ok(())
        }
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let Some(thread) = lock(&self.thread).take() else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        lock(&self.shared.queue).shutdown = true;
        self.shared.wake.notify_all();
        thread
            .join()
            .map_err(|_| OTelSdkError::InternalFailure("the OTLP export thread panicked".into()))
    }

    fn set_resource(&mut self, resource: &Resource) {
        lock(&self.shared.queue).resource = Arc::new(EncodedResource::new(resource));
    }
}

/// An `ExportTraceServiceRequest` of `spans`: one `ResourceSpans`, and a `ScopeSpans` per run
/// of spans from one instrumentation scope (orgql has one tracer, so one in all).
fn encode(resource: &EncodedResource, spans: &[SpanData]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + resource.message.len() + spans.len() * 512);
    message(&mut buf, 1, |b| {
        message(b, 1, |b| b.extend_from_slice(&resource.message));
        let mut rest = spans;
        while let Some(first) = rest.first() {
            let scope = &first.instrumentation_scope;
            let same = rest
                .iter()
                .take_while(|s| {
                    s.instrumentation_scope.name() == scope.name()
                        && s.instrumentation_scope.version() == scope.version()
                })
                .count();
            message(b, 2, |b| {
                message(b, 1, |b| {
                    string(b, 1, scope.name());
                    if let Some(version) = scope.version() {
                        string(b, 2, version);
                    }
                });
                for span in &rest[..same] {
                    message(b, 2, |b| encode_span(b, span));
                }
                if let Some(url) = scope.schema_url() {
                    string(b, 3, url);
                }
            });
            rest = &rest[same..];
        }
        if let Some(url) = &resource.schema_url {
            string(b, 3, url);
        }
    });
    buf
}

/// One `Span` message's fields.
fn encode_span(b: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(b, 1, &context.trace_id().to_bytes());
    bytes(b, 2, &context.span_id().to_bytes());
    trace_state(b, 3, context);
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        bytes(b, 4, &span.parent_span_id.to_bytes());
    }
    string(b, 5, &span.name);
    let kind = match span.span_kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    varint(b, 6, kind);
    fixed64(b, 7, unix_nanos(span.start_time));
    fixed64(b, 8, unix_nanos(span.end_time));
    attributes(b, 9, &span.attributes);
    if span.dropped_attributes_count > 0 {
        varint(b, 10, span.dropped_attributes_count.into());
    }
    for event in &span.events.events {
        message(b, 11, |b| {
            fixed64(b, 1, unix_nanos(event.timestamp));
            string(b, 2, &event.name);
            attributes(b, 3, &event.attributes);
            if event.dropped_attributes_count > 0 {
                varint(b, 4, event.dropped_attributes_count.into());
            }
        });
    }
    if span.events.dropped_count > 0 {
        varint(b, 12, span.events.dropped_count.into());
    }
    for link in &span.links.links {
        message(b, 13, |b| {
            bytes(b, 1, &link.span_context.trace_id().to_bytes());
            bytes(b, 2, &link.span_context.span_id().to_bytes());
            trace_state(b, 3, &link.span_context);
            attributes(b, 4, &link.attributes);
            if link.dropped_attributes_count > 0 {
                varint(b, 5, link.dropped_attributes_count.into());
            }
            fixed32(
                b,
                6,
                flags(link.span_context.is_remote(), &link.span_context),
            );
        });
    }
    if span.links.dropped_count > 0 {
        varint(b, 14, span.links.dropped_count.into());
    }
    match &span.status {
        Status::Unset => {}
        Status::Ok => message(b, 15, |b| varint(b, 3, 1)),
        Status::Error { description } => message(b, 15, |b| {
            string(b, 2, description);
            varint(b, 3, 2);
        }),
    }
    fixed32(b, 16, flags(span.parent_span_is_remote, context));
}

/// `SpanFlags`: the W3C trace flags, and whether the parent (or the link) is remote.
fn flags(remote: bool, context: &SpanContext) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    let mut flags = u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE;
    if remote {
        flags |= IS_REMOTE;
    }
    flags
}

fn trace_state(b: &mut Vec<u8>, field: u32, context: &SpanContext) {
    if *context.trace_state() != opentelemetry::trace::TraceState::NONE {
        string(b, field, &context.trace_state().header());
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Each attribute as a `KeyValue` message in field `field`.
fn attributes(b: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for attribute in attributes {
        key_value(b, field, attribute.key.as_str(), &attribute.value);
    }
}

/// A `KeyValue` message in field `field`.
fn key_value(b: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    message(b, field, |b| {
        string(b, 1, key);
        message(b, 2, |b| any_value(b, value));
    });
}

/// An `AnyValue` message's fields.
fn any_value(b: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => string(b, 1, s.as_str()),
        Value::Bool(v) => varint(b, 2, u64::from(*v)),
        Value::I64(v) => varint(b, 3, *v as u64),
        Value::F64(v) => fixed64(b, 4, v.to_bits()),
        Value::Array(array) => message(b, 5, |b| {
            // `ArrayValue`: each element an `AnyValue` in field 1.
            match array {
                Array::Bool(vs) => vs
                    .iter()
                    .for_each(|v| message(b, 1, |b| any_value(b, &Value::Bool(*v)))),
                Array::I64(vs) => vs
                    .iter()
                    .for_each(|v| message(b, 1, |b| any_value(b, &Value::I64(*v)))),
                Array::F64(vs) => vs
                    .iter()
                    .for_each(|v| message(b, 1, |b| any_value(b, &Value::F64(*v)))),
                Array::String(vs) => vs
                    .iter()
                    .for_each(|v| message(b, 1, |b| string(b, 1, v.as_str()))),
                // A kind of array newer than this encoder: sent as its text.
                other => message(b, 1, |b| string(b, 1, &other.to_string())),
            }
        }),
        // A kind of value newer than this encoder: sent as its text.
        other => string(b, 1, other.as_str().as_ref()),
    }
}

/// Protobuf's wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// `value` as a varint: seven bits a byte, low bits first, the high bit set on all but the
/// last byte.
fn put_varint(b: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        b.push(value as u8 | 0x80);
        value >>= 7;
    }
    b.push(value as u8);
}

/// How many bytes [`put_varint`] writes for `value`.
fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A field's key: its number and wire type.
fn key(b: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(b, (u64::from(field) << 3) | u64::from(wire));
}

/// A length-delimited field `field` whose content `content` writes: the content goes straight
/// into `b` after one byte kept for its length, and moves up in the rare case that the length
/// needs more (content of 128 bytes or more).
fn message(b: &mut Vec<u8>, field: u32, content: impl FnOnce(&mut Vec<u8>)) {
    key(b, field, LENGTH_DELIMITED);
    let at = b.len();
    b.push(0);
    content(b);
    let len = b.len() - at - 1;
    let size = varint_len(len as u64);
    if size > 1 {
        b.resize(b.len() + size - 1, 0);
        b.copy_within(at + 1..at + 1 + len, at + size);
    }
    // The length as a varint, in the bytes kept for it.
    let mut rest = len as u64;
    for (i, byte) in b[at..at + size].iter_mut().enumerate() {
        let more = if i + 1 < size { 0x80 } else { 0 };
        *byte = (rest as u8 & 0x7f) | more;
        rest >>= 7;
    }
}

fn bytes(b: &mut Vec<u8>, field: u32, value: &[u8]) {
    key(b, field, LENGTH_DELIMITED);
    put_varint(b, value.len() as u64);
    b.extend_from_slice(value);
}

fn string(b: &mut Vec<u8>, field: u32, value: &str) {
    bytes(b, field, value.as_bytes());
}

fn varint(b: &mut Vec<u8>, field: u32, value: u64) {
    key(b, field, VARINT);
    put_varint(b, value);
}

fn fixed64(b: &mut Vec<u8>, field: u32, value: u64) {
    key(b, field, FIXED64);
    b.extend_from_slice(&value.to_le_bytes());
}

fn fixed32(b: &mut Vec<u8>, field: u32, value: u32) {
    key(b, field, FIXED32);
    b.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::{InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use prost::Message;

    fn span(name: &'static str, parent: u64, attributes: Vec<KeyValue>) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_765_000_000_123_456_789);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736_u128),
                SpanId::from(0x00f067aa0ba902b7_u64 + parent + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: parent == 7,
            span_kind: SpanKind::Client,
            name: Cow::Borrowed(name),
            start_time: start,
            end_time: start + Duration::from_micros(250),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::error("it broke"),
            instrumentation_scope: InstrumentationScope::builder("orgql").build(),
        }
    }

    /// What this encoder writes decodes, with `opentelemetry-proto`'s own message types, to
    /// the spans it was given.
    #[test]
    fn opentelemetry_proto_decodes_what_it_writes() {
        let long = "SELECT ".to_owned() + &"x, ".repeat(100) + "1";
        let spans = vec![
            span(
                "db.statement",
                7,
                vec![
                    KeyValue::new("db.query.text", long.clone()),
                    KeyValue::new("keys", 42_i64),
                    KeyValue::new("ok", true),
                    KeyValue::new("ratio", 0.5),
                ],
            ),
            span("graphql.parse", 0, vec![]),
            // A message of more than 16 KiB: its length takes three bytes.
            span("big", 0, vec![KeyValue::new("text", "y".repeat(20_000))]),
        ];
        let resource = super::EncodedResource::new(
            &opentelemetry_sdk::Resource::builder_empty()
                .with_service_name("orgql-test")
                .build(),
        );
        let body = super::encode(&resource, &spans);
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("decodes");
        assert_eq!(request.resource_spans.len(), 1);
        let resource_spans = &request.resource_spans[0];
        let attrs = &resource_spans.resource.as_ref().unwrap().attributes;
        assert_eq!(attrs[0].key, "service.name");
        assert_eq!(
            attrs[0].value.as_ref().unwrap().value,
            Some(V::StringValue("orgql-test".into()))
        );
        assert_eq!(resource_spans.scope_spans.len(), 1);
        let scope = &resource_spans.scope_spans[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "orgql");
        let [first, second, big] = &scope.spans[..] else {
            panic!("three spans: {:?}", scope.spans);
        };
        assert_eq!(
            big.attributes[0].value.as_ref().unwrap().value,
            Some(V::StringValue("y".repeat(20_000)))
        );
        assert_eq!(first.name, "db.statement");
        assert_eq!(hex(&first.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&first.span_id), "00f067aa0ba902bf");
        assert_eq!(hex(&first.parent_span_id), "0000000000000007");
        assert_eq!(first.kind, 3);
        assert_eq!(first.start_time_unix_nano, 1_765_000_000_123_456_789);
        assert_eq!(first.end_time_unix_nano, 1_765_000_000_123_706_789);
        assert_eq!(first.flags, 0x301, "sampled, parent known to be remote");
        let values: Vec<_> = first
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.clone().unwrap().value.unwrap()))
            .collect();
        assert_eq!(
            values,
            vec![
                ("db.query.text", V::StringValue(long)),
                ("keys", V::IntValue(42)),
                ("ok", V::BoolValue(true)),
                ("ratio", V::DoubleValue(0.5)),
            ]
        );
        let status = first.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "it broke"));
        assert_eq!(second.name, "graphql.parse");
        assert!(
            second.parent_span_id.is_empty(),
            "a root span has no parent"
        );
        assert_eq!(second.flags, 0x101);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
