//! Hostile input: property tests over the validated newtypes, fuzzing of the request path
//! (random documents, variables and Authorization headers sent over HTTP to a running
//! server), and the cost of `logIn` for an unknown username.
//!
//! Case counts are modest on purpose (a few hundred HTTP requests in all) so the suite stays
//! fast; `PROPTEST_CASES` does not apply here, each runner sets its own count.

use std::time::{Duration, Instant};

use crate::helpers::{Backend, TEST_SECRET, TestApp, spawn_app};
use orgql::error::{ApiError, ApiResult};
use orgql::newtypes::{DatasetName, Email, Password, RESERVED_USERNAMES, Username};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------
// The newtypes: never panic; what they accept satisfies the rules; what they refuse is
// BAD_USER_INPUT naming the field. The oracles below restate API.md independently.
// ---------------------------------------------------------------------------------------

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Checks a refusal: BAD_USER_INPUT, naming `field`, with a message.
fn refused_as_bad_input<T>(result: ApiResult<T>, field: &str) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => Err(TestCaseError::fail("expected a refusal")),
        Err(error) => {
            prop_assert_eq!(error.code(), "BAD_USER_INPUT");
            match &error {
                ApiError::BadUserInput { field: f, message } => {
                    prop_assert_eq!(*f, field);
                    prop_assert!(!message.is_empty());
                }
                other => return Err(TestCaseError::fail(format!("not BadUserInput: {other:?}"))),
            }
            prop_assert!(error.to_string().starts_with(field));
            Ok(())
        }
    }
}

fn username_is_valid(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    (2..=39).contains(&s.chars().count())
        && s.chars().all(|c| alnum(c) || c == '-' || c == '_')
        && s.chars().next().is_some_and(alnum)
        && s.chars().last().is_some_and(alnum)
        && !RESERVED_USERNAMES.contains(&s.to_ascii_lowercase().as_str())
}

fn dataset_name_is_valid(s: &str) -> bool {
    (1..=100).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s != "."
        && s != ".."
}

/// Arbitrary text, and text close to the rules (the interesting boundary).
fn name_like(charset: &'static str, max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex(&format!("[{charset}]{{0,{max}}}")).unwrap(),
        proptest::string::string_regex(&format!("[ ./@é\\x00-\\x1f{charset}]{{0,{max}}}")).unwrap(),
        proptest::sample::select(RESERVED_USERNAMES.to_vec()).prop_flat_map(|r| {
            proptest::collection::vec(any::<bool>(), r.len()).prop_map(move |upper| {
                r.chars()
                    .zip(upper)
                    .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                    .collect()
            })
        }),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn usernames_are_accepted_exactly_when_valid(s in name_like("a-zA-Z0-9_-", 42)) {
        let result = Username::parse("username", &s);
        if username_is_valid(&s) {
            let name = result.expect("a valid username is accepted");
            prop_assert_eq!(name.as_str(), s.as_str());
            prop_assert_eq!(name.key(), s.to_ascii_lowercase());
        } else {
            refused_as_bad_input(result, "username")?;
        }
    }

    #[test]
    fn dataset_names_are_accepted_exactly_when_valid(s in name_like("a-zA-Z0-9_.-", 103)) {
        let result = DatasetName::parse("name", &s);
        if dataset_name_is_valid(&s) {
            let name = result.expect("a valid dataset name is accepted");
            prop_assert_eq!(name.as_str(), s.as_str());
            prop_assert_eq!(name.key(), s.to_ascii_lowercase());
        } else {
            refused_as_bad_input(result, "name")?;
        }
    }

    #[test]
    fn passwords_are_accepted_exactly_when_8_to_128_characters(
        s in prop_oneof![any::<String>(), "\\PC{0,140}", ".{6,10}", ".{126,130}"]
    ) {
        let result = Password::parse("password", &s);
        if (8..=128).contains(&s.chars().count()) {
            let password = result.expect("accepted");
            prop_assert_eq!(password.expose(), s.as_str());
        } else {
            refused_as_bad_input(result, "password")?;
        }
    }

    #[test]
    fn emails_accepted_satisfy_the_rules(
        s in prop_oneof![
            any::<String>(),
            "[a-zA-Z0-9.+_@ -]{0,30}",
            "[a-z0-9.+_-]{0,12}@[a-z0-9.-]{0,12}(\\.[a-z]{0,4})?",
            " ?[a-z]{1,8}@\\[[0-9.]{1,15}\\] ?",
            "[a-z]{1,250}@[a-z]{1,8}\\.com",
        ]
    ) {
        match Email::parse("email", &s) {
            Ok(email) => {
                let e = email.as_str();
                prop_assert_eq!(e, s.trim());
                prop_assert!(e.len() <= 254);
                let (local, domain) = e.rsplit_once('@').expect("an @");
                prop_assert!(!local.is_empty());
                prop_assert!(domain.contains('.') && !domain.starts_with('['));
                prop_assert!(!e.chars().any(char::is_whitespace));
                prop_assert_eq!(email.key(), e.to_lowercase());
            }
            Err(_) => refused_as_bad_input(Email::parse("email", &s), "email")?,
        }
    }

    #[test]
    fn ordinary_emails_are_accepted(
        local in "[a-z0-9]([a-z0-9._+-]{0,20}[a-z0-9])?",
        domain in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,10}){0,2}\\.[a-z]{2,6}",
    ) {
        prop_assume!(!local.contains(".."));
        let address = format!("{local}@{domain}");
        prop_assert!(Email::parse("email", &address).is_ok(), "{}", address);
    }
}

// ---------------------------------------------------------------------------------------
// The request path: random input through HTTP to a running server. Nothing panics, nothing
// answers 5xx, every error carries `extensions.code`, and the server is still healthy.
// ---------------------------------------------------------------------------------------

/// A server with a little world in it (a user, an organization, a dataset), a runtime to
/// drive requests from a synchronous proptest runner, and the user's token.
struct Target {
    rt: tokio::runtime::Runtime,
    app: Option<TestApp>,
    _db: crate::helpers::TestDatabase,
    token: String,
}

impl Target {
    fn start() -> Target {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, db, token) = rt.block_on(async {
            let (app, db) = spawn_app(&Backend::Sqlite).await;
            let token = app.sign_up("fuzzer").await;
            app.sign_up("other").await;
            app.create_org(&token, "acme").await;
            app.add_member(&token, "acme", "other", "MEMBER", json!("VIEWER"))
                .await
                .data("/addMember");
            app.create_dataset(&token, Some("acme"), "set", true)
                .await
                .data("/createDataset");
            (app, db, token)
        });
        Target {
            rt,
            app: Some(app),
            _db: db,
            token,
        }
    }

    fn app(&self) -> &TestApp {
        self.app.as_ref().unwrap()
    }

    /// POSTs `body` with `authorization` (if any); checks the answer.
    fn post(&self, body: &Value, authorization: Option<&str>) -> Result<(), TestCaseError> {
        let app = self.app();
        let (status, text) = self.rt.block_on(async {
            let mut request = app
                .client
                .post(format!("{}/graphql", app.address))
                .timeout(Duration::from_secs(60))
                .json(body);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        });
        well_formed_answer(status, &text).map_err(|e| {
            TestCaseError::fail(format!("{e}\nrequest: {body}\nauth: {authorization:?}"))
        })
    }

    fn healthy(&self) {
        let app = self.app();
        let status = self.rt.block_on(async {
            app.client
                .get(format!("{}/health", app.address))
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 200, "the server is still healthy after the fuzzing");
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            self.rt.block_on(app.stop());
        }
    }
}

/// No 5xx; a JSON GraphQL response; every error has a string `extensions.code`.
fn well_formed_answer(status: u16, text: &str) -> Result<(), String> {
    if status >= 500 {
        return Err(format!("status {status}: {text}"));
    }
    let body: Value =
        serde_json::from_str(text).map_err(|_| format!("status {status}, not JSON: {text}"))?;
    match body.get("errors") {
        Some(Value::Array(errors)) if !errors.is_empty() => {
            for error in errors {
                if !error["extensions"]["code"].is_string() {
                    return Err(format!("status {status}, an error without a code: {body}"));
                }
                if !error["message"].is_string() {
                    return Err(format!(
                        "status {status}, an error without a message: {body}"
                    ));
                }
            }
            Ok(())
        }
        Some(other) => Err(format!("status {status}, malformed errors {other}: {body}")),
        None if status == 200 && body.get("data").is_some() => Ok(()),
        None => Err(format!("status {status} without errors or data: {body}")),
    }
}

const VOCABULARY: &[&str] = &[
    "{",
    "}",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "!",
    "=",
    ",",
    "|",
    "&",
    "...",
    "$",
    "$a",
    "$input",
    "$a: Int",
    "$input: SignUpInput!",
    "@skip(if: true)",
    "@include(if: $a)",
    "@deprecated",
    "query",
    "query Q",
    "mutation",
    "mutation M",
    "subscription",
    "fragment F on User",
    "fragment F on Organization",
    "...F",
    "... on Organization",
    "... on User",
    "viewer",
    "user",
    "user(username: \"fuzzer\")",
    "organization",
    "organization(username: \"acme\")",
    "members",
    "members(first: 100)",
    "datasets",
    "dataset(fullName: \"acme/set\")",
    "collaborators",
    "node",
    "node(id: \"\")",
    "id",
    "__typename",
    "__schema",
    "__type(name: \"User\")",
    "types",
    "fields",
    "name",
    "username",
    "email",
    "memberships",
    "role",
    "viewerRole",
    "displayName",
    "fullName",
    "owner",
    "nodes",
    "edges",
    "cursor",
    "pageInfo",
    "endCursor",
    "hasNextPage",
    "totalCount",
    "first:",
    "after:",
    "first: -1",
    "first: 101",
    "first: 1e400",
    "after: \"x\"",
    "99999999999999999999",
    "-0",
    "0.5",
    "\"x\"",
    "\"acme\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\"\"block\"\"\"",
    "null",
    "true",
    "ADMIN",
    "signUp",
    "logIn",
    "createOrganization",
    "createDataset",
    "addMember",
    "removeMember",
    "leaveOrganization",
    "input:",
    "input: {}",
    "input: { username: \"x\", password: \"y\" }",
    "alias:",
    "a1: viewer",
    "#comment\n",
    "\n",
    "\t",
    "\u{feff}",
    "é",
    "\u{0}",
];

fn document() -> impl Strategy<Value = String> {
    let valid = proptest::sample::select(vec![
        "{ viewer { username email memberships { role organization { username } } } }",
        "{ organization(username: \"acme\") { members { nodes { role user { username } } } datasets { nodes { fullName collaborators { totalCount } } } } }",
        "mutation { createDataset(input: { owner: \"acme\", name: \"x\" }) { dataset { fullName } } }",
        "query Q($a: Int) { user(username: \"other\") { datasets(first: $a) { totalCount } } }",
        "{ __schema { types { name fields { name } } } }",
    ]);
    prop_oneof![
        2 => proptest::collection::vec(proptest::sample::select(VOCABULARY), 0..48)
            .prop_map(|tokens| tokens.join(" ")),
        1 => any::<String>(),
        2 => (valid, proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6))
            .prop_map(|(doc, edits)| {
                let mut chars: Vec<char> = doc.chars().collect();
                for (at, kind, c) in edits {
                    if chars.is_empty() {
                        chars.push(c);
                        continue;
                    }
                    let i = at.index(chars.len());
                    match kind {
                        0 => chars.insert(i, c),
                        1 => {
                            chars.remove(i);
                        }
                        _ => chars[i] = c,
                    }
                }
                chars.into_iter().collect()
            }),
    ]
}

/// Strings near the domain's values: names, emails, enum values, cursors, junk.
fn scalar_string() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "fuzzer",
            "other",
            "acme",
            "acme/set",
            "ADMIN",
            "MEMBER",
            "VIEWER",
            "LABELER",
            "MANAGER",
            "fuzzer@example.com",
            "",
            " ",
            "..",
            "admin",
            "YWNtZQ==",
            "bm9uZQ",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9_.@/-]{0,16}",
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(100),
            Just(101),
            Just(i32::MAX as i64 + 1)
        ]
        .prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        scalar_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec((field_name(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            "username", "email", "password", "owner", "name", "organization", "role",
            "defaultDatasetRole", "description", "public", "dataset", "newOwner", "displayName",
            "first", "after",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z_]{1,8}",
    ]
}

/// Operations that take variables; the variables are random.
const OPERATIONS: &[&str] = &[
    "query($u: String!) { user(username: $u) { username datasets(first: 5) { totalCount } } }",
    "query($f: String!) { dataset(fullName: $f) { fullName viewerRole } }",
    "query($id: ID!) { node(id: $id) { id __typename } }",
    "query($o: String!, $n: Int, $a: String) { organization(username: $o) { members(first: $n, after: $a) { totalCount edges { cursor } } datasets(first: $n, after: $a) { totalCount } } }",
    "mutation($input: CreateDatasetInput!) { createDataset(input: $input) { dataset { fullName } } }",
    "mutation($input: AddMemberInput!) { addMember(input: $input) { member { role } } }",
    "mutation($input: UpdateMemberInput!) { updateMember(input: $input) { member { role defaultDatasetRole } } }",
    "mutation($input: AddCollaboratorInput!) { addCollaborator(input: $input) { collaborator { role } } }",
    "mutation($input: UpdateDatasetInput!) { updateDataset(input: $input) { dataset { description public } } }",
    "mutation($input: TransferDatasetInput!) { transferDataset(input: $input) { dataset { fullName } } }",
    "mutation($input: CloneDatasetInput!) { cloneDataset(input: $input) { dataset { fullName } } }",
    "mutation($input: SignUpInput!) { signUp(input: $input) { token } }",
    "mutation($input: LogInInput!) { logIn(input: $input) { token } }",
];

fn variables() -> impl Strategy<Value = Value> {
    let object = proptest::collection::vec((field_name(), json_value()), 0..6)
        .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>()));
    prop_oneof![
        // Each variable a random value, `input` a random object.
        4 => (
            object,
            proptest::collection::vec((proptest::sample::select(vec!["u", "f", "id", "o", "n", "a", "zz"]), json_value()), 0..4),
        )
            .prop_map(|(input, others)| {
                let mut vars: Map<String, Value> =
                    others.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                vars.insert("input".into(), input);
                Value::Object(vars)
            }),
        // No variables at all.
        1 => Just(Value::Null),
        // Anything at all, including not an object.
        1 => json_value(),
    ]
}

#[test]
fn random_documents_never_crash_the_server() {
    let target = Target::start();
    let mut runner = TestRunner::new(config(120));
    let token = target.token.clone();
    runner
        .run(&(document(), any::<bool>()), |(query, signed_in)| {
            let auth = format!("Bearer {token}");
            target.post(
                &json!({ "query": query }),
                signed_in.then_some(auth.as_str()),
            )
        })
        .unwrap();
    target.healthy();
}

#[test]
fn random_variables_never_crash_the_server() {
    let target = Target::start();
    let mut runner = TestRunner::new(config(120));
    let token = target.token.clone();
    runner
        .run(
            &(
                proptest::sample::select(OPERATIONS),
                variables(),
                any::<bool>(),
            ),
            |(query, variables, signed_in)| {
                let auth = format!("Bearer {token}");
                target.post(
                    &json!({ "query": query, "variables": variables }),
                    signed_in.then_some(auth.as_str()),
                )
            },
        )
        .unwrap();
    target.healthy();
}

/// A JSON body that is not a GraphQL request (`variables` not an object, `query` not a
/// string, no query, not an object) is refused like every other bad request: a GraphQL error
/// with a code (it was a plain-text 400 carrying serde's message until db20bf9).
#[test]
fn a_body_that_is_not_a_graphql_request_answers_a_coded_error() {
    let target = Target::start();
    for body in [
        json!({ "query": "{ viewer { id } }", "variables": false }),
        json!({ "query": 5 }),
        json!({ "nothing": "here" }),
        json!("a string"),
        json!([]),
        json!([{ "query": "{ viewer { id } }", "variables": 1 }]),
    ] {
        target.post(&body, None).unwrap();
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Authorization header values: junk, bearer junk, a valid token mangled, forged tokens
/// (`alg` none or foreign, or properly signed with our secret but odd claims).
fn authorization(valid_token: String) -> impl Strategy<Value = String> {
    let header_text = "[\\x20-\\x7e\\t]{0,80}";
    let mangled = (
        Just(valid_token),
        proptest::collection::vec((any::<prop::sample::Index>(), "[A-Za-z0-9._=-]"), 1..4),
    )
        .prop_map(|(token, edits)| {
            let mut chars: Vec<char> = token.chars().collect();
            for (at, c) in edits {
                let i = at.index(chars.len());
                chars[i] = c.chars().next().unwrap();
            }
            format!("Bearer {}", chars.into_iter().collect::<String>())
        });
    let claims = || {
        (
            prop_oneof![
                json_value(),
                any::<i64>().prop_map(|n| json!(n.to_string())),
                Just(json!("1"))
            ],
            prop_oneof![json_value(), Just(json!(4_000_000_000u64)), Just(json!(1))],
            prop_oneof![json_value(), Just(json!("orgql"))],
            prop_oneof![json_value(), Just(json!(0))],
        )
            .prop_map(
                |(sub, exp, iss, iat)| json!({ "sub": sub, "exp": exp, "iss": iss, "iat": iat }),
            )
    };
    let signed = (
        proptest::sample::select(vec![
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::Algorithm::HS384,
            jsonwebtoken::Algorithm::HS512,
        ]),
        claims(),
    )
        .prop_map(|(alg, claims)| {
            let key = jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes());
            let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key)
                .expect("HMAC signs anything");
            format!("Bearer {token}")
        });
    let unsigned = (
        proptest::sample::select(vec!["none", "None", "HS256", "RS256", "ES256", ""]),
        claims(),
        "[A-Za-z0-9_-]{0,43}",
    )
        .prop_map(|(alg, claims, sig)| {
            let header = json!({ "alg": alg, "typ": "JWT" }).to_string();
            format!(
                "Bearer {}.{}.{sig}",
                b64(header.as_bytes()),
                b64(claims.to_string().as_bytes())
            )
        });
    prop_oneof![
        proptest::string::string_regex(header_text).unwrap(),
        proptest::string::string_regex(header_text)
            .unwrap()
            .prop_map(|s| format!("Bearer {s}")),
        mangled,
        signed,
        unsigned,
        proptest::sample::select(vec![
            "Bearer",
            "Bearer ",
            "bearer",
            "Basic Zm9vOmJhcg==",
            ""
        ])
        .prop_map(str::to_owned),
    ]
}

#[test]
fn random_tokens_never_crash_the_server() {
    let target = Target::start();
    let mut runner = TestRunner::new(config(120));
    let queries = vec![
        "{ viewer { username memberships { role } } }",
        "{ user(username: \"fuzzer\") { email } }",
        "mutation { createDataset(input: { name: \"tok\" }) { dataset { fullName } } }",
    ];
    runner
        .run(
            &(
                authorization(target.token.clone()),
                proptest::sample::select(queries),
            ),
            |(auth, query)| {
                // Values a client cannot even send (reqwest refuses them) are out of scope.
                if reqwest::header::HeaderValue::from_str(&auth).is_err() {
                    return Ok(());
                }
                target.post(&json!({ "query": query }), Some(&auth))
            },
        )
        .unwrap();
    target.healthy();
}

// ---------------------------------------------------------------------------------------
// logIn for an unknown username costs the same argon2 work as for a known one.
// ---------------------------------------------------------------------------------------

/// The algorithm, version and parameters (m, t, p) of an argon2 PHC string.
fn argon2_params(phc: &str) -> (String, Option<u32>, String) {
    let parsed = argon2::password_hash::PasswordHash::new(phc).expect("a PHC string");
    (
        parsed.algorithm.to_string(),
        parsed.version,
        parsed.params.to_string(),
    )
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Three checks, from structural to behavioural, none of which compares two close wall-clock
/// times (that would flake on a busy 2-core machine):
///
/// 1. Structure: the dummy hash that unknown accounts are checked against is an argon2 hash
///    with exactly the algorithm, version and parameters (m, t, p) of a real user's stored
///    hash, so verifying it is the same work.
/// 2. It really runs: `accounts::log_in` for an unknown name, given a deliberately expensive
///    dummy hash (t = 60), takes at least ten times as long as with a cheap one (t = 1), by
///    username and by email. If the dummy were skipped both would be a database lookup. The
///    expected ratio is ~60× and the runs are interleaved, so the factor of 10 leaves a wide
///    margin either way.
/// 3. Over HTTP: the median of several `logIn`s for an unknown name is within a factor of 4
///    of the median for a known name with a wrong password (both one argon2 verification;
///    without the dummy the unknown one would be ~100× faster).
#[test]
fn log_in_for_an_unknown_user_costs_one_argon2_verification() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (app, _db) = spawn_app(&Backend::Sqlite).await;
        app.sign_up("known").await;
        let state = app.state().clone();

        // 1. Same algorithm and parameters as a stored hash.
        use sea_orm::EntityTrait;
        let stored = entity::user_account::Entity::find()
            .one(&state.db)
            .await
            .unwrap()
            .expect("the user's row")
            .password_hash;
        assert_eq!(argon2_params(&state.dummy_hash), argon2_params(&stored));
        assert_ne!(state.dummy_hash, stored);

        // 2. The dummy's cost is what an unknown login pays.
        let hash_with = |t_cost: u32| {
            let params = argon2::Params::new(8 * 1024, t_cost, 1, None).unwrap();
            let argon = argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                params,
            );
            use argon2::password_hash::{PasswordHasher, SaltString};
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            argon.hash_password(b"whatever", &salt).unwrap().to_string()
        };
        let (cheap, dear) = (hash_with(1), hash_with(60));
        let time_unknown = |dummy: String, login: &'static str| {
            let db = state.db.clone();
            let limits = state.rate_limits.clone();
            async move {
                let started = Instant::now();
                let result =
                    orgql::accounts::log_in(&db, &limits, None, &dummy, login, "password").await;
                assert_eq!(result.unwrap_err().code(), "UNAUTHENTICATED");
                started.elapsed()
            }
        };
        // Interleaved, so that load on the machine falls on all three alike.
        let (mut cheap_runs, mut dear_runs, mut dear_email_runs) = (vec![], vec![], vec![]);
        for _ in 0..3 {
            cheap_runs.push(time_unknown(cheap.clone(), "nobody-here").await);
            dear_runs.push(time_unknown(dear.clone(), "nobody-here").await);
            dear_email_runs.push(time_unknown(dear.clone(), "nobody@example.com").await);
        }
        let cheap_median = median(cheap_runs);
        for (runs, path) in [(dear_runs, "username"), (dear_email_runs, "email")] {
            let dear_median = median(runs);
            assert!(
                dear_median > cheap_median * 10,
                "an unknown login ({path}) must verify the dummy hash: t=1 took {cheap_median:?}, t=60 took {dear_median:?}"
            );
        }

        // 3. Over HTTP, unknown and known-with-wrong-password cost about the same.
        let log_in = |login: String| {
            let app = &app;
            async move {
                let started = Instant::now();
                let reply = app
                    .gql(
                        None,
                        "mutation($u: String!) { logIn(input: { username: $u, password: \"wrong-password\" }) { token } }",
                        json!({ "u": login }),
                    )
                    .await;
                reply.expect_code("UNAUTHENTICATED");
                started.elapsed()
            }
        };
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for i in 0..7 {
            known.push(log_in("known".into()).await);
            unknown.push(log_in(format!("ghost-{i}")).await);
        }
        let (known, unknown) = (median(known), median(unknown));
        assert!(
            unknown * 4 > known && known * 4 > unknown,
            "median logIn: known {known:?}, unknown {unknown:?}"
        );
        app.stop().await;
    });
}
