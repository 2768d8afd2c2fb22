//! `user_account`: the personal part of a user's account.

use sea_orm::entity::prelude::*;

/// A user's credentials and email.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_account")]
pub struct Model {
    /// The account's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: i64,
    /// The email as the user typed it.
    pub email: String,
    /// The email with its ASCII letters lowercased: unique.
    pub email_key: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    /// Counts the user's "sign out everywhere"s and password changes: a sign-in token
    /// carries the generation it was issued in, and only the current one is accepted.
    pub session_generation: i64,
}

/// Relations of `user_account`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The shared account row.
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::Id",
        on_delete = "Cascade"
    )]
    Account,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
