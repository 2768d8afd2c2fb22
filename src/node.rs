//! The Relay `Node` interface, the `Account` interface, and `node(id:)`.

use async_graphql::{Context, ID, Interface, Object};
use chrono::{DateTime, Utc};

use entity::account;
use entity::roles::AccountKind;

use crate::accounts::User;
use crate::context::ContextExt;
use crate::datasets::Dataset;
use crate::loaders::{AccountId, DatasetId};
use crate::organizations::Organization;
use crate::relay::{NodeKind, parse_global_id};
use crate::tokens::ApiToken;

/// An object with a global ID, fetchable with `node(id:)` (Relay).
#[derive(Interface)]
#[graphql(
    name = "Node",
    field(name = "id", ty = "ID", desc = "A globally unique, opaque ID.")
)]
pub enum Node {
    /// A user.
    User(User),
    /// An organization.
    Organization(Organization),
    /// A dataset.
    Dataset(Dataset),
    /// An API token (to its owner and the admins of its organization).
    ApiToken(ApiToken),
    /// An audit event (to those who may read a log that holds it).
    AuditEvent(crate::audit::AuditEvent),
    /// An invitation (to its invitee and the organization's admins).
    Invitation(crate::invitations::Invitation),
}

/// An account: a user or an organization. Both share one namespace of usernames.
#[derive(Interface)]
#[graphql(
    name = "Account",
    field(name = "id", ty = "ID", desc = "A globally unique, opaque ID."),
    field(
        name = "username",
        ty = "&str",
        desc = "The username, as its owner typed it."
    ),
    field(
        name = "created_at",
        ty = "DateTime<Utc>",
        desc = "When the account was created."
    )
)]
pub enum AccountInterface {
    /// A personal account.
    User(User),
    /// An organization.
    Organization(Organization),
}

impl AccountInterface {
    /// The GraphQL object for an account row of either kind.
    pub fn from_account(account: account::Model) -> Self {
        match account.kind {
            AccountKind::User => AccountInterface::User(User::from(account)),
            AccountKind::Organization => {
                AccountInterface::Organization(Organization::from(account))
            }
        }
    }
}

/// `node(id:)`.
#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object with this global ID, or `null` when there is none, the ID is not one of
    /// ours, or the viewer may not see it.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let Some((kind, id)) = parse_global_id(&id) else {
            return Ok(None);
        };
        Ok(match kind {
            NodeKind::User | NodeKind::Organization => {
                let account = ctx.load(AccountId(id)).await?;
                match (kind, account) {
                    (NodeKind::User, Some(a)) if a.kind == AccountKind::User => {
                        Some(Node::User(User::from(a)))
                    }
                    (NodeKind::Organization, Some(a)) if a.kind == AccountKind::Organization => {
                        Some(Node::Organization(Organization::from(a)))
                    }
                    _ => None,
                }
            }
            NodeKind::ApiToken => crate::tokens::visible(&ctx.reader(), ctx.viewer().user_id(), id)
                .await?
                .map(|token| Node::ApiToken(ApiToken(token))),
            NodeKind::Invitation => match ctx.viewer().user_id() {
                Some(viewer) => crate::invitations::visible(&ctx.reader(), viewer, id)
                    .await?
                    .map(|row| Node::Invitation(crate::invitations::Invitation(row))),
                None => None,
            },
            NodeKind::AuditEvent => crate::audit::readable(ctx, id).await?.map(Node::AuditEvent),
            NodeKind::Dataset => match ctx.load(DatasetId(id)).await? {
                Some(row) => {
                    let dataset = Dataset(row);
                    if dataset.visible(ctx).await? {
                        Some(Node::Dataset(dataset))
                    } else {
                        None
                    }
                }
                None => None,
            },
        })
    }
}
