//! Live updates on PostgreSQL: every statement that inserts audit events notifies the channel
//! `orgql_audit` with the lowest and highest id it inserted (`"12-15"`). PostgreSQL delivers
//! a notification only when its transaction commits, in commit order, so an instance that
//! listens learns of exactly the committed events and reads them from the table. SQLite
//! needs nothing: one instance reads its own file.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The notifying trigger on `audit_event` (PostgreSQL only).
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000001_audit_notify"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE FUNCTION orgql_audit_notify() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               PERFORM pg_notify('orgql_audit', (SELECT min(id) || '-' || max(id) FROM new_events));
               RETURN NULL;
             END $$",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER audit_event_notify AFTER INSERT ON audit_event
             REFERENCING NEW TABLE AS new_events
             FOR EACH STATEMENT EXECUTE FUNCTION orgql_audit_notify()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS audit_event_notify ON audit_event")
            .await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS orgql_audit_notify()")
            .await?;
        Ok(())
    }
}
