//! The Prometheus metrics: what `/metrics` exposes, kept in one registry per server.
//!
//! Written with the `prometheus` crate (TiKV's; its text encoder writes the classic text
//! exposition format that every Prometheus and `promtool check metrics` read), without its
//! protobuf feature. Every label has a bounded set of values: operation names are the first
//! [`MAX_OPERATION_NAMES`] well-formed names seen (later ones count as `(other)`), error
//! codes are the server's own, loaders are the server's key types.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sea_orm::DatabaseConnection;

/// How many distinct operation names get a series of their own.
pub const MAX_OPERATION_NAMES: usize = 200;

/// The `operation` label of an operation without a name.
pub const ANONYMOUS: &str = "(anonymous)";
/// The `operation` label of a request refused before its operation was known (not JSON, a
/// bad credential, a batch too large, a document that does not parse).
pub const UNKNOWN: &str = "(unknown)";
/// The `operation` label of names beyond [`MAX_OPERATION_NAMES`] or not well-formed.
pub const OTHER: &str = "(other)";

/// How an operation ended, the `outcome` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and answered without errors.
    Ok,
    /// It ran and answered with errors (a field refused, bad input, a conflict…).
    Error,
    /// It was refused before it ran (HTTP-level refusals, credentials, scopes, limits,
    /// parse and validation failures).
    Refused,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Error, Outcome::Refused];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Refused => "refused",
        }
    }
}

/// One operation label's series, by outcome, each made when first used (so that only the
/// outcomes that happened are exposed). Requests find them with one map lookup and no
/// label-value hashing.
#[derive(Default)]
struct OperationSeries([OnceLock<(IntCounter, Histogram)>; Outcome::ALL.len()]);

impl OperationSeries {
    fn observe(&self, metrics: &Metrics, label: &str, outcome: Outcome, elapsed: Duration) {
        let (count, seconds) = self.0[outcome as usize].get_or_init(|| {
            let labels = [label, outcome.label()];
            (
                metrics.requests.with_label_values(&labels),
                metrics.request_seconds.with_label_values(&labels),
            )
        });
        count.inc();
        seconds.observe(elapsed.as_secs_f64());
    }
}

/// What a statement does, the `kind` label of the statement metrics.
pub fn statement_kind(sql: &str) -> &'static str {
    let word = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    let is = |keyword: &str| word.eq_ignore_ascii_case(keyword);
    if is("SELECT") || is("WITH") {
        "select"
    } else if is("INSERT") {
        "insert"
    } else if is("UPDATE") {
        "update"
    } else if is("DELETE") {
        "delete"
    } else if [
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "START",
    ]
    .into_iter()
    .any(is)
    {
        "transaction"
    } else {
        "other"
    }
}

const STATEMENT_KINDS: [&str; 6] = [
    "select",
    "insert",
    "update",
    "delete",
    "transaction",
    "other",
];

/// An acquisition that took this long or longer waited (for a connection to be opened or to
/// come back to the pool).
const WAITED: Duration = Duration::from_millis(1);

/// Latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Statement and pool-wait buckets, in seconds: 100 µs to 5 s.
const SHORT_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];
/// Loader batch sizes (keys per batch).
const BATCH_BUCKETS: [f64; 10] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0, 10000.0,
];

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    /// The series of each operation name given a label of its own (at most
    /// [`MAX_OPERATION_NAMES`]).
    names: RwLock<HashMap<Box<str>, Arc<OperationSeries>>>,
    /// The series of [`ANONYMOUS`], [`UNKNOWN`] and [`OTHER`].
    special: [OperationSeries; 3],
    /// `orgql_http_responses_total` of each (route, status) seen.
    http: RwLock<HashMap<(&'static str, u16), IntCounter>>,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    errors: IntCounterVec,
    http_responses: IntCounterVec,
    statements: [IntCounter; STATEMENT_KINDS.len()],
    statement_seconds: [Histogram; STATEMENT_KINDS.len()],
    pool: IntGaugeVec,
    pool_acquire_seconds: Histogram,
    pool_waits: IntCounter,
    loader_batches: IntCounterVec,
    loader_batch_keys: HistogramVec,
    rate_limited: IntCounterVec,
    subscriptions: IntGauge,
}

/// Registers metrics in one registry; every name and label set here is valid and registered
/// once, so registering cannot fail.
struct Registering<'a>(&'a Registry);

impl Registering<'_> {
    fn add<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        metric: prometheus::Result<M>,
    ) -> M {
        let metric = metric.expect("a valid metric");
        self.0
            .register(Box::new(metric.clone()))
            .expect("each metric is registered once");
        metric
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn histograms(&self, name: &str, help: &str, buckets: &[f64], labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(HistogramVec::new(opts, labels))
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero; `max_connections` is the pool's size.
    pub fn new(max_connections: u32) -> Self {
        let registry = Registry::new();
        let r = Registering(&registry);
        let operation = &["operation", "outcome"];
        let requests = r.counters(
            "orgql_graphql_requests_total",
            "GraphQL operations by operation name and outcome (ok, error, refused); a batch counts each of its operations",
            operation,
        );
        let request_seconds = r.histograms(
            "orgql_graphql_request_duration_seconds",
            "Time from a GraphQL operation's admission to its answer, by operation name and outcome",
            &LATENCY_BUCKETS,
            operation,
        );
        let errors = r.counters(
            "orgql_graphql_errors_total",
            "GraphQL errors answered, by extensions.code",
            &["code"],
        );
        let http_responses = r.counters(
            "orgql_http_responses_total",
            "HTTP responses by route and status code",
            &["route", "status"],
        );
        let statements_vec = r.counters(
            "orgql_db_statements_total",
            "SQL statements run, by kind (select, insert, update, delete, transaction, other)",
            &["kind"],
        );
        let statement_seconds_vec = r.histograms(
            "orgql_db_statement_duration_seconds",
            "Time a SQL statement took, by kind",
            &SHORT_BUCKETS,
            &["kind"],
        );
        let pool = r.add(IntGaugeVec::new(
            Opts::new(
                "orgql_db_pool_connections",
                "Open database connections by state (idle, in_use), read at each scrape",
            ),
            &["state"],
        ));
        let pool_max = r.add(IntGauge::new(
            "orgql_db_pool_max_connections",
            "The pool's maximum number of connections",
        ));
        pool_max.set(i64::from(max_connections));
        let pool_acquire_seconds = r.add(Histogram::with_opts(
            HistogramOpts::new(
                "orgql_db_pool_acquire_duration_seconds",
                "Time a query's statement took to get a connection (pool or the connections kept for queries)",
            )
            .buckets(SHORT_BUCKETS.to_vec()),
        ));
        let pool_waits = r.add(IntCounter::new(
            "orgql_db_pool_waits_total",
            "Queries' connection acquisitions that took 1 ms or more (a connection was opened or waited for)",
        ));
        let loader_batches = r.counters(
            "orgql_loader_batches_total",
            "DataLoader batches (one SQL statement each), by loader",
            &["loader"],
        );
        let loader_batch_keys = r.histograms(
            "orgql_loader_batch_keys",
            "Keys per DataLoader batch, by loader",
            &BATCH_BUCKETS,
            &["loader"],
        );
        let rate_limited = r.counters(
            "orgql_rate_limited_total",
            "Attempts refused with RATE_LIMITED, by limit (log_in_account, log_in_address, sign_up_address)",
            &["limit"],
        );
        let subscriptions = r.add(IntGauge::new(
            "orgql_subscriptions_active",
            "Live GraphQL subscriptions on this instance",
        ));
        for state in ["idle", "in_use"] {
            pool.with_label_values(&[state]).set(0);
        }
        Metrics {
            statements: STATEMENT_KINDS.map(|kind| statements_vec.with_label_values(&[kind])),
            statement_seconds: STATEMENT_KINDS
                .map(|kind| statement_seconds_vec.with_label_values(&[kind])),
            registry,
            names: RwLock::default(),
            special: Default::default(),
            http: RwLock::default(),
            requests,
            request_seconds,
            errors,
            http_responses,
            pool,
            pool_acquire_seconds,
            pool_waits,
            loader_batches,
            loader_batch_keys,
            rate_limited,
            subscriptions,
        }
    }

    /// Counts one operation named `name` (`None`: anonymous) that ended with `outcome` after
    /// `elapsed`. Its `operation` label is the name itself while fewer than
    /// [`MAX_OPERATION_NAMES`] names have been seen and it is a GraphQL name of at most 64
    /// characters; else [`OTHER`]; [`ANONYMOUS`] for none.
    pub fn operation(&self, name: Option<&str>, outcome: Outcome, elapsed: Duration) {
        let Some(name) = name else {
            return self.special[0].observe(self, ANONYMOUS, outcome, elapsed);
        };
        let well_formed = !name.is_empty()
            && name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !well_formed {
            return self.special[2].observe(self, OTHER, outcome, elapsed);
        }
        let (found, full) = {
            let names = read(&self.names);
            (names.get(name).cloned(), names.len() >= MAX_OPERATION_NAMES)
        };
        // Once every label is taken, a new name costs a read lock only, not the write lock.
        let series = found.or_else(|| {
            if full {
                return None;
            }
            let mut names = write(&self.names);
            if let Some(series) = names.get(name) {
                return Some(series.clone());
            }
            (names.len() < MAX_OPERATION_NAMES).then(|| {
                let series = Arc::new(OperationSeries::default());
                names.insert(name.into(), series.clone());
                series
            })
        });
        match series {
            Some(series) => series.observe(self, name, outcome, elapsed),
            None => self.special[2].observe(self, OTHER, outcome, elapsed),
        }
    }

    /// Counts one request refused (or failed) before its operation was known, as
    /// [`UNKNOWN`].
    pub fn unknown_operation(&self, outcome: Outcome, elapsed: Duration) {
        self.special[1].observe(self, UNKNOWN, outcome, elapsed);
    }

    /// Counts one error answered with `code` (`extensions.code`).
    pub fn error(&self, code: &str) {
        self.errors.with_label_values(&[code]).inc();
    }

    /// Counts one HTTP response.
    pub fn http_response(&self, route: &'static str, status: u16) {
        if let Some(counter) = read(&self.http).get(&(route, status)) {
            return counter.inc();
        }
        let mut buffer = itoa::Buffer::new();
        write(&self.http)
            .entry((route, status))
            .or_insert_with(|| {
                self.http_responses
                    .with_label_values(&[route, buffer.format(status)])
            })
            .inc();
    }

    /// Counts one statement of `kind` (see [`statement_kind`]) that took `elapsed`.
    pub fn statement(&self, kind: &str, elapsed: Duration) {
        let i = STATEMENT_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(STATEMENT_KINDS.len() - 1);
        self.statements[i].inc();
        self.statement_seconds[i].observe(elapsed.as_secs_f64());
    }

    /// Counts one acquisition of a connection that took `elapsed` (a wait from 1 ms on).
    pub fn pool_acquire(&self, elapsed: Duration) {
        self.pool_acquire_seconds.observe(elapsed.as_secs_f64());
        if elapsed >= WAITED {
            self.pool_waits.inc();
        }
    }

    /// Counts one loader batch of `keys` keys.
    pub fn loader_batch(&self, loader: &str, keys: usize) {
        self.loader_batches.with_label_values(&[loader]).inc();
        self.loader_batch_keys
            .with_label_values(&[loader])
            .observe(keys as f64);
    }

    /// Counts one attempt refused by `limit`.
    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }

    /// The live subscriptions gauge.
    pub fn subscriptions(&self) -> &IntGauge {
        &self.subscriptions
    }

    /// The exposition: every metric in Prometheus' text format, the pool read now.
    pub fn render(&self, db: &DatabaseConnection) -> String {
        let (size, idle) = pool_size(db);
        self.pool.with_label_values(&["idle"]).set(idle);
        self.pool.with_label_values(&["in_use"]).set(size - idle);
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("writing to a Vec does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// The pool's open and idle connections.
fn pool_size(db: &DatabaseConnection) -> (i64, i64) {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (i64::from(pool.size()), pool.num_idle() as i64)
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (i64::from(pool.size()), pool.num_idle() as i64)
        }
        _ => (0, 0),
    }
}

/// How many SQL statements the server has run, and (with metrics on) each one's kind and
/// time.
#[derive(Default)]
pub struct Statements {
    count: AtomicU64,
    metrics: Option<std::sync::Arc<Metrics>>,
}

impl Statements {
    /// Counts into `metrics` too, when given.
    pub fn new(metrics: Option<std::sync::Arc<Metrics>>) -> Self {
        Statements {
            count: AtomicU64::new(0),
            metrics,
        }
    }

    /// How many statements have run (the statement-count tests read it).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Counts one read (a `SELECT`) that took `elapsed`.
    pub fn read(&self, elapsed: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.statement("select", elapsed);
        }
    }

    /// Awaits `acquire` (a connection for a statement), counting its wait in the metrics.
    pub async fn acquiring<T>(&self, acquire: impl std::future::Future<Output = T>) -> T {
        let Some(metrics) = &self.metrics else {
            return acquire.await;
        };
        let started = std::time::Instant::now();
        let connection = acquire.await;
        metrics.pool_acquire(started.elapsed());
        connection
    }

    /// Counts one statement that took `elapsed`.
    pub fn ran(&self, sql: &str, elapsed: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.statement(statement_kind(sql), elapsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `operation` labels `metrics` exposes.
    fn operation_labels(metrics: &Metrics) -> std::collections::BTreeSet<String> {
        metrics
            .registry
            .gather()
            .iter()
            .filter(|family| family.name() == "orgql_graphql_requests_total")
            .flat_map(|family| family.get_metric().iter())
            .flat_map(|metric| metric.get_label().iter())
            .filter(|label| label.name() == "operation")
            .map(|label| label.value().to_owned())
            .collect()
    }

    #[test]
    fn operation_names_are_bounded() {
        let metrics = Metrics::new(4);
        let ok = |name: Option<&str>| metrics.operation(name, Outcome::Ok, Duration::ZERO);
        ok(None);
        ok(Some("Viewer"));
        ok(Some("bad name"));
        ok(Some(&"x".repeat(65)));
        let labels = operation_labels(&metrics);
        assert_eq!(
            labels,
            [ANONYMOUS, OTHER, "Viewer"].map(String::from).into()
        );
        for i in 0..MAX_OPERATION_NAMES {
            ok(Some(&format!("Op{i}")));
        }
        ok(Some("OneTooMany"));
        ok(Some("Viewer"));
        let labels = operation_labels(&metrics);
        assert_eq!(labels.len(), MAX_OPERATION_NAMES + 2);
        assert!(labels.contains("Viewer") && !labels.contains("OneTooMany"));
        assert!(labels.contains("Op198") && !labels.contains("Op199"));
    }

    #[test]
    fn statements_are_sorted_by_kind() {
        assert_eq!(statement_kind("  select 1"), "select");
        assert_eq!(statement_kind("INSERT INTO x"), "insert");
        assert_eq!(statement_kind("BEGIN"), "transaction");
        assert_eq!(statement_kind("PRAGMA x"), "other");
    }
}
