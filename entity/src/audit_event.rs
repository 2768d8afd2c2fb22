//! `audit_event`: one change, recorded in the transaction that made it.

use sea_orm::entity::prelude::*;

/// What an audit event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum AuditAction {
    /// An organization was created.
    #[sea_orm(string_value = "ORGANIZATION_CREATED")]
    OrganizationCreated,
    /// An organization's settings changed.
    #[sea_orm(string_value = "ORGANIZATION_UPDATED")]
    OrganizationUpdated,
    /// An organization was deleted (its log goes with it; the event stays in the table).
    #[sea_orm(string_value = "ORGANIZATION_DELETED")]
    OrganizationDeleted,
    /// A member was added.
    #[sea_orm(string_value = "MEMBER_ADDED")]
    MemberAdded,
    /// A member's role or default dataset role changed.
    #[sea_orm(string_value = "MEMBER_UPDATED")]
    MemberUpdated,
    /// A member was removed by an admin.
    #[sea_orm(string_value = "MEMBER_REMOVED")]
    MemberRemoved,
    /// A member left.
    #[sea_orm(string_value = "MEMBER_LEFT")]
    MemberLeft,
    /// Someone was invited.
    #[sea_orm(string_value = "INVITATION_CREATED")]
    InvitationCreated,
    /// An invitation was accepted.
    #[sea_orm(string_value = "INVITATION_ACCEPTED")]
    InvitationAccepted,
    /// An invitation was declined.
    #[sea_orm(string_value = "INVITATION_DECLINED")]
    InvitationDeclined,
    /// An invitation was revoked.
    #[sea_orm(string_value = "INVITATION_REVOKED")]
    InvitationRevoked,
    /// A dataset was created.
    #[sea_orm(string_value = "DATASET_CREATED")]
    DatasetCreated,
    /// A dataset's settings changed.
    #[sea_orm(string_value = "DATASET_UPDATED")]
    DatasetUpdated,
    /// A dataset was deleted.
    #[sea_orm(string_value = "DATASET_DELETED")]
    DatasetDeleted,
    /// A dataset was made as a clone of another.
    #[sea_orm(string_value = "DATASET_CLONED")]
    DatasetCloned,
    /// A dataset moved to another owner.
    #[sea_orm(string_value = "DATASET_TRANSFERRED")]
    DatasetTransferred,
    /// A collaborator was added to a dataset.
    #[sea_orm(string_value = "COLLABORATOR_ADDED")]
    CollaboratorAdded,
    /// A collaborator's role changed.
    #[sea_orm(string_value = "COLLABORATOR_UPDATED")]
    CollaboratorUpdated,
    /// A collaborator was removed.
    #[sea_orm(string_value = "COLLABORATOR_REMOVED")]
    CollaboratorRemoved,
    /// An API token was created.
    #[sea_orm(string_value = "API_TOKEN_CREATED")]
    ApiTokenCreated,
    /// An API token was revoked.
    #[sea_orm(string_value = "API_TOKEN_REVOKED")]
    ApiTokenRevoked,
}

/// One audit event. Names are kept as they were when it happened; ids of accounts that are
/// gone read NULL.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    /// Surrogate key, in commit order within an organization; logs are newest first by it.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// What happened.
    pub action: AuditAction,
    /// When.
    pub created_at: DateTimeUtc,
    /// Who did it (NULL once their account is gone).
    pub actor_id: Option<i64>,
    /// Their username at the time.
    pub actor_username: Option<String>,
    /// The organization whose log shows it: the one concerned, or the owner of the dataset
    /// concerned at the time.
    pub organization_id: Option<i64>,
    /// The dataset whose log shows it (NULL on the former owner's copy of a transfer).
    pub dataset_id: Option<i64>,
    /// Its full name at the time.
    pub dataset_full_name: Option<String>,
    /// The member, invitee or collaborator concerned (NULL once their account is gone).
    pub subject_id: Option<i64>,
    /// Their username at the time.
    pub subject_username: Option<String>,
    /// The new role, where a role changed.
    pub role: Option<String>,
    /// The former role, where a role changed.
    pub previous_role: Option<String>,
}

/// Relations of `audit_event`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
