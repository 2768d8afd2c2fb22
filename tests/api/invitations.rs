//! Invitations (API.md, "Invitations"): every path, visibility, expiry, and racing accepts
//! on two instances; and the audit log's promise under SIGKILL.

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Reply, ServerProcess, TestApp, TestDatabase, spawn_app, spawn_with, test_config,
};

on_both_databases!(
    every_invitation_path,
    racing_accepts_on_two_instances_make_one_membership,
    a_killed_server_leaves_no_change_without_its_event,
);

const INVITE: &str = "mutation($o: String!, $u: String!, $r: OrganizationRole = MEMBER, $d: DatasetRole) {
    inviteMember(input: { organization: $o, username: $u, role: $r, defaultDatasetRole: $d }) {
      invitation { id state role defaultDatasetRole organization { username } invitee { username } inviter { username } } } }";

async fn invite(app: &TestApp, token: &str, org: &str, user: &str) -> Reply {
    app.gql(Some(token), INVITE, json!({ "o": org, "u": user }))
        .await
}

async fn invited(app: &TestApp, token: &str, org: &str, user: &str) -> String {
    let reply = invite(app, token, org, user).await;
    reply
        .data("/inviteMember/invitation/id")
        .as_str()
        .unwrap()
        .to_owned()
}

async fn answer(app: &TestApp, token: &str, verb: &str, id: &str) -> Reply {
    let selection = match verb {
        "accept" => {
            "member { role defaultDatasetRole user { username } organization { username } }"
        }
        _ => "invitation { state }",
    };
    let field = format!("{verb}Invitation");
    app.gql(
        Some(token),
        &format!("mutation($id: ID!) {{ {field}(input: {{ id: $id }}) {{ {selection} }} }}"),
        json!({ "id": id }),
    )
    .await
}

async fn state(app: &TestApp, token: &str, id: &str) -> Value {
    app.gql(
        Some(token),
        "query($id: ID!) { node(id: $id) { ... on Invitation { state } } }",
        json!({ "id": id }),
    )
    .await
    .data("/node/state")
    .clone()
}

async fn members(app: &TestApp, token: &str, org: &str) -> Vec<String> {
    app.gql(
        Some(token),
        "query($o: String!) { organization(username: $o) { members { nodes { user { username } } } } }",
        json!({ "o": org }),
    )
    .await
    .data("/organization/members/nodes")
    .as_array()
    .unwrap()
    .iter()
    .map(|n| n["user"]["username"].as_str().unwrap().to_owned())
    .collect()
}

async fn every_invitation_path(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let ann = app.sign_up("ann").await;
    let bob = app.sign_up("bob").await;
    let cy = app.sign_up("cy").await;
    let dee = app.sign_up("dee").await;
    let eve = app.sign_up("eve").await;
    app.create_org(&ann, "acme").await;

    // Who may invite, and whom.
    app.gql(None, INVITE, json!({ "o": "acme", "u": "bob" }))
        .await
        .expect_code("UNAUTHENTICATED");
    invite(&app, &bob, "acme", "cy")
        .await
        .expect_code("FORBIDDEN");
    invite(&app, &ann, "acme", "nobody")
        .await
        .expect_code("NOT_FOUND");
    invite(&app, &ann, "acme", "acme")
        .await
        .expect_code("NOT_FOUND");
    invite(&app, &ann, "acme", "ann")
        .await
        .expect_code("CONFLICT");
    let reply = app
        .gql(
            Some(&ann),
            INVITE,
            json!({ "o": "acme", "u": "BOB", "r": "MEMBER", "d": "LABELER" }),
        )
        .await;
    let invitation = reply.data("/inviteMember/invitation").clone();
    assert_eq!(invitation["state"], "PENDING");
    assert_eq!(invitation["defaultDatasetRole"], "LABELER");
    assert_eq!(invitation["invitee"]["username"], "bob");
    assert_eq!(invitation["inviter"]["username"], "ann");
    let bobs = invitation["id"].as_str().unwrap().to_owned();
    let message = invite(&app, &ann, "acme", "bob")
        .await
        .expect_code("CONFLICT");
    assert!(message.contains("pending"), "{message}");

    // Who sees it: bob and acme's admins.
    let mine = app
        .gql(
            Some(&bob),
            "{ viewer { invitations { totalCount nodes { id organization { username } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine.data("/viewer/invitations/totalCount"), 1);
    app.gql(
        Some(&cy),
        r#"{ user(username: "bob") { invitations { totalCount } } }"#,
        json!({}),
    )
    .await
    .expect_code("FORBIDDEN");
    assert_eq!(state(&app, &ann, &bobs).await, "PENDING");
    assert_eq!(state(&app, &bob, &bobs).await, "PENDING");
    let hidden = app
        .gql(
            Some(&cy),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": bobs }),
        )
        .await;
    assert!(hidden.data("/node").is_null());
    app.gql(
        Some(&bob),
        r#"{ organization(username: "acme") { invitations { totalCount } } }"#,
        json!({}),
    )
    .await
    .expect_code("FORBIDDEN");

    // Only bob answers it.
    answer(&app, &cy, "accept", &bobs)
        .await
        .expect_code("NOT_FOUND");
    answer(&app, &ann, "accept", &bobs)
        .await
        .expect_code("FORBIDDEN");
    answer(&app, &bob, "revoke", &bobs)
        .await
        .expect_code("FORBIDDEN");
    answer(&app, &cy, "revoke", &bobs)
        .await
        .expect_code("NOT_FOUND");
    let accepted = answer(&app, &bob, "accept", &bobs).await;
    assert_eq!(
        accepted.data("/acceptInvitation/member"),
        &json!({ "role": "MEMBER", "defaultDatasetRole": "LABELER", "user": { "username": "bob" }, "organization": { "username": "acme" } })
    );
    assert_eq!(members(&app, &ann, "acme").await, ["ann", "bob"]);
    assert_eq!(state(&app, &ann, &bobs).await, "ACCEPTED");
    answer(&app, &bob, "accept", &bobs)
        .await
        .expect_code("CONFLICT");
    answer(&app, &bob, "decline", &bobs)
        .await
        .expect_code("CONFLICT");
    answer(&app, &ann, "revoke", &bobs)
        .await
        .expect_code("CONFLICT");
    let none = app
        .gql(
            Some(&bob),
            "{ viewer { invitations { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(none.data("/viewer/invitations/totalCount"), 0);

    // Declined, then invited again and revoked.
    let first = invited(&app, &ann, "acme", "cy").await;
    assert_eq!(
        answer(&app, &cy, "decline", &first)
            .await
            .data("/declineInvitation/invitation/state"),
        "DECLINED"
    );
    answer(&app, &cy, "accept", &first)
        .await
        .expect_code("CONFLICT");
    let second = invited(&app, &ann, "acme", "cy").await;
    assert_eq!(
        answer(&app, &ann, "revoke", &second)
            .await
            .data("/revokeInvitation/invitation/state"),
        "REVOKED"
    );
    answer(&app, &cy, "accept", &second)
        .await
        .expect_code("CONFLICT");
    assert_eq!(members(&app, &ann, "acme").await, ["ann", "bob"]);

    // Expired: it reads EXPIRED, cannot be accepted, and does not block a new one.
    let old = invited(&app, &ann, "acme", "dee").await;
    entity::invitation::Entity::update_many()
        .col_expr(
            entity::invitation::Column::ExpiresAt,
            Expr::val(Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(entity::invitation::Column::InviteeId.eq(account_id(&app, "dee").await))
        .exec(&app.state().db)
        .await
        .unwrap();
    assert_eq!(state(&app, &dee, &old).await, "EXPIRED");
    let none = app
        .gql(
            Some(&dee),
            "{ viewer { invitations { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(none.data("/viewer/invitations/totalCount"), 0);
    answer(&app, &dee, "accept", &old)
        .await
        .expect_code("CONFLICT");
    let again = invited(&app, &ann, "acme", "dee").await;
    let by_state = app
        .gql(
            Some(&ann),
            r#"{ organization(username: "acme") {
                 all: invitations { totalCount }
                 pending: invitations(state: PENDING) { nodes { id } }
                 expired: invitations(state: EXPIRED) { nodes { id } }
                 accepted: invitations(state: ACCEPTED) { totalCount } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(by_state.data("/organization/all/totalCount"), 5);
    assert_eq!(
        by_state.data("/organization/pending/nodes"),
        &json!([{ "id": again }])
    );
    assert_eq!(
        by_state.data("/organization/expired/nodes"),
        &json!([{ "id": old }])
    );
    assert_eq!(by_state.data("/organization/accepted/totalCount"), 1);

    // An invitation is the organization's: its inviter losing the admin role leaves it good.
    app.update_member(&ann, "acme", "bob", "ADMIN")
        .await
        .data("/updateMember/member/role");
    let from_bob = invited(&app, &bob, "acme", "eve").await;
    app.update_member(&ann, "acme", "bob", "MEMBER")
        .await
        .data("/updateMember/member/role");
    answer(&app, &eve, "accept", &from_bob)
        .await
        .data("/acceptInvitation/member/role");
    assert_eq!(members(&app, &ann, "acme").await, ["ann", "bob", "eve"]);

    // Each step is in the log.
    let log = app
        .gql(
            Some(&ann),
            r#"{ organization(username: "acme") { auditLog(actions: [INVITATION_CREATED, INVITATION_ACCEPTED, INVITATION_DECLINED, INVITATION_REVOKED], first: 50) {
                 nodes { action actorUsername subjectUsername } } } }"#,
            json!({}),
        )
        .await;
    let mut events: Vec<Value> = log
        .data("/organization/auditLog/nodes")
        .as_array()
        .unwrap()
        .clone();
    events.reverse();
    let compact: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actorUsername"].as_str().unwrap().to_owned(),
                e["subjectUsername"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("INVITATION_CREATED", "ann", "bob"),
        ("INVITATION_ACCEPTED", "bob", "bob"),
        ("INVITATION_CREATED", "ann", "cy"),
        ("INVITATION_DECLINED", "cy", "cy"),
        ("INVITATION_CREATED", "ann", "cy"),
        ("INVITATION_REVOKED", "ann", "cy"),
        ("INVITATION_CREATED", "ann", "dee"),
        ("INVITATION_CREATED", "ann", "dee"),
        ("INVITATION_CREATED", "bob", "eve"),
        ("INVITATION_ACCEPTED", "eve", "eve"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(compact, want);
    app.stop().await;
}

async fn account_id(app: &TestApp, username: &str) -> i64 {
    entity::account::Entity::find()
        .filter(entity::account::Column::Username.eq(username))
        .one(&app.state().db)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn racing_accepts_on_two_instances_make_one_membership(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let a = spawn_with(test_config(&db.url)).await;
    let b = spawn_with(test_config(&db.url)).await;
    let ann = a.sign_up("ann").await;
    a.create_org(&ann, "acme").await;
    for round in 0..4 {
        let name = format!("user{round}");
        let token = b.sign_up(&name).await;
        let id = invited(&a, &ann, "acme", &name).await;
        let (first, second) = tokio::join!(
            answer(&a, &token, "accept", &id),
            answer(&b, &token, "accept", &id)
        );
        let mut codes: Vec<&str> = [&first, &second]
            .iter()
            .map(|r| {
                if r.body.get("errors").is_none() {
                    "ok"
                } else {
                    r.code()
                }
            })
            .collect();
        codes.sort();
        assert_eq!(
            codes,
            ["CONFLICT", "ok"],
            "{} / {}",
            first.body,
            second.body
        );
        let accepted = entity::audit_event::Entity::find()
            .filter(
                entity::audit_event::Column::Action
                    .eq(entity::audit_event::AuditAction::InvitationAccepted),
            )
            .filter(entity::audit_event::Column::SubjectUsername.eq(name.clone()))
            .count(&a.state().db)
            .await
            .unwrap();
        assert_eq!(accepted, 1);
    }
    assert_eq!(members(&a, &ann, "acme").await.len(), 5);
    a.stop().await;
    b.stop().await;
}

/// A stream of membership changes (add and remove one member, in turn) to a real server
/// process, killed with SIGKILL in the middle: every acknowledged change has its event, and
/// the one change in flight either committed with its event or not at all.
async fn a_killed_server_leaves_no_change_without_its_event(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let server = ServerProcess::start(&db.url).await;
    let app = server.client();
    let ann = app.sign_up("ann").await;
    app.sign_up("bob").await;
    app.create_org(&ann, "acme").await;
    let stream = {
        let app = TestApp::client_for(&app.address);
        let ann = ann.clone();
        tokio::spawn(async move {
            let mut acknowledged = 0u64;
            loop {
                let mutation = if acknowledged.is_multiple_of(2) {
                    r#"mutation { addMember(input: { organization: "acme", username: "bob" }) { member { role } } }"#
                } else {
                    r#"mutation { removeMember(input: { organization: "acme", username: "bob" }) { organization { id } } }"#
                };
                let sent = app
                    .client
                    .post(format!("{}/graphql", app.address))
                    .bearer_auth(&ann)
                    .json(&json!({ "query": mutation }))
                    .send()
                    .await;
                let Ok(response) = sent else {
                    return acknowledged;
                };
                let Ok(body) = response.json::<Value>().await else {
                    return acknowledged;
                };
                assert!(body.get("errors").is_none(), "{body}");
                acknowledged += 1;
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill().await;
    let acknowledged = stream.await.unwrap();
    assert!(acknowledged > 5, "the stream ran: {acknowledged}");
    // Read what the database kept, with the server gone.
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let events = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.is_in([
            entity::audit_event::AuditAction::MemberAdded,
            entity::audit_event::AuditAction::MemberRemoved,
        ]))
        .count(&conn)
        .await
        .unwrap();
    let bob_is_member = entity::membership::Entity::find()
        .filter(entity::membership::Column::Username.eq("bob"))
        .count(&conn)
        .await
        .unwrap()
        == 1;
    // Every acknowledged change has its event; at most the one in flight committed unseen.
    assert!(
        events == acknowledged || events == acknowledged + 1,
        "{events} events for {acknowledged} acknowledged changes"
    );
    // And the events describe the state: an odd number of them (add, remove, add …) is bob
    // being a member.
    assert_eq!(bob_is_member, events % 2 == 1, "{events} events");
    conn.close().await.ok();
}
