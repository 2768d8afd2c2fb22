//! The audit log (API.md, "Audit log"): every change writes its events in its own
//! transaction, from the domain layer; the logs list them newest first, to admins only;
//! events outlive what they describe.

use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, TestDatabase, spawn_app, spawn_with, test_config};

on_both_databases!(
    a_scripted_sequence_writes_exactly_its_events,
    every_mutation_that_changes_state_writes_an_event,
    the_logs_are_for_admins_and_filter_and_page,
    events_outlive_what_they_describe,
    events_past_the_retention_are_pruned,
);

/// The fields an event is compared by.
const EVENT: &str = "action actorUsername subjectUsername datasetFullName role previousRole";

/// An event as a compact tuple-like array: action, actor, subject, dataset, role, previous.
fn row(event: &Value) -> Value {
    json!([
        event["action"],
        event["actorUsername"],
        event["subjectUsername"],
        event["datasetFullName"],
        event["role"],
        event["previousRole"],
    ])
}

fn rows(nodes: &Value) -> Vec<Value> {
    nodes.as_array().unwrap().iter().map(row).collect()
}

/// An organization's whole log, oldest first (the log itself is newest first).
async fn organization_log(app: &TestApp, token: &str, org: &str) -> Vec<Value> {
    let reply = app
        .gql(
            Some(token),
            &format!(
                "query($o: String!) {{ organization(username: $o) {{ auditLog(first: 100) {{ totalCount nodes {{ {EVENT} }} }} }} }}"
            ),
            json!({ "o": org }),
        )
        .await;
    let mut events = rows(reply.data("/organization/auditLog/nodes"));
    assert_eq!(
        reply.data("/organization/auditLog/totalCount"),
        events.len(),
        "{}",
        reply.body
    );
    events.reverse();
    events
}

/// A dataset's whole log, oldest first.
async fn dataset_log(app: &TestApp, token: &str, dataset: &str) -> Vec<Value> {
    let reply = app
        .gql(
            Some(token),
            &format!(
                "query($d: String!) {{ dataset(fullName: $d) {{ auditLog(first: 100) {{ nodes {{ {EVENT} }} }} }} }}"
            ),
            json!({ "d": dataset }),
        )
        .await;
    let mut events = rows(reply.data("/dataset/auditLog/nodes"));
    events.reverse();
    events
}

fn ev(
    action: &str,
    actor: &str,
    subject: Option<&str>,
    dataset: Option<&str>,
    role: Option<&str>,
    previous: Option<&str>,
) -> Value {
    json!([action, actor, subject, dataset, role, previous])
}

async fn run(app: &TestApp, token: &str, mutation: &str) -> Reply {
    app.gql(Some(token), mutation, json!({})).await
}

async fn a_scripted_sequence_writes_exactly_its_events(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ann = app.sign_up("ann").await;
    let bob = app.sign_up("bob").await;
    let cy = app.sign_up("cy").await;
    app.create_org(&ann, "acme").await;
    app.create_org(&ann, "beta").await;
    let ok = |reply: Reply| {
        assert!(reply.body.get("errors").is_none(), "{}", reply.body);
    };
    ok(app
        .add_member(&ann, "acme", "bob", "MEMBER", json!("LABELER"))
        .await);
    ok(app
        .add_member(&ann, "acme", "cy", "MEMBER", Value::Null)
        .await);
    ok(run(&app, &ann, r#"mutation { updateOrganization(input: { organization: "acme", displayName: "Acme" }) { organization { id } } }"#).await);
    // A no-op update writes nothing.
    ok(run(&app, &ann, r#"mutation { updateOrganization(input: { organization: "acme" }) { organization { id } } }"#).await);
    ok(run(&app, &ann, r#"mutation { updateMember(input: { organization: "acme", username: "cy", role: ADMIN }) { member { role } } }"#).await);
    ok(app
        .create_dataset(&ann, Some("acme"), "streets", false)
        .await);
    ok(run(&app, &cy, r#"mutation { updateCollaborator(input: { dataset: "acme/streets", username: "bob", role: REVIEWER }) { collaborator { role } } }"#).await);
    ok(run(&app, &cy, r#"mutation { addCollaborator(input: { dataset: "acme/streets", username: "cy", role: MANAGER }) { collaborator { role } } }"#).await);
    ok(run(&app, &ann, r#"mutation { updateDataset(input: { dataset: "acme/streets", public: true }) { dataset { id } } }"#).await);
    ok(run(
        &app,
        &bob,
        r#"mutation { cloneDataset(input: { dataset: "acme/streets" }) { dataset { id } } }"#,
    )
    .await);
    ok(run(&app, &ann, r#"mutation { createApiToken(input: { name: "ci", scopes: [READ], organization: "acme" }) { token } }"#).await);
    // Refused changes write nothing.
    run(&app, &bob, r#"mutation { removeMember(input: { organization: "acme", username: "cy" }) { organization { id } } }"#).await.expect_code("FORBIDDEN");
    run(&app, &ann, r#"mutation { addMember(input: { organization: "acme", username: "bob" }) { member { role } } }"#).await.expect_code("CONFLICT");
    // bob leaves: his collaborations on acme's datasets go, each with its event.
    ok(run(&app, &bob, r#"mutation { leaveOrganization(input: { organization: "acme" }) { organization { id } } }"#).await);
    ok(run(&app, &ann, r#"mutation { transferDataset(input: { dataset: "acme/streets", newOwner: "beta" }) { dataset { id } } }"#).await);
    ok(run(&app, &ann, r#"mutation { removeCollaborator(input: { dataset: "beta/streets", username: "cy" }) { dataset { id } } }"#).await);
    ok(run(&app, &ann, r#"mutation { removeMember(input: { organization: "acme", username: "cy" }) { organization { id } } }"#).await);

    let acme = organization_log(&app, &ann, "acme").await;
    let s = Some("acme/streets");
    assert_eq!(
        acme,
        [
            ev(
                "ORGANIZATION_CREATED",
                "ann",
                Some("ann"),
                None,
                Some("ADMIN"),
                None
            ),
            ev(
                "MEMBER_ADDED",
                "ann",
                Some("bob"),
                None,
                Some("MEMBER"),
                None
            ),
            ev(
                "MEMBER_ADDED",
                "ann",
                Some("cy"),
                None,
                Some("MEMBER"),
                None
            ),
            ev("ORGANIZATION_UPDATED", "ann", None, None, None, None),
            ev(
                "MEMBER_UPDATED",
                "ann",
                Some("cy"),
                None,
                Some("ADMIN"),
                Some("MEMBER")
            ),
            ev("DATASET_CREATED", "ann", None, s, None, None),
            ev(
                "COLLABORATOR_ADDED",
                "ann",
                Some("ann"),
                s,
                Some("ADMIN"),
                None
            ),
            ev(
                "COLLABORATOR_ADDED",
                "ann",
                Some("bob"),
                s,
                Some("LABELER"),
                None
            ),
            ev(
                "COLLABORATOR_UPDATED",
                "cy",
                Some("bob"),
                s,
                Some("REVIEWER"),
                Some("LABELER")
            ),
            ev(
                "COLLABORATOR_ADDED",
                "cy",
                Some("cy"),
                s,
                Some("MANAGER"),
                None
            ),
            ev("DATASET_UPDATED", "ann", None, s, None, None),
            ev("API_TOKEN_CREATED", "ann", Some("ann"), None, None, None),
            ev(
                "MEMBER_LEFT",
                "bob",
                Some("bob"),
                None,
                None,
                Some("MEMBER")
            ),
            ev(
                "COLLABORATOR_REMOVED",
                "bob",
                Some("bob"),
                s,
                None,
                Some("REVIEWER")
            ),
            ev(
                "DATASET_TRANSFERRED",
                "ann",
                None,
                Some("beta/streets"),
                None,
                None
            ),
            ev(
                "MEMBER_REMOVED",
                "ann",
                Some("cy"),
                None,
                None,
                Some("ADMIN")
            ),
        ]
    );
    let beta = organization_log(&app, &ann, "beta").await;
    assert_eq!(
        beta,
        [
            ev(
                "ORGANIZATION_CREATED",
                "ann",
                Some("ann"),
                None,
                Some("ADMIN"),
                None
            ),
            ev(
                "DATASET_TRANSFERRED",
                "ann",
                None,
                Some("beta/streets"),
                None,
                None
            ),
            ev(
                "COLLABORATOR_REMOVED",
                "ann",
                Some("cy"),
                Some("beta/streets"),
                None,
                Some("MANAGER")
            ),
        ]
    );
    // The dataset's log holds its whole history, under both owners; the transfer once.
    let streets = dataset_log(&app, &ann, "beta/streets").await;
    assert_eq!(streets.len(), 9, "{streets:?}");
    assert_eq!(
        streets[0],
        ev("DATASET_CREATED", "ann", None, s, None, None)
    );
    assert_eq!(
        streets
            .iter()
            .filter(|e| e[0] == "DATASET_TRANSFERRED")
            .count(),
        1
    );
    // The clone is bob's personal dataset: in no organization's log, in its own.
    let clone = dataset_log(&app, &bob, "bob/streets-clone").await;
    assert_eq!(
        clone,
        [
            ev(
                "DATASET_CLONED",
                "bob",
                None,
                Some("bob/streets-clone"),
                None,
                None
            ),
            ev(
                "COLLABORATOR_ADDED",
                "bob",
                Some("bob"),
                Some("bob/streets-clone"),
                Some("ADMIN"),
                None
            ),
        ]
    );
    app.stop().await;
}

/// Runs `mutation` as the holder of `token` and asserts that it succeeded and wrote an event
/// (`count` counts the events).
async fn invitation_after<F, Fut>(app: &TestApp, token: &str, mutation: &str, count: &F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let before = count().await;
    let reply = run(app, token, mutation).await;
    assert!(
        reply.body.get("errors").is_none(),
        "{mutation}: {}",
        reply.body
    );
    assert!(
        count().await > before,
        "{mutation} changed state without an event"
    );
}

/// Every mutation of the schema, run once so that it changes something; those that change
/// no organization, dataset, collaborator or token are named here with the reason.
async fn every_mutation_that_changes_state_writes_an_event(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ann = app.sign_up("ann").await;
    let bob = app.sign_up("bob").await;
    let reply = app
        .gql(
            None,
            "{ __schema { mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    let fields: Vec<String> = reply
        .data("/__schema/mutationType/fields")
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    // What changes only the caller's own account, which has no log.
    let without_log = [
        (
            "signUp",
            "creates an account: no organization, dataset or token yet",
        ),
        ("logIn", "changes nothing but the sign-in rate limit"),
        ("changePassword", "the account's own credential"),
        ("signOutEverywhere", "the account's own sessions"),
    ];
    let token = |reply: Reply| {
        reply
            .data("/createApiToken/apiToken/id")
            .as_str()
            .unwrap()
            .to_owned()
    };
    // In an order where each one can succeed.
    let script: Vec<(&str, &str, String)> = vec![
        ("createOrganization", "ann", r#"mutation { createOrganization(input: { username: "acme" }) { organization { id } } }"#.into()),
        ("updateOrganization", "ann", r#"mutation { updateOrganization(input: { organization: "acme", displayName: "A" }) { organization { id } } }"#.into()),
        ("addMember", "ann", r#"mutation { addMember(input: { organization: "acme", username: "bob" }) { member { role } } }"#.into()),
        ("updateMember", "ann", r#"mutation { updateMember(input: { organization: "acme", username: "bob", role: ADMIN }) { member { role } } }"#.into()),
        ("createDataset", "ann", r#"mutation { createDataset(input: { owner: "acme", name: "d" }) { dataset { id } } }"#.into()),
        ("updateDataset", "ann", r#"mutation { updateDataset(input: { dataset: "acme/d", public: true }) { dataset { id } } }"#.into()),
        ("addCollaborator", "ann", r#"mutation { addCollaborator(input: { dataset: "acme/d", username: "bob", role: VIEWER }) { collaborator { role } } }"#.into()),
        ("updateCollaborator", "ann", r#"mutation { updateCollaborator(input: { dataset: "acme/d", username: "bob", role: LABELER }) { collaborator { role } } }"#.into()),
        ("removeCollaborator", "ann", r#"mutation { removeCollaborator(input: { dataset: "acme/d", username: "bob" }) { dataset { id } } }"#.into()),
        ("cloneDataset", "ann", r#"mutation { cloneDataset(input: { dataset: "acme/d", owner: "acme", name: "e" }) { dataset { id } } }"#.into()),
        ("transferDataset", "ann", r#"mutation { transferDataset(input: { dataset: "acme/e", newOwner: "ann" }) { dataset { id } } }"#.into()),
        ("deleteDataset", "ann", r#"mutation { deleteDataset(input: { dataset: "ann/e" }) { deletedDatasetId } }"#.into()),
        ("createApiToken", "ann", r#"mutation { createApiToken(input: { name: "t", scopes: [READ], organization: "acme" }) { token apiToken { id } } }"#.into()),
    ];
    let mut ran = Vec::new();
    let count = || async {
        entity::audit_event::Entity::find()
            .count(&app.state().db)
            .await
            .unwrap()
    };
    let token_of = |who: &str| {
        if who == "ann" {
            ann.clone()
        } else {
            bob.clone()
        }
    };
    let mut token_id = None;
    for (name, who, mutation) in &script {
        let before = count().await;
        let reply = run(&app, &token_of(who), mutation).await;
        assert!(reply.body.get("errors").is_none(), "{name}: {}", reply.body);
        if *name == "createApiToken" {
            token_id = Some(token(reply));
        }
        assert!(
            count().await > before,
            "{name} changed state without an event"
        );
        ran.push(name.to_string());
    }
    let rest: Vec<(&str, &str, String)> = vec![
        ("revokeApiToken", "ann", format!(r#"mutation {{ revokeApiToken(input: {{ id: "{}" }}) {{ revokedApiTokenId }} }}"#, token_id.unwrap())),
        ("removeMember", "bob", r#"mutation { removeMember(input: { organization: "acme", username: "ann" }) { organization { id } } }"#.into()),
        ("addMember", "bob", r#"mutation { addMember(input: { organization: "acme", username: "ann", role: ADMIN }) { member { role } } }"#.into()),
        ("leaveOrganization", "bob", r#"mutation { leaveOrganization(input: { organization: "acme" }) { organization { id } } }"#.into()),
        ("addMember", "ann", r#"mutation { addMember(input: { organization: "acme", username: "bob" }) { member { role } } }"#.into()),
        ("deleteAccount", "bob", r#"mutation { deleteAccount(input: { password: "password-bob" }) { deletedUserId } }"#.into()),
        ("deleteOrganization", "ann", r#"mutation { deleteOrganization(input: { organization: "acme" }) { deletedOrganizationId } }"#.into()),
    ];
    // Invitations: made, accepted, declined, revoked.
    let cy = app.sign_up("cy").await;
    let invite = r#"mutation { inviteMember(input: { organization: "acme", username: "cy" }) { invitation { id } } }"#;
    let answer = |verb: &str, id: &str| {
        format!(r#"mutation {{ {verb}Invitation(input: {{ id: "{id}" }}) {{ __typename }} }}"#)
    };
    let invitation = || async {
        let before = count().await;
        let reply = run(&app, &ann, invite).await;
        assert!(
            count().await > before,
            "inviteMember changed state without an event"
        );
        reply
            .data("/inviteMember/invitation/id")
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = invitation().await;
    invitation_after(&app, &cy, &answer("decline", &first), &count).await;
    let third = invitation().await;
    invitation_after(&app, &ann, &answer("revoke", &third), &count).await;
    let fourth = invitation().await;
    invitation_after(&app, &cy, &answer("accept", &fourth), &count).await;
    ran.extend(
        [
            "inviteMember",
            "declineInvitation",
            "revokeInvitation",
            "acceptInvitation",
        ]
        .map(String::from),
    );
    for (name, who, mutation) in &rest {
        let before = count().await;
        let reply = run(&app, &token_of(who), mutation).await;
        assert!(reply.body.get("errors").is_none(), "{name}: {}", reply.body);
        assert!(
            count().await > before,
            "{name} changed state without an event"
        );
        ran.push(name.to_string());
    }
    for field in &fields {
        assert!(
            ran.contains(field) || without_log.iter().any(|(name, _)| name == field),
            "the mutation {field} is not in this test: run it here, or say why it needs no event"
        );
    }
    app.stop().await;
}

async fn the_logs_are_for_admins_and_filter_and_page(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ann = app.sign_up("ann").await;
    let bob = app.sign_up("bob").await;
    let cy = app.sign_up("cy").await;
    let dee = app.sign_up("dee").await;
    app.create_org(&ann, "acme").await;
    app.add_member(&ann, "acme", "bob", "MEMBER", Value::Null)
        .await
        .data("/addMember/member/role");
    app.create_dataset(&ann, Some("acme"), "d", false)
        .await
        .data("/createDataset/dataset/id");
    for (user, role) in [("bob", "ADMIN"), ("cy", "MANAGER")] {
        run(&app, &ann, &format!(r#"mutation {{ addCollaborator(input: {{ dataset: "acme/d", username: "{user}", role: {role} }}) {{ collaborator {{ role }} }} }}"#))
            .await
            .data("/addCollaborator/collaborator/role");
    }
    let org_log = r#"{ organization(username: "acme") { auditLog { totalCount } } }"#;
    let ds_log = r#"{ dataset(fullName: "acme/d") { auditLog { totalCount } } }"#;
    assert_eq!(
        run(&app, &ann, org_log)
            .await
            .data("/organization/auditLog/totalCount"),
        6
    );
    for token in [&bob, &cy, &dee] {
        run(&app, token, org_log).await.expect_code("FORBIDDEN");
    }
    app.gql(None, org_log, json!({}))
        .await
        .expect_code("UNAUTHENTICATED");
    // The dataset's ADMINs: the organization's admin and bob (a collaborator ADMIN).
    for token in [&ann, &bob] {
        assert_eq!(
            run(&app, token, ds_log)
                .await
                .data("/dataset/auditLog/totalCount"),
            4
        );
    }
    run(&app, &cy, ds_log).await.expect_code("FORBIDDEN");
    assert!(
        run(&app, &dee, ds_log).await.data("/dataset").is_null(),
        "invisible to others"
    );

    // Filters: actions and actor.
    let filtered = run(
        &app,
        &ann,
        r#"{ organization(username: "acme") {
             adds: auditLog(actions: [COLLABORATOR_ADDED, MEMBER_ADDED]) { totalCount nodes { action subjectUsername } }
             byAnn: auditLog(actor: "ANN") { totalCount }
             byBob: auditLog(actor: "bob") { totalCount } } }"#,
    )
    .await;
    assert_eq!(filtered.data("/organization/adds/totalCount"), 4);
    assert_eq!(
        filtered.data("/organization/adds/nodes/0"),
        &json!({ "action": "COLLABORATOR_ADDED", "subjectUsername": "cy" })
    );
    assert_eq!(filtered.data("/organization/byAnn/totalCount"), 6);
    assert_eq!(filtered.data("/organization/byBob/totalCount"), 0);

    // Pages, newest first.
    let page = "query($after: String) { organization(username: \"acme\") { auditLog(first: 3, after: $after) {
        nodes { id action } pageInfo { hasNextPage endCursor } } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    loop {
        let reply = app.gql(Some(&ann), page, json!({ "after": after })).await;
        for node in reply
            .data("/organization/auditLog/nodes")
            .as_array()
            .unwrap()
        {
            seen.push(node["action"].as_str().unwrap().to_owned());
        }
        let info = reply.data("/organization/auditLog/pageInfo").clone();
        if info["hasNextPage"] != true {
            break;
        }
        after = info["endCursor"].clone();
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(seen.first().unwrap(), "COLLABORATOR_ADDED");
    assert_eq!(seen.last().unwrap(), "ORGANIZATION_CREATED");

    // node(id): to those who may read a log that holds it.
    let id = run(
        &app,
        &ann,
        r#"{ organization(username: "acme") { auditLog(first: 1) { nodes { id } } } }"#,
    )
    .await
    .data("/organization/auditLog/nodes/0/id")
    .clone();
    let node = "query($id: ID!) { node(id: $id) { ... on AuditEvent { action } } }";
    for (token, seen) in [(&ann, true), (&bob, true), (&cy, false), (&dee, false)] {
        let reply = app.gql(Some(token), node, json!({ "id": id })).await;
        assert_eq!(!reply.data("/node").is_null(), seen, "{}", reply.body);
    }
    // Every collaborator role below ADMIN is refused the dataset's log; a public dataset's
    // log is no one's business but its ADMINs' either.
    app.create_dataset(&ann, Some("acme"), "open", true)
        .await
        .data("/createDataset/dataset/id");
    for role in ["VIEWER", "LABELER", "REVIEWER", "MANAGER"] {
        let name = format!("c-{}", role.to_lowercase());
        let token = app.sign_up(&name).await;
        run(&app, &ann, &format!(r#"mutation {{ addCollaborator(input: {{ dataset: "acme/open", username: "{name}", role: {role} }}) {{ collaborator {{ role }} }} }}"#))
            .await
            .data("/addCollaborator/collaborator/role");
        run(
            &app,
            &token,
            r#"{ dataset(fullName: "acme/open") { auditLog { totalCount } } }"#,
        )
        .await
        .expect_code("FORBIDDEN");
    }
    run(
        &app,
        &dee,
        r#"{ dataset(fullName: "acme/open") { auditLog { totalCount } } }"#,
    )
    .await
    .expect_code("FORBIDDEN");
    app.gql(
        None,
        r#"{ dataset(fullName: "acme/open") { auditLog { totalCount } } }"#,
        json!({}),
    )
    .await
    .expect_code("UNAUTHENTICATED");
    app.stop().await;
}

async fn events_outlive_what_they_describe(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ann = app.sign_up("ann").await;
    let bob = app.sign_up("bob").await;
    app.create_org(&ann, "acme").await;
    app.add_member(&ann, "acme", "bob", "ADMIN", Value::Null)
        .await
        .data("/addMember/member/role");
    app.create_dataset(&bob, Some("acme"), "gone", false)
        .await
        .data("/createDataset/dataset/id");
    run(
        &app,
        &bob,
        r#"mutation { deleteDataset(input: { dataset: "acme/gone" }) { deletedDatasetId } }"#,
    )
    .await
    .data("/deleteDataset/deletedDatasetId");
    run(
        &app,
        &bob,
        r#"mutation { deleteAccount(input: { password: "password-bob" }) { deletedUserId } }"#,
    )
    .await
    .data("/deleteAccount/deletedUserId");
    let reply = run(
        &app,
        &ann,
        r#"{ organization(username: "acme") { auditLog { nodes { action actor { username } actorUsername subjectUsername datasetFullName } } } }"#,
    )
    .await;
    let nodes = reply
        .data("/organization/auditLog/nodes")
        .as_array()
        .unwrap()
        .clone();
    let actions: Vec<&str> = nodes
        .iter()
        .map(|n| n["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "MEMBER_LEFT",
            "DATASET_DELETED",
            "COLLABORATOR_ADDED",
            "DATASET_CREATED",
            "MEMBER_ADDED",
            "ORGANIZATION_CREATED"
        ]
    );
    // bob's account is gone: his events keep his name, without a user to point to.
    for node in &nodes[..4] {
        assert_eq!(node["actor"], Value::Null, "{node}");
        assert_eq!(node["actorUsername"], "bob", "{node}");
    }
    assert_eq!(nodes[1]["datasetFullName"], "acme/gone");
    assert_eq!(nodes[4]["actor"]["username"], "ann");
    assert_eq!(nodes[4]["subjectUsername"], "bob");
    app.stop().await;
}

async fn events_past_the_retention_are_pruned(backend: Backend) {
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let ann = app.sign_up("ann").await;
    app.create_org(&ann, "old-co").await;
    app.create_org(&ann, "new-co").await;
    // The events of "old-co" happened three days ago.
    let old = entity::audit_event::Entity::update_many()
        .col_expr(
            entity::audit_event::Column::CreatedAt,
            Expr::val(chrono::Utc::now() - chrono::Duration::days(3)),
        )
        .filter(entity::audit_event::Column::Id.lt(2))
        .exec(&app.state().db)
        .await
        .unwrap();
    assert_eq!(old.rows_affected, 1);
    // Without a retention, nothing goes; an instance keeping two days prunes at start.
    let mut config = test_config(&db.url);
    config.audit_retention_days = Some(2);
    let pruning = spawn_with(config).await;
    let mut left = Value::Null;
    for _ in 0..100 {
        // (Not `organization_log`: its count and page may straddle a pruning delete.)
        left = pruning
            .gql(
                Some(&ann),
                r#"{ organization(username: "old-co") { auditLog { nodes { action } } } }"#,
                json!({}),
            )
            .await
            .data("/organization/auditLog/nodes")
            .clone();
        if left == json!([]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(left, json!([]));
    assert_eq!(organization_log(&app, &ann, "new-co").await.len(), 1);
    pruning.stop().await;
    app.stop().await;
}
