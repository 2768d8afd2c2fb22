//! The role enumerations as the API spells them; conversions to and from the stored ones.

use async_graphql::Enum;

/// A member's role in an organization.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[graphql(remote = "entity::roles::OrganizationRole")]
pub enum OrganizationRole {
    /// Sees the organization, its members and their roles.
    Member,
    /// Also creates organization datasets, manages members and settings, and may delete the
    /// organization.
    Admin,
}

/// A collaborator's role on a dataset, from least to most privileged.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[graphql(remote = "entity::roles::DatasetRole")]
pub enum DatasetRole {
    /// Views samples.
    Viewer,
    /// Views and labels samples.
    Labeler,
    /// Also reviews samples.
    Reviewer,
    /// Also resolves issues, assigns samples, and adds, updates and removes collaborators
    /// (but never grants, changes or removes `ADMIN`).
    Manager,
    /// Everything: also adds and deletes samples, manages releases and settings, and deletes
    /// the dataset.
    Admin,
}
