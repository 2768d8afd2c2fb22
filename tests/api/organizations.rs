//! Organizations and members, as the seed page tells it: who may do what, the last-admin
//! rule under concurrency (one server, and two server processes on one database), pagination.

use std::sync::Arc;

use crate::helpers::{Backend, TestApp, spawn_app};
use serde_json::{Value, json};

on_both_databases!(
    the_organization_table_cell_by_cell,
    the_creator_is_the_first_admin_and_memberships_are_private,
    update_member_leaves_omitted_fields_alone_and_null_means_none,
    the_last_admin_cannot_be_demoted_removed_or_leave,
    mutual_demotion_races_always_leave_one_admin,
    mutual_removal_races_always_leave_one_admin,
    members_paginate_in_case_insensitive_order_exactly_once,
    unknown_names_and_duplicates,
    deleting_an_organization_takes_everything_and_frees_the_name,
    two_server_processes_on_one_database_keep_an_admin,
    page_objects_answer_in_query_order_through_fragments_and_aliases,
);

const MEMBERS: &str = "query($o: String!) { organization(username: $o) { members(first: 100) { totalCount nodes { role user { username } } } } }";

async fn admins_of(app: &TestApp, token: &str, org: &str) -> Vec<String> {
    let reply = app.gql(Some(token), MEMBERS, json!({ "o": org })).await;
    reply
        .data("/organization/members/nodes")
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "ADMIN")
        .map(|m| m["user"]["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn member_count(app: &TestApp, token: &str, org: &str) -> u64 {
    app.gql(Some(token), MEMBERS, json!({ "o": org }))
        .await
        .data("/organization/members/totalCount")
        .as_u64()
        .unwrap()
}

/// Every cell of API.md's organization table, for anonymous, a signed-in non-member, a
/// MEMBER and an ADMIN. `None` means allowed; `Some(code)` the refusal.
async fn the_organization_table_cell_by_cell(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let admin = app.sign_up("ada").await;
    let member = app.sign_up("mel").await;
    let outsider = app.sign_up("otto").await;
    app.sign_up("target").await;
    app.create_org(&admin, "acme").await;
    app.add_member(&admin, "acme", "mel", "MEMBER", Value::Null)
        .await
        .data("/addMember");
    app.create_dataset(&admin, Some("acme"), "public-set", true)
        .await
        .data("/createDataset");

    type Actor<'a> = (&'a str, Option<&'a str>);
    let actors: [Actor; 4] = [
        ("anonymous", None),
        ("non-member", Some(outsider.as_str())),
        ("MEMBER", Some(member.as_str())),
        ("ADMIN", Some(admin.as_str())),
    ];

    // See the organization's username, display name and public datasets: everyone.
    for (who, token) in actors {
        let reply = app
            .gql(token, "{ organization(username: \"ACME\") { username displayName datasets { totalCount nodes { name } } } }", json!({}))
            .await;
        assert_eq!(reply.data("/organization/username"), "acme", "{who}");
        assert_eq!(reply.data("/organization/datasets/totalCount"), 1, "{who}");
    }

    // List its members and their roles.
    let expected = [Some("UNAUTHENTICATED"), Some("FORBIDDEN"), None, None];
    for ((who, token), expect) in actors.iter().zip(expected) {
        let reply = app.gql(*token, MEMBERS, json!({ "o": "acme" })).await;
        match expect {
            None => assert_eq!(reply.data("/organization/members/totalCount"), 2, "{who}"),
            Some(code) => {
                reply.expect_code(code);
            }
        }
    }

    // Create a dataset owned by the organization.
    let expected = [
        Some("UNAUTHENTICATED"),
        Some("FORBIDDEN"),
        Some("FORBIDDEN"),
        None,
    ];
    for (i, ((who, token), expect)) in actors.iter().zip(expected).enumerate() {
        let reply = app
            .gql(*token, "mutation($n: String!) { createDataset(input: { owner: \"acme\", name: $n }) { dataset { fullName } } }", json!({ "n": format!("set-{i}") }))
            .await;
        match expect {
            None => assert_eq!(
                reply.data("/createDataset/dataset/fullName"),
                "acme/set-3",
                "{who}"
            ),
            Some(code) => {
                reply.expect_code(code);
            }
        }
    }
    // The refused creations left nothing behind.
    let reply = app
        .gql(
            Some(&admin),
            "{ organization(username: \"acme\") { datasets { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/organization/datasets/totalCount"), 2);

    // Add, update, remove members; update settings; delete — admins only.
    let refusals = [
        Some("UNAUTHENTICATED"),
        Some("FORBIDDEN"),
        Some("FORBIDDEN"),
    ];
    for ((who, token), expect) in actors.iter().take(3).zip(refusals) {
        let code = expect.unwrap();
        let add = app
            .gql(*token, "mutation { addMember(input: { organization: \"acme\", username: \"target\" }) { member { role } } }", json!({}))
            .await;
        add.expect_code(code);
        let update = app
            .gql(*token, "mutation { updateMember(input: { organization: \"acme\", username: \"mel\", role: ADMIN }) { member { role } } }", json!({}))
            .await;
        update.expect_code(code);
        let remove = app
            .gql(*token, "mutation { removeMember(input: { organization: \"acme\", username: \"mel\" }) { organization { username } } }", json!({}))
            .await;
        remove.expect_code(code);
        let settings = app
            .gql(*token, "mutation { updateOrganization(input: { organization: \"acme\", displayName: \"Hacked\" }) { organization { displayName } } }", json!({}))
            .await;
        settings.expect_code(code);
        let delete = app
            .gql(*token, "mutation { deleteOrganization(input: { organization: \"acme\" }) { deletedOrganizationId } }", json!({}))
            .await;
        delete.expect_code(code);
        // Nothing changed.
        assert_eq!(member_count(&app, &admin, "acme").await, 2, "{who}");
        assert_eq!(admins_of(&app, &admin, "acme").await, vec!["ada"], "{who}");
        let reply = app
            .gql(
                None,
                "{ organization(username: \"acme\") { displayName } }",
                json!({}),
            )
            .await;
        assert_eq!(
            reply.data("/organization/displayName"),
            &Value::Null,
            "{who}"
        );
    }
    // The admin may do all of it.
    app.add_member(&admin, "acme", "target", "MEMBER", Value::Null)
        .await
        .data("/addMember/member");
    let reply = app
        .gql(Some(&admin), "mutation { updateMember(input: { organization: \"acme\", username: \"target\", defaultDatasetRole: VIEWER }) { member { defaultDatasetRole } } }", json!({}))
        .await;
    assert_eq!(
        reply.data("/updateMember/member/defaultDatasetRole"),
        "VIEWER"
    );
    let reply = app.remove_member(&admin, "acme", "target").await;
    assert_eq!(reply.data("/removeMember/organization/username"), "acme");
    let reply = app
        .gql(Some(&admin), "mutation { updateOrganization(input: { organization: \"acme\", displayName: \"Acme Corp\" }) { organization { displayName } } }", json!({}))
        .await;
    assert_eq!(
        reply.data("/updateOrganization/organization/displayName"),
        "Acme Corp"
    );

    // Leave: a non-member has nothing to leave; a member may; an admin may unless last.
    app.gql(Some(&outsider), "mutation { leaveOrganization(input: { organization: \"acme\" }) { organization { username } } }", json!({}))
        .await
        .expect_code("NOT_FOUND");
    app.gql(None, "mutation { leaveOrganization(input: { organization: \"acme\" }) { organization { username } } }", json!({}))
        .await
        .expect_code("UNAUTHENTICATED");
    app.gql(Some(&admin), "mutation { leaveOrganization(input: { organization: \"acme\" }) { organization { username } } }", json!({}))
        .await
        .expect_code("CONFLICT");
    let reply = app
        .gql(Some(&member), "mutation { leaveOrganization(input: { organization: \"acme\" }) { organization { username viewerRole } } }", json!({}))
        .await;
    assert_eq!(
        reply.data("/leaveOrganization/organization/viewerRole"),
        &Value::Null
    );
    app.add_member(&admin, "acme", "mel", "ADMIN", Value::Null)
        .await
        .data("/addMember");
    let reply = app
        .gql(Some(&admin), "mutation { leaveOrganization(input: { organization: \"acme\" }) { organization { username } } }", json!({}))
        .await;
    reply.data("/leaveOrganization/organization");
    assert_eq!(admins_of(&app, &member, "acme").await, vec!["mel"]);

    // Delete, as the remaining admin.
    let reply = app
        .gql(Some(&member), "mutation { deleteOrganization(input: { organization: \"acme\" }) { deletedOrganizationId } }", json!({}))
        .await;
    assert!(
        reply
            .data("/deleteOrganization/deletedOrganizationId")
            .is_string()
    );
    app.stop().await;
}

async fn the_creator_is_the_first_admin_and_memberships_are_private(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ada = app.sign_up("ada").await;
    let bob = app.sign_up("bob").await;
    let reply = app
        .gql(Some(&ada), "mutation { createOrganization(input: { username: \"Zeta\", displayName: \"Zeta Labs\" }) { organization { username displayName viewerRole } } }", json!({}))
        .await;
    assert_eq!(
        reply.data("/createOrganization/organization/viewerRole"),
        "ADMIN"
    );
    assert_eq!(
        reply.data("/createOrganization/organization/displayName"),
        "Zeta Labs"
    );
    app.create_org(&ada, "alpha").await;
    app.add_member(&ada, "zeta", "bob", "MEMBER", json!("LABELER"))
        .await
        .data("/addMember");

    let reply = app
        .gql(Some(&ada), "{ viewer { memberships { role defaultDatasetRole organization { username viewerRole } user { username } } } }", json!({}))
        .await;
    let memberships = reply
        .data("/viewer/memberships")
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = memberships
        .iter()
        .map(|m| m["organization"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["alpha", "Zeta"],
        "ordered by organization username, case-insensitively"
    );
    assert!(
        memberships
            .iter()
            .all(|m| m["role"] == "ADMIN" && m["user"]["username"] == "ada")
    );

    let reply = app
        .gql(
            Some(&bob),
            "{ viewer { memberships { role defaultDatasetRole } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reply.data("/viewer/memberships"),
        &json!([{ "role": "MEMBER", "defaultDatasetRole": "LABELER" }])
    );
    // Someone else's memberships: FORBIDDEN; anonymous: UNAUTHENTICATED.
    app.gql(
        Some(&bob),
        "{ user(username: \"ada\") { memberships { role } } }",
        json!({}),
    )
    .await
    .expect_code("FORBIDDEN");
    app.gql(
        None,
        "{ user(username: \"ada\") { memberships { role } } }",
        json!({}),
    )
    .await
    .expect_code("UNAUTHENTICATED");
    // node(id) finds organizations.
    let id = app
        .gql(
            None,
            "{ organization(username: \"zeta\") { id } }",
            json!({}),
        )
        .await
        .data("/organization/id")
        .clone();
    let reply = app
        .gql(
            None,
            "query($id: ID!) { node(id: $id) { __typename ... on Organization { username } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(reply.data("/node/username"), "Zeta");
    app.stop().await;
}

async fn update_member_leaves_omitted_fields_alone_and_null_means_none(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ada = app.sign_up("ada").await;
    app.sign_up("bob").await;
    app.create_org(&ada, "acme").await;
    app.add_member(&ada, "acme", "bob", "MEMBER", json!("REVIEWER"))
        .await
        .data("/addMember");
    let update = |input: Value| {
        let app = &app;
        let ada = ada.clone();
        async move {
            app.gql(Some(&ada), "mutation($i: UpdateMemberInput!) { updateMember(input: $i) { member { role defaultDatasetRole } } }", json!({ "i": input }))
                .await
        }
    };
    let reply = update(json!({ "organization": "acme", "username": "bob", "role": "ADMIN" })).await;
    assert_eq!(
        reply.data("/updateMember/member"),
        &json!({ "role": "ADMIN", "defaultDatasetRole": "REVIEWER" })
    );
    let reply = update(
        json!({ "organization": "acme", "username": "bob", "defaultDatasetRole": "MANAGER" }),
    )
    .await;
    assert_eq!(
        reply.data("/updateMember/member"),
        &json!({ "role": "ADMIN", "defaultDatasetRole": "MANAGER" })
    );
    let reply =
        update(json!({ "organization": "acme", "username": "bob", "defaultDatasetRole": null }))
            .await;
    assert_eq!(
        reply.data("/updateMember/member"),
        &json!({ "role": "ADMIN", "defaultDatasetRole": null })
    );
    let reply = update(json!({ "organization": "acme", "username": "bob" })).await;
    assert_eq!(
        reply.data("/updateMember/member"),
        &json!({ "role": "ADMIN", "defaultDatasetRole": null })
    );
    app.stop().await;
}

async fn the_last_admin_cannot_be_demoted_removed_or_leave(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ada = app.sign_up("ada").await;
    app.sign_up("bob").await;
    app.create_org(&ada, "acme").await;
    app.add_member(&ada, "acme", "bob", "MEMBER", Value::Null)
        .await
        .data("/addMember");
    for (what, query) in [
        (
            "demote",
            "mutation { updateMember(input: { organization: \"acme\", username: \"ada\", role: MEMBER }) { member { role } } }",
        ),
        (
            "remove",
            "mutation { removeMember(input: { organization: \"acme\", username: \"ada\" }) { organization { username } } }",
        ),
        (
            "leave",
            "mutation { leaveOrganization(input: { organization: \"acme\" }) { organization { username } } }",
        ),
    ] {
        let message = app
            .gql(Some(&ada), query, json!({}))
            .await
            .expect_code("CONFLICT");
        assert!(message.contains("at least one admin"), "{what}: {message}");
        assert_eq!(admins_of(&app, &ada, "acme").await, vec!["ada"], "{what}");
        assert_eq!(member_count(&app, &ada, "acme").await, 2, "{what}");
    }
    app.stop().await;
}

/// Sets up `acme` with admins a1 and a2; returns their tokens.
async fn two_admins(app: &TestApp) -> (String, String) {
    let a1 = app.sign_up("a1").await;
    let a2 = app.sign_up("a2").await;
    app.create_org(&a1, "acme").await;
    app.add_member(&a1, "acme", "a2", "ADMIN", Value::Null)
        .await
        .data("/addMember");
    (a1, a2)
}

/// Runs both requests at the same instant; returns (first, second).
async fn race(
    app: &Arc<TestApp>,
    one: (String, String),
    two: (String, String),
) -> (crate::helpers::Reply, crate::helpers::Reply) {
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let spawn = |(token, query): (String, String)| {
        let app = app.clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            app.gql(Some(&token), &query, json!({})).await
        })
    };
    let (a, b) = (spawn(one), spawn(two));
    (a.await.unwrap(), b.await.unwrap())
}

/// Exactly one request won; the loser got one of `loser_codes` (never a 5xx, never
/// "database is locked").
fn exactly_one_won(a: &crate::helpers::Reply, b: &crate::helpers::Reply, loser_codes: &[&str]) {
    let ok = [a, b]
        .iter()
        .filter(|r| r.body.get("errors").is_none())
        .count();
    assert_eq!(ok, 1, "exactly one must win: {} / {}", a.body, b.body);
    for r in [a, b] {
        if r.body.get("errors").is_some() {
            let codes = r.codes();
            assert_eq!(codes.len(), 1, "{}", r.body);
            assert!(
                loser_codes.contains(&codes[0].as_str()),
                "the loser's answer: {}",
                r.body
            );
            assert!(r.status < 500);
        }
    }
}

async fn mutual_demotion_races_always_leave_one_admin(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let app = Arc::new(app);
    let (a1, a2) = two_admins(&app).await;
    let demote = |who: &str| {
        format!(
            "mutation {{ updateMember(input: {{ organization: \"acme\", username: \"{who}\", role: MEMBER }}) {{ member {{ role }} }} }}"
        )
    };
    for round in 0..50 {
        let (x, y) = race(&app, (a1.clone(), demote("a2")), (a2.clone(), demote("a1"))).await;
        // Requests are serialized per organization, so the loser runs after the winner and
        // is a MEMBER by then: FORBIDDEN, permission first (API.md, "Roles").
        exactly_one_won(&x, &y, &["FORBIDDEN", "CONFLICT"]);
        let admins = admins_of(&app, &a1, "acme").await;
        assert_eq!(admins.len(), 1, "round {round}: {admins:?}");
        // Promote the demoted one back, as the survivor.
        let survivor = if admins[0] == "a1" { &a1 } else { &a2 };
        let other = if admins[0] == "a1" { "a2" } else { "a1" };
        app.update_member(survivor, "acme", other, "ADMIN")
            .await
            .data("/updateMember");
    }
}

async fn mutual_removal_races_always_leave_one_admin(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let app = Arc::new(app);
    let (a1, a2) = two_admins(&app).await;
    let remove = |who: &str| {
        format!(
            "mutation {{ removeMember(input: {{ organization: \"acme\", username: \"{who}\" }}) {{ organization {{ username }} }} }}"
        )
    };
    for round in 0..50 {
        let (x, y) = race(&app, (a1.clone(), remove("a2")), (a2.clone(), remove("a1"))).await;
        // Requests are serialized per organization, so the loser runs after the winner and
        // is no longer a member: FORBIDDEN, like any non-member (a non-member is not told who
        // the admins are). Had it run first it would have won; CONFLICT is the last-admin
        // rule itself answering.
        exactly_one_won(&x, &y, &["FORBIDDEN", "CONFLICT"]);
        let (survivor, other) = if x.body.get("errors").is_none() {
            (&a1, "a2")
        } else {
            (&a2, "a1")
        };
        let admins = admins_of(&app, survivor, "acme").await;
        assert_eq!(admins.len(), 1, "round {round}: {admins:?}");
        assert_eq!(
            member_count(&app, survivor, "acme").await,
            1,
            "round {round}"
        );
        app.add_member(survivor, "acme", other, "ADMIN", Value::Null)
            .await
            .data("/addMember");
    }
}

async fn members_paginate_in_case_insensitive_order_exactly_once(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let admin = app.sign_up("zz-admin").await;
    app.create_org(&admin, "acme").await;
    let mut expected = vec!["zz-admin".to_owned()];
    for i in 0..24 {
        // Mixed case, so byte order and case-insensitive order differ.
        let name = if i % 2 == 0 {
            format!("User{i:02}")
        } else {
            format!("user{i:02}x")
        };
        app.sign_up(&name).await;
        app.add_member(&admin, "acme", &name, "MEMBER", Value::Null)
            .await
            .data("/addMember");
        expected.push(name);
    }
    expected.sort_by_key(|n| n.to_lowercase());

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let reply = app
            .gql(Some(&admin), "query($a: String) { organization(username: \"acme\") { members(first: 7, after: $a) { totalCount edges { cursor node { user { username } } } pageInfo { hasNextPage endCursor } } } }", json!({ "a": after }))
            .await;
        let members = reply.data("/organization/members");
        assert_eq!(members["totalCount"], 25);
        for edge in members["edges"].as_array().unwrap() {
            seen.push(
                edge["node"]["user"]["username"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        if !members["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(
            members["pageInfo"]["endCursor"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen, expected);
    for (first, ok) in [(101, false), (-1, false), (100, true), (0, true)] {
        let reply = app
            .gql(Some(&admin), "query($f: Int) { organization(username: \"acme\") { members(first: $f) { totalCount } } }", json!({ "f": first }))
            .await;
        if ok {
            reply.data("/organization/members");
        } else {
            let message = reply.expect_code("BAD_USER_INPUT");
            assert!(message.contains("first"), "{message}");
        }
    }
    app.gql(
        Some(&admin),
        "{ organization(username: \"acme\") { members(after: \"bogus\") { totalCount } } }",
        json!({}),
    )
    .await
    .expect_code("BAD_USER_INPUT");
    app.stop().await;
}

async fn unknown_names_and_duplicates(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ada = app.sign_up("ada").await;
    app.sign_up("bob").await;
    app.create_org(&ada, "acme").await;
    let reply = app.gql(None, "{ organization(username: \"nope\") { id } ada: organization(username: \"ada\") { id } }", json!({})).await;
    assert_eq!(reply.data("/organization"), &Value::Null);
    assert_eq!(
        reply.data("/ada"),
        &Value::Null,
        "a user is not an organization"
    );
    app.add_member(&ada, "nope", "bob", "MEMBER", Value::Null)
        .await
        .expect_code("NOT_FOUND");
    app.add_member(&ada, "acme", "nobody", "MEMBER", Value::Null)
        .await
        .expect_code("NOT_FOUND");
    app.add_member(&ada, "acme", "bob", "MEMBER", Value::Null)
        .await
        .data("/addMember");
    app.add_member(&ada, "acme", "BOB", "ADMIN", Value::Null)
        .await
        .expect_code("CONFLICT");
    for query in [
        "mutation { updateMember(input: { organization: \"acme\", username: \"nobody\", role: ADMIN }) { member { role } } }",
        "mutation { removeMember(input: { organization: \"acme\", username: \"nobody\" }) { organization { id } } }",
        "mutation { updateOrganization(input: { organization: \"nope\", displayName: \"x\" }) { organization { id } } }",
        "mutation { deleteOrganization(input: { organization: \"nope\" }) { deletedOrganizationId } }",
        "mutation { leaveOrganization(input: { organization: \"nope\" }) { organization { id } } }",
    ] {
        app.gql(Some(&ada), query, json!({}))
            .await
            .expect_code("NOT_FOUND");
    }
    // A user that exists but is not a member.
    app.sign_up("carl").await;
    app.remove_member(&ada, "acme", "carl")
        .await
        .expect_code("NOT_FOUND");
    // A bad new organization name.
    app.gql(
        Some(&ada),
        "mutation { createOrganization(input: { username: \"-bad-\" }) { organization { id } } }",
        json!({}),
    )
    .await
    .expect_code("BAD_USER_INPUT");
    app.stop().await;
}

async fn deleting_an_organization_takes_everything_and_frees_the_name(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ada = app.sign_up("ada").await;
    let bob = app.sign_up("bob").await;
    app.create_org(&ada, "acme").await;
    app.add_member(&ada, "acme", "bob", "MEMBER", json!("VIEWER"))
        .await
        .data("/addMember");
    app.create_dataset(&ada, Some("acme"), "street", false)
        .await
        .data("/createDataset");
    let reply = app
        .gql(
            Some(&bob),
            "{ dataset(fullName: \"acme/street\") { viewerRole } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/dataset/viewerRole"), "VIEWER");
    app.gql(Some(&ada), "mutation { deleteOrganization(input: { organization: \"acme\" }) { deletedOrganizationId } }", json!({}))
        .await
        .data("/deleteOrganization");
    let reply = app.gql(Some(&ada), "{ organization(username: \"acme\") { id } dataset(fullName: \"acme/street\") { id } viewer { memberships { role } } }", json!({})).await;
    assert_eq!(reply.data("/organization"), &Value::Null);
    assert_eq!(reply.data("/dataset"), &Value::Null);
    assert_eq!(reply.data("/viewer/memberships"), &json!([]));
    // The name is free again, for an organization or a user.
    app.sign_up("acme").await;
    app.stop().await;
}

/// Two real `orgql` processes on one database: the last-admin rule holds across them.
async fn two_server_processes_on_one_database_keep_an_admin(backend: Backend) {
    let db = crate::helpers::TestDatabase::create(&backend).await;
    let first = crate::helpers::ServerProcess::start(&db.url).await;
    let second = crate::helpers::ServerProcess::start(&db.url).await;
    let apps = [first.client(), second.client()];
    let a1 = apps[0].sign_up("a1").await;
    let a2 = apps[1].sign_up("a2").await;
    apps[0].create_org(&a1, "acme").await;
    apps[1]
        .add_member(&a1, "acme", "a2", "ADMIN", Value::Null)
        .await
        .data("/addMember");
    let demote = |who: &str| {
        format!(
            "mutation {{ updateMember(input: {{ organization: \"acme\", username: \"{who}\", role: MEMBER }}) {{ member {{ role }} }} }}"
        )
    };
    let [c0, c1] = apps;
    let (c0, c1) = (Arc::new(c0), Arc::new(c1));
    for round in 0..25 {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let go = |app: Arc<TestApp>, token: String, query: String| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                app.gql(Some(&token), &query, json!({})).await
            })
        };
        let x = go(c0.clone(), a1.clone(), demote("a2"));
        let y = go(c1.clone(), a2.clone(), demote("a1"));
        let (x, y) = (x.await.unwrap(), y.await.unwrap());
        exactly_one_won(&x, &y, &["FORBIDDEN", "CONFLICT"]);
        let admins = admins_of(&c0, &a1, "acme").await;
        assert_eq!(admins.len(), 1, "round {round}: {admins:?}");
        let (survivor, other) = if admins[0] == "a1" {
            (&a1, "a2")
        } else {
            (&a2, "a1")
        };
        c1.update_member(survivor, "acme", other, "ADMIN")
            .await
            .data("/updateMember");
    }
}

/// Members, users, datasets and organizations in pages and memberships resolve through
/// `src/eager.rs` rather than async-graphql's own object resolver. Their answers must be the
/// same — named and inline fragments (on the type and on an interface), aliases,
/// `__typename`, a field selected twice answered once, errors with their paths — with every
/// object's fields in the order the query selected them (the raw body is compared).
async fn page_objects_answer_in_query_order_through_fragments_and_aliases(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ada = app.sign_up("ada").await;
    let mel = app.sign_up("mel").await;
    app.create_org(&ada, "acme").await;
    app.add_member(&ada, "acme", "mel", "MEMBER", Value::Null)
        .await
        .data("/addMember");
    app.create_dataset(&ada, Some("acme"), "street", false)
        .await
        .data("/createDataset");
    let query = r#"query {
      viewer {
        memberships {
          __typename
          ... on Member { role }
          organization {
            kind: __typename
            username
            members(first: 10) {
              nodes { who: user { ...Who } role user { id ... on Node { id } } ...Joined }
            }
            datasets(first: 5) {
              nodes {
                viewerRole
                name
                owner { ... on Organization { username } __typename }
                collaborators(first: 5) { totalCount }
                name
              }
            }
          }
        }
      }
    }
    fragment Who on User { username __typename }
    fragment Joined on Member { role joinedAt }"#;

    let reply = app.gql(Some(&ada), query, json!({})).await;
    let nodes = reply.data("/viewer/memberships/0/organization/members/nodes");
    let member = |i: usize, name: &str, role: &str| {
        format!(
            r#"{{"who":{{"username":"{name}","__typename":"User"}},"role":"{role}","user":{{"id":{}}},"joinedAt":{}}}"#,
            nodes[i]["user"]["id"], nodes[i]["joinedAt"]
        )
    };
    let expected = format!(
        r#"{{"data":{{"viewer":{{"memberships":[{{"__typename":"Member","role":"ADMIN","organization":{{"kind":"Organization","username":"acme","members":{{"nodes":[{},{}]}},"datasets":{{"nodes":[{{"viewerRole":"ADMIN","name":"street","owner":{{"username":"acme","__typename":"Organization"}},"collaborators":{{"totalCount":1}}}}]}}}}}}]}}}}}}"#,
        member(0, "ada", "ADMIN"),
        member(1, "mel", "MEMBER"),
    );
    assert_eq!(reply.raw, expected);

    // An error inside a page object (mel may not see ada's memberships) keeps its path
    // and leaves the rest of the answer in place; mel sees no private dataset of acme.
    let reply = app
        .gql(
            Some(&mel),
            r#"query { organization(username: "acme") { members(first: 5) { nodes {
                 user { username memberships { role } }
                 organization { username viewerRole datasets(first: 5) { nodes { name } } }
               } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(reply.codes(), ["FORBIDDEN"], "{}", reply.body);
    assert_eq!(
        reply.body["errors"][0]["path"],
        json!(["organization", "members", "nodes", 0, "user", "memberships"])
    );
    let acme =
        r#""organization":{"username":"acme","viewerRole":"MEMBER","datasets":{"nodes":[]}}"#;
    let expected = format!(
        r#"{{"data":{{"organization":{{"members":{{"nodes":[{{"user":{{"username":"ada"}},{acme}}},{{"user":{{"username":"mel","memberships":[{{"role":"MEMBER"}}]}},{acme}}}]}}}}}},"errors":["#
    );
    assert!(reply.raw.starts_with(&expected), "{}", reply.raw);
}
