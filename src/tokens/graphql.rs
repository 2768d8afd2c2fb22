//! GraphQL types and resolvers for API tokens.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use entity::api_token;

use crate::accounts::User;
use crate::context::ContextExt;
use crate::error::ApiError;
use crate::error::ApiResult;
use crate::loaders::AccountId;
use crate::organizations::Organization;
use crate::relay::{
    ConnectionTotal, KeyConnection, NodeKind, PageArgs, global_id, load_page, parse_global_id,
};
use futures_util::future::BoxFuture;

/// What an API token may do.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScope {
    /// Run queries.
    Read,
    /// Run queries and mutations (but never manage tokens, passwords or the account).
    Write,
}

/// An API token, for scripts, SDKs and pipelines: it acts as its user (with their roles),
/// only inside its organization when it is restricted to one. Its secret is shown once, when
/// it is created; only its owner and the admins of its organization see it listed.
pub struct ApiToken(pub api_token::Model);

/// An API token, for scripts, SDKs and pipelines: it acts as its user (with their roles),
/// only inside its organization when it is restricted to one. Its secret is shown once, when
/// it is created; only its owner and the admins of its organization see it listed.
#[Object]
impl ApiToken {
    /// The global ID of this token (Relay `Node`).
    pub async fn id(&self) -> ID {
        global_id(NodeKind::ApiToken, self.0.id)
    }

    /// The name its owner gave it.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What it may do: `READ` runs queries, `WRITE` queries and mutations.
    async fn scopes(&self) -> Vec<TokenScope> {
        let mut scopes = Vec::with_capacity(2);
        if self.0.can_read {
            scopes.push(TokenScope::Read);
        }
        if self.0.can_write {
            scopes.push(TokenScope::Write);
        }
        scopes
    }

    /// The user it acts for.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let account = ctx
            .load(AccountId(self.0.user_id))
            .await?
            .ok_or_else(|| ApiError::internal("token without its user"))?;
        Ok(User::from(account))
    }

    /// The organization it is restricted to: it reaches only this organization and its
    /// datasets, and acts as an anonymous caller everywhere else. `null`: unrestricted.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        let account = ctx.load(AccountId(id)).await?;
        Ok(account.map(Organization::from))
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it stops working.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    /// When it was last used (recorded at most once a minute); `null` when never.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
}

/// A page of API tokens.
pub type ApiTokenConnection = KeyConnection<ApiToken>;

/// One page of `user`'s tokens, batched with every other user's page in the request.
pub(crate) fn user_tokens<'a>(
    ctx: &'a Context<'_>,
    user: i64,
    args: &'a PageArgs,
) -> BoxFuture<'a, ApiResult<ApiTokenConnection>> {
    load_page(
        ctx,
        args,
        super::UserTokenPage::of(user, args),
        ConnectionTotal::UserTokens(user),
        |t: api_token::Model| (t.id.to_string(), ApiToken(t)),
    )
}

/// One page of the tokens restricted to `organization`, batched.
pub(crate) fn organization_tokens<'a>(
    ctx: &'a Context<'_>,
    organization: i64,
    args: &'a PageArgs,
) -> BoxFuture<'a, ApiResult<ApiTokenConnection>> {
    load_page(
        ctx,
        args,
        super::OrganizationTokenPage::of(organization, args),
        ConnectionTotal::OrganizationTokens(organization),
        |t: api_token::Model| (t.id.to_string(), ApiToken(t)),
    )
}

/// Input of `createApiToken`.
#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// A name to recognize it by, 1–100 characters.
    pub name: String,
    /// What it may do: `READ`, `WRITE` or both.
    pub scopes: Vec<TokenScope>,
    /// Restrict it to this organization (by username), of which the viewer must be a
    /// member: it then reaches only the organization and its datasets.
    pub organization: Option<String>,
    /// Days until it expires, 1–366.
    #[graphql(default = 90)]
    pub expires_in_days: i32,
}

/// Result of `createApiToken`.
#[derive(SimpleObject)]
pub struct CreateApiTokenPayload {
    /// The new token.
    pub api_token: ApiToken,
    /// Its secret, `orgql_pat_…`: shown this once and never again. Send it as
    /// `Authorization: Bearer <token>`.
    pub token: String,
}

/// Input of `revokeApiToken`.
#[derive(InputObject)]
pub struct RevokeApiTokenInput {
    /// The token's global ID.
    pub id: ID,
}

/// Result of `revokeApiToken`.
#[derive(SimpleObject)]
pub struct RevokeApiTokenPayload {
    /// The global ID of the revoked token.
    pub revoked_api_token_id: ID,
}

/// Mutations about API tokens.
#[derive(Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// Creates an API token for the viewer; its secret is in the payload, this once. Needs a
    /// sign-in token (an API token cannot make another).
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateApiTokenInput,
    ) -> async_graphql::Result<CreateApiTokenPayload> {
        let viewer = ctx.viewer().require()?;
        let new = super::NewToken {
            name: input.name,
            can_read: input.scopes.contains(&TokenScope::Read),
            can_write: input.scopes.contains(&TokenScope::Write),
            organization: input.organization,
            expires_in_days: i64::from(input.expires_in_days),
        };
        let (token, secret) = super::create(ctx.db(), viewer, new).await?;
        Ok(CreateApiTokenPayload {
            api_token: ApiToken(token),
            token: secret,
        })
    }

    /// Revokes an API token: it answers `UNAUTHENTICATED` from the next request on, on every
    /// instance. Its owner may revoke it, and so may an admin of the organization it is
    /// restricted to.
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiTokenInput,
    ) -> async_graphql::Result<RevokeApiTokenPayload> {
        let viewer = ctx.viewer().require()?;
        let id = match parse_global_id(&input.id) {
            Some((NodeKind::ApiToken, id)) => id,
            _ => return Err(ApiError::NotFound("no such API token".into()).into()),
        };
        let id = super::revoke(ctx.db(), viewer, id).await?;
        Ok(RevokeApiTokenPayload {
            revoked_api_token_id: global_id(NodeKind::ApiToken, id),
        })
    }
}
