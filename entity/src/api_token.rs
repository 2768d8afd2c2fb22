//! `api_token`: a user's API token, for scripts and pipelines.

use sea_orm::entity::prelude::*;

/// One API token. The secret itself is never stored: only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_token")]
pub struct Model {
    /// Surrogate key; tokens are listed newest first by it.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The user the token acts for.
    pub user_id: i64,
    /// The organization the token is restricted to, if any.
    pub organization_id: Option<i64>,
    /// The name its owner gave it.
    pub name: String,
    /// The `READ` scope: queries.
    pub can_read: bool,
    /// The `WRITE` scope: queries and mutations.
    pub can_write: bool,
    /// The SHA-256 of the secret, in lowercase hex: unique.
    pub secret_hash: String,
    /// When it was created.
    pub created_at: DateTimeUtc,
    /// When it stops working.
    pub expires_at: DateTimeUtc,
    /// When it was last used (written at most once a minute).
    pub last_used_at: Option<DateTimeUtc>,
    /// When it was revoked; a revoked token never works again.
    pub revoked_at: Option<DateTimeUtc>,
}

/// Relations of `api_token`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
