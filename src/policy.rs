//! The permission tables of API.md, as code. Pure functions, tested cell by cell; every
//! domain function asks these and nothing else. Where SQL must apply a rule to many rows at
//! once (which datasets a viewer may see, in every page of datasets), the condition is
//! written here too, from the same functions ([`visible_datasets`]), and a test compares
//! what the SQL returns with what these functions allow.

use sea_orm::sea_query::{Condition, DynIden, Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, Iterable};

use entity::roles::{DatasetRole, OrganizationRole};
use entity::{collaborator, dataset, membership};

use crate::auth::Via;

/// Something one may do to an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgAction {
    /// See its username, display name and public datasets.
    SeeProfile,
    /// List its members and see their roles.
    ListMembers,
    /// Create a dataset it owns.
    CreateDataset,
    /// Add, update or remove members.
    ManageMembers,
    /// Update its settings.
    UpdateSettings,
    /// Delete it.
    Delete,
    /// Leave it (the last-admin rule is an invariant checked in the transaction).
    Leave,
    /// See and revoke the API tokens restricted to it.
    ManageTokens,
    /// Read its audit log, and its invitations; invite, revoke invitations.
    Audit,
}

/// Whether a viewer with organization role `role` (`None`: not a member) may do `action`.
pub fn org_allows(role: Option<OrganizationRole>, action: OrgAction) -> bool {
    use OrgAction::*;
    match action {
        SeeProfile => true,
        ListMembers | Leave => role.is_some(),
        CreateDataset | ManageMembers | UpdateSettings | Delete | ManageTokens | Audit => {
            role == Some(OrganizationRole::Admin)
        }
    }
}

/// Whether a member with organization role `role` acts as `ADMIN` on the organization's
/// datasets (API.md, "Effective role"): its admins do.
pub fn administers_datasets(role: Option<OrganizationRole>) -> bool {
    role == Some(OrganizationRole::Admin)
}

/// The mutations a person runs with a password's authority, never a script: an API token
/// running one is refused (API.md, "Accounts, sessions and API tokens").
pub const PERSONAL_MUTATIONS: &[&str] = &[
    "createApiToken",
    "revokeApiToken",
    "changePassword",
    "signOutEverywhere",
    "deleteAccount",
];

/// Whether a request signed in `via` (`None`: anonymous) may run an operation: queries with
/// any credential, or with an API token of either scope; mutations (whose root fields are
/// `mutations`) with a sign-in token, or an API token with the `WRITE` scope that runs none
/// of the [`PERSONAL_MUTATIONS`]. (What each field then allows is the role tables' to say.)
pub fn may_run(via: Option<Via>, mutations: Option<&[String]>) -> bool {
    match (via, mutations) {
        (
            Some(Via::ApiToken {
                can_read,
                can_write,
                ..
            }),
            None,
        ) => can_read || can_write,
        (Some(Via::ApiToken { can_write, .. }), Some(fields)) => {
            can_write
                && !fields
                    .iter()
                    .any(|field| PERSONAL_MUTATIONS.contains(&field.as_str()))
        }
        _ => true,
    }
}

/// Whether a credential restricted to the organization `restricted_to` (`None`: not
/// restricted) acts as its user on something the account `owner` owns (or on `owner`
/// itself); elsewhere it acts as an anonymous caller.
pub fn reaches(restricted_to: Option<i64>, owner: i64) -> bool {
    restricted_to.is_none_or(|organization| organization == owner)
}

/// Whether a viewer may see or revoke an API token: its owner, or an `ADMIN` of the
/// organization it is restricted to (`role_in_its_organization`: the viewer's role there).
pub fn may_manage_token(
    is_owner: bool,
    role_in_its_organization: Option<OrganizationRole>,
) -> bool {
    is_owner || role_in_its_organization == Some(OrganizationRole::Admin)
}

/// Whether a user with organization role `role` (`None`: not a member) may restrict an API
/// token to the organization: its members may.
pub fn may_restrict_token_to(role: Option<OrganizationRole>) -> bool {
    role.is_some()
}

/// Something one may do to a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetAction {
    /// See it: query it, list it.
    See,
    /// List its collaborators.
    ListCollaborators,
    /// Add, update or remove collaborators (which roles: [`may_set_collaborator`]).
    ManageCollaborators,
    /// Update its settings (description, public).
    UpdateSettings,
    /// Delete it.
    Delete,
    /// Clone it (the seed platform: public datasets, or datasets one administers).
    Clone,
    /// Transfer it to another owner.
    Transfer,
    /// Read its audit log.
    ReadAuditLog,
}

/// The effective role of a viewer on a dataset: the personal owner and the admins of the
/// owning organization act as `ADMIN`; anyone else has their collaborator role, if any.
pub fn effective_dataset_role(
    owns_or_administers_owner: bool,
    collaborator_role: Option<DatasetRole>,
) -> Option<DatasetRole> {
    if owns_or_administers_owner {
        Some(DatasetRole::Admin)
    } else {
        collaborator_role
    }
}

/// Whether a viewer with effective role `role` may do `action` on a dataset that is `public`
/// or not.
pub fn dataset_allows(role: Option<DatasetRole>, public: bool, action: DatasetAction) -> bool {
    use DatasetAction::*;
    match action {
        See => public || role.is_some(),
        Clone => public || role == Some(DatasetRole::Admin),
        ListCollaborators => role.is_some(),
        ManageCollaborators => role >= Some(DatasetRole::Manager),
        UpdateSettings | Delete | Transfer | ReadAuditLog => role == Some(DatasetRole::Admin),
    }
}

/// Whether a viewer with effective role `role` may move (transfer) or delete a dataset: its
/// `ADMIN`, who, when an organization owns the dataset, must also be an `ADMIN` of that
/// organization (a dataset `ADMIN` who is only a `MEMBER`, or an outside collaborator, may
/// not take the organization's dataset away). `administers_owner`: the viewer owns the
/// dataset's personal owner account or is an `ADMIN` of its owning organization.
pub fn may_move_or_delete(
    role: Option<DatasetRole>,
    owned_by_organization: bool,
    administers_owner: bool,
) -> bool {
    dataset_allows(role, false, DatasetAction::Delete)
        && (!owned_by_organization || administers_owner)
}

/// The condition under which the viewer (`None`: anonymous) may see a row of `dataset`
/// aliased `table`: [`dataset_allows`]`(effective role, public, See)`, written as SQL from
/// the functions above. Public datasets when a dataset's being public lets anyone see it;
/// datasets the viewer owns or whose owning organization they administer (they act as
/// [`effective_dataset_role`]`(true, …)`), and datasets where their collaborator role sees
/// a private dataset. A credential restricted to an organization ([`reaches`]) sees, beyond
/// what an anonymous caller sees, only that organization's datasets.
pub fn visible_datasets(
    viewer: Option<i64>,
    restricted_to: Option<i64>,
    table: DynIden,
) -> Condition {
    let column = |c: dataset::Column| Expr::col((table.clone(), c));
    let mut public = Condition::any();
    if dataset_allows(None, true, DatasetAction::See) {
        public = public.add(column(dataset::Column::Public).eq(true));
    }
    let Some(viewer) = viewer else {
        return public;
    };
    let by_role = viewers_datasets(viewer, &table);
    match restricted_to {
        None => public.add(by_role),
        Some(organization) => public.add(
            Condition::all()
                .add(column(dataset::Column::OwnerId).eq(organization))
                .add(by_role),
        ),
    }
}

/// The datasets a signed-in viewer's role lets them see, private ones included.
fn viewers_datasets(viewer: i64, table: &DynIden) -> Condition {
    let column = |c: dataset::Column| Expr::col((table.clone(), c));
    let mut visible = Condition::any();
    if dataset_allows(
        effective_dataset_role(true, None),
        false,
        DatasetAction::See,
    ) {
        visible = visible.add(column(dataset::Column::OwnerId).eq(viewer));
        let administering: Vec<OrganizationRole> = OrganizationRole::iter()
            .filter(|role| administers_datasets(Some(*role)))
            .collect();
        visible = visible.add(
            column(dataset::Column::OwnerId).in_subquery(
                Query::select()
                    .column(membership::Column::OrganizationId)
                    .from(membership::Entity)
                    .and_where(membership::Column::UserId.eq(viewer))
                    .and_where(membership::Column::Role.is_in(administering))
                    .to_owned(),
            ),
        );
    }
    let seeing: Vec<DatasetRole> = DatasetRole::iter()
        .filter(|role| dataset_allows(Some(*role), false, DatasetAction::See))
        .collect();
    if !seeing.is_empty() {
        let mut collaborations = Query::select();
        collaborations
            .column(collaborator::Column::DatasetId)
            .from(collaborator::Entity)
            .and_where(collaborator::Column::UserId.eq(viewer));
        // Every role sees (API.md): no condition on the role, which would only cost a read
        // of it per entry.
        if seeing.len() < DatasetRole::iter().count() {
            collaborations.and_where(collaborator::Column::Role.is_in(seeing));
        }
        visible = visible.add(column(dataset::Column::Id).in_subquery(collaborations));
    }
    visible
}

/// Whether an actor with effective role `actor` may change a collaborator's role from `from`
/// to `to` (`None` on either side: adding or removing). A `MANAGER` manages collaborators but
/// never grants, changes or removes `ADMIN`; an `ADMIN` may do anything.
pub fn may_set_collaborator(
    actor: Option<DatasetRole>,
    from: Option<DatasetRole>,
    to: Option<DatasetRole>,
) -> bool {
    match actor {
        Some(DatasetRole::Admin) => true,
        Some(DatasetRole::Manager) => {
            from != Some(DatasetRole::Admin) && to != Some(DatasetRole::Admin)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DatasetRole::{Labeler, Manager, Reviewer, Viewer};

    /// API.md's organization table, row by row: (action, non-member, MEMBER, ADMIN).
    #[test]
    fn organization_table() {
        let table = [
            (OrgAction::SeeProfile, true, true, true),
            (OrgAction::ListMembers, false, true, true),
            (OrgAction::CreateDataset, false, false, true),
            (OrgAction::ManageMembers, false, false, true),
            (OrgAction::UpdateSettings, false, false, true),
            (OrgAction::Delete, false, false, true),
            (OrgAction::Leave, false, true, true),
            (OrgAction::ManageTokens, false, false, true),
        ];
        for (action, none, member, admin) in table {
            assert_eq!(org_allows(None, action), none, "{action:?} non-member");
            assert_eq!(
                org_allows(Some(OrganizationRole::Member), action),
                member,
                "{action:?} MEMBER"
            );
            assert_eq!(
                org_allows(Some(OrganizationRole::Admin), action),
                admin,
                "{action:?} ADMIN"
            );
        }
    }

    /// API.md's dataset table: (action, [none, VIEWER, LABELER, REVIEWER, MANAGER, ADMIN])
    /// on a private dataset; a public one differs only in `See` and `Clone` for non-collaborators.
    #[test]
    fn dataset_table() {
        let roles = [
            None,
            Some(Viewer),
            Some(Labeler),
            Some(Reviewer),
            Some(Manager),
            Some(DatasetRole::Admin),
        ];
        let table = [
            (DatasetAction::See, [false, true, true, true, true, true]),
            (
                DatasetAction::ListCollaborators,
                [false, true, true, true, true, true],
            ),
            (
                DatasetAction::ManageCollaborators,
                [false, false, false, false, true, true],
            ),
            (
                DatasetAction::UpdateSettings,
                [false, false, false, false, false, true],
            ),
            (
                DatasetAction::Delete,
                [false, false, false, false, false, true],
            ),
            (
                DatasetAction::Clone,
                [false, false, false, false, false, true],
            ),
            (
                DatasetAction::Transfer,
                [false, false, false, false, false, true],
            ),
        ];
        for (action, expected) in table {
            for (role, allowed) in roles.iter().zip(expected) {
                assert_eq!(
                    dataset_allows(*role, false, action),
                    allowed,
                    "{action:?} {role:?} private"
                );
                // Public: anyone may see and clone it; everything else is as private.
                let public_allowed =
                    allowed || matches!(action, DatasetAction::See | DatasetAction::Clone);
                assert_eq!(
                    dataset_allows(*role, true, action),
                    public_allowed,
                    "{action:?} {role:?} public"
                );
            }
        }
    }

    /// Moving or deleting: (role, owned by an organization, administers the owner) → allowed.
    #[test]
    fn only_admins_of_the_owner_move_or_delete_an_organizations_dataset() {
        let admin = Some(DatasetRole::Admin);
        for role in [
            None,
            Some(Viewer),
            Some(Labeler),
            Some(Reviewer),
            Some(Manager),
        ] {
            for (org, administers) in [(false, false), (true, false), (true, true)] {
                assert!(!may_move_or_delete(role, org, administers), "{role:?}");
            }
        }
        // A personal dataset: its ADMIN (the owner, or an ADMIN collaborator).
        assert!(may_move_or_delete(admin, false, true));
        assert!(may_move_or_delete(admin, false, false));
        // An organization's: an ADMIN of the organization only.
        assert!(may_move_or_delete(admin, true, true));
        assert!(!may_move_or_delete(admin, true, false));
    }

    /// Every credential × operation kind (API.md): anonymous and sign-in tokens run
    /// anything (the role tables decide each field); an API token needs a scope, `WRITE` for
    /// mutations, and never runs the personal mutations.
    #[test]
    fn credentials_and_scopes() {
        let token = |can_read, can_write| {
            Some(Via::ApiToken {
                id: 1,
                can_read,
                can_write,
                organization: None,
            })
        };
        let mutation = |name: &str| vec![name.to_owned()];
        let update = mutation("updateMember");
        for via in [None, Some(Via::Session)] {
            assert!(may_run(via, None));
            assert!(may_run(via, Some(&update)));
            for personal in PERSONAL_MUTATIONS {
                assert!(may_run(via, Some(&mutation(personal))));
            }
        }
        // (READ, WRITE) → (query, ordinary mutation)
        for (can_read, can_write, query, mutates) in [
            (true, false, true, false),
            (false, true, true, true),
            (true, true, true, true),
            (false, false, false, false),
        ] {
            let via = token(can_read, can_write);
            assert_eq!(may_run(via, None), query, "{via:?} query");
            assert_eq!(may_run(via, Some(&update)), mutates, "{via:?} mutation");
            for personal in PERSONAL_MUTATIONS {
                assert!(
                    !may_run(via, Some(&mutation(personal))),
                    "{via:?} {personal}"
                );
            }
            let mixed = vec!["updateMember".to_owned(), "deleteAccount".to_owned()];
            assert!(!may_run(via, Some(&mixed)));
        }
    }

    #[test]
    fn restricted_tokens_reach_their_organization_only() {
        assert!(reaches(None, 1) && reaches(None, 2));
        assert!(reaches(Some(1), 1));
        assert!(!reaches(Some(1), 2));
    }

    #[test]
    fn tokens_are_managed_by_their_owner_or_their_organizations_admins() {
        for role in [
            None,
            Some(OrganizationRole::Member),
            Some(OrganizationRole::Admin),
        ] {
            assert!(may_manage_token(true, role));
            assert_eq!(
                may_manage_token(false, role),
                role == Some(OrganizationRole::Admin)
            );
        }
    }

    #[test]
    fn owners_and_org_admins_act_as_admin() {
        assert_eq!(effective_dataset_role(true, None), Some(DatasetRole::Admin));
        assert_eq!(
            effective_dataset_role(true, Some(Viewer)),
            Some(DatasetRole::Admin)
        );
        assert_eq!(effective_dataset_role(false, Some(Labeler)), Some(Labeler));
        assert_eq!(effective_dataset_role(false, None), None);
    }

    #[test]
    fn managers_never_touch_admin() {
        let all = [
            None,
            Some(Viewer),
            Some(Labeler),
            Some(Reviewer),
            Some(Manager),
            Some(DatasetRole::Admin),
        ];
        for from in all {
            for to in all {
                let touches_admin =
                    from == Some(DatasetRole::Admin) || to == Some(DatasetRole::Admin);
                assert_eq!(
                    may_set_collaborator(Some(Manager), from, to),
                    !touches_admin,
                    "{from:?}->{to:?}"
                );
                assert!(may_set_collaborator(Some(DatasetRole::Admin), from, to));
                for weak in [None, Some(Viewer), Some(Labeler), Some(Reviewer)] {
                    assert!(!may_set_collaborator(weak, from, to));
                }
            }
        }
    }
}
