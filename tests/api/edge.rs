//! The HTTP edge as an outsider meets it: GraphQL over HTTP's media types and status codes,
//! no cross-site execution, tokens from the future, sign-in and sign-up limits shared by
//! instances on one database, one password operation per request, limits counted through
//! fragments, and the contract fixes an outside audit asked for.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::helpers::{
    Backend, Reply, TEST_SECRET, TestApp, TestDatabase, spawn_app, spawn_with, test_config,
};

on_both_databases!(
    media_types_and_status_codes_follow_graphql_over_http,
    posts_that_are_not_json_are_refused_and_never_run,
    tokens_from_the_future_or_too_long_lived_are_refused,
    password_guessing_is_limited_per_account_on_every_instance,
    sign_ups_are_limited_per_address_on_every_instance,
    a_request_runs_at_most_one_password_operation,
    limits_count_fragments_where_they_are_spread,
    members_who_are_not_admins_are_refused_before_anything_else,
    emails_with_letters_beyond_ascii_sign_up_and_log_in,
    later_fields_of_a_mutation_see_its_writes,
);

const GRJ: &str = "application/graphql-response+json";

/// A raw POST to `/graphql`: (status, content type, body as JSON or as text).
async fn post(
    app: &TestApp,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: &str,
) -> (u16, String, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

async fn user_exists(app: &TestApp, username: &str) -> bool {
    !app.gql(
        None,
        "query($u: String!) { user(username: $u) { id } }",
        json!({ "u": username }),
    )
    .await
    .data("/user")
    .is_null()
}

fn sign_up_body(username: &str) -> String {
    json!({
        "query": "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
        "variables": { "i": {
            "username": username,
            "email": format!("{username}@example.com"),
            "password": "password-long-enough",
        }},
    })
    .to_string()
}

async fn media_types_and_status_codes_follow_graphql_over_http(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let json = Some("application/json");
    let typename = r#"{"query":"{ __typename }"}"#;

    // The answer's type follows Accept; anything else, or nothing, is application/json.
    for (accept, want) in [
        (None, "application/json"),
        (Some("*/*"), "application/json"),
        (Some("application/json"), "application/json"),
        (Some("text/html"), "application/json"),
        (Some(GRJ), GRJ),
        (
            Some("application/graphql-response+json, application/json"),
            GRJ,
        ),
        (
            Some("application/json;q=1, application/graphql-response+json;q=0.5"),
            "application/json",
        ),
    ] {
        let (status, content_type, body) = post(&app, json, accept, typename).await;
        assert_eq!(status, 200, "{accept:?}");
        assert!(
            content_type.starts_with(want)
                && !(want == "application/json" && content_type.starts_with(GRJ)),
            "{accept:?}: {content_type}"
        );
        assert_eq!(body, json!({ "data": { "__typename": "Query" } }));
    }

    // Request errors: 400 without `data` under the spec's type, 200 under the legacy one.
    for (query, variables) in [
        ("{", json!(null)),
        ("{ noSuchField }", json!(null)),
        ("query($id: ID!) { __typename }", json!({ "id": null })),
    ] {
        let body = json!({ "query": query, "variables": variables }).to_string();
        for (accept, want) in [(GRJ, 400), ("application/json", 200)] {
            let (status, _, reply) = post(&app, json, Some(accept), &body).await;
            assert_eq!(status, want, "{query} as {accept}: {reply}");
            assert!(reply.get("data").is_none(), "{query}: {reply}");
            assert!(reply["errors"][0]["message"].is_string(), "{reply}");
        }
    }
    // A field error is not a request error: the request ran and has data.
    let (status, _, reply) = post(&app, json, Some(GRJ), r#"{"query":"{ viewer { id } }"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(reply["data"], Value::Null);
    assert_eq!(reply["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    // Not a GraphQL request at all: 400.
    for body in [
        "",
        "{ \"not JSON",
        r#"{"notquery":"{ __typename }"}"#,
        r#"{"query":0}"#,
        r#"{"query":["array"]}"#,
        r#"{"query":"{ __typename }","operationName":false}"#,
        r#"{"query":"{ __typename }","variables":"string"}"#,
        r#"{"query":"{ __typename }","variables":[1]}"#,
        r#"{"query":"{ __typename }","extensions":0}"#,
    ] {
        for accept in [None, Some(GRJ)] {
            let (status, _, reply) = post(&app, json, accept, body).await;
            assert_eq!(status, 400, "{body}: {reply}");
            assert_eq!(reply["errors"][0]["extensions"]["code"], "BAD_REQUEST");
        }
    }
    // Null parameters are as good as absent.
    let (status, _, reply) = post(
        &app,
        json,
        Some("application/json"),
        r#"{"query":"{ __typename }","operationName":null,"variables":null,"extensions":null}"#,
    )
    .await;
    assert_eq!(
        (status, reply),
        (200, json!({ "data": { "__typename": "Query" } }))
    );

    // GET: queries with their variables as JSON text; a mutation never runs.
    let get = |params: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let response = app
                .client
                .get(format!("{}/graphql", app.address))
                .query(&params)
                .header("accept", GRJ)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, reply) = get(vec![
        (
            "query",
            "query T($n: String!) { __type(name: $n) { name } }".into(),
        ),
        ("variables", r#"{"n":"Dataset"}"#.into()),
    ])
    .await;
    assert_eq!(
        (status, reply),
        (200, json!({ "data": { "__type": { "name": "Dataset" } } }))
    );
    let mutation = "mutation { signUp(input: { username: \"getter\", email: \"getter@example.com\", password: \"password-long\" }) { token } }";
    let (status, _) = get(vec![("query", mutation.into())]).await;
    assert_eq!(status, 405);
    let (status, _) = get(vec![
        ("query", "{ __typename }".into()),
        ("variables", "nope".into()),
    ])
    .await;
    assert_eq!(status, 400);
    assert!(!user_exists(&app, "getter").await);
    app.stop().await;
}

async fn posts_that_are_not_json_are_refused_and_never_run(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    for (n, content_type) in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=xyz"),
        Some("application/graphql"),
        Some("application/json; charset=iso-8859-1"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let username = format!("crosssite{n}");
        let (status, _, reply) = post(&app, content_type, None, &sign_up_body(&username)).await;
        assert_eq!(status, 415, "{content_type:?}: {reply}");
        assert_eq!(reply["errors"][0]["extensions"]["code"], "BAD_REQUEST");
        assert!(!user_exists(&app, &username).await, "{content_type:?} ran");
    }
    // JSON, with or without a charset, in any case, runs.
    for (n, content_type) in ["application/json", "Application/JSON; charset=UTF-8"]
        .into_iter()
        .enumerate()
    {
        let username = format!("samesite{n}");
        let (status, _, reply) =
            post(&app, Some(content_type), None, &sign_up_body(&username)).await;
        assert_eq!(status, 200, "{reply}");
        assert!(user_exists(&app, &username).await);
    }
    app.stop().await;
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn forge(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn viewer_with_header(app: &TestApp, authorization: &str) -> Reply {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("authorization", authorization)
        .json(&json!({ "query": "{ viewer { username } }" }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let raw = response.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&raw).unwrap(),
        raw,
    }
}

async fn tokens_from_the_future_or_too_long_lived_are_refused(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let token = app.sign_up("jane").await;
    // The user's account id, as tokens carry it.
    let sub = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entity::account::Entity::find()
            .filter(entity::account::Column::Username.eq("jane"))
            .one(&app.state().db)
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string()
    };
    let now = now();
    let day = 24 * 60 * 60;
    let claims = |iat: u64, exp: u64, nbf: Option<u64>| {
        let mut claims = json!({ "sub": sub, "iat": iat, "exp": exp, "iss": "orgql" });
        if let Some(nbf) = nbf {
            claims["nbf"] = json!(nbf);
        }
        forge(claims)
    };
    // Signed with the right secret, but no sane issuer made them.
    for (why, token) in [
        (
            "issued a week ahead, valid ten years",
            claims(now + 7 * day, now + 3650 * day, None),
        ),
        (
            "issued two minutes ahead",
            claims(now + 120, now + 120 + 3600, None),
        ),
        (
            "valid only from two minutes ahead",
            claims(now, now + 3600, Some(now + 120)),
        ),
        (
            "a lifetime of a day and a second",
            claims(now, now + day + 1, None),
        ),
    ] {
        let reply = viewer_with_header(&app, &format!("Bearer {token}")).await;
        assert_eq!(reply.code(), "UNAUTHENTICATED", "{why}: {}", reply.body);
        assert_eq!(reply.status, 401, "{why}");
    }
    // Within the clock skew and the lifetime: fine.
    for token in [
        claims(now + 30, now + 30 + day, None),
        claims(now, now + 60, Some(now + 30)),
    ] {
        let reply = viewer_with_header(&app, &format!("Bearer {token}")).await;
        assert_eq!(reply.data("/viewer/username"), "jane");
    }
    // The scheme in any case (RFC 7235), with any run of spaces after it.
    for scheme in ["Bearer ", "bearer ", "BEARER ", "bEaReR   "] {
        let reply = viewer_with_header(&app, &format!("{scheme}{token}")).await;
        assert_eq!(reply.data("/viewer/username"), "jane", "{scheme:?}");
    }
    for wrong in [
        format!("Token {token}"),
        format!("Bearer{token}"),
        token.clone(),
    ] {
        let reply = viewer_with_header(&app, &wrong).await;
        assert_eq!(reply.code(), "UNAUTHENTICATED", "{wrong}");
    }
    app.stop().await;
}

async fn log_in(app: &TestApp, login: &str, password: &str) -> Reply {
    app.gql(
        None,
        "mutation($u: String!, $p: String!) { logIn(input: { username: $u, password: $p }) { token } }",
        json!({ "u": login, "p": password }),
    )
    .await
}

/// Two servers on one database (two instances of one deployment), configured alike by
/// `configure`.
async fn two_instances(
    backend: &Backend,
    configure: impl Fn(&mut orgql::config::Config),
) -> (TestApp, TestApp, TestDatabase) {
    let db = TestDatabase::create(backend).await;
    let mut config = test_config(&db.url);
    configure(&mut config);
    let first = spawn_with(config.clone()).await;
    let second = spawn_with(config).await;
    (first, second, db)
}

async fn password_guessing_is_limited_per_account_on_every_instance(backend: Backend) {
    let (a, b, _db) = two_instances(&backend, |c| c.login_attempts_per_account = 4).await;
    a.sign_up("jane").await;
    b.sign_up("john").await;
    // Four guesses, alternating instances and spellings (username in any case, email).
    for (app, login) in [
        (&a, "jane"),
        (&b, "JANE"),
        (&a, "jane@example.com"),
        (&b, "Jane@Example.com"),
    ] {
        log_in(app, login, "wrong password")
            .await
            .expect_code("UNAUTHENTICATED");
    }
    // The account's allowance is spent on both: even the right password waits.
    for (app, login) in [(&a, "jane"), (&b, "jane@example.com")] {
        let message = log_in(app, login, "password-jane")
            .await
            .expect_code("RATE_LIMITED");
        assert!(message.contains("minute"), "{message}");
    }
    // Another account is not affected.
    log_in(&b, "john", "password-john")
        .await
        .data("/logIn/token");
    // An unknown login is limited by its own text too.
    for _ in 0..4 {
        log_in(&a, "nobody", "x")
            .await
            .expect_code("UNAUTHENTICATED");
    }
    log_in(&b, "NOBODY", "x").await.expect_code("RATE_LIMITED");
    a.stop().await;
    b.stop().await;
}

async fn sign_ups_are_limited_per_address_on_every_instance(backend: Backend) {
    let (a, b, _db) = two_instances(&backend, |c| c.sign_ups_per_address = 3).await;
    a.sign_up("one").await;
    b.sign_up("two").await;
    a.sign_up("three").await;
    for app in [&a, &b] {
        let (status, _, reply) =
            post(app, Some("application/json"), None, &sign_up_body("four")).await;
        assert_eq!(status, 200);
        assert_eq!(
            reply["errors"][0]["extensions"]["code"], "RATE_LIMITED",
            "{reply}"
        );
    }
    assert!(!user_exists(&a, "four").await);
    a.stop().await;
    b.stop().await;
}

async fn a_request_runs_at_most_one_password_operation(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let sign_up = |name: &str| {
        format!(
            "signUp(input: {{ username: \"{name}\", email: \"{name}@example.com\", password: \"password-long\" }}) {{ token }}"
        )
    };
    let refused = |reply: &Value| {
        assert_eq!(
            reply["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{reply}"
        );
        let message = reply["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("at most one"), "{message}");
        assert!(reply.get("data").is_none(), "{reply}");
    };
    // Aliases in one operation; a fragment spread twice; a batch; logIn with signUp.
    let documents = [
        format!("mutation {{ a: {} b: {} }}", sign_up("p1"), sign_up("p2")),
        format!(
            "mutation {{ ...S ...S }} fragment S on Mutation {{ {} }}",
            sign_up("p3")
        ),
        format!(
            "mutation {{ ... on Mutation {{ {} }} l: logIn(input: {{ username: \"x\", password: \"y\" }}) {{ token }} }}",
            sign_up("p4")
        ),
    ];
    for document in &documents {
        let body = json!({ "query": document }).to_string();
        let (status, _, reply) = post(&app, Some("application/json"), Some(GRJ), &body).await;
        assert_eq!(status, 400, "{document}");
        refused(&reply);
    }
    let batch = json!([
        { "query": format!("mutation {{ {} }}", sign_up("p5")) },
        { "query": format!("mutation {{ {} }}", sign_up("p6")) },
    ])
    .to_string();
    let (_, _, reply) = post(&app, Some("application/json"), None, &batch).await;
    refused(&reply);
    for name in ["p1", "p2", "p3", "p4", "p5", "p6"] {
        assert!(!user_exists(&app, name).await, "{name} ran");
    }
    // One password operation with other work beside it is fine, in a batch too.
    let batch = json!([
        { "query": format!("mutation {{ {} }}", sign_up("p7")) },
        { "query": "{ __typename }" },
    ])
    .to_string();
    let (status, _, reply) = post(&app, Some("application/json"), None, &batch).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply[0]["data"]["signUp"]["token"].is_string(), "{reply}");
    assert!(user_exists(&app, "p7").await);
    app.stop().await;
}

async fn limits_count_fragments_where_they_are_spread(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let token = app.sign_up("jane").await;
    app.create_org(&token, "acme").await;
    let users = |n: usize| -> String {
        (0..n)
            .map(|i| format!("f{i}: user(username: \"jane\") {{ id }} "))
            .collect()
    };
    let refused = |reply: &Reply, what: &str| {
        let message = reply.expect_code("GRAPHQL_VALIDATION_FAILED");
        assert!(message.contains(what), "{message}");
    };
    // Root fields: 28 in an inline fragment, against a limit of 20.
    let reply = app
        .gql(
            None,
            &format!("{{ ... on Query {{ {} }} }}", users(28)),
            json!({}),
        )
        .await;
    refused(&reply, "root fields");
    // 20 aliases, 12 root fields written out twice by a named fragment: 24 root fields.
    let reply = app
        .gql(
            None,
            &format!("{{ ...R ...R }} fragment R on Query {{ {} }}", users(12)),
            json!({}),
        )
        .await;
    refused(&reply, "root fields");
    // 30 sign-ups in an inline fragment of a mutation: refused, none ran.
    let sign_ups: String = (0..30)
        .map(|i| format!("s{i}: signUp(input: {{ username: \"s{i}\", email: \"s{i}@example.com\", password: \"password-long\" }}) {{ token }} "))
        .collect();
    let reply = app
        .gql(
            None,
            &format!("mutation {{ ... on Mutation {{ {sign_ups} }} }}"),
            json!({}),
        )
        .await;
    assert!(matches!(
        reply.code(),
        "GRAPHQL_VALIDATION_FAILED" | "BAD_USER_INPUT"
    ));
    assert!(!user_exists(&app, "s0").await);
    // Aliases: a fragment of 29 spread twice is 58, against a limit of 30.
    let aliases: String = (0..29).map(|i| format!("a{i}: username ")).collect();
    let reply = app
        .gql(
            None,
            &format!(
                "{{ user(username: \"jane\") {{ ...A ...A }} }} fragment A on User {{ {aliases} }}"
            ),
            json!({}),
        )
        .await;
    refused(&reply, "aliases");
    // Nested spreads: 4 aliases, spread 2 × 2 × 2 times = 32.
    let reply = app
        .gql(
            None,
            "{ user(username: \"jane\") { ...X ...X } }
             fragment X on User { ...Y ...Y }
             fragment Y on User { ...Z ...Z }
             fragment Z on User { a: username b: username c: id d: id }",
            json!({}),
        )
        .await;
    refused(&reply, "aliases");
    // A fragment bomb (2^40 copies) is counted, not walked: refused at once.
    let mut bomb = String::from("{ user(username: \"jane\") { ...F0 } } ");
    for i in 0..40 {
        bomb.push_str(&format!(
            "fragment F{i} on User {{ ...F{} ...F{} }} ",
            i + 1,
            i + 1
        ));
    }
    bomb.push_str("fragment F40 on User { a: id }");
    let started = std::time::Instant::now();
    let reply = app.gql(None, &bomb, json!({})).await;
    refused(&reply, "aliases");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Within the limits, fragments work as ever.
    let reply = app
        .gql(
            None,
            "{ ...R } fragment R on Query { user(username: \"jane\") { ...U } } fragment U on User { name: username }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/user/name"), "jane");
    // Depth and complexity count through fragments too.
    let deep = "{ viewer { ...M } }
        fragment M on User { memberships { organization { members { nodes { user { ...N } } } } } }
        fragment N on User { memberships { organization { members { nodes { user { ...O } } } } } }
        fragment O on User { memberships { organization { members { nodes { user { ...P } } } } } }
        fragment P on User { memberships { organization { members { nodes { user { username } } } } } }";
    app.gql(Some(&token), deep, json!({}))
        .await
        .expect_code("GRAPHQL_VALIDATION_FAILED");
    let wide = "{ organization(username: \"acme\") { ...M } }
        fragment M on Organization { members(first: 100) { nodes { user { ...D } } } }
        fragment D on User { datasets(first: 100) { nodes { collaborators(first: 100) { nodes { role } } } } }";
    let message = app
        .gql(Some(&token), wide, json!({}))
        .await
        .expect_code("GRAPHQL_VALIDATION_FAILED");
    assert!(message.to_lowercase().contains("complex"), "{message}");
    app.stop().await;
}

async fn members_who_are_not_admins_are_refused_before_anything_else(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let admin = app.sign_up("alice").await;
    let member = app.sign_up("bob").await;
    let outsider = app.sign_up("carol").await;
    app.create_org(&admin, "acme").await;
    app.add_member(&admin, "acme", "bob", "MEMBER", Value::Null)
        .await
        .data("/addMember");
    let update = |target: &str| {
        format!(
            "mutation {{ updateMember(input: {{ organization: \"acme\", username: \"{target}\", role: MEMBER }}) {{ member {{ role }} }} }}"
        )
    };
    let remove = |target: &str| {
        format!(
            "mutation {{ removeMember(input: {{ organization: \"acme\", username: \"{target}\" }}) {{ organization {{ id }} }} }}"
        )
    };
    let add = |target: &str| {
        format!(
            "mutation {{ addMember(input: {{ organization: \"acme\", username: \"{target}\" }}) {{ member {{ role }} }} }}"
        )
    };
    // alice is the last admin; "nobody" does not exist; carol is no member; bob is.
    for target in ["alice", "nobody", "carol", "bob"] {
        for query in [update(target), remove(target), add(target)] {
            for (who, token) in [("a MEMBER", &member), ("a non-member", &outsider)] {
                let reply = app.gql(Some(token), &query, json!({})).await;
                assert_eq!(
                    reply.codes(),
                    ["FORBIDDEN"],
                    "{who}: {query}: {}",
                    reply.body
                );
            }
            let reply = app.gql(None, &query, json!({})).await;
            assert_eq!(reply.codes(), ["UNAUTHENTICATED"], "{query}");
        }
    }
    for query in [
        "mutation { updateOrganization(input: { organization: \"acme\", displayName: \"x\" }) { organization { id } } }",
        "mutation { deleteOrganization(input: { organization: \"acme\" }) { deletedOrganizationId } }",
    ] {
        let reply = app.gql(Some(&member), query, json!({})).await;
        assert_eq!(reply.codes(), ["FORBIDDEN"], "{query}");
    }
    // The admin gets the honest answers.
    app.gql(Some(&admin), &update("alice"), json!({}))
        .await
        .expect_code("CONFLICT");
    app.gql(Some(&admin), &remove("nobody"), json!({}))
        .await
        .expect_code("NOT_FOUND");
    app.stop().await;
}

async fn emails_with_letters_beyond_ascii_sign_up_and_log_in(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let sign_up = |username: &str, email: &str| {
        app.gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { token user { username } } }",
            json!({ "i": { "username": username, "email": email, "password": "password-long" } }),
        )
    };
    let reply = sign_up("anna", "Äb@example.com").await;
    let token = reply.data("/signUp/token").as_str().unwrap().to_owned();
    let reply = app
        .gql(Some(&token), "{ viewer { email } }", json!({}))
        .await;
    assert_eq!(reply.data("/viewer/email"), "Äb@example.com");
    // ASCII letters compare in any case; others as they are.
    sign_up("anna2", "ÄB@EXAMPLE.COM")
        .await
        .expect_code("CONFLICT");
    let reply = sign_up("anna3", "äb@example.com").await;
    assert_eq!(reply.data("/signUp/user/username"), "anna3");
    log_in(&app, "Äb@Example.COM", "password-long")
        .await
        .data("/logIn/token");
    // Names stay ASCII: a clean refusal, never a server error.
    let reply = sign_up("Änna", "anna4@example.com").await;
    assert_eq!(reply.codes(), ["BAD_USER_INPUT"]);
    let token = app.sign_up("dora").await;
    let reply = app.create_dataset(&token, None, "straße", false).await;
    assert_eq!(reply.codes(), ["BAD_USER_INPUT"], "{}", reply.body);
    let reply = app
        .gql(
            Some(&token),
            "mutation { createOrganization(input: { username: \"Ärzte\" }) { organization { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.codes(), ["BAD_USER_INPUT"]);
    app.stop().await;
}

async fn later_fields_of_a_mutation_see_its_writes(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let alice = app.sign_up("alice").await;
    app.sign_up("bob").await;
    app.create_org(&alice, "acme").await;
    app.add_member(&alice, "acme", "bob", "ADMIN", Value::Null)
        .await
        .data("/addMember");
    // The first field reads alice's memberships (and her role in acme); the second makes
    // her leave; the third asks again.
    let reply = app
        .gql(
            Some(&alice),
            "mutation {
               a: updateMember(input: { organization: \"acme\", username: \"alice\", defaultDatasetRole: VIEWER }) {
                 member { user { memberships { role organization { viewerRole } } } } }
               b: leaveOrganization(input: { organization: \"acme\" }) {
                 organization { viewerRole } }
             }",
            json!({}),
        )
        .await;
    assert_eq!(
        reply.data("/a/member/user/memberships"),
        &json!([{ "role": "ADMIN", "organization": { "viewerRole": "ADMIN" } }])
    );
    assert_eq!(reply.data("/b/organization/viewerRole"), &Value::Null);
    // And the members' list is closed to her once she has left.
    let bob = log_in(&app, "bob", "password-bob")
        .await
        .data("/logIn/token")
        .as_str()
        .unwrap()
        .to_owned();
    app.add_member(&bob, "acme", "alice", "ADMIN", Value::Null)
        .await
        .data("/addMember");
    let reply = app
        .gql(
            Some(&alice),
            "mutation {
               a: updateMember(input: { organization: \"acme\", username: \"alice\", defaultDatasetRole: VIEWER }) {
                 member { user { memberships { organization { members { totalCount } } } } } }
               b: leaveOrganization(input: { organization: \"acme\" }) {
                 organization { members { totalCount } } }
             }",
            json!({}),
        )
        .await;
    assert_eq!(
        reply.body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{}",
        reply.body
    );
    assert_eq!(
        reply.body["errors"][0]["path"],
        json!(["b", "organization", "members"])
    );
    app.stop().await;
}
