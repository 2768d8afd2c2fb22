//! orgql's database schema, as sea-orm migrations that run unchanged on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_initial;
mod m20261202_000001_covering_page_indexes;
mod m20261202_000002_member_usernames;
mod m20261203_000001_sqlite_covering_page_indexes;
mod m20261205_000001_rate_limits_and_email_keys;
mod m20261206_000001_api_tokens;
mod m20261207_000001_audit_log;
mod m20261207_000002_invitations;
mod m20261208_000001_audit_notify;
mod m20261209_000001_access_notify;

/// Every migration, in order. The server runs them at start; the `migration` binary runs them
/// by hand (`cargo run -p migration --features cli -- up`).
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_initial::Migration),
            Box::new(m20261202_000001_covering_page_indexes::Migration),
            Box::new(m20261202_000002_member_usernames::Migration),
            Box::new(m20261203_000001_sqlite_covering_page_indexes::Migration),
            Box::new(m20261205_000001_rate_limits_and_email_keys::Migration),
            Box::new(m20261206_000001_api_tokens::Migration),
            Box::new(m20261207_000001_audit_log::Migration),
            Box::new(m20261207_000002_invitations::Migration),
            Box::new(m20261208_000001_audit_notify::Migration),
            Box::new(m20261209_000001_access_notify::Migration),
        ]
    }
}
