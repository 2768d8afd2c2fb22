//! The foundation's story: sign up, log in, tokens and their attacks, name rules, restarts,
//! and what never leaks.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::helpers::{Backend, TEST_SECRET, TestDatabase, spawn_app, spawn_with, test_config};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const VIEWER: &str = "{ viewer { username email } }";

on_both_databases!(
    sign_up_then_viewer_and_log_in_by_username_or_email,
    wrong_credentials_are_unauthenticated,
    every_bad_token_is_unauthenticated,
    every_name_rule_is_bad_user_input,
    usernames_are_unique_across_users_and_organizations_in_any_case,
    racing_sign_ups_for_one_name_let_exactly_one_win,
    user_query_and_node,
    internal_errors_leak_nothing,
);

async fn sign_up_then_viewer_and_log_in_by_username_or_email(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let reply = app
        .gql(
            None,
            "mutation { signUp(input: { username: \"Jane-Doe\", email: \"Jane@Example.com\", password: \"correct horse\" }) { token user { username } } }",
            json!({}),
        )
        .await;
    let token = reply.data("/signUp/token").as_str().unwrap().to_owned();
    assert_eq!(reply.data("/signUp/user/username"), "Jane-Doe");

    let me = app.gql(Some(&token), VIEWER, json!({})).await;
    assert_eq!(me.data("/viewer/username"), "Jane-Doe");
    assert_eq!(me.data("/viewer/email"), "Jane@Example.com");

    for login in [
        "jane-doe",
        "JANE-DOE",
        "jane@example.com",
        "JANE@EXAMPLE.COM",
    ] {
        let reply = app
            .gql(
                None,
                "mutation($u: String!) { logIn(input: { username: $u, password: \"correct horse\" }) { token user { username } } }",
                json!({ "u": login }),
            )
            .await;
        assert_eq!(reply.data("/logIn/user/username"), "Jane-Doe", "{login}");
        let token = reply.data("/logIn/token").as_str().unwrap();
        let me = app.gql(Some(token), VIEWER, json!({})).await;
        assert_eq!(me.data("/viewer/username"), "Jane-Doe");
    }
    app.stop().await;
}

async fn wrong_credentials_are_unauthenticated(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    app.sign_up("jane").await;
    for (login, password) in [
        ("jane", "wrong password"),
        ("nobody", "password-jane"),
        ("nobody@example.com", "password-jane"),
    ] {
        let reply = app
            .gql(
                None,
                "mutation($u: String!, $p: String!) { logIn(input: { username: $u, password: $p }) { token } }",
                json!({ "u": login, "p": password }),
            )
            .await;
        let message = reply.expect_code("UNAUTHENTICATED");
        assert_eq!(message, "wrong username, email or password");
    }
    app.stop().await;
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn forge(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn every_bad_token_is_unauthenticated(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let good = app.sign_up("jane").await;
    let sub = {
        let payload = good.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sub"].as_str().unwrap().to_owned()
    };
    let t = now();
    let (header, payload, signature) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let tampered_payload = URL_SAFE_NO_PAD
        .encode(json!({ "sub": "999", "iat": t, "exp": t + 3600, "iss": "orgql" }).to_string());
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &json!({ "sub": sub, "iat": t, "exp": t + 3600, "iss": "orgql" }),
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap();
    let bad_tokens = [
        ("malformed", "not-a-jwt".to_owned()),
        ("empty", "".to_owned()),
        (
            "expired",
            forge(
                TEST_SECRET,
                json!({ "sub": sub, "iat": t - 7200, "exp": t - 3600, "iss": "orgql" }),
            ),
        ),
        (
            "tampered",
            format!("{header}.{tampered_payload}.{signature}"),
        ),
        (
            "wrongly signed",
            forge(
                "another-secret-another-secret-another",
                json!({ "sub": sub, "iat": t, "exp": t + 3600, "iss": "orgql" }),
            ),
        ),
        ("alg none", format!("{none_header}.{payload}.")),
        ("other algorithm", hs512),
        (
            "wrong issuer",
            forge(
                TEST_SECRET,
                json!({ "sub": sub, "iat": t, "exp": t + 3600, "iss": "someone-else" }),
            ),
        ),
        (
            "no exp",
            forge(TEST_SECRET, json!({ "sub": sub, "iat": t, "iss": "orgql" })),
        ),
    ];
    for (what, token) in bad_tokens {
        // Even a query anonymous users may run is refused: a bad token is never anonymous.
        for query in [VIEWER, "{ user(username: \"jane\") { username } }"] {
            let reply = app.gql(Some(&token), query, json!({})).await;
            assert_eq!(reply.code(), "UNAUTHENTICATED", "{what}: {}", reply.body);
            assert_eq!(reply.status, 401, "{what}");
        }
    }
    // Not "Bearer".
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("authorization", format!("Basic {good}"))
        .json(&json!({ "query": VIEWER }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // And no token at all where one is needed.
    app.gql(None, VIEWER, json!({}))
        .await
        .expect_code("UNAUTHENTICATED");
    // The good one still works.
    assert_eq!(
        app.gql(Some(&good), VIEWER, json!({}))
            .await
            .data("/viewer/username"),
        "jane"
    );
    app.stop().await;
}

async fn sign_up_reply(
    app: &crate::helpers::TestApp,
    username: &str,
    email: &str,
    password: &str,
) -> crate::helpers::Reply {
    app.gql(
        None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
        json!({ "i": { "username": username, "email": email, "password": password } }),
    )
    .await
}

async fn every_name_rule_is_bad_user_input(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let long = "x".repeat(40);
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("a", "a@example.com", "password1", "username"),
        (&long, "b@example.com", "password1", "username"),
        ("-ab", "c@example.com", "password1", "username"),
        ("ab-", "d@example.com", "password1", "username"),
        ("a b", "e@example.com", "password1", "username"),
        ("a.b", "f@example.com", "password1", "username"),
        ("jösé", "g@example.com", "password1", "username"),
        ("admin", "h@example.com", "password1", "username"),
        ("Settings", "i@example.com", "password1", "username"),
        ("okname", "not-an-email", "password1", "email"),
        ("okname", "a@b", "password1", "email"),
        ("okname", "ok@example.com", "short", "password"),
    ];
    let too_long_password = "p".repeat(129);
    let mut all = cases;
    all.push(("okname", "ok@example.com", &too_long_password, "password"));
    for (username, email, password, field) in all {
        let reply = sign_up_reply(&app, username, email, password).await;
        reply.expect_code("BAD_USER_INPUT");
        assert_eq!(
            reply.body["errors"][0]["extensions"]["field"], field,
            "{}",
            reply.body
        );
        assert!(
            reply.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with(field)
        );
    }
    // Nothing was stored: the name is still free.
    sign_up_reply(&app, "okname", "ok@example.com", "password1")
        .await
        .data("/signUp/token");
    app.stop().await;
}

async fn usernames_are_unique_across_users_and_organizations_in_any_case(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let token = app.sign_up("Jane").await;
    sign_up_reply(&app, "jane", "other@example.com", "password1")
        .await
        .expect_code("CONFLICT");
    sign_up_reply(&app, "JANE", "other@example.com", "password1")
        .await
        .expect_code("CONFLICT");
    // Same email in another case.
    sign_up_reply(&app, "other", "JANE@example.com", "password1")
        .await
        .expect_code("CONFLICT");
    app.create_org(&token, "Acme").await;
    sign_up_reply(&app, "acme", "acme@example.com", "password1")
        .await
        .expect_code("CONFLICT");
    app.gql(
        Some(&token),
        "mutation { createOrganization(input: { username: \"ACME\" }) { organization { id } } }",
        json!({}),
    )
    .await
    .expect_code("CONFLICT");
    app.gql(
        Some(&token),
        "mutation { createOrganization(input: { username: \"jAnE\" }) { organization { id } } }",
        json!({}),
    )
    .await
    .expect_code("CONFLICT");
    app.stop().await;
}

async fn racing_sign_ups_for_one_name_let_exactly_one_win(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let app = std::sync::Arc::new(app);
    let names = [
        "racer", "Racer", "RACER", "rAcer", "raCer", "racEr", "racER", "RAcer",
    ];
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let app = app.clone();
        let name = name.to_string();
        tasks.push(tokio::spawn(async move {
            sign_up_reply(&app, &name, &format!("racer{i}@example.com"), "password1").await
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
}

async fn user_query_and_node(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let jane = app.sign_up("jane").await;
    app.sign_up("john").await;
    let reply = app.gql(None, "{ user(username: \"JANE\") { id username email } nobody: user(username: \"nobody\") { id } }", json!({})).await;
    assert_eq!(reply.data("/user/username"), "jane");
    assert_eq!(
        reply.data("/user/email"),
        &Value::Null,
        "email is only for the user themself"
    );
    assert_eq!(reply.data("/nobody"), &Value::Null);
    let id = reply.data("/user/id").as_str().unwrap().to_owned();
    // Another user does not see the email either.
    let john = app.sign_up("someone").await;
    let reply = app
        .gql(
            Some(&john),
            "{ user(username: \"jane\") { email } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/user/email"), &Value::Null);
    let reply = app
        .gql(
            Some(&jane),
            "query($id: ID!) { node(id: $id) { id __typename ... on User { username email } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(reply.data("/node/username"), "jane");
    assert_eq!(reply.data("/node/email"), "jane@example.com");
    let reply = app
        .gql(None, "{ node(id: \"garbage\") { id } }", json!({}))
        .await;
    assert_eq!(reply.data("/node"), &Value::Null);
    app.stop().await;
}

const LEAKS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE ",
    "DELETE",
    "sqlx",
    "sea_orm",
    "SQLITE",
    "sqlite",
    "postgres",
    "panicked",
    "backtrace",
    "src/",
    ".rs:",
    TEST_SECRET,
    "argon2",
];

fn assert_no_leak(body: &Value) {
    let text = body.to_string();
    for leak in LEAKS {
        assert!(!text.contains(leak), "response leaks {leak:?}: {text}");
    }
}

async fn internal_errors_leak_nothing(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let token = app.sign_up("jane").await;
    // Break the database under the running server.
    use sea_orm::ConnectionTrait;
    app.state()
        .db
        .execute_unprepared("DROP TABLE membership")
        .await
        .unwrap();
    let reply = app
        .gql(
            Some(&token),
            "{ viewer { memberships { role } } }",
            json!({}),
        )
        .await;
    let message = reply.expect_code("INTERNAL_SERVER_ERROR");
    assert_eq!(message, "internal server error");
    assert_no_leak(&reply.body);
    // Every error the API gives stays clean.
    for (token, query) in [
        (None, "{ viewer { username } }"),
        (
            Some(token.as_str()),
            "mutation { createOrganization(input: { username: \"x\" }) { organization { id } } }",
        ),
        (None, "{ nope }"),
        (None, "{"),
    ] {
        let reply = app.gql(token, query, json!({})).await;
        assert!(reply.body.get("errors").is_some());
        assert_no_leak(&reply.body);
    }
    app.stop().await;
}

#[tokio::test]
async fn restart_keeps_accounts_and_tokens_on_the_same_sqlite_file() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    // No configured secret: the generated one must be kept in the database.
    let mut config = test_config(&db.url);
    config.jwt_secret = None;
    let app = spawn_with(config.clone()).await;
    let token = app.sign_up("jane").await;
    app.stop().await;

    let app = spawn_with(config).await;
    assert_eq!(
        app.gql(Some(&token), VIEWER, json!({}))
            .await
            .data("/viewer/username"),
        "jane"
    );
    let reply = app
        .gql(None, "mutation { logIn(input: { username: \"jane\", password: \"password-jane\" }) { token } }", json!({}))
        .await;
    reply.data("/logIn/token");
    app.stop().await;
}

#[tokio::test]
async fn schema_graphql_is_the_printed_schema() {
    let printed = orgql::schema::sdl();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists");
    assert!(
        printed == committed,
        "schema.graphql is out of date: regenerate it with `cargo run -- --print-schema > schema.graphql`"
    );
}

#[tokio::test]
async fn http_edge_health_graphiql_get_queries_and_no_mutations_over_get() {
    let (app, _db) = spawn_app(&Backend::Sqlite).await;
    let health = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for path in ["/", "/graphql"] {
        let page = app
            .client
            .get(format!("{}{path}", app.address))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("graphiql"), "{path}");
    }
    app.sign_up("jane").await;
    let get = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", "{ user(username: \"jane\") { username } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let body: Value = get.json().await.unwrap();
    assert_eq!(body["data"]["user"]["username"], "jane");

    let mutation = "mutation { signUp(input: { username: \"viaget\", email: \"g@example.com\", password: \"password1\" }) { token } }";
    let get = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", mutation)])
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let body: Value = get.json().await.unwrap();
    assert!(body["errors"][0]["extensions"]["code"].is_string());
    // It was never executed.
    let reply = app
        .gql(
            None,
            "{ user(username: \"viaget\") { username } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/user"), &Value::Null);

    // With the database gone, /health says so (503) and GraphQL answers a clean error.
    app.state().close().await;
    let health = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let reply = app
        .gql(None, "{ user(username: \"jane\") { username } }", json!({}))
        .await;
    reply.expect_code("INTERNAL_SERVER_ERROR");
    app.stop().await;
}
