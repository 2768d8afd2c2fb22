//! Who may see which event, decided for a whole batch of events and their candidate
//! subscriptions at once: a statement each for the credentials, the memberships, the
//! datasets and the collaborator entries concerned, whatever the number of subscribers,
//! then `crate::policy` for each (subscription, event).

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

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

/// For each candidate `(id, topic, user, credential)`, the events of `events` (by index,
/// in order) it gets, up to and including its last verdict.
pub(crate) async fn decide(
    db: &DatabaseConnection,
    candidates: &[(u64, Topic, i64, Credential)],
    events: &[audit_event::Model],
) -> ApiResult<Vec<(u64, Vec<(usize, Verdict)>)>> {
    let users: HashSet<i64> = candidates.iter().map(|c| c.2).collect();
    let users: Vec<i64> = users.into_iter().collect();

    // The credentials, as they stand now.
    let sessions: HashMap<i64, i64> = user_account::Entity::find()
        .filter(user_account::Column::AccountId.is_in(users.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.account_id, u.session_generation))
        .collect();
    let token_ids: Vec<i64> = candidates
        .iter()
        .filter_map(|c| match c.3 {
            Credential::ApiToken { id } => Some(id),
            Credential::Session { .. } => None,
        })
        .collect();
    let tokens: HashMap<i64, api_token::Model> = if token_ids.is_empty() {
        HashMap::new()
    } else {
        api_token::Entity::find()
            .filter(api_token::Column::Id.is_in(token_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect()
    };

    // The datasets concerned and their owners.
    let dataset_ids: HashSet<i64> = events.iter().filter_map(|e| e.dataset_id).collect();
    let datasets: HashMap<i64, dataset::Model> = if dataset_ids.is_empty() {
        HashMap::new()
    } else {
        dataset::Entity::find()
            .filter(dataset::Column::Id.is_in(dataset_ids.iter().copied()))
            .all(db)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect()
    };

    // The memberships concerned: of the events' organizations, the datasets' owners and the
    // organizations tokens are restricted to.
    let mut organizations: HashSet<i64> = events.iter().filter_map(|e| e.organization_id).collect();
    organizations.extend(datasets.values().map(|d| d.owner_id));
    organizations.extend(tokens.values().filter_map(|t| t.organization_id));
    let roles: HashMap<(i64, i64), OrganizationRole> = if organizations.is_empty() {
        HashMap::new()
    } else {
        membership::Entity::find()
            .filter(membership::Column::OrganizationId.is_in(organizations.iter().copied()))
            .filter(membership::Column::UserId.is_in(users.iter().copied()))
            .all(db)
            .await?
            .into_iter()
            .map(|m| ((m.organization_id, m.user_id), m.role))
            .collect()
    };
    let collaborators: HashMap<(i64, i64), DatasetRole> = if datasets.is_empty() {
        HashMap::new()
    } else {
        collaborator::Entity::find()
            .filter(collaborator::Column::DatasetId.is_in(datasets.keys().copied()))
            .filter(collaborator::Column::UserId.is_in(users.iter().copied()))
            .all(db)
            .await?
            .into_iter()
            .map(|c| ((c.dataset_id, c.user_id), c.role))
            .collect()
    };

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
