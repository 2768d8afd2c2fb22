//! `collaborator`: a user's role on a dataset.

use sea_orm::entity::prelude::*;

use crate::roles::DatasetRole;

/// One collaborator of one dataset.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "collaborator")]
pub struct Model {
    /// The dataset.
    #[sea_orm(primary_key, auto_increment = false)]
    pub dataset_id: i64,
    /// The collaborating user's account id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// The user's `username_key`, copied for the pagination order.
    pub username_key: String,
    /// The collaborator's role.
    pub role: DatasetRole,
    /// The user's `username`, copied (kept in step by a foreign key) so that a page of
    /// collaborators answers `user { username }` without reading the accounts.
    pub username: String,
}

/// Relations of `collaborator`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
