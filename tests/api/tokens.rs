//! API tokens and the account controls (API.md, "Accounts, sessions and API tokens"):
//! scopes for every kind of operation, tokens restricted to an organization, revocation by
//! the owner and by the organization's admins, expiry, sign-in tokens that die with
//! `signOutEverywhere` and `changePassword`, `deleteAccount`, a secret that shows once and
//! never again (not in logs either), revocation seen at once by a second instance, and
//! `lastUsedAt` written at most once a minute.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Reply, ServerProcess, TestApp, TestDatabase, spawn_app, spawn_with, test_config,
};

on_both_databases!(
    scopes_decide_what_a_token_may_run,
    bad_token_input_is_refused_and_nothing_is_made,
    a_restricted_token_acts_only_inside_its_organization,
    a_restricted_token_stops_when_its_user_leaves,
    tokens_are_revoked_by_their_owner_or_an_admin_of_their_organization,
    tokens_expire,
    sign_in_tokens_end_with_sign_out_everywhere_and_password_change,
    deleting_an_account,
    revocation_reaches_every_instance_at_once,
    last_used_at_is_written_at_most_once_a_minute,
);

const CREATE: &str = "mutation($input: CreateApiTokenInput!) {
    createApiToken(input: $input) {
      token apiToken { id name scopes createdAt expiresAt lastUsedAt
        user { username } organization { username } } } }";

/// Creates a token as the holder of `jwt`; the reply.
async fn try_create(app: &TestApp, jwt: &str, input: Value) -> Reply {
    app.gql(Some(jwt), CREATE, json!({ "input": input })).await
}

/// Creates a token with `scopes` (restricted to `organization` if given): (secret, global id).
async fn create_token(
    app: &TestApp,
    jwt: &str,
    scopes: &[&str],
    organization: Option<&str>,
) -> (String, String) {
    let reply = try_create(
        app,
        jwt,
        json!({ "name": "a script", "scopes": scopes, "organization": organization }),
    )
    .await;
    let secret = reply
        .data("/createApiToken/token")
        .as_str()
        .unwrap()
        .to_owned();
    let id = reply
        .data("/createApiToken/apiToken/id")
        .as_str()
        .unwrap()
        .to_owned();
    (secret, id)
}

async fn revoke(app: &TestApp, jwt: &str, id: &str) -> Reply {
    app.gql(
        Some(jwt),
        "mutation($id: ID!) { revokeApiToken(input: { id: $id }) { revokedApiTokenId } }",
        json!({ "id": id }),
    )
    .await
}

/// `viewer { username }` with `token`.
async fn viewer(app: &TestApp, token: &str) -> Reply {
    app.gql(Some(token), "{ viewer { username } }", json!({}))
        .await
}

/// Asserts that `token` is refused as a credential: 401, `UNAUTHENTICATED`, nothing run.
async fn assert_refused(app: &TestApp, token: &str) {
    let reply = viewer(app, token).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.code(), "UNAUTHENTICATED");
    assert!(reply.body["data"].is_null(), "{}", reply.body);
}

async fn dataset_names(app: &TestApp, token: Option<&str>, owner: &str) -> Vec<String> {
    let reply = app
        .gql(
            token,
            "query($u: String!) { user(username: $u) { datasets { nodes { name } } } }",
            json!({ "u": owner }),
        )
        .await;
    reply
        .data("/user/datasets/nodes")
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn scopes_decide_what_a_token_may_run(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let jwt = app.sign_up("alice").await;
    let reply = try_create(&app, &jwt, json!({ "name": "reader", "scopes": ["READ"] })).await;
    let read = reply
        .data("/createApiToken/token")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(read.starts_with("orgql_pat_"), "{read}");
    assert!(
        read.len() >= "orgql_pat_".len() + 43,
        "32 bytes or more: {read}"
    );
    let token = reply.data("/createApiToken/apiToken");
    assert_eq!(token["scopes"], json!(["READ"]));
    assert_eq!(token["user"]["username"], "alice");
    assert_eq!(token["organization"], Value::Null);
    assert_eq!(token["lastUsedAt"], Value::Null);
    let created =
        chrono::DateTime::parse_from_rfc3339(token["createdAt"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(token["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_days(), 90, "the default lifetime");
    let (write, _) = create_token(&app, &jwt, &["WRITE"], None).await;
    let (both, _) = create_token(&app, &jwt, &["READ", "WRITE"], None).await;

    // Queries: every scope, as the token's user, over POST and GET.
    for token in [&read, &write, &both] {
        assert_eq!(viewer(&app, token).await.data("/viewer/username"), "alice");
        let response = app
            .client
            .get(format!("{}/graphql", app.address))
            .query(&[("query", "{ viewer { username } }")])
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["viewer"]["username"], "alice", "{body}");
    }

    // Mutations: a READ token is refused before anything runs.
    let reply = app.create_dataset(&read, None, "by-reader", false).await;
    reply.expect_code("FORBIDDEN");
    assert!(reply.body["data"].is_null(), "nothing ran: {}", reply.body);
    assert!(dataset_names(&app, Some(&jwt), "alice").await.is_empty());
    // WRITE tokens run mutations.
    app.create_dataset(&write, None, "by-writer", false)
        .await
        .data("/createDataset/dataset/id");
    app.create_dataset(&both, None, "by-both", false)
        .await
        .data("/createDataset/dataset/id");
    assert_eq!(
        dataset_names(&app, Some(&jwt), "alice").await,
        ["by-both", "by-writer"]
    );

    // Tokens, passwords and the account are a person's: every API token is refused them,
    // alone or beside another mutation, and nothing of the request runs.
    let personal = [
        (
            "createApiToken",
            r#"createApiToken(input: { name: "x", scopes: [READ] }) { token }"#,
        ),
        (
            "revokeApiToken",
            r#"revokeApiToken(input: { id: "x" }) { revokedApiTokenId }"#,
        ),
        (
            "changePassword",
            r#"changePassword(input: { currentPassword: "password-alice", newPassword: "another-password" }) { token }"#,
        ),
        (
            "signOutEverywhere",
            "signOutEverywhere(input: {}) { user { username } }",
        ),
        (
            "deleteAccount",
            r#"deleteAccount(input: { password: "password-alice" }) { deletedUserId }"#,
        ),
    ];
    for (name, field) in personal {
        for token in [&read, &write, &both] {
            let reply = app
                .gql(
                    Some(token),
                    &format!(
                        r#"mutation {{ d: createDataset(input: {{ name: "never-{name}" }}) {{ dataset {{ id }} }} {field} }}"#
                    ),
                    json!({}),
                )
                .await;
            reply.expect_code("FORBIDDEN");
        }
    }
    assert_eq!(
        dataset_names(&app, Some(&jwt), "alice").await,
        ["by-both", "by-writer"],
        "no refused request ran"
    );
    // The account and its sign-in token are untouched.
    assert_eq!(viewer(&app, &jwt).await.data("/viewer/username"), "alice");

    // A batch is judged whole: one operation a token may not run refuses that operation.
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&read)
        .json(&json!([
            { "query": "{ viewer { username } }" },
            { "query": r#"mutation { createDataset(input: { name: "batched" }) { dataset { id } } }"# },
        ]))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["data"]["viewer"]["username"], "alice", "{body}");
    assert_eq!(
        body[1]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert!(
        !dataset_names(&app, Some(&jwt), "alice")
            .await
            .contains(&"batched".to_owned())
    );

    // An unknown, mangled or empty API token is refused, never anonymous.
    for bad in [
        "orgql_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        format!("{read}x"),
        read[..read.len() - 1].to_owned(),
        "orgql_pat_".to_owned(),
    ] {
        assert_refused(&app, &bad).await;
    }
    // The scheme is matched in any case for API tokens too.
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("authorization", format!("bEaReR {read}"))
        .json(&json!({ "query": "{ viewer { username } }" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["viewer"]["username"], "alice", "{body}");
    app.stop().await;
}

async fn bad_token_input_is_refused_and_nothing_is_made(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let jwt = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    app.create_org(&bob, "bobs").await;
    let cases = [
        (
            json!({ "name": "", "scopes": ["READ"] }),
            "BAD_USER_INPUT",
            "name",
        ),
        (
            json!({ "name": "x".repeat(101), "scopes": ["READ"] }),
            "BAD_USER_INPUT",
            "name",
        ),
        (
            json!({ "name": "ok", "scopes": [] }),
            "BAD_USER_INPUT",
            "scopes",
        ),
        (
            json!({ "name": "ok", "scopes": ["READ"], "expiresInDays": 0 }),
            "BAD_USER_INPUT",
            "expiresInDays",
        ),
        (
            json!({ "name": "ok", "scopes": ["READ"], "expiresInDays": 367 }),
            "BAD_USER_INPUT",
            "expiresInDays",
        ),
        (
            json!({ "name": "ok", "scopes": ["READ"], "organization": "nowhere" }),
            "NOT_FOUND",
            "nowhere",
        ),
        (
            json!({ "name": "ok", "scopes": ["READ"], "organization": "bobs" }),
            "FORBIDDEN",
            "member",
        ),
    ];
    for (input, code, mentions) in cases {
        let message = try_create(&app, &jwt, input.clone())
            .await
            .expect_code(code);
        assert!(message.contains(mentions), "{input}: {message}");
    }
    // Anonymous callers make no tokens.
    app.gql(
        None,
        CREATE,
        json!({ "input": { "name": "x", "scopes": ["READ"] } }),
    )
    .await
    .expect_code("UNAUTHENTICATED");
    let listed = app
        .gql(
            Some(&jwt),
            "{ viewer { apiTokens { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed.data("/viewer/apiTokens/totalCount"), 0);
    // The longest lifetime is accepted.
    let reply = try_create(
        &app,
        &jwt,
        json!({ "name": "year", "scopes": ["READ"], "expiresInDays": 366 }),
    )
    .await;
    reply.data("/createApiToken/token");
    app.stop().await;
}

async fn a_restricted_token_acts_only_inside_its_organization(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    app.create_org(&alice, "acme").await;
    app.create_org(&alice, "beta").await;
    app.add_member(&alice, "acme", "bob", "MEMBER", Value::Null)
        .await
        .data("/addMember/member/role");
    app.create_dataset(&alice, Some("acme"), "inside", false)
        .await
        .data("/createDataset/dataset/id");
    app.create_dataset(&alice, Some("acme"), "inside-public", true)
        .await
        .data("/createDataset/dataset/id");
    app.create_dataset(&alice, Some("beta"), "elsewhere", false)
        .await
        .data("/createDataset/dataset/id");
    app.create_dataset(&alice, None, "mine", false)
        .await
        .data("/createDataset/dataset/id");
    app.create_dataset(&alice, None, "mine-public", true)
        .await
        .data("/createDataset/dataset/id");
    // A dataset of bob's on which alice collaborates: outside acme.
    app.create_dataset(&bob, None, "bobs", false)
        .await
        .data("/createDataset/dataset/id");
    app.gql(
        Some(&bob),
        r#"mutation { addCollaborator(input: { dataset: "bob/bobs", username: "alice", role: ADMIN }) { collaborator { role } } }"#,
        json!({}),
    )
    .await
    .data("/addCollaborator/collaborator/role");

    let (token, _) = create_token(&app, &alice, &["READ", "WRITE"], Some("acme")).await;
    let reply = app
        .gql(
            Some(&token),
            r#"{ organization(username: "acme") { viewerRole members { totalCount } apiTokens { totalCount }
                   datasets { nodes { name viewerRole } } }
                 inside: dataset(fullName: "acme/inside") { name collaborators { totalCount } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/organization/viewerRole"), "ADMIN");
    assert_eq!(reply.data("/organization/members/totalCount"), 2);
    assert_eq!(reply.data("/organization/apiTokens/totalCount"), 1);
    assert_eq!(
        reply.data("/organization/datasets/nodes"),
        &json!([
            { "name": "inside", "viewerRole": "ADMIN" },
            { "name": "inside-public", "viewerRole": "ADMIN" },
        ])
    );
    assert_eq!(reply.data("/inside/collaborators/totalCount"), 1);

    // Outside acme it is an anonymous caller: public things only, UNAUTHENTICATED for the
    // rest, whatever alice's roles there.
    let reply = app
        .gql(
            Some(&token),
            r#"{ beta: organization(username: "beta") { viewerRole datasets { totalCount } }
                 elsewhere: dataset(fullName: "beta/elsewhere") { name }
                 mine: dataset(fullName: "alice/mine") { name }
                 bobs: dataset(fullName: "bob/bobs") { name }
                 open: dataset(fullName: "alice/mine-public") { name viewerRole } }"#,
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/beta/viewerRole"), &Value::Null);
    assert_eq!(reply.data("/beta/datasets/totalCount"), 0);
    assert_eq!(reply.data("/elsewhere"), &Value::Null);
    assert_eq!(reply.data("/mine"), &Value::Null);
    assert_eq!(reply.data("/bobs"), &Value::Null);
    assert_eq!(reply.data("/open/viewerRole"), &Value::Null);
    assert_eq!(
        dataset_names(&app, Some(&token), "alice").await,
        ["mine-public"]
    );
    for query in [
        "{ viewer { username } }",
        r#"{ organization(username: "beta") { members { totalCount } } }"#,
        r#"{ user(username: "alice") { apiTokens { totalCount } } }"#,
    ] {
        app.gql(Some(&token), query, json!({}))
            .await
            .expect_code("UNAUTHENTICATED");
    }
    // Mutations: inside acme as alice; outside it refused as an anonymous caller would be.
    app.create_dataset(&token, Some("acme"), "by-token", false)
        .await
        .data("/createDataset/dataset/id");
    for mutation in [
        r#"mutation { createDataset(input: { name: "personal" }) { dataset { id } } }"#,
        r#"mutation { createDataset(input: { owner: "beta", name: "b" }) { dataset { id } } }"#,
        r#"mutation { createOrganization(input: { username: "gamma" }) { organization { id } } }"#,
        r#"mutation { addMember(input: { organization: "beta", username: "bob", role: MEMBER }) { member { role } } }"#,
        r#"mutation { updateDataset(input: { dataset: "alice/mine", public: true }) { dataset { public } } }"#,
        r#"mutation { deleteDataset(input: { dataset: "bob/bobs" }) { deletedDatasetId } }"#,
        r#"mutation { leaveOrganization(input: { organization: "beta" }) { organization { id } } }"#,
        r#"mutation { transferDataset(input: { dataset: "acme/by-token", newOwner: "beta" }) { dataset { id } } }"#,
    ] {
        let reply = app.gql(Some(&token), mutation, json!({})).await;
        let code = reply.code();
        assert!(
            code == "UNAUTHENTICATED" || code == "NOT_FOUND",
            "{mutation}: {}",
            reply.body
        );
    }
    // Nothing of that happened.
    assert_eq!(
        dataset_names(&app, Some(&alice), "alice").await,
        ["mine", "mine-public"]
    );
    assert_eq!(dataset_names(&app, Some(&bob), "bob").await, ["bobs"]);
    let reply = app
        .gql(
            Some(&alice),
            r#"{ beta: organization(username: "beta") { members { totalCount } datasets { nodes { name } } }
                 gamma: organization(username: "gamma") { id }
                 acme: organization(username: "acme") { datasets { nodes { name } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/beta/members/totalCount"), 1);
    assert_eq!(
        reply.data("/beta/datasets/nodes"),
        &json!([{ "name": "elsewhere" }])
    );
    assert_eq!(reply.data("/gamma"), &Value::Null);
    assert_eq!(
        reply.data("/acme/datasets/nodes"),
        &json!([{ "name": "by-token" }, { "name": "inside" }, { "name": "inside-public" }])
    );
    app.stop().await;
}

async fn a_restricted_token_stops_when_its_user_leaves(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let carol = app.sign_up("carol").await;
    app.create_org(&alice, "acme").await;
    for user in ["bob", "carol"] {
        app.add_member(&alice, "acme", user, "MEMBER", Value::Null)
            .await
            .data("/addMember/member/role");
    }
    let (bobs, _) = create_token(&app, &bob, &["READ"], Some("acme")).await;
    let (carols, _) = create_token(&app, &carol, &["READ"], Some("acme")).await;
    let (carols_own, _) = create_token(&app, &carol, &["READ"], None).await;
    let members = r#"{ organization(username: "acme") { members { totalCount } } }"#;
    for token in [&bobs, &carols] {
        assert_eq!(
            app.gql(Some(token), members, json!({}))
                .await
                .data("/organization/members/totalCount"),
            3
        );
    }
    // bob leaves; carol is removed: their restricted tokens stop working at once.
    app.gql(
        Some(&bob),
        r#"mutation { leaveOrganization(input: { organization: "acme" }) { organization { username } } }"#,
        json!({}),
    )
    .await
    .data("/leaveOrganization/organization/username");
    app.remove_member(&alice, "acme", "carol")
        .await
        .data("/removeMember/organization/username");
    assert_refused(&app, &bobs).await;
    assert_refused(&app, &carols).await;
    // Her unrestricted token and her sign-in go on.
    assert_eq!(
        viewer(&app, &carols_own).await.data("/viewer/username"),
        "carol"
    );
    assert_eq!(viewer(&app, &carol).await.data("/viewer/username"), "carol");
    // They were revoked, not only refused: added back, bob's old token stays dead, and
    // neither lists it.
    app.add_member(&alice, "acme", "bob", "MEMBER", Value::Null)
        .await
        .data("/addMember/member/role");
    assert_refused(&app, &bobs).await;
    let listed = app
        .gql(
            Some(&bob),
            "{ viewer { apiTokens { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed.data("/viewer/apiTokens/totalCount"), 0);
    let listed = app
        .gql(
            Some(&alice),
            r#"{ organization(username: "acme") { apiTokens { totalCount } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(listed.data("/organization/apiTokens/totalCount"), 0);
    app.stop().await;
}

async fn tokens_are_revoked_by_their_owner_or_an_admin_of_their_organization(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let carol = app.sign_up("carol").await;
    app.create_org(&alice, "acme").await;
    for user in ["bob", "carol"] {
        app.add_member(&alice, "acme", user, "MEMBER", Value::Null)
            .await
            .data("/addMember/member/role");
    }
    let (restricted, restricted_id) = create_token(&app, &bob, &["READ"], Some("acme")).await;
    let (own, own_id) = create_token(&app, &bob, &["READ"], None).await;
    let (second, second_id) = create_token(&app, &bob, &["WRITE"], None).await;

    // bob lists his, newest first; the list never holds a secret.
    let reply = app
        .gql(
            Some(&bob),
            "{ viewer { apiTokens { totalCount edges { cursor node { id name scopes organization { username } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/viewer/apiTokens/totalCount"), 3);
    let ids: Vec<&str> = reply
        .data("/viewer/apiTokens/edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [second_id.as_str(), own_id.as_str(), restricted_id.as_str()]
    );
    for secret in [&restricted, &own, &second] {
        assert!(!reply.raw.contains(secret.as_str()));
        assert!(!reply.raw.contains(&secret["orgql_pat_".len()..]));
    }
    // Paged: first 1, then after its cursor.
    let page = app
        .gql(
            Some(&bob),
            "query($after: String) { viewer { apiTokens(first: 1, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } } }",
            json!({ "after": Value::Null }),
        )
        .await;
    assert_eq!(
        page.data("/viewer/apiTokens/nodes/0/id"),
        second_id.as_str()
    );
    assert_eq!(page.data("/viewer/apiTokens/pageInfo/hasNextPage"), true);
    let after = page.data("/viewer/apiTokens/pageInfo/endCursor").clone();
    let page = app
        .gql(
            Some(&bob),
            "query($after: String) { viewer { apiTokens(first: 5, after: $after) { nodes { id } pageInfo { hasNextPage } } } }",
            json!({ "after": after }),
        )
        .await;
    assert_eq!(
        page.data("/viewer/apiTokens/nodes"),
        &json!([{ "id": own_id }, { "id": restricted_id }])
    );

    // Others see none of them: not through the user, nor by id.
    app.gql(
        Some(&alice),
        r#"{ user(username: "bob") { apiTokens { totalCount } } }"#,
        json!({}),
    )
    .await
    .expect_code("FORBIDDEN");
    app.gql(
        None,
        r#"{ user(username: "bob") { apiTokens { totalCount } } }"#,
        json!({}),
    )
    .await
    .expect_code("UNAUTHENTICATED");
    let node = "query($id: ID!) { node(id: $id) { ... on ApiToken { name user { username } } } }";
    assert_eq!(
        app.gql(Some(&bob), node, json!({ "id": own_id }))
            .await
            .data("/node/user/username"),
        "bob"
    );
    for (token, id, seen) in [
        (&alice, &own_id, false),
        (&carol, &own_id, false),
        (&carol, &restricted_id, false),
        (&alice, &restricted_id, true),
    ] {
        let reply = app.gql(Some(token), node, json!({ "id": id })).await;
        assert_eq!(!reply.data("/node").is_null(), seen, "{}", reply.body);
    }
    assert!(
        app.gql(None, node, json!({ "id": own_id }))
            .await
            .data("/node")
            .is_null()
    );

    // The organization's admins list the tokens restricted to it; members may not.
    let listed =
        r#"{ organization(username: "acme") { apiTokens { nodes { id user { username } } } } }"#;
    assert_eq!(
        app.gql(Some(&alice), listed, json!({}))
            .await
            .data("/organization/apiTokens/nodes"),
        &json!([{ "id": restricted_id, "user": { "username": "bob" } }])
    );
    app.gql(Some(&carol), listed, json!({}))
        .await
        .expect_code("FORBIDDEN");
    app.gql(Some(&bob), listed, json!({}))
        .await
        .expect_code("FORBIDDEN");

    // A non-admin may not revoke another's token, and an admin only the ones restricted to
    // her organization: to them the others do not exist.
    for (token, id) in [
        (&carol, &restricted_id),
        (&carol, &own_id),
        (&alice, &own_id),
    ] {
        revoke(&app, token, id).await.expect_code("NOT_FOUND");
    }
    revoke(&app, &alice, "bm90LWFuLWlk")
        .await
        .expect_code("NOT_FOUND");
    assert_eq!(viewer(&app, &own).await.data("/viewer/username"), "bob");

    // The admin revokes the restricted one; the owner his own.
    assert_eq!(
        revoke(&app, &alice, &restricted_id)
            .await
            .data("/revokeApiToken/revokedApiTokenId"),
        restricted_id.as_str()
    );
    assert_refused(&app, &restricted).await;
    revoke(&app, &bob, &own_id)
        .await
        .data("/revokeApiToken/revokedApiTokenId");
    assert_refused(&app, &own).await;
    // Twice: it is gone.
    revoke(&app, &bob, &own_id).await.expect_code("NOT_FOUND");
    assert_eq!(viewer(&app, &second).await.data("/viewer/username"), "bob");
    let reply = app
        .gql(
            Some(&bob),
            "{ viewer { apiTokens { nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reply.data("/viewer/apiTokens/nodes"),
        &json!([{ "id": second_id }])
    );
    assert!(
        app.gql(Some(&bob), node, json!({ "id": own_id }))
            .await
            .data("/node")
            .is_null()
    );
    app.stop().await;
}

async fn tokens_expire(backend: Backend) {
    // Sign-in tokens that live two seconds.
    let db = TestDatabase::create(&backend).await;
    let mut config = test_config(&db.url);
    config.token_ttl_seconds = 2;
    let app = spawn_with(config).await;
    let jwt = app.sign_up("alice").await;
    let (token, _) = create_token(&app, &jwt, &["READ"], None).await;
    let (later, _) = create_token(&app, &jwt, &["READ"], None).await;
    assert_eq!(viewer(&app, &token).await.data("/viewer/username"), "alice");
    // An API token past its expiry (moved there in the database: days are too long to wait).
    entity::api_token::Entity::update_many()
        .col_expr(
            entity::api_token::Column::ExpiresAt,
            Expr::val(Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(entity::api_token::Column::SecretHash.eq(orgql::auth::api_token_hash(&token)))
        .exec(&app.state().db)
        .await
        .unwrap();
    assert_refused(&app, &token).await;
    assert_eq!(viewer(&app, &later).await.data("/viewer/username"), "alice");
    // The sign-in token, once its two seconds are over.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_refused(&app, &jwt).await;
    assert_eq!(viewer(&app, &later).await.data("/viewer/username"), "alice");
    app.stop().await;
}

async fn log_in(app: &TestApp, username: &str, password: &str) -> Reply {
    app.gql(
        None,
        "mutation($u: String!, $p: String!) { logIn(input: { username: $u, password: $p }) { token } }",
        json!({ "u": username, "p": password }),
    )
    .await
}

async fn sign_in_tokens_end_with_sign_out_everywhere_and_password_change(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let first = app.sign_up("alice").await;
    let second = log_in(&app, "alice", "password-alice")
        .await
        .data("/logIn/token")
        .as_str()
        .unwrap()
        .to_owned();
    let (api, _) = create_token(&app, &first, &["READ"], None).await;
    let bob = app.sign_up("bob").await;

    let reply = app
        .gql(
            Some(&second),
            "mutation { signOutEverywhere(input: {}) { user { username } } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/signOutEverywhere/user/username"), "alice");
    assert_refused(&app, &first).await;
    assert_refused(&app, &second).await;
    // API tokens are not sessions; other users are untouched.
    assert_eq!(viewer(&app, &api).await.data("/viewer/username"), "alice");
    assert_eq!(viewer(&app, &bob).await.data("/viewer/username"), "bob");
    // Signing in again works.
    let third = log_in(&app, "alice", "password-alice")
        .await
        .data("/logIn/token")
        .as_str()
        .unwrap()
        .to_owned();
    let fourth = log_in(&app, "alice@example.com", "password-alice")
        .await
        .data("/logIn/token")
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(viewer(&app, &third).await.data("/viewer/username"), "alice");

    let change = "mutation($c: String!, $n: String!) {
        changePassword(input: { currentPassword: $c, newPassword: $n }) { token user { username } } }";
    app.gql(
        Some(&third),
        change,
        json!({ "c": "wrong-password", "n": "a-new-password" }),
    )
    .await
    .expect_code("UNAUTHENTICATED");
    app.gql(
        Some(&third),
        change,
        json!({ "c": "password-alice", "n": "short" }),
    )
    .await
    .expect_code("BAD_USER_INPUT");
    app.gql(
        None,
        change,
        json!({ "c": "password-alice", "n": "a-new-password" }),
    )
    .await
    .expect_code("UNAUTHENTICATED");
    // Nothing changed by those.
    assert_eq!(
        viewer(&app, &fourth).await.data("/viewer/username"),
        "alice"
    );
    log_in(&app, "alice", "password-alice")
        .await
        .data("/logIn/token");

    let reply = app
        .gql(
            Some(&third),
            change,
            json!({ "c": "password-alice", "n": "a-new-password" }),
        )
        .await;
    let fifth = reply
        .data("/changePassword/token")
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reply.data("/changePassword/user/username"), "alice");
    assert_refused(&app, &third).await;
    assert_refused(&app, &fourth).await;
    assert_eq!(viewer(&app, &fifth).await.data("/viewer/username"), "alice");
    assert_eq!(viewer(&app, &api).await.data("/viewer/username"), "alice");
    log_in(&app, "alice", "password-alice")
        .await
        .expect_code("UNAUTHENTICATED");
    let sixth = log_in(&app, "alice", "a-new-password")
        .await
        .data("/logIn/token")
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(viewer(&app, &sixth).await.data("/viewer/username"), "alice");
    assert_eq!(viewer(&app, &fifth).await.data("/viewer/username"), "alice");
    app.stop().await;
}

async fn deleting_an_account(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    app.create_org(&alice, "acme").await;
    app.add_member(&alice, "acme", "bob", "MEMBER", Value::Null)
        .await
        .data("/addMember/member/role");
    app.create_dataset(&alice, None, "mine", true)
        .await
        .data("/createDataset/dataset/id");
    app.create_dataset(&alice, Some("acme"), "shared", false)
        .await
        .data("/createDataset/dataset/id");
    app.create_dataset(&bob, None, "bobs", false)
        .await
        .data("/createDataset/dataset/id");
    app.gql(
        Some(&bob),
        r#"mutation { addCollaborator(input: { dataset: "bob/bobs", username: "alice", role: VIEWER }) { collaborator { role } } }"#,
        json!({}),
    )
    .await
    .data("/addCollaborator/collaborator/role");
    let (api, _) = create_token(&app, &alice, &["READ"], None).await;
    let delete =
        "mutation($p: String!) { deleteAccount(input: { password: $p }) { deletedUserId } }";

    app.gql(Some(&alice), delete, json!({ "p": "wrong-password" }))
        .await
        .expect_code("UNAUTHENTICATED");
    let message = app
        .gql(Some(&alice), delete, json!({ "p": "password-alice" }))
        .await
        .expect_code("CONFLICT");
    assert!(message.contains("acme"), "{message}");
    // Nothing went.
    assert_eq!(viewer(&app, &alice).await.data("/viewer/username"), "alice");
    assert_eq!(dataset_names(&app, None, "alice").await, ["mine"]);

    app.update_member(&alice, "acme", "bob", "ADMIN")
        .await
        .data("/updateMember/member/role");
    let id = app
        .gql(Some(&alice), "{ viewer { id } }", json!({}))
        .await
        .data("/viewer/id")
        .clone();
    let reply = app
        .gql(Some(&alice), delete, json!({ "p": "password-alice" }))
        .await;
    assert_eq!(reply.data("/deleteAccount/deletedUserId"), &id);
    // Every credential of the account is dead; the account and its personal datasets are gone.
    assert_refused(&app, &alice).await;
    assert_refused(&app, &api).await;
    log_in(&app, "alice", "password-alice")
        .await
        .expect_code("UNAUTHENTICATED");
    let reply = app
        .gql(
            Some(&bob),
            r#"{ user(username: "alice") { id }
                 mine: dataset(fullName: "alice/mine") { id }
                 acme: organization(username: "acme") { members { nodes { user { username } role } } }
                 shared: dataset(fullName: "acme/shared") { collaborators { nodes { user { username } } } }
                 bobs: dataset(fullName: "bob/bobs") { collaborators { nodes { user { username } } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/user"), &Value::Null);
    assert_eq!(reply.data("/mine"), &Value::Null);
    assert_eq!(
        reply.data("/acme/members/nodes"),
        &json!([{ "user": { "username": "bob" }, "role": "ADMIN" }])
    );
    assert_eq!(reply.data("/shared/collaborators/nodes"), &json!([]));
    assert_eq!(
        reply.data("/bobs/collaborators/nodes"),
        &json!([{ "user": { "username": "bob" } }])
    );
    // The name and the email are free again.
    let again = app.sign_up("alice").await;
    assert_eq!(viewer(&app, &again).await.data("/viewer/username"), "alice");
    assert!(dataset_names(&app, Some(&again), "alice").await.is_empty());
    app.stop().await;
}

async fn revocation_reaches_every_instance_at_once(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let a = spawn_with(test_config(&db.url)).await;
    let b = spawn_with(test_config(&db.url)).await;
    let jwt = a.sign_up("alice").await;
    let (token, id) = create_token(&a, &jwt, &["READ"], None).await;
    let other = b
        .gql(None, "mutation { logIn(input: { username: \"alice\", password: \"password-alice\" }) { token } }", json!({}))
        .await
        .data("/logIn/token")
        .as_str()
        .unwrap()
        .to_owned();
    // Both instances have seen (and could remember) both credentials.
    for app in [&a, &b] {
        assert_eq!(viewer(app, &token).await.data("/viewer/username"), "alice");
        assert_eq!(viewer(app, &jwt).await.data("/viewer/username"), "alice");
    }
    revoke(&a, &jwt, &id)
        .await
        .data("/revokeApiToken/revokedApiTokenId");
    assert_refused(&b, &token).await;
    assert_refused(&a, &token).await;
    b.gql(
        Some(&other),
        "mutation { signOutEverywhere(input: {}) { user { username } } }",
        json!({}),
    )
    .await
    .data("/signOutEverywhere/user/username");
    assert_refused(&a, &jwt).await;
    assert_refused(&a, &other).await;
    assert_refused(&b, &jwt).await;
    a.stop().await;
    b.stop().await;
}

async fn last_used_at(app: &TestApp, jwt: &str) -> Value {
    app.gql(
        Some(jwt),
        "{ viewer { apiTokens { nodes { lastUsedAt } } } }",
        json!({}),
    )
    .await
    .data("/viewer/apiTokens/nodes/0/lastUsedAt")
    .clone()
}

/// Waits for the token's `lastUsedAt` (written off the request's path) to differ from `old`.
async fn last_used_at_after(app: &TestApp, jwt: &str, old: &Value) -> Value {
    for _ in 0..100 {
        let now = last_used_at(app, jwt).await;
        if &now != old {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("lastUsedAt stayed {old}");
}

async fn last_used_at_is_written_at_most_once_a_minute(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let jwt = app.sign_up("alice").await;
    let (token, _) = create_token(&app, &jwt, &["READ"], None).await;
    assert_eq!(last_used_at(&app, &jwt).await, Value::Null);
    let before = Utc::now() - chrono::Duration::seconds(1);
    viewer(&app, &token).await.data("/viewer/username");
    let first = last_used_at_after(&app, &jwt, &Value::Null).await;
    let at = chrono::DateTime::parse_from_rfc3339(first.as_str().unwrap()).unwrap();
    assert!(at >= before && at <= Utc::now(), "{at}");
    // Within the minute: used again and again, not written again.
    for _ in 0..5 {
        viewer(&app, &token).await.data("/viewer/username");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(last_used_at(&app, &jwt).await, first);
    // A minute later (moved back in the database), the next use writes it again.
    entity::api_token::Entity::update_many()
        .col_expr(
            entity::api_token::Column::LastUsedAt,
            Expr::val(Utc::now() - chrono::Duration::seconds(61)),
        )
        .exec(&app.state().db)
        .await
        .unwrap();
    let moved = last_used_at(&app, &jwt).await;
    viewer(&app, &token).await.data("/viewer/username");
    let second = last_used_at_after(&app, &jwt, &moved).await;
    let at = chrono::DateTime::parse_from_rfc3339(second.as_str().unwrap()).unwrap();
    assert!(at >= before, "{at}");
    app.stop().await;
}

/// The secret is in `createApiToken`'s payload and nowhere else: not in a later result, an
/// error, nor a log line at `debug`, through every path a token takes (use, failed use,
/// listing, revocation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_shows_once_and_never_in_logs() {
    let db = TestDatabase::create(&Backend::postgres().unwrap_or(Backend::Sqlite)).await;
    let server = ServerProcess::start_logging(&db.url, "debug").await;
    let app = server.client();
    let jwt = app.sign_up("alice").await;
    let reply = try_create(
        &app,
        &jwt,
        json!({ "name": "ci", "scopes": ["READ", "WRITE"] }),
    )
    .await;
    let secret = reply
        .data("/createApiToken/token")
        .as_str()
        .unwrap()
        .to_owned();
    let id = reply
        .data("/createApiToken/apiToken/id")
        .as_str()
        .unwrap()
        .to_owned();
    let hidden = &secret["orgql_pat_".len()..];
    let mut replies = vec![
        viewer(&app, &secret).await,
        app.create_dataset(&secret, None, "d", false).await,
        app.gql(
            Some(&secret),
            "{ viewer { apiTokens { nodes { id name scopes lastUsedAt } } } }",
            json!({}),
        )
        .await,
        app.gql(
            Some(&secret),
            r#"mutation { createApiToken(input: { name: "x", scopes: [READ] }) { token } }"#,
            json!({}),
        )
        .await,
        app.gql(Some(&secret), "{ nonsense }", json!({})).await,
        app.gql(
            Some(&jwt),
            "query($id: ID!) { node(id: $id) { ... on ApiToken { name } } }",
            json!({ "id": id }),
        )
        .await,
        revoke(&app, &jwt, &id).await,
    ];
    replies.push(viewer(&app, &secret).await);
    replies.push(viewer(&app, &format!("{secret}0")).await);
    for reply in &replies {
        assert!(!reply.raw.contains(hidden), "the secret in {}", reply.raw);
    }
    // Give the log a moment to be written out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = server.logs();
    assert!(logs.len() > 10, "the server logged at debug: {logs:?}");
    assert!(
        logs.iter()
            .any(|line| line.contains("createApiToken") || line.contains("/graphql")),
        "the requests are logged: {logs:?}"
    );
    for line in &logs {
        assert!(!line.contains(hidden), "the secret in a log line: {line}");
    }
    server.kill().await;
}
