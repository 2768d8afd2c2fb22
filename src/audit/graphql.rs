//! GraphQL types for the audit log.

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use entity::audit_event;

use crate::accounts::User;
use crate::context::ContextExt;
use crate::error::ApiResult;
use crate::loaders::AccountId;
use crate::organizations::Organization;
use crate::relay::{ConnectionTotal, KeyConnection, NodeKind, PageArgs, global_id, load_page};

/// What an audit event records.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[graphql(name = "AuditAction", remote = "entity::audit_event::AuditAction")]
pub enum Action {
    /// An organization was created.
    OrganizationCreated,
    /// An organization's settings (its display name) changed.
    OrganizationUpdated,
    /// An organization was deleted (beyond API.md: written for completeness; no log shows it
    /// once the organization is gone).
    OrganizationDeleted,
    /// An admin added a member.
    MemberAdded,
    /// A member's role or default dataset role changed.
    MemberUpdated,
    /// An admin removed a member.
    MemberRemoved,
    /// A member left (or deleted their account).
    MemberLeft,
    /// An admin invited someone.
    InvitationCreated,
    /// The invitee accepted: they are a member now.
    InvitationAccepted,
    /// The invitee declined.
    InvitationDeclined,
    /// An admin revoked an invitation.
    InvitationRevoked,
    /// A dataset was created.
    DatasetCreated,
    /// A dataset's description or visibility changed.
    DatasetUpdated,
    /// A dataset was deleted.
    DatasetDeleted,
    /// A dataset was made as a clone of another.
    DatasetCloned,
    /// A dataset moved to another owner.
    DatasetTransferred,
    /// A collaborator was added to a dataset (also by the fan-out of a new dataset).
    CollaboratorAdded,
    /// A collaborator's role changed.
    CollaboratorUpdated,
    /// A collaborator was removed.
    CollaboratorRemoved,
    /// An API token restricted to the organization was created.
    ApiTokenCreated,
    /// An API token restricted to the organization was revoked.
    ApiTokenRevoked,
}

/// One change, recorded in the transaction that made it: there is never a change without
/// its event nor an event without its change. Names are as they were when it happened.
pub struct AuditEvent(pub audit_event::Model);

/// One change, recorded in the transaction that made it: there is never a change without
/// its event nor an event without its change. Names are as they were when it happened.
#[Object]
impl AuditEvent {
    /// The global ID of this event (Relay `Node`).
    pub async fn id(&self) -> ID {
        global_id(NodeKind::AuditEvent, self.0.id)
    }

    /// What happened.
    async fn action(&self) -> Action {
        self.0.action.into()
    }

    /// When it happened (when its transaction wrote it).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Who did it; `null` once their account is gone (`actorUsername` keeps the name).
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.actor_id else {
            return Ok(None);
        };
        Ok(ctx.load(AccountId(id)).await?.map(User::from))
    }

    /// The actor's username when it happened.
    async fn actor_username(&self) -> Option<&str> {
        self.0.actor_username.as_deref()
    }

    /// The organization concerned, if any (and if it still exists).
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        Ok(ctx.load(AccountId(id)).await?.map(Organization::from))
    }

    /// The dataset concerned, by its full name at the time.
    async fn dataset_full_name(&self) -> Option<&str> {
        self.0.dataset_full_name.as_deref()
    }

    /// The member, invitee, collaborator or token owner concerned, by username at the time.
    async fn subject_username(&self) -> Option<&str> {
        self.0.subject_username.as_deref()
    }

    /// The new role, where a role changed (or was given).
    async fn role(&self) -> Option<&str> {
        self.0.role.as_deref()
    }

    /// The former role, where a role changed (or was taken away).
    async fn previous_role(&self) -> Option<&str> {
        self.0.previous_role.as_deref()
    }
}

/// A page of audit events.
pub type AuditEventConnection = KeyConnection<AuditEvent>;

/// Event `id`, if the viewer may read a log that holds it: the log of the organization it
/// belongs to (its admins), or of its dataset (the dataset's `ADMIN`s).
pub(crate) async fn readable(
    ctx: &Context<'_>,
    id: i64,
) -> async_graphql::Result<Option<AuditEvent>> {
    use crate::policy::{DatasetAction, OrgAction, dataset_allows, org_allows};
    let Some(event) = super::event(&ctx.reader(), id).await? else {
        return Ok(None);
    };
    if let Some(organization) = event.organization_id
        && let Some(account) = ctx.load(AccountId(organization)).await?
    {
        let role = Organization::from(account).viewer_role_inner(ctx).await?;
        if org_allows(role, OrgAction::Audit) {
            return Ok(Some(AuditEvent(event)));
        }
    }
    if let Some(dataset) = event.dataset_id
        && let Some(row) = ctx.load(crate::loaders::DatasetId(dataset)).await?
    {
        let role = crate::datasets::viewer_dataset_role(ctx, &row).await?;
        if dataset_allows(role, row.public, DatasetAction::ReadAuditLog) {
            return Ok(Some(AuditEvent(event)));
        }
    }
    Ok(None)
}

fn node(event: audit_event::Model) -> (String, AuditEvent) {
    (event.id.to_string(), AuditEvent(event))
}

/// One page of `organization`'s log under `filter`, batched with every other organization's
/// page in the request that has the same filter.
pub(crate) fn organization_log<'a>(
    ctx: &'a Context<'_>,
    organization: i64,
    filter: super::LogFilter,
    args: &'a PageArgs,
) -> BoxFuture<'a, ApiResult<AuditEventConnection>> {
    let total = ConnectionTotal::OrganizationLog(organization, filter.clone());
    Box::pin(async move {
        let page =
            super::OrganizationLogPage(crate::pages::PageKey::of(organization, args), filter);
        let rows = ctx
            .load(page)
            .await?
            .map(std::sync::Arc::unwrap_or_clone)
            .unwrap_or_default();
        Ok(crate::relay::page_of(args, rows, total, node))
    })
}

/// One page of `dataset`'s log, batched.
pub(crate) fn dataset_log<'a>(
    ctx: &'a Context<'_>,
    dataset: i64,
    args: &'a PageArgs,
) -> BoxFuture<'a, ApiResult<AuditEventConnection>> {
    load_page(
        ctx,
        args,
        super::DatasetLogPage::of(dataset, args),
        ConnectionTotal::DatasetLog(dataset),
        node,
    )
}
