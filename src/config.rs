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
