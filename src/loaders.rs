//! DataLoaders, built per request (so nothing is cached across requests or viewers): every
//! look-up by key that resolvers make goes through here and is batched into one `IN (…)`
//! query per kind of key.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use entity::{account, collaborator, dataset, membership, organization, user_account};

use crate::error::ApiError;

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

/// Loads rows by key; one instance per request, for one viewer (whose visibility rules the
/// dataset pages apply).
pub struct DbLoader {
    pub(crate) db: DatabaseConnection,
    pub(crate) viewer: Option<i64>,
}

impl DbLoader {
    /// A loader over `db` for `viewer` (`None`: anonymous).
    pub fn new(db: DatabaseConnection, viewer: Option<i64>) -> Self {
        DbLoader { db, viewer }
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

impl Loader<AccountId> for DbLoader {
    type Value = account::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[AccountId],
    ) -> Result<HashMap<AccountId, Self::Value>, Self::Error> {
        let rows = account::Entity::find()
            .filter(account::Column::Id.is_in(distinct(keys.iter().map(|k| k.0))))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (AccountId(r.id), r)).collect())
    }
}

impl Loader<UserRowId> for DbLoader {
    type Value = user_account::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[UserRowId],
    ) -> Result<HashMap<UserRowId, Self::Value>, Self::Error> {
        let rows = user_account::Entity::find()
            .filter(user_account::Column::AccountId.is_in(distinct(keys.iter().map(|k| k.0))))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (UserRowId(r.account_id), r))
            .collect())
    }
}

impl Loader<OrganizationRowId> for DbLoader {
    type Value = organization::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[OrganizationRowId],
    ) -> Result<HashMap<OrganizationRowId, Self::Value>, Self::Error> {
        let rows = organization::Entity::find()
            .filter(organization::Column::AccountId.is_in(distinct(keys.iter().map(|k| k.0))))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (OrganizationRowId(r.account_id), r))
            .collect())
    }
}

impl Loader<DatasetId> for DbLoader {
    type Value = dataset::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DatasetId],
    ) -> Result<HashMap<DatasetId, Self::Value>, Self::Error> {
        let rows = dataset::Entity::find()
            .filter(dataset::Column::Id.is_in(distinct(keys.iter().map(|k| k.0))))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (DatasetId(r.id), r)).collect())
    }
}

impl Loader<MembershipKey> for DbLoader {
    type Value = membership::Model;
    type Error = LoadError;

    /// One query for the cross product of the asked organizations and users, filtered to the
    /// asked pairs (the product is small: one side is almost always the viewer alone).
    async fn load(
        &self,
        keys: &[MembershipKey],
    ) -> Result<HashMap<MembershipKey, Self::Value>, Self::Error> {
        let rows = membership::Entity::find()
            .filter(
                membership::Column::OrganizationId
                    .is_in(distinct(keys.iter().map(|k| k.organization_id))),
            )
            .filter(membership::Column::UserId.is_in(distinct(keys.iter().map(|k| k.user_id))))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let key = MembershipKey {
                    organization_id: r.organization_id,
                    user_id: r.user_id,
                };
                (key, r)
            })
            .filter(|(key, _)| keys.contains(key))
            .collect())
    }
}

impl Loader<CollaboratorKey> for DbLoader {
    type Value = collaborator::Model;
    type Error = LoadError;

    /// Like memberships: the cross product of datasets and users, filtered to the asked pairs.
    async fn load(
        &self,
        keys: &[CollaboratorKey],
    ) -> Result<HashMap<CollaboratorKey, Self::Value>, Self::Error> {
        let rows = collaborator::Entity::find()
            .filter(
                collaborator::Column::DatasetId.is_in(distinct(keys.iter().map(|k| k.dataset_id))),
            )
            .filter(collaborator::Column::UserId.is_in(distinct(keys.iter().map(|k| k.user_id))))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let key = CollaboratorKey {
                    dataset_id: r.dataset_id,
                    user_id: r.user_id,
                };
                (key, r)
            })
            .filter(|(key, _)| keys.contains(key))
            .collect())
    }
}
