//! `organization`: the organization part of a shared account.

use sea_orm::entity::prelude::*;

/// An organization's settings.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organization")]
pub struct Model {
    /// The account's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: i64,
    /// Optional human-readable name.
    pub display_name: Option<String>,
}

/// Relations of `organization`.
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
