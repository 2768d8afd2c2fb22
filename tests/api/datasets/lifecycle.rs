//! Creating, updating and deleting datasets, alone and racing each other and the deletion
//! of their organization.

use super::*;

on_both_databases!(
    creating_a_dataset_under_oneself_or_an_administered_organization,
    settings_update_and_deletion,
    racing_creations_of_one_name_let_exactly_one_win,
    racing_leaves_and_creations_never_leave_a_non_member_collaborator,
    deleting_an_organization_while_its_datasets_change_answers_cleanly,
);

// ---------------------------------------------------------------------------------------------
// Creating, updating, deleting
// ---------------------------------------------------------------------------------------------

async fn creating_a_dataset_under_oneself_or_an_administered_organization(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let member = app.sign_up("member").await;
    let sam = app.sign_up("sam").await;
    app.create_org(&olivia, "Acme").await;
    app.add_member(&olivia, "acme", "member", "MEMBER", json!("VIEWER"))
        .await
        .data("/addMember/member");

    // Under the viewer by default, with API.md's defaults.
    let reply = mutate(
        &app,
        Some(&olivia),
        "createDataset",
        json!({ "name": "Street.Scenes_2" }),
        "dataset { name fullName description public viewerRole createdAt owner { __typename username } }",
    )
    .await;
    let dataset = reply.data("/createDataset/dataset");
    assert_eq!(dataset["name"], "Street.Scenes_2");
    assert_eq!(dataset["fullName"], "olivia/Street.Scenes_2");
    assert_eq!(dataset["description"], "");
    assert_eq!(dataset["public"], false);
    assert_eq!(dataset["viewerRole"], "ADMIN");
    assert_eq!(
        dataset["owner"],
        json!({ "__typename": "User", "username": "olivia" })
    );
    assert!(dataset["createdAt"].is_string());
    // Found by full name in any case.
    let found = look_up(&app, Some(&olivia), "OLIVIA/street.scenes_2").await;
    assert_eq!(found["fullName"], "olivia/Street.Scenes_2");
    // Naming herself explicitly is the same thing.
    let reply = create(&app, Some(&olivia), Some("Olivia"), "second", "", false).await;
    assert_eq!(
        reply.data("/createDataset/dataset/fullName"),
        "olivia/second"
    );

    // Under an organization she administers (named in any case).
    let reply = create(&app, Some(&olivia), Some("ACME"), "fleet", "cars", true).await;
    assert_eq!(
        reply.data("/createDataset/dataset/owner"),
        &json!({ "__typename": "Organization", "username": "Acme" })
    );
    assert_eq!(reply.data("/createDataset/dataset/fullName"), "Acme/fleet");
    assert_eq!(reply.data("/createDataset/dataset/description"), "cars");
    assert_eq!(reply.data("/createDataset/dataset/public"), true);

    // The same name under another owner is fine.
    created(&app, &sam, None, "street.scenes_2", false).await;

    let rows = row_counts(&app).await;
    let world = stored(&app, "").await;
    let refusals = [
        // (why, token, owner, name, code)
        (
            "taken, in another case",
            Some(&olivia),
            None,
            "STREET.scenes_2",
            "CONFLICT",
        ),
        (
            "taken in the organization",
            Some(&olivia),
            Some("acme"),
            "FLEET",
            "CONFLICT",
        ),
        (
            "a plain member",
            Some(&member),
            Some("acme"),
            "x",
            "FORBIDDEN",
        ),
        ("a non-member", Some(&sam), Some("acme"), "x", "FORBIDDEN"),
        ("another user", Some(&sam), Some("olivia"), "x", "FORBIDDEN"),
        (
            "no such owner",
            Some(&sam),
            Some("nobody"),
            "x",
            "NOT_FOUND",
        ),
        ("anonymous", None, None, "x", "UNAUTHENTICATED"),
        (
            "anonymous, for an org",
            None,
            Some("acme"),
            "x",
            "UNAUTHENTICATED",
        ),
    ];
    for (why, token, owner, name, code) in refusals {
        let reply = create(&app, token.map(String::as_str), owner, name, "", false).await;
        assert_eq!(reply.code(), code, "{why}: {}", reply.body);
    }
    let too_long = "d".repeat(101);
    let longest = "d".repeat(100);
    for bad in [
        "",
        ".",
        "..",
        "a b",
        "a/b",
        "naïve",
        "x?",
        too_long.as_str(),
    ] {
        let reply = create(&app, Some(&olivia), None, bad, "", false).await;
        reply.expect_code("BAD_USER_INPUT");
        assert_eq!(
            reply.body["errors"][0]["extensions"]["field"], "name",
            "{bad:?}: {}",
            reply.body
        );
    }
    assert_eq!(row_counts(&app).await, rows, "refusals stored nothing");
    assert_eq!(stored(&app, "").await, world);
    // Edge names that are allowed.
    for good in ["a", "...", ".hidden", longest.as_str()] {
        create(&app, Some(&olivia), None, good, "", false)
            .await
            .data("/createDataset/dataset/id");
    }
    app.stop().await;
}

async fn settings_update_and_deletion(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let sam = app.sign_up("sam").await;
    let vera = app.sign_up("vera").await;
    let (full, id) = created(&app, &olivia, None, "atlas", true).await;
    add_collaborator(&app, Some(&olivia), &full, "vera", Some("VIEWER"))
        .await
        .data("/addCollaborator/collaborator");

    // An omitted field is left unchanged.
    let update = |input: Value| {
        let app = &app;
        let olivia = olivia.clone();
        async move {
            mutate(
                app,
                Some(&olivia),
                "updateDataset",
                input,
                "dataset { fullName description public }",
            )
            .await
        }
    };
    let reply = update(json!({ "dataset": "olivia/atlas", "description": "maps" })).await;
    assert_eq!(
        reply.data("/updateDataset/dataset"),
        &json!({ "fullName": "olivia/atlas", "description": "maps", "public": true })
    );
    let reply = update(json!({ "dataset": "OLIVIA/ATLAS", "public": false })).await;
    assert_eq!(
        reply.data("/updateDataset/dataset"),
        &json!({ "fullName": "olivia/atlas", "description": "maps", "public": false })
    );
    assert_eq!(
        stored(&app, "atlas").await["olivia/atlas"],
        Stored {
            description: "maps".into(),
            public: false,
            collaborators: roles(&[("olivia", "ADMIN"), ("vera", "VIEWER")]),
        }
    );
    // Made private, it is gone for strangers and still there for its collaborators.
    assert_eq!(look_up(&app, Some(&sam), &full).await, Value::Null);
    assert_eq!(look_up(&app, None, &full).await, Value::Null);
    assert_eq!(
        look_up(&app, Some(&vera), &full).await["viewerRole"],
        "VIEWER"
    );
    // And public again.
    update(json!({ "dataset": full, "public": true }))
        .await
        .data("/updateDataset/dataset");
    assert_eq!(look_up(&app, None, &full).await["fullName"], full);

    // Deletion takes its collaborators with it, and frees the name.
    let reply = mutate(
        &app,
        Some(&olivia),
        "deleteDataset",
        json!({ "dataset": "Olivia/Atlas" }),
        "deletedDatasetId",
    )
    .await;
    assert_eq!(reply.data("/deleteDataset/deletedDatasetId"), &json!(id));
    assert!(stored(&app, "").await.is_empty());
    assert_eq!(row_counts(&app).await, (0, 0));
    assert_eq!(look_up(&app, Some(&olivia), &full).await, Value::Null);
    assert_eq!(
        app.gql(Some(&olivia), NODE, json!({ "id": id }))
            .await
            .data("/node"),
        &Value::Null
    );
    // Deleting it again: it does not exist.
    mutate(
        &app,
        Some(&olivia),
        "deleteDataset",
        json!({ "dataset": full }),
        "deletedDatasetId",
    )
    .await
    .expect_code("NOT_FOUND");
    let (_, new_id) = created(&app, &olivia, None, "atlas", false).await;
    assert_ne!(new_id, id);
    assert_eq!(
        stored_collaborators(&app, "olivia/atlas").await,
        roles(&[("olivia", "ADMIN")]),
        "a new dataset of the same name starts afresh"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------------------------

async fn racing_creations_of_one_name_let_exactly_one_win(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    app.create_org(&founder, "acme").await;
    for user in ["vera", "lee"] {
        app.sign_up(user).await;
        app.add_member(&founder, "acme", user, "MEMBER", json!("VIEWER"))
            .await
            .data("/addMember/member");
    }
    let app = std::sync::Arc::new(app);
    let names = [
        "race", "Race", "RACE", "rAce", "raCe", "racE", "RAce", "raCE",
    ];
    let mut tasks = Vec::new();
    for name in names {
        let app = app.clone();
        let founder = founder.clone();
        tasks.push(tokio::spawn(async move {
            create(&app, Some(&founder), Some("acme"), name, "", false).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.body.get("errors").is_none() {
            wins += 1;
        } else {
            reply.expect_code("CONFLICT");
        }
    }
    assert_eq!(wins, 1);
    let world = stored(&app, "").await;
    assert_eq!(world.len(), 1);
    let (_, winner) = world.into_iter().next().unwrap();
    assert_eq!(
        winner.collaborators,
        roles(&[("founder", "ADMIN"), ("lee", "VIEWER"), ("vera", "VIEWER")])
    );
    assert_eq!(
        row_counts(&app).await,
        (1, 3),
        "the losers left nothing behind"
    );
}

/// Members leave while datasets are being created for their organization: whichever comes
/// first, no one ends up a collaborator of an organization they are no longer in.
async fn racing_leaves_and_creations_never_leave_a_non_member_collaborator(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    app.create_org(&founder, "acme").await;
    let mut members = Vec::new();
    for i in 0..6 {
        let user = format!("member{i}");
        members.push((user.clone(), app.sign_up(&user).await));
        app.add_member(&founder, "acme", &user, "MEMBER", json!("LABELER"))
            .await
            .data("/addMember/member");
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for (i, (_, token)) in members.into_iter().enumerate() {
        let creator = {
            let app = app.clone();
            let founder = founder.clone();
            tokio::spawn(async move {
                create(
                    &app,
                    Some(&founder),
                    Some("acme"),
                    &format!("ds{i}"),
                    "",
                    false,
                )
                .await
            })
        };
        let leaver = {
            let app = app.clone();
            tokio::spawn(async move {
                mutate(
                    &app,
                    Some(&token),
                    "leaveOrganization",
                    json!({ "organization": "acme" }),
                    "organization { username }",
                )
                .await
            })
        };
        tasks.push(creator);
        tasks.push(leaver);
    }
    for task in tasks {
        let reply = task.await.unwrap();
        assert!(reply.body.get("errors").is_none(), "{}", reply.body);
    }
    let world = stored(&app, "").await;
    assert_eq!(world.len(), 6);
    for (name, dataset) in world {
        assert_eq!(
            dataset.collaborators,
            roles(&[("founder", "ADMIN")]),
            "{name}: every member has left"
        );
    }
}

/// Deleting an organization takes its datasets with it while others change them: every
/// request either happens before the deletion or finds nothing, and none fails (no deadlock
/// between the organization's lock and its datasets').
async fn deleting_an_organization_while_its_datasets_change_answers_cleanly(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    app.create_org(&founder, "acme").await;
    for (user, default) in [
        ("vera", json!("VIEWER")),
        ("lee", json!("LABELER")),
        ("nick", Value::Null),
    ] {
        app.sign_up(user).await;
        app.add_member(&founder, "acme", user, "MEMBER", default)
            .await
            .data("/addMember/member");
    }
    let mut names = Vec::new();
    for i in 0..4 {
        names.push(
            created(&app, &founder, Some("acme"), &format!("ds{i}"), false)
                .await
                .0,
        );
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for (i, full) in names.iter().enumerate() {
        let requests = [
            (
                "addCollaborator",
                json!({ "dataset": full, "username": "nick" }),
                "collaborator { role }",
            ),
            (
                "updateCollaborator",
                json!({ "dataset": full, "username": "vera", "role": "LABELER" }),
                "collaborator { role }",
            ),
            (
                "removeCollaborator",
                json!({ "dataset": full, "username": "lee" }),
                "dataset { id }",
            ),
            (
                "updateDataset",
                json!({ "dataset": full, "description": "busy" }),
                "dataset { id }",
            ),
        ];
        for (field, input, selection) in requests {
            let app = app.clone();
            let founder = founder.clone();
            tasks.push(tokio::spawn(async move {
                (
                    field,
                    mutate(&app, Some(&founder), field, input, selection).await,
                )
            }));
        }
        // The deletion starts in the middle of the stream of changes.
        if i == 1 {
            let app = app.clone();
            let founder = founder.clone();
            tasks.push(tokio::spawn(async move {
                let input = json!({ "organization": "acme" });
                let reply = mutate(
                    &app,
                    Some(&founder),
                    "deleteOrganization",
                    input,
                    "deletedOrganizationId",
                )
                .await;
                ("deleteOrganization", reply)
            }));
        }
    }
    for task in tasks {
        let (field, reply) = task.await.unwrap();
        if field == "deleteOrganization" {
            reply.data("/deleteOrganization/deletedOrganizationId");
        } else if reply.body.get("errors").is_some() {
            reply.expect_code("NOT_FOUND");
        }
    }
    assert_eq!(
        row_counts(&app).await,
        (0, 0),
        "the datasets went with their organization"
    );
}
