//! The Prometheus metrics: what `/metrics` exposes, kept per server.
//!
//! What requests update is kept in per-thread cells ([`super::cells`]) and summed when
//! scraped; the rest (the pool, rate-limit refusals, live subscriptions) in a `prometheus`
//! registry. The `prometheus` crate (TiKV's; its text encoder writes the classic text
//! exposition format that every Prometheus and `promtool check metrics` read, without its
//! protobuf feature) writes the exposition of both. Every label has a bounded set of values:
//! operation names are the first [`MAX_OPERATION_NAMES`] well-formed names seen (later ones
//! count as `(other)`), error codes are the server's own, loaders are the server's key types.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use sea_orm::DatabaseConnection;

use super::cells::{Counter, Family, Histogram, Series};

/// How many distinct operation names get a series of their own.
pub const MAX_OPERATION_NAMES: usize = 200;

/// How many distinct error codes get a series (the server's own are far fewer).
const MAX_ERROR_CODES: usize = 64;

/// How many (route, status) pairs and loaders get a series (routes and loaders are the
/// server's own; a bound all the same).
const MAX_SERIES: usize = 256;

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

/// One operation label's latencies by outcome; their counts are its request counts. Only
/// the outcomes that happened are exposed.
struct OperationSeries([Histogram; Outcome::ALL.len()]);

impl OperationSeries {
    fn new() -> Self {
        OperationSeries(Outcome::ALL.map(|_| Histogram::new(&LATENCY_BUCKETS)))
    }

    fn observe(&self, outcome: Outcome, elapsed: Duration) {
        self.0[outcome as usize].observe(elapsed.as_secs_f64());
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

/// Latency buckets, in seconds: 1 ms to 30 s.
static LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Statement and pool-wait buckets, in seconds: 100 µs to 5 s.
static SHORT_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];
/// Loader batch sizes (keys per batch).
static BATCH_BUCKETS: [f64; 10] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0, 10000.0,
];

/// Every metric of one server.
pub struct Metrics {
    /// The metrics that requests do not update.
    registry: Registry,
    /// Each operation name given a label of its own (at most [`MAX_OPERATION_NAMES`]).
    operations: Series<String, OperationSeries>,
    /// The series of [`ANONYMOUS`], [`UNKNOWN`] and [`OTHER`].
    special: [OperationSeries; 3],
    /// Errors by `extensions.code`.
    errors: Series<String, Counter>,
    /// HTTP responses by (route, status).
    http: Series<(&'static str, u16), Counter>,
    /// Statements' durations by kind (their counts are the statement counts).
    statements: [Histogram; STATEMENT_KINDS.len()],
    pool_acquire_seconds: Histogram,
    pool_waits: Counter,
    /// Loader batches' sizes by loader (their counts are the batch counts).
    loader_batches: Series<&'static str, Histogram>,
    pool: IntGaugeVec,
    rate_limited: IntCounterVec,
    subscriptions: IntGauge,
}

/// Registers a metric in `registry`; every name and label set here is valid and registered
/// once, so registering cannot fail.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

impl Metrics {
    /// A fresh registry with every metric at zero; `max_connections` is the pool's size.
    pub fn new(max_connections: u32) -> Self {
        let registry = Registry::new();
        let pool = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "orgql_db_pool_connections",
                    "Open database connections by state (idle, in_use), read at each scrape",
                ),
                &["state"],
            ),
        );
        let pool_max = registered(
            &registry,
            IntGauge::new(
                "orgql_db_pool_max_connections",
                "The pool's maximum number of connections",
            ),
        );
        pool_max.set(i64::from(max_connections));
        let rate_limited = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "orgql_rate_limited_total",
                    "Attempts refused with RATE_LIMITED, by limit (log_in_account, log_in_address, sign_up_address)",
                ),
                &["limit"],
            ),
        );
        let subscriptions = registered(
            &registry,
            IntGauge::new(
                "orgql_subscriptions_active",
                "Live GraphQL subscriptions on this instance",
            ),
        );
        for state in ["idle", "in_use"] {
            pool.with_label_values(&[state]).set(0);
        }
        Metrics {
            registry,
            operations: Series::new(OperationSeries::new),
            special: [(); 3].map(|_| OperationSeries::new()),
            errors: Series::new(Counter::default),
            http: Series::new(Counter::default),
            statements: STATEMENT_KINDS.map(|_| Histogram::new(&SHORT_BUCKETS)),
            pool_acquire_seconds: Histogram::new(&SHORT_BUCKETS),
            pool_waits: Counter::default(),
            loader_batches: Series::new(|| Histogram::new(&BATCH_BUCKETS)),
            pool,
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
            return self.special[0].observe(outcome, elapsed);
        };
        let well_formed = !name.is_empty()
            && name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        let counted = well_formed
            && self.operations.with(name, MAX_OPERATION_NAMES, |series| {
                series.observe(outcome, elapsed)
            });
        if !counted {
            self.special[2].observe(outcome, elapsed);
        }
    }

    /// Counts one request refused (or failed) before its operation was known, as
    /// [`UNKNOWN`].
    pub fn unknown_operation(&self, outcome: Outcome, elapsed: Duration) {
        self.special[1].observe(outcome, elapsed);
    }

    /// Counts one error answered with `code` (`extensions.code`).
    pub fn error(&self, code: &str) {
        self.errors.with(code, MAX_ERROR_CODES, Counter::inc);
    }

    /// Counts one HTTP response.
    pub fn http_response(&self, route: &'static str, status: u16) {
        self.http.with(&(route, status), MAX_SERIES, Counter::inc);
    }

    /// Counts one statement of `kind` (see [`statement_kind`]) that took `elapsed`.
    pub fn statement(&self, kind: &str, elapsed: Duration) {
        let i = STATEMENT_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(STATEMENT_KINDS.len() - 1);
        self.statements[i].observe(elapsed.as_secs_f64());
    }

    /// Counts one acquisition of a connection that took `elapsed` (a wait from 1 ms on).
    pub fn pool_acquire(&self, elapsed: Duration) {
        self.pool_acquire_seconds.observe(elapsed.as_secs_f64());
        if elapsed >= WAITED {
            self.pool_waits.inc();
        }
    }

    /// Counts one loader batch of `keys` keys.
    pub fn loader_batch(&self, loader: &'static str, keys: usize) {
        self.loader_batches
            .with(&loader, MAX_SERIES, |batches| batches.observe(keys as f64));
    }

    /// Counts one attempt refused by `limit`.
    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }

    /// The live subscriptions gauge.
    pub fn subscriptions(&self) -> &IntGauge {
        &self.subscriptions
    }

    /// Every metric family, in name order, as the encoder takes them.
    fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        let mut families = self.registry.gather();
        let operations = |family: Family, write: fn(&mut Family, &[(&str, &str)], &Histogram)| {
            let special = [ANONYMOUS, UNKNOWN, OTHER]
                .into_iter()
                .zip(&self.special)
                .map(|(label, series)| (label.to_owned(), series));
            let mut family = family.each(&self.operations, |family, name, series| {
                Self::outcomes(family, name, series, write)
            });
            for (label, series) in special {
                Self::outcomes(&mut family, &label, series, write);
            }
            family
        };
        let kinds = || STATEMENT_KINDS.iter().zip(&self.statements);
        let mut statements = Family::counters(
            "orgql_db_statements_total",
            "SQL statements run, by kind (select, insert, update, delete, transaction, other)",
        );
        let mut statement_seconds = Family::histograms(
            "orgql_db_statement_duration_seconds",
            "Time a SQL statement took, by kind",
        );
        for (kind, seconds) in kinds() {
            statements.counter(&[("kind", kind)], seconds.count());
            statement_seconds.histogram(&[("kind", kind)], seconds);
        }
        let mut pool_acquire_seconds = Family::histograms(
            "orgql_db_pool_acquire_duration_seconds",
            "Time a query's statement took to get a connection (pool or the connections kept for queries)",
        );
        pool_acquire_seconds.histogram(&[], &self.pool_acquire_seconds);
        let mut pool_waits = Family::counters(
            "orgql_db_pool_waits_total",
            "Queries' connection acquisitions that took 1 ms or more (a connection was opened or waited for)",
        );
        pool_waits.counter(&[], self.pool_waits.get());
        families.extend(
            [
                operations(
                    Family::counters(
                        "orgql_graphql_requests_total",
                        "GraphQL operations by operation name and outcome (ok, error, refused); a batch counts each of its operations",
                    ),
                    |family, labels, seconds| family.counter(labels, seconds.count()),
                ),
                operations(
                    Family::histograms(
                        "orgql_graphql_request_duration_seconds",
                        "Time from a GraphQL operation's admission to its answer, by operation name and outcome",
                    ),
                    Family::histogram,
                ),
                Family::counters(
                    "orgql_graphql_errors_total",
                    "GraphQL errors answered, by extensions.code",
                )
                .each(&self.errors, |family, code, count| {
                    family.counter(&[("code", code)], count.get())
                }),
                Family::counters(
                    "orgql_http_responses_total",
                    "HTTP responses by route and status code",
                )
                .each(&self.http, |family, (route, status), count| {
                    let status = itoa::Buffer::new().format(*status).to_owned();
                    family.counter(&[("route", route), ("status", &status)], count.get())
                }),
                statements,
                statement_seconds,
                pool_acquire_seconds,
                pool_waits,
                Family::counters(
                    "orgql_loader_batches_total",
                    "DataLoader batches (one SQL statement each), by loader",
                )
                .each(&self.loader_batches, |family, loader, keys| {
                    family.counter(&[("loader", loader)], keys.count())
                }),
                Family::histograms(
                    "orgql_loader_batch_keys",
                    "Keys per DataLoader batch, by loader",
                )
                .each(&self.loader_batches, |family, loader, keys| {
                    family.histogram(&[("loader", loader)], keys)
                }),
            ]
            .into_iter()
            .map(Family::done)
            .filter(|family| !family.get_metric().is_empty()),
        );
        families.sort_by(|a, b| a.name().cmp(b.name()));
        families
    }

    /// Writes `series`' outcomes that happened, labelled `operation` and `outcome`.
    fn outcomes(
        family: &mut Family,
        operation: &str,
        series: &OperationSeries,
        write: fn(&mut Family, &[(&str, &str)], &Histogram),
    ) {
        for (outcome, seconds) in Outcome::ALL.iter().zip(&series.0) {
            if seconds.count() > 0 {
                write(
                    family,
                    &[("operation", operation), ("outcome", outcome.label())],
                    seconds,
                );
            }
        }
    }

    /// The exposition: every metric in Prometheus' text format, the pool read now.
    pub fn render(&self, db: &DatabaseConnection) -> String {
        let (size, idle) = pool_size(db);
        self.pool.with_label_values(&["idle"]).set(idle);
        self.pool.with_label_values(&["in_use"]).set(size - idle);
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.gather(), &mut out)
            .expect("writing to a Vec does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
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
