//! Memberships and collaborator entries copy their user's `username`, as they already copy
//! its `username_key`.
//!
//! A page of members answers `user { id username }` for every row. Reading the username
//! from the account cost one index probe per row (1,000 per dashboard request), about half
//! of PostgreSQL's work for that request; with the username in the row, a page is one index
//! range scan and nothing else. A composite foreign key `(user_id, username)` →
//! `account (id, username)` with ON UPDATE CASCADE keeps the copy in step, as the one on
//! `(user_id, username_key)` keeps the key: the database, not the application, guarantees
//! that the copy is the account's username.
//!
//! On PostgreSQL the column is added in place and the covering page indexes include it
//! (`account_page_user`, which only pages used, goes). SQLite cannot add a foreign key to a
//! table, so there each table is rebuilt (created anew, copied, swapped) with the same
//! constraints and indexes plus the copy.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

/// The user's username on memberships and collaborator entries.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000002_member_usernames"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too (sea-orm-migration wraps only PostgreSQL's by
    /// default): a rebuild must not stop halfway, and each statement must run on the same
    /// connection, which sees the tables the statement before it dropped and created.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        run(manager, sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_DOWN,
            _ => SQLITE_DOWN,
        };
        run(manager, sql).await
    }
}

/// Runs each of `statements` in order.
async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

const POSTGRES_UP: &[&str] = &[
    r#"CREATE UNIQUE INDEX account_id_username ON account (id, username)"#,
    r#"ALTER TABLE membership ADD COLUMN username varchar(39)"#,
    r#"UPDATE membership m SET username = a.username FROM account a WHERE a.id = m.user_id"#,
    r#"ALTER TABLE membership ALTER COLUMN username SET NOT NULL"#,
    r#"ALTER TABLE membership ADD CONSTRAINT membership_username FOREIGN KEY (user_id, username)
       REFERENCES account (id, username) ON DELETE CASCADE ON UPDATE CASCADE"#,
    r#"ALTER TABLE collaborator ADD COLUMN username varchar(39)"#,
    r#"UPDATE collaborator c SET username = a.username FROM account a WHERE a.id = c.user_id"#,
    r#"ALTER TABLE collaborator ALTER COLUMN username SET NOT NULL"#,
    r#"ALTER TABLE collaborator ADD CONSTRAINT collaborator_username FOREIGN KEY (user_id, username)
       REFERENCES account (id, username) ON DELETE CASCADE ON UPDATE CASCADE"#,
    r#"DROP INDEX membership_organization_username"#,
    r#"CREATE UNIQUE INDEX membership_organization_username ON membership (organization_id, username_key)
       INCLUDE (user_id, role, default_dataset_role, joined_at, username)"#,
    r#"DROP INDEX collaborator_dataset_username"#,
    r#"CREATE UNIQUE INDEX collaborator_dataset_username ON collaborator (dataset_id, username_key)
       INCLUDE (user_id, role, username)"#,
    r#"DROP INDEX account_page_user"#,
];

const POSTGRES_DOWN: &[&str] = &[
    r#"CREATE INDEX account_page_user ON account (id) INCLUDE (username, created_at)"#,
    r#"DROP INDEX collaborator_dataset_username"#,
    r#"CREATE UNIQUE INDEX collaborator_dataset_username ON collaborator (dataset_id, username_key)
       INCLUDE (user_id, role)"#,
    r#"DROP INDEX membership_organization_username"#,
    r#"CREATE UNIQUE INDEX membership_organization_username ON membership (organization_id, username_key)
       INCLUDE (user_id, role, default_dataset_role, joined_at)"#,
    r#"ALTER TABLE collaborator DROP COLUMN username"#,
    r#"ALTER TABLE membership DROP COLUMN username"#,
    r#"DROP INDEX account_id_username"#,
];

const SQLITE_UP: &[&str] = &[
    r#"CREATE UNIQUE INDEX "account_id_username" ON "account" ("id", "username")"#,
    r#"CREATE TABLE "membership_new" ( "organization_id" integer NOT NULL, "user_id" integer NOT NULL,
       "username_key" varchar(39) NOT NULL, "role" varchar(16) NOT NULL,
       "default_dataset_role" varchar(16) NULL, "joined_at" timestamp_with_timezone_text NOT NULL,
       "username" varchar(39) NOT NULL,
       PRIMARY KEY ("organization_id", "user_id"),
       FOREIGN KEY ("organization_id") REFERENCES "organization" ("account_id") ON DELETE CASCADE,
       FOREIGN KEY ("user_id") REFERENCES "user_account" ("account_id") ON DELETE CASCADE,
       FOREIGN KEY ("user_id", "username_key") REFERENCES "account" ("id", "username_key") ON DELETE CASCADE ON UPDATE CASCADE,
       FOREIGN KEY ("user_id", "username") REFERENCES "account" ("id", "username") ON DELETE CASCADE ON UPDATE CASCADE,
       CHECK (role IN ('MEMBER', 'ADMIN')),
       CHECK (default_dataset_role IS NULL OR default_dataset_role IN ('VIEWER', 'LABELER', 'REVIEWER', 'MANAGER', 'ADMIN')) )"#,
    r#"INSERT INTO "membership_new" SELECT m."organization_id", m."user_id", m."username_key", m."role",
       m."default_dataset_role", m."joined_at", a."username"
       FROM "membership" m JOIN "account" a ON a."id" = m."user_id""#,
    r#"DROP TABLE "membership""#,
    r#"ALTER TABLE "membership_new" RENAME TO "membership""#,
    MEMBERSHIP_PAGE_INDEX,
    MEMBERSHIP_USER_INDEX,
    MEMBERSHIP_ROLE_INDEX,
    r#"CREATE TABLE "collaborator_new" ( "dataset_id" integer NOT NULL, "user_id" integer NOT NULL,
       "username_key" varchar(39) NOT NULL, "role" varchar(16) NOT NULL,
       "username" varchar(39) NOT NULL,
       PRIMARY KEY ("dataset_id", "user_id"),
       FOREIGN KEY ("dataset_id") REFERENCES "dataset" ("id") ON DELETE CASCADE,
       FOREIGN KEY ("user_id") REFERENCES "user_account" ("account_id") ON DELETE CASCADE,
       FOREIGN KEY ("user_id", "username_key") REFERENCES "account" ("id", "username_key") ON DELETE CASCADE ON UPDATE CASCADE,
       FOREIGN KEY ("user_id", "username") REFERENCES "account" ("id", "username") ON DELETE CASCADE ON UPDATE CASCADE,
       CHECK (role IN ('VIEWER', 'LABELER', 'REVIEWER', 'MANAGER', 'ADMIN')) )"#,
    r#"INSERT INTO "collaborator_new" SELECT c."dataset_id", c."user_id", c."username_key", c."role",
       a."username"
       FROM "collaborator" c JOIN "account" a ON a."id" = c."user_id""#,
    r#"DROP TABLE "collaborator""#,
    r#"ALTER TABLE "collaborator_new" RENAME TO "collaborator""#,
    COLLABORATOR_PAGE_INDEX,
    COLLABORATOR_USER_INDEX,
];

const SQLITE_DOWN: &[&str] = &[
    r#"CREATE TABLE "membership_old" ( "organization_id" integer NOT NULL, "user_id" integer NOT NULL,
       "username_key" varchar(39) NOT NULL, "role" varchar(16) NOT NULL,
       "default_dataset_role" varchar(16) NULL, "joined_at" timestamp_with_timezone_text NOT NULL,
       PRIMARY KEY ("organization_id", "user_id"),
       FOREIGN KEY ("organization_id") REFERENCES "organization" ("account_id") ON DELETE CASCADE,
       FOREIGN KEY ("user_id") REFERENCES "user_account" ("account_id") ON DELETE CASCADE,
       FOREIGN KEY ("user_id", "username_key") REFERENCES "account" ("id", "username_key") ON DELETE CASCADE ON UPDATE CASCADE,
       CHECK (role IN ('MEMBER', 'ADMIN')),
       CHECK (default_dataset_role IS NULL OR default_dataset_role IN ('VIEWER', 'LABELER', 'REVIEWER', 'MANAGER', 'ADMIN')) )"#,
    r#"INSERT INTO "membership_old" SELECT "organization_id", "user_id", "username_key", "role",
       "default_dataset_role", "joined_at" FROM "membership""#,
    r#"DROP TABLE "membership""#,
    r#"ALTER TABLE "membership_old" RENAME TO "membership""#,
    MEMBERSHIP_PAGE_INDEX,
    MEMBERSHIP_USER_INDEX,
    MEMBERSHIP_ROLE_INDEX,
    r#"CREATE TABLE "collaborator_old" ( "dataset_id" integer NOT NULL, "user_id" integer NOT NULL,
       "username_key" varchar(39) NOT NULL, "role" varchar(16) NOT NULL,
       PRIMARY KEY ("dataset_id", "user_id"),
       FOREIGN KEY ("dataset_id") REFERENCES "dataset" ("id") ON DELETE CASCADE,
       FOREIGN KEY ("user_id") REFERENCES "user_account" ("account_id") ON DELETE CASCADE,
       FOREIGN KEY ("user_id", "username_key") REFERENCES "account" ("id", "username_key") ON DELETE CASCADE ON UPDATE CASCADE,
       CHECK (role IN ('VIEWER', 'LABELER', 'REVIEWER', 'MANAGER', 'ADMIN')) )"#,
    r#"INSERT INTO "collaborator_old" SELECT "dataset_id", "user_id", "username_key", "role"
       FROM "collaborator""#,
    r#"DROP TABLE "collaborator""#,
    r#"ALTER TABLE "collaborator_old" RENAME TO "collaborator""#,
    COLLABORATOR_PAGE_INDEX,
    COLLABORATOR_USER_INDEX,
    r#"DROP INDEX "account_id_username""#,
];

// The SQLite indexes of the rebuilt tables, as the initial migration made them.
const MEMBERSHIP_PAGE_INDEX: &str = r#"CREATE UNIQUE INDEX "membership_organization_username" ON "membership" ("organization_id", "username_key")"#;
const MEMBERSHIP_USER_INDEX: &str = r#"CREATE INDEX "membership_user" ON "membership" ("user_id")"#;
const MEMBERSHIP_ROLE_INDEX: &str =
    r#"CREATE INDEX "membership_organization_role" ON "membership" ("organization_id", "role")"#;
const COLLABORATOR_PAGE_INDEX: &str = r#"CREATE UNIQUE INDEX "collaborator_dataset_username" ON "collaborator" ("dataset_id", "username_key")"#;
const COLLABORATOR_USER_INDEX: &str =
    r#"CREATE INDEX "collaborator_user" ON "collaborator" ("user_id")"#;
