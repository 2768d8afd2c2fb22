//! Covering indexes for the member and collaborator pages, on SQLite.
//!
//! SQLite has no `INCLUDE`, so the second migration left its page indexes as they were: a
//! page of members was a range scan of `(organization_id, username_key)` and then, for every
//! row, a look-up of the row in the table. An index on the key columns followed by every
//! other column of the page answers the page from the index alone ("USING COVERING INDEX").
//! The unique page indexes stay as they are (they
//! keep the key unique); these sit beside them. PostgreSQL's page indexes already cover
//! their pages: nothing changes there.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

/// Covering page indexes (SQLite only).
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000001_sqlite_covering_page_indexes"
    }
}

/// The indexes: each page's key, then the rest of the page's columns.
const UP: &[&str] = &[
    r#"CREATE INDEX "membership_page" ON "membership"
       ("organization_id", "username_key", "user_id", "role", "default_dataset_role", "joined_at", "username")"#,
    r#"CREATE INDEX "collaborator_page" ON "collaborator"
       ("dataset_id", "username_key", "user_id", "role", "username")"#,
];

const DOWN: &[&str] = &[
    r#"DROP INDEX "collaborator_page""#,
    r#"DROP INDEX "membership_page""#,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}

/// Runs each of `statements` in order, on SQLite only.
async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}
