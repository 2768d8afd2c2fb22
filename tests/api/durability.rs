//! Durability: every mutation that got a success answer survives a SIGKILL of the server.
//!
//! A real `orgql` process takes a stream of mutations from several concurrent clients
//! (sign-ups, organizations, members, datasets: creations, updates, deletions). After a
//! number of acknowledged answers it is killed with SIGKILL while other requests are in
//! flight, restarted on the same database, and every acknowledged mutation is checked to be
//! there. The requests in flight at the kill have unknown outcomes: each may or may not have
//! happened, and either is accepted.
//!
//! On SQLite this is crash safety of the process (WAL with `synchronous = NORMAL` keeps every
//! committed transaction across a process crash; an operating-system crash or power loss may
//! lose the last few, which this test cannot show). On PostgreSQL, a commit is acknowledged by
//! the server before orgql answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{Backend, ServerProcess, TestApp, TestDatabase};
use serde_json::{Value, json};
use tokio::sync::Notify;

on_both_databases!(every_acknowledged_mutation_survives_a_sigkill);

/// Concurrent clients.
const WORKERS: usize = 4;
/// Acknowledged answers (over all clients) after which the server is killed.
const KILL_AFTER: usize = 80;

/// What a mutation leaves behind, as observed afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// `user(username)`: "exists" or "absent".
    User(String),
    /// A membership's role (organization, user): "MEMBER", "ADMIN" or "absent".
    Member(String, String),
    /// A dataset (full name): "desc:<description>" or "absent".
    Dataset(String),
}

/// One request of the stream: token, document, variables, and its effect.
type Step<'a> = (Option<&'a str>, &'static str, Value, (Key, String));

/// What one client saw: its admin's token, the acknowledged effects in order, and the effect
/// of the request in flight when the server died (if any).
#[derive(Default)]
struct Ledger {
    token: Option<String>,
    acknowledged: Vec<(Key, String)>,
    in_flight: Option<(Key, String)>,
}

/// One client's stream of mutations. Each request's effect is written down as in flight
/// before it is sent and moved to acknowledged when its success answer arrives. The stream
/// ends at the first request that gets no answer (the server is gone).
struct Client {
    app: TestApp,
    ledger: Arc<Mutex<Ledger>>,
    acks: Arc<AtomicUsize>,
    kill: Arc<Notify>,
}

impl Client {
    /// Sends a mutation expected to succeed. `None` when the server did not answer.
    async fn send(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        effect: (Key, String),
    ) -> Option<Value> {
        self.ledger.lock().unwrap().in_flight = Some(effect.clone());
        let mut request = self
            .app
            .client
            .post(format!("{}/graphql", self.app.address))
            .timeout(Duration::from_secs(60))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        assert!(
            body.get("errors").is_none(),
            "a mutation of the stream failed before the kill: {body}"
        );
        {
            let mut ledger = self.ledger.lock().unwrap();
            ledger.in_flight = None;
            ledger.acknowledged.push(effect);
        }
        if self.acks.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
            self.kill.notify_one();
        }
        Some(body)
    }

    async fn run(self, w: usize) {
        let admin = format!("w{w}-admin");
        let Some(body) = self
            .send(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { token } }",
                json!({ "input": { "username": admin, "email": format!("{admin}@example.com"), "password": "password-123" } }),
                (Key::User(admin.clone()), "exists".into()),
            )
            .await
        else {
            return;
        };
        let token = body["data"]["signUp"]["token"].as_str().unwrap().to_owned();
        self.ledger.lock().unwrap().token = Some(token.clone());
        let token = Some(token.as_str());
        for i in 0.. {
            let user = format!("w{w}-u{i}");
            let org = format!("w{w}-org{i}");
            let org_set = format!("{org}/d{i}");
            let own_set = format!("{admin}/tmp{i}");
            let steps: Vec<Step> = vec![
                (
                    None,
                    "mutation($input: SignUpInput!) { signUp(input: $input) { token } }",
                    json!({ "input": { "username": user, "email": format!("{user}@example.com"), "password": "password-123" } }),
                    (Key::User(user.clone()), "exists".into()),
                ),
                (
                    token,
                    "mutation($o: String!) { createOrganization(input: { username: $o }) { organization { id } } }",
                    json!({ "o": org }),
                    (Key::Member(org.clone(), admin.clone()), "ADMIN".into()),
                ),
                (
                    token,
                    "mutation($o: String!, $u: String!) { addMember(input: { organization: $o, username: $u, defaultDatasetRole: VIEWER }) { member { role } } }",
                    json!({ "o": org, "u": user }),
                    (Key::Member(org.clone(), user.clone()), "MEMBER".into()),
                ),
                (
                    token,
                    "mutation($o: String!, $n: String!) { createDataset(input: { owner: $o, name: $n, public: true }) { dataset { id } } }",
                    json!({ "o": org, "n": format!("d{i}") }),
                    (Key::Dataset(org_set.clone()), "desc:".into()),
                ),
                (
                    token,
                    "mutation($d: String!, $t: String!) { updateDataset(input: { dataset: $d, description: $t }) { dataset { id } } }",
                    json!({ "d": org_set, "t": format!("rev-{i}") }),
                    (Key::Dataset(org_set.clone()), format!("desc:rev-{i}")),
                ),
                (
                    token,
                    "mutation($o: String!, $u: String!) { updateMember(input: { organization: $o, username: $u, role: ADMIN }) { member { role } } }",
                    json!({ "o": org, "u": user }),
                    (Key::Member(org.clone(), user.clone()), "ADMIN".into()),
                ),
                (
                    token,
                    "mutation($n: String!) { createDataset(input: { name: $n }) { dataset { id } } }",
                    json!({ "n": format!("tmp{i}") }),
                    (Key::Dataset(own_set.clone()), "desc:".into()),
                ),
                (
                    token,
                    "mutation($d: String!) { deleteDataset(input: { dataset: $d }) { deletedDatasetId } }",
                    json!({ "d": own_set }),
                    (Key::Dataset(own_set.clone()), "absent".into()),
                ),
                (
                    token,
                    "mutation($o: String!) { leaveOrganization(input: { organization: $o }) { organization { id } } }",
                    json!({ "o": org }),
                    (Key::Member(org.clone(), admin.clone()), "absent".into()),
                ),
            ];
            // The last step: the admin leaves the organization (the other member is an admin
            // by then), so each iteration works on a fresh organization.
            for (token, query, variables, effect) in steps {
                if self.send(token, query, variables, effect).await.is_none() {
                    return;
                }
            }
        }
    }
}

/// The observed value of `key` on the restarted server, as `w`'s admin sees it (memberships:
/// as the member sees their own). `tokens` caches log-ins (they are rate-limited per name).
async fn observe(
    app: &TestApp,
    token: &str,
    key: &Key,
    tokens: &mut HashMap<String, String>,
) -> String {
    match key {
        Key::User(name) => {
            let reply = app
                .gql(
                    None,
                    "query($u: String!) { user(username: $u) { username } }",
                    json!({ "u": name }),
                )
                .await;
            if reply.data("/user").is_null() {
                "absent".into()
            } else {
                "exists".into()
            }
        }
        Key::Member(org, user) => {
            // Ask as the member themself: their own memberships (the admin may have left).
            if !tokens.contains_key(user) {
                let reply = app
                    .gql(
                        None,
                        "mutation($u: String!) { logIn(input: { username: $u, password: \"password-123\" }) { token } }",
                        json!({ "u": user }),
                    )
                    .await;
                let own = reply.data("/logIn/token").as_str().unwrap().to_owned();
                tokens.insert(user.clone(), own);
            }
            let own = &tokens[user];
            let reply = app
                .gql(
                    Some(own),
                    "{ viewer { memberships { role organization { username } } } }",
                    json!({}),
                )
                .await;
            reply
                .data("/viewer/memberships")
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["organization"]["username"] == org.as_str())
                .map_or("absent".into(), |m| m["role"].as_str().unwrap().to_owned())
        }
        Key::Dataset(full_name) => {
            let reply = app
                .gql(
                    Some(token),
                    "query($d: String!) { dataset(fullName: $d) { description } }",
                    json!({ "d": full_name }),
                )
                .await;
            match reply.data("/dataset") {
                Value::Null => "absent".into(),
                dataset => format!("desc:{}", dataset["description"].as_str().unwrap()),
            }
        }
    }
}

async fn every_acknowledged_mutation_survives_a_sigkill(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let server = ServerProcess::start(&db.url).await;
    let acks = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(Notify::new());
    let ledgers: Vec<Arc<Mutex<Ledger>>> = (0..WORKERS).map(|_| Arc::default()).collect();
    let workers: Vec<_> = ledgers
        .iter()
        .enumerate()
        .map(|(w, ledger)| {
            let client = Client {
                app: TestApp::client_for(&server.address),
                ledger: ledger.clone(),
                acks: acks.clone(),
                kill: kill.clone(),
            };
            tokio::spawn(client.run(w))
        })
        .collect();

    tokio::time::timeout(Duration::from_secs(300), kill.notified())
        .await
        .expect("the stream reaches the kill point");
    server.kill().await;
    for worker in workers {
        worker.await.expect("a client of the stream");
    }
    let acknowledged = acks.load(Ordering::SeqCst);
    let in_flight = ledgers
        .iter()
        .filter(|l| l.lock().unwrap().in_flight.is_some())
        .count();
    eprintln!("killed after {acknowledged} acknowledged mutations, {in_flight} in flight");
    assert!(acknowledged >= KILL_AFTER);

    let server = ServerProcess::start(&db.url).await;
    let app = TestApp::client_for(&server.address);
    let mut checked = 0;
    let mut tokens = HashMap::new();
    for ledger in &ledgers {
        let (token, acknowledged, in_flight) = {
            let ledger = ledger.lock().unwrap();
            (
                ledger.token.clone(),
                ledger.acknowledged.clone(),
                ledger.in_flight.clone(),
            )
        };
        let Some(token) = token else {
            continue;
        };
        // The last acknowledged value of each key; the request in flight may have changed
        // it once more.
        let mut expected: HashMap<&Key, &str> = HashMap::new();
        for (key, value) in &acknowledged {
            expected.insert(key, value);
        }
        for (key, value) in expected {
            let observed = observe(&app, &token, key, &mut tokens).await;
            let in_flight_value = in_flight
                .as_ref()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str());
            assert!(
                observed == value || Some(observed.as_str()) == in_flight_value,
                "{key:?}: acknowledged {value:?} (in flight: {in_flight_value:?}), found {observed:?} after the restart"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} acknowledged effects checked after the restart");
    assert!(checked > 10, "only {checked} effects checked");
    drop(server);
}
