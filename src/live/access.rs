//! Who may see which event, decided for a whole batch of events and their candidate
//! subscriptions at once: a statement each for the credentials, the memberships, the
//! datasets and the collaborator entries concerned, whatever the number of subscribers, all
//! run at once; then `crate::policy` for each (subscription, event).

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::extension::postgres::PgFunc;
use sea_orm::sea_query::{ArrayType, Expr, ExprTrait, Query, SelectStatement, SimpleExpr, Value};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QuerySelect,
    Select, TryGetableMany,
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

/// `SELECT value FROM its table WHERE column` is one of `ids`, as a subquery.
fn values_among<C: ColumnTrait>(
    backend: DbBackend,
    value: C,
    column: C,
    ids: &[i64],
) -> SelectStatement {
    Query::select()
        .column(value)
        .from(value.entity_name())
        .and_where(among(backend, column, ids))
        .to_owned()
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

/// For each candidate `(id, topic, user, credential)`, the events of `events` (by index,
/// in order) it gets, up to and including its last verdict.
pub(crate) async fn decide(
    db: &DatabaseConnection,
    candidates: &[(u64, Topic, i64, Credential)],
    events: &[audit_event::Model],
) -> ApiResult<Vec<(u64, Vec<(usize, Verdict)>)>> {
    let users: HashSet<i64> = candidates.iter().map(|c| c.2).collect();
    let users: Vec<i64> = users.into_iter().collect();
    let token_ids: Vec<i64> = candidates
        .iter()
        .filter_map(|c| match c.3 {
            Credential::ApiToken { id } => Some(id),
            Credential::Session { .. } => None,
        })
        .collect();
    let distinct = |ids: HashSet<i64>| ids.into_iter().collect::<Vec<_>>();
    let dataset_ids = distinct(events.iter().filter_map(|e| e.dataset_id).collect());
    let organization_ids = distinct(events.iter().filter_map(|e| e.organization_id).collect());
    let backend = db.get_database_backend();

    // Five independent reads, at once: on the feed's path from a commit to its subscribers,
    // one round trip instead of five.
    use collaborator::Column as Collaborator;
    use membership::Column as Member;
    use user_account::Column as Account;
    // The credentials, as they stand now.
    let sessions = columns_among::<_, _, (i64, i64)>(
        db,
        user_account::Entity::find(),
        Account::AccountId,
        &users,
        [Account::AccountId, Account::SessionGeneration],
    );
    let tokens = rows_among(
        db,
        api_token::Entity::find(),
        api_token::Column::Id,
        &token_ids,
        |t| t.id,
    );
    // The datasets concerned.
    let datasets = rows_among(
        db,
        dataset::Entity::find(),
        dataset::Column::Id,
        &dataset_ids,
        |d| d.id,
    );
    // The memberships concerned: of the events' organizations, the datasets' owners and the
    // organizations tokens are restricted to.
    let mut concerned =
        Condition::any().add(among(backend, Member::OrganizationId, &organization_ids));
    if !dataset_ids.is_empty() {
        let owners = values_among(
            backend,
            dataset::Column::OwnerId,
            dataset::Column::Id,
            &dataset_ids,
        );
        concerned = concerned.add(Member::OrganizationId.in_subquery(owners));
    }
    if !token_ids.is_empty() {
        use api_token::Column as Token;
        let restricted_to = values_among(backend, Token::OrganizationId, Token::Id, &token_ids);
        concerned = concerned.add(Member::OrganizationId.in_subquery(restricted_to));
    }
    let memberships = columns_among::<_, _, (i64, i64, OrganizationRole)>(
        db,
        membership::Entity::find().filter(concerned),
        Member::UserId,
        &users,
        [Member::OrganizationId, Member::UserId, Member::Role],
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
    let (sessions, tokens, datasets, memberships, collaborators) =
        tokio::try_join!(sessions, tokens, datasets, memberships, collaborators)?;
    let sessions: HashMap<i64, i64> = sessions.into_iter().collect();
    let roles: HashMap<(i64, i64), OrganizationRole> = memberships
        .into_iter()
        .map(|(organization, user, role)| ((organization, user), role))
        .collect();
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
            Credential::Session { generation } => (sessions.get(&user) == Some(&generation), None),
            Credential::ApiToken { id } => match tokens.get(&id) {
                Some(t) => (
                    t.revoked_at.is_none()
                        && t.expires_at > now
                        && t.organization_id
                            .is_none_or(|o| roles.contains_key(&(o, user))),
                    t.organization_id,
                ),
                None => (false, None),
            },
        };
        let role_in = |organization: i64| {
            if reaches(restricted_to, organization) {
                roles.get(&(organization, user)).copied()
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
