//! `dataset`: a dataset owned by a user or an organization.

use sea_orm::entity::prelude::*;

/// A dataset.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dataset")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The owning account (user or organization).
    pub owner_id: i64,
    /// The name as its creator typed it.
    pub name: String,
    /// `lower(name)`: unique per owner, and the listing order.
    pub name_key: String,
    /// Free text.
    pub description: String,
    /// Whether anyone may see it.
    pub public: bool,
    /// When it was created.
    pub created_at: DateTimeUtc,
}

/// Relations of `dataset`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
