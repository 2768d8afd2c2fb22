//! API tokens: for scripts, SDKs and pipelines, which call the API without a person signing
//! in. Each is its user's, acts with their roles (only inside one organization when it is
//! restricted to it), has scopes (`READ`: queries; `WRITE`: mutations too), expires, and can
//! be revoked by its owner or by an admin of its organization. Only the SHA-256 of a secret
//! is stored; the secret is shown once, when the token is created.

mod graphql;

pub use graphql::{ApiToken, ApiTokenConnection, TokenMutation, TokenScope};
pub(crate) use graphql::{organization_tokens, user_tokens};

use async_graphql::dataloader::Loader;
use chrono::{Duration, Utc};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use std::collections::HashMap;

use entity::{account, api_token, membership};

use crate::audit::{AuditAction, Change, Event};
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::loaders::{DbLoader, LoadError};
use crate::pages::{CountKey, Filter, Page, PageKey, Paged, child};
use crate::policy::may_manage_token;

/// A user's API tokens, newest first.
pub struct UserTokens;
/// The API tokens restricted to an organization, newest first.
pub struct OrganizationTokens;

impl Paged for UserTokens {
    type Entity = api_token::Entity;
    type Parents = account::Entity;
    const PARENT: api_token::Column = api_token::Column::UserId;
    const KEY: api_token::Column = api_token::Column::Id;
    const PARENT_ID: account::Column = account::Column::Id;
    const DESCENDING: bool = true;
    fn parent_of(row: &api_token::Model) -> i64 {
        row.user_id
    }
}

impl Paged for OrganizationTokens {
    type Entity = api_token::Entity;
    type Parents = account::Entity;
    const PARENT: api_token::Column = api_token::Column::OrganizationId;
    const KEY: api_token::Column = api_token::Column::Id;
    const PARENT_ID: account::Column = account::Column::Id;
    const DESCENDING: bool = true;
    fn parent_of(row: &api_token::Model) -> i64 {
        row.organization_id.unwrap_or_default()
    }
}

/// A page of a user's tokens.
pub type UserTokenPage = PageKey<3>;
/// A page of the tokens restricted to an organization.
pub type OrganizationTokenPage = PageKey<4>;
/// How many tokens a user has.
pub type UserTokenCount = CountKey<3>;
/// How many tokens are restricted to an organization.
pub type OrganizationTokenCount = CountKey<4>;

/// Listed tokens: the unrevoked ones (expired ones too, until revoked).
fn listed() -> Filter {
    Some(child(api_token::Column::RevokedAt).is_null().into())
}

impl Loader<UserTokenPage> for DbLoader {
    type Value = Page<api_token::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[UserTokenPage],
    ) -> Result<HashMap<UserTokenPage, Self::Value>, Self::Error> {
        self.pages::<3, UserTokens>(keys, &listed()).await
    }
}

impl Loader<OrganizationTokenPage> for DbLoader {
    type Value = Page<api_token::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[OrganizationTokenPage],
    ) -> Result<HashMap<OrganizationTokenPage, Self::Value>, Self::Error> {
        self.pages::<4, OrganizationTokens>(keys, &listed()).await
    }
}

impl Loader<UserTokenCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[UserTokenCount],
    ) -> Result<HashMap<UserTokenCount, u64>, Self::Error> {
        self.counts::<3, UserTokens>(keys, &listed()).await
    }
}

impl Loader<OrganizationTokenCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[OrganizationTokenCount],
    ) -> Result<HashMap<OrganizationTokenCount, u64>, Self::Error> {
        self.counts::<4, OrganizationTokens>(keys, &listed()).await
    }
}

/// The longest lifetime a token may be given, in days.
pub const MAX_DAYS: i64 = 366;

/// What a new token is to be.
pub struct NewToken {
    /// Its name, 1–100 characters.
    pub name: String,
    /// Its `READ` scope.
    pub can_read: bool,
    /// Its `WRITE` scope.
    pub can_write: bool,
    /// The organization it is restricted to, by username.
    pub organization: Option<String>,
    /// Its lifetime in days, 1–366.
    pub expires_in_days: i64,
}

/// Creates an API token for `viewer`: the stored token and its secret (shown this once).
/// With an organization, the viewer must be a member of it.
pub async fn create(
    db: &DatabaseConnection,
    viewer: i64,
    new: NewToken,
) -> ApiResult<(api_token::Model, String)> {
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_input(
            "name",
            "must be 1 to 100 characters long",
        ));
    }
    if !new.can_read && !new.can_write {
        return Err(ApiError::bad_input(
            "scopes",
            "must hold READ, WRITE or both",
        ));
    }
    if !(1..=MAX_DAYS).contains(&new.expires_in_days) {
        return Err(ApiError::bad_input(
            "expiresInDays",
            format!("must be between 1 and {MAX_DAYS}"),
        ));
    }
    let mut tx = Change::begin(db, viewer).await?;
    let organization = match &new.organization {
        None => None,
        Some(username) => {
            let organization = crate::organizations::find_organization(&tx, username)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no organization named '{username}'")))?;
            let role = crate::organizations::membership(&tx, organization.id, viewer)
                .await?
                .map(|m| m.role);
            if !crate::policy::may_restrict_token_to(role) {
                return Err(ApiError::Forbidden(
                    "a token may be restricted only to an organization you are a member of".into(),
                ));
            }
            Some(organization.id)
        }
    };
    let (secret, hash) = auth::new_api_token();
    let now = Utc::now();
    let token = api_token::ActiveModel {
        user_id: Set(viewer),
        organization_id: Set(organization),
        name: Set(name),
        can_read: Set(new.can_read),
        can_write: Set(new.can_write),
        secret_hash: Set(hash),
        created_at: Set(now),
        expires_at: Set(now + Duration::days(new.expires_in_days)),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let username = account::Entity::find_by_id(viewer)
        .one(&tx)
        .await?
        .map(|a| a.username)
        .unwrap_or_default();
    tx.record(token_event(AuditAction::ApiTokenCreated, &token, &username));
    tx.commit().await?;
    Ok((token, secret))
}

/// Whether `viewer` may see or revoke `token` (the policy decides: its owner, or an admin
/// of the organization it is restricted to).
pub async fn manages(
    db: &impl ConnectionTrait,
    viewer: i64,
    token: &api_token::Model,
) -> ApiResult<bool> {
    let role = match token.organization_id {
        Some(organization) if token.user_id != viewer => {
            membership::Entity::find_by_id((organization, viewer))
                .one(db)
                .await?
                .map(|m| m.role)
        }
        _ => None,
    };
    Ok(may_manage_token(token.user_id == viewer, role))
}

/// Revokes token `id` (its owner, or an admin of its organization): it never works again.
/// A token the viewer may not manage, or one revoked already, is `NOT_FOUND`.
pub async fn revoke(db: &DatabaseConnection, viewer: i64, id: i64) -> ApiResult<i64> {
    let mut tx = Change::begin(db, viewer).await?;
    let token = api_token::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .filter(|token| token.revoked_at.is_none());
    let not_found = || ApiError::NotFound("no such API token".into());
    let token = token.ok_or_else(not_found)?;
    if !manages(&tx, viewer, &token).await? {
        return Err(not_found());
    }
    api_token::Entity::update_many()
        .col_expr(
            api_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::val(Utc::now()),
        )
        .filter(api_token::Column::Id.eq(id))
        .exec(&tx)
        .await?;
    let username = account::Entity::find_by_id(token.user_id)
        .one(&tx)
        .await?
        .map(|a| a.username)
        .unwrap_or_default();
    tx.record(token_event(AuditAction::ApiTokenRevoked, &token, &username));
    tx.commit().await?;
    Ok(id)
}

/// Revokes `user`'s tokens restricted to `organization`, when they leave it or are removed
/// (in that change, with an event for each): such a token stops working for good, even if
/// they come back.
pub async fn revoke_restricted(
    tx: &mut Change,
    user: &account::Model,
    organization: i64,
) -> ApiResult<()> {
    let revoked = api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(user.id))
        .filter(api_token::Column::OrganizationId.eq(organization))
        .filter(api_token::Column::RevokedAt.is_null())
        .all(&*tx)
        .await?;
    if revoked.is_empty() {
        return Ok(());
    }
    api_token::Entity::update_many()
        .col_expr(
            api_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::val(Utc::now()),
        )
        .filter(api_token::Column::Id.is_in(revoked.iter().map(|t| t.id)))
        .exec(&*tx)
        .await?;
    for token in revoked {
        tx.record(token_event(
            AuditAction::ApiTokenRevoked,
            &token,
            &user.username,
        ));
    }
    Ok(())
}

/// The event of `action` on `token`, whose user is named `username`: in the log of the
/// organization it is restricted to, if any.
fn token_event(action: AuditAction, token: &api_token::Model, username: &str) -> Event {
    let event = Event::new(action).subject(token.user_id, username);
    match token.organization_id {
        Some(organization) => event.organization(organization),
        None => event,
    }
}

/// Token `id`, if `viewer` may see it (see [`manages`]).
pub async fn visible(
    db: &impl ConnectionTrait,
    viewer: Option<i64>,
    id: i64,
) -> ApiResult<Option<api_token::Model>> {
    let Some(viewer) = viewer else {
        return Ok(None);
    };
    let Some(token) = api_token::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    if token.revoked_at.is_some() || !manages(db, viewer, &token).await? {
        return Ok(None);
    }
    Ok(Some(token))
}
