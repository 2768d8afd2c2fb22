//! Invitations: an organization's admin invites a user, who accepts or declines; an admin
//! may revoke it; it expires after `--invitation-ttl-days`. Every step locks the
//! organization's row first, as every membership change does, so an invitation accepted
//! twice at once, or after it was revoked or expired, yields one membership at most and a
//! clean `CONFLICT` for the loser.

mod graphql;

pub use graphql::{Invitation, InvitationConnection, InvitationMutation, InvitationState};
pub(crate) use graphql::{organization_invitations, user_invitations};

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, Set,
};

use entity::invitation::{self, InvitationState as Stored};
use entity::roles::{DatasetRole, OrganizationRole};
use entity::{account, membership};

use crate::audit::{AuditAction, Change, Event};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::loaders::{DbLoader, LoadError};
use crate::organizations::{authorize, lock_organization, lock_organization_row, membership};
use crate::pages::{CountKey, Filter, Page, PageKey, Paged, by_filter, child};
use crate::policy::{OrgAction, org_allows};

/// An organization's invitations, newest first.
pub struct OrganizationInvitations;
/// A user's invitations, newest first.
pub struct UserInvitations;

impl Paged for OrganizationInvitations {
    type Entity = invitation::Entity;
    type Parents = account::Entity;
    const PARENT: invitation::Column = invitation::Column::OrganizationId;
    const KEY: invitation::Column = invitation::Column::Id;
    const PARENT_ID: account::Column = account::Column::Id;
    const DESCENDING: bool = true;
    fn parent_of(row: &invitation::Model) -> i64 {
        row.organization_id
    }
}

impl Paged for UserInvitations {
    type Entity = invitation::Entity;
    type Parents = account::Entity;
    const PARENT: invitation::Column = invitation::Column::InviteeId;
    const KEY: invitation::Column = invitation::Column::Id;
    const PARENT_ID: account::Column = account::Column::Id;
    const DESCENDING: bool = true;
    fn parent_of(row: &invitation::Model) -> i64 {
        row.invitee_id
    }
}

/// The condition for invitations that read `state` at `now` (`None`: all).
fn in_state(state: Option<Stored>, now: DateTime<Utc>) -> Filter {
    let stored = |s: Stored| child(invitation::Column::State).eq(s.to_value());
    let expires = || child(invitation::Column::ExpiresAt);
    let condition = match state? {
        Stored::Pending => Condition::all()
            .add(stored(Stored::Pending))
            .add(expires().gt(now)),
        Stored::Expired => Condition::any().add(stored(Stored::Expired)).add(
            Condition::all()
                .add(stored(Stored::Pending))
                .add(expires().lte(now)),
        ),
        other => Condition::all().add(stored(other)),
    };
    Some(condition)
}

/// A page of an organization's invitations in one state (`None`: all).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrganizationInvitationPage(pub PageKey<7>, pub Option<Stored>);
/// How many invitations of an organization are in one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrganizationInvitationCount(pub CountKey<7>, pub Option<Stored>);
/// A page of a user's pending invitations.
pub type UserInvitationPage = PageKey<8>;
/// How many pending invitations a user has.
pub type UserInvitationCount = CountKey<8>;

impl Loader<OrganizationInvitationPage> for DbLoader {
    type Value = Page<invitation::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[OrganizationInvitationPage],
    ) -> Result<HashMap<OrganizationInvitationPage, Self::Value>, Self::Error> {
        let now = Utc::now();
        let mut found = HashMap::new();
        for (state, pages) in by_filter(keys.iter().map(|k| (k.0.clone(), k.1))) {
            let loaded = self
                .pages::<7, OrganizationInvitations>(&pages, &in_state(state, now))
                .await?;
            found.extend(
                loaded
                    .into_iter()
                    .map(|(page, rows)| (OrganizationInvitationPage(page, state), rows)),
            );
        }
        Ok(found)
    }
}

impl Loader<OrganizationInvitationCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[OrganizationInvitationCount],
    ) -> Result<HashMap<OrganizationInvitationCount, u64>, Self::Error> {
        let now = Utc::now();
        let mut found = HashMap::new();
        for (state, counts) in by_filter(keys.iter().map(|k| (k.0, k.1))) {
            let loaded = self
                .counts::<7, OrganizationInvitations>(&counts, &in_state(state, now))
                .await?;
            found.extend(
                loaded
                    .into_iter()
                    .map(|(key, n)| (OrganizationInvitationCount(key, state), n)),
            );
        }
        Ok(found)
    }
}

impl Loader<UserInvitationPage> for DbLoader {
    type Value = Page<invitation::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[UserInvitationPage],
    ) -> Result<HashMap<UserInvitationPage, Self::Value>, Self::Error> {
        self.pages::<8, UserInvitations>(keys, &in_state(Some(Stored::Pending), Utc::now()))
            .await
    }
}

impl Loader<UserInvitationCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[UserInvitationCount],
    ) -> Result<HashMap<UserInvitationCount, u64>, Self::Error> {
        self.counts::<8, UserInvitations>(keys, &in_state(Some(Stored::Pending), Utc::now()))
            .await
    }
}

fn no_such_invitation() -> ApiError {
    ApiError::NotFound("no such invitation".into())
}

/// The event of `action` on `invitation`, whose invitee is named `invitee`.
fn invitation_event(action: AuditAction, invitation: &invitation::Model, invitee: &str) -> Event {
    Event::new(action)
        .organization(invitation.organization_id)
        .subject(invitation.invitee_id, invitee)
        .role(Some(invitation.role))
}

/// Invites `username` to `organization` (its admins only) with the roles they get on
/// accepting; it expires after `ttl_days`. `CONFLICT` when they are a member already or a
/// pending invitation exists.
pub async fn invite(
    db: &DatabaseConnection,
    actor: Actor,
    organization: &str,
    username: &str,
    role: OrganizationRole,
    default_dataset_role: Option<DatasetRole>,
    ttl_days: u32,
) -> ApiResult<invitation::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let locked = lock_organization(&tx, organization, actor).await?;
    authorize(locked.viewer_role, OrgAction::ManageMembers)?;
    let user = crate::organizations::require_user(&tx, username).await?;
    let org = &locked.organization;
    if membership(&tx, org.id, user.id).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "'{}' is already a member of '{}'",
            user.username, org.username
        )));
    }
    let now = Utc::now();
    let open = invitation::Entity::find()
        .filter(invitation::Column::OrganizationId.eq(org.id))
        .filter(invitation::Column::InviteeId.eq(user.id))
        .filter(invitation::Column::State.eq(Stored::Pending))
        .all(&tx)
        .await?;
    for pending in open {
        if pending.state_at(now) == Stored::Pending {
            return Err(ApiError::Conflict(format!(
                "'{}' has a pending invitation to '{}' already",
                user.username, org.username
            )));
        }
        // Past its expiry: written as such, so that one PENDING row stays the rule.
        let mut expired: invitation::ActiveModel = pending.into();
        expired.state = Set(Stored::Expired);
        expired.update(&tx).await?;
    }
    let invitation = invitation::ActiveModel {
        organization_id: Set(org.id),
        invitee_id: Set(user.id),
        inviter_id: Set(Some(locked.viewer)),
        role: Set(role),
        default_dataset_role: Set(default_dataset_role),
        state: Set(Stored::Pending),
        created_at: Set(now),
        expires_at: Set(now + Duration::days(i64::from(ttl_days))),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    tx.record(invitation_event(
        AuditAction::InvitationCreated,
        &invitation,
        &user.username,
    ));
    tx.commit().await?;
    Ok(invitation)
}

/// Invitation `id` under `tx`'s lock of its organization, as the invitee: `NOT_FOUND` when
/// the viewer may not see it, `FORBIDDEN` for an admin who is not the invitee, `CONFLICT`
/// unless it is pending and unexpired.
async fn as_invitee(tx: &Change, actor: Actor, id: i64) -> ApiResult<invitation::Model> {
    let found = invitation::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or_else(no_such_invitation)?;
    // Every answer about an invitation waits for its organization's lock, so that the
    // state read next is the one this change will write over.
    lock_organization_row(tx, found.organization_id).await?;
    let invitation = invitation::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or_else(no_such_invitation)?;
    let viewer = actor.on(invitation.organization_id)?;
    if invitation.invitee_id != viewer {
        let role = membership(tx, invitation.organization_id, viewer)
            .await?
            .map(|m| m.role);
        return Err(if org_allows(role, OrgAction::Audit) {
            ApiError::Forbidden("only the invitee may accept or decline an invitation".into())
        } else {
            no_such_invitation()
        });
    }
    ensure_pending(&invitation)?;
    Ok(invitation)
}

fn ensure_pending(invitation: &invitation::Model) -> ApiResult<()> {
    match invitation.state_at(Utc::now()) {
        Stored::Pending => Ok(()),
        state => Err(ApiError::Conflict(format!(
            "the invitation is {} and can no longer change",
            state.to_value().to_lowercase()
        ))),
    }
}

/// The username of account `id`.
async fn username_of(db: &impl ConnectionTrait, id: i64) -> ApiResult<String> {
    Ok(account::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(|a| a.username)
        .unwrap_or_default())
}

/// Accepts invitation `id` (its invitee only): the membership with the invited roles, in
/// one transaction. Also `CONFLICT` when they became a member meanwhile.
pub async fn accept(
    db: &DatabaseConnection,
    actor: Actor,
    id: i64,
) -> ApiResult<membership::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let invitation = as_invitee(&tx, actor, id).await?;
    let invitee = account::Entity::find_by_id(invitation.invitee_id)
        .one(&tx)
        .await?
        .ok_or_else(ApiError::sign_in_required)?;
    if membership(&tx, invitation.organization_id, invitee.id)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(
            "you are a member of this organization already".into(),
        ));
    }
    let member = membership::ActiveModel {
        organization_id: Set(invitation.organization_id),
        user_id: Set(invitee.id),
        username_key: Set(invitee.username_key.clone()),
        role: Set(invitation.role),
        default_dataset_role: Set(invitation.default_dataset_role),
        joined_at: Set(Utc::now()),
        username: Set(invitee.username.clone()),
    }
    .insert(&tx)
    .await?;
    set_state(&tx, &invitation, Stored::Accepted).await?;
    tx.record(invitation_event(
        AuditAction::InvitationAccepted,
        &invitation,
        &invitee.username,
    ));
    tx.commit().await?;
    Ok(member)
}

/// Declines invitation `id` (its invitee only).
pub async fn decline(
    db: &DatabaseConnection,
    actor: Actor,
    id: i64,
) -> ApiResult<invitation::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let invitation = as_invitee(&tx, actor, id).await?;
    let invitation = set_state(&tx, &invitation, Stored::Declined).await?;
    let invitee = username_of(&tx, invitation.invitee_id).await?;
    tx.record(invitation_event(
        AuditAction::InvitationDeclined,
        &invitation,
        &invitee,
    ));
    tx.commit().await?;
    Ok(invitation)
}

/// Revokes invitation `id` (an admin of its organization): `FORBIDDEN` for its invitee,
/// `NOT_FOUND` for anyone else; `CONFLICT` unless it is pending.
pub async fn revoke(
    db: &DatabaseConnection,
    actor: Actor,
    id: i64,
) -> ApiResult<invitation::Model> {
    let mut tx = Change::begin(db, actor.user).await?;
    let found = invitation::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .ok_or_else(no_such_invitation)?;
    lock_organization_row(&tx, found.organization_id).await?;
    let invitation = invitation::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .ok_or_else(no_such_invitation)?;
    let viewer = actor.on(invitation.organization_id)?;
    let role = membership(&tx, invitation.organization_id, viewer)
        .await?
        .map(|m| m.role);
    if !org_allows(role, OrgAction::ManageMembers) {
        return Err(if invitation.invitee_id == viewer {
            ApiError::Forbidden("only an admin of the organization may revoke it".into())
        } else {
            no_such_invitation()
        });
    }
    ensure_pending(&invitation)?;
    let invitation = set_state(&tx, &invitation, Stored::Revoked).await?;
    let invitee = username_of(&tx, invitation.invitee_id).await?;
    tx.record(invitation_event(
        AuditAction::InvitationRevoked,
        &invitation,
        &invitee,
    ));
    tx.commit().await?;
    Ok(invitation)
}

async fn set_state(
    tx: &Change,
    invitation: &invitation::Model,
    state: Stored,
) -> ApiResult<invitation::Model> {
    let mut change: invitation::ActiveModel = invitation.clone().into();
    change.state = Set(state);
    Ok(change.update(tx).await?)
}

/// Invitation `id`, if `viewer` may see it: its invitee, or an admin of its organization.
pub async fn visible(
    db: &impl ConnectionTrait,
    viewer: i64,
    id: i64,
) -> ApiResult<Option<invitation::Model>> {
    let Some(invitation) = invitation::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    if invitation.invitee_id == viewer {
        return Ok(Some(invitation));
    }
    let role = membership(db, invitation.organization_id, viewer)
        .await?
        .map(|m| m.role);
    Ok(org_allows(role, OrgAction::Audit).then_some(invitation))
}
