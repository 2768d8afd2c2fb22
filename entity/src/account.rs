//! `account`: the one namespace of usernames shared by users and organizations.

use sea_orm::entity::prelude::*;

use crate::roles::AccountKind;

/// A user or organization account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account")]
pub struct Model {
    /// Surrogate key; shared by `user_account` and `organization` rows.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// User or organization.
    pub kind: AccountKind,
    /// The username as its owner typed it.
    pub username: String,
    /// `lower(username)`: unique, and the API's sort key.
    pub username_key: String,
    /// When the account was created.
    pub created_at: DateTimeUtc,
}

/// Relations of `account`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
