//! Organizations and their members: who may do what (asking [`crate::policy`]), and the
//! transactions that keep an organization's invariants — above all, that it always keeps at
//! least one admin, however many requests race.

mod graphql;

pub use graphql::{Member, Organization, OrganizationMutation, OrganizationQuery};

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::sea_query::{
    Condition, Expr, ExprTrait, IntoIden, JoinType, Order, Query, SelectStatement, UnionType,
};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DeriveIden, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QuerySelect, Set,
};

use entity::roles::{AccountKind, DatasetRole, OrganizationRole};
use entity::{account, collaborator, dataset, membership, organization};

use crate::accounts::insert_account;
use crate::audit::{AuditAction, Change, Event};
use crate::auth::Actor;
use crate::db::{Shapes, select_model, select_nulls};
use crate::error::{ApiError, ApiResult};
use crate::newtypes::{Username, username_key};
use crate::policy::{OrgAction, org_allows};

/// The account of the organization named `username` (any case), if there is one.
pub async fn find_organization(
    db: &impl ConnectionTrait,
    username: &str,
) -> ApiResult<Option<account::Model>> {
    let found = find_organization_with_membership(db, username, None, None).await?;
    Ok(found.map(|found| found.organization))
}

/// An organization as [`find_organization_with_membership`] reads it.
pub struct FoundOrganization {
    /// The organization's account.
    pub organization: account::Model,
    /// The viewer's membership of it (`None`: not a member, or no viewer).
    pub membership: Option<membership::Model>,
    /// The page of members asked for, in member order, when it was asked for and the
    /// viewer is a member (members only may see it).
    pub members: Option<Vec<membership::Model>>,
}

/// The aliases of the statements below.
#[derive(Clone, Copy, DeriveIden)]
enum As {
    /// The organization's account.
    A,
    /// The viewer's membership.
    M,
    /// A membership of the page.
    P,
    /// The viewer's membership, as the page's statement finds the organization by it.
    V,
    /// The page of members.
    T,
    /// The organization's settings row.
    O,
}

/// The prefix under which an account's columns are read beside a membership's, whose
/// `username` and `username_key` they share. (Each other part of a row is read under its
/// columns' own names: a prefix costs formatting every column's name on every row.)
const ACCOUNT: &str = "a_";

/// The shape of [`find_organization_with_membership`]'s statement, and its values in the
/// order its text binds them.
fn organization_shape(
    key: &str,
    viewer: Option<i64>,
    members: Option<((Option<&str>, u64), i64)>,
) -> (u32, Vec<sea_orm::Value>) {
    let kind = AccountKind::Organization.to_value();
    let mut shape = 0;
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(8);
    if let Some(viewer) = viewer {
        shape |= 1;
        values.push(viewer.into());
    }
    values.push(key.into());
    values.push(kind.clone().into());
    if let Some(((after, limit), viewer)) = members {
        shape |= 2;
        values.push(key.into());
        values.push(kind.into());
        values.push(viewer.into());
        if let Some(after) = after {
            shape |= 4;
            values.push(after.into());
        }
        values.push(limit.into());
    }
    (shape, values)
}

/// [`find_organization_with_membership`]'s statement.
fn organization_statement(
    key: &str,
    viewer: Option<i64>,
    members: Option<((Option<&str>, u64), i64)>,
) -> SelectStatement {
    let mut select = Query::select();
    select_model::<account::Entity>(&mut select, As::A.into_iden(), ACCOUNT);
    select
        .from_as(account::Entity, As::A)
        .and_where(Expr::col((As::A, account::Column::UsernameKey)).eq(key))
        .and_where(Expr::col((As::A, account::Column::Kind)).eq(AccountKind::Organization));
    if let Some(viewer) = viewer {
        select_model::<membership::Entity>(&mut select, As::M.into_iden(), "");
        select.join_as(
            JoinType::LeftJoin,
            membership::Entity,
            As::M,
            Condition::all()
                .add(
                    Expr::col((As::M, membership::Column::OrganizationId))
                        .equals((As::A, account::Column::Id)),
                )
                .add(Expr::col((As::M, membership::Column::UserId)).eq(viewer)),
        );
    }
    if let Some(((after, limit), viewer)) = members {
        // The page, only for a member: the organization's id is read from the viewer's
        // membership (NULL for a non-member, which no row matches), one key look-up before
        // the range scan. Ordered and limited inside its own derived table; the `NULL`s
        // stay outside it, where they take the first branch's column types (inside,
        // PostgreSQL would make them text).
        let organization = Query::select()
            .column(account::Column::Id)
            .from(account::Entity)
            .and_where(account::Column::UsernameKey.eq(key))
            .and_where(account::Column::Kind.eq(AccountKind::Organization))
            .to_owned();
        let viewers = Query::select()
            .expr(Expr::col((As::V, membership::Column::OrganizationId)))
            .from_as(membership::Entity, As::V)
            .and_where(
                Expr::col((As::V, membership::Column::OrganizationId)).eq(Expr::from(organization)),
            )
            .and_where(Expr::col((As::V, membership::Column::UserId)).eq(viewer))
            .to_owned();
        let mut page = Query::select();
        select_model::<membership::Entity>(&mut page, As::P.into_iden(), "");
        page.from_as(membership::Entity, As::P).and_where(
            Expr::col((As::P, membership::Column::OrganizationId)).eq(Expr::from(viewers)),
        );
        if let Some(after) = after {
            page.and_where(Expr::col((As::P, membership::Column::UsernameKey)).gt(after));
        }
        page.order_by((As::P, membership::Column::UsernameKey), Order::Asc)
            .limit(limit);
        let mut rows = Query::select();
        select_nulls::<account::Entity>(&mut rows, ACCOUNT);
        select_model::<membership::Entity>(&mut rows, As::T.into_iden(), "");
        rows.from_subquery(page, As::T);
        select.union(UnionType::All, rows);
    }
    select
}

/// The organization named `username` (any case), if there is one, with `viewer`'s
/// membership of it when there is a viewer, in one statement (a LEFT JOIN on the
/// membership's key).
///
/// With `members` (a page's `after` key and row limit, as [`crate::pages::MemberPage`]
/// holds them), the same statement also reads that page of the organization's members when
/// the viewer is one: a `UNION ALL` of the organization's row (with the viewer's membership)
/// and the page's rows (with `NULL`s for the account), membership columns in both. `organization(username:) { members(…) }`, the
/// single-organization view, then costs one statement instead of two.
pub async fn find_organization_with_membership(
    db: &impl ConnectionTrait,
    username: &str,
    viewer: Option<i64>,
    members: Option<(Option<&str>, u64)>,
) -> ApiResult<Option<FoundOrganization>> {
    static SHAPES: std::sync::LazyLock<Shapes> = std::sync::LazyLock::new(Shapes::new);
    let key = username_key(username);
    let members = members.zip(viewer);
    let (statement_shape, values) = organization_shape(&key, viewer, members);
    let statement = SHAPES.statement(db.get_database_backend(), statement_shape, values, || {
        organization_statement(&key, viewer, members)
    });
    let rows = db.query_all_raw(statement).await?;
    let mut found = None;
    let mut page = Vec::new();
    for row in rows {
        // The account's id comes first: NULL in the page's rows. (Read as an `Option` by
        // position: a NULL met by a model's reader is an error whose message is formatted,
        // a cost every page row would pay.)
        let organization_row = row.try_get_by_index::<Option<i64>>(0)?.is_some();
        if organization_row {
            let organization = account::Model::from_query_result(&row, ACCOUNT)?;
            // At most one: usernames are unique.
            let membership = match viewer {
                Some(_) => Option::<membership::Model>::from_query_result(&row, "")?,
                None => None,
            };
            found = Some(FoundOrganization {
                organization,
                membership,
                members: None,
            });
        } else {
            page.push(membership::Model::from_query_result(&row, "")?);
        }
    }
    if let Some(found) = &mut found
        && members.is_some()
        && found.membership.is_some()
    {
        // A UNION ALL keeps no order of its own: the page's order is the members' order.
        page.sort_unstable_by(|a, b| a.username_key.cmp(&b.username_key));
        found.members = Some(page);
    }
    Ok(found)
}

/// The account of the user named `username` (any case), or `NOT_FOUND`.
pub async fn require_user(db: &impl ConnectionTrait, username: &str) -> ApiResult<account::Model> {
    account::Entity::find()
        .filter(account::Column::UsernameKey.eq(username_key(username)))
        .filter(account::Column::Kind.eq(AccountKind::User))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user named '{username}'")))
}

/// `user_id`'s membership of `organization_id`, if any.
pub async fn membership(
    db: &impl ConnectionTrait,
    organization_id: i64,
    user_id: i64,
) -> ApiResult<Option<membership::Model>> {
    Ok(membership::Entity::find_by_id((organization_id, user_id))
        .one(db)
        .await?)
}

/// Every membership of a user, ordered by the organization's username, each with its
/// organization's account and settings row, in one statement (joins on the organization's
/// id).
pub async fn memberships_of_user(
    db: &impl ConnectionTrait,
    user_id: i64,
) -> ApiResult<Vec<Member>> {
    static SHAPES: std::sync::LazyLock<Shapes> = std::sync::LazyLock::new(Shapes::new);
    let render = || {
        let mut select = Query::select();
        select_model::<membership::Entity>(&mut select, As::M.into_iden(), "");
        select_model::<account::Entity>(&mut select, As::A.into_iden(), ACCOUNT);
        select_model::<organization::Entity>(&mut select, As::O.into_iden(), "");
        select
            .from_as(membership::Entity, As::M)
            .join_as(
                JoinType::InnerJoin,
                account::Entity,
                As::A,
                Expr::col((As::A, account::Column::Id))
                    .equals((As::M, membership::Column::OrganizationId)),
            )
            .join_as(
                JoinType::LeftJoin,
                organization::Entity,
                As::O,
                Expr::col((As::O, organization::Column::AccountId))
                    .equals((As::A, account::Column::Id)),
            )
            .and_where(Expr::col((As::M, membership::Column::UserId)).eq(user_id))
            .order_by((As::A, account::Column::UsernameKey), Order::Asc);
        select
    };
    let backend = db.get_database_backend();
    let statement = SHAPES.statement(backend, 0, vec![user_id.into()], render);
    let rows = db.query_all_raw(statement).await?;
    rows.iter()
        .map(|row| {
            let membership = membership::Model::from_query_result(row, "")?;
            let organization = Organization::with_row(
                account::Model::from_query_result(row, ACCOUNT)?,
                Option::<organization::Model>::from_query_result(row, "")?,
            );
            Ok(Member::with_organization(membership, organization))
        })
        .collect()
}

/// An organization locked for a membership change, with the viewer and their role in it.
pub(crate) struct Locked {
    pub(crate) organization: account::Model,
    pub(crate) viewer: i64,
    pub(crate) viewer_role: Option<OrganizationRole>,
}

/// Starts the serialization point of every membership change: finds the organization and
/// locks its row (`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the transaction already
/// holds the write lock from `BEGIN IMMEDIATE`), then reads the viewer's role *after* the
/// lock, so the decision is made on data no concurrent change can alter before commit.
pub(crate) async fn lock_organization(
    tx: &DatabaseTransaction,
    username: &str,
    actor: Actor,
) -> ApiResult<Locked> {
    let organization = find_organization(tx, username)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no organization named '{username}'")))?;
    organization::Entity::find_by_id(organization.id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no organization named '{username}'")))?;
    // A token restricted to another organization is anonymous here.
    let viewer = actor.on(organization.id)?;
    let viewer_role = membership(tx, organization.id, viewer)
        .await?
        .map(|m| m.role);
    Ok(Locked {
        organization,
        viewer,
        viewer_role,
    })
}

/// Locks organization `id`'s row until `tx` ends: the serialization point of every change
/// to its memberships (see [`lock_organization`]).
pub(crate) async fn lock_organization_row(tx: &DatabaseTransaction, id: i64) -> ApiResult<()> {
    organization::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?;
    Ok(())
}

/// Whether organization `organization_id` has an admin other than `user_id`.
pub(crate) async fn another_admin_remains(
    tx: &DatabaseTransaction,
    organization_id: i64,
    user_id: i64,
) -> ApiResult<bool> {
    let others = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::Role.eq(OrganizationRole::Admin))
        .filter(membership::Column::UserId.ne(user_id))
        .count(tx)
        .await?;
    Ok(others > 0)
}

/// `FORBIDDEN` unless `role` allows `action` (the policy decides).
pub(crate) fn authorize(role: Option<OrganizationRole>, action: OrgAction) -> ApiResult<()> {
    if org_allows(role, action) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(match action {
            OrgAction::ListMembers => "only members may see the organization's members".into(),
            _ => "only an admin of the organization may do this".into(),
        }))
    }
}

/// `CONFLICT` (and the caller's transaction is dropped, so rolled back) if the organization
/// would be left without an admin.
async fn ensure_an_admin_remains(tx: &DatabaseTransaction, organization_id: i64) -> ApiResult<()> {
    let admins = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::Role.eq(OrganizationRole::Admin))
        .count(tx)
        .await?;
    if admins == 0 {
        return Err(last_admin());
    }
    Ok(())
}

/// `CONFLICT` if changing `target`'s role to `new_role` (`None`: removing them) would leave
/// the organization without an admin.
async fn ensure_change_keeps_an_admin(
    tx: &DatabaseTransaction,
    target: &membership::Model,
    new_role: Option<OrganizationRole>,
) -> ApiResult<()> {
    if target.role != OrganizationRole::Admin || new_role == Some(OrganizationRole::Admin) {
        return Ok(());
    }
    if !another_admin_remains(tx, target.organization_id, target.user_id).await? {
        return Err(last_admin());
    }
    Ok(())
}

fn last_admin() -> ApiError {
    ApiError::Conflict(
        "an organization must keep at least one admin: make another member an admin first".into(),
    )
}

/// Deletes `user`'s collaborator entries on every dataset `organization` owns, with an
/// event for each.
async fn remove_collaborations(
    tx: &mut Change,
    organization: &account::Model,
    user: &account::Model,
) -> ApiResult<()> {
    let entries = collaborator::Entity::find()
        .filter(collaborator::Column::UserId.eq(user.id))
        .filter(
            collaborator::Column::DatasetId.in_subquery(
                Query::select()
                    .column(dataset::Column::Id)
                    .from(dataset::Entity)
                    .and_where(dataset::Column::OwnerId.eq(organization.id))
                    .to_owned(),
            ),
        )
        .all(&*tx)
        .await?;
    if entries.is_empty() {
        return Ok(());
    }
    let datasets: HashMap<i64, dataset::Model> = dataset::Entity::find()
        .filter(dataset::Column::Id.is_in(entries.iter().map(|e| e.dataset_id)))
        .all(&*tx)
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    for entry in &entries {
        let Some(dataset) = datasets.get(&entry.dataset_id) else {
            continue;
        };
        tx.record(
            Event::new(AuditAction::CollaboratorRemoved)
                .dataset(
                    dataset.id,
                    format!("{}/{}", organization.username, dataset.name),
                    Some(organization.id),
                )
                .subject(user.id, &user.username)
                .previous_role(Some(entry.role)),
        );
    }
    collaborator::Entity::delete_many()
        .filter(collaborator::Column::UserId.eq(user.id))
        .filter(collaborator::Column::DatasetId.is_in(entries.iter().map(|entry| entry.dataset_id)))
        .exec(&*tx)
        .await?;
    Ok(())
}

/// Creates an organization; its creator becomes its first admin.
pub async fn create_organization(
    db: &DatabaseConnection,
    actor: Actor,
    username: Username,
    display_name: Option<String>,
) -> ApiResult<account::Model> {
    // A new organization is the user's own act: no token restricted to another one.
    let viewer = actor.as_themself()?;
    let mut tx = Change::begin(db, viewer).await?;
    let creator = account::Entity::find_by_id(viewer)
        .one(&tx)
        .await?
        .ok_or_else(ApiError::sign_in_required)?;
    let organization = insert_account(&tx, &username, AccountKind::Organization).await?;
    organization::ActiveModel {
        account_id: Set(organization.id),
        display_name: Set(display_name),
    }
    .insert(&tx)
    .await?;
    membership::ActiveModel {
        organization_id: Set(organization.id),
        user_id: Set(viewer),
        username_key: Set(creator.username_key),
        role: Set(OrganizationRole::Admin),
        default_dataset_role: Set(None),
        joined_at: Set(Utc::now()),
        username: Set(creator.username.clone()),
    }
    .insert(&tx)
    .await?;
    tx.record(
        Event::new(AuditAction::OrganizationCreated)
            .organization(organization.id)
            .subject(viewer, &creator.username)
            .role(Some(OrganizationRole::Admin)),
    );
    tx.commit().await?;
    Ok(organization)
}

/// Updates an organization's settings (admins only).
pub async fn update_organization(
    db: &DatabaseConnection,
    actor: Actor,
    username: &str,
    display_name: Option<Option<String>>,
) -> ApiResult<account::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let locked = lock_organization(&tx, username, actor).await?;
    authorize(locked.viewer_role, OrgAction::UpdateSettings)?;
    // Nothing to change: nothing is written (and no event).
    let Some(display_name) = display_name else {
        return Ok(locked.organization);
    };
    organization::ActiveModel {
        account_id: Set(locked.organization.id),
        display_name: Set(display_name),
    }
    .update(&tx)
    .await?;
    tx.record(Event::new(AuditAction::OrganizationUpdated).organization(locked.organization.id));
    tx.commit().await?;
    Ok(locked.organization)
}

/// Deletes an organization with its datasets, their collaborators and its memberships (the
/// foreign keys cascade); its username is free again. Admins only. Returns the deleted id.
pub async fn delete_organization(
    db: &DatabaseConnection,
    actor: Actor,
    username: &str,
) -> ApiResult<i64> {
    let mut tx = Change::begin(db, actor.user).await?;
    let locked = lock_organization(&tx, username, actor).await?;
    authorize(locked.viewer_role, OrgAction::Delete)?;
    account::Entity::delete_by_id(locked.organization.id)
        .exec(&tx)
        .await?;
    tx.record(Event::new(AuditAction::OrganizationDeleted).organization(locked.organization.id));
    tx.commit().await?;
    Ok(locked.organization.id)
}

/// Adds a user to an organization (admins only). Already a member: `CONFLICT`.
pub async fn add_member(
    db: &DatabaseConnection,
    actor: Actor,
    organization: &str,
    username: &str,
    role: OrganizationRole,
    default_dataset_role: Option<DatasetRole>,
) -> ApiResult<membership::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let locked = lock_organization(&tx, organization, actor).await?;
    authorize(locked.viewer_role, OrgAction::ManageMembers)?;
    let user = require_user(&tx, username).await?;
    if membership(&tx, locked.organization.id, user.id)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "'{}' is already a member of '{}'",
            user.username, locked.organization.username
        )));
    }
    let member = membership::ActiveModel {
        organization_id: Set(locked.organization.id),
        user_id: Set(user.id),
        username_key: Set(user.username_key),
        role: Set(role),
        default_dataset_role: Set(default_dataset_role),
        joined_at: Set(Utc::now()),
        username: Set(user.username.clone()),
    }
    .insert(&tx)
    .await?;
    tx.record(
        Event::new(AuditAction::MemberAdded)
            .organization(locked.organization.id)
            .subject(user.id, &user.username)
            .role(Some(role)),
    );
    tx.commit().await?;
    Ok(member)
}

/// The checks before changing `username`'s membership to the role `new_role` gives
/// (`None`: removing it), in order: permission first (a non-member or `MEMBER` viewer is
/// refused whatever the target, API.md "Roles"); the member must exist; the change must
/// keep an admin.
async fn authorize_member_change(
    tx: &DatabaseTransaction,
    locked: &Locked,
    username: &str,
    new_role: impl FnOnce(&membership::Model) -> Option<OrganizationRole>,
) -> ApiResult<(account::Model, membership::Model)> {
    authorize(locked.viewer_role, OrgAction::ManageMembers)?;
    let user = require_user(tx, username).await?;
    let current = membership(tx, locked.organization.id, user.id)
        .await?
        .ok_or_else(|| not_a_member(&user, &locked.organization))?;
    ensure_change_keeps_an_admin(tx, &current, new_role(&current)).await?;
    Ok((user, current))
}

/// Changes a member's role and/or default dataset role (admins only); `None` leaves a field
/// unchanged. Demoting the last admin: `CONFLICT`.
pub async fn update_member(
    db: &DatabaseConnection,
    actor: Actor,
    organization: &str,
    username: &str,
    role: Option<OrganizationRole>,
    default_dataset_role: Option<Option<DatasetRole>>,
) -> ApiResult<membership::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let locked = lock_organization(&tx, organization, actor).await?;
    let (user, current) = authorize_member_change(&tx, &locked, username, |current| {
        Some(role.unwrap_or(current.role))
    })
    .await?;
    // Nothing to change: nothing is written (and no event).
    if role.is_none() && default_dataset_role.is_none() {
        return Ok(current);
    }
    tx.record(
        Event::new(AuditAction::MemberUpdated)
            .organization(locked.organization.id)
            .subject(user.id, &user.username)
            .role(Some(role.unwrap_or(current.role)))
            .previous_role(Some(current.role)),
    );
    let mut change: membership::ActiveModel = current.into();
    if let Some(role) = role {
        change.role = Set(role);
    }
    if let Some(default_dataset_role) = default_dataset_role {
        change.default_dataset_role = Set(default_dataset_role);
    }
    let updated = change.update(&tx).await?;
    ensure_an_admin_remains(&tx, locked.organization.id).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Removes a member (admins only) with their collaborator entries on the organization's
/// datasets. Removing the last admin: `CONFLICT`.
pub async fn remove_member(
    db: &DatabaseConnection,
    actor: Actor,
    organization: &str,
    username: &str,
) -> ApiResult<account::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let locked = lock_organization(&tx, organization, actor).await?;
    let (user, current) = authorize_member_change(&tx, &locked, username, |_| None).await?;
    tx.record(
        Event::new(AuditAction::MemberRemoved)
            .organization(locked.organization.id)
            .subject(user.id, &user.username)
            .previous_role(Some(current.role)),
    );
    leave(&mut tx, &locked.organization, &user).await?;
    tx.commit().await?;
    Ok(locked.organization)
}

/// The viewer leaves an organization, losing their collaborator entries on its datasets. The
/// last admin cannot leave: `CONFLICT`.
pub async fn leave_organization(
    db: &DatabaseConnection,
    actor: Actor,
    organization: &str,
) -> ApiResult<account::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let locked = lock_organization(&tx, organization, actor).await?;
    let user = account::Entity::find_by_id(locked.viewer)
        .one(&tx)
        .await?
        .ok_or_else(ApiError::sign_in_required)?;
    if locked.viewer_role.is_none() {
        return Err(not_a_member(&user, &locked.organization));
    }
    authorize(locked.viewer_role, OrgAction::Leave)?;
    tx.record(
        Event::new(AuditAction::MemberLeft)
            .organization(locked.organization.id)
            .subject(user.id, &user.username)
            .previous_role(locked.viewer_role),
    );
    leave(&mut tx, &locked.organization, &user).await?;
    tx.commit().await?;
    Ok(locked.organization)
}

/// Deletes the membership, the collaborations it gave and the user's API tokens restricted
/// to the organization, then checks the last-admin rule.
async fn leave(
    tx: &mut Change,
    organization: &account::Model,
    user: &account::Model,
) -> ApiResult<()> {
    let deleted = membership::Entity::delete_by_id((organization.id, user.id))
        .exec(&*tx)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(not_a_member(user, organization));
    }
    remove_collaborations(tx, organization, user).await?;
    crate::tokens::revoke_restricted(tx, user, organization.id).await?;
    ensure_an_admin_remains(tx, organization.id).await
}

fn not_a_member(user: &account::Model, organization: &account::Model) -> ApiError {
    ApiError::NotFound(format!(
        "'{}' is not a member of '{}'",
        user.username, organization.username
    ))
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    /// Every shape of the organization statement binds, in its text's order, exactly the
    /// values [`super::organization_shape`] lists, on both databases.
    #[test]
    fn the_organization_statements_values_are_listed_in_order() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for viewer in [None, Some(7)] {
                for members in [None, Some((None, 21)), Some((Some("bob"), 5))] {
                    let members = members.zip(viewer);
                    let rendered =
                        backend.build(&super::organization_statement("acme", viewer, members));
                    let (_, values) = super::organization_shape("acme", viewer, members);
                    assert_eq!(
                        rendered.values.map(|v| v.0).unwrap_or_default(),
                        values,
                        "{backend:?} viewer {viewer:?} members {members:?}"
                    );
                }
            }
        }
    }
}
