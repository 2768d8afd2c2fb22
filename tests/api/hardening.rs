//! Hostile input: query limits (refused before anything runs), batch and body limits,
//! introspection switched off, JWT secret rules and key rotation.

use crate::helpers::{Backend, TEST_SECRET, TestDatabase, spawn_app, spawn_with, test_config};
use serde_json::{Value, json};

fn sign_up_fields(count: usize, prefix: &str) -> String {
    (0..count)
        .map(|i| {
            format!(
                "{prefix}{i}: signUp(input: {{ username: \"{prefix}{i}\", email: \"{prefix}{i}@example.com\", password: \"password1\" }}) {{ token }}"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn user_exists(app: &crate::helpers::TestApp, username: &str) -> bool {
    let reply = app
        .gql(
            None,
            "query($u: String!) { user(username: $u) { id } }",
            json!({ "u": username }),
        )
        .await;
    !reply.data("/user").is_null()
}

#[tokio::test]
async fn query_limits_refuse_before_anything_runs() {
    let (app, _db) = spawn_app(&Backend::Sqlite).await;
    let token = app.sign_up("jane").await;
    app.create_org(&token, "acme").await;

    // Too many root fields: 21 sign-ups in one mutation; none of them happened.
    let reply = app
        .gql(
            None,
            &format!("mutation {{ {} }}", sign_up_fields(21, "root")),
            json!({}),
        )
        .await;
    let message = reply.expect_code("GRAPHQL_VALIDATION_FAILED");
    assert!(message.contains("root fields"), "{message}");
    assert!(!user_exists(&app, "root0").await);

    // Too many aliases (31, across nested selections); nothing happened.
    let nested: String = (0..16).map(|i| format!("n{i}: username ")).collect();
    let query = format!(
        "mutation {{ {} }}",
        sign_up_fields(15, "alias")
            .replace("{ token }", &format!("{{ token user {{ {nested} }} }}"))
    );
    let reply = app.gql(None, &query, json!({})).await;
    let message = reply.expect_code("GRAPHQL_VALIDATION_FAILED");
    assert!(message.contains("aliases"), "{message}");
    assert!(!user_exists(&app, "alias0").await);

    // Introspection as GraphiQL and code generators send it (type references nest `ofType`
    // many levels deep) is within the limits.
    let type_ref = (0..10).fold("name".to_owned(), |inner, _| {
        format!("kind name ofType {{ {inner} }}")
    });
    let introspection = format!(
        "{{ __schema {{ queryType {{ name }} types {{ kind name fields(includeDeprecated: true) {{ name args {{ name type {{ {type_ref} }} }} type {{ {type_ref} }} }} }} }} }}"
    );
    app.gql(None, &introspection, json!({}))
        .await
        .data("/__schema/queryType");

    // Too deep.
    let deep = "{ viewer { memberships { organization { members { nodes { user { memberships { organization { members { nodes { user { memberships { organization { members { nodes { user { memberships { organization { members { nodes { user { memberships { role } } } } } } } } } } } } } } } } } } } } } } }";
    app.gql(Some(&token), deep, json!({}))
        .await
        .expect_code("GRAPHQL_VALIDATION_FAILED");

    // Too complex: 100 × 100 × 100 collaborators.
    let wide = "{ organization(username: \"acme\") { members(first: 100) { nodes { user { datasets(first: 100) { nodes { collaborators(first: 100) { nodes { role } } } } } } } } }";
    let message = app
        .gql(Some(&token), wide, json!({}))
        .await
        .expect_code("GRAPHQL_VALIDATION_FAILED");
    assert!(message.to_lowercase().contains("complex"), "{message}");
    // The same shape with small pages is fine.
    let narrow = wide.replace("first: 100", "first: 10");
    app.gql(Some(&token), &narrow, json!({}))
        .await
        .data("/organization");

    // Too large a document.
    let padding = " ".repeat(17 * 1024);
    let reply = app
        .gql(
            None,
            &format!("{{ user(username: \"jane\") {{ id }} }}{padding}"),
            json!({}),
        )
        .await;
    reply.expect_code("GRAPHQL_VALIDATION_FAILED");
    app.stop().await;
}

#[tokio::test]
async fn batches_and_bodies_are_bounded() {
    let (app, _db) = spawn_app(&Backend::Sqlite).await;
    let one = json!({ "query": "{ user(username: \"jane\") { id } }" });
    let ok = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&Value::Array(vec![one.clone(); 10]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<Value>().await.unwrap().as_array().unwrap().len(),
        10
    );

    // Eleven sign-ups in a batch: refused whole, none happened.
    let batch: Vec<Value> = (0..11)
        .map(|i| json!({ "query": format!("mutation {{ {} }}", sign_up_fields(1, &format!("batch{i}x"))) }))
        .collect();
    let refused = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&Value::Array(batch))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["errors"][0]["extensions"]["code"].is_string(),
        "{body}"
    );
    assert!(!user_exists(&app, "batch0x0").await);

    // A body over the limit: 413.
    let big = json!({ "query": "{ viewer { id } }", "variables": { "x": "y".repeat(70 * 1024) } });
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // Compression when asked for.
    let response = app
        .client
        .get(format!("{}/", app.address))
        .header("accept", "text/html")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    app.stop().await;
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let (app, _db) = spawn_app(&Backend::Sqlite).await;
    let reply = app
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(reply.data("/__schema/queryType/name"), "Query");
    app.stop().await;

    let db = TestDatabase::create(&Backend::Sqlite).await;
    let mut config = test_config(&db.url);
    config.disable_introspection = true;
    let app = spawn_with(config).await;
    let reply = app
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(
        reply.body.get("errors").is_some() || reply.body["data"]["__schema"].is_null(),
        "{}",
        reply.body
    );
    // No suggestions either.
    let reply = app
        .gql(None, "{ usr(username: \"x\") { id } }", json!({}))
        .await;
    assert!(
        !reply.body.to_string().contains("Did you mean"),
        "{}",
        reply.body
    );
    app.stop().await;
}

#[tokio::test]
async fn short_jwt_secrets_are_refused_at_start() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let mut config = test_config(&db.url);
    config.jwt_secret = Some("too-short".into());
    assert!(orgql::Application::build(&config).await.is_err());
    let mut config = test_config(&db.url);
    config.jwt_previous_secrets = vec!["short".into()];
    assert!(orgql::Application::build(&config).await.is_err());
}

#[tokio::test]
async fn rotated_keys_still_verify_old_tokens_and_sign_with_the_new_one() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let app = spawn_with(test_config(&db.url)).await;
    let old_token = app.sign_up("jane").await;
    app.stop().await;

    let new_secret = "a-brand-new-secret-that-is-also-long-enough-0123";
    let mut config = test_config(&db.url);
    config.jwt_secret = Some(new_secret.into());
    config.jwt_previous_secrets = vec![TEST_SECRET.into()];
    let app = spawn_with(config).await;
    let reply = app
        .gql(Some(&old_token), "{ viewer { username } }", json!({}))
        .await;
    assert_eq!(reply.data("/viewer/username"), "jane");
    let reply = app
        .gql(None, "mutation { logIn(input: { username: \"jane\", password: \"password-jane\" }) { token } }", json!({}))
        .await;
    let new_token = reply.data("/logIn/token").as_str().unwrap().to_owned();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&["orgql"]);
    let key = jsonwebtoken::DecodingKey::from_secret(new_secret.as_bytes());
    assert!(
        jsonwebtoken::decode::<Value>(&new_token, &key, &validation).is_ok(),
        "signed with the current secret"
    );
    app.stop().await;

    // Once the old secret is dropped from the list, its tokens stop working.
    let mut config = test_config(&db.url);
    config.jwt_secret = Some(new_secret.into());
    let app = spawn_with(config).await;
    app.gql(Some(&old_token), "{ viewer { username } }", json!({}))
        .await
        .expect_code("UNAUTHENTICATED");
    assert_eq!(
        app.gql(Some(&new_token), "{ viewer { username } }", json!({}))
            .await
            .data("/viewer/username"),
        "jane"
    );
    app.stop().await;
}

async fn log_in(
    app: &crate::helpers::TestApp,
    login: &str,
    password: &str,
) -> crate::helpers::Reply {
    app.gql(
        None,
        "mutation($u: String!, $p: String!) { logIn(input: { username: $u, password: $p }) { token } }",
        json!({ "u": login, "p": password }),
    )
    .await
}

#[tokio::test]
async fn log_in_is_rate_limited_per_account_and_per_address() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let mut config = test_config(&db.url);
    config.login_attempts_per_account = 3;
    config.login_attempts_per_address = 6;
    let app = spawn_with(config).await;
    app.sign_up("jane").await;
    app.sign_up("john").await;
    // The username in any case and the email share one allowance.
    for login in ["jane", "JANE@example.com", "Jane"] {
        log_in(&app, login, "wrong password")
            .await
            .expect_code("UNAUTHENTICATED");
    }
    // The fourth attempt is refused even with the right password, in any spelling.
    for login in ["JANE", "jane@EXAMPLE.com"] {
        log_in(&app, login, "password-jane")
            .await
            .expect_code("RATE_LIMITED");
    }
    // Another account is not affected...
    log_in(&app, "john", "password-john")
        .await
        .data("/logIn/token");
    // ...until the address has used its quota (6 attempts from 127.0.0.1).
    log_in(&app, "nobody1", "x")
        .await
        .expect_code("RATE_LIMITED");
    app.stop().await;
}

#[tokio::test]
async fn a_request_past_the_timeout_answers_a_coded_error_and_keeps_nothing() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let mut config = test_config(&db.url);
    config.request_timeout_seconds = 2;
    let app = spawn_with(config).await;
    let token = app.sign_up("jane").await;
    // Another process holds SQLite's write lock, so the mutation waits on it.
    let other = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    use sea_orm::TransactionTrait;
    let lock = other
        .begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let reply = app
        .gql(Some(&token), "mutation { createOrganization(input: { username: \"slow\" }) { organization { id } } }", json!({}))
        .await;
    assert_eq!(reply.code(), "INTERNAL_SERVER_ERROR", "{}", reply.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    lock.rollback().await.unwrap();
    // Nothing was kept, and the server goes on.
    let reply = app
        .gql(
            None,
            "{ organization(username: \"slow\") { id } }",
            json!({}),
        )
        .await;
    assert!(reply.data("/organization").is_null());
    app.stop().await;
}
