//! Connecting to the database, running migrations, and the server's own settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Alias, DynIden, Expr, IntoIden, SelectStatement};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{self, Arguments, Database as SqlxDatabase, Encode, Type};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    ExecResult, IdenStatic, Iterable, QueryResult, RuntimeErr, Set, SqliteTransactionMode,
    Statement, TransactionOptions, Value,
};

use entity::server_setting;

use crate::telemetry::Statements;

/// How long a statement waits for SQLite's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many rows sqlx's SQLite worker may read ahead of the request that consumes them.
const SQLITE_ROW_BUFFER: usize = 1024;

/// How long a request waits for a pooled connection, opening one included. This is what
/// bounds a request when the database is unreachable: a refused connection is retried with
/// backoff until then (so an outage shorter than this is invisible), a silent one is given up
/// then; either way the request answers `INTERNAL_SERVER_ERROR` and `/health` 503 well within
/// the request timeout (30 s by default). (sea-orm's `connect_timeout` sets the same sqlx
/// setting, so only this one is set.)
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a pool on `url`. SQLite files are created on first use and run in WAL mode with a
/// busy timeout and foreign keys on.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Ping a pooled connection before handing it out: after the database went away and
        // came back, dead connections are found and replaced, so the server recovers without
        // a restart (and a connection silenced by a partition times out at acquiring instead
        // of hanging a request). sea-orm's default, spelled out because recovery relies on it.
        .test_before_acquire(true)
        .sqlx_logging(false)
        // Every statement orgql prepares is a look-up by key or a keyset range whose best
        // plan does not depend on the values bound (a page's `LIMIT` among them), so
        // PostgreSQL may plan each prepared statement once. Without this, a bound `LIMIT`
        // made it re-plan every execution, which cost more than running the statement.
        .map_sqlx_postgres_opts(|opts| opts.options([("plan_cache_mode", "force_generic_plan")]))
        .map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                // sqlx's SQLite worker thread hands rows over through a channel of 50: a
                // page statement of a few thousand rows made it stop and wake the reader
                // dozens of times. Pages are bounded (100 rows per parent), so buffering a
                // whole page statement costs little memory.
                .row_buffer_size(SQLITE_ROW_BUFFER)
        });
    Database::connect(options).await
}

/// Brings the schema up to date.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// How many migrations have not run on `db` (`Err`: it does not answer).
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.len())
}

/// Options for a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`), so concurrent writers queue on the busy timeout instead of failing
/// with "database is locked" when a read lock cannot be upgraded; PostgreSQL ignores it.
pub fn write_tx() -> TransactionOptions {
    TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    }
}

/// Reads the setting `key`, or stores `make()` under it if none is there yet. Safe when
/// several instances start at once: the first insert wins and everyone reads it back.
pub async fn setting_or_insert(
    db: &DatabaseConnection,
    key: &str,
    make: impl FnOnce() -> String,
) -> Result<String, DbErr> {
    if let Some(row) = server_setting::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
    {
        return Ok(row.value);
    }
    let row = server_setting::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(make()),
    };
    server_setting::Entity::insert(row)
        .on_conflict_do_nothing_on([server_setting::Column::Key])
        .exec(db)
        .await?;
    server_setting::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
        .map(|row| row.value)
        .ok_or_else(|| DbErr::RecordNotFound(key.to_owned()))
}

/// One request's own pooled connection, for the statements of an operation that only reads
/// (see [`Reader::holding`]).
///
/// sqlx pings a pooled connection when it is acquired (`test_before_acquire`, which recovery
/// after a database restart relies on) and again when it goes back to the pool (always, in
/// sqlx 0.9): two round trips, and a spawned task, for every statement. Holding one
/// connection for the request pays them once per request, and handing it on to the next
/// query without going through the pool (see [`QueryConnections`]) saves the release ping.
/// The connection is taken at the request's first statement, from the [`QueryConnections`]
/// set aside for queries, and goes back there when the request's loaders are dropped, as
/// the operation's execution ends.
///
/// Only for queries: a request holding a connection must never wait for a second one, or
/// requests holding every pooled connection would all wait for one more. Mutations open
/// transactions on the pool, so their requests read per statement as before.
///
/// Each statement on it runs in a task of its own, which locks the connection, runs the
/// statement and puts the connection back. A resolver's statement must not keep it locked
/// until the resolver is polled again: while the request's batches run, [`crate::tick`]
/// does not poll its resolvers at all, and a batch waiting for the connection would wait
/// forever.
#[derive(Clone)]
pub struct Held(Arc<HeldSlot>);

struct HeldSlot {
    slot: tokio::sync::Mutex<Slot>,
    queries: Arc<QueryConnections>,
}

/// What a request holds: its connection, once its first statement took one, and the
/// permit it took it under (none when no connections are set aside for queries).
#[derive(Default)]
struct Slot {
    connection: Option<HeldConnection>,
    /// When that connection left sqlx's pool (see [`KEPT_OUT_OF_POOL_FOR`]).
    out_of_pool_since: Option<Instant>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

enum HeldConnection {
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

/// The databases whose connections a [`Held`] keeps.
trait Holdable: SqlxDatabase {
    fn wrap(connection: sqlx::pool::PoolConnection<Self>) -> HeldConnection;
    fn unwrap(connection: HeldConnection) -> Option<sqlx::pool::PoolConnection<Self>>;
}

impl Holdable for sqlx::Postgres {
    fn wrap(connection: sqlx::pool::PoolConnection<Self>) -> HeldConnection {
        HeldConnection::Postgres(connection)
    }
    fn unwrap(connection: HeldConnection) -> Option<sqlx::pool::PoolConnection<Self>> {
        match connection {
            HeldConnection::Postgres(connection) => Some(connection),
            HeldConnection::Sqlite(_) => None,
        }
    }
}

impl Holdable for sqlx::Sqlite {
    fn wrap(connection: sqlx::pool::PoolConnection<Self>) -> HeldConnection {
        HeldConnection::Sqlite(connection)
    }
    fn unwrap(connection: HeldConnection) -> Option<sqlx::pool::PoolConnection<Self>> {
        match connection {
            HeldConnection::Sqlite(connection) => Some(connection),
            HeldConnection::Postgres(_) => None,
        }
    }
}

/// How long a connection kept for queries may take to answer its ping before it is given
/// up as dead (then the request opens another, within [`ACQUIRE_TIMEOUT`]).
const KEPT_PING_TIMEOUT: Duration = Duration::from_secs(3);

/// How recently a kept connection must have finished a query to be used again without a
/// ping. Under load a kept connection is taken again within a few milliseconds, and its
/// ping was then a whole round trip of a small query's two or three. A connection this
/// fresh is trusted as the connection of a running query is between two of its statements
/// (see [`Held`]): if the database closed it meanwhile (a restart), the statement fails at
/// once and runs again on a fresh connection; if the network went silent in that instant,
/// the statement waits until the request times out, as a running query's next statement
/// would.
const KEPT_TRUSTED_FOR: Duration = Duration::from_millis(100);

/// How long a connection may go from query to query without going back to sqlx's pool: it
/// goes back when the query that holds it ends after this long, or, if it is kept idle, at
/// the next [`QueryConnections::return_stale`]. There sqlx's own rules apply to it again: it
/// is closed once older than the pool's maximum lifetime (30 minutes) and, idle, after the
/// pool's idle timeout (10 minutes), as every pooled connection is. A round trip to the pool
/// costs one ping a minute per connection.
pub const KEPT_OUT_OF_POOL_FOR: Duration = Duration::from_secs(60);

/// A connection kept for queries.
struct Kept {
    connection: HeldConnection,
    /// When the query that last used it ended.
    since: Instant,
    /// When it left sqlx's pool.
    out_of_pool_since: Instant,
}

/// The pooled connections set aside for queries: half the pool (none with a pool of one).
///
/// A query's connection ([`Held`]) comes from here and goes back here, not to sqlx's pool,
/// whose release costs a ping (a round trip and a spawned task) every time. A query gives
/// its connection back only when every statement on it succeeded; a connection whose
/// statement failed goes back to sqlx's pool, which resets it or closes it. A kept
/// connection is pinged before the next query uses it, as sqlx pings one it hands out, so a
/// restarted database is noticed at once: a failed ping drops every kept connection, and
/// the query opens a fresh one.
///
/// At most half the pool's connections are kept or in use by queries at once (a semaphore;
/// a query waits for a permit in turn, within [`ACQUIRE_TIMEOUT`]). The other half serves
/// mutations, which open transactions on sqlx's pool and must never wait for connections
/// that queries keep idle.
pub struct QueryConnections {
    /// Connections that finished a query cleanly; the most recent last.
    kept: std::sync::Mutex<Vec<Kept>>,
    /// One permit per connection queries may hold, kept or in use.
    permits: Arc<tokio::sync::Semaphore>,
    /// How many permits there are (0: queries take connections from sqlx's pool).
    capacity: usize,
    /// [`KEPT_TRUSTED_FOR`] (tests lengthen it).
    trusted_for: Duration,
    /// [`KEPT_OUT_OF_POOL_FOR`] (tests shorten it).
    out_of_pool_for: Duration,
}

impl QueryConnections {
    /// Sets aside half of a pool of `max_connections`.
    pub fn new(max_connections: u32) -> Self {
        let capacity = (max_connections / 2) as usize;
        QueryConnections {
            kept: std::sync::Mutex::new(Vec::with_capacity(capacity)),
            permits: Arc::new(tokio::sync::Semaphore::new(capacity)),
            capacity,
            trusted_for: KEPT_TRUSTED_FOR,
            out_of_pool_for: KEPT_OUT_OF_POOL_FOR,
        }
    }

    fn pop(&self) -> Option<Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Gives the connections kept idle for [`KEPT_OUT_OF_POOL_FOR`] or more back to sqlx's
    /// pool, whose idle timeout and maximum lifetime then apply to them. The server calls it
    /// every [`KEPT_OUT_OF_POOL_FOR`] (see [`QueryConnections::return_stale_periodically`]).
    pub fn return_stale(&self) {
        let stale: Vec<Kept> = {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            // The most recent last: the stale ones are a prefix.
            let fresh = kept.partition_point(|k| k.since.elapsed() >= self.out_of_pool_for);
            kept.drain(..fresh).collect()
        };
        // Dropped outside the lock: each goes back to the pool (sqlx pings it there).
        drop(stale);
    }

    /// Calls [`QueryConnections::return_stale`] every [`KEPT_OUT_OF_POOL_FOR`] until `queries`
    /// is dropped (the server stops).
    pub fn return_stale_periodically(queries: &Arc<QueryConnections>) {
        let queries = Arc::downgrade(queries);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEPT_OUT_OF_POOL_FOR).await;
                let Some(queries) = queries.upgrade() else {
                    return;
                };
                queries.return_stale();
            }
        });
    }

    /// Closes every kept connection: when one failed its ping (the database went away), and
    /// before the pool closes (see [`crate::context::AppState::close`]).
    pub fn close_all(&self) {
        let kept = std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()));
        for Kept { connection, .. } in kept {
            match connection {
                HeldConnection::Postgres(mut c) => c.close_on_drop(),
                HeldConnection::Sqlite(mut c) => c.close_on_drop(),
            }
        }
    }
}

impl Held {
    /// A request's slot, taking its connection from `queries` at its first statement.
    pub fn new(queries: Arc<QueryConnections>) -> Self {
        Held(Arc::new(HeldSlot {
            slot: tokio::sync::Mutex::new(Slot::default()),
            queries,
        }))
    }

    /// The connection for the request's next statement: the one it holds, else a kept one
    /// that is fresh (see [`KEPT_TRUSTED_FOR`]) or answers its ping, else a new one from
    /// `pool`. [`Taken::Trusted`] when it is a kept one used without a ping.
    async fn connection<DB: Holdable>(
        &self,
        slot: &mut Slot,
        pool: &sqlx::Pool<DB>,
    ) -> Result<(sqlx::pool::PoolConnection<DB>, Taken), sqlx::Error> {
        if let Some(connection) = slot.connection.take().and_then(DB::unwrap) {
            return Ok((connection, Taken::Checked));
        }
        slot.out_of_pool_since = Some(Instant::now());
        let queries = &self.0.queries;
        if queries.capacity > 0 && slot.permit.is_none() {
            let permit =
                tokio::time::timeout(ACQUIRE_TIMEOUT, queries.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?
                    .map_err(|_| sqlx::Error::PoolClosed)?;
            slot.permit = Some(permit);
            if let Some(Kept {
                connection,
                since,
                out_of_pool_since,
            }) = queries.pop()
            {
                let mut kept = DB::unwrap(connection).expect("a server has one database");
                slot.out_of_pool_since = Some(out_of_pool_since);
                if since.elapsed() < queries.trusted_for {
                    return Ok((kept, Taken::Trusted));
                }
                let ping = sqlx::Connection::ping(&mut *kept);
                if let Ok(Ok(())) = tokio::time::timeout(KEPT_PING_TIMEOUT, ping).await {
                    return Ok((kept, Taken::Checked));
                }
                slot.out_of_pool_since = Some(Instant::now());
                kept.close_on_drop();
                queries.close_all();
            }
        }
        Ok((pool.acquire().await?, Taken::Checked))
    }
}

/// How [`Held::connection`] found a request's connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Held already, pinged, or fresh from sqlx's pool (which pings it).
    Checked,
    /// Kept for queries and used again at once, without a ping (see [`KEPT_TRUSTED_FOR`]).
    Trusted,
}

/// Whether `err` says the connection itself is gone, rather than that the statement failed:
/// the network or the database closed it, or PostgreSQL said it is closing it (class 57P,
/// "operator intervention": a shutdown or restart, or a terminated backend).
fn connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(err) => err.code().is_some_and(|code| code.starts_with("57P")),
        _ => false,
    }
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        let slot = self.slot.get_mut();
        // Kept before the permit is released, so that the query it wakes finds it; after
        // `KEPT_OUT_OF_POOL_FOR` out of sqlx's pool, it goes back there instead (dropped).
        if let Some(connection) = slot.connection.take()
            && slot.permit.is_some()
            && let Some(out_of_pool_since) = slot.out_of_pool_since
            && out_of_pool_since.elapsed() < self.queries.out_of_pool_for
        {
            self.queries
                .kept
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Kept {
                    connection,
                    since: Instant::now(),
                    out_of_pool_since,
                });
        }
    }
}

/// Runs a read-only `statement` on the request's connection ([`Held`]) or on one from sqlx's
/// pool, and returns its rows, counting it in `statements` (as the metric callback counts
/// the statements sea-orm runs itself). Queries read through [`Reader`], whose sea-orm
/// selects and raw statements come here: the rows are sea-orm's [`QueryResult`]s all the
/// same. Values may be integers (sea-query binds `LIMIT` as an unsigned one), booleans,
/// strings (enums are stored as strings) and bytes: all that orgql's statements bind.
///
/// With `held`, the statement runs on the request's own connection (acquired first if it has
/// none yet), one statement at a time, in a task of its own (see [`Held`]). The connection
/// is taken out of `held` while the statement runs and put back only when it succeeded: a
/// statement that failed hands its connection back to the pool, whose release ping resets
/// it or closes it, and the request's next statement acquires another. A request dropped
/// half-way lets its running statement finish; the connection goes back to the pool with
/// the last `Held`. A statement that finds a kept connection gone (one used without a ping,
/// see [`KEPT_TRUSTED_FOR`]) closes every kept connection and runs once more on a fresh one
/// from the pool: it only reads, so running it again is safe.
pub async fn fetch_all(
    db: &DatabaseConnection,
    statements: &Arc<Statements>,
    statement: Statement,
    held: Option<&Held>,
) -> Result<Vec<QueryResult>, DbErr> {
    tracing::trace!(target: "orgql::sql", sql = %statement.sql);
    let span = crate::telemetry::traces::Span::statement(&statement.sql);
    let started = Instant::now();
    let rows = fetch(db, statements, statement, held).await;
    drop(span);
    statements.read(started.elapsed());
    rows
}

/// [`fetch_all`]'s work, in the statement's span.
async fn fetch(
    db: &DatabaseConnection,
    statements: &Arc<Statements>,
    statement: Statement,
    held: Option<&Held>,
) -> Result<Vec<QueryResult>, DbErr> {
    let values = statement.values.map(|values| values.0).unwrap_or_default();
    // Our own statements (page statements and sea-query's selects), every value bound.
    let sql = sqlx::AssertSqlSafe(statement.sql);
    // On an acquired connection: the pool's own executor would pass every row through one
    // more stream.
    macro_rules! fetch_on {
        ($pool:expr, $database:ty) => {{
            let arguments = arguments::<$database>(values)?;
            let collect = |rows: Vec<<$database as SqlxDatabase>::Row>| {
                rows.into_iter().map(QueryResult::from).collect()
            };
            match held {
                // Boxed, as below: this future is part of every caller's, which move it.
                None => match Box::pin(statements.acquiring($pool.acquire())).await {
                    Ok(mut connection) => {
                        let query = sqlx::query_with(sql, arguments);
                        Box::pin(query.fetch_all(&mut *connection))
                            .await
                            .map(collect)
                    }
                    Err(err) => Err(err),
                },
                Some(held) => {
                    // In a task of its own (see `Held`): it unlocks the connection as soon as
                    // the statement is done, whether or not the caller is polled.
                    let (held, pool) = (held.clone(), $pool.clone());
                    let span = tracing::Span::current();
                    let acquired = statements.clone();
                    // The task's future is boxed, and so are the futures that acquire and
                    // fetch (a few kilobytes each) within it: tokio copies a task's whole
                    // future when it spawns it and again when the task finishes, and a
                    // future is copied whole (at its largest state's size) wherever it moves.
                    let statement = tokio::spawn(Box::pin(
                        async move {
                            let mut slot = held.0.slot.lock().await;
                            let (mut connection, taken) = Box::pin(
                                acquired.acquiring(held.connection::<$database>(&mut slot, &pool)),
                            )
                            .await?;
                            let again = (taken == Taken::Trusted)
                                .then(|| (sql.0.clone(), arguments.clone()));
                            let query = sqlx::query_with(sql, arguments);
                            let mut rows = Box::pin(query.fetch_all(&mut *connection)).await;
                            if let Some((sql, arguments)) = again
                                && let Err(err) = &rows
                                && connection_lost(err)
                            {
                                connection.close_on_drop();
                                drop(connection);
                                held.0.queries.close_all();
                                connection = Box::pin(pool.acquire()).await?;
                                slot.out_of_pool_since = Some(Instant::now());
                                let query = sqlx::query_with(sqlx::AssertSqlSafe(sql), arguments);
                                rows = Box::pin(query.fetch_all(&mut *connection)).await;
                            }
                            if rows.is_ok() {
                                slot.connection = Some(<$database as Holdable>::wrap(connection));
                            }
                            rows
                        }
                        .instrument(span),
                    ));
                    match statement.await {
                        Ok(rows) => rows.map(collect),
                        Err(_) => Err(sqlx::Error::WorkerCrashed),
                    }
                }
            }
        }};
    }
    let rows = match db.get_database_backend() {
        DbBackend::Postgres => {
            fetch_on!(db.get_postgres_connection_pool(), sqlx::Postgres)
        }
        DbBackend::Sqlite => fetch_on!(db.get_sqlite_connection_pool(), sqlx::Sqlite),
        _ => {
            return Err(DbErr::Custom(
                "fetch_all runs on PostgreSQL and SQLite".into(),
            ));
        }
    };
    rows.map_err(|err| DbErr::Query(RuntimeErr::SqlxError(Arc::new(err))))
}

/// The pool as a read-only [`ConnectionTrait`] whose queries run through [`fetch_all`]: what
/// resolvers (`ctx.reader()`) and the loaders and pages (`DbLoader::reader`) read with
/// outside transactions, so that sea-orm's selects
/// (`.one(…)`, `.all(…)`) cost what the loaders' statements cost and are counted the same
/// way. Writing through it is refused: writes belong in a transaction on the pool.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    db: &'a DatabaseConnection,
    statements: &'a Arc<Statements>,
    held: Option<&'a Held>,
}

impl<'a> Reader<'a> {
    /// Reads `db`, counting statements in `statements`; each statement on a connection of
    /// its own from the pool.
    pub fn new(db: &'a DatabaseConnection, statements: &'a Arc<Statements>) -> Self {
        Reader {
            db,
            statements,
            held: None,
        }
    }

    /// The same, running every statement on the connection `held` (if `Some`): one
    /// request's (see [`Held`]).
    pub fn holding(self, held: Option<&'a Held>) -> Self {
        Reader { held, ..self }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Reader<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, _: Statement) -> Result<ExecResult, DbErr> {
        Err(DbErr::Custom("a Reader does not write".into()))
    }

    async fn execute_unprepared(&self, _: &str) -> Result<ExecResult, DbErr> {
        Err(DbErr::Custom("a Reader does not write".into()))
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        Ok(fetch_all(self.db, self.statements, stmt, self.held)
            .await?
            .into_iter()
            .next())
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        fetch_all(self.db, self.statements, stmt, self.held).await
    }
}

/// `values` as sqlx arguments for `DB`.
fn arguments<DB: SqlxDatabase>(values: Vec<Value>) -> Result<DB::Arguments, DbErr>
where
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    for<'q> chrono::DateTime<chrono::Utc>: Encode<'q, DB> + Type<DB>,
{
    let mut arguments = DB::Arguments::default();
    for value in values {
        let added = match value {
            Value::BigInt(Some(v)) => arguments.add(v),
            Value::Int(Some(v)) => arguments.add(v),
            // sea-query's `LIMIT` and `OFFSET` (PostgreSQL has no unsigned types).
            Value::BigUnsigned(Some(v)) => arguments.add(i64::try_from(v).map_err(|_| {
                DbErr::Custom(format!("fetch_all: {v} is out of range for a BIGINT"))
            })?),
            Value::Bool(Some(v)) => arguments.add(v),
            Value::String(v) => arguments.add(v),
            Value::Bytes(v) => arguments.add(v),
            // Timestamps, encoded as sea-orm writes them (invitations' expiry).
            Value::ChronoDateTimeUtc(Some(v)) => arguments.add(v),
            other => {
                return Err(DbErr::Custom(format!(
                    "fetch_all binds no value of this type: {other:?}"
                )));
            }
        };
        added.map_err(|err| DbErr::Custom(err.to_string()))?;
    }
    Ok(arguments)
}

/// Selects every column of `E` from the table aliased `table`, each as `{prefix}{column}`:
/// what sea-orm's [`FromQueryResult`](sea_orm::FromQueryResult) reads as `E::Model` with
/// that prefix (no prefix: under the column's own name).
pub fn select_model<E: EntityTrait>(select: &mut SelectStatement, table: DynIden, prefix: &str) {
    for column in E::Column::iter() {
        select.expr_as(
            Expr::col((table.clone(), column)),
            result_name(column, prefix),
        );
    }
}

/// The name a column is selected under: its own, or `{prefix}{column}`.
fn result_name(column: impl IdenStatic, prefix: &str) -> DynIden {
    if prefix.is_empty() {
        column.into_iden()
    } else {
        Alias::new(format!("{prefix}{}", column.as_str())).into_iden()
    }
}

/// `NULL` for every column of `E`, named as [`select_model`] names them: `E`'s place in a row
/// of a `UNION` branch that has none (read back as `None`).
pub fn select_nulls<E: EntityTrait>(select: &mut SelectStatement, prefix: &str) {
    for column in E::Column::iter() {
        select.expr_as(Expr::null(), result_name(column, prefix));
    }
}

/// Statements whose SQL text depends only on their shape (which of their optional parts they
/// have): sea-query renders a shape's text the first time it is needed, on each database,
/// and every later call binds its own values to that text. Rendering a statement costs more
/// than running a small one; the hot small queries (`viewer`, an organization with its
/// members page) would pay it on every request. The caller lists the values in the order
/// the text binds them; each statement's tests render every shape afresh and compare.
pub struct Shapes(std::sync::Mutex<std::collections::HashMap<(bool, u32), Arc<str>>>);

impl Shapes {
    /// An empty cache (one per statement, in a `static`).
    pub fn new() -> Self {
        Shapes(std::sync::Mutex::default())
    }

    /// The statement of `shape` on `backend` with `values`; `render` builds it (with the
    /// same values) when the shape's text is not known yet.
    pub fn statement(
        &self,
        backend: DbBackend,
        shape: u32,
        values: Vec<Value>,
        render: impl FnOnce() -> SelectStatement,
    ) -> Statement {
        let key = (backend == DbBackend::Postgres, shape);
        let known = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let sql = known.unwrap_or_else(|| {
            let sql: Arc<str> = backend.build(&render()).sql.into();
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, sql.clone());
            sql
        });
        Statement::from_sql_and_values(backend, sql.as_ref(), values)
    }
}

impl Default for Shapes {
    fn default() -> Self {
        Shapes::new()
    }
}

/// Whether the database answers (for `/health`).
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// Convenience: whether `db` is PostgreSQL.
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

#[cfg(test)]
pub(crate) mod tests {
    /// `TEST_DATABASE_URL` when it names a PostgreSQL server; otherwise `None`, after saying
    /// that the calling test is skipped.
    pub(crate) fn postgres_url() -> Option<String> {
        let url = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| url.starts_with("postgres"));
        if url.is_none() {
            eprintln!("skipped: TEST_DATABASE_URL names no PostgreSQL server");
        }
        url
    }

    use std::sync::Arc;

    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    /// A [`super::Reader`] answers sea-orm's selects (with their bound `LIMIT 1`) through
    /// `fetch_all`, counts each, and refuses to write.
    #[tokio::test]
    async fn a_reader_reads_counts_and_refuses_writes() {
        use entity::roles::AccountKind;
        use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

        let db = super::connect("sqlite::memory:", 1).await.unwrap();
        super::migrate(&db).await.unwrap();
        let statements = Arc::new(crate::telemetry::Statements::default());
        let reader = super::Reader::new(&db, &statements);
        let by_key = |key: &str| {
            entity::account::Entity::find()
                .filter(entity::account::Column::UsernameKey.eq(key))
                .filter(entity::account::Column::Kind.eq(AccountKind::Organization))
        };
        assert_eq!(by_key("acme").one(&reader).await.unwrap(), None);
        let inserted = entity::account::ActiveModel {
            kind: Set(AccountKind::Organization),
            username: Set("Acme".into()),
            username_key: Set("acme".into()),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        assert_eq!(
            by_key("acme").one(&reader).await.unwrap(),
            Some(inserted.clone())
        );
        assert_eq!(by_key("acme").all(&reader).await.unwrap(), vec![inserted]);
        assert_eq!(statements.count(), 3);
        assert!(
            reader
                .execute_unprepared("DELETE FROM account")
                .await
                .is_err()
        );
        assert_eq!(by_key("acme").all(&db).await.unwrap().len(), 1);
    }

    /// Waits until `wanted` of `pool`'s connections are idle: connections go back to the
    /// pool in a spawned task.
    async fn until_idle(pool: &sea_orm::sqlx::SqlitePool, wanted: usize) {
        for _ in 0..200 {
            if pool.num_idle() == wanted {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{} idle connections, not {wanted}", pool.num_idle());
    }

    /// Opens both connections of a pool of two and waits until both are idle.
    async fn both_open_and_idle(pool: &sea_orm::sqlx::SqlitePool) {
        let (a, b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
        drop((a, b));
        until_idle(pool, 2).await;
    }

    /// A [`super::Reader`] holding a [`super::Held`] runs every statement on one pooled
    /// connection and keeps it between statements; a failed statement hands it back to the
    /// pool; dropping the `Held` keeps the connection for the next query, which reuses it;
    /// and queries hold at most half the pool at once.
    #[tokio::test]
    async fn a_holding_reader_keeps_one_connection_for_the_next_query() {
        use std::time::Duration;

        let db = super::connect("sqlite::memory:", 2).await.unwrap();
        super::migrate(&db).await.unwrap();
        let pool = db.get_sqlite_connection_pool();
        let idle = |wanted: usize| until_idle(pool, wanted);
        both_open_and_idle(pool).await;

        let queries = Arc::new(super::QueryConnections::new(2));
        let kept = || queries.kept.lock().unwrap().len();
        let statements = Arc::new(crate::telemetry::Statements::default());
        let select = |sql: &str| Statement::from_string(DbBackend::Sqlite, sql.to_owned());
        let held = super::Held::new(queries.clone());
        let reader = super::Reader::new(&db, &statements).holding(Some(&held));
        for _ in 0..3 {
            let rows = reader.query_all_raw(select("SELECT 1")).await.unwrap();
            assert_eq!(rows.len(), 1);
            idle(1).await;
        }
        assert!(reader.query_all_raw(select("SELECT nope")).await.is_err());
        idle(2).await;
        reader.query_all_raw(select("SELECT 1")).await.unwrap();
        idle(1).await;
        drop(held);
        // Kept for the next query, not given back to the pool.
        assert_eq!(kept(), 1);
        idle(1).await;

        // The next query reuses it; a second query at once waits for it (a pool of two sets
        // one aside for queries) until the first is done.
        let first = super::Held::new(queries.clone());
        let reader = super::Reader::new(&db, &statements).holding(Some(&first));
        reader.query_all_raw(select("SELECT 1")).await.unwrap();
        assert_eq!(kept(), 0);
        idle(1).await;
        let second = super::Held::new(queries.clone());
        let waiting = tokio::spawn({
            let (db, second) = (db.clone(), second.clone());
            async move {
                let statements = Arc::new(crate::telemetry::Statements::default());
                let reader = super::Reader::new(&db, &statements).holding(Some(&second));
                reader
                    .query_all_raw(select("SELECT 2"))
                    .await
                    .map(|rows| rows.len())
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "the second query did not wait");
        drop(first);
        assert_eq!(waiting.await.unwrap().unwrap(), 1);
        assert_eq!(kept(), 0);
        idle(1).await;
        drop(second);
        assert_eq!(kept(), 1);
        assert_eq!(statements.count(), 6);
    }

    /// A connection goes from query to query for [`super::KEPT_OUT_OF_POOL_FOR`] at most,
    /// then back to sqlx's pool, whose idle timeout and maximum lifetime apply to it there:
    /// when the query using it ends after that long, or, kept idle that long, when
    /// `return_stale` runs (the server runs it periodically).
    #[tokio::test]
    async fn kept_connections_go_back_to_the_pool_after_a_while() {
        use std::time::Duration;

        let db = super::connect("sqlite::memory:", 2).await.unwrap();
        let pool = db.get_sqlite_connection_pool();
        let idle = |wanted: usize| until_idle(pool, wanted);
        both_open_and_idle(pool).await;

        let out_of_pool_for = Duration::from_millis(300);
        let mut queries = super::QueryConnections::new(2);
        queries.out_of_pool_for = out_of_pool_for;
        let queries = Arc::new(queries);
        let kept = || queries.kept.lock().unwrap().len();
        let statements = Arc::new(crate::telemetry::Statements::default());
        let query = || async {
            let held = super::Held::new(queries.clone());
            let reader = super::Reader::new(&db, &statements).holding(Some(&held));
            let select = Statement::from_string(DbBackend::Sqlite, "SELECT 1");
            assert_eq!(reader.query_all_raw(select).await.unwrap().len(), 1);
        };

        // Kept by the query that took it from the pool, and by the next one.
        query().await;
        assert_eq!(kept(), 1);
        idle(1).await;
        query().await;
        assert_eq!(kept(), 1);
        // Out of the pool for longer than allowed when its next query ends: back there.
        tokio::time::sleep(out_of_pool_for).await;
        query().await;
        assert_eq!(kept(), 0);
        idle(2).await;

        // Kept idle: `return_stale` leaves it until it has been idle that long.
        query().await;
        assert_eq!(kept(), 1);
        queries.return_stale();
        assert_eq!(kept(), 1);
        idle(1).await;
        tokio::time::sleep(out_of_pool_for).await;
        queries.return_stale();
        assert_eq!(kept(), 0);
        idle(2).await;
    }

    /// A kept connection used again without a ping (see [`super::KEPT_TRUSTED_FOR`]) that
    /// the database closed meanwhile (here: its backend terminated, as a restart does) costs
    /// the query nothing: its statement runs again on a fresh connection, and the other kept
    /// connections are dropped. Runs where `TEST_DATABASE_URL` names a PostgreSQL server.
    #[tokio::test]
    async fn a_trusted_kept_connection_that_was_closed_is_replaced() {
        use std::time::Duration;

        use sea_orm::QueryResult;

        let Some(url) = crate::db::tests::postgres_url() else {
            return;
        };
        let db = super::connect(&url, 4).await.unwrap();
        let mut queries = super::QueryConnections::new(4);
        // Long enough that the kept connection is surely used without a ping below.
        queries.trusted_for = Duration::from_secs(600);
        let queries = Arc::new(queries);
        let statements = Arc::new(crate::telemetry::Statements::default());
        let pg = |sql: &str| Statement::from_string(DbBackend::Postgres, sql.to_owned());
        let backend = |rows: Vec<QueryResult>| rows[0].try_get_by_index::<i32>(0).unwrap();
        let query = || async {
            let held = super::Held::new(queries.clone());
            let reader = super::Reader::new(&db, &statements).holding(Some(&held));
            reader.query_all_raw(pg("SELECT pg_backend_pid()")).await
        };

        let first = backend(query().await.unwrap());
        assert_eq!(queries.kept.lock().unwrap().len(), 1);
        // A second query reuses it, unpinged.
        assert_eq!(backend(query().await.unwrap()), first);
        db.execute_raw(pg(&format!("SELECT pg_terminate_backend({first})")))
            .await
            .unwrap();
        let gone = format!("SELECT 1 FROM pg_stat_activity WHERE pid = {first}");
        for _ in 0..200 {
            if db.query_all_raw(pg(&gone)).await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let replaced = backend(query().await.expect("the statement ran again"));
        assert_ne!(replaced, first);
        // Kept in its place, and used again.
        assert_eq!(queries.kept.lock().unwrap().len(), 1);
        assert_eq!(backend(query().await.unwrap()), replaced);
    }

    /// `.cargo/config.toml` builds the bundled SQLite with these options. A build without
    /// them still answers correctly, but slower: it would compile every statement with a
    /// bound `LIMIT` again on each execution (QPSG) and lock a global mutex around each of
    /// SQLite's allocations (MEMSTATUS).
    #[tokio::test]
    async fn bundled_sqlite_is_built_with_our_options() {
        let db = super::connect("sqlite::memory:", 1).await.unwrap();
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA compile_options",
            ))
            .await
            .unwrap();
        let options: Vec<String> = rows
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect();
        for wanted in ["ENABLE_QPSG", "DEFAULT_MEMSTATUS=0"] {
            assert!(
                options.iter().any(|o| o == wanted),
                "{wanted} not in {options:?}"
            );
        }
    }
}
