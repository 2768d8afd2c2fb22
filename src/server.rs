//! The HTTP edge: routes, authentication of requests, GraphQL over HTTP, health, GraphiQL.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, ServerError, ValidationMode};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::{Presented, TokenKeys};
use crate::config::Config;
use crate::context::AppState;
use crate::db::{Held, Reader};
use crate::http::ResponseType;
use crate::limits::{Admission, Admitted, QueryLimits};
use crate::loaders::{Batched, DbLoader};
use crate::ratelimit::ClientAddr;
use crate::schema::{OrgqlSchema, configured_schema_builder};
use crate::telemetry::edge::Observed;
use crate::telemetry::stages::Stages;
use crate::telemetry::traces::Span;
use crate::telemetry::{Metrics, Outcome, Statements};
use crate::tick::{TickScheduler, Ticked};
use opentelemetry::trace::SpanKind;

/// How long `/health` waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest JWT secret accepted.
const MIN_JWT_SECRET_BYTES: usize = 32;

/// The setting under which a generated JWT secret is kept.
const JWT_SECRET_SETTING: &str = "jwt_secret";

#[derive(Clone)]
struct Shared {
    schema: OrgqlSchema,
    /// The same schema, for requests known to pass its validation rules (see
    /// [`crate::limits::Admitted::validated`]): it skips them, and checks depth and
    /// complexity as `schema` does.
    validated_schema: OrgqlSchema,
    admission: Arc<Admission>,
    state: Arc<AppState>,
    max_batch: usize,
    request_timeout: Duration,
    /// How subscriptions' transports behave.
    live: crate::live::transport::Settings,
}

/// Connects to the database, runs migrations, and settles the token secret.
pub async fn build_state(config: &Config) -> anyhow::Result<Arc<AppState>> {
    let mut db = crate::db::connect(&config.database_url, config.db_max_connections).await?;
    let metrics =
        (!config.disable_metrics).then(|| Arc::new(Metrics::new(config.db_max_connections)));
    let statements = Arc::new(Statements::new(metrics.clone()));
    let counter = statements.clone();
    // The statements sea-orm runs itself (transactions' and background work's): counted
    // after they ran. Queries' statements are counted by `crate::db::fetch_all`.
    db.set_metric_callback(move |info| {
        counter.ran(&info.statement.sql, info.elapsed);
        tracing::trace!(target: "orgql::sql", elapsed = ?info.elapsed, sql = %info.statement.sql);
    });
    crate::db::migrate(&db).await?;
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None => {
            crate::db::setting_or_insert(&db, JWT_SECRET_SETTING, || {
                base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
            })
            .await?
        }
    };
    if secret.len() < MIN_JWT_SECRET_BYTES
        || config
            .jwt_previous_secrets
            .iter()
            .any(|s| s.len() < MIN_JWT_SECRET_BYTES)
    {
        anyhow::bail!(
            "JWT secrets must be at least {MIN_JWT_SECRET_BYTES} bytes long (HS256 needs 256 bits of key)"
        );
    }
    let previous: Vec<&[u8]> = config
        .jwt_previous_secrets
        .iter()
        .map(|s| s.as_bytes())
        .collect();
    let keys = TokenKeys::new(
        secret.as_bytes(),
        &previous,
        &config.jwt_issuer,
        config.token_ttl_seconds,
    );
    let dummy_hash = tokio::task::spawn_blocking(crate::auth::dummy_hash).await?;
    let query_connections = Arc::new(crate::db::QueryConnections::new(config.db_max_connections));
    crate::db::QueryConnections::return_stale_periodically(&query_connections);
    crate::ratelimit::prune_periodically(db.clone());
    if let Some(days) = config.audit_retention_days {
        crate::audit::prune_periodically(db.clone(), days);
    }
    let hub = Arc::new(crate::live::Hub::new(
        db.clone(),
        crate::live::Limits {
            per_user: config.max_subscriptions_per_user,
            per_connection: config.max_subscriptions_per_connection,
        },
        metrics.clone(),
    ));
    Ok(Arc::new(AppState {
        db,
        statements,
        query_connections,
        keys,
        rate_limits: crate::ratelimit::RateLimits {
            log_in_per_account: config.login_attempts_per_account,
            log_in_per_address: config.login_attempts_per_address,
            sign_up_per_address: config.sign_ups_per_address,
            metrics: metrics.clone(),
        },
        hub,
        metrics,
        draining: std::sync::atomic::AtomicBool::new(false),
        dummy_hash,
        invitation_ttl_days: config.invitation_ttl_days,
    }))
}

/// A built server: bound to its address, ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
}

impl Application {
    /// Connects, migrates and binds the listener (port 0 picks a free port).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let state = build_state(config).await?;
        let listener = TcpListener::bind(config.listen).await?;
        Ok(Application {
            listener,
            router: router(config, state.clone()),
            state,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (database pool, keys).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Live subscriptions end with the shutdown (their streams would keep it waiting).
        let hub = self.state.hub.clone();
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            hub.close();
        })
        .await
    }
}

/// What `orgql` runs: binds `config.listen` first and answers `/livez` (200) and every other
/// path with 503 while it connects and migrates, then serves everything (and `/metrics` on
/// `--metrics-listen` when set), calling `ready` once. On `signal`, `/readyz` answers 503
/// for `--shutdown-drain-seconds` (or until `signal` comes again) while requests are still
/// served; then the listener closes and in-flight requests finish.
pub async fn serve<S, F>(
    config: &Config,
    signal: S,
    ready: impl AsyncFnOnce(&Arc<AppState>, SocketAddr) -> anyhow::Result<()>,
) -> anyhow::Result<()>
where
    S: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send,
{
    use tower::ServiceExt;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let started: Arc<std::sync::OnceLock<(Router, Arc<AppState>)>> = Arc::default();
    let front = {
        let started = started.clone();
        Router::new().fallback(move |request: axum::extract::Request| {
            let started = started.clone();
            async move {
                match started.get() {
                    Some((router, _)) => router.clone().oneshot(request).await.into_response(),
                    None if request.uri().path() == "/livez" => livez().await,
                    None => status_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "starting",
                        Some("connecting to the database and running migrations"),
                    ),
                }
            }
        })
    };
    let drain = Duration::from_secs(config.shutdown_drain_seconds);
    let shutdown = {
        let started = started.clone();
        async move {
            signal().await;
            if let Some((_, state)) = started.get() {
                state
                    .draining
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            tracing::info!(
                "shutting down: /readyz answers 503; the listener closes in {} s (a second signal closes it now)",
                drain.as_secs()
            );
            tokio::select! {
                _ = tokio::time::sleep(drain) => {},
                _ = signal() => {},
            }
            // Live subscriptions end now (their streams would keep the shutdown waiting).
            if let Some((_, state)) = started.get() {
                state.hub.close();
            }
        }
    };
    let server = tokio::spawn(
        axum::serve(
            listener,
            front.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .into_future(),
    );
    tracing::info!(
        "orgql starting on http://{addr}: /livez answers now, the API once the database is migrated"
    );
    let state = match build_state(config).await {
        Ok(state) => state,
        Err(error) => {
            server.abort();
            return Err(error);
        }
    };
    if let (Some(metrics_addr), Some(_)) = (config.metrics_listen, &state.metrics) {
        let listener = TcpListener::bind(metrics_addr).await?;
        let scraped = state.clone();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let state = scraped.clone();
                async move { metrics_response(&state) }
            }),
        );
        tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let _ = started.set((router(config, state.clone()), state.clone()));
    ready(&state, addr).await?;
    server.await??;
    Ok(())
}

fn router(config: &Config, state: Arc<AppState>) -> Router {
    let builder = || {
        configured_schema_builder(config)
            .data(state.clone())
            .data(state.hub.clone())
    };
    let schema = builder().finish();
    let validated_schema = builder().validation_mode(ValidationMode::Fast).finish();
    let max_batch = config.max_batch;
    let admission = Arc::new(Admission::new(
        QueryLimits {
            max_document_bytes: config.max_document_bytes,
            max_aliases: config.max_aliases,
            max_root_fields: config.max_root_fields,
        },
        config.apq_cache_size,
        config.parsed_cache_size,
    ));
    let request_timeout = Duration::from_secs(config.request_timeout_seconds);
    let mut routes = Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/stream", axum::routing::post(graphql_stream))
        .route("/health", get(health))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz));
    if config.metrics_listen.is_none() && state.metrics.is_some() {
        routes = routes.route("/metrics", get(metrics));
    }
    let observed = state.metrics.clone();
    routes
        .merge(crate::graphiql::routes())
        // The HTTP edge, innermost first: compression, a cap on the body (413), a timeout
        // (408), and panics turned into a clean INTERNAL_SERVER_ERROR while the server goes
        // on serving.
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        // A backstop for anything the GraphQL handler's own timeout does not cover.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout + Duration::from_secs(5),
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(cors(&config.cors_origins))
        // Outermost: the request id and span, the metrics, one log line per request.
        .layer(axum::middleware::from_fn_with_state(
            observed,
            crate::telemetry::edge::observe,
        ))
        .with_state(Shared {
            schema,
            validated_schema,
            admission,
            state,
            max_batch,
            request_timeout,
            live: crate::live::transport::Settings {
                init_timeout: Duration::from_secs(config.subscription_init_timeout_seconds),
                ping_every: Duration::from_secs(config.subscription_ping_seconds.max(1)),
            },
        })
}

async fn graphiql() -> Html<String> {
    crate::graphiql::page()
}

async fn health(State(shared): State<Shared>) -> Response {
    // Answer within a load balancer's patience even when the pool would wait its full
    // acquire timeout for a connection.
    let ping = tokio::time::timeout(HEALTH_TIMEOUT, crate::db::ping(&shared.state.db));
    if ping.await.unwrap_or(false) {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "ok" })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "unavailable", "database": "unreachable" })),
        )
            .into_response()
    }
}

/// `GET /livez`: the process runs.
async fn livez() -> Response {
    status_response(StatusCode::OK, "ok", None)
}

/// `{"status": …}` (and what is wrong) with `status`.
fn status_response(status: StatusCode, text: &str, problem: Option<&str>) -> Response {
    let body = match problem {
        Some(problem) => serde_json::json!({ "status": text, "problem": problem }),
        None => serde_json::json!({ "status": text }),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// `GET /readyz`: 200 while the database answers and every migration has run; 503 when it
/// does not, or migrations are pending, or the server is shutting down.
async fn readyz(State(shared): State<Shared>) -> Response {
    let state = &shared.state;
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return status_response(StatusCode::SERVICE_UNAVAILABLE, "draining", None);
    }
    let pending = tokio::time::timeout(HEALTH_TIMEOUT, crate::db::pending_migrations(&state.db));
    match pending.await {
        Ok(Ok(0)) => status_response(StatusCode::OK, "ok", None),
        Ok(Ok(n)) => status_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Some(&format!("{n} migrations have not run")),
        ),
        _ => status_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Some("the database does not answer"),
        ),
    }
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics(State(shared): State<Shared>) -> Response {
    metrics_response(&shared.state)
}

fn metrics_response(state: &AppState) -> Response {
    match &state.metrics {
        Some(metrics) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(prometheus::TEXT_FORMAT),
            )],
            metrics.render(&state.db),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A request-level error (nothing executed), as a GraphQL response with a code.
fn request_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    let body = async_graphql::Response::from_errors(vec![error]);
    let mut response = (status, axum::Json(body)).into_response();
    response.extensions_mut().insert(Observed {
        operations: Vec::new(),
        codes: vec![code.to_owned()],
    });
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Bearer".parse().expect("static header"),
        );
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, "POST".parse().expect("static header"));
    }
    response
}

/// What the request presents (see [`crate::auth::presented_in`]).
fn presented(headers: &HeaderMap, keys: &TokenKeys) -> Result<Presented, ()> {
    let value = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| ())?),
    };
    crate::auth::presented_in(value, keys).ok_or(())
}

/// The answer to a request whose credential is refused.
fn unauthenticated() -> Response {
    request_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "the token is invalid, expired or revoked: sign in again",
    )
}

/// CORS for the configured browser origins (none: no cross-origin access). Preflight
/// requests are answered by tower-http's layer.
fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let origins: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
            .collect();
        layer.allow_origin(AllowOrigin::list(origins))
    }
}

/// A panic in a handler: logged, answered as a GraphQL error without its text.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("<non-string panic>");
    tracing::error!(panic = detail, "a request panicked");
    request_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_SERVER_ERROR",
        "internal server error",
    )
}

async fn execute(
    shared: Shared,
    client: SocketAddr,
    headers: HeaderMap,
    request: BatchRequest,
    via_get: bool,
) -> Response {
    let response_type = ResponseType::negotiate(&headers);
    if let BatchRequest::Batch(requests) = &request
        && requests.len() > shared.max_batch
    {
        return request_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!(
                "a batch may hold at most {} operations; this one has {}",
                shared.max_batch,
                requests.len()
            ),
        );
    }
    let Ok(presented) = presented(&headers, &shared.state.keys) else {
        return unauthenticated();
    };
    // Every operation of the request is admitted before any runs, so that a rule over the
    // whole request (one password operation at most) refuses it with nothing done.
    let (mut requests, batched) = match request {
        BatchRequest::Single(r) => (vec![r], false),
        BatchRequest::Batch(rs) => (rs, true),
    };
    let started = std::time::Instant::now();
    let admitted: Vec<_> = requests
        .iter_mut()
        .map(|request| {
            let _parse = Span::leaf("graphql.parse", SpanKind::Internal, Vec::new);
            shared.admission.admit(request, via_get)
        })
        .collect();
    let password_operations: usize = admitted
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .map(|a| a.password_operations)
        .sum();
    if password_operations > 1 {
        let error = crate::schema::with_code(
            ServerError::new(
                format!(
                    "a request may run at most one operation that checks or sets a password \
                     (signUp, logIn, changePassword, deleteAccount); this one has \
                     {password_operations}: send them one request at a time"
                ),
                None,
            ),
            "BAD_USER_INPUT",
        );
        return graphql_response(
            &BatchResponse::Single(async_graphql::Response::from_errors(vec![error])),
            response_type,
        );
    }
    // A request of queries only holds one connection for all its statements (see
    // `crate::db::Held`), from the credential's check on.
    let only_queries = admitted
        .iter()
        .all(|a| a.as_ref().is_ok_and(|a| a.only_queries));
    let held = only_queries.then(|| Held::new(shared.state.query_connections.clone()));
    let state = &shared.state;
    let reader = Reader::new(&state.db, &state.statements).holding(held.as_ref());
    let checked = match crate::accounts::check_credential(&reader, &presented).await {
        Ok(Some(checked)) => checked,
        Ok(None) => return unauthenticated(),
        Err(error) => {
            let error = async_graphql::Error::from(error).into_server_error(Default::default());
            return graphql_response(
                &BatchResponse::Single(async_graphql::Response::from_errors(vec![error])),
                response_type,
            );
        }
    };
    if let Some(token) = checked.touch {
        crate::accounts::touch_api_token(state.db.clone(), token);
    }
    let viewer = checked.viewer;
    // What the credential may run, before anything runs (scopes; see `crate::policy`).
    let admitted: Vec<_> = admitted
        .into_iter()
        .map(|admitted| {
            let admitted = admitted?;
            if crate::policy::may_run(viewer.via(), admitted.mutations.as_deref()) {
                Ok(admitted)
            } else {
                Err(crate::schema::with_code(
                    ServerError::new(
                        "this API token may not run this operation: a READ token runs queries \
                         only, and account and token management needs a sign-in token",
                        None,
                    ),
                    "FORBIDDEN",
                ))
            }
        })
        .collect();
    // Loaders batch per tick of this request's executor (see `crate::tick`).
    let scheduler = Arc::new(TickScheduler::default());
    let viewer_rows = checked.rows;
    let loader = |holds: bool| {
        let loader = DbLoader::new(
            state.db.clone(),
            state.statements.clone(),
            viewer,
            held.clone().filter(|_| holds),
        );
        if let Some((account, private)) = &viewer_rows {
            loader.keep_viewer(account.clone(), private.clone());
        }
        let loader = Batched::new(loader, Span::current(), state.metrics.clone());
        DataLoader::new(loader, scheduler.spawner())
            // Batches start when the request's executor waits (see `crate::tick`), not after a
            // timed window.
            .delay(Duration::ZERO)
            // Every key of one level in one statement (well under SQLite's and PostgreSQL's
            // bind-parameter limits).
            .max_batch_size(10_000)
    };
    let client = ClientAddr(client.ip());
    let run = |mut request: async_graphql::Request, admitted: Result<Admitted, ServerError>| {
        let name = match &admitted {
            Ok(_) => operation_name(&mut request),
            Err(_) => request.operation_name.clone(),
        };
        // A query holds one connection for its statements (see `crate::db::Held`).
        let only_queries = admitted.as_ref().is_ok_and(|a| a.only_queries);
        let validating = admitted.as_ref().ok().and_then(|a| a.validating(&request));
        let schema = match &admitted {
            Ok(a) if a.validated => shared.validated_schema.clone(),
            _ => shared.schema.clone(),
        };
        let request = request.data(viewer).data(client).data(loader(only_queries));
        async move {
            let (response, outcome) = match admitted {
                Ok(_) => {
                    // Its validate and execute spans (see `crate::telemetry::stages`).
                    let response = match Stages::begin(name.as_deref()) {
                        None => schema.execute(request).await,
                        Some(stages) => {
                            let response = stages.scope(schema.execute(request)).await;
                            stages.finish();
                            response
                        }
                    };
                    // A request that failed validation answers errors without a `path`
                    // (async-graphql's validation errors have none); one whose errors all
                    // have a path (raised by a field, such as `FORBIDDEN`) passed it.
                    let passed = response.errors.iter().all(|error| !error.path.is_empty());
                    if let Some(validating) = validating
                        && passed
                    {
                        validating.validated();
                    }
                    let outcome = if response.errors.is_empty() {
                        Outcome::Ok
                    } else if passed {
                        Outcome::Error
                    } else {
                        Outcome::Refused
                    };
                    (response, outcome)
                }
                Err(refused) => (
                    async_graphql::Response::from_errors(vec![refused]),
                    Outcome::Refused,
                ),
            };
            (response, (name, outcome))
        }
    };
    let execution = Ticked::new(
        async {
            let mut responses = Vec::with_capacity(requests.len());
            let mut operations = Vec::with_capacity(requests.len());
            for (request, admitted) in requests.into_iter().zip(admitted) {
                let (response, (name, outcome)) = run(request, admitted).await;
                // The request's span is named after its operation (a batch's: its route).
                if !batched {
                    crate::telemetry::edge::name_request(
                        name.as_deref()
                            .unwrap_or(crate::telemetry::metrics::ANONYMOUS),
                    );
                }
                operations.push((name, outcome, started.elapsed()));
                responses.push(response);
            }
            let response = if batched {
                BatchResponse::Batch(responses)
            } else {
                BatchResponse::Single(responses.pop().expect("one request"))
            };
            (response, operations)
        },
        scheduler.clone(),
    );
    // Answer a slow request with a coded GraphQL error before the HTTP layer's bare 408
    // (dropping the execution rolls back any open transaction).
    let Ok((response, operations)) = tokio::time::timeout(shared.request_timeout, execution).await
    else {
        tracing::warn!("a GraphQL request exceeded the request timeout");
        return request_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "INTERNAL_SERVER_ERROR",
            "the request took too long and was cancelled; nothing it did was kept",
        );
    };
    let mut answer = graphql_response(&finish(response), response_type);
    if let Some(observed) = answer.extensions_mut().get_mut::<Observed>() {
        observed.operations = operations;
    }
    answer
}

/// The name of the operation `request` runs: the one it names, else the name of the
/// document's only operation (`None`: anonymous).
fn operation_name(request: &mut async_graphql::Request) -> Option<String> {
    if let Some(name) = &request.operation_name {
        return Some(name.clone());
    }
    match &request.parsed_query().ok()?.operations {
        async_graphql::parser::types::DocumentOperations::Single(_) => None,
        async_graphql::parser::types::DocumentOperations::Multiple(operations) => {
            let mut names = operations.keys();
            match (names.next(), names.next()) {
                (Some(name), None) => Some(name.to_string()),
                _ => None,
            }
        }
    }
}

/// `response` over HTTP, as async-graphql-axum's `GraphQLResponse` answers it (the operation's
/// cache control when it succeeded, the headers it set) with the media type and status code
/// GraphQL over HTTP gives it (see [`crate::http`]).
fn graphql_response(response: &BatchResponse, response_type: ResponseType) -> Response {
    let mut answer = Response::new(axum::body::Body::from(crate::http::body(response)));
    *answer.status_mut() = response_type.status(response);
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(response_type.content_type()),
    );
    if response.is_ok()
        && let Some(cache_control) = response.cache_control().value()
        && let Ok(value) = HeaderValue::from_str(&cache_control)
    {
        headers.insert(header::CACHE_CONTROL, value);
    }
    headers.extend(response.http_headers());
    let responses = match response {
        BatchResponse::Single(r) => std::slice::from_ref(r),
        BatchResponse::Batch(rs) => rs.as_slice(),
    };
    let codes = responses
        .iter()
        .flat_map(|r| &r.errors)
        .map(
            |error| match error.extensions.as_ref().and_then(|e| e.get("code")) {
                Some(async_graphql::Value::String(code)) => code.clone(),
                _ => "INTERNAL_SERVER_ERROR".to_owned(),
            },
        )
        .collect();
    answer.extensions_mut().insert(Observed {
        operations: Vec::new(),
        codes,
    });
    answer
}

/// Every error leaves with a code. Ours carry one already; async-graphql's own get Apollo's:
/// `BAD_USER_INPUT` for a value that does not fit its type (a variable or argument),
/// `GRAPHQL_VALIDATION_FAILED` for any other error of a document that did not validate
/// against the schema (depth and complexity limits included; these have no `path`), and
/// `BAD_USER_INPUT` for anything raised while resolving a field.
fn finish(mut response: BatchResponse) -> BatchResponse {
    let fix = |r: &mut async_graphql::Response| {
        for error in &mut r.errors {
            let code = if error.message.contains("Invalid value for argument")
                || error.message.contains("Variable")
                || !error.path.is_empty()
            {
                "BAD_USER_INPUT"
            } else {
                "GRAPHQL_VALIDATION_FAILED"
            };
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", code);
            }
        }
    };
    match &mut response {
        BatchResponse::Single(r) => fix(r),
        BatchResponse::Batch(rs) => rs.iter_mut().for_each(fix),
    }
    response
}

/// A POST's body, refused (415) before it is read when it is not JSON: such a request never
/// executes.
fn json_body(
    headers: &HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, Box<Response>> {
    if !crate::http::is_json_content_type(headers) {
        return Err(Box::new(request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            "send GraphQL requests as `Content-Type: application/json`",
        )));
    }
    body.map_err(|rejection| Box::new(rejection.into_response()))
}

async fn graphql_post(
    State(shared): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    match crate::http::parse_body(&body) {
        Ok(request) => execute(shared, client, headers, request, false).await,
        Err(problem) => not_a_graphql_request(&problem),
    }
}

/// `POST /graphql/stream`: an operation answered as Server-Sent Events (`graphql-sse`,
/// distinct connections; see `crate::live::transport`).
async fn graphql_stream(
    State(shared): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    crate::live::transport::sse(
        &headers,
        &body,
        shared.schema.clone(),
        shared.state.clone(),
        client,
        shared.live,
    )
    .await
}

/// A body or query string that is not a GraphQL request at all.
fn not_a_graphql_request(problem: &str) -> Response {
    request_error(
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        &format!(
            "not a GraphQL request ({problem}): send JSON with a string `query`, and optionally \
             an object `variables` and a string `operationName` (or a JSON array of those)"
        ),
    )
}

/// `GET /graphql`: GraphiQL for a browser; otherwise a query from the URL, as GraphQL over
/// HTTP allows. A mutation over GET is refused (405) and never executed.
async fn graphql_get(
    State(shared): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    // Subscriptions over WebSocket (see `crate::live::transport`).
    if let Ok(upgrade) = upgrade {
        return crate::live::transport::websocket(
            upgrade,
            &headers,
            shared.schema.clone(),
            shared.state.clone(),
            client,
            shared.live,
        )
        .await;
    }
    let params = params.map(|Query(params)| params).unwrap_or_default();
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html && !params.iter().any(|(name, _)| name == "query") {
        return graphiql().await.into_response();
    }
    let request = match crate::http::parse_query_string(params) {
        Ok(request) => request,
        Err(problem) => return not_a_graphql_request(&problem),
    };
    if is_mutation(&request.query, request.operation_name.as_deref()) {
        return request_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_REQUEST",
            "mutations must be sent with POST",
        );
    }
    execute(shared, client, headers, BatchRequest::Single(request), true).await
}

/// Whether the operation the request selects is not a query (mutations and subscriptions
/// may not run over GET). A document that does not parse is left to the executor's error.
fn is_mutation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let selected = match (&document.operations, operation_name) {
        (async_graphql::parser::types::DocumentOperations::Single(op), _) => Some(&op.node),
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).map(|op| &op.node)
        }
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), None) => {
            // Without a name the request is invalid unless there is one operation; refuse if
            // any could be a mutation.
            return ops.values().any(|op| op.node.ty != OperationType::Query);
        }
    };
    selected.is_some_and(|op| op.ty != OperationType::Query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_a_clean_internal_error() {
        let app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("secret detail");
                    }
                    "unreachable"
                }),
            )
            .route("/ok", get(|| async { "ok" }))
            .layer(CatchPanicLayer::custom(panic_response));
        let response = app
            .clone()
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("INTERNAL_SERVER_ERROR"), "{text}");
        assert!(!text.contains("secret detail"), "{text}");
        // And the router goes on serving.
        let response = app
            .oneshot(
                axum::http::Request::get("/ok")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
