//! DataLoaders, built per request (so nothing is cached across requests or viewers): every
//! look-up by key that resolvers make goes through here and is batched into one `IN (…)`
//! query per kind of key.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use entity::{account, collaborator, dataset, membership, organization, user_account};

use crate::auth::Viewer;
use crate::db::{Held, Reader};
use crate::eager::Eager;
use crate::error::ApiError;
use crate::pages::MemberPage;
use crate::telemetry::traces::Span;
use crate::telemetry::{Metrics, Statements};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;

/// The loaders' error: shared, because one batch answers many callers.
pub type LoadError = Arc<ApiError>;

/// Turns a loader's error back into an [`ApiError`] (only database failures happen there).
pub fn load_error(err: LoadError) -> ApiError {
    ApiError::internal(err.to_string())
}

pub(crate) fn db_error(err: sea_orm::DbErr) -> LoadError {
    tracing::error!(error = %err, "loader query failed");
    Arc::new(err.into())
}

/// The account `id` as a `T` (an `Organization`): `known`, borrowed, when the statement
/// that read the row referring to it read it too (`viewer.memberships` answers its
/// organizations without copying them), else through the request's loader; `missing` is
/// the internal error when it is gone.
pub async fn known_or_load<'a, T: From<account::Model> + Clone>(
    ctx: &async_graphql::Context<'_>,
    known: Option<&'a Eager<T>>,
    id: i64,
    missing: &'static str,
) -> async_graphql::Result<Cow<'a, Eager<T>>> {
    use crate::context::ContextExt;
    if let Some(known) = known {
        return Ok(Cow::Borrowed(known));
    }
    let account = ctx.load(AccountId(id)).await?;
    let account = account.ok_or_else(|| ApiError::internal(missing))?;
    Ok(Cow::Owned(Eager(account.into())))
}

/// A request's [`DbLoader`], each batch in a trace span of its own (a child of the request's
/// span: batches run in tasks of their own) and counted in the metrics.
pub struct Batched {
    loader: DbLoader,
    /// The request's trace context (`None`: no trace).
    parent: Option<opentelemetry::Context>,
    metrics: Option<Arc<Metrics>>,
}

impl Batched {
    /// `loader`'s batches, as children of `parent`'s span, counted in `metrics`.
    pub fn new(
        loader: DbLoader,
        parent: Option<opentelemetry::Context>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Batched {
            loader,
            parent,
            metrics,
        }
    }
}

impl std::ops::Deref for Batched {
    type Target = DbLoader;

    fn deref(&self) -> &DbLoader {
        &self.loader
    }
}

/// A key type's name, the `loader` label: `MembershipKey` for `orgql::loaders::MembershipKey`.
fn loader_name<K>() -> &'static str {
    let name = std::any::type_name::<K>();
    let name = name.split('<').next().unwrap_or(name);
    name.rsplit("::").next().unwrap_or(name)
}

impl<K> Loader<K> for Batched
where
    DbLoader: Loader<K>,
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
{
    type Value = <DbLoader as Loader<K>>::Value;
    type Error = <DbLoader as Loader<K>>::Error;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, Self::Value>, Self::Error> {
        let name = loader_name::<K>();
        if let Some(metrics) = &self.metrics {
            metrics.loader_batch(name, keys.len());
        }
        let span = Span::child_of(
            self.parent.as_ref(),
            "loader.batch",
            SpanKind::Internal,
            || {
                vec![
                    KeyValue::new("loader", name),
                    KeyValue::new("keys", keys.len() as i64),
                ]
            },
        );
        span.around(self.loader.load(keys)).await
    }
}

/// Loads rows by key; one instance per request, for one viewer (whose visibility rules the
/// dataset pages apply).
pub struct DbLoader {
    pub(crate) db: DatabaseConnection,
    /// The server's statement counter ([`crate::context::AppState::statements`]).
    pub(crate) statements: Arc<Statements>,
    /// Who is asking.
    pub(crate) viewer: Viewer,
    /// The request's own connection, when its operation only reads (see [`Held`]).
    held: Option<Held>,
    /// The viewer's account, read with their credential (for `viewer`, which would
    /// otherwise read it again).
    viewer_account: std::sync::OnceLock<account::Model>,
    /// The viewer's private row, read with their credential or with `viewer` (for
    /// `viewer { email }`, which would otherwise load it in a statement of its own).
    viewer_row: std::sync::OnceLock<user_account::Model>,
    /// The viewer's membership of the organization that `organization(username:)` read it
    /// with (`None` inside: not a member), for the role checks that would otherwise load it.
    known_membership: std::sync::OnceLock<(MembershipKey, Option<membership::Model>)>,
    /// Every membership of the viewer, by organization id, when `viewer { memberships }`
    /// read them: the role checks on those organizations (and on any other: not a member)
    /// need no statement of their own.
    viewer_memberships: std::sync::OnceLock<Vec<membership::Model>>,
    /// A page of members read along with its organization by `organization(username:)`,
    /// until the `members` field that asked for it takes it.
    member_page: std::sync::Mutex<Option<(MemberPage, Vec<membership::Model>)>>,
    /// Whether rows read along with others are kept for later fields (the six above). Only
    /// in a request that writes nothing: a mutation may change them, and every field of a
    /// request must see the request's own writes.
    remembers: bool,
}

impl DbLoader {
    /// A loader over `db` for `viewer`, counting its statements in `statements`. With
    /// `held`, the request's statements run on that connection (see [`Held`]): only for
    /// operations that open no transaction (queries), which are also the only ones whose
    /// loader keeps rows read along with others for later fields.
    pub fn new(
        db: DatabaseConnection,
        statements: Arc<Statements>,
        viewer: Viewer,
        held: Option<Held>,
    ) -> Self {
        let remembers = held.is_some();
        DbLoader {
            db,
            statements,
            viewer,
            held,
            viewer_account: std::sync::OnceLock::new(),
            viewer_row: std::sync::OnceLock::new(),
            known_membership: std::sync::OnceLock::new(),
            viewer_memberships: std::sync::OnceLock::new(),
            member_page: std::sync::Mutex::new(None),
            remembers,
        }
    }

    /// Keeps the viewer's account and private row, read with their credential, for this
    /// request.
    pub(crate) fn keep_viewer(&self, account: account::Model, row: user_account::Model) {
        if self.remembers {
            let _ = self.viewer_account.set(account);
            let _ = self.viewer_row.set(row);
        }
    }

    /// The viewer's account, if their credential's check read it in this request.
    pub(crate) fn viewer_account(&self, id: i64) -> Option<&account::Model> {
        self.viewer_account.get().filter(|account| account.id == id)
    }

    /// Keeps the membership `key` (or that there is none), read along with the
    /// organization, for this request. Only the first one read is kept.
    pub(crate) fn keep_membership(&self, key: MembershipKey, row: Option<membership::Model>) {
        if !self.remembers {
            return;
        }
        let _ = self.known_membership.set((key, row));
    }

    /// Keeps the page of members `key`, read along with its organization, for the
    /// `members` field that asked for it. Only the first one read is kept.
    pub(crate) fn keep_member_page(&self, key: MemberPage, rows: Vec<membership::Model>) {
        if !self.remembers {
            return;
        }
        let mut slot = self.member_page.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some((key, rows));
        }
    }

    /// The page of members `key`, if it was read along with its organization: taken, so
    /// it answers one field.
    pub(crate) fn take_member_page(&self, key: &MemberPage) -> Option<Vec<membership::Model>> {
        let mut slot = self.member_page.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some((kept, rows)) if &kept == key => Some(rows),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Keeps every membership of the viewer, read whole, for this request.
    pub(crate) fn keep_viewer_memberships<'a>(
        &self,
        rows: impl IntoIterator<Item = &'a membership::Model>,
    ) {
        if !self.remembers {
            return;
        }
        let mut rows: Vec<membership::Model> = rows.into_iter().cloned().collect();
        let viewer = self.viewer.user_id();
        if viewer.is_none() || rows.iter().any(|m| Some(m.user_id) != viewer) {
            return;
        }
        rows.sort_unstable_by_key(|m| m.organization_id);
        let _ = self.viewer_memberships.set(rows);
    }

    /// The membership `key`, if it was read already in this request: `Some(None)` when
    /// there is none.
    pub(crate) fn known_membership(
        &self,
        key: &MembershipKey,
    ) -> Option<Option<&membership::Model>> {
        if Some(key.user_id) == self.viewer.user_id()
            && let Some(rows) = self.viewer_memberships.get()
        {
            let found = rows.binary_search_by_key(&key.organization_id, |m| m.organization_id);
            return Some(found.ok().map(|i| &rows[i]));
        }
        let (known, row) = self.known_membership.get()?;
        (known == key).then_some(row.as_ref())
    }

    /// Keeps the viewer's private row, read along with their account, for this request.
    pub(crate) fn keep_viewer_row(&self, row: user_account::Model) {
        // A second `viewer` field in the same operation read the same row.
        if self.remembers {
            let _ = self.viewer_row.set(row);
        }
    }

    /// The private row of user `id`, if `viewer` read it already in this request.
    pub(crate) fn viewer_row(&self, id: i64) -> Option<&user_account::Model> {
        self.viewer_row.get().filter(|row| row.account_id == id)
    }

    /// Reads for this request (see [`crate::db::Reader`]): sea-orm's selects on
    /// [`crate::db::fetch_all`], counted with the server's other statements, on the
    /// request's own connection if it holds one.
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader::new(&self.db, &self.statements).holding(self.held.as_ref())
    }
}

/// An account by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountId(pub i64);
/// A user's private row by account id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserRowId(pub i64);
/// An organization's row by account id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrganizationRowId(pub i64);
/// A dataset by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DatasetId(pub i64);
/// A membership by (organization id, user id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MembershipKey {
    /// The organization's account id.
    pub organization_id: i64,
    /// The user's account id.
    pub user_id: i64,
}
/// A collaborator entry by (dataset id, user id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CollaboratorKey {
    /// The dataset's id.
    pub dataset_id: i64,
    /// The user's account id.
    pub user_id: i64,
}

fn distinct<T: Copy + Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl DbLoader {
    /// The rows of `E` whose `column` is one of `ids`, keyed by `key`.
    async fn rows_by_id<E: EntityTrait, K: Eq + std::hash::Hash>(
        &self,
        column: E::Column,
        ids: impl Iterator<Item = i64>,
        key: impl Fn(&E::Model) -> K,
    ) -> Result<HashMap<K, E::Model>, LoadError> {
        let rows = E::find()
            .filter(column.is_in(distinct(ids)))
            .all(&self.reader())
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (key(&r), r)).collect())
    }

    /// The rows of `E` for pairs of ids in its `left` and `right` columns: one query for
    /// the cross product of both sides' ids, filtered to the asked pairs (the product is
    /// small: one side is almost always the viewer alone).
    async fn rows_by_pair<E: EntityTrait, K: Eq + std::hash::Hash>(
        &self,
        (left, right): (E::Column, E::Column),
        keys: &[K],
        sides: impl Fn(&K) -> (i64, i64),
        key: impl Fn(&E::Model) -> K,
    ) -> Result<HashMap<K, E::Model>, LoadError> {
        let rows = E::find()
            .filter(left.is_in(distinct(keys.iter().map(|k| sides(k).0))))
            .filter(right.is_in(distinct(keys.iter().map(|k| sides(k).1))))
            .all(&self.reader())
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (key(&r), r))
            .filter(|(k, _)| keys.contains(k))
            .collect())
    }
}

/// `impl Loader<$key> for DbLoader`, loading `$entity` rows by the id in `$key.0`, which
/// is their column `$column` (field `$field`).
macro_rules! by_id {
    ($key:ident, $entity:ident, $column:ident, $field:ident) => {
        impl Loader<$key> for DbLoader {
            type Value = $entity::Model;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Self::Error> {
                self.rows_by_id::<$entity::Entity, _>(
                    $entity::Column::$column,
                    keys.iter().map(|k| k.0),
                    |r: &$entity::Model| $key(r.$field),
                )
                .await
            }
        }
    };
}

by_id!(AccountId, account, Id, id);
by_id!(UserRowId, user_account, AccountId, account_id);
by_id!(OrganizationRowId, organization, AccountId, account_id);
by_id!(DatasetId, dataset, Id, id);

impl Loader<MembershipKey> for DbLoader {
    type Value = membership::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[MembershipKey],
    ) -> Result<HashMap<MembershipKey, Self::Value>, Self::Error> {
        self.rows_by_pair::<membership::Entity, _>(
            (
                membership::Column::OrganizationId,
                membership::Column::UserId,
            ),
            keys,
            |k| (k.organization_id, k.user_id),
            |r: &membership::Model| MembershipKey {
                organization_id: r.organization_id,
                user_id: r.user_id,
            },
        )
        .await
    }
}

impl Loader<CollaboratorKey> for DbLoader {
    type Value = collaborator::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CollaboratorKey],
    ) -> Result<HashMap<CollaboratorKey, Self::Value>, Self::Error> {
        self.rows_by_pair::<collaborator::Entity, _>(
            (
                collaborator::Column::DatasetId,
                collaborator::Column::UserId,
            ),
            keys,
            |k| (k.dataset_id, k.user_id),
            |r: &collaborator::Model| CollaboratorKey {
                dataset_id: r.dataset_id,
                user_id: r.user_id,
            },
        )
        .await
    }
}
