//! Rate limits kept in the database, and email keys that both databases agree on.
//!
//! `rate_limit` holds one row per limited thing (an account's sign-ins, an address's
//! sign-ups…): its GCRA "theoretical arrival time", so every instance on one database
//! shares one allowance (API.md, "Authentication").
//!
//! Email keys were pinned by a CHECK to the database's `lower(email)`, which SQLite applies
//! to ASCII letters only and PostgreSQL to every letter its locale knows, while the
//! application lowercased every letter: a non-ASCII address broke the CHECK on SQLite. The
//! key is now the address with its ASCII letters lowercased, computed by the application
//! alone (the only writer), the same on both databases. On PostgreSQL the CHECK goes and
//! existing keys are recomputed that way; SQLite's own `lower()` already computes exactly
//! that, so its CHECK stays and holds.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

/// `rate_limit`, and ASCII-lowercased email keys.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000001_rate_limits_and_email_keys"
    }
}

const ASCII_LOWER_EMAIL: &str =
    "translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateLimit::Table)
                    .col(
                        ColumnDef::new(RateLimit::Bucket)
                            .string_len(200)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RateLimit::Tat).big_integer().not_null())
                    .col(ColumnDef::new(RateLimit::Allowed).boolean().not_null())
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("ALTER TABLE user_account DROP CONSTRAINT user_account_check")
                .await?;
            db.execute_unprepared(&format!(
                "UPDATE user_account SET email_key = {ASCII_LOWER_EMAIL}"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("UPDATE user_account SET email_key = lower(email)")
                .await?;
            db.execute_unprepared(
                "ALTER TABLE user_account ADD CONSTRAINT user_account_check \
                 CHECK (email_key = lower(email))",
            )
            .await?;
        }
        manager
            .drop_table(Table::drop().table(RateLimit::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateLimit {
    Table,
    Bucket,
    Tat,
    Allowed,
}
