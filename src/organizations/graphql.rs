//! GraphQL types and resolvers for organizations and members.

use std::borrow::Cow;

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use entity::{account, membership, organization};

use crate::accounts::User;
use crate::context::ContextExt;
use crate::datasets::{self, DatasetConnection};
use crate::eager::Eager;
use crate::error::ApiError;
use crate::loaders::{MembershipKey, OrganizationRowId, known_or_load};
use crate::newtypes::Username;
use crate::pages::MemberPage;
use crate::policy::{OrgAction, org_allows};
use crate::relay::{
    ConnectionTotal, KeyConnection, NodeKind, PageArgs, global_id, load_page, page_of,
};
use crate::roles::{DatasetRole, OrganizationRole};

/// A shared account that owns datasets; users join it as members.
#[derive(Clone)]
pub struct Organization(
    pub account::Model,
    /// Its settings row, when the statement that read the account read it too (the
    /// viewer's memberships do): `displayName` then needs no statement of its own.
    Option<organization::Model>,
);

impl From<account::Model> for Organization {
    fn from(account: account::Model) -> Self {
        Organization(account, None)
    }
}

impl Organization {
    /// The organization `account`, with its settings `row` if the same statement read it.
    pub fn with_row(account: account::Model, row: Option<organization::Model>) -> Self {
        debug_assert!(row.as_ref().is_none_or(|r| r.account_id == account.id));
        Organization(account, row)
    }
}

/// A page of an organization's members.
pub type MemberConnection = KeyConnection<Member>;

impl Organization {
    pub(crate) async fn viewer_role_inner(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<entity::roles::OrganizationRole>> {
        let Some(viewer) = ctx.viewer().user_id_within(self.0.id) else {
            return Ok(None);
        };
        let key = MembershipKey {
            organization_id: self.0.id,
            user_id: viewer,
        };
        if let Some(known) = ctx.loader().loader().known_membership(&key) {
            return Ok(known.map(|m| m.role));
        }
        let member = ctx.load(key).await?;
        Ok(member.map(|m| m.role))
    }
}

/// A shared account that owns datasets; users join it as members.
#[Object]
impl Organization {
    /// The global ID of this organization (Relay `Node`).
    pub async fn id(&self) -> ID {
        global_id(NodeKind::Organization, self.0.id)
    }

    /// The organization's username, as typed when it was created; unique case-insensitively
    /// across users and organizations.
    pub async fn username(&self) -> &str {
        &self.0.username
    }

    /// A human-readable name, if one was set.
    async fn display_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        if let Some(row) = &self.1 {
            return Ok(row.display_name.clone());
        }
        let row = ctx.load(OrganizationRowId(self.0.id)).await?;
        Ok(row.and_then(|r| r.display_name))
    }

    /// When the organization was created.
    pub async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The viewer's role in this organization; `null` when the viewer is not a member (or
    /// not signed in).
    async fn viewer_role(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<OrganizationRole>> {
        Ok(self.viewer_role_inner(ctx).await?.map(Into::into))
    }

    /// The members, ordered by username (case-insensitive). Members only: `FORBIDDEN` for
    /// signed-in non-members, `UNAUTHENTICATED` without a token.
    #[graphql(complexity = "crate::relay::connection_complexity(first, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many members to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return members after this cursor (an `endCursor`).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<MemberConnection> {
        if ctx.viewer().user_id_within(self.0.id).is_none() {
            return Err(ApiError::sign_in_required().into());
        }
        if !org_allows(
            Box::pin(self.viewer_role_inner(ctx)).await?,
            OrgAction::ListMembers,
        ) {
            return Err(ApiError::Forbidden(
                "only members may see the organization's members".into(),
            )
            .into());
        }
        let args = PageArgs::parse(first, after)?;
        let key = MemberPage::of(self.0.id, &args);
        let total = ConnectionTotal::Members(self.0.id);
        let node = |m: membership::Model| (m.username_key.clone(), Member::new(m));
        // Read with the organization (see `organization(username:)`), or loaded now.
        if let Some(rows) = ctx.loader().loader().take_member_page(&key) {
            return Ok(page_of(&args, rows, total, node));
        }
        Ok(load_page(ctx, &args, key, total, node).await?)
    }

    /// The API tokens restricted to this organization, newest first (revoked ones are
    /// gone). Admins only: `FORBIDDEN` for others, `UNAUTHENTICATED` without a token.
    #[graphql(complexity = "crate::relay::connection_complexity(first, child_complexity)")]
    async fn api_tokens(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many tokens to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return tokens after this cursor (an `endCursor`).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<crate::tokens::ApiTokenConnection> {
        if ctx.viewer().user_id_within(self.0.id).is_none() {
            return Err(ApiError::sign_in_required().into());
        }
        let role = Box::pin(self.viewer_role_inner(ctx)).await?;
        if !org_allows(role, OrgAction::ManageTokens) {
            return Err(ApiError::Forbidden(
                "only an admin of the organization may see its API tokens".into(),
            )
            .into());
        }
        let args = PageArgs::parse(first, after)?;
        Ok(crate::tokens::organization_tokens(ctx, self.0.id, &args).await?)
    }

    /// The organization's invitations, newest first, in one state or all. Admins only:
    /// `FORBIDDEN` for others, `UNAUTHENTICATED` without a token.
    #[graphql(complexity = "crate::relay::connection_complexity(first, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many invitations to return (0 to 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return invitations after this cursor (an `endCursor`).")] after: Option<
            String,
        >,
        #[graphql(desc = "Only invitations in this state (default: all).")] state: Option<
            crate::invitations::InvitationState,
        >,
    ) -> async_graphql::Result<crate::invitations::InvitationConnection> {
        if ctx.viewer().user_id_within(self.0.id).is_none() {
            return Err(ApiError::sign_in_required().into());
        }
        let role = Box::pin(self.viewer_role_inner(ctx)).await?;
        if !org_allows(role, OrgAction::Audit) {
            return Err(ApiError::Forbidden(
                "only an admin of the organization may see its invitations".into(),
            )
            .into());
        }
        let args = PageArgs::parse(first, after)?;
        Ok(crate::invitations::organization_invitations(ctx, self.0.id, state, &args).await?)
    }

    /// The organization's audit log, newest first: the events of the organization and of
    /// the datasets it owned when they happened. Admins only: `FORBIDDEN` for others,
    /// `UNAUTHENTICATED` without a token.
    #[graphql(complexity = "crate::relay::connection_complexity(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many events to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return events after this cursor (an `endCursor`).")] after: Option<
            String,
        >,
        #[graphql(desc = "Only events of these actions (default: all).")] actions: Option<
            Vec<crate::audit::Action>,
        >,
        #[graphql(desc = "Only events of this actor, by username (case-insensitive).")]
        actor: Option<String>,
    ) -> async_graphql::Result<crate::audit::AuditEventConnection> {
        if ctx.viewer().user_id_within(self.0.id).is_none() {
            return Err(ApiError::sign_in_required().into());
        }
        let role = Box::pin(self.viewer_role_inner(ctx)).await?;
        if !org_allows(role, OrgAction::Audit) {
            return Err(ApiError::Forbidden(
                "only an admin of the organization may read its audit log".into(),
            )
            .into());
        }
        let args = PageArgs::parse(first, after)?;
        let filter = crate::audit::LogFilter::new(
            actions.map(|actions| actions.into_iter().map(Into::into).collect()),
            actor,
        );
        Ok(crate::audit::organization_log(ctx, self.0.id, filter, &args).await?)
    }

    /// The datasets this organization owns that the viewer may see, ordered by name
    /// (case-insensitive).
    #[graphql(complexity = "crate::relay::connection_complexity(first, child_complexity)")]
    async fn datasets(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many datasets to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return datasets after this cursor (an `endCursor`).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<DatasetConnection> {
        let args = PageArgs::parse(first, after)?;
        Ok(datasets::owned_datasets(ctx, self.0.id, &args).await?)
    }
}

/// A user's membership of an organization.
pub struct Member {
    row: membership::Model,
    /// The organization's account, when the statement that read the row read it too.
    organization: Option<Eager<Organization>>,
}

impl Member {
    /// A membership whose organization resolver loads the organization.
    pub fn new(row: membership::Model) -> Self {
        Member {
            row,
            organization: None,
        }
    }

    /// A membership read together with its organization's account and settings row.
    pub fn with_organization(row: membership::Model, organization: Organization) -> Self {
        Member {
            organization: Some(Eager(organization)),
            ..Member::new(row)
        }
    }

    /// The membership's row.
    pub fn row(&self) -> &membership::Model {
        &self.row
    }
}

/// A user's membership of an organization.
#[Object]
impl Member {
    /// The member.
    async fn user(&self) -> Eager<User> {
        // The membership carries the user's username: no statement.
        Eager(User::listed(self.row.user_id, self.row.username.clone()))
    }

    /// The organization.
    async fn organization(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Cow<'_, Eager<Organization>>> {
        let (id, missing) = (
            self.row.organization_id,
            "membership without its organization",
        );
        known_or_load(ctx, self.organization.as_ref(), id, missing).await
    }

    /// The member's role in the organization.
    async fn role(&self) -> OrganizationRole {
        self.row.role.into()
    }

    /// The role the member gets on datasets created in the organization from now on; `null`
    /// means "None (do not add)".
    async fn default_dataset_role(&self) -> Option<DatasetRole> {
        self.row.default_dataset_role.map(Into::into)
    }

    /// When the user joined the organization.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.row.joined_at
    }
}

/// The page arguments of the `members` field that the current field's selection asks for,
/// when it asks for exactly one (none, or several with aliases: `None`) and they are valid
/// (invalid ones are the `members` resolver's to report).
fn members_asked(ctx: &Context<'_>) -> Option<PageArgs> {
    let fields = ctx.look_ahead().field("members").selection_fields();
    let [field] = fields.as_slice() else {
        return None;
    };
    let (mut first, mut after) = (None, None);
    for (name, value) in field.arguments().ok()? {
        match (name.as_str(), value) {
            (_, async_graphql::Value::Null) => {}
            ("first", async_graphql::Value::Number(n)) => {
                first = Some(i32::try_from(n.as_i64()?).ok()?);
            }
            ("after", async_graphql::Value::String(cursor)) => after = Some(cursor),
            _ => return None,
        }
    }
    PageArgs::parse(first, after).ok()
}

/// Queries about organizations.
#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// The organization with this username (case-insensitive), or `null` when there is none.
    async fn organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization's username, in any case.")] username: String,
    ) -> async_graphql::Result<Option<Organization>> {
        let Some(viewer) = ctx.viewer().signed_in() else {
            return Ok(super::find_organization(&ctx.reader(), &username)
                .await?
                .map(Organization::from));
        };
        // With the viewer's membership, which their role and the members' list ask for,
        // and the page of members when the query asks for one.
        let members = members_asked(ctx);
        let page = members
            .as_ref()
            .map(|args| (args.after.as_deref(), args.limit()));
        let found =
            super::find_organization_with_membership(&ctx.reader(), &username, Some(viewer), page)
                .await?;
        Ok(found.map(|found| {
            let id = found.organization.id;
            // A token restricted to another organization is anonymous here: what was read
            // of the user's membership is not the viewer's to use.
            if ctx.viewer().user_id_within(id).is_none() {
                return Organization::from(found.organization);
            }
            let loader = ctx.loader().loader();
            let key = MembershipKey {
                organization_id: id,
                user_id: viewer,
            };
            loader.keep_membership(key, found.membership);
            if let (Some(args), Some(rows)) = (members, found.members) {
                loader.keep_member_page(MemberPage::of(id, &args), rows);
            }
            Organization::from(found.organization)
        }))
    }
}

/// Input of `createOrganization`.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// The new organization's username (same rules as a user's; shares their namespace).
    pub username: String,
    /// An optional human-readable name (at most 100 characters).
    pub display_name: Option<String>,
}

/// Result of `createOrganization`.
#[derive(SimpleObject)]
pub struct CreateOrganizationPayload {
    /// The new organization; the viewer is its first admin.
    pub organization: Organization,
}

/// Input of `updateOrganization`.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// The organization's username.
    pub organization: String,
    /// The new display name; `null` clears it; omitted leaves it unchanged.
    pub display_name: MaybeUndefined<String>,
}

/// Result of `updateOrganization`.
#[derive(SimpleObject)]
pub struct UpdateOrganizationPayload {
    /// The updated organization.
    pub organization: Organization,
}

/// Input of `deleteOrganization`.
#[derive(InputObject)]
pub struct DeleteOrganizationInput {
    /// The organization's username.
    pub organization: String,
}

/// Result of `deleteOrganization`.
#[derive(SimpleObject)]
pub struct DeleteOrganizationPayload {
    /// The global ID the deleted organization had.
    pub deleted_organization_id: ID,
}

/// Input of `addMember`.
#[derive(InputObject)]
pub struct AddMemberInput {
    /// The organization's username.
    pub organization: String,
    /// The username of the user to add.
    pub username: String,
    /// The new member's role.
    #[graphql(default_with = "OrganizationRole::Member")]
    pub role: OrganizationRole,
    /// The role the member gets on datasets created in the organization from now on; `null`
    /// (the default) means "None (do not add)".
    pub default_dataset_role: Option<DatasetRole>,
}

/// Result of `addMember`.
#[derive(SimpleObject)]
pub struct AddMemberPayload {
    /// The new membership.
    pub member: Member,
}

/// Input of `updateMember`. An omitted field is left unchanged.
#[derive(InputObject)]
pub struct UpdateMemberInput {
    /// The organization's username.
    pub organization: String,
    /// The member's username.
    pub username: String,
    /// The new role; omitted leaves it unchanged (`null` is not allowed).
    pub role: Option<OrganizationRole>,
    /// The new default dataset role; an explicit `null` means "None (do not add)"; omitted
    /// leaves it unchanged.
    pub default_dataset_role: MaybeUndefined<DatasetRole>,
}

/// Result of `updateMember`.
#[derive(SimpleObject)]
pub struct UpdateMemberPayload {
    /// The updated membership.
    pub member: Member,
}

/// Input of `removeMember`.
#[derive(InputObject)]
pub struct RemoveMemberInput {
    /// The organization's username.
    pub organization: String,
    /// The member's username.
    pub username: String,
}

/// Result of `removeMember`.
#[derive(SimpleObject)]
pub struct RemoveMemberPayload {
    /// The organization the member was removed from.
    pub organization: Organization,
}

/// Input of `leaveOrganization`.
#[derive(InputObject)]
pub struct LeaveOrganizationInput {
    /// The organization's username.
    pub organization: String,
}

/// Result of `leaveOrganization`.
#[derive(SimpleObject)]
pub struct LeaveOrganizationPayload {
    /// The organization the viewer left.
    pub organization: Organization,
}

/// Mutations about organizations and members.
#[derive(Default)]
pub struct OrganizationMutation;

fn display_name(value: Option<String>) -> Result<Option<String>, ApiError> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > 100) {
        return Err(ApiError::bad_input(
            "displayName",
            "must be at most 100 characters long",
        ));
    }
    Ok(value)
}

#[Object]
impl OrganizationMutation {
    /// Creates an organization; the viewer becomes its first admin.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> async_graphql::Result<CreateOrganizationPayload> {
        let actor = ctx.viewer().actor()?;
        let username = Username::parse("username", &input.username)?;
        let display_name = display_name(input.display_name)?;
        let organization =
            super::create_organization(ctx.db(), actor, username, display_name).await?;
        Ok(CreateOrganizationPayload {
            organization: Organization::from(organization),
        })
    }

    /// Updates an organization's settings. Admins only.
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationInput,
    ) -> async_graphql::Result<UpdateOrganizationPayload> {
        let actor = ctx.viewer().actor()?;
        let change = match input.display_name {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(display_name(Some(v))?),
        };
        let organization =
            super::update_organization(ctx.db(), actor, &input.organization, change).await?;
        Ok(UpdateOrganizationPayload {
            organization: Organization::from(organization),
        })
    }

    /// Deletes an organization with all its datasets; its username becomes free. Admins only.
    async fn delete_organization(
        &self,
        ctx: &Context<'_>,
        input: DeleteOrganizationInput,
    ) -> async_graphql::Result<DeleteOrganizationPayload> {
        let actor = ctx.viewer().actor()?;
        let id = super::delete_organization(ctx.db(), actor, &input.organization).await?;
        Ok(DeleteOrganizationPayload {
            deleted_organization_id: global_id(NodeKind::Organization, id),
        })
    }

    /// Adds a user to an organization. Admins only; an existing member answers `CONFLICT`.
    async fn add_member(
        &self,
        ctx: &Context<'_>,
        input: AddMemberInput,
    ) -> async_graphql::Result<AddMemberPayload> {
        let actor = ctx.viewer().actor()?;
        let member = super::add_member(
            ctx.db(),
            actor,
            &input.organization,
            &input.username,
            input.role.into(),
            input.default_dataset_role.map(Into::into),
        )
        .await?;
        Ok(AddMemberPayload {
            member: Member::new(member),
        })
    }

    /// Changes a member's role or default dataset role. Admins only; demoting the last admin
    /// answers `CONFLICT`.
    async fn update_member(
        &self,
        ctx: &Context<'_>,
        input: UpdateMemberInput,
    ) -> async_graphql::Result<UpdateMemberPayload> {
        let actor = ctx.viewer().actor()?;
        let default_dataset_role = match input.default_dataset_role {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(role) => Some(Some(role.into())),
        };
        let member = super::update_member(
            ctx.db(),
            actor,
            &input.organization,
            &input.username,
            input.role.map(Into::into),
            default_dataset_role,
        )
        .await?;
        Ok(UpdateMemberPayload {
            member: Member::new(member),
        })
    }

    /// Removes a member and their collaborator entries on the organization's datasets.
    /// Admins only; removing the last admin answers `CONFLICT`.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        input: RemoveMemberInput,
    ) -> async_graphql::Result<RemoveMemberPayload> {
        let actor = ctx.viewer().actor()?;
        let organization =
            super::remove_member(ctx.db(), actor, &input.organization, &input.username).await?;
        Ok(RemoveMemberPayload {
            organization: Organization::from(organization),
        })
    }

    /// The viewer leaves an organization and loses their collaborator entries on its
    /// datasets. The last admin cannot leave (`CONFLICT`).
    async fn leave_organization(
        &self,
        ctx: &Context<'_>,
        input: LeaveOrganizationInput,
    ) -> async_graphql::Result<LeaveOrganizationPayload> {
        let actor = ctx.viewer().actor()?;
        let organization = super::leave_organization(ctx.db(), actor, &input.organization).await?;
        Ok(LeaveOrganizationPayload {
            organization: Organization::from(organization),
        })
    }
}
