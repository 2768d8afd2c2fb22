//! Connecting to the database, running migrations, and the server's own settings.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    Set, SqliteTransactionMode, TransactionOptions,
};

use entity::server_setting;

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

/// Whether the database answers (for `/health`).
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// Convenience: whether `db` is PostgreSQL.
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

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
