//! The default-dataset-role fan-out and its all-or-nothing transaction, and what leaving an
//! organization takes away.

use super::*;

on_both_databases!(
    organization_datasets_fan_out_to_members_by_default_dataset_role,
    a_failed_creation_leaves_neither_dataset_nor_collaborators,
    leaving_or_being_removed_from_an_organization_drops_its_collaborations_and_their_access,
);

// ---------------------------------------------------------------------------------------------
// The fan-out
// ---------------------------------------------------------------------------------------------

async fn organization_datasets_fan_out_to_members_by_default_dataset_role(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    let second_admin = app.sign_up("Boss").await;
    app.create_org(&founder, "acme").await;
    app.add_member(&founder, "acme", "Boss", "ADMIN", json!("REVIEWER"))
        .await
        .data("/addMember/member");
    let mut tokens = HashMap::new();
    // Mixed case, to see the order is case-insensitive.
    for (user, default) in [
        ("Vic", json!("VIEWER")),
        ("lars", json!("LABELER")),
        ("Rosa", json!("REVIEWER")),
        ("mo", json!("MANAGER")),
        ("ann", json!("ADMIN")),
        ("nobody-default", Value::Null),
    ] {
        tokens.insert(user, app.sign_up(user).await);
        app.add_member(&founder, "acme", user, "MEMBER", default)
            .await
            .data("/addMember/member");
    }
    let outsider = app.sign_up("outsider").await;

    // Created by `founder` (default role null): everyone with a default role is added with
    // it, `founder` as ADMIN, `nobody-default` not at all.
    let (one, _) = created(&app, &founder, Some("acme"), "one", false).await;
    let expected = owned(&[
        ("ann", "ADMIN"),
        ("Boss", "REVIEWER"),
        ("founder", "ADMIN"),
        ("lars", "LABELER"),
        ("mo", "MANAGER"),
        ("Rosa", "REVIEWER"),
        ("Vic", "VIEWER"),
    ]);
    assert_eq!(listed_collaborators(&app, &founder, &one).await, expected);
    // Each of them now sees it with that role; the member without a default role does not.
    for (user, role) in [
        ("Vic", "VIEWER"),
        ("lars", "LABELER"),
        ("Rosa", "REVIEWER"),
        ("mo", "MANAGER"),
        ("ann", "ADMIN"),
    ] {
        let seen = look_up(&app, Some(&tokens[user]), &one).await;
        assert_eq!(seen["viewerRole"], role, "{user}");
    }
    assert_eq!(
        look_up(&app, Some(&tokens["nobody-default"]), &one).await,
        Value::Null
    );
    // An organization admin acts as ADMIN whatever their entry says.
    assert_eq!(
        look_up(&app, Some(&second_admin), &one).await["viewerRole"],
        "ADMIN"
    );
    assert_eq!(look_up(&app, Some(&outsider), &one).await, Value::Null);

    // The creator is always ADMIN, whatever their own default role.
    let (two, _) = created(&app, &second_admin, Some("acme"), "two", true).await;
    assert_eq!(
        stored_collaborators(&app, &two).await,
        roles(&[
            ("ann", "ADMIN"),
            ("Boss", "ADMIN"),
            ("lars", "LABELER"),
            ("mo", "MANAGER"),
            ("Rosa", "REVIEWER"),
            ("Vic", "VIEWER"),
        ])
    );
    // A personal dataset of a member has no fan-out.
    let (personal, _) = created(&app, &tokens["mo"], None, "mine", false).await;
    assert_eq!(
        stored_collaborators(&app, &personal).await,
        roles(&[("mo", "ADMIN")])
    );

    // Members added later are not added to existing datasets, only to new ones.
    let before = stored(&app, "").await;
    app.sign_up("late").await;
    app.add_member(&founder, "acme", "late", "MEMBER", json!("MANAGER"))
        .await
        .data("/addMember/member");
    assert_eq!(stored(&app, "").await, before);
    let (three, _) = created(&app, &founder, Some("acme"), "three", false).await;
    assert_eq!(
        stored_collaborators(&app, &three).await.get("late"),
        Some(&"MANAGER".to_owned())
    );
    app.stop().await;
}

/// Whether the database is PostgreSQL (else SQLite).
fn is_postgres(app: &TestApp) -> bool {
    orgql::db::is_postgres(&app.state().db)
}

/// Makes every insert of a collaborator row for `saboteur` fail, like a disk error would,
/// in the middle of the fan-out (after the dataset row is inserted).
async fn sabotage_the_fan_out(app: &TestApp) {
    let db = &app.state().db;
    if is_postgres(app) {
        db.execute_unprepared(
            "CREATE FUNCTION refuse_saboteur() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.username_key = 'saboteur' THEN RAISE EXCEPTION 'injected failure'; END IF;
               RETURN NEW;
             END $$",
        )
        .await
        .unwrap();
        db.execute_unprepared(
            "CREATE TRIGGER refuse_saboteur BEFORE INSERT ON collaborator
             FOR EACH ROW EXECUTE FUNCTION refuse_saboteur()",
        )
        .await
        .unwrap();
    } else {
        db.execute_unprepared(
            "CREATE TRIGGER refuse_saboteur BEFORE INSERT ON collaborator
             WHEN NEW.username_key = 'saboteur'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .await
        .unwrap();
    }
}

async fn end_sabotage(app: &TestApp) {
    let sql = if is_postgres(app) {
        "DROP TRIGGER refuse_saboteur ON collaborator"
    } else {
        "DROP TRIGGER refuse_saboteur"
    };
    app.state().db.execute_unprepared(sql).await.unwrap();
}

async fn a_failed_creation_leaves_neither_dataset_nor_collaborators(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    app.sign_up("saboteur").await;
    app.sign_up("vera").await;
    app.create_org(&founder, "acme").await;
    app.add_member(&founder, "acme", "vera", "MEMBER", json!("VIEWER"))
        .await
        .data("/addMember/member");
    app.add_member(&founder, "acme", "saboteur", "MEMBER", json!("LABELER"))
        .await
        .data("/addMember/member");
    let (source, _) = created(&app, &founder, None, "source", true).await;
    created(&app, &founder, Some("acme"), "existing", false).await;

    // A name clash is refused before anything is written.
    let world = stored(&app, "").await;
    let rows = row_counts(&app).await;
    create(&app, Some(&founder), Some("acme"), "EXISTING", "", true)
        .await
        .expect_code("CONFLICT");
    assert_eq!(stored(&app, "").await, world);
    assert_eq!(row_counts(&app).await, rows);

    // A failure in the middle of the fan-out rolls the whole creation back.
    sabotage_the_fan_out(&app).await;
    let reply = create(&app, Some(&founder), Some("acme"), "doomed", "", false).await;
    assert_eq!(reply.code(), "INTERNAL_SERVER_ERROR", "{}", reply.body);
    assert!(
        !reply.body.to_string().contains("injected"),
        "{}",
        reply.body
    );
    let reply = mutate(
        &app,
        Some(&founder),
        "cloneDataset",
        json!({ "dataset": source, "owner": "acme", "name": "doomed-clone" }),
        "dataset { id }",
    )
    .await;
    assert_eq!(reply.code(), "INTERNAL_SERVER_ERROR", "{}", reply.body);
    assert_eq!(
        stored(&app, "").await,
        world,
        "neither dataset nor collaborators"
    );
    assert_eq!(row_counts(&app).await, rows);
    assert_eq!(
        look_up(&app, Some(&founder), "acme/doomed").await,
        Value::Null
    );
    // (The sabotage is real: it spares datasets without the saboteur.)
    let (personal, _) = created(&app, &founder, None, "unaffected", false).await;
    end_sabotage(&app).await;

    // Nothing was half-made: the names are free and the fan-out is whole.
    let (doomed, _) = created(&app, &founder, Some("acme"), "doomed", false).await;
    assert_eq!(
        stored_collaborators(&app, &doomed).await,
        roles(&[
            ("founder", "ADMIN"),
            ("saboteur", "LABELER"),
            ("vera", "VIEWER")
        ])
    );
    mutate(
        &app,
        Some(&founder),
        "cloneDataset",
        json!({ "dataset": source, "owner": "acme", "name": "doomed-clone" }),
        "dataset { id }",
    )
    .await
    .data("/cloneDataset/dataset/id");
    assert_eq!(
        stored_collaborators(&app, &personal).await,
        roles(&[("founder", "ADMIN")])
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Leaving an organization
// ---------------------------------------------------------------------------------------------

async fn leaving_or_being_removed_from_an_organization_drops_its_collaborations_and_their_access(
    backend: Backend,
) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    let vera = app.sign_up("vera").await;
    let lee = app.sign_up("lee").await;
    let olivia = app.sign_up("olivia").await;
    app.create_org(&founder, "acme").await;
    app.create_org(&founder, "globex").await;
    for org in ["acme", "globex"] {
        for (user, default) in [("vera", "VIEWER"), ("lee", "LABELER")] {
            app.add_member(&founder, org, user, "MEMBER", json!(default))
                .await
                .data("/addMember/member");
        }
    }
    let (secret, secret_id) = created(&app, &founder, Some("acme"), "secret", false).await;
    let (open, _) = created(&app, &founder, Some("acme"), "open", true).await;
    let (elsewhere, _) = created(&app, &founder, Some("globex"), "elsewhere", false).await;
    let (diary, _) = created(&app, &olivia, None, "diary", false).await;
    add_collaborator(&app, Some(&olivia), &diary, "vera", Some("REVIEWER"))
        .await
        .data("/addCollaborator/collaborator");
    add_collaborator(&app, Some(&olivia), &diary, "lee", Some("REVIEWER"))
        .await
        .data("/addCollaborator/collaborator");

    assert_eq!(
        look_up(&app, Some(&vera), &secret).await["viewerRole"],
        "VIEWER"
    );
    assert_eq!(
        look_up(&app, Some(&lee), &secret).await["viewerRole"],
        "LABELER"
    );
    let before = stored(&app, "").await;

    // vera leaves; lee is removed by an admin.
    mutate(
        &app,
        Some(&vera),
        "leaveOrganization",
        json!({ "organization": "acme" }),
        "organization { username }",
    )
    .await
    .data("/leaveOrganization/organization");
    mutate(
        &app,
        Some(&founder),
        "removeMember",
        json!({ "organization": "acme", "username": "lee" }),
        "organization { username }",
    )
    .await
    .data("/removeMember/organization");

    // Their entries on acme's datasets are gone, and nothing else changed.
    let mut expected = before.clone();
    for full in [&secret, &open] {
        let collaborators = &mut expected.get_mut(full.as_str()).unwrap().collaborators;
        collaborators.remove("vera");
        collaborators.remove("lee");
    }
    assert_eq!(stored(&app, "").await, expected);
    assert_eq!(
        stored_collaborators(&app, &elsewhere).await,
        roles(&[("founder", "ADMIN"), ("lee", "LABELER"), ("vera", "VIEWER")])
    );
    assert_eq!(
        stored_collaborators(&app, &diary).await,
        roles(&[
            ("lee", "REVIEWER"),
            ("olivia", "ADMIN"),
            ("vera", "REVIEWER")
        ])
    );

    // And so is the access those entries gave.
    for (who, token) in [("vera", &vera), ("lee", &lee)] {
        assert_eq!(
            look_up(&app, Some(token), &secret).await,
            Value::Null,
            "{who}"
        );
        assert_eq!(
            app.gql(Some(token), NODE, json!({ "id": secret_id }))
                .await
                .data("/node"),
            &Value::Null,
            "{who}"
        );
        assert_eq!(
            listed_datasets(&app, Some(token), "organization", "acme").await,
            vec!["acme/open".to_owned()],
            "{who}"
        );
        // Public: still visible, but no longer theirs.
        assert_eq!(
            look_up(&app, Some(token), &open).await["viewerRole"],
            Value::Null
        );
        app.gql(Some(token), COLLABORATORS, json!({ "f": open }))
            .await
            .expect_code("FORBIDDEN");
        mutate(
            &app,
            Some(token),
            "updateDataset",
            json!({ "dataset": secret, "description": "mine now" }),
            "dataset { id }",
        )
        .await
        .expect_code("NOT_FOUND");
        // Their other collaborations stand.
        assert_eq!(
            look_up(&app, Some(token), &elsewhere).await["fullName"],
            elsewhere
        );
        assert_eq!(
            look_up(&app, Some(token), &diary).await["viewerRole"],
            "REVIEWER"
        );
    }

    // Rejoining does not bring the old entries back…
    let world = stored(&app, "").await;
    app.add_member(&founder, "acme", "vera", "MEMBER", json!("VIEWER"))
        .await
        .data("/addMember/member");
    assert_eq!(stored(&app, "").await, world);
    assert_eq!(look_up(&app, Some(&vera), &secret).await, Value::Null);
    // …and a non-member can be made a collaborator again, as an outside collaborator.
    let (_, wander) = (
        mutate(
            &app,
            Some(&vera),
            "leaveOrganization",
            json!({ "organization": "acme" }),
            "organization { username }",
        )
        .await
        .data("/leaveOrganization/organization/username")
        .clone(),
        app.sign_up("wander").await,
    );
    for (user, token) in [("vera", &vera), ("wander", &wander)] {
        add_collaborator(&app, Some(&founder), &secret, user, Some("VIEWER"))
            .await
            .data("/addCollaborator/collaborator");
        assert_eq!(
            look_up(&app, Some(token), &secret).await["viewerRole"],
            "VIEWER",
            "{user}, an outside collaborator"
        );
        assert_eq!(
            app.gql(
                Some(token),
                "{ organization(username: \"acme\") { viewerRole } }",
                json!({})
            )
            .await
            .data("/organization/viewerRole"),
            &Value::Null,
            "{user} is no member"
        );
    }
    app.stop().await;
}
