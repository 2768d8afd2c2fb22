//! The role enumerations as stored (upper-case strings, guarded by CHECK constraints).

use sea_orm::entity::prelude::*;

/// The kind of an account: users and organizations share one namespace of usernames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum AccountKind {
    /// A personal account.
    #[sea_orm(string_value = "USER")]
    User,
    /// A shared account that owns datasets.
    #[sea_orm(string_value = "ORGANIZATION")]
    Organization,
}

/// A member's role in an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum OrganizationRole {
    /// May see the organization and its members.
    #[sea_orm(string_value = "MEMBER")]
    Member,
    /// May also manage members, settings and datasets.
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

/// A collaborator's role on a dataset, weakest first (the derived order is meaningful).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DatasetRole {
    /// Views samples.
    #[sea_orm(string_value = "VIEWER")]
    Viewer,
    /// Also labels samples.
    #[sea_orm(string_value = "LABELER")]
    Labeler,
    /// Also reviews samples.
    #[sea_orm(string_value = "REVIEWER")]
    Reviewer,
    /// Also manages issues, sample assignment and (non-admin) collaborators.
    #[sea_orm(string_value = "MANAGER")]
    Manager,
    /// Everything, including settings and deletion.
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}
