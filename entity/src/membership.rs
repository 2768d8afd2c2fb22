//! `membership`: a user's membership of an organization.

use sea_orm::entity::prelude::*;

use crate::roles::{DatasetRole, OrganizationRole};

/// One member of one organization.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "membership")]
pub struct Model {
    /// The organization's account id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: i64,
    /// The member's account id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// The member's `username_key`, copied for the pagination order (kept in step by a
    /// foreign key with ON UPDATE CASCADE).
    pub username_key: String,
    /// Member or admin.
    pub role: OrganizationRole,
    /// The role the member gets on new organization datasets; `None` means "do not add".
    pub default_dataset_role: Option<DatasetRole>,
    /// When the user joined.
    pub joined_at: DateTimeUtc,
    /// The user's `username`, copied (kept in step by a foreign key) so that a page of
    /// members answers `user { username }` without reading the accounts.
    pub username: String,
}

/// Relations of `membership`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
