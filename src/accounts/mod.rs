//! Personal accounts: signing up, logging in, and the `User` type.

mod graphql;

pub use graphql::{AccountControlMutation, AccountMutation, AccountQuery, User};

use std::net::IpAddr;

use chrono::Utc;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, IntoIden, JoinType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DeriveIden, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, Set, TransactionTrait,
};

use entity::roles::{AccountKind, OrganizationRole};
use entity::{account, api_token, membership, user_account};

use crate::audit::{AuditAction, Change, Event};
use crate::auth::{self, Via, Viewer};
use crate::db::{Shapes, select_model, write_tx};
use crate::error::{ApiError, ApiResult, conflict_on_unique};
use crate::newtypes::{Email, Password, Username, username_key};
use crate::ratelimit::RateLimits;

/// Creates a user. Sign-ups are limited per client address (`RATE_LIMITED`). A username
/// taken in any case by a user or an organization, or an email taken in any case, answers
/// `CONFLICT`: looked up first, so a taken name costs no password hash, and decided by the
/// database's unique indexes, so two racing sign-ups cannot both win.
pub async fn sign_up(
    db: &DatabaseConnection,
    limits: &RateLimits,
    address: Option<IpAddr>,
    username: Username,
    email: Email,
    password: Password,
) -> ApiResult<account::Model> {
    limits.sign_up(db, address).await?;
    let username_taken = account::Entity::find()
        .filter(account::Column::UsernameKey.eq(username.key()))
        .count(db)
        .await?
        > 0;
    if username_taken {
        return Err(ApiError::Conflict(format!(
            "username '{}' is taken",
            username.as_str()
        )));
    }
    let email_taken = user_account::Entity::find()
        .filter(user_account::Column::EmailKey.eq(email.key()))
        .count(db)
        .await?
        > 0;
    if email_taken {
        return Err(ApiError::Conflict("email is already in use".into()));
    }
    // Hash before the transaction: argon2 is slow and must not hold the write lock.
    let password_hash = auth::hash_password_off_thread(password.expose().to_owned()).await?;
    let tx = db.begin_with_options(write_tx()).await?;
    let account = insert_account(&tx, &username, AccountKind::User).await?;
    user_account::ActiveModel {
        account_id: Set(account.id),
        email: Set(email.as_str().to_owned()),
        email_key: Set(email.key()),
        password_hash: Set(password_hash),
        session_generation: Set(0),
    }
    .insert(&tx)
    .await
    .map_err(|e| conflict_on_unique(e, "email is already in use"))?;
    tx.commit().await?;
    Ok(account)
}

/// Inserts an account row; a taken username (in any case, user or organization) is `CONFLICT`.
pub async fn insert_account(
    db: &impl ConnectionTrait,
    username: &Username,
    kind: AccountKind,
) -> ApiResult<account::Model> {
    account::ActiveModel {
        kind: Set(kind),
        username: Set(username.as_str().to_owned()),
        username_key: Set(username.key()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| conflict_on_unique(e, format!("username '{}' is taken", username.as_str())))
}

/// The aliases of [`user_by_id`]'s statement.
#[derive(Clone, Copy, DeriveIden)]
enum As {
    A,
    U,
}

/// The account of user `id`, with its private row when `private` (then in a join: no row
/// unless both exist), in one statement.
pub async fn user_by_id(
    db: &impl ConnectionTrait,
    id: i64,
    private: bool,
) -> ApiResult<Option<(account::Model, Option<user_account::Model>)>> {
    static SHAPES: std::sync::LazyLock<Shapes> = std::sync::LazyLock::new(Shapes::new);
    // The two tables' columns have distinct names: each model is read under its own.
    let render = || {
        let mut select = Query::select();
        select_model::<account::Entity>(&mut select, As::A.into_iden(), "");
        select
            .from_as(account::Entity, As::A)
            .and_where(Expr::col((As::A, account::Column::Id)).eq(id));
        if private {
            select_model::<user_account::Entity>(&mut select, As::U.into_iden(), "");
            select.join_as(
                JoinType::InnerJoin,
                user_account::Entity,
                As::U,
                Expr::col((As::U, user_account::Column::AccountId))
                    .equals((As::A, account::Column::Id)),
            );
        }
        select
    };
    let backend = db.get_database_backend();
    let statement = SHAPES.statement(backend, u32::from(private), vec![id.into()], render);
    let Some(row) = db.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let account = account::Model::from_query_result(&row, "")?;
    let private = if private {
        Some(user_account::Model::from_query_result(&row, "")?)
    } else {
        None
    };
    Ok(Some((account, private)))
}

/// Checks credentials: `login` is a username or an email. Attempts are limited per account
/// (its username in any case and its email share one allowance) and per client address
/// (`RATE_LIMITED`). Unknown accounts cost the same argon2 verification as known ones, and
/// every failure answers the same `UNAUTHENTICATED`.
pub async fn log_in(
    db: &DatabaseConnection,
    limits: &RateLimits,
    address: Option<IpAddr>,
    dummy_hash: &str,
    login: &str,
    password: &str,
) -> ApiResult<(account::Model, user_account::Model)> {
    let login_key = login.trim().to_ascii_lowercase();
    let account = if login.contains('@') {
        let user = user_account::Entity::find()
            .filter(user_account::Column::EmailKey.eq(login_key.as_str()))
            .one(db)
            .await?;
        match user {
            Some(user) => account::Entity::find_by_id(user.account_id).one(db).await?,
            None => None,
        }
    } else {
        account::Entity::find()
            .filter(account::Column::UsernameKey.eq(username_key(login)))
            .filter(account::Column::Kind.eq(AccountKind::User))
            .one(db)
            .await?
    };
    let found = match account {
        Some(account) => user_account::Entity::find_by_id(account.id)
            .one(db)
            .await?
            .map(|user| (user, account)),
        None => None,
    };
    let limited = found
        .as_ref()
        .map(|(_, account)| account.id)
        .ok_or(login_key.as_str());
    limits.log_in(db, limited, address).await?;
    let hash = found
        .as_ref()
        .map(|(user, _)| user.password_hash.clone())
        .unwrap_or_else(|| dummy_hash.to_owned());
    let ok = auth::verify_password_off_thread(password.to_owned(), hash).await?;
    match found {
        Some((private, account)) if ok => Ok((account, private)),
        _ => Err(ApiError::Unauthenticated(
            "wrong username, email or password",
        )),
    }
}

/// Checks user `viewer`'s password for a change to their account: limited as `logIn` is
/// (per account and per address), and `UNAUTHENTICATED` when it is wrong.
async fn confirm_password(
    db: &DatabaseConnection,
    limits: &RateLimits,
    address: Option<IpAddr>,
    viewer: i64,
    password: &str,
) -> ApiResult<(account::Model, user_account::Model)> {
    let (account, private) = user_by_id(db, viewer, true)
        .await?
        .and_then(|(account, private)| Some((account, private?)))
        .ok_or_else(ApiError::sign_in_required)?;
    limits.log_in(db, Ok(account.id), address).await?;
    let ok = auth::verify_password_off_thread(password.to_owned(), private.password_hash.clone())
        .await?;
    if !ok {
        return Err(ApiError::Unauthenticated("the password is wrong"));
    }
    Ok((account, private))
}

/// Moves the user's session generation on, so that every sign-in token issued before stops
/// working; the new generation.
async fn end_sessions(db: &impl ConnectionTrait, viewer: i64) -> ApiResult<i64> {
    let private = user_account::Entity::find_by_id(viewer)
        .one(db)
        .await?
        .ok_or_else(ApiError::sign_in_required)?;
    let generation = private.session_generation + 1;
    user_account::Entity::update_many()
        .col_expr(
            user_account::Column::SessionGeneration,
            Expr::col(user_account::Column::SessionGeneration).add(1),
        )
        .filter(user_account::Column::AccountId.eq(viewer))
        .exec(db)
        .await?;
    Ok(generation)
}

/// Changes `viewer`'s password (the current one must match) and ends every session; the
/// account and the new session generation, for the new token.
pub async fn change_password(
    db: &DatabaseConnection,
    limits: &RateLimits,
    address: Option<IpAddr>,
    viewer: i64,
    current: &str,
    new: Password,
) -> ApiResult<(account::Model, i64)> {
    let (account, _) = confirm_password(db, limits, address, viewer, current).await?;
    let hash = auth::hash_password_off_thread(new.expose().to_owned()).await?;
    let tx = db.begin_with_options(write_tx()).await?;
    user_account::Entity::update_many()
        .col_expr(user_account::Column::PasswordHash, Expr::val(hash))
        .filter(user_account::Column::AccountId.eq(viewer))
        .exec(&tx)
        .await?;
    let generation = end_sessions(&tx, viewer).await?;
    tx.commit().await?;
    Ok((account, generation))
}

/// Ends every session of `viewer`: every sign-in token issued so far stops working.
pub async fn sign_out_everywhere(
    db: &DatabaseConnection,
    viewer: i64,
) -> ApiResult<account::Model> {
    let tx = db.begin_with_options(write_tx()).await?;
    end_sessions(&tx, viewer).await?;
    let account = account::Entity::find_by_id(viewer)
        .one(&tx)
        .await?
        .ok_or_else(ApiError::sign_in_required)?;
    tx.commit().await?;
    Ok(account)
}

/// Deletes `viewer`'s account (the password must match) with everything of it, in one
/// transaction: memberships, collaborator entries, API tokens and personal datasets go with
/// the account row (the foreign keys cascade), and the username is free again. `CONFLICT`
/// while the user is the last admin of an organization: each organization they administer
/// is locked first, as every membership change locks it, so that no concurrent demotion
/// can leave one without an admin.
pub async fn delete_account(
    db: &DatabaseConnection,
    limits: &RateLimits,
    address: Option<IpAddr>,
    viewer: i64,
    password: &str,
) -> ApiResult<i64> {
    let (account, _) = confirm_password(db, limits, address, viewer, password).await?;
    let mut tx = Change::begin(db, viewer).await?;
    let memberships = membership::Entity::find()
        .filter(membership::Column::UserId.eq(viewer))
        .all(&tx)
        .await?;
    let administered = memberships
        .iter()
        .filter(|m| m.role == OrganizationRole::Admin)
        .map(|m| m.organization_id);
    for organization in administered {
        crate::organizations::lock_organization_row(&tx, organization).await?;
        if !crate::organizations::another_admin_remains(&tx, organization, viewer).await? {
            let name = account::Entity::find_by_id(organization)
                .one(&tx)
                .await?
                .map(|a| a.username)
                .unwrap_or_default();
            return Err(ApiError::Conflict(format!(
                "you are the last admin of '{name}': make another member an admin, or delete \
                 the organization, first"
            )));
        }
    }
    let deleted = account::Entity::delete_by_id(viewer).exec(&tx).await?;
    if deleted.rows_affected == 0 {
        return Err(ApiError::sign_in_required());
    }
    // Each organization's log shows that the member left; the account itself has no log.
    for membership in &memberships {
        tx.record(
            Event::new(AuditAction::MemberLeft)
                .organization(membership.organization_id)
                .subject(viewer, &account.username)
                .previous_role(Some(membership.role)),
        );
    }
    tx.actor_is_deleted();
    tx.commit_even_if_unrecorded().await?;
    Ok(viewer)
}

/// A credential as the database judged it: who the request is from, the account and private
/// row of the credential's user (read by the same statement, kept for `viewer`), and the API
/// token whose `lastUsedAt` is due to be written.
pub struct Checked {
    /// Who is asking.
    pub viewer: Viewer,
    /// The credential's user's account and private row.
    pub rows: Option<(account::Model, user_account::Model)>,
    /// An API token to mark as used (its `lastUsedAt` is unset or a minute old).
    pub touch: Option<i64>,
}

/// How often an API token's `lastUsedAt` is written, at most.
const LAST_USED_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Checks what a request presents against the database, in one indexed look-up: a sign-in
/// token's user must exist and still be in the token's session generation (see
/// [`auth::Claims::sgn`]); an API token must exist, be unrevoked and unexpired, and, when it
/// is restricted to an organization, its user must still be a member. `None`: refused.
pub async fn check_credential(
    db: &impl ConnectionTrait,
    presented: &auth::Presented,
) -> ApiResult<Option<Checked>> {
    match presented {
        auth::Presented::Nothing => Ok(Some(Checked {
            viewer: Viewer::Anonymous,
            rows: None,
            touch: None,
        })),
        auth::Presented::Session(session) => {
            let Some((account, Some(private))) = user_by_id(db, session.user, true).await? else {
                return Ok(None);
            };
            if private.session_generation != session.generation {
                return Ok(None);
            }
            Ok(Some(Checked {
                viewer: Viewer::User {
                    id: account.id,
                    via: Via::Session,
                },
                rows: Some((account, private)),
                touch: None,
            }))
        }
        auth::Presented::ApiToken(hash) => {
            let Some(ApiTokenRow {
                token,
                member,
                account,
                private,
            }) = api_token_by_hash(db, hash).await?
            else {
                return Ok(None);
            };
            let now = Utc::now();
            let usable = auth::hashes_equal(&token.secret_hash, hash)
                && token.revoked_at.is_none()
                && token.expires_at > now
                && (token.organization_id.is_none() || member);
            if !usable {
                return Ok(None);
            }
            let due = token
                .last_used_at
                .is_none_or(|at| now - at >= LAST_USED_EVERY);
            Ok(Some(Checked {
                viewer: Viewer::User {
                    id: token.user_id,
                    via: Via::ApiToken {
                        id: token.id,
                        can_read: token.can_read,
                        can_write: token.can_write,
                        organization: token.organization_id,
                    },
                },
                rows: Some((account, private)),
                touch: due.then_some(token.id),
            }))
        }
    }
}

/// The API token whose secret hashes to `hash`, whether its user is a member of the
/// organization it is restricted to (a LEFT JOIN on the membership's key), and its user's
/// account and private rows (by primary key, so that `viewer` needs no statement of its
/// own), in one statement.
async fn api_token_by_hash(
    db: &impl ConnectionTrait,
    hash: &str,
) -> ApiResult<Option<ApiTokenRow>> {
    #[derive(Clone, Copy, DeriveIden)]
    enum Token {
        T,
        M,
        A,
        U,
        Member,
    }
    static SHAPES: std::sync::LazyLock<Shapes> = std::sync::LazyLock::new(Shapes::new);
    let render = || {
        let mut select = Query::select();
        select_model::<api_token::Entity>(&mut select, Token::T.into_iden(), "");
        select_model::<account::Entity>(&mut select, Token::A.into_iden(), "a_");
        select_model::<user_account::Entity>(&mut select, Token::U.into_iden(), "u_");
        select
            .expr_as(
                Expr::col((Token::M, membership::Column::UserId)),
                Token::Member,
            )
            .from_as(api_token::Entity, Token::T)
            .join_as(
                JoinType::InnerJoin,
                account::Entity,
                Token::A,
                Expr::col((Token::A, account::Column::Id))
                    .equals((Token::T, api_token::Column::UserId)),
            )
            .join_as(
                JoinType::InnerJoin,
                user_account::Entity,
                Token::U,
                Expr::col((Token::U, user_account::Column::AccountId))
                    .equals((Token::T, api_token::Column::UserId)),
            )
            .join_as(
                JoinType::LeftJoin,
                membership::Entity,
                Token::M,
                Condition::all()
                    .add(
                        Expr::col((Token::M, membership::Column::OrganizationId))
                            .equals((Token::T, api_token::Column::OrganizationId)),
                    )
                    .add(
                        Expr::col((Token::M, membership::Column::UserId))
                            .equals((Token::T, api_token::Column::UserId)),
                    ),
            )
            .and_where(Expr::col((Token::T, api_token::Column::SecretHash)).eq(hash));
        select
    };
    let backend = db.get_database_backend();
    let statement = SHAPES.statement(backend, 0, vec![hash.into()], render);
    let Some(row) = db.query_one_raw(statement).await? else {
        return Ok(None);
    };
    Ok(Some(ApiTokenRow {
        token: api_token::Model::from_query_result(&row, "")?,
        member: row.try_get::<Option<i64>>("", "member")?.is_some(),
        account: account::Model::from_query_result(&row, "a_")?,
        private: user_account::Model::from_query_result(&row, "u_")?,
    }))
}

/// What [`api_token_by_hash`] reads.
struct ApiTokenRow {
    token: api_token::Model,
    member: bool,
    account: account::Model,
    private: user_account::Model,
}

/// Writes that API token `id` was used now, unless another request (on any instance) did
/// within the last minute: off the request's path, so a read never waits for a write.
pub fn touch_api_token(db: DatabaseConnection, id: i64) {
    tokio::spawn(async move {
        let now = Utc::now();
        let written = api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::val(now))
            .filter(api_token::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(api_token::Column::LastUsedAt.is_null())
                    .add(api_token::Column::LastUsedAt.lt(now - LAST_USED_EVERY)),
            )
            .exec(&db)
            .await;
        if let Err(error) = written {
            tracing::warn!(%error, "could not record an API token's use");
        }
    });
}
