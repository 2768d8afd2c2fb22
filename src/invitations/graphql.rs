//! GraphQL types and resolvers for invitations.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use entity::invitation;

use crate::accounts::User;
use crate::context::ContextExt;
use crate::error::{ApiError, ApiResult};
use crate::loaders::AccountId;
use crate::organizations::{Member, Organization};
use crate::relay::{
    ConnectionTotal, KeyConnection, NodeKind, PageArgs, global_id, load_page, page_of,
    parse_global_id,
};
use crate::roles::{DatasetRole, OrganizationRole};

/// Where an invitation stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[graphql(remote = "entity::invitation::InvitationState")]
pub enum InvitationState {
    /// Waiting for the invitee to accept or decline.
    Pending,
    /// The invitee accepted: they are a member.
    Accepted,
    /// The invitee declined.
    Declined,
    /// An admin revoked it.
    Revoked,
    /// It expired unanswered (after `--invitation-ttl-days`).
    Expired,
}

/// An invitation to join an organization, which the invitee accepts or declines. Seen by
/// its invitee and the organization's admins only.
pub struct Invitation(pub invitation::Model);

/// An invitation to join an organization, which the invitee accepts or declines. Seen by
/// its invitee and the organization's admins only.
#[Object]
impl Invitation {
    /// The global ID of this invitation (Relay `Node`).
    pub async fn id(&self) -> ID {
        global_id(NodeKind::Invitation, self.0.id)
    }

    /// The organization the invitee is invited to.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        let account = ctx
            .load(AccountId(self.0.organization_id))
            .await?
            .ok_or_else(|| ApiError::internal("invitation without its organization"))?;
        Ok(Organization::from(account))
    }

    /// The user invited.
    async fn invitee(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let account = ctx
            .load(AccountId(self.0.invitee_id))
            .await?
            .ok_or_else(|| ApiError::internal("invitation without its invitee"))?;
        Ok(User::from(account))
    }

    /// The admin who invited them; `null` once their account is gone.
    async fn inviter(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.inviter_id else {
            return Ok(None);
        };
        Ok(ctx.load(AccountId(id)).await?.map(User::from))
    }

    /// The role the invitee gets on accepting.
    async fn role(&self) -> OrganizationRole {
        self.0.role.into()
    }

    /// The default dataset role the invitee gets on accepting; `null`: "None (do not add)".
    async fn default_dataset_role(&self) -> Option<DatasetRole> {
        self.0.default_dataset_role.map(Into::into)
    }

    /// Where it stands now (a pending invitation past its expiry reads `EXPIRED`).
    async fn state(&self) -> InvitationState {
        self.0.state_at(Utc::now()).into()
    }

    /// When it was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it expires, unless answered or revoked before.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
}

/// A page of invitations.
pub type InvitationConnection = KeyConnection<Invitation>;

fn node(row: invitation::Model) -> (String, Invitation) {
    (row.id.to_string(), Invitation(row))
}

/// One page of `organization`'s invitations in `state` (`None`: all), batched.
pub(crate) fn organization_invitations<'a>(
    ctx: &'a Context<'_>,
    organization: i64,
    state: Option<InvitationState>,
    args: &'a PageArgs,
) -> BoxFuture<'a, ApiResult<InvitationConnection>> {
    let state = state.map(Into::into);
    Box::pin(async move {
        let key =
            super::OrganizationInvitationPage(crate::pages::PageKey::of(organization, args), state);
        let rows = ctx
            .load(key)
            .await?
            .map(std::sync::Arc::unwrap_or_clone)
            .unwrap_or_default();
        Ok(page_of(
            args,
            rows,
            ConnectionTotal::OrganizationInvitations(organization, state),
            node,
        ))
    })
}

/// One page of `user`'s pending invitations, batched.
pub(crate) fn user_invitations<'a>(
    ctx: &'a Context<'_>,
    user: i64,
    args: &'a PageArgs,
) -> BoxFuture<'a, ApiResult<InvitationConnection>> {
    load_page(
        ctx,
        args,
        super::UserInvitationPage::of(user, args),
        ConnectionTotal::UserInvitations(user),
        node,
    )
}

/// Input of `inviteMember`.
#[derive(InputObject)]
pub struct InviteMemberInput {
    /// The organization's username; the viewer must be its admin.
    pub organization: String,
    /// The username of the user to invite.
    pub username: String,
    /// The role they get on accepting.
    #[graphql(default_with = "OrganizationRole::Member")]
    pub role: OrganizationRole,
    /// The default dataset role they get on accepting; `null` (the default): "None (do not
    /// add)".
    pub default_dataset_role: Option<DatasetRole>,
}

/// Result of `inviteMember`.
#[derive(SimpleObject)]
pub struct InviteMemberPayload {
    /// The new, pending invitation.
    pub invitation: Invitation,
}

/// Input of `acceptInvitation`.
#[derive(InputObject)]
pub struct AcceptInvitationInput {
    /// The invitation's global ID.
    pub id: ID,
}

/// Result of `acceptInvitation`.
#[derive(SimpleObject)]
pub struct AcceptInvitationPayload {
    /// The new membership.
    pub member: Member,
}

/// Input of `declineInvitation`.
#[derive(InputObject)]
pub struct DeclineInvitationInput {
    /// The invitation's global ID.
    pub id: ID,
}

/// Result of `declineInvitation`.
#[derive(SimpleObject)]
pub struct DeclineInvitationPayload {
    /// The invitation, now `DECLINED`.
    pub invitation: Invitation,
}

/// Input of `revokeInvitation`.
#[derive(InputObject)]
pub struct RevokeInvitationInput {
    /// The invitation's global ID.
    pub id: ID,
}

/// Result of `revokeInvitation`.
#[derive(SimpleObject)]
pub struct RevokeInvitationPayload {
    /// The invitation, now `REVOKED`.
    pub invitation: Invitation,
}

/// The invitation id in a global ID, or `NOT_FOUND`.
fn invitation_id(id: &ID) -> ApiResult<i64> {
    match parse_global_id(id) {
        Some((NodeKind::Invitation, id)) => Ok(id),
        _ => Err(ApiError::NotFound("no such invitation".into())),
    }
}

/// Mutations about invitations.
#[derive(Default)]
pub struct InvitationMutation;

#[Object]
impl InvitationMutation {
    /// Invites a user to an organization (its admins only); they become a member when they
    /// accept. `CONFLICT` when they are a member already or have a pending invitation.
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMemberInput,
    ) -> async_graphql::Result<InviteMemberPayload> {
        let actor = ctx.viewer().actor()?;
        let invitation = super::invite(
            ctx.db(),
            actor,
            &input.organization,
            &input.username,
            input.role.into(),
            input.default_dataset_role.map(Into::into),
            ctx.state().invitation_ttl_days,
        )
        .await?;
        Ok(InviteMemberPayload {
            invitation: Invitation(invitation),
        })
    }

    /// Accepts an invitation (its invitee only): the membership with the invited roles.
    /// `CONFLICT` unless it is pending and unexpired.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> async_graphql::Result<AcceptInvitationPayload> {
        let actor = ctx.viewer().actor()?;
        let member = super::accept(ctx.db(), actor, invitation_id(&input.id)?).await?;
        Ok(AcceptInvitationPayload {
            member: Member::new(member),
        })
    }

    /// Declines an invitation (its invitee only). `CONFLICT` unless it is pending and
    /// unexpired.
    async fn decline_invitation(
        &self,
        ctx: &Context<'_>,
        input: DeclineInvitationInput,
    ) -> async_graphql::Result<DeclineInvitationPayload> {
        let actor = ctx.viewer().actor()?;
        let invitation = super::decline(ctx.db(), actor, invitation_id(&input.id)?).await?;
        Ok(DeclineInvitationPayload {
            invitation: Invitation(invitation),
        })
    }

    /// Revokes a pending invitation (an admin of its organization).
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: RevokeInvitationInput,
    ) -> async_graphql::Result<RevokeInvitationPayload> {
        let actor = ctx.viewer().actor()?;
        let invitation = super::revoke(ctx.db(), actor, invitation_id(&input.id)?).await?;
        Ok(RevokeInvitationPayload {
            invitation: Invitation(invitation),
        })
    }
}
