//! The SQL that pages of datasets filter with is `policy.rs`'s rule: for every relation a
//! viewer can have to a dataset (owner, admin or member of the owning organization, each
//! collaborator role, stranger, anonymous) and both visibilities, the rows the SQL
//! condition keeps are exactly those `policy::dataset_allows` lets the viewer see, signed in
//! with an unrestricted credential or with an API token restricted to the organization.

use std::collections::BTreeSet;

use entity::dataset;
use entity::roles::DatasetRole;
use orgql::policy::{
    DatasetAction, dataset_allows, effective_dataset_role, reaches, visible_datasets,
};
use sea_orm::sea_query::{Alias, Expr, IntoIden, Query};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};

on_both_databases!(the_sql_visibility_filter_is_the_policy);

/// Every collaborator role, and none.
const ROLES: [Option<&str>; 6] = [
    None,
    Some("VIEWER"),
    Some("LABELER"),
    Some("REVIEWER"),
    Some("MANAGER"),
    Some("ADMIN"),
];

fn role(name: &str) -> DatasetRole {
    match name {
        "VIEWER" => DatasetRole::Viewer,
        "LABELER" => DatasetRole::Labeler,
        "REVIEWER" => DatasetRole::Reviewer,
        "MANAGER" => DatasetRole::Manager,
        _ => DatasetRole::Admin,
    }
}

async fn the_sql_visibility_filter_is_the_policy(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let owner = app.sign_up("owner").await;
    app.sign_up("orgadmin").await;
    app.sign_up("member").await;
    app.sign_up("stranger").await;
    for r in ROLES.iter().flatten() {
        app.sign_up(&format!("c-{}", r.to_lowercase())).await;
    }
    app.create_org(&owner, "acme").await;
    app.add_member(&owner, "acme", "orgadmin", "ADMIN", Value::Null)
        .await
        .data("/addMember");
    app.add_member(&owner, "acme", "member", "MEMBER", Value::Null)
        .await
        .data("/addMember");
    // Personal and organization datasets, public and private, each with one collaborator of
    // every role; the owner (creator) drops her own entry, so that her authority comes from
    // owning (or administering) alone.
    let mut datasets = Vec::new();
    for (owner_name, public) in [
        (None, true),
        (None, false),
        (Some("acme"), true),
        (Some("acme"), false),
    ] {
        let name = format!(
            "{}-{}",
            owner_name.unwrap_or("own"),
            if public { "public" } else { "private" }
        );
        let reply = app.create_dataset(&owner, owner_name, &name, public).await;
        let full = reply
            .data("/createDataset/dataset/fullName")
            .as_str()
            .unwrap()
            .to_owned();
        for r in ROLES.iter().flatten() {
            app.gql(
                Some(&owner),
                "mutation($d: String!, $u: String!, $r: DatasetRole!) { addCollaborator(input: { dataset: $d, username: $u, role: $r }) { collaborator { role } } }",
                json!({ "d": full, "u": format!("c-{}", r.to_lowercase()), "r": r }),
            )
            .await
            .data("/addCollaborator");
        }
        app.gql(
            Some(&owner),
            "mutation($d: String!) { removeCollaborator(input: { dataset: $d, username: \"owner\" }) { dataset { id } } }",
            json!({ "d": full }),
        )
        .await
        .data("/removeCollaborator");
        datasets.push((full, owner_name.is_some(), public));
    }

    let db = &app.state().db;
    let id_of = |username: &str| {
        let db = db.clone();
        let username = username.to_owned();
        async move {
            use sea_orm::{ColumnTrait, QueryFilter};
            entity::account::Entity::find()
                .filter(entity::account::Column::Username.eq(username))
                .one(&db)
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let names: Vec<(i64, String)> = dataset::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    // (viewer, their effective role on personal datasets, on acme's datasets)
    let mut viewers: Vec<(Option<&str>, Option<DatasetRole>, Option<DatasetRole>)> = vec![
        (None, None, None),
        (
            Some("owner"),
            effective_dataset_role(true, None),
            effective_dataset_role(true, None),
        ),
        (Some("orgadmin"), None, effective_dataset_role(true, None)),
        (Some("member"), None, None),
        (Some("stranger"), None, None),
    ];
    let collaborators: Vec<String> = ROLES
        .iter()
        .flatten()
        .map(|r| format!("c-{}", r.to_lowercase()))
        .collect();
    for (name, r) in collaborators.iter().zip(ROLES.iter().flatten()) {
        let role = effective_dataset_role(false, Some(role(r)));
        viewers.push((Some(name.as_str()), role, role));
    }
    let acme = id_of("acme").await;
    let owner_id = id_of("owner").await;
    // Each viewer signed in with an unrestricted credential, and with an API token
    // restricted to acme (anonymous outside it).
    let cases = viewers
        .into_iter()
        .flat_map(|viewer| [(viewer, None), (viewer, Some(acme))]);
    for ((viewer, personal_role, org_role), restricted_to) in cases {
        let viewer_id = match viewer {
            Some(name) => Some(id_of(name).await),
            None => None,
        };
        // What the policy allows, dataset by dataset.
        let allowed: BTreeSet<String> = datasets
            .iter()
            .filter(|(_, of_org, public)| {
                let (role, owner) = if *of_org {
                    (org_role, acme)
                } else {
                    (personal_role, owner_id)
                };
                let role = role.filter(|_| reaches(restricted_to, owner));
                dataset_allows(role, *public, DatasetAction::See)
            })
            .map(|(full, _, _)| full.split_once('/').unwrap().1.to_owned())
            .collect();
        // What the SQL condition keeps.
        let table = Alias::new("r").into_iden();
        let select = Query::select()
            .expr(Expr::col((table.clone(), dataset::Column::Id)))
            .from_as(dataset::Entity, table.clone())
            .cond_where(visible_datasets(viewer_id, restricted_to, table))
            .to_owned();
        let rows = db
            .query_all_raw(db.get_database_backend().build(&select))
            .await
            .unwrap();
        let kept: BTreeSet<String> = rows
            .iter()
            .map(|row| {
                let id: i64 = row.try_get_by_index(0).unwrap();
                names.iter().find(|(i, _)| *i == id).unwrap().1.clone()
            })
            .collect();
        assert_eq!(
            kept, allowed,
            "viewer {viewer:?}, restricted to {restricted_to:?}"
        );
        assert!(
            allowed.contains("own-public") && allowed.contains("acme-public"),
            "public datasets are seen by everyone"
        );
    }
    app.stop().await;
}
