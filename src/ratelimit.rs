//! Rate limits on password guessing and sign-ups (API.md, "Authentication"), kept in the
//! database so that every instance on one PostgreSQL shares one allowance.
//!
//! Each limited thing (an account's sign-ins, an address's sign-ins or sign-ups) is a
//! bucket with GCRA's "theoretical arrival time" (TAT): `n` attempts a minute means one
//! attempt costs a minute / `n`, and an attempt is allowed while the TAT it would move to
//! lies at most a minute ahead, so a fresh bucket allows `n` at once and then one every
//! minute / `n`. Checking and spending is one `INSERT … ON CONFLICT DO UPDATE … RETURNING`
//! statement, atomic on both databases however many instances race.

use std::net::IpAddr;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, FromQueryResult};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, StatementBuilder};

use entity::rate_limit;

use crate::error::{ApiError, ApiResult};

/// The client's address, put into each request's context data by the HTTP edge.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// The period every allowance is counted over.
const PERIOD_MS: i64 = 60_000;

/// How often each instance forgets buckets that are back to a full allowance.
const PRUNE_EVERY: Duration = Duration::from_secs(300);

/// The configured allowances, per minute.
#[derive(Clone)]
pub struct RateLimits {
    /// `logIn` attempts per account (its username in any case and its email share it).
    pub log_in_per_account: u32,
    /// `logIn` attempts per client address.
    pub log_in_per_address: u32,
    /// `signUp` attempts per client address.
    pub sign_up_per_address: u32,
    /// Where refusals are counted (`orgql_rate_limited_total`).
    pub metrics: Option<std::sync::Arc<crate::telemetry::Metrics>>,
}

/// A bucket: what one allowance limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bucket<'a> {
    /// Sign-ins to an existing account.
    LogInAccount(i64),
    /// Sign-ins with a login that names no account (its lowercased text).
    LogInUnknown(&'a str),
    /// Sign-ins from an address.
    LogInAddress(IpAddr),
    /// Sign-ups from an address.
    SignUpAddress(IpAddr),
}

impl Bucket<'_> {
    fn key(&self) -> String {
        let key = match self {
            Bucket::LogInAccount(id) => format!("log_in:account:{id}"),
            Bucket::LogInUnknown(login) => format!("log_in:unknown:{login}"),
            Bucket::LogInAddress(address) => format!("log_in:address:{address}"),
            Bucket::SignUpAddress(address) => format!("sign_up:address:{address}"),
        };
        // The column holds 200 characters; an unknown login may be longer. Its prefix
        // still limits guesses at it.
        key.chars().take(200).collect()
    }
}

#[derive(FromQueryResult)]
struct Spent {
    allowed: bool,
}

/// Spends one attempt from `bucket`, allowed `per_minute` (0 counts as 1): whether it was
/// allowed.
pub async fn spend(
    db: &impl ConnectionTrait,
    bucket: &Bucket<'_>,
    per_minute: u32,
) -> ApiResult<bool> {
    use rate_limit::Column;
    let now = chrono::Utc::now().timestamp_millis();
    let cost = PERIOD_MS / i64::from(Ord::max(per_minute, 1));
    let tat = Expr::col((rate_limit::Entity, Column::Tat));
    // The TAT the attempt starts from: the stored one, or now if that has passed.
    let from: Expr = Expr::case(tat.clone().gt(now), tat.clone())
        .finally(now)
        .into();
    let allowed = from.clone().add(cost).sub(now).lte(PERIOD_MS);
    let statement = Query::insert()
        .into_table(rate_limit::Entity)
        .columns([Column::Bucket, Column::Tat, Column::Allowed])
        .values_panic([bucket.key().into(), (now + cost).into(), true.into()])
        .on_conflict(
            OnConflict::column(Column::Bucket)
                .value(Column::Allowed, allowed.clone())
                .value(
                    Column::Tat,
                    Into::<Expr>::into(Expr::case(allowed, from.add(cost)).finally(tat)),
                )
                .to_owned(),
        )
        .returning_col(Column::Allowed)
        .to_owned();
    let spent = Spent::find_by_statement(StatementBuilder::build(
        &statement,
        &db.get_database_backend(),
    ))
    .one(db)
    .await?;
    Ok(spent.is_some_and(|s| s.allowed))
}

impl RateLimits {
    /// Counts one sign-in attempt with `account` (its id, or the lowercased login that
    /// names none) from `address`: `RATE_LIMITED` once either allowance is used up.
    pub async fn log_in(
        &self,
        db: &impl ConnectionTrait,
        account: Result<i64, &str>,
        address: Option<IpAddr>,
    ) -> ApiResult<()> {
        if let Some(address) = address
            && !spend(db, &Bucket::LogInAddress(address), self.log_in_per_address).await?
        {
            return Err(self.refused("log_in_address", "sign-in attempts"));
        }
        let bucket = match account {
            Ok(id) => Bucket::LogInAccount(id),
            Err(login) => Bucket::LogInUnknown(login),
        };
        if !spend(db, &bucket, self.log_in_per_account).await? {
            return Err(self.refused("log_in_account", "sign-in attempts"));
        }
        Ok(())
    }

    /// Counts one sign-up from `address`: `RATE_LIMITED` once its allowance is used up.
    pub async fn sign_up(
        &self,
        db: &impl ConnectionTrait,
        address: Option<IpAddr>,
    ) -> ApiResult<()> {
        if let Some(address) = address
            && !spend(
                db,
                &Bucket::SignUpAddress(address),
                self.sign_up_per_address,
            )
            .await?
        {
            return Err(self.refused("sign_up_address", "sign-ups from this address"));
        }
        Ok(())
    }

    /// `RATE_LIMITED` by `limit` (counted in the metrics) for too many `what`.
    fn refused(&self, limit: &str, what: &str) -> ApiError {
        if let Some(metrics) = &self.metrics {
            metrics.rate_limited(limit);
        }
        ApiError::RateLimited(format!("too many {what}: wait a minute and try again"))
    }
}

/// Deletes the buckets whose TAT has passed (a full allowance again, as if never used),
/// every few minutes, so the table holds only recent attempts; until `db` is closed.
pub fn prune_periodically(db: DatabaseConnection) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PRUNE_EVERY).await;
            let now = chrono::Utc::now().timestamp_millis();
            let pruned = rate_limit::Entity::delete_many()
                .filter(rate_limit::Column::Tat.lt(now))
                .exec(&db)
                .await;
            if let Err(error) = pruned {
                // Unreachable, or closed as the server stops: the next round tries again.
                tracing::debug!(%error, "rate-limit pruning skipped");
            }
        }
    });
}
