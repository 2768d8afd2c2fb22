//! `invitation`: an invitation to join an organization.

use sea_orm::entity::prelude::*;

use crate::roles::{DatasetRole, OrganizationRole};

/// Where an invitation stands, as stored. A PENDING one past its expiry reads EXPIRED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum InvitationState {
    /// Waiting for the invitee.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// The invitee accepted: a member now.
    #[sea_orm(string_value = "ACCEPTED")]
    Accepted,
    /// The invitee declined.
    #[sea_orm(string_value = "DECLINED")]
    Declined,
    /// An admin revoked it.
    #[sea_orm(string_value = "REVOKED")]
    Revoked,
    /// It expired before the invitee answered.
    #[sea_orm(string_value = "EXPIRED")]
    Expired,
}

/// One invitation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitation")]
pub struct Model {
    /// Surrogate key; lists are newest first by it.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The organization.
    pub organization_id: i64,
    /// The user invited.
    pub invitee_id: i64,
    /// The admin who invited them (NULL once their account is gone).
    pub inviter_id: Option<i64>,
    /// The role they get on accepting.
    pub role: OrganizationRole,
    /// The default dataset role they get on accepting.
    pub default_dataset_role: Option<DatasetRole>,
    /// Where it stands (see [`InvitationState`]).
    pub state: InvitationState,
    /// When it was made.
    pub created_at: DateTimeUtc,
    /// When it expires, unless answered or revoked before.
    pub expires_at: DateTimeUtc,
}

impl Model {
    /// Its state at `now`: a PENDING invitation past its expiry is EXPIRED.
    pub fn state_at(&self, now: DateTimeUtc) -> InvitationState {
        match self.state {
            InvitationState::Pending if self.expires_at <= now => InvitationState::Expired,
            state => state,
        }
    }
}

/// Relations of `invitation`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
