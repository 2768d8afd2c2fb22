//! Live updates: subscriptions over `graphql-transport-ws` and `graphql-sse`, fed by the audit
//! log. On one instance (both databases): who gets which event, in order, once; access checked
//! at subscribe time and for every event (a removed member's subscription ends with
//! `FORBIDDEN`); the transports' limits. On two instances sharing PostgreSQL: events of
//! mutations sent to one reach subscribers of the other, also across a lost `LISTEN`
//! connection; a revoked token, `signOutEverywhere` or a removal sent to one ends a
//! subscription on the other.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{Backend, ServerProcess, TestApp, TestDatabase, spawn_with, test_config};

on_both_databases!(
    subscribers_get_what_they_may_see_in_order,
    a_removed_member_s_subscription_ends_with_forbidden,
    subscribing_is_checked_and_limited,
);

/// How long a test waits for one message.
const PATIENCE: Duration = Duration::from_secs(15);

/// A `graphql-transport-ws` client.
pub struct Ws {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    /// Connects to `address` (`http://…`) without initialising.
    pub async fn open(address: &str) -> Ws {
        let url = format!("{}/graphql", address.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Ws { socket }
    }

    /// Connects and initialises with `token` (none: anonymous); expects `connection_ack`.
    pub async fn connect(address: &str, token: Option<&str>) -> Ws {
        let mut ws = Ws::open(address).await;
        let payload = match token {
            Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = ws.next().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// Starts operation `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "id": id, "type": "subscribe",
            "payload": { "query": query, "variables": variables }
        }))
        .await;
    }

    /// The next protocol message (pings answered and skipped); `{"closed": code}` when the
    /// server closes.
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a message in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return value;
                }
                Some(Ok(Message::Close(frame))) => {
                    return json!({ "closed": frame.map(|f| u16::from(f.code)) });
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return json!({ "closed": null }),
            }
        }
    }

    /// Nothing arrives within `wait` (pings aside).
    pub async fn quiet(&mut self, wait: Duration) {
        if let Ok(message) = tokio::time::timeout(wait, self.next()).await {
            panic!("expected nothing, got {message}");
        }
    }
}

const ORG_EVENTS: &str = "subscription($o: String!) { organizationEvents(organization: $o) { action actorUsername subjectUsername datasetFullName role previousRole organization { username } } }";
/// As [`ORG_EVENTS`], only fields of the event itself: its events are rendered once for
/// every subscriber of it (the server's fanout), whoever they are.
const ORG_EVENTS_SHARED: &str = "subscription($o: String!) { organizationEvents(organization: $o) { action actorUsername subjectUsername datasetFullName role previousRole } }";
const VIEWER_EVENTS: &str =
    "subscription { viewerEvents { action subjectUsername role organization { username } } }";

/// `action subject role` of a `next` message's event.
fn summary(message: &Value, field: &str) -> String {
    assert_eq!(message["type"], "next", "{message}");
    let event = &message["payload"]["data"][field];
    format!(
        "{} {} {}",
        event["action"].as_str().unwrap_or("?"),
        event["subjectUsername"]
            .as_str()
            .or(event["datasetFullName"].as_str())
            .unwrap_or("-"),
        event["role"].as_str().unwrap_or("-")
    )
}

/// An SSE subscription: the events of one `POST /graphql/stream`, as `(event, data)`.
async fn sse(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: Value,
) -> tokio::sync::mpsc::UnboundedReceiver<(String, Value)> {
    let response = app
        .client
        .post(format!("{}/graphql/stream", app.address))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut response = response;
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::Null);
                if sender.send((event, data)).is_err() {
                    return;
                }
            }
        }
    });
    receiver
}

async fn sse_next(
    receiver: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
) -> (String, Value) {
    tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .expect("an SSE event in time")
        .expect("the stream is open")
}

/// What one member, one admin and one invitee see of a scripted series of changes, over
/// WebSocket and over SSE alike.
async fn subscribers_get_what_they_may_see_in_order(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let ada = app.sign_up("ada").await;
    let mo = app.sign_up("mo").await;
    let bea = app.sign_up("bea").await;
    app.create_org(&ada, "live").await;
    app.add_member(&ada, "live", "mo", "MEMBER", Value::Null)
        .await
        .data("/addMember/member/role");

    // The admin and the member over WebSocket share one rendering of each event (the same
    // operation), yet each gets only what they may see; over SSE the member's operation is
    // resolved for them alone.
    let mut admin = Ws::connect(&app.address, Some(&ada)).await;
    admin
        .subscribe("a", ORG_EVENTS_SHARED, json!({ "o": "live" }))
        .await;
    let mut member = Ws::connect(&app.address, Some(&mo)).await;
    member
        .subscribe("m", ORG_EVENTS_SHARED, json!({ "o": "live" }))
        .await;
    let mut member_sse = sse(&app, &mo, ORG_EVENTS, json!({ "o": "live" })).await;
    let mut invitee = Ws::connect(&app.address, Some(&bea)).await;
    invitee.subscribe("v", VIEWER_EVENTS, json!({})).await;
    // Subscriptions are registered once their request ran.
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.add_member(&ada, "live", "bea", "MEMBER", Value::Null)
        .await;
    app.update_member(&ada, "live", "bea", "ADMIN")
        .await
        .data("/updateMember/member/role");
    app.create_dataset(&ada, Some("live"), "hidden", false)
        .await;
    app.create_dataset(&ada, Some("live"), "shown", true).await;

    let admin_saw: Vec<String> = {
        let mut out = Vec::new();
        while out.len() < 6 {
            out.push(summary(&admin.next().await, "organizationEvents"));
        }
        out
    };
    // Creating a dataset also adds its creator and the members' default roles as
    // collaborators (fan-out); `ada` is an admin: she sees everything.
    assert_eq!(
        &admin_saw[..2],
        ["MEMBER_ADDED bea MEMBER", "MEMBER_UPDATED bea ADMIN"]
    );
    assert!(
        admin_saw.contains(&"DATASET_CREATED live/hidden -".to_owned()),
        "{admin_saw:?}"
    );
    assert!(
        admin_saw.contains(&"DATASET_CREATED live/shown -".to_owned()),
        "{admin_saw:?}"
    );

    let want = [
        "MEMBER_ADDED bea MEMBER",
        "MEMBER_UPDATED bea ADMIN",
        "DATASET_CREATED live/shown -",
    ];
    for expected in want {
        assert_eq!(
            summary(&member.next().await, "organizationEvents"),
            expected
        );
        let (event, data) = sse_next(&mut member_sse).await;
        assert_eq!(event, "next");
        assert_eq!(
            summary(
                &json!({ "type": "next", "payload": data }),
                "organizationEvents"
            ),
            expected
        );
    }
    // The hidden dataset's events (and its collaborator entries) never reach the member.
    member.quiet(Duration::from_millis(500)).await;

    assert_eq!(
        summary(&invitee.next().await, "viewerEvents"),
        "MEMBER_ADDED bea MEMBER"
    );
    assert_eq!(
        summary(&invitee.next().await, "viewerEvents"),
        "MEMBER_UPDATED bea ADMIN"
    );

    // Stopping one subscription (`complete`) stops its events only.
    member.send(json!({ "id": "m", "type": "complete" })).await;
    assert_eq!(member.next().await["type"], "complete");
    app.gql(
        Some(&ada),
        "mutation { updateOrganization(input: { organization: \"live\", displayName: \"Live\" }) { organization { displayName } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        summary(&admin.next().await, "organizationEvents"),
        "ORGANIZATION_UPDATED - -"
    );
    member.quiet(Duration::from_millis(500)).await;

    // A dataset made private: the member (no role on it) gets none of its events from then
    // on, the change itself included, and the rest of the organization's as before.
    let mut member = Ws::connect(&app.address, Some(&mo)).await;
    member
        .subscribe("m2", ORG_EVENTS, json!({ "o": "live" }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let update =
        "mutation($i: UpdateDatasetInput!) { updateDataset(input: $i) { dataset { public } } }";
    app.gql(
        Some(&ada),
        update,
        json!({ "i": { "dataset": "live/shown", "description": "seen" } }),
    )
    .await;
    assert_eq!(
        summary(&member.next().await, "organizationEvents"),
        "DATASET_UPDATED live/shown -"
    );
    app.gql(
        Some(&ada),
        update,
        json!({ "i": { "dataset": "live/shown", "public": false } }),
    )
    .await;
    app.gql(
        Some(&ada),
        update,
        json!({ "i": { "dataset": "live/shown", "description": "unseen" } }),
    )
    .await;
    app.sign_up("cy").await;
    app.add_member(&ada, "live", "cy", "MEMBER", Value::Null)
        .await;
    assert_eq!(
        summary(&member.next().await, "organizationEvents"),
        "MEMBER_ADDED cy MEMBER"
    );
    app.stop().await;
}

/// A member removed while subscribed gets no further event, and the subscription ends with
/// `FORBIDDEN` (WebSocket: an `error`... the stream's last `next` carries it, then
/// `complete`; SSE: the same, then `complete`).
async fn a_removed_member_s_subscription_ends_with_forbidden(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let ada = app.sign_up("ada").await;
    let mo = app.sign_up("mo").await;
    app.sign_up("cy").await;
    app.create_org(&ada, "live").await;
    app.add_member(&ada, "live", "mo", "MEMBER", Value::Null)
        .await;
    // Over WebSocket an operation rendered once for all its subscribers; over SSE one
    // resolved for the member alone: they end alike.
    let mut member = Ws::connect(&app.address, Some(&mo)).await;
    member
        .subscribe("m", ORG_EVENTS_SHARED, json!({ "o": "live" }))
        .await;
    let mut member_sse = sse(&app, &mo, ORG_EVENTS, json!({ "o": "live" })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.add_member(&ada, "live", "cy", "MEMBER", Value::Null)
        .await;
    assert_eq!(
        summary(&member.next().await, "organizationEvents"),
        "MEMBER_ADDED cy MEMBER"
    );
    assert_eq!(sse_next(&mut member_sse).await.0, "next");

    app.remove_member(&ada, "live", "mo").await;
    let ended = member.next().await;
    assert_eq!(ended["type"], "next", "{ended}");
    assert_eq!(
        ended["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{ended}"
    );
    let complete = member.next().await;
    assert_eq!(complete["type"], "complete", "{complete}");
    let (event, data) = sse_next(&mut member_sse).await;
    assert_eq!(event, "next");
    assert_eq!(
        data["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{data}"
    );
    // The same error, message, location and path included.
    assert_eq!(ended["payload"], data);
    assert_eq!(sse_next(&mut member_sse).await.0, "complete");

    // Nothing further, whatever happens in the organization.
    app.add_member(&ada, "live", "mo", "MEMBER", Value::Null)
        .await;
    member.quiet(Duration::from_millis(500)).await;
    app.stop().await;
}

/// Subscribing needs a credential and access; a bad credential closes the connection; a
/// connection that never initialises is closed; the limits hold.
async fn subscribing_is_checked_and_limited(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let mut config = test_config(&db.url);
    config.subscription_init_timeout_seconds = 1;
    config.max_subscriptions_per_connection = 2;
    config.max_subscriptions_per_user = 3;
    let app = spawn_with(config).await;
    let ada = app.sign_up("ada").await;
    let out = app.sign_up("out").await;
    app.create_org(&ada, "live").await;
    app.create_dataset(&ada, Some("live"), "secret", false)
        .await;

    // Anonymous: UNAUTHENTICATED.
    let mut anonymous = Ws::connect(&app.address, None).await;
    anonymous.subscribe("1", VIEWER_EVENTS, json!({})).await;
    let refused = anonymous.next().await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(anonymous.next().await["type"], "complete");

    // A stranger: FORBIDDEN for the organization, NOT_FOUND for its private dataset, NOT_FOUND
    // for what does not exist.
    let mut stranger = Ws::connect(&app.address, Some(&out)).await;
    for (id, query, variables, code) in [
        ("1", ORG_EVENTS, json!({ "o": "live" }), "FORBIDDEN"),
        ("2", ORG_EVENTS, json!({ "o": "nope" }), "NOT_FOUND"),
        (
            "3",
            "subscription($d: String!) { datasetEvents(dataset: $d) { action } }",
            json!({ "d": "live/secret" }),
            "NOT_FOUND",
        ),
    ] {
        stranger.subscribe(id, query, variables).await;
        let refused = stranger.next().await;
        assert_eq!(refused["type"], "next", "{refused}");
        assert_eq!(
            refused["payload"]["errors"][0]["extensions"]["code"], code,
            "{refused}"
        );
        assert_eq!(stranger.next().await["type"], "complete");
    }

    // A bad token in connection_init closes the connection (4403).
    let mut bad = Ws::open(&app.address).await;
    bad.send(
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nonsense" } }),
    )
    .await;
    assert_eq!(bad.next().await["closed"], 4403);

    // No connection_init: closed with 4408 after the init timeout.
    let mut silent = Ws::open(&app.address).await;
    assert_eq!(silent.next().await["closed"], 4408);

    // Per connection: one of three is refused (RATE_LIMITED; a connection runs its
    // subscriptions concurrently, so which one is not fixed); per user: one of the next two.
    let mut first = Ws::connect(&app.address, Some(&ada)).await;
    for id in ["1", "2", "3"] {
        first.subscribe(id, VIEWER_EVENTS, json!({})).await;
    }
    let refused = first.next().await;
    assert!(
        ["1", "2", "3"].contains(&refused["id"].as_str().unwrap()),
        "{refused}"
    );
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    let mut second = Ws::connect(&app.address, Some(&ada)).await;
    for id in ["1", "2"] {
        second.subscribe(id, VIEWER_EVENTS, json!({})).await;
    }
    let refused = second.next().await;
    assert!(
        ["1", "2"].contains(&refused["id"].as_str().unwrap()),
        "{refused}"
    );
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );

    // The gauge counts the live ones.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("orgql_subscriptions_active 3"),
        "{metrics}"
    );
    app.stop().await;
}

/// Two instances on one fresh PostgreSQL database (the database first: it outlives them);
/// `None`, saying that `test` was skipped, when `TEST_DATABASE_URL` is not set.
async fn two_instances(test: &str) -> Option<(TestDatabase, ServerProcess, ServerProcess)> {
    let Some(backend) = Backend::postgres() else {
        eprintln!("skipped: TEST_DATABASE_URL is not set, so {test} did not run (PostgreSQL only)");
        return None;
    };
    let db = TestDatabase::create(&backend).await;
    let a = ServerProcess::start(&db.url).await;
    let b = ServerProcess::start(&db.url).await;
    Some((db, a, b))
}

/// Two instances on one PostgreSQL: subscribers on A receive, in order and once, the events
/// of mutations sent to B, also while A's `LISTEN` connection is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_events_through_postgres() {
    let Some((db, a, b)) = two_instances("two_instances_share_events_through_postgres").await
    else {
        return;
    };
    let (on_a, on_b) = (a.client(), b.client());
    let ada = on_b.sign_up("ada").await;
    on_b.sign_up("mo").await;
    on_b.create_org(&ada, "shared").await;
    on_b.add_member(&ada, "shared", "mo", "MEMBER", Value::Null)
        .await;
    let sse_admin = sse(&on_a, &ada, ORG_EVENTS, json!({ "o": "shared" })).await;
    let mut ws_admin = Ws::connect(&on_a.address, Some(&ada)).await;
    ws_admin
        .subscribe("a", ORG_EVENTS, json!({ "o": "shared" }))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 30 changes sent to B, the LISTEN connection of A killed after the tenth.
    let mut want = Vec::new();
    let admin_db = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    for i in 0..30 {
        let role = if i % 2 == 0 { "ADMIN" } else { "MEMBER" };
        on_b.update_member(&ada, "shared", "mo", role)
            .await
            .data("/updateMember/member/role");
        want.push(format!("MEMBER_UPDATED mo {role}"));
        if i == 10 {
            use sea_orm::ConnectionTrait;
            let killed = admin_db
                .execute_unprepared(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
                )
                .await
                .unwrap();
            assert!(
                killed.rows_affected() >= 1,
                "A's LISTEN connection was found"
            );
        }
    }
    let mut got = Vec::new();
    while got.len() < want.len() {
        got.push(summary(&ws_admin.next().await, "organizationEvents"));
    }
    assert_eq!(
        got, want,
        "every event once, in commit order, over WebSocket"
    );
    ws_admin.quiet(Duration::from_millis(700)).await;
    let mut sse_admin = sse_admin;
    let mut got = Vec::new();
    while got.len() < want.len() {
        let (event, data) = sse_next(&mut sse_admin).await;
        assert_eq!(event, "next");
        got.push(summary(
            &json!({ "type": "next", "payload": data }),
            "organizationEvents",
        ));
    }
    assert_eq!(got, want, "the same over SSE");

    admin_db.close().await.ok();
}

/// Two instances on one PostgreSQL: what A keeps between events about its subscribers'
/// credentials and memberships (`live::access::Known`) is forgotten when B changes it. Each
/// subscription on A first receives an event (so that A knows its credential and role);
/// then a revoked API token, `signOutEverywhere` and a removal, each sent to B, end the
/// subscription concerned with `FORBIDDEN` at the next event, and only that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_changed_on_another_instance_ends_subscriptions() {
    let Some((_db, a, b)) =
        two_instances("access_changed_on_another_instance_ends_subscriptions").await
    else {
        return;
    };
    let (on_a, on_b) = (a.client(), b.client());
    let ada = on_b.sign_up("ada").await;
    let mo = on_b.sign_up("mo").await;
    let al = on_b.sign_up("al").await;
    on_b.sign_up("cy").await;
    on_b.create_org(&ada, "shared").await;
    for member in ["mo", "al", "cy"] {
        on_b.add_member(&ada, "shared", member, "MEMBER", Value::Null)
            .await;
    }
    let api_token = on_b
        .gql(
            Some(&mo),
            "mutation { createApiToken(input: { name: \"live\", scopes: [READ] }) { token apiToken { id } } }",
            json!({}),
        )
        .await;
    let token_id = api_token.data("/createApiToken/apiToken/id").clone();
    let api_token = api_token
        .data("/createApiToken/token")
        .as_str()
        .unwrap()
        .to_owned();
    let mut by_token = Ws::connect(&on_a.address, Some(&api_token)).await;
    let mut by_session = Ws::connect(&on_a.address, Some(&mo)).await;
    let mut removed = Ws::connect(&on_a.address, Some(&al)).await;
    let mut admin = Ws::connect(&on_a.address, Some(&ada)).await;
    // Operations rendered once for all and resolved for each subscriber, alike.
    for (ws, id, query) in [
        (&mut by_token, "t", ORG_EVENTS_SHARED),
        (&mut by_session, "s", ORG_EVENTS),
        (&mut removed, "r", ORG_EVENTS_SHARED),
        (&mut admin, "a", ORG_EVENTS),
    ] {
        ws.subscribe(id, query, json!({ "o": "shared" })).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // cy's role changes, sent to B, are what the subscriptions on A follow.
    let mut changes = ["ADMIN", "MEMBER"].into_iter().cycle();
    let mut change = async || {
        let role = changes.next().unwrap();
        on_b.update_member(&ada, "shared", "cy", role).await;
        format!("MEMBER_UPDATED cy {role}")
    };
    let forbidden =
        |ended: &Value| ended["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN";

    let first = change().await;
    for ws in [&mut by_token, &mut by_session, &mut removed, &mut admin] {
        assert_eq!(summary(&ws.next().await, "organizationEvents"), first);
    }

    on_b.gql(
        Some(&mo),
        "mutation($id: ID!) { revokeApiToken(input: { id: $id }) { revokedApiTokenId } }",
        json!({ "id": token_id }),
    )
    .await
    .data("/revokeApiToken/revokedApiTokenId");
    let second = change().await;
    let ended = by_token.next().await;
    assert!(
        forbidden(&ended),
        "the revoked token's subscription ends: {ended}"
    );
    assert_eq!(by_token.next().await["type"], "complete");
    for ws in [&mut by_session, &mut removed, &mut admin] {
        assert_eq!(summary(&ws.next().await, "organizationEvents"), second);
    }

    on_b.gql(
        Some(&mo),
        "mutation { signOutEverywhere(input: {}) { user { username } } }",
        json!({}),
    )
    .await
    .data("/signOutEverywhere/user/username");
    let third = change().await;
    let ended = by_session.next().await;
    assert!(
        forbidden(&ended),
        "the signed-out session's subscription ends: {ended}"
    );
    assert_eq!(by_session.next().await["type"], "complete");
    for ws in [&mut removed, &mut admin] {
        assert_eq!(summary(&ws.next().await, "organizationEvents"), third);
    }

    on_b.remove_member(&ada, "shared", "al").await;
    // The removal is itself an event of the organization: the removed member's subscription
    // ends at it; the admin receives it.
    let ended = removed.next().await;
    assert!(
        forbidden(&ended),
        "the removed member's subscription ends: {ended}"
    );
    assert_eq!(removed.next().await["type"], "complete");
    let removal = summary(&admin.next().await, "organizationEvents");
    assert!(removal.starts_with("MEMBER_REMOVED al"), "{removal}");
    let fourth = change().await;
    assert_eq!(summary(&admin.next().await, "organizationEvents"), fourth);
    for ws in [&mut by_token, &mut by_session, &mut removed] {
        ws.quiet(Duration::from_millis(300)).await;
    }
}
