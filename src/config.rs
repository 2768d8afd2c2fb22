//! Configuration: every setting is a flag with an environment fallback (API.md, "Running it").

use std::net::SocketAddr;

use clap::Parser;

/// orgql: a GraphQL API for accounts, organizations, members and datasets.
#[derive(Clone, Debug, Parser)]
#[command(name = "orgql", version, about)]
pub struct Config {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://…`. Default: the SQLite file
    /// `orgql.db` in the working directory, created on first start.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://orgql.db?mode=rwc"
    )]
    pub database_url: String,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ORGQL_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Secret that signs tokens (HS256). Default: a random secret generated once and kept in
    /// the database, so tokens survive a restart.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Token lifetime in seconds.
    #[arg(long, env = "ORGQL_TOKEN_TTL", default_value_t = 24 * 60 * 60)]
    pub token_ttl_seconds: u64,

    /// The `iss` claim tokens carry and must carry.
    #[arg(long, env = "ORGQL_JWT_ISSUER", default_value = "orgql")]
    pub jwt_issuer: String,

    /// Maximum database connections in the pool.
    #[arg(long, env = "ORGQL_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Previous JWT secrets, comma-separated: tokens they signed are still accepted (key
    /// rotation); new tokens are signed with the current secret only.
    #[arg(
        long,
        env = "JWT_PREVIOUS_SECRETS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub jwt_previous_secrets: Vec<String>,

    /// Turn off introspection (and field suggestions in error messages).
    #[arg(long, env = "ORGQL_DISABLE_INTROSPECTION")]
    pub disable_introspection: bool,

    /// Maximum selection depth of a query. Introspection counts too: the introspection query
    /// GraphiQL and code generators send is 15 deep (its type references nest `ofType`).
    #[arg(long, env = "ORGQL_MAX_DEPTH", default_value_t = 20)]
    pub max_depth: usize,

    /// Maximum complexity of a query: each field costs 1, and a connection field costs
    /// `first` (default 20) times its selection.
    #[arg(long, env = "ORGQL_MAX_COMPLEXITY", default_value_t = 200_000)]
    pub max_complexity: usize,

    /// Maximum number of aliased fields in one document.
    #[arg(long, env = "ORGQL_MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,

    /// Maximum number of root fields in one operation.
    #[arg(long, env = "ORGQL_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,

    /// Maximum size of a GraphQL document, in bytes.
    #[arg(long, env = "ORGQL_MAX_DOCUMENT_BYTES", default_value_t = 16 * 1024)]
    pub max_document_bytes: usize,

    /// Maximum number of operations in one batched (JSON array) request.
    #[arg(long, env = "ORGQL_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// Maximum request body size, in bytes (larger bodies answer 413).
    #[arg(long, env = "ORGQL_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Request timeout, in seconds.
    #[arg(long, env = "ORGQL_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout_seconds: u64,

    /// `logIn` attempts allowed per account per minute, its username in any case and its
    /// email counted together (then `RATE_LIMITED`). Shared by every instance on the
    /// database.
    #[arg(
        long,
        alias = "login-attempts-per-username",
        env = "ORGQL_LOGIN_PER_ACCOUNT",
        default_value_t = 10
    )]
    pub login_attempts_per_account: u32,

    /// `logIn` attempts allowed per client address per minute (then `RATE_LIMITED`).
    #[arg(long, env = "ORGQL_LOGIN_PER_ADDRESS", default_value_t = 60)]
    pub login_attempts_per_address: u32,

    /// `signUp` attempts allowed per client address per minute (then `RATE_LIMITED`).
    #[arg(long, env = "ORGQL_SIGNUP_PER_ADDRESS", default_value_t = 10)]
    pub sign_ups_per_address: u32,

    /// Origins allowed to call the API from a browser (CORS), e.g.
    /// `https://app.example.com`; repeatable, or comma-separated in the environment. `*`
    /// allows any origin. None: no cross-origin access.
    #[arg(
        long = "cors-origin",
        env = "ORGQL_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// How many automatic persisted queries (Apollo APQ) to keep, in memory, per instance.
    #[arg(long, env = "ORGQL_APQ_CACHE_SIZE", default_value_t = 1024)]
    pub apq_cache_size: usize,

    /// How many parsed GraphQL documents to keep, in memory, by their exact text: a
    /// repeated query skips parsing, and a repeated request (the same operation name and
    /// variables too, among the last 8 that validated) skips the validation rules; depth
    /// and complexity are checked on every request. `0` turns the cache off.
    #[arg(long, env = "ORGQL_PARSED_CACHE_SIZE", default_value_t = 256)]
    pub parsed_cache_size: usize,

    /// Days an invitation stays open before it expires.
    #[arg(long, env = "ORGQL_INVITATION_TTL_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub invitation_ttl_days: u32,

    /// Days to keep audit events; older ones are deleted in the background, in small
    /// batches. Unset: keep them forever.
    #[arg(long, env = "ORGQL_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,

    /// Subscriptions one user may hold on one instance at once (then `RATE_LIMITED`).
    #[arg(long, env = "ORGQL_MAX_SUBSCRIPTIONS_PER_USER", default_value_t = 100)]
    pub max_subscriptions_per_user: usize,

    /// Subscriptions one WebSocket connection may hold at once (then `RATE_LIMITED`).
    #[arg(
        long,
        env = "ORGQL_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 25
    )]
    pub max_subscriptions_per_connection: usize,

    /// Seconds a WebSocket may take to send `connection_init` (then it closes with 4408).
    #[arg(long, env = "ORGQL_SUBSCRIPTION_INIT_TIMEOUT", default_value_t = 10)]
    pub subscription_init_timeout_seconds: u64,

    /// Seconds between the server's pings on an idle WebSocket or SSE stream.
    #[arg(long, env = "ORGQL_SUBSCRIPTION_PING_SECONDS", default_value_t = 15)]
    pub subscription_ping_seconds: u64,

    /// Serve `/metrics` on this address instead of the API's (e.g. `0.0.0.0:9100`, so that
    /// only the scraper reaches it).
    #[arg(long, env = "ORGQL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Keep no metrics and serve no `/metrics`.
    #[arg(long, env = "ORGQL_DISABLE_METRICS")]
    pub disable_metrics: bool,

    /// How log lines look: `pretty` (for people) or `json` (one object per line).
    #[arg(long, env = "ORGQL_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: crate::telemetry::traces::LogFormat,

    /// Seconds between a shutdown signal (SIGTERM, Ctrl-C) and closing the listener: `/readyz`
    /// answers 503 meanwhile while requests are still served, so that a load balancer stops
    /// sending new ones. A second signal stops at once.
    #[arg(long, env = "ORGQL_SHUTDOWN_DRAIN_SECONDS", default_value_t = 5)]
    pub shutdown_drain_seconds: u64,

    /// Seed a small demo world (two organizations, a few users and datasets, every role in
    /// use) when the database is empty, and print a token for each demo user.
    #[arg(long, env = "ORGQL_DEMO")]
    pub demo: bool,

    /// Print the GraphQL schema (SDL, sorted) and exit.
    #[arg(long)]
    pub print_schema: bool,
}

impl Config {
    /// The configuration with every default, for tests and tools.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        let mut config = Config::parse_from(["orgql"]);
        config.database_url = database_url.into();
        config
    }
}
