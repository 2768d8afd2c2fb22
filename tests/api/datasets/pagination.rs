//! Collaborators: who manages whom, outside collaborators, and paging through collaborators
//! and datasets in order, showing only what the viewer may see.

use super::*;

on_both_databases!(
    collaborator_management_rules,
    lists_show_what_the_viewer_may_see_in_name_order,
);

// ---------------------------------------------------------------------------------------------
// Collaborators
// ---------------------------------------------------------------------------------------------

async fn collaborator_management_rules(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let max = app.sign_up("max").await;
    for user in ["Zoe", "bob", "Carl", "dave"] {
        app.sign_up(user).await;
    }
    app.create_org(&olivia, "acme").await;
    app.add_member(&olivia, "acme", "max", "MEMBER", json!("MANAGER"))
        .await
        .data("/addMember/member");
    let (ds, _) = created(&app, &olivia, None, "ds", false).await;

    // The role defaults to LABELER; the payload names user, role and dataset.
    let reply = add_collaborator(&app, Some(&olivia), &ds, "ZOE", None).await;
    assert_eq!(
        reply.data("/addCollaborator/collaborator"),
        &json!({ "role": "LABELER", "user": { "username": "Zoe" }, "dataset": { "fullName": "olivia/ds" } })
    );
    add_collaborator(&app, Some(&olivia), &ds, "max", Some("MANAGER"))
        .await
        .data("/addCollaborator/collaborator");

    let world = stored(&app, "").await;
    let refusals: Vec<(&str, Reply, &str)> = vec![
        (
            "already a collaborator (any case)",
            add_collaborator(&app, Some(&olivia), &ds, "zoe", Some("VIEWER")).await,
            "CONFLICT",
        ),
        (
            "no such user",
            add_collaborator(&app, Some(&olivia), &ds, "nobody", None).await,
            "NOT_FOUND",
        ),
        (
            "an organization is not a user",
            add_collaborator(&app, Some(&olivia), &ds, "acme", None).await,
            "NOT_FOUND",
        ),
        (
            "updating a non-collaborator",
            mutate(
                &app,
                Some(&olivia),
                "updateCollaborator",
                json!({ "dataset": ds, "username": "bob", "role": "VIEWER" }),
                "collaborator { role }",
            )
            .await,
            "NOT_FOUND",
        ),
        (
            "removing a non-collaborator",
            mutate(
                &app,
                Some(&olivia),
                "removeCollaborator",
                json!({ "dataset": ds, "username": "bob" }),
                "dataset { id }",
            )
            .await,
            "NOT_FOUND",
        ),
        (
            "a manager promoting himself",
            mutate(
                &app,
                Some(&max),
                "updateCollaborator",
                json!({ "dataset": ds, "username": "max", "role": "ADMIN" }),
                "collaborator { role }",
            )
            .await,
            "FORBIDDEN",
        ),
        (
            "a manager removing the owner's ADMIN entry",
            mutate(
                &app,
                Some(&max),
                "removeCollaborator",
                json!({ "dataset": ds, "username": "olivia" }),
                "dataset { id }",
            )
            .await,
            "FORBIDDEN",
        ),
        (
            "an invalid role",
            add_collaborator(&app, Some(&olivia), &ds, "bob", Some("OWNER")).await,
            "BAD_USER_INPUT",
        ),
    ];
    for (why, reply, code) in refusals {
        assert_eq!(reply.codes(), [code], "{why}: {}", reply.body);
    }
    assert_eq!(stored(&app, "").await, world, "refusals changed nothing");

    // On an organization's dataset, collaborators need not be members (outside
    // collaborators), whether an admin or a manager adds them.
    let (org_ds, _) = created(&app, &olivia, Some("acme"), "org-ds", false).await;
    add_collaborator(&app, Some(&max), &org_ds, "bob", Some("REVIEWER"))
        .await
        .data("/addCollaborator/collaborator");
    assert_eq!(stored_collaborators(&app, &org_ds).await["bob"], "REVIEWER");

    // Paging through the collaborators, by username case-insensitively.
    for user in ["bob", "Carl", "dave"] {
        add_collaborator(&app, Some(&olivia), &ds, user, Some("VIEWER"))
            .await
            .data("/addCollaborator/collaborator");
    }
    let order = ["bob", "Carl", "dave", "max", "olivia", "Zoe"];
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let reply = app
            .gql(
                Some(&olivia),
                COLLABORATORS,
                json!({ "f": ds, "first": 4, "after": after }),
            )
            .await;
        let connection = reply.data("/dataset/collaborators").clone();
        assert_eq!(connection["totalCount"], 6);
        for node in connection["nodes"].as_array().unwrap() {
            seen.push(node["user"]["username"].as_str().unwrap().to_owned());
        }
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, order);
    for first in [101, -1] {
        app.gql(
            Some(&olivia),
            COLLABORATORS,
            json!({ "f": ds, "first": first }),
        )
        .await
        .expect_code("BAD_USER_INPUT");
    }
    app.stop().await;
}

async fn lists_show_what_the_viewer_may_see_in_name_order(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let vera = app.sign_up("vera").await;
    let sam = app.sign_up("sam").await;
    app.create_org(&olivia, "acme").await;
    for (name, public) in [
        ("Beta", true),
        ("alpha", false),
        ("Delta", false),
        ("charlie", true),
    ] {
        created(&app, &olivia, None, name, public).await;
        created(&app, &olivia, Some("acme"), name, public).await;
    }
    add_collaborator(&app, Some(&olivia), "olivia/delta", "vera", Some("VIEWER"))
        .await
        .data("/addCollaborator/collaborator");

    for (field, owner) in [("user", "olivia"), ("organization", "acme")] {
        let all: Vec<String> = ["alpha", "Beta", "charlie", "Delta"]
            .iter()
            .map(|n| format!("{}/{n}", if owner == "acme" { "acme" } else { "olivia" }))
            .collect();
        assert_eq!(
            listed_datasets(&app, Some(&olivia), field, owner).await,
            all
        );
        let public: Vec<String> = vec![all[1].clone(), all[2].clone()];
        assert_eq!(
            listed_datasets(&app, Some(&sam), field, owner).await,
            public
        );
        assert_eq!(listed_datasets(&app, None, field, owner).await, public);
    }
    assert_eq!(
        listed_datasets(&app, Some(&vera), "user", "olivia").await,
        vec!["olivia/Beta", "olivia/charlie", "olivia/Delta"]
    );
    // viewer.datasets are one's own.
    let reply = app
        .gql(Some(&olivia), "{ viewer { datasets(first: 2) { totalCount pageInfo { hasNextPage endCursor } nodes { name } } } }", json!({}))
        .await;
    assert_eq!(reply.data("/viewer/datasets/totalCount"), 4);
    assert_eq!(
        reply.data("/viewer/datasets/nodes"),
        &json!([{ "name": "alpha" }, { "name": "Beta" }])
    );
    let cursor = reply.data("/viewer/datasets/pageInfo/endCursor").clone();
    let reply = app
        .gql(Some(&olivia), "query($a: String) { viewer { datasets(first: 2, after: $a) { pageInfo { hasNextPage } nodes { name } } } }", json!({ "a": cursor }))
        .await;
    assert_eq!(
        reply.data("/viewer/datasets/nodes"),
        &json!([{ "name": "charlie" }, { "name": "Delta" }])
    );
    assert_eq!(reply.data("/viewer/datasets/pageInfo/hasNextPage"), false);
    app.stop().await;
}
