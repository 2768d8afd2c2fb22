//! Who may see which event, decided for a whole batch of events and their candidate
//! subscriptions at once: a statement each for the credentials, the memberships, the
//! datasets and the collaborator entries concerned, whatever the number of subscribers, all
//! run at once (and a second statement for memberships in the organizations that the tokens
//! and datasets just read lead to, when there are such); then `crate::policy` for each
//! (subscription, event).
//!
//! On PostgreSQL the credentials and memberships read are kept between batches ([`Known`]):
//! the database notifies every change to them (the migration
//! `m20261209_000001_access_notify`), in commit order with the events, and the feed forgets
//! what changed before it decides the events that committed after the change. Every
//! subscriber's credential and role are then read once, not once per batch: with a thousand
//! subscribers, reading them for every event was most of what PostgreSQL spent on live
//! updates.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::extension::postgres::PgFunc;
use sea_orm::sea_query::{ArrayType, Expr, ExprTrait, SimpleExpr, Value};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QuerySelect, Select,
    TryGetableMany,
};

use entity::audit_event::{self, AuditAction};
use entity::roles::{DatasetRole, OrganizationRole};
use entity::{api_token, collaborator, dataset, membership, user_account};

use super::{Credential, Topic, concerns};
use crate::error::ApiResult;
use crate::policy::{
    DatasetAction, OrgAction, administers_datasets, dataset_allows, effective_dataset_role,
    org_allows, reaches,
};

/// What a subscription gets of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The event.
    Deliver,
    /// The event, then the end of the subscription (its dataset was deleted).
    DeliverThenComplete,
    /// Nothing more: it lost access; it ends with `FORBIDDEN`.
    Lost,
}

/// Events about membership, which every member may read (the member list).
fn about_membership(action: AuditAction) -> bool {
    matches!(
        action,
        AuditAction::MemberAdded
            | AuditAction::MemberUpdated
            | AuditAction::MemberRemoved
            | AuditAction::MemberLeft
            | AuditAction::InvitationAccepted
    )
}

/// What a member needs to read an event about a dataset: to see the dataset, or (collaborator
/// events) to list its collaborators.
fn dataset_action(action: AuditAction) -> DatasetAction {
    match action {
        AuditAction::CollaboratorAdded
        | AuditAction::CollaboratorUpdated
        | AuditAction::CollaboratorRemoved => DatasetAction::ListCollaborators,
        _ => DatasetAction::See,
    }
}

/// `column` is one of `ids`. On PostgreSQL that is one array parameter (`column = ANY($1)`):
/// an IN list of a parameter per id (hundreds: one per subscriber) cost PostgreSQL more to
/// plan and run, every batch, than everything else live updates ask of it.
fn among<C: ColumnTrait>(backend: DbBackend, column: C, ids: &[i64]) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => {
            let array = Value::Array(
                ArrayType::BigInt,
                Some(Box::new(ids.iter().map(|&id| Value::from(id)).collect())),
            );
            ExprTrait::eq(
                Expr::col((column.entity_name(), column)),
                PgFunc::any(Expr::val(array)),
            )
        }
        _ => column.is_in(ids.iter().copied()),
    }
}

/// The rows `select` finds whose `column` is one of `ids`, by that id; none (and no
/// statement) for no ids.
async fn rows_among<E: EntityTrait, C: ColumnTrait>(
    db: &DatabaseConnection,
    select: Select<E>,
    column: C,
    ids: &[i64],
    id_of: impl Fn(&E::Model) -> i64,
) -> ApiResult<HashMap<i64, E::Model>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = select
        .filter(among(db.get_database_backend(), column, ids))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| (id_of(&row), row)).collect())
}

/// As [`rows_among`], only `columns` of each row (as a tuple): the statements that read a row
/// per subscriber read no more than the decision needs.
async fn columns_among<E: EntityTrait, C: ColumnTrait, T: TryGetableMany>(
    db: &DatabaseConnection,
    select: Select<E>,
    column: C,
    ids: &[i64],
    columns: impl IntoIterator<Item = E::Column>,
) -> ApiResult<Vec<T>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(select
        .filter(among(db.get_database_backend(), column, ids))
        .select_only()
        .columns(columns)
        .into_tuple()
        .all(db)
        .await?)
}

/// An API token, as far as access depends on it.
#[derive(Clone, Copy, Debug)]
struct TokenFacts {
    organization_id: Option<i64>,
    expires_at: chrono::DateTime<Utc>,
    revoked: bool,
}

/// What the decision reads about credentials and memberships, kept between batches where the
/// database says what changed (PostgreSQL: the channel `orgql_access`, see the migration
/// `m20261209_000001_access_notify`). Absent entries are read when a batch needs them;
/// `None` records that there is no such row.
#[derive(Default)]
pub(crate) struct Known {
    /// Each user's session generation.
    sessions: HashMap<i64, Option<i64>>,
    /// API tokens, by id.
    tokens: HashMap<i64, Option<TokenFacts>>,
    /// Roles, by (organization, user).
    roles: HashMap<(i64, i64), Option<OrganizationRole>>,
}

/// Past this many entries, [`Known`] starts over (it holds what the subscribers need).
const KNOWN_AT_MOST: usize = 100_000;

/// A change to what access depends on, as the database reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Changed {
    /// A membership: (organization, user).
    Member(i64, i64),
    /// An account's session generation, or the account itself.
    Account(i64),
    /// An API token.
    Token(i64),
}

impl Changed {
    /// A notification's payload: `m:<organization>:<user>`, `u:<user>` or `t:<token>`.
    pub(crate) fn parse(payload: &str) -> Option<Changed> {
        let mut parts = payload.split(':');
        let kind = parts.next()?;
        let mut id = || parts.next()?.parse::<i64>().ok();
        let changed = match kind {
            "m" => Changed::Member(id()?, id()?),
            "u" => Changed::Account(id()?),
            "t" => Changed::Token(id()?),
            _ => return None,
        };
        parts.next().is_none().then_some(changed)
    }
}

impl Known {
    /// Forgets what `changed` made stale.
    pub(crate) fn forget(&mut self, changed: Changed) {
        match changed {
            Changed::Member(organization, user) => {
                self.roles.remove(&(organization, user));
            }
            Changed::Account(user) => {
                self.sessions.remove(&user);
            }
            Changed::Token(id) => {
                self.tokens.remove(&id);
            }
        }
    }

    /// Forgets everything (changes may have been missed).
    pub(crate) fn clear(&mut self) {
        *self = Known::default();
    }

    fn len(&self) -> usize {
        self.sessions.len() + self.tokens.len() + self.roles.len()
    }

    /// Those of `pairs` (organization, user) whose role is not known yet.
    fn unknown_roles(&self, pairs: impl IntoIterator<Item = (i64, i64)>) -> HashSet<(i64, i64)> {
        pairs
            .into_iter()
            .filter(|pair| !self.roles.contains_key(pair))
            .collect()
    }

    fn role(&self, organization: i64, user: i64) -> Option<OrganizationRole> {
        self.roles.get(&(organization, user)).copied().flatten()
    }
}

/// The roles of `missing` (organization, user): `None` for those with no membership; no
/// statement for none.
async fn read_roles(
    db: &DatabaseConnection,
    missing: HashSet<(i64, i64)>,
) -> ApiResult<Vec<((i64, i64), Option<OrganizationRole>)>> {
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let organizations = distinct(missing.iter().map(|p| p.0));
    let users = distinct(missing.iter().map(|p| p.1));
    use membership::Column as Member;
    let found = columns_among::<_, _, (i64, i64, OrganizationRole)>(
        db,
        membership::Entity::find().filter(among(
            db.get_database_backend(),
            Member::OrganizationId,
            &organizations,
        )),
        Member::UserId,
        &users,
        [Member::OrganizationId, Member::UserId, Member::Role],
    )
    .await?;
    // (A membership found is a pair asked for, or of their organizations and users: true too.)
    let found = found
        .into_iter()
        .map(|(organization, user, role)| ((organization, user), Some(role)));
    Ok(missing
        .into_iter()
        .map(|pair| (pair, None))
        .chain(found)
        .collect())
}

/// The distinct ids of `ids`.
fn distinct(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let set: HashSet<i64> = ids.into_iter().collect();
    set.into_iter().collect()
}

/// For each candidate `(id, topic, user, credential)`, the events of `events` (by index,
/// in order) it gets, up to and including its last verdict. `known`: what earlier batches
/// read and is still true (PostgreSQL's feed keeps it); without it, everything is read.
pub(crate) async fn decide(
    db: &DatabaseConnection,
    candidates: &[(u64, Topic, i64, Credential)],
    events: &[audit_event::Model],
    known: Option<&mut Known>,
) -> ApiResult<Vec<(u64, Vec<(usize, Verdict)>)>> {
    let mut scratch = Known::default();
    let known = match known {
        Some(known) => {
            if known.len() > KNOWN_AT_MOST {
                known.clear();
            }
            known
        }
        None => &mut scratch,
    };
    let users = distinct(candidates.iter().map(|c| c.2));
    let token_ids = distinct(candidates.iter().filter_map(|c| match c.3 {
        Credential::ApiToken { id } => Some(id),
        Credential::Session { .. } => None,
    }));
    let dataset_ids = distinct(events.iter().filter_map(|e| e.dataset_id));
    let backend = db.get_database_backend();

    // What is not known yet, and the datasets concerned (always read: few, and only for
    // events about datasets), all at once: on the feed's path from a commit to its
    // subscribers, one round trip (none when everything is known and no event is about a
    // dataset).
    use collaborator::Column as Collaborator;
    use user_account::Column as Account;
    let unknown_users: Vec<i64> = users
        .iter()
        .copied()
        .filter(|u| !known.sessions.contains_key(u))
        .collect();
    let sessions = columns_among::<_, _, (i64, i64)>(
        db,
        user_account::Entity::find(),
        Account::AccountId,
        &unknown_users,
        [Account::AccountId, Account::SessionGeneration],
    );
    let unknown_tokens: Vec<i64> = token_ids
        .iter()
        .copied()
        .filter(|t| !known.tokens.contains_key(t))
        .collect();
    let tokens = columns_among::<
        _,
        _,
        (
            i64,
            Option<i64>,
            chrono::DateTime<Utc>,
            Option<chrono::DateTime<Utc>>,
        ),
    >(
        db,
        api_token::Entity::find(),
        api_token::Column::Id,
        &unknown_tokens,
        [
            api_token::Column::Id,
            api_token::Column::OrganizationId,
            api_token::Column::ExpiresAt,
            api_token::Column::RevokedAt,
        ],
    );
    let datasets = rows_among(
        db,
        dataset::Entity::find(),
        dataset::Column::Id,
        &dataset_ids,
        |d| d.id,
    );
    // (None to read when no event is about a dataset.)
    let collaborator_users: &[i64] = if dataset_ids.is_empty() { &[] } else { &users };
    let collaborators = columns_among::<_, _, (i64, i64, DatasetRole)>(
        db,
        collaborator::Entity::find().filter(among(backend, Collaborator::DatasetId, &dataset_ids)),
        Collaborator::UserId,
        collaborator_users,
        [
            Collaborator::DatasetId,
            Collaborator::UserId,
            Collaborator::Role,
        ],
    );
    // The roles known to be needed before anything is read: the organizations followed.
    let followed =
        known.unknown_roles(
            candidates
                .iter()
                .filter_map(|&(_, topic, user, _)| match topic {
                    Topic::Organization(organization) => Some((organization, user)),
                    _ => None,
                }),
        );
    let roles = read_roles(db, followed);
    let (sessions, tokens, datasets, collaborators, roles) =
        tokio::try_join!(sessions, tokens, datasets, collaborators, roles)?;
    for user in unknown_users {
        known.sessions.insert(user, None);
    }
    known.sessions.extend(
        sessions
            .into_iter()
            .map(|(user, generation)| (user, Some(generation))),
    );
    for token in unknown_tokens {
        known.tokens.insert(token, None);
    }
    known.tokens.extend(
        tokens
            .into_iter()
            .map(|(id, organization_id, expires_at, revoked_at)| {
                (
                    id,
                    Some(TokenFacts {
                        organization_id,
                        expires_at,
                        revoked: revoked_at.is_some(),
                    }),
                )
            }),
    );
    known.roles.extend(roles);
    // Then the roles that depend on what was just read: in the organizations API tokens are
    // restricted to, and in the datasets' owners.
    let mut more = Vec::new();
    for &(_, topic, user, credential) in candidates {
        if let Credential::ApiToken { id } = credential
            && let Some(Some(TokenFacts {
                organization_id: Some(organization),
                ..
            })) = known.tokens.get(&id)
        {
            more.push((*organization, user));
        }
        for event in events.iter().filter(|e| concerns(topic, user, e)) {
            if let Some(row) = event.dataset_id.and_then(|d| datasets.get(&d)) {
                more.push((row.owner_id, user));
            }
        }
    }
    let more = known.unknown_roles(more);
    known.roles.extend(read_roles(db, more).await?);
    let collaborators: HashMap<(i64, i64), DatasetRole> = collaborators
        .into_iter()
        .map(|(dataset, user, role)| ((dataset, user), role))
        .collect();

    let now = Utc::now();
    let mut out = Vec::with_capacity(candidates.len());
    for &(id, topic, user, credential) in candidates {
        // The organization an API token is restricted to (its user acts as anonymous
        // outside it).
        let (valid, restricted_to) = match credential {
            Credential::Session { generation } => {
                (known.sessions.get(&user) == Some(&Some(generation)), None)
            }
            Credential::ApiToken { id } => match known.tokens.get(&id).copied().flatten() {
                Some(t) => (
                    !t.revoked
                        && t.expires_at > now
                        && t.organization_id
                            .is_none_or(|o| known.role(o, user).is_some()),
                    t.organization_id,
                ),
                None => (false, None),
            },
        };
        let role_in = |organization: i64| {
            if reaches(restricted_to, organization) {
                known.role(organization, user)
            } else {
                None
            }
        };
        let dataset_role = |row: &dataset::Model| {
            if !reaches(restricted_to, row.owner_id) {
                return None;
            }
            let admin = row.owner_id == user || administers_datasets(role_in(row.owner_id));
            let collaborator = collaborators.get(&(row.id, user)).copied();
            effective_dataset_role(admin, collaborator)
        };
        let mut verdicts = Vec::new();
        for (index, event) in events.iter().enumerate() {
            if !concerns(topic, user, event) {
                continue;
            }
            let verdict = if !valid {
                Some(Verdict::Lost)
            } else {
                match topic {
                    Topic::Viewer => Some(Verdict::Deliver),
                    Topic::Organization(organization) => match role_in(organization) {
                        None => Some(Verdict::Lost),
                        Some(role) if org_allows(Some(role), OrgAction::Audit) => {
                            Some(Verdict::Deliver)
                        }
                        Some(_) if about_membership(event.action) => Some(Verdict::Deliver),
                        Some(_) => event
                            .dataset_id
                            .and_then(|d| datasets.get(&d))
                            .filter(|row| {
                                dataset_allows(
                                    dataset_role(row),
                                    row.public,
                                    dataset_action(event.action),
                                )
                            })
                            .map(|_| Verdict::Deliver),
                    },
                    Topic::Dataset(dataset) => match datasets.get(&dataset) {
                        // Deleted: its last events, then the end.
                        None if event.action == AuditAction::DatasetDeleted => {
                            Some(Verdict::DeliverThenComplete)
                        }
                        None => Some(Verdict::Deliver),
                        Some(row) => {
                            if dataset_allows(
                                dataset_role(row),
                                row.public,
                                DatasetAction::ListCollaborators,
                            ) {
                                Some(Verdict::Deliver)
                            } else {
                                Some(Verdict::Lost)
                            }
                        }
                    },
                }
            };
            if let Some(verdict) = verdict {
                verdicts.push((index, verdict));
                if verdict != Verdict::Deliver {
                    break;
                }
            }
        }
        if !verdicts.is_empty() {
            out.push((id, verdicts));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_from_notifications() {
        assert_eq!(Changed::parse("m:12:34"), Some(Changed::Member(12, 34)));
        assert_eq!(Changed::parse("u:7"), Some(Changed::Account(7)));
        assert_eq!(Changed::parse("t:9"), Some(Changed::Token(9)));
        for bad in ["", "m:12", "m:12:34:5", "u:x", "x:1", "t:1:2", "u:"] {
            assert_eq!(Changed::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn forgetting_drops_only_what_changed() {
        let mut known = Known::default();
        known.sessions.insert(1, Some(0));
        known.sessions.insert(2, Some(3));
        known.roles.insert((10, 1), Some(OrganizationRole::Member));
        known.roles.insert((10, 2), None);
        known.tokens.insert(5, None);
        known.forget(Changed::Member(10, 2));
        known.forget(Changed::Account(1));
        known.forget(Changed::Token(5));
        assert_eq!(known.sessions.keys().collect::<Vec<_>>(), [&2]);
        assert_eq!(known.roles.keys().collect::<Vec<_>>(), [&(10, 1)]);
        assert!(known.tokens.is_empty());
        known.clear();
        assert_eq!(known.len(), 0);
    }
}
