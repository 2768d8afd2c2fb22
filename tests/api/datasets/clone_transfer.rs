//! Cloning public or administered datasets, and transferring datasets between owners.

use super::*;

on_both_databases!(
    cloning_public_or_administered_datasets,
    transferring_to_oneself_or_an_administered_organization,
);

// ---------------------------------------------------------------------------------------------
// Clone and transfer
// ---------------------------------------------------------------------------------------------

async fn clone_reply(
    app: &TestApp,
    token: Option<&str>,
    dataset: &str,
    owner: Option<&str>,
    name: Option<&str>,
) -> Reply {
    let mut input = json!({ "dataset": dataset });
    if let Some(owner) = owner {
        input["owner"] = json!(owner);
    }
    if let Some(name) = name {
        input["name"] = json!(name);
    }
    mutate(
        app,
        token,
        "cloneDataset",
        input,
        "dataset { fullName description public viewerRole owner { __typename username } }",
    )
    .await
}

async fn cloning_public_or_administered_datasets(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let vera = app.sign_up("vera").await;
    let sam = app.sign_up("sam").await;
    app.sign_up("nick").await;
    app.create_org(&olivia, "acme").await;
    app.create_org(&sam, "sams").await;
    app.add_member(&olivia, "acme", "vera", "MEMBER", json!("LABELER"))
        .await
        .data("/addMember/member");
    app.add_member(&olivia, "acme", "nick", "MEMBER", Value::Null)
        .await
        .data("/addMember/member");
    let reply = create(&app, Some(&olivia), None, "flowers", "petals", true).await;
    let flowers = reply
        .data("/createDataset/dataset/fullName")
        .as_str()
        .unwrap()
        .to_owned();
    let reply = create(&app, Some(&olivia), None, "diary", "private things", false).await;
    let diary = reply
        .data("/createDataset/dataset/fullName")
        .as_str()
        .unwrap()
        .to_owned();
    add_collaborator(&app, Some(&olivia), &flowers, "vera", Some("VIEWER"))
        .await
        .data("/addCollaborator/collaborator");
    add_collaborator(&app, Some(&olivia), &diary, "vera", Some("MANAGER"))
        .await
        .data("/addCollaborator/collaborator");

    // Anyone signed in may clone a public dataset into their own account: description and
    // visibility are copied, the collaborators are not.
    let reply = clone_reply(&app, Some(&sam), &flowers, None, None).await;
    assert_eq!(
        reply.data("/cloneDataset/dataset"),
        &json!({ "fullName": "sam/flowers-clone", "description": "petals", "public": true,
                 "viewerRole": "ADMIN", "owner": { "__typename": "User", "username": "sam" } })
    );
    assert_eq!(
        stored_collaborators(&app, "sam/flowers-clone").await,
        roles(&[("sam", "ADMIN")])
    );
    // Or into an organization they administer, under a name of their choice.
    let reply = clone_reply(&app, Some(&sam), &flowers, Some("sams"), Some("Bouquet")).await;
    assert_eq!(reply.data("/cloneDataset/dataset/fullName"), "sams/Bouquet");

    // The admin of a private dataset may clone it; into an organization, the fan-out applies.
    let reply = clone_reply(&app, Some(&olivia), &diary, None, None).await;
    assert_eq!(
        reply.data("/cloneDataset/dataset/fullName"),
        "olivia/diary-clone"
    );
    assert_eq!(reply.data("/cloneDataset/dataset/public"), false);
    assert_eq!(
        stored_collaborators(&app, "olivia/diary-clone").await,
        roles(&[("olivia", "ADMIN")])
    );
    let reply = clone_reply(&app, Some(&olivia), &diary, Some("acme"), None).await;
    assert_eq!(
        reply.data("/cloneDataset/dataset"),
        &json!({ "fullName": "acme/diary-clone", "description": "private things", "public": false,
                 "viewerRole": "ADMIN", "owner": { "__typename": "Organization", "username": "acme" } })
    );
    assert_eq!(
        stored_collaborators(&app, "acme/diary-clone").await,
        roles(&[("olivia", "ADMIN"), ("vera", "LABELER")]),
        "members by their default role (vera's MANAGER entry on the source is not copied)"
    );
    assert_eq!(
        look_up(&app, Some(&vera), "acme/diary-clone").await["viewerRole"],
        "LABELER"
    );

    // Refusals leave nothing behind.
    let world = stored(&app, "").await;
    let rows = row_counts(&app).await;
    let refusals = [
        (
            "default name taken",
            Some(&sam),
            flowers.as_str(),
            None,
            None,
            "CONFLICT",
        ),
        (
            "name taken in another case",
            Some(&sam),
            flowers.as_str(),
            None,
            Some("FLOWERS-CLONE"),
            "CONFLICT",
        ),
        (
            "name taken in the organization",
            Some(&olivia),
            diary.as_str(),
            Some("acme"),
            Some("Diary-Clone"),
            "CONFLICT",
        ),
        (
            "a private dataset the viewer only manages",
            Some(&vera),
            diary.as_str(),
            None,
            Some("mine"),
            "FORBIDDEN",
        ),
        (
            "a private dataset the viewer cannot see",
            Some(&sam),
            diary.as_str(),
            None,
            Some("mine"),
            "NOT_FOUND",
        ),
        (
            "no such dataset",
            Some(&sam),
            "olivia/nothing",
            None,
            Some("mine"),
            "NOT_FOUND",
        ),
        (
            "into an organization the viewer is a plain member of",
            Some(&vera),
            flowers.as_str(),
            Some("acme"),
            Some("mine"),
            "FORBIDDEN",
        ),
        (
            "into an organization the viewer is not in",
            Some(&sam),
            flowers.as_str(),
            Some("acme"),
            Some("mine"),
            "FORBIDDEN",
        ),
        (
            "into another user's account",
            Some(&sam),
            flowers.as_str(),
            Some("olivia"),
            Some("mine"),
            "FORBIDDEN",
        ),
        (
            "into no such account",
            Some(&sam),
            flowers.as_str(),
            Some("nobody"),
            Some("mine"),
            "NOT_FOUND",
        ),
        (
            "a bad name",
            Some(&sam),
            flowers.as_str(),
            None,
            Some("a b"),
            "BAD_USER_INPUT",
        ),
        (
            "anonymous",
            None,
            flowers.as_str(),
            None,
            Some("mine"),
            "UNAUTHENTICATED",
        ),
    ];
    for (why, token, dataset, owner, name, code) in refusals {
        let reply = clone_reply(&app, token.map(String::as_str), dataset, owner, name).await;
        assert_eq!(reply.codes(), [code], "{why}: {}", reply.body);
    }
    assert_eq!(
        stored(&app, "").await,
        world,
        "refused clones stored nothing"
    );
    assert_eq!(row_counts(&app).await, rows);

    // A default name that would be too long is the name's fault, not a server error.
    let longest = "n".repeat(100);
    let (long, _) = created(&app, &olivia, None, &longest, true).await;
    let world = stored(&app, "").await;
    let reply = clone_reply(&app, Some(&sam), &long, None, None).await;
    reply.expect_code("BAD_USER_INPUT");
    assert_eq!(reply.body["errors"][0]["extensions"]["field"], "name");
    assert_eq!(stored(&app, "").await, world);
    app.stop().await;
}

async fn transfer(app: &TestApp, token: Option<&str>, dataset: &str, new_owner: &str) -> Reply {
    mutate(
        app,
        token,
        "transferDataset",
        json!({ "dataset": dataset, "newOwner": new_owner }),
        "dataset { id fullName viewerRole owner { __typename username } }",
    )
    .await
}

async fn transferring_to_oneself_or_an_administered_organization(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let vera = app.sign_up("vera").await;
    let max = app.sign_up("max").await;
    let ada = app.sign_up("ada").await;
    let sam = app.sign_up("sam").await;
    app.create_org(&olivia, "acme").await;
    app.create_org(&olivia, "initech").await;
    app.create_org(&sam, "globex").await;
    app.add_member(&olivia, "acme", "vera", "MEMBER", Value::Null)
        .await
        .data("/addMember/member");
    app.add_member(&sam, "globex", "olivia", "MEMBER", Value::Null)
        .await
        .data("/addMember/member");
    let (atlas, atlas_id) = created(&app, &olivia, None, "atlas", false).await;
    for (user, role) in [("vera", "VIEWER"), ("max", "MANAGER"), ("ada", "ADMIN")] {
        add_collaborator(&app, Some(&olivia), &atlas, user, Some(role))
            .await
            .data("/addCollaborator/collaborator");
    }
    created(&app, &olivia, Some("initech"), "ATLAS", false).await;

    let world = stored(&app, "").await;
    let refusals = [
        ("a MANAGER", Some(&max), "acme", "FORBIDDEN"),
        ("a VIEWER", Some(&vera), "vera", "FORBIDDEN"),
        ("a stranger, private", Some(&sam), "sam", "NOT_FOUND"),
        ("anonymous", None, "acme", "UNAUTHENTICATED"),
        ("to another user", Some(&olivia), "sam", "FORBIDDEN"),
        (
            "to an organization she is a plain member of",
            Some(&olivia),
            "globex",
            "FORBIDDEN",
        ),
        ("to no such account", Some(&olivia), "nobody", "NOT_FOUND"),
        (
            "the name is taken there (any case)",
            Some(&olivia),
            "initech",
            "CONFLICT",
        ),
        (
            "an ADMIN collaborator, to an org she is not in",
            Some(&ada),
            "acme",
            "FORBIDDEN",
        ),
    ];
    for (why, token, new_owner, code) in refusals {
        let reply = transfer(&app, token.map(String::as_str), &atlas, new_owner).await;
        assert_eq!(reply.codes(), [code], "{why}: {}", reply.body);
    }
    assert_eq!(
        stored(&app, "").await,
        world,
        "refused transfers changed nothing"
    );

    // Into an organization she administers: the same dataset under a new name; the
    // collaborators stay, those who are not members as outside collaborators.
    let reply = transfer(&app, Some(&olivia), &atlas, "ACME").await;
    assert_eq!(
        reply.data("/transferDataset/dataset"),
        &json!({ "id": atlas_id, "fullName": "acme/atlas", "viewerRole": "ADMIN",
                 "owner": { "__typename": "Organization", "username": "acme" } })
    );
    assert_eq!(
        stored_collaborators(&app, "acme/atlas").await,
        roles(&[
            ("ada", "ADMIN"),
            ("max", "MANAGER"),
            ("olivia", "ADMIN"),
            ("vera", "VIEWER")
        ])
    );
    assert_eq!(
        look_up(&app, Some(&olivia), &atlas).await,
        Value::Null,
        "the old name is gone"
    );
    for (who, token, role) in [
        ("vera", &vera, "VIEWER"),
        ("max", &max, "MANAGER"),
        ("ada", &ada, "ADMIN"),
    ] {
        assert_eq!(
            look_up(&app, Some(token), "acme/atlas").await["viewerRole"],
            role,
            "{who}"
        );
    }
    // Now the organization's dataset, it moves or goes only by an ADMIN of the organization:
    // ada, its ADMIN but an outside collaborator, and vera, a MEMBER made its ADMIN, may not.
    mutate(
        &app,
        Some(&olivia),
        "updateCollaborator",
        json!({ "dataset": "acme/atlas", "username": "vera", "role": "ADMIN" }),
        "collaborator { role }",
    )
    .await
    .data("/updateCollaborator/collaborator");
    let world = stored(&app, "").await;
    for (who, token) in [("ada", &ada), ("vera", &vera)] {
        let reply = transfer(&app, Some(token), "acme/atlas", who).await;
        assert_eq!(reply.codes(), ["FORBIDDEN"], "{who}: {}", reply.body);
        let reply = mutate(
            &app,
            Some(token),
            "deleteDataset",
            json!({ "dataset": "acme/atlas" }),
            "deletedDatasetId",
        )
        .await;
        assert_eq!(reply.codes(), ["FORBIDDEN"], "{who}: {}", reply.body);
    }
    assert_eq!(stored(&app, "").await, world, "refusals changed nothing");
    assert_eq!(
        app.gql(Some(&olivia), NODE, json!({ "id": atlas_id }))
            .await
            .data("/node/fullName"),
        "acme/atlas"
    );

    // An ADMIN collaborator (not the owner) may take a dataset to her own account; the
    // collaborators stay, the previous owner now by her entry.
    let (map, _) = created(&app, &olivia, None, "map", true).await;
    add_collaborator(&app, Some(&olivia), &map, "ada", Some("ADMIN"))
        .await
        .data("/addCollaborator/collaborator");
    let reply = transfer(&app, Some(&ada), &map, "ada").await;
    assert_eq!(reply.data("/transferDataset/dataset/fullName"), "ada/map");
    assert_eq!(
        stored_collaborators(&app, "ada/map").await,
        roles(&[("ada", "ADMIN"), ("olivia", "ADMIN")])
    );
    assert_eq!(
        look_up(&app, Some(&olivia), "ada/map").await["viewerRole"],
        "ADMIN"
    );
    // And back, from an organization to a personal account: every entry stays.
    let reply = transfer(&app, Some(&olivia), "acme/atlas", "olivia").await;
    assert_eq!(
        reply.data("/transferDataset/dataset/fullName"),
        "olivia/atlas"
    );
    assert_eq!(
        stored_collaborators(&app, "olivia/atlas").await,
        roles(&[
            ("ada", "ADMIN"),
            ("max", "MANAGER"),
            ("olivia", "ADMIN"),
            ("vera", "ADMIN")
        ])
    );
    app.stop().await;
}
