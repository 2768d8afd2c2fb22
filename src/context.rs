//! What every resolver can reach: the shared application state, the viewer, the loaders.

use std::hash::Hash;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use futures_util::future::BoxFuture;
use sea_orm::DatabaseConnection;

use crate::auth::{TokenKeys, Viewer};
use crate::db::Reader;
use crate::error::ApiResult;
use crate::loaders::{Batched, DbLoader, LoadError, load_error};

/// State shared by every request.
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Signs and checks tokens.
    pub keys: TokenKeys,
    /// How many SQL statements the server has run (for metrics and the statement-count
    /// test).
    pub statements: std::sync::Arc<crate::telemetry::Statements>,
    /// The pooled connections set aside for queries (see [`crate::db::QueryConnections`]).
    pub query_connections: std::sync::Arc<crate::db::QueryConnections>,
    /// The allowances of `logIn` and `signUp` attempts.
    pub rate_limits: crate::ratelimit::RateLimits,
    /// An argon2 hash checked for unknown accounts at `logIn` (see [`crate::auth::dummy_hash`]).
    pub dummy_hash: String,
    /// How many days an invitation stays open.
    pub invitation_ttl_days: u32,
    /// The Prometheus metrics (`None` with `--disable-metrics`).
    pub metrics: Option<std::sync::Arc<crate::telemetry::Metrics>>,
    /// This instance's live subscriptions (see [`crate::live`]).
    pub hub: std::sync::Arc<crate::live::Hub>,
    /// Set when the server begins to shut down: `/readyz` answers 503 from then on.
    pub draining: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// Closes the database gracefully: first the live-updates feed's connection and the
    /// connections kept for queries, since sqlx's `close` waits for every connection to come
    /// back to its pool, then the pool.
    pub async fn close(&self) {
        self.hub.close();
        self.query_connections.close_all();
        self.db.clone().close().await.ok();
    }
}

/// Shorthands for resolvers.
pub trait ContextExt {
    /// The shared state.
    fn state(&self) -> &AppState;
    /// The connection pool.
    fn db(&self) -> &DatabaseConnection {
        &self.state().db
    }
    /// This request's reads outside a transaction (see [`Reader`]): on its own connection
    /// when its operation only reads (see [`crate::db::Held`]). Resolvers of queries read
    /// only through this and [`ContextExt::load`], never `db()` itself: a query holding a
    /// connection must not wait for a second.
    fn reader(&self) -> Reader<'_> {
        self.loader().loader().reader()
    }
    /// Who is asking.
    fn viewer(&self) -> Viewer;
    /// This request's loaders.
    fn loader(&self) -> &DataLoader<Batched>;
    /// Loads `key` through this request's loaders: batched with every load of its kind in
    /// the same tick (see [`crate::tick`]). The future is boxed so that the resolvers awaiting it stay small:
    /// [`crate::eager`] moves every field's resolver future, and a loader call held inline
    /// made each several times larger.
    fn load<K>(&self, key: K) -> BoxFuture<'_, ApiResult<Option<<DbLoader as Loader<K>>::Value>>>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        DbLoader: Loader<K, Error = LoadError>,
    {
        let loader = self.loader();
        Box::pin(async move { loader.load_one(key).await.map_err(load_error) })
    }
}

impl ContextExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<std::sync::Arc<AppState>>()
    }

    fn viewer(&self) -> Viewer {
        self.data_opt::<Viewer>()
            .copied()
            .unwrap_or(Viewer::Anonymous)
    }

    fn loader(&self) -> &DataLoader<Batched> {
        self.data_unchecked::<DataLoader<Batched>>()
    }
}
