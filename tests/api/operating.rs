//! Running it in production: `/metrics` (its counters move with the requests; promtool and a
//! real Prometheus read it), OpenTelemetry traces (a test OTLP receiver decodes what the
//! server exports), request ids, JSON logs, `/livez` and `/readyz` (before migrations and
//! during a graceful shutdown; while the database is away: `faults.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, ServerProcess, TestApp, TestDatabase, spawn_with, test_config};

on_both_databases!(
    metrics_move_with_the_requests,
    traces_follow_each_request_into_sql,
    the_api_waits_for_migrations_and_probes_answer_meanwhile,
);

/// One scrape: every sample by `name{labels}` (labels sorted), checked for the text format.
struct Scrape {
    samples: BTreeMap<String, f64>,
    text: String,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        let mut typed = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split(' ');
                let (name, kind) = (words.next().unwrap(), words.next().unwrap());
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                typed.insert(name.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix("\"}").expect("closed labels");
                    let mut pairs: Vec<&str> = labels.split("\",").collect();
                    pairs.sort();
                    let pairs: Vec<String> = pairs.iter().map(|p| format!("{p}\"")).collect();
                    (name, format!("{{{}}}", pairs.join(",")))
                }
                None => (series, String::new()),
            };
            assert!(
                name.starts_with("orgql_")
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|family| typed.contains(*family))
                .unwrap_or(name);
            assert!(typed.contains(family), "a # TYPE line before {line}");
            samples.insert(format!("{name}{labels}"), value);
        }
        Scrape {
            samples,
            text: text.to_owned(),
        }
    }

    /// A sample's value (0 when absent: a series appears with its first count).
    fn get(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// The values one label takes in `metric`'s samples.
    fn label_values(&self, metric: &str, label: &str) -> HashSet<String> {
        let prefix = format!("{metric}{{");
        let key = format!("{label}=\"");
        self.samples
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .filter_map(|k| {
                let at = k.find(&key)? + key.len();
                Some(k[at..].split('"').next().unwrap().to_owned())
            })
            .collect()
    }
}

async fn scrape_at(client: &reqwest::Client, address: &str) -> Scrape {
    let response = client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(&response.text().await.unwrap())
}

async fn scrape(app: &TestApp) -> Scrape {
    scrape_at(&app.client, &app.address).await
}

fn delta(before: &Scrape, after: &Scrape, series: &str) -> f64 {
    after.get(series) - before.get(series)
}

async fn post_raw(app: &TestApp, content_type: &str, token: Option<&str>, body: &str) -> u16 {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", content_type)
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

const NESTED: &str = "query Nested { viewer { memberships { organization { username \
    members(first: 5) { nodes { user { username } } } datasets(first: 5) { nodes { name } } } } } }";

/// A scripted set of requests, refused ones included, moves exactly the counters it should.
async fn metrics_move_with_the_requests(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let mut config = test_config(&db.url);
    config.login_attempts_per_account = 2;
    let app = spawn_with(config).await;
    let token = app.sign_up("meter").await;
    app.create_org(&token, "gauge").await;
    let before = scrape(&app).await;

    // ok, twice
    for _ in 0..2 {
        let reply = app
            .gql(Some(&token), "query Me { viewer { username } }", json!({}))
            .await;
        assert_eq!(reply.data("/viewer/username"), "meter");
    }
    // error: a field refused
    app.gql(None, "query Me { viewer { username } }", json!({}))
        .await
        .expect_code("UNAUTHENTICATED");
    // refused: validation
    app.gql(Some(&token), "query Broken { nope }", json!({}))
        .await
        .expect_code("GRAPHQL_VALIDATION_FAILED");
    // refused before any operation: not JSON, a bad token
    assert_eq!(post_raw(&app, "text/plain", None, "{}").await, 415);
    assert_eq!(
        post_raw(
            &app,
            "application/json",
            Some("nonsense"),
            r#"{"query":"{ viewer { id } }"}"#
        )
        .await,
        401
    );
    // rate limited: the third logIn for one account within a minute
    let log_in = "mutation LogIn($input: LogInInput!) { logIn(input: $input) { token } }";
    let wrong = json!({ "input": { "username": "meter", "password": "wrong-password" } });
    app.gql(None, log_in, wrong.clone())
        .await
        .expect_code("UNAUTHENTICATED");
    app.gql(None, log_in, wrong.clone())
        .await
        .expect_code("UNAUTHENTICATED");
    app.gql(None, log_in, wrong)
        .await
        .expect_code("RATE_LIMITED");
    // loader batches
    let reply = app.gql(Some(&token), NESTED, json!({})).await;
    assert_eq!(
        reply.data("/viewer/memberships/0/organization/username"),
        "gauge"
    );

    let after = scrape(&app).await;
    let requests = |operation: &str, outcome: &str| {
        delta(
            &before,
            &after,
            &format!(
                "orgql_graphql_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(requests("Me", "ok"), 2.0, "{}", after.text);
    assert_eq!(requests("Me", "error"), 1.0);
    assert_eq!(requests("Broken", "refused"), 1.0);
    assert_eq!(requests("(unknown)", "refused"), 2.0);
    assert_eq!(requests("LogIn", "error"), 3.0);
    assert_eq!(requests("Nested", "ok"), 1.0);
    assert_eq!(
        delta(
            &before,
            &after,
            "orgql_graphql_request_duration_seconds_count{operation=\"Me\",outcome=\"ok\"}"
        ),
        2.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "orgql_graphql_request_duration_seconds_bucket{le=\"+Inf\",operation=\"Me\",outcome=\"ok\"}"
        ),
        2.0
    );
    let errors = |code: &str| {
        delta(
            &before,
            &after,
            &format!("orgql_graphql_errors_total{{code=\"{code}\"}}"),
        )
    };
    assert_eq!(errors("UNAUTHENTICATED"), 4.0); // viewer, bad token, two bad passwords
    assert_eq!(errors("GRAPHQL_VALIDATION_FAILED"), 1.0);
    assert_eq!(errors("BAD_REQUEST"), 1.0);
    assert_eq!(errors("RATE_LIMITED"), 1.0);
    assert_eq!(
        delta(
            &before,
            &after,
            "orgql_rate_limited_total{limit=\"log_in_account\"}"
        ),
        1.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "orgql_http_responses_total{route=\"/graphql\",status=\"415\"}"
        ),
        1.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "orgql_http_responses_total{route=\"/graphql\",status=\"401\"}"
        ),
        1.0
    );
    assert!(
        delta(
            &before,
            &after,
            "orgql_db_statements_total{kind=\"select\"}"
        ) >= 5.0
    );
    // logIn spends its rate-limit allowance with an upsert
    assert!(
        delta(
            &before,
            &after,
            "orgql_db_statements_total{kind=\"insert\"}"
        ) >= 3.0
    );
    let loaders = after.label_values("orgql_loader_batches_total", "loader");
    assert!(!loaders.is_empty(), "{}", after.text);
    let batches: f64 = loaders
        .iter()
        .map(|l| {
            delta(
                &before,
                &after,
                &format!("orgql_loader_batches_total{{loader=\"{l}\"}}"),
            )
        })
        .sum();
    assert!(batches >= 1.0, "{}", after.text);
    assert_eq!(after.get("orgql_subscriptions_active"), 0.0);
    assert!(after.get("orgql_db_pool_max_connections") >= 1.0);
    assert!(
        after
            .samples
            .contains_key("orgql_db_pool_connections{state=\"idle\"}")
            && after
                .samples
                .contains_key("orgql_db_pool_connections{state=\"in_use\"}")
    );
    assert!(after.get("orgql_db_pool_acquire_duration_seconds_count") >= 1.0);

    // A client cannot explode the series: 250 operation names, at most 200 of them labels.
    for i in 0..250 {
        app.gql(
            Some(&token),
            &format!("query Flood{i} {{ viewer {{ id }} }}"),
            json!({}),
        )
        .await;
    }
    app.gql(Some(&token), "query Flood999 { viewer { id } }", json!({}))
        .await;
    let flooded = scrape(&app).await;
    let names = flooded.label_values("orgql_graphql_requests_total", "operation");
    assert!(names.len() <= 200 + 3, "{} operation labels", names.len());
    assert!(names.contains("(other)"), "{names:?}");
    assert!(
        flooded.get("orgql_graphql_requests_total{operation=\"(other)\",outcome=\"ok\"}") >= 50.0
    );
    app.stop().await;
}

/// `promtool check metrics` (Debian's `prometheus` package) accepts the exposition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_exposition() {
    if !required("promtool") {
        return;
    }
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let app = spawn_with(test_config(&db.url)).await;
    let token = app.sign_up("lint").await;
    app.gql(Some(&token), NESTED, json!({})).await;
    let text = scrape(&app).await.text;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

/// Whether `program` (from Debian's `prometheus` package) is installed; when it is not, the
/// test says it was skipped, or fails where `ORGQL_REQUIRE_PROMETHEUS` is set (`.ci/run`).
fn required(program: &str) -> bool {
    let installed = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("ORGQL_REQUIRE_PROMETHEUS").is_none(),
            "{program} is not installed and ORGQL_REQUIRE_PROMETHEUS is set"
        );
        eprintln!("skipped: {program} is not installed (Debian: apt-get install prometheus)");
    }
    installed
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus scrapes `/metrics` on `--metrics-listen` (and the API's address serves
/// none then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_metrics_address() {
    if !required("prometheus") {
        return;
    }
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let metrics_port = free_port();
    let metrics_address = format!("127.0.0.1:{metrics_port}");
    let server =
        ServerProcess::start_with(&db.url, &["--metrics-listen", &metrics_address], &[]).await;
    let client = reqwest::Client::new();
    let on_api = client
        .get(format!("{}/metrics", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404, "no /metrics on the API's address");
    let app = server.client();
    let token = app.sign_up("scraped").await;
    app.gql(Some(&token), "query Scraped { viewer { id } }", json!({}))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: orgql\n    static_configs:\n      - targets: ['{metrics_address}']\n"
        ),
    )
    .unwrap();
    let web_port = free_port();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus starts");
    let query = |q: &str| {
        let client = client.clone();
        let url = format!("http://127.0.0.1:{web_port}/api/v1/query");
        let q = q.to_owned();
        async move {
            let response = client.get(url).query(&[("query", q)]).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            body["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_owned)
        }
    };
    let started = Instant::now();
    loop {
        let up = query("up{job=\"orgql\"}").await;
        let scraped = query(
            "orgql_graphql_requests_total{job=\"orgql\",operation=\"Scraped\",outcome=\"ok\"}",
        )
        .await;
        if up.as_deref() == Some("1") && scraped.as_deref() == Some("1") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus did not scrape orgql: up {up:?}, requests {scraped:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    prometheus.kill().await.ok();
}

/// What a test OTLP receiver got: every span, decoded from the protobuf export.
#[derive(Clone, Debug)]
struct ReceivedSpan {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    attributes: HashMap<String, String>,
}

/// An OTLP/HTTP receiver on a free port, collecting spans.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<ReceivedSpan>>>) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let spans: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                let mut kept = kept.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let attributes = span
                                .attributes
                                .iter()
                                .map(|kv| {
                                    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
                                    let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                        Some(V::StringValue(s)) => s.clone(),
                                        Some(V::IntValue(i)) => i.to_string(),
                                        Some(V::BoolValue(b)) => b.to_string(),
                                        Some(V::DoubleValue(d)) => d.to_string(),
                                        other => format!("{other:?}"),
                                    };
                                    (kv.key.clone(), value)
                                })
                                .collect();
                            kept.push(ReceivedSpan {
                                trace_id: hex(&span.trace_id),
                                span_id: hex(&span.span_id),
                                parent: hex(&span.parent_span_id),
                                name: span.name,
                                attributes,
                            });
                        }
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, spans)
}

/// Every span of `trace`, once its request's root span has arrived.
async fn trace_spans(spans: &Arc<Mutex<Vec<ReceivedSpan>>>, trace: &str) -> Vec<ReceivedSpan> {
    let started = Instant::now();
    loop {
        let found: Vec<ReceivedSpan> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace)
            .cloned()
            .collect();
        if found
            .iter()
            .any(|s| s.attributes.contains_key("request_id"))
        {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no trace {trace} arrived: {:?}",
            spans.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, each request is one trace: a root span named after
/// its operation (continuing an incoming `traceparent`), with parse, validate and execute
/// spans under it, loader batches, and a span per SQL statement (its text, no values).
async fn traces_follow_each_request_into_sql(backend: Backend) {
    let (endpoint, spans) = otlp_receiver().await;
    let db = TestDatabase::create(&backend).await;
    let server = ServerProcess::start_with(
        &db.url,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "orgql-under-test"),
        ],
    )
    .await;
    let app = server.client();
    let token = app.sign_up("tracer").await;
    app.create_org(&token, "traced").await;

    // A query continuing the caller's trace.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .json(&json!({ "query": NESTED }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = trace_spans(&spans, trace).await;
    let root = got
        .iter()
        .find(|s| s.parent == caller)
        .unwrap_or_else(|| panic!("a span whose parent is the caller's: {got:#?}"));
    assert_eq!(root.name, "Nested", "{root:?}");
    assert_eq!(root.attributes["graphql.operation.name"], "Nested");
    assert_eq!(root.attributes["http.response.status_code"], "200");
    let children: Vec<&str> = got
        .iter()
        .filter(|s| s.parent == root.span_id)
        .map(|s| s.name.as_str())
        .collect();
    for stage in [
        "graphql.parse",
        "graphql.validate",
        "graphql.execute",
        "loader.batch",
    ] {
        assert!(
            children.contains(&stage),
            "{stage} under the request: {children:?}"
        );
    }
    let statements: Vec<&ReceivedSpan> = got.iter().filter(|s| s.name == "db.statement").collect();
    assert!(statements.len() >= 2, "{got:#?}");
    for statement in &statements {
        let sql = &statement.attributes["db.query.text"];
        assert!(sql.to_uppercase().starts_with("SELECT"), "{sql}");
        assert!(
            !sql.contains("tracer") && !sql.contains("traced"),
            "no values: {sql}"
        );
        assert!(
            got.iter().any(|s| s.span_id == statement.parent),
            "a statement's parent is in the trace: {statement:?}"
        );
    }
    assert!(
        statements.iter().any(|s| got
            .iter()
            .any(|p| p.span_id == s.parent && p.name == "loader.batch")),
        "a statement under a loader batch: {got:#?}"
    );
    let spans_ids: HashSet<&str> = got.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(spans_ids.len(), got.len(), "span ids are unique");

    // A mutation without a traceparent: a trace of its own, its statements inside it.
    let before: HashSet<String> = spans
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.trace_id.clone())
        .collect();
    let reply = app
        .gql(
            Some(&token),
            "mutation Make($input: CreateDatasetInput!) { createDataset(input: $input) { dataset { name } } }",
            json!({ "input": { "name": "spans" } }),
        )
        .await;
    assert_eq!(reply.data("/createDataset/dataset/name"), "spans");
    let started = Instant::now();
    let mutation_root = loop {
        let found = spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == "Make" && !before.contains(&s.trace_id))
            .cloned();
        if let Some(root) = found {
            break root;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no trace of Make"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mutation_root.parent, "", "a root span: {mutation_root:?}");
    let got = trace_spans(&spans, &mutation_root.trace_id).await;
    let inserts = got
        .iter()
        .filter(|s| s.name == "db.statement")
        .filter(|s| {
            s.attributes["db.query.text"]
                .to_uppercase()
                .starts_with("INSERT")
        })
        .count();
    assert!(inserts >= 2, "the dataset and its audit event: {got:#?}");
    assert!(
        got.iter()
            .filter(|s| s.name == "db.statement")
            .all(|s| !s.attributes["db.query.text"].contains("spans")),
        "no values in statement texts"
    );
}

/// `x-request-id` round-trips (a malformed one is replaced), and with `--log-format json`
/// every line is a JSON object, the request's lines carrying its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_round_trip_and_json_logs_parse() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let server = ServerProcess::start_with(&db.url, &["--log-format", "json"], &[]).await;
    let app = server.client();
    let send = |id: Option<&str>| {
        let mut request = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&json!({ "query": "query Hello { __typename }" }));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let kept = send(Some("req-2026.12.06:abc_DEF")).await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "req-2026.12.06:abc_DEF");
    for bad in ["has spaces", &"x".repeat(129), "quote\"d", ""] {
        let replaced = send(Some(bad)).await.unwrap();
        let id = replaced.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, bad);
        assert!(
            id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }
    let generated = send(None).await.unwrap();
    let first = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let second = send(None).await.unwrap().headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second, "each request gets its own id");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = server.logs();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let of_request: Vec<&Value> = parsed
        .iter()
        .filter(|l| l["span"]["request_id"] == "req-2026.12.06:abc_DEF")
        .collect();
    assert!(!of_request.is_empty(), "{lines:#?}");
    assert!(
        of_request
            .iter()
            .any(|l| l["fields"]["message"] == "answered" && l["fields"]["status"] == 200),
        "{of_request:#?}"
    );
    assert!(
        parsed
            .iter()
            .any(|l| l["span"]["request_id"] == first.as_str()),
        "the generated id is logged too"
    );
}

/// On SIGTERM, `/readyz` answers 503 (and `/livez` 200, and the API still answers) for the
/// drain period; then the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_drains_before_a_graceful_shutdown() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let mut server =
        ServerProcess::start_with(&db.url, &["--shutdown-drain-seconds", "3"], &[]).await;
    let app = server.client();
    let status = |path: &'static str| {
        let client = app.client.clone();
        let url = format!("{}/{path}", app.address);
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("readyz").await, 200);
    server.terminate();
    let started = Instant::now();
    while status("readyz").await != 503 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "/readyz turned 503"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status("livez").await, 200);
    let reply = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(
        reply.data("/__typename"),
        "Query",
        "still serving while draining"
    );
    let exit = server.exited(Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "it drained for about 3 s: {:?}",
        started.elapsed()
    );
}

/// The process answers `/livez` (200) and `/readyz` (503) while its migrations wait for a
/// lock another session holds; once they ran, `/readyz` answers 200 and the API serves.
async fn the_api_waits_for_migrations_and_probes_answer_meanwhile(backend: Backend) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let db = TestDatabase::create(&backend).await;
    let blocker = orgql::db::connect(&db.url, 1).await.unwrap();
    let lock = blocker.begin_with_config(None, None).await.unwrap();
    match blocker.get_database_backend() {
        // The migrations' first write waits for this write lock (SQLite's busy timeout is 30 s).
        sea_orm::DbBackend::Sqlite => {
            lock.execute_unprepared("CREATE TABLE held (x INTEGER)")
                .await
                .unwrap();
        }
        // The migrations' first statement creates this table: it waits for this session's
        // uncommitted one.
        _ => {
            lock.execute_unprepared(
                "CREATE TABLE seaql_migrations (version VARCHAR NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .await
            .unwrap();
        }
    }
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_orgql"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &db.url,
        ])
        .env("JWT_SECRET", crate::helpers::TEST_SECRET)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let client = client.clone();
        let url = format!("{address}/{path}");
        async move {
            client
                .get(url)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16())
        }
    };
    let started = Instant::now();
    while status("livez").await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/livez answers while migrating"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        assert_eq!(
            status("readyz").await,
            Some(503),
            "not ready before migrations"
        );
        let api = client
            .post(format!("{address}/graphql"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 503, "the API waits for the migrations");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lock.rollback().await.unwrap();
    let started = Instant::now();
    while status("readyz").await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/readyz turned 200"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let api = client
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    child.kill().await.ok();
    blocker.close().await.ok();
}
