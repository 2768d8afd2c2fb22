//! What single-page apps and first-time users need: CORS, automatic persisted queries,
//! repeated documents kept parsed, and the demo world.

use crate::helpers::{Backend, TestDatabase, spawn_app, spawn_with, test_config};
use serde_json::{Value, json};

#[tokio::test]
async fn cors_allows_configured_origins_and_answers_preflight() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let mut config = test_config(&db.url);
    config.cors_origins = vec!["https://app.example.com".into()];
    let app = spawn_with(config).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert!(allowed.status().is_success());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allow_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allow_headers.contains("authorization") && allow_headers.contains("content-type"));

    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // An actual cross-origin request carries the header too.
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", "https://app.example.com")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    app.stop().await;

    // Without configuration there is no cross-origin access.
    let (app, _db) = spawn_app(&Backend::Sqlite).await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", "https://app.example.com")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    app.stop().await;
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn automatic_persisted_queries_over_post_and_get() {
    let (app, _db) = spawn_app(&Backend::Sqlite).await;
    app.sign_up("jane").await;
    let query = "{ user(username: \"jane\") { username } }";
    let hash = sha256_hex(query);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let post = |body: Value| {
        app.client
            .post(format!("{}/graphql", app.address))
            .json(&body)
            .send()
    };
    // Unknown hash: the client is told to send the query.
    let body: Value = post(json!({ "extensions": extensions }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );
    // With the query, it is registered and answered.
    let body: Value = post(json!({ "query": query, "extensions": extensions }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["user"]["username"], "jane");
    // Now the hash alone is enough, over POST and over GET.
    let body: Value = post(json!({ "extensions": extensions }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["user"]["username"], "jane");
    let body: Value = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("extensions", extensions.to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["user"]["username"], "jane", "{body}");

    // A persisted mutation is never executed over GET.
    // Registered by a POST that fails (a bad password), so nothing is created yet.
    let bad = "mutation { signUp(input: { username: \"apq\", email: \"apq@example.com\", password: \"short\" }) { token } }";
    let bad_ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(bad) } });
    let body: Value = post(json!({ "query": bad, "extensions": bad_ext }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("extensions", bad_ext.to_string())])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_demo_world_has_every_role_and_tokens_that_work() {
    let (app, _db) = spawn_app(&Backend::Sqlite).await;
    let tokens = orgql::demo::seed(app.state())
        .await
        .unwrap()
        .expect("seeded an empty database");
    let names: Vec<&str> = tokens.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, orgql::demo::DEMO_USERS);
    // A second seeding changes nothing.
    assert!(orgql::demo::seed(app.state()).await.unwrap().is_none());

    let token = |name: &str| tokens.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let reply = app
        .gql(Some(&token("ada")), "{ viewer { username memberships { role organization { username members(first: 100) { nodes { role defaultDatasetRole } } datasets { nodes { fullName collaborators { nodes { role } } } } } } } }", json!({}))
        .await;
    assert_eq!(reply.data("/viewer/username"), "ada");
    let text = reply.body.to_string();
    for role in [
        "\"MEMBER\"",
        "\"ADMIN\"",
        "\"VIEWER\"",
        "\"LABELER\"",
        "\"REVIEWER\"",
        "\"MANAGER\"",
    ] {
        assert!(text.contains(role), "{role} in use: {text}");
    }
    // The demo password works too.
    let reply = app
        .gql(None, "mutation { logIn(input: { username: \"finn\", password: \"demo-password\" }) { user { username } } }", json!({}))
        .await;
    assert_eq!(reply.data("/logIn/user/username"), "finn");
    let reply = app
        .gql(
            Some(&token("finn")),
            "{ dataset(fullName: \"globex/parts-inspection\") { viewerRole } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/dataset/viewerRole"), "MANAGER");
    app.stop().await;
}

/// POSTs `query` as operation `operation` (if any) with `variables`, as `token`.
async fn operation(
    app: &crate::helpers::TestApp,
    token: &str,
    query: &str,
    operation: Option<&str>,
    variables: Value,
) -> Value {
    let mut body = json!({ "query": query, "variables": variables });
    if let Some(name) = operation {
        body["operationName"] = json!(name);
    }
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    response.json().await.expect("a JSON answer")
}

/// Repeated documents are kept parsed (`--parsed-cache-size`), with the requests that
/// validated (so the same request again skips the validation rules), and a kept document
/// still answers each request by that request's own variables, `@include`/`@skip`,
/// operation name, validation and limits, with the cache on and off alike.
#[tokio::test]
async fn a_repeated_document_answers_each_request_by_its_own_variables() {
    for cache_size in [256, 0] {
        let db = TestDatabase::create(&Backend::Sqlite).await;
        let mut config = test_config(&db.url);
        config.parsed_cache_size = cache_size;
        let app = spawn_with(config).await;
        let token = app.sign_up("jane").await;
        app.sign_up("john").await;
        let document = "query Someone($u: String!, $more: Boolean!) {
  user(username: $u) { username email @include(if: $more) createdAt @skip(if: $more) }
}
query Me { viewer { username } }
query TooMany { viewer { username datasets(first: 101) { totalCount } } }";
        for round in 0..3 {
            let context = format!("cache {cache_size}, round {round}");
            let jane = operation(
                &app,
                &token,
                document,
                Some("Someone"),
                json!({ "u": "jane", "more": true }),
            )
            .await;
            assert_eq!(
                jane,
                json!({ "data": { "user": { "username": "jane", "email": "jane@example.com" } } }),
                "{context}"
            );
            let john = operation(
                &app,
                &token,
                document,
                Some("Someone"),
                json!({ "u": "john", "more": false }),
            )
            .await;
            assert_eq!(john["data"]["user"]["username"], "john", "{context}");
            assert!(john["data"]["user"]["createdAt"].is_string(), "{context}");
            assert!(john["data"]["user"].get("email").is_none(), "{context}");
            let me = operation(&app, &token, document, Some("Me"), json!({})).await;
            assert_eq!(
                me,
                json!({ "data": { "viewer": { "username": "jane" } } }),
                "{context}"
            );
            // A field's error (it has a `path`): the same answer every round, though from
            // the second round on the request is known to validate.
            let too_many = operation(&app, &token, document, Some("TooMany"), json!({})).await;
            assert_eq!(
                too_many["data"]["viewer"]["username"], "jane",
                "{context}: {too_many}"
            );
            assert!(
                too_many["data"]["viewer"]["datasets"].is_null(),
                "{context}: {too_many}"
            );
            assert_eq!(
                too_many["errors"][0]["path"],
                json!(["viewer", "datasets"]),
                "{context}: {too_many}"
            );
            assert_eq!(
                too_many["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{context}: {too_many}"
            );

            // Still refused per request: a missing variable, a variable of the wrong type
            // (the request that validated had the same document and operation), no
            // operation name for a two-operation document, an unknown field, and a document
            // that does not parse.
            let missing = operation(&app, &token, document, Some("Someone"), json!({})).await;
            assert_eq!(
                missing["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{context}: {missing}"
            );
            let mistyped = operation(
                &app,
                &token,
                document,
                Some("Someone"),
                json!({ "u": 5, "more": true }),
            )
            .await;
            assert!(mistyped.get("data").is_none_or(Value::is_null), "{context}");
            assert_eq!(
                mistyped["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{context}: {mistyped}"
            );
            assert!(
                mistyped["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Invalid value for argument")),
                "{context}: {mistyped}"
            );
            let unnamed = operation(&app, &token, document, None, json!({})).await;
            assert!(unnamed.get("data").is_none_or(Value::is_null), "{context}");
            assert!(
                unnamed["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Operation name required")),
                "{context}: {unnamed}"
            );
            let unknown = operation(&app, &token, "{ viewer { shoeSize } }", None, json!({})).await;
            assert_eq!(
                unknown["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
                "{context}: {unknown}"
            );
            let broken = operation(&app, &token, "{ viewer { ", None, json!({})).await;
            assert_eq!(
                broken["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
                "{context}: {broken}"
            );
        }
        app.stop().await;
    }
}
