//! Datasets and their collaborators: visibility ("invisible means absent"), the effective
//! role, the default-dataset-role fan-out, cloning and transfer.

mod graphql;

pub use graphql::{Collaborator, Dataset, DatasetConnection, DatasetMutation, DatasetQuery};
pub(crate) use graphql::{owned_datasets, viewer_dataset_role};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QuerySelect, Set,
};

use entity::roles::{AccountKind, DatasetRole};
use entity::{account, collaborator, dataset, membership, organization};

use crate::audit::{AuditAction, Change, Event};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, conflict_on_unique};
use crate::newtypes::{DatasetName, username_key};
use crate::organizations::{membership, require_user};
use crate::policy::{
    DatasetAction, administers_datasets, dataset_allows, effective_dataset_role,
    may_move_or_delete, may_set_collaborator,
};

/// A dataset with its owner's account.
#[derive(Clone, Debug)]
pub struct Located {
    /// The dataset row.
    pub dataset: dataset::Model,
    /// Its owner.
    pub owner: account::Model,
}

/// Finds the account (user or organization) named `username`, any case.
pub async fn find_account(
    db: &impl ConnectionTrait,
    username: &str,
) -> ApiResult<Option<account::Model>> {
    Ok(account::Entity::find()
        .filter(account::Column::UsernameKey.eq(username_key(username)))
        .one(db)
        .await?)
}

/// Finds the dataset `owner/name`, ignoring visibility. `None` for a malformed full name.
pub async fn find_dataset(
    db: &impl ConnectionTrait,
    full_name: &str,
) -> ApiResult<Option<Located>> {
    let Some((owner, name)) = full_name.split_once('/') else {
        return Ok(None);
    };
    let Some(owner) = find_account(db, owner).await? else {
        return Ok(None);
    };
    let dataset = dataset::Entity::find()
        .filter(dataset::Column::OwnerId.eq(owner.id))
        .filter(dataset::Column::NameKey.eq(name.to_ascii_lowercase()))
        .one(db)
        .await?;
    Ok(dataset.map(|dataset| Located { dataset, owner }))
}

/// Whether `viewer` owns the account `owner` or administers it (an organization).
async fn owns_or_administers(
    db: &impl ConnectionTrait,
    owner: &account::Model,
    viewer: i64,
) -> ApiResult<bool> {
    Ok(match owner.kind {
        AccountKind::User => owner.id == viewer,
        AccountKind::Organization => {
            administers_datasets(membership(db, owner.id, viewer).await?.map(|m| m.role))
        }
    })
}

/// The viewer's effective role on a dataset (see [`effective_dataset_role`]).
pub async fn effective_role(
    db: &impl ConnectionTrait,
    located: &Located,
    viewer: Option<i64>,
) -> ApiResult<Option<DatasetRole>> {
    let Some(viewer) = viewer else {
        return Ok(None);
    };
    let admin = owns_or_administers(db, &located.owner, viewer).await?;
    effective_role_of(db, located, viewer, admin).await
}

/// The effective role of `viewer`, who owns or administers the dataset's owner or not.
async fn effective_role_of(
    db: &impl ConnectionTrait,
    located: &Located,
    viewer: i64,
    admin: bool,
) -> ApiResult<Option<DatasetRole>> {
    let collaborator = if admin {
        None
    } else {
        collaborator::Entity::find_by_id((located.dataset.id, viewer))
            .one(db)
            .await?
            .map(|c| c.role)
    };
    Ok(effective_dataset_role(admin, collaborator))
}

/// The one answer for a dataset that does not exist *or* that the viewer may not see: the
/// message is the same, so it leaks nothing.
fn no_such_dataset(full_name: &str) -> ApiError {
    ApiError::NotFound(format!("no dataset named '{full_name}'"))
}

/// Finds a dataset about to change and locks its row until `tx` ends, so that the change is
/// decided on its latest committed state: a concurrent transfer is waited for, after which the
/// dataset is no longer found under its old name (PostgreSQL re-checks the condition on the
/// row it waited for; SQLite runs one writer at a time anyway). Without the lock, a
/// collaborator added while the dataset moves into an organization was checked against the
/// old owner and slipped in after the transfer dropped the non-members.
///
async fn lock_dataset(tx: &DatabaseTransaction, full_name: &str) -> ApiResult<Option<Located>> {
    let Some((owner, name)) = full_name.split_once('/') else {
        return Ok(None);
    };
    let Some(owner) = find_account(tx, owner).await? else {
        return Ok(None);
    };
    let dataset = dataset::Entity::find()
        .filter(dataset::Column::OwnerId.eq(owner.id))
        .filter(dataset::Column::NameKey.eq(name.to_ascii_lowercase()))
        .lock_exclusive()
        .one(tx)
        .await?;
    Ok(dataset.map(|dataset| Located { dataset, owner }))
}

/// Finds a dataset for a mutation inside `tx`: `NOT_FOUND` if it is missing or invisible to
/// the viewer, `FORBIDDEN` if visible but `action` is not allowed. Returns it with the
/// viewer's effective role. A dataset that will change is locked (see [`lock_dataset`]); the
/// source of a clone is only read.
async fn authorize(
    tx: &DatabaseTransaction,
    full_name: &str,
    actor: Actor,
    action: DatasetAction,
) -> ApiResult<(Located, Option<DatasetRole>)> {
    let located = match action {
        DatasetAction::Clone => find_dataset(tx, full_name).await?,
        _ => lock_dataset(tx, full_name).await?,
    }
    .ok_or_else(|| no_such_dataset(full_name))?;
    // A token restricted to another organization is anonymous here: it may read a public
    // dataset (to clone it into its own organization), and change nothing.
    let viewer = match action {
        DatasetAction::Clone => actor.on(located.owner.id).ok(),
        _ => Some(actor.on(located.owner.id)?),
    };
    let (administers_owner, role) = match viewer {
        Some(viewer) => {
            let administers = owns_or_administers(tx, &located.owner, viewer).await?;
            let role = effective_role_of(tx, &located, viewer, administers).await?;
            (administers, role)
        }
        None => (false, None),
    };
    let public = located.dataset.public;
    if !dataset_allows(role, public, DatasetAction::See) {
        return Err(no_such_dataset(full_name));
    }
    let owned_by_organization = located.owner.kind == AccountKind::Organization;
    let allowed = match action {
        DatasetAction::Delete | DatasetAction::Transfer => {
            may_move_or_delete(role, owned_by_organization, administers_owner)
        }
        _ => dataset_allows(role, public, action),
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            match action {
                DatasetAction::ManageCollaborators => {
                    "only a MANAGER or ADMIN of the dataset may manage its collaborators"
                }
                DatasetAction::Clone => {
                    "only public datasets, or datasets you administer, may be cloned"
                }
                DatasetAction::Delete | DatasetAction::Transfer
                    if role == Some(DatasetRole::Admin) =>
                {
                    "only an ADMIN of the organization that owns the dataset may move or delete it"
                }
                _ => "only an ADMIN of the dataset may do this",
            }
            .into(),
        ));
    }
    Ok((located, role))
}

/// Resolves the account a new dataset goes to: `None` is the viewer; otherwise the viewer
/// themself or an organization the viewer administers (`FORBIDDEN` for anything else,
/// `NOT_FOUND` when there is no such account). Locks an organization's row so that the
/// fan-out sees a membership list no concurrent change can alter before commit.
async fn target_owner(
    tx: &DatabaseTransaction,
    owner: Option<&str>,
    actor: Actor,
) -> ApiResult<account::Model> {
    let account = match owner {
        None => {
            account::Entity::find_by_id(actor.as_themself()?)
                .one(tx)
                .await?
        }
        Some(name) => find_account(tx, name).await?,
    }
    .ok_or_else(|| ApiError::NotFound(format!("no account named '{}'", owner.unwrap_or(""))))?;
    let viewer = actor.on(account.id)?;
    match account.kind {
        AccountKind::User if account.id == viewer => Ok(account),
        AccountKind::User => Err(ApiError::Forbidden(
            "datasets can be created only under your own account or an organization you administer"
                .into(),
        )),
        AccountKind::Organization => {
            organization::Entity::find_by_id(account.id)
                .lock_exclusive()
                .one(tx)
                .await?;
            let role = membership(tx, account.id, viewer).await?.map(|m| m.role);
            if crate::policy::org_allows(role, crate::policy::OrgAction::CreateDataset) {
                Ok(account)
            } else {
                Err(ApiError::Forbidden(
                    "only an admin of the organization may create its datasets".into(),
                ))
            }
        }
    }
}

/// The organization whose log shows the events of a dataset owned by `owner`: the owner,
/// when it is an organization.
fn log_of(owner: &account::Model) -> Option<i64> {
    (owner.kind == AccountKind::Organization).then_some(owner.id)
}

/// The event of `action` on `dataset`, owned by `owner`.
fn dataset_event(action: AuditAction, dataset: &dataset::Model, owner: &account::Model) -> Event {
    Event::new(action).dataset(
        dataset.id,
        format!("{}/{}", owner.username, dataset.name),
        log_of(owner),
    )
}

/// Inserts a dataset with its first collaborators: the creator as `ADMIN` and, for an
/// organization, every other member whose default dataset role is not null, with that role.
/// Records `action` (created or cloned) and a `COLLABORATOR_ADDED` for each collaborator.
async fn insert_with_fan_out(
    tx: &mut Change,
    action: AuditAction,
    owner: &account::Model,
    creator: i64,
    name: &DatasetName,
    description: String,
    public: bool,
) -> ApiResult<dataset::Model> {
    let dataset = dataset::ActiveModel {
        owner_id: Set(owner.id),
        name: Set(name.as_str().to_owned()),
        name_key: Set(name.key()),
        description: Set(description),
        public: Set(public),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&*tx)
    .await
    .map_err(|e| {
        conflict_on_unique(
            e,
            format!("'{}/{}' already exists", owner.username, name.as_str()),
        )
    })?;
    let creator_account = account::Entity::find_by_id(creator)
        .one(&*tx)
        .await?
        .ok_or_else(ApiError::sign_in_required)?;
    let mut rows = vec![collaborator::ActiveModel {
        dataset_id: Set(dataset.id),
        user_id: Set(creator),
        username_key: Set(creator_account.username_key),
        role: Set(DatasetRole::Admin),
        username: Set(creator_account.username),
    }];
    if owner.kind == AccountKind::Organization {
        let members = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(owner.id))
            .filter(membership::Column::DefaultDatasetRole.is_not_null())
            .filter(membership::Column::UserId.ne(creator))
            .all(&*tx)
            .await?;
        rows.extend(members.into_iter().filter_map(|m| {
            Some(collaborator::ActiveModel {
                dataset_id: Set(dataset.id),
                user_id: Set(m.user_id),
                username_key: Set(m.username_key),
                role: Set(m.default_dataset_role?),
                username: Set(m.username),
            })
        }));
    }
    tx.record(dataset_event(action, &dataset, owner));
    for row in &rows {
        let (
            sea_orm::ActiveValue::Set(user),
            sea_orm::ActiveValue::Set(username),
            sea_orm::ActiveValue::Set(role),
        ) = (&row.user_id, &row.username, &row.role)
        else {
            continue;
        };
        tx.record(
            dataset_event(AuditAction::CollaboratorAdded, &dataset, owner)
                .subject(*user, username)
                .role(Some(*role)),
        );
    }
    collaborator::Entity::insert_many(rows).exec(&*tx).await?;
    Ok(dataset)
}

/// Creates a dataset under the viewer or an organization they administer, with the fan-out,
/// in one transaction: a failure leaves neither dataset nor collaborators.
pub async fn create_dataset(
    db: &DatabaseConnection,
    actor: Actor,
    owner: Option<&str>,
    name: DatasetName,
    description: String,
    public: bool,
) -> ApiResult<Located> {
    let mut tx = Change::begin(db, actor.user).await?;
    let owner = target_owner(&tx, owner, actor).await?;
    let dataset = insert_with_fan_out(
        &mut tx,
        AuditAction::DatasetCreated,
        &owner,
        actor.user,
        &name,
        description,
        public,
    )
    .await?;
    tx.commit().await?;
    Ok(Located { dataset, owner })
}

/// Updates a dataset's settings (its ADMINs only); `None` leaves a field unchanged.
pub async fn update_dataset(
    db: &DatabaseConnection,
    actor: Actor,
    full_name: &str,
    description: Option<String>,
    public: Option<bool>,
) -> ApiResult<Located> {
    let mut tx = Change::begin(db, actor.user).await?;
    let (located, _) = authorize(&tx, full_name, actor, DatasetAction::UpdateSettings).await?;
    // Nothing to change: nothing is written (and no event).
    if description.is_none() && public.is_none() {
        return Ok(located);
    }
    tx.record(dataset_event(
        AuditAction::DatasetUpdated,
        &located.dataset,
        &located.owner,
    ));
    let mut change: dataset::ActiveModel = located.dataset.into();
    if let Some(description) = description {
        change.description = Set(description);
    }
    if let Some(public) = public {
        change.public = Set(public);
    }
    let dataset = change.update(&tx).await?;
    tx.commit().await?;
    Ok(Located {
        dataset,
        owner: located.owner,
    })
}

/// Deletes a dataset and its collaborator entries (its ADMINs; of an organization's dataset,
/// only those who are ADMINs of the organization too). Returns its id.
pub async fn delete_dataset(
    db: &DatabaseConnection,
    actor: Actor,
    full_name: &str,
) -> ApiResult<i64> {
    let mut tx = Change::begin(db, actor.user).await?;
    let (located, _) = authorize(&tx, full_name, actor, DatasetAction::Delete).await?;
    dataset::Entity::delete_by_id(located.dataset.id)
        .exec(&tx)
        .await?;
    tx.record(dataset_event(
        AuditAction::DatasetDeleted,
        &located.dataset,
        &located.owner,
    ));
    tx.commit().await?;
    Ok(located.dataset.id)
}

fn manager_refused() -> ApiError {
    ApiError::Forbidden("a MANAGER may not grant, change or remove the ADMIN role".into())
}

/// Adds a collaborator (MANAGERs and ADMINs; a MANAGER never grants `ADMIN`).
pub async fn add_collaborator(
    db: &DatabaseConnection,
    actor: Actor,
    full_name: &str,
    username: &str,
    role: DatasetRole,
) -> ApiResult<collaborator::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let (located, actor) =
        authorize(&tx, full_name, actor, DatasetAction::ManageCollaborators).await?;
    if !may_set_collaborator(actor, None, Some(role)) {
        return Err(manager_refused());
    }
    // Anyone may be a collaborator, members of the owning organization or not (outside
    // collaborators, API.md "Roles").
    let user = require_user(&tx, username).await?;
    let row = collaborator::ActiveModel {
        dataset_id: Set(located.dataset.id),
        user_id: Set(user.id),
        username_key: Set(user.username_key.clone()),
        role: Set(role),
        username: Set(user.username.clone()),
    }
    .insert(&tx)
    .await
    .map_err(|e| {
        conflict_on_unique(
            e,
            format!(
                "'{}' is already a collaborator on '{full_name}'",
                user.username
            ),
        )
    })?;
    tx.record(
        dataset_event(
            AuditAction::CollaboratorAdded,
            &located.dataset,
            &located.owner,
        )
        .subject(user.id, &user.username)
        .role(Some(role)),
    );
    tx.commit().await?;
    Ok(row)
}

/// The collaborator entry of `username` on a dataset, or `NOT_FOUND`.
async fn require_collaborator(
    tx: &DatabaseTransaction,
    located: &Located,
    username: &str,
) -> ApiResult<collaborator::Model> {
    let user = require_user(tx, username).await?;
    collaborator::Entity::find_by_id((located.dataset.id, user.id))
        .one(tx)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "'{}' is not a collaborator on '{}/{}'",
                user.username, located.owner.username, located.dataset.name
            ))
        })
}

/// Changes a collaborator's role (MANAGERs and ADMINs; a MANAGER never touches `ADMIN`).
pub async fn update_collaborator(
    db: &DatabaseConnection,
    actor: Actor,
    full_name: &str,
    username: &str,
    role: DatasetRole,
) -> ApiResult<collaborator::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let (located, actor) =
        authorize(&tx, full_name, actor, DatasetAction::ManageCollaborators).await?;
    let current = require_collaborator(&tx, &located, username).await?;
    if !may_set_collaborator(actor, Some(current.role), Some(role)) {
        return Err(manager_refused());
    }
    tx.record(
        dataset_event(
            AuditAction::CollaboratorUpdated,
            &located.dataset,
            &located.owner,
        )
        .subject(current.user_id, &current.username)
        .role(Some(role))
        .previous_role(Some(current.role)),
    );
    let mut change: collaborator::ActiveModel = current.into();
    change.role = Set(role);
    let row = change.update(&tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// Removes a collaborator (MANAGERs and ADMINs; a MANAGER never removes an `ADMIN`).
pub async fn remove_collaborator(
    db: &DatabaseConnection,
    actor: Actor,
    full_name: &str,
    username: &str,
) -> ApiResult<Located> {
    let mut tx = Change::begin(db, actor.user).await?;
    let (located, actor) =
        authorize(&tx, full_name, actor, DatasetAction::ManageCollaborators).await?;
    let current = require_collaborator(&tx, &located, username).await?;
    if !may_set_collaborator(actor, Some(current.role), None) {
        return Err(manager_refused());
    }
    tx.record(
        dataset_event(
            AuditAction::CollaboratorRemoved,
            &located.dataset,
            &located.owner,
        )
        .subject(current.user_id, &current.username)
        .previous_role(Some(current.role)),
    );
    collaborator::Entity::delete_by_id((current.dataset_id, current.user_id))
        .exec(&tx)
        .await?;
    tx.commit().await?;
    Ok(located)
}

/// Clones a dataset the viewer may clone (public, or one they administer) into the viewer's
/// account or an organization they administer: description and visibility are copied, and
/// collaborators follow the creation fan-out (not the source's list).
pub async fn clone_dataset(
    db: &DatabaseConnection,
    actor: Actor,
    full_name: &str,
    owner: Option<&str>,
    name: Option<DatasetName>,
) -> ApiResult<Located> {
    let mut tx = Change::begin(db, actor.user).await?;
    let (source, _) = authorize(&tx, full_name, actor, DatasetAction::Clone).await?;
    let name = match name {
        Some(name) => name,
        None => DatasetName::parse("name", &format!("{}-clone", source.dataset.name))?,
    };
    let owner = target_owner(&tx, owner, actor).await?;
    let dataset = insert_with_fan_out(
        &mut tx,
        AuditAction::DatasetCloned,
        &owner,
        actor.user,
        &name,
        source.dataset.description.clone(),
        source.dataset.public,
    )
    .await?;
    tx.commit().await?;
    Ok(Located { dataset, owner })
}

/// Moves a dataset to another owner: the viewer must be its ADMIN (and an ADMIN of the
/// organization that owns it, if one does) and the new owner must be the viewer or an
/// organization they administer; the name must be free there (`CONFLICT`). Collaborators
/// stay: those who are not members of the new owner are its outside collaborators.
pub async fn transfer_dataset(
    db: &DatabaseConnection,
    actor: Actor,
    full_name: &str,
    new_owner: &str,
) -> ApiResult<Located> {
    let mut tx = Change::begin(db, actor.user).await?;
    let (located, _) = authorize(&tx, full_name, actor, DatasetAction::Transfer).await?;
    let owner = target_owner(&tx, Some(new_owner), actor).await?;
    let mut change: dataset::ActiveModel = located.dataset.clone().into();
    change.owner_id = Set(owner.id);
    let dataset = change.update(&tx).await.map_err(|e| {
        conflict_on_unique(
            e,
            format!(
                "'{}/{}' already exists",
                owner.username, located.dataset.name
            ),
        )
    })?;
    // One event in the dataset's log and the new owner's; a copy in the former owner's.
    let event = dataset_event(AuditAction::DatasetTransferred, &dataset, &owner);
    if let Some(former) = log_of(&located.owner).filter(|former| Some(*former) != log_of(&owner)) {
        tx.record(event.copy_for(former));
    }
    tx.record(event);
    tx.commit().await?;
    Ok(Located { dataset, owner })
}
