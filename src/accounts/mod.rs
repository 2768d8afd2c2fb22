//! Personal accounts: signing up, logging in, and the `User` type.

mod graphql;

pub use graphql::{AccountMutation, AccountQuery, User};

use std::net::IpAddr;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, IntoIden, JoinType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DeriveIden, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, Set, TransactionTrait,
};

use entity::roles::AccountKind;
use entity::{account, user_account};

use crate::auth;
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
) -> ApiResult<account::Model> {
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
        Some((_, account)) if ok => Ok(account),
        _ => Err(ApiError::Unauthenticated(
            "wrong username, email or password",
        )),
    }
}
