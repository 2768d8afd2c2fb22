//! Live updates on PostgreSQL, what access depends on: every change to a membership, to an
//! account's session generation (or the account's deletion) and to an API token notifies the
//! channel `orgql_access` with what changed (`m:<organization>:<user>`, `u:<user>`,
//! `t:<token>`). Triggers catch every way a row changes, cascades included. Delivered at
//! commit, in commit order with `orgql_audit`'s notifications, they tell an instance which
//! of the access facts it keeps between batches of events are stale. SQLite needs nothing:
//! its one instance keeps none.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The notifying triggers on `membership`, `user_account` and `api_token` (PostgreSQL only).
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261209_000001_access_notify"
    }
}

/// (trigger, table, events, the payload for a row `r`).
const TRIGGERS: [(&str, &str, &str, &str); 3] = [
    (
        "membership_access_notify",
        "membership",
        "INSERT OR UPDATE OR DELETE",
        "'m:' || r.organization_id || ':' || r.user_id",
    ),
    (
        "user_account_access_notify",
        "user_account",
        "UPDATE OF session_generation OR DELETE",
        "'u:' || r.account_id",
    ),
    (
        "api_token_access_notify",
        "api_token",
        // Not `last_used_at`, which every use of a token moves.
        "UPDATE OF user_id, organization_id, expires_at, revoked_at OR DELETE",
        "'t:' || r.id",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (trigger, table, events, payload) in TRIGGERS {
            // The row before the change and the row after it (when there is one): a change
            // that moved a row notifies for both places.
            db.execute_unprepared(&format!(
                "CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
                 DECLARE r {table};
                 BEGIN
                   IF TG_OP <> 'INSERT' THEN
                     r := OLD;
                     PERFORM pg_notify('orgql_access', {payload});
                   END IF;
                   IF TG_OP <> 'DELETE' THEN
                     r := NEW;
                     PERFORM pg_notify('orgql_access', {payload});
                   END IF;
                   RETURN NULL;
                 END $$"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {trigger} AFTER {events} ON {table}
                 FOR EACH ROW EXECUTE FUNCTION {trigger}()"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (trigger, table, _, _) in TRIGGERS {
            db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {trigger} ON {table}"))
                .await?;
            db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {trigger}()"))
                .await?;
        }
        Ok(())
    }
}
