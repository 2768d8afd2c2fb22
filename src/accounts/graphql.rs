//! GraphQL types and resolvers for personal accounts.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use entity::account;
use entity::roles::AccountKind;

use crate::context::ContextExt;
use crate::datasets::{self, DatasetConnection};
use crate::eager::{Boxed, Eager};
use crate::error::ApiError;
use crate::loaders::{AccountId, UserRowId};
use crate::newtypes::{Email, Password, Username, username_key};
use crate::organizations::{self, Member};
use crate::ratelimit::ClientAddr;
use crate::relay::{NodeKind, PageArgs, global_id};

/// A personal account. Users sign in, belong to organizations and own or collaborate on
/// datasets.
#[derive(Clone)]
pub struct User {
    /// The account's id.
    id: i64,
    /// The username, as the user typed it.
    username: String,
    /// When the account was created; `None` for a user read with a membership or a
    /// collaborator entry, which copy only the username: `createdAt` then loads it.
    created_at: Option<DateTime<Utc>>,
}

impl From<account::Model> for User {
    fn from(account: account::Model) -> Self {
        User {
            id: account.id,
            username: account.username,
            created_at: Some(account.created_at),
        }
    }
}

impl User {
    /// User `id`, known by the `username` a membership or a collaborator entry copies.
    pub fn listed(id: i64, username: String) -> Self {
        User {
            id,
            username,
            created_at: None,
        }
    }
}

/// A personal account. Users sign in, belong to organizations and own or collaborate on
/// datasets.
#[Object]
impl User {
    /// The global ID of this user (Relay `Node`).
    pub async fn id(&self) -> ID {
        global_id(NodeKind::User, self.id)
    }

    /// The username, as the user typed it; unique case-insensitively across users and
    /// organizations.
    pub async fn username(&self) -> &str {
        &self.username
    }

    /// When the account was created.
    pub async fn created_at(&self, ctx: &Context<'_>) -> async_graphql::Result<DateTime<Utc>> {
        if let Some(created_at) = self.created_at {
            return Ok(created_at);
        }
        let account = ctx.load(AccountId(self.id)).await?;
        let account = account.ok_or_else(|| ApiError::internal("user without its account"))?;
        Ok(account.created_at)
    }

    /// The user's email address: only the user themself sees it; `null` for everyone else.
    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        if ctx.viewer().user_id() != Some(self.id) {
            return Ok(None);
        }
        if let Some(row) = ctx.loader().loader().viewer_row(self.id) {
            return Ok(Some(row.email.clone()));
        }
        let row = ctx.load(UserRowId(self.id)).await?;
        Ok(row.map(|r| r.email))
    }

    /// The organizations the user belongs to, with their role in each (ordered by the
    /// organization's username). Only the user themself may see this: `FORBIDDEN` for anyone
    /// else, `UNAUTHENTICATED` without a token.
    async fn memberships(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Boxed<Vec<Eager<Member>>>> {
        let viewer = ctx.viewer().require()?;
        if viewer != self.id {
            return Err(ApiError::Forbidden(
                "only the user themself may see their memberships".into(),
            )
            .into());
        }
        // Boxed to keep `User`'s resolver future small (see `crate::eager::Boxed`).
        let rows = Box::pin(organizations::memberships_of_user(&ctx.reader(), self.id)).await?;
        // The role checks on these organizations below read them here.
        ctx.loader()
            .loader()
            .keep_viewer_memberships(rows.iter().map(|m| m.row()));
        Ok(Boxed(rows.into_iter().map(Eager).collect()))
    }

    /// The user's API tokens, newest first (revoked ones are gone). Only the user themself
    /// may see them: `FORBIDDEN` for anyone else, `UNAUTHENTICATED` without a token.
    #[graphql(complexity = "crate::relay::connection_complexity(first, child_complexity)")]
    async fn api_tokens(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many tokens to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return tokens after this cursor (an `endCursor`).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<crate::tokens::ApiTokenConnection> {
        let viewer = ctx.viewer().require()?;
        if viewer != self.id {
            return Err(ApiError::Forbidden(
                "only the user themself may see their API tokens".into(),
            )
            .into());
        }
        let args = PageArgs::parse(first, after)?;
        Ok(crate::tokens::user_tokens(ctx, self.id, &args).await?)
    }

    /// The user's pending invitations, newest first. Only the user themself may see them:
    /// `FORBIDDEN` for anyone else, `UNAUTHENTICATED` without a token.
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
    ) -> async_graphql::Result<crate::invitations::InvitationConnection> {
        let viewer = ctx.viewer().require()?;
        if viewer != self.id {
            return Err(ApiError::Forbidden(
                "only the user themself may see their invitations".into(),
            )
            .into());
        }
        let args = PageArgs::parse(first, after)?;
        Ok(crate::invitations::user_invitations(ctx, self.id, &args).await?)
    }

    /// The datasets this user owns that the viewer may see, ordered by name
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
        Ok(datasets::owned_datasets(ctx, self.id, &args).await?)
    }
}

/// Queries about users.
#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user. `UNAUTHENTICATED` without a token.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let id = ctx.viewer().require()?;
        // Read with the credential already (a sign-in token), or now.
        if let Some(account) = ctx.loader().loader().viewer_account(id) {
            return Ok(User::from(account.clone()));
        }
        // A valid token for an account that was deleted since.
        let gone = || ApiError::Unauthenticated("the account of this token no longer exists");
        // With the private row when `email` is asked for: one statement either way.
        let private = ctx.look_ahead().field("email").exists();
        let (account, row) = super::user_by_id(&ctx.reader(), id, private)
            .await?
            .ok_or_else(gone)?;
        if let Some(row) = row {
            ctx.loader().loader().keep_viewer_row(row);
        }
        Ok(User::from(account))
    }

    /// The user with this username (case-insensitive), or `null` when there is none.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's username, in any case.")] username: String,
    ) -> async_graphql::Result<Option<User>> {
        let account = account::Entity::find()
            .filter(account::Column::UsernameKey.eq(username_key(&username)))
            .filter(account::Column::Kind.eq(AccountKind::User))
            .one(&ctx.reader())
            .await
            .map_err(ApiError::from)?;
        Ok(account.map(User::from))
    }
}

/// Input of `signUp`.
#[derive(InputObject)]
pub struct SignUpInput {
    /// 2–39 ASCII letters, digits, `-` and `_`, starting and ending with a letter or digit;
    /// unique case-insensitively across users and organizations; not reserved.
    pub username: String,
    /// A valid email address, unique case-insensitively among users.
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
}

/// Input of `logIn`.
#[derive(InputObject)]
pub struct LogInInput {
    /// The username or the email address.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A signed-in session: the token to send as `Authorization: Bearer <token>`, and its user.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A JWT (HS256) for the user; send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The signed-in user.
    pub user: User,
}

/// Mutations about personal accounts.
#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates a personal account and signs it in.
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        input: SignUpInput,
    ) -> async_graphql::Result<AuthPayload> {
        let username = Username::parse("username", &input.username)?;
        let email = Email::parse("email", &input.email)?;
        let password = Password::parse("password", &input.password)?;
        let address = ctx.data_opt::<ClientAddr>().map(|a| a.0);
        let state = ctx.state();
        let account = super::sign_up(
            &state.db,
            &state.rate_limits,
            address,
            username,
            email,
            password,
        )
        .await?;
        let token = ctx.state().keys.issue(account.id, 0)?;
        Ok(AuthPayload {
            token,
            user: User::from(account),
        })
    }

    /// Signs in with a username or email and a password. Wrong credentials answer
    /// `UNAUTHENTICATED`, the same whether or not the account exists. Attempts are limited
    /// per account (its username and email share one allowance) and per client address
    /// (`RATE_LIMITED`).
    async fn log_in(
        &self,
        ctx: &Context<'_>,
        input: LogInInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.state();
        let address = ctx.data_opt::<ClientAddr>().map(|a| a.0);
        let (account, private) = super::log_in(
            &state.db,
            &state.rate_limits,
            address,
            &state.dummy_hash,
            &input.username,
            &input.password,
        )
        .await?;
        let token = state.keys.issue(account.id, private.session_generation)?;
        Ok(AuthPayload {
            token,
            user: User::from(account),
        })
    }
}

/// Input of `changePassword`.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password now.
    pub current_password: String,
    /// The new password, 8 to 128 characters.
    pub new_password: String,
}

/// Input of `signOutEverywhere` (it has no fields).
#[derive(InputObject)]
pub struct SignOutEverywhereInput {
    /// Ignored; GraphQL input objects need a field. Leave it out.
    pub client_mutation_id: Option<String>,
}

/// Result of `signOutEverywhere`.
#[derive(SimpleObject)]
pub struct SignOutEverywherePayload {
    /// The user, now signed out of every session.
    pub user: User,
}

/// Input of `deleteAccount`.
#[derive(InputObject)]
pub struct DeleteAccountInput {
    /// The account's password.
    pub password: String,
}

/// Result of `deleteAccount`.
#[derive(SimpleObject)]
pub struct DeleteAccountPayload {
    /// The global ID the deleted user had.
    pub deleted_user_id: ID,
}

/// The account controls a person has over their own account.
#[derive(Default)]
pub struct AccountControlMutation;

#[Object]
impl AccountControlMutation {
    /// Changes the viewer's password. Every other sign-in token of the user stops working;
    /// the payload's token is the new session's. Needs the current password (attempts are
    /// limited as `logIn`'s are) and a sign-in token (an API token is refused).
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<AuthPayload> {
        let viewer = ctx.viewer().require()?;
        let new_password = Password::parse("newPassword", &input.new_password)?;
        let state = ctx.state();
        let address = ctx.data_opt::<ClientAddr>().map(|a| a.0);
        let (account, generation) = super::change_password(
            &state.db,
            &state.rate_limits,
            address,
            viewer,
            &input.current_password,
            new_password,
        )
        .await?;
        let token = state.keys.issue(account.id, generation)?;
        Ok(AuthPayload {
            token,
            user: User::from(account),
        })
    }

    /// Ends every session of the viewer: every sign-in token issued so far stops working,
    /// this one too. API tokens are not sessions: revoke them one by one.
    async fn sign_out_everywhere(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "No fields: pass `{}`.")] input: SignOutEverywhereInput,
    ) -> async_graphql::Result<SignOutEverywherePayload> {
        let _ = input;
        let viewer = ctx.viewer().require()?;
        let account = super::sign_out_everywhere(ctx.db(), viewer).await?;
        Ok(SignOutEverywherePayload {
            user: User::from(account),
        })
    }

    /// Deletes the viewer's account with its memberships, collaborations, API tokens and
    /// personal datasets, in one transaction; its username becomes free. Refused
    /// (`CONFLICT`) while the user is the last admin of an organization.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        input: DeleteAccountInput,
    ) -> async_graphql::Result<DeleteAccountPayload> {
        let viewer = ctx.viewer().require()?;
        let state = ctx.state();
        let address = ctx.data_opt::<ClientAddr>().map(|a| a.0);
        let id = super::delete_account(
            &state.db,
            &state.rate_limits,
            address,
            viewer,
            &input.password,
        )
        .await?;
        Ok(DeleteAccountPayload {
            deleted_user_id: global_id(NodeKind::User, id),
        })
    }
}
