//! No N+1: the SQL statements one request runs are fixed by the query's shape, whatever the
//! number of objects on each level.

use crate::helpers::{Backend, TestApp, TestDatabase, spawn_with, test_config};
use chrono::Utc;
use entity::roles::{AccountKind, DatasetRole, OrganizationRole};
use entity::{account, collaborator, dataset, membership, organization, user_account};
use sea_orm::{ActiveValue::NotSet, DatabaseConnection, EntityTrait, Set};
use serde_json::json;

/// The SPA dashboard: every organization of the viewer with its members and datasets, and
/// each dataset's owner, the viewer's role and collaborators.
const DASHBOARD: &str = "{
  viewer {
    memberships {
      role
      organization {
        username
        members(first: 100) { totalCount nodes { role user { username } } }
        datasets(first: 100) {
          totalCount
          nodes {
            name
            owner { username }
            viewerRole
            collaborators(first: 100) { totalCount nodes { role user { username } } }
          }
        }
      }
    }
  }
}";

/// How many statements the dashboard costs, on every database and at every size.
pub const DASHBOARD_STATEMENTS: u64 = 10;

async fn insert_chunked<E, A>(db: &DatabaseConnection, rows: Vec<A>)
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(1000).collect();
        E::insert_many(chunk)
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

/// `n` organizations, each with the viewer (admin) and `n - 1` other members (default role
/// LABELER), `n` datasets created with the fan-out (so `n` collaborators each).
async fn seed(app: &TestApp, n: usize) -> String {
    let token = app.sign_up("viewer").await;
    let db = &app.state().db;
    let viewer = account::Entity::find()
        .one(db)
        .await
        .unwrap()
        .expect("the viewer exists");
    let now = Utc::now();
    let new_account = |kind, name: String| account::ActiveModel {
        id: NotSet,
        kind: Set(kind),
        username_key: Set(name.to_lowercase()),
        username: Set(name),
        created_at: Set(now),
    };
    let mut users = vec![viewer.clone()];
    for i in 1..n {
        let row = account::Entity::insert(new_account(AccountKind::User, format!("user{i:03}")))
            .exec_with_returning(db)
            .await
            .unwrap();
        users.push(row);
    }
    insert_chunked(
        db,
        users[1..]
            .iter()
            .map(|u| user_account::ActiveModel {
                account_id: Set(u.id),
                email: Set(format!("{}@example.com", u.username)),
                email_key: Set(format!("{}@example.com", u.username_key)),
                password_hash: Set("unused".into()),
                session_generation: Set(0),
            })
            .collect(),
    )
    .await;
    let mut memberships = Vec::new();
    let mut datasets = Vec::new();
    let mut orgs = Vec::new();
    for o in 0..n {
        let org =
            account::Entity::insert(new_account(AccountKind::Organization, format!("org{o:03}")))
                .exec_with_returning(db)
                .await
                .unwrap();
        organization::Entity::insert(organization::ActiveModel {
            account_id: Set(org.id),
            display_name: Set(None),
        })
        .exec_without_returning(db)
        .await
        .unwrap();
        for (i, user) in users.iter().enumerate() {
            memberships.push(membership::ActiveModel {
                organization_id: Set(org.id),
                user_id: Set(user.id),
                username_key: Set(user.username_key.clone()),
                role: Set(if i == 0 {
                    OrganizationRole::Admin
                } else {
                    OrganizationRole::Member
                }),
                default_dataset_role: Set(Some(DatasetRole::Labeler)),
                joined_at: Set(now),
                username: Set(user.username.clone()),
            });
        }
        for d in 0..n {
            datasets.push(dataset::ActiveModel {
                id: NotSet,
                owner_id: Set(org.id),
                name: Set(format!("set{d:03}")),
                name_key: Set(format!("set{d:03}")),
                description: Set(String::new()),
                public: Set(d % 2 == 0),
                created_at: Set(now),
            });
        }
        orgs.push(org);
    }
    insert_chunked(db, memberships).await;
    insert_chunked(db, datasets).await;
    let all_datasets = dataset::Entity::find().all(db).await.unwrap();
    let mut collaborators = Vec::new();
    for d in &all_datasets {
        for (i, user) in users.iter().enumerate() {
            collaborators.push(collaborator::ActiveModel {
                dataset_id: Set(d.id),
                user_id: Set(user.id),
                username_key: Set(user.username_key.clone()),
                role: Set(if i == 0 {
                    DatasetRole::Admin
                } else {
                    DatasetRole::Labeler
                }),
                username: Set(user.username.clone()),
            });
        }
    }
    insert_chunked(db, collaborators).await;
    token
}

/// The statements `query` runs (the server's counter before and after), and its answer.
async fn counted(app: &TestApp, token: Option<&str>, query: &str) -> (u64, crate::helpers::Reply) {
    let before = app.state().statements.count();
    let reply = app.gql(token, query, json!({})).await;
    (app.state().statements.count() - before, reply)
}

async fn dashboard_statements(backend: &Backend, n: usize) -> u64 {
    let db = TestDatabase::create(backend).await;
    let mut config = test_config(&db.url);
    // Debug builds on a loaded machine can take a while for N = 50; the test is about
    // statements, not speed.
    config.request_timeout_seconds = 600;
    let app = spawn_with(config).await;
    let token = seed(&app, n).await;
    let (statements, reply) = counted(&app, Some(&token), DASHBOARD).await;
    // The answer is complete: n organizations × n members, n datasets × n collaborators.
    let memberships = reply.data("/viewer/memberships").as_array().unwrap();
    assert_eq!(memberships.len(), n);
    for m in memberships {
        let org = &m["organization"];
        assert_eq!(org["members"]["totalCount"], n);
        assert_eq!(org["members"]["nodes"].as_array().unwrap().len(), n);
        assert_eq!(org["datasets"]["totalCount"], n);
        for d in org["datasets"]["nodes"].as_array().unwrap() {
            assert_eq!(d["viewerRole"], "ADMIN");
            assert_eq!(d["owner"]["username"], org["username"]);
            assert_eq!(d["collaborators"]["nodes"].as_array().unwrap().len(), n);
        }
    }
    app.stop().await;
    statements
}

async fn the_dashboard_costs_the_same_statements_at_every_size(backend: Backend) {
    let mut counts = Vec::new();
    let sizes: Vec<usize> = std::env::var("DASHBOARD_SIZES")
        .map(|v| v.split(',').map(|n| n.parse().unwrap()).collect())
        .unwrap_or(vec![1, 10, 50]);
    for n in sizes {
        let count = dashboard_statements(&backend, n).await;
        eprintln!("{backend:?}: N = {n}: {count} statements");
        counts.push((n, count));
    }
    for (n, count) in counts {
        assert_eq!(count, DASHBOARD_STATEMENTS, "N = {n}");
    }
}

on_both_databases!(the_dashboard_costs_the_same_statements_at_every_size);

/// `viewer` reads the account and, when `email` is asked for, the private row in the same
/// statement; other users' emails stay hidden.
async fn the_viewer_with_their_email_costs_one_statement(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let token = app.sign_up("jane").await;
    app.sign_up("john").await;
    for (query, email) in [
        ("{ viewer { username } }", None),
        ("{ viewer { username email } }", Some("/viewer/email")),
        (
            "{ me: viewer { ... on User { mail: email } } }",
            Some("/me/mail"),
        ),
        (
            "{ viewer { ...Private } } fragment Private on User { email }",
            Some("/viewer/email"),
        ),
    ] {
        let (statements, reply) = counted(&app, Some(&token), query).await;
        assert_eq!(statements, 1, "{query}: {}", reply.body);
        if let Some(pointer) = email {
            assert_eq!(reply.data(pointer), "jane@example.com", "{query}");
        }
    }
    let reply = app
        .gql(
            Some(&token),
            "{ viewer { email } user(username: \"john\") { email } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/viewer/email"), "jane@example.com");
    assert_eq!(reply.data("/user/email"), &serde_json::Value::Null);
    app.stop().await;
}

on_both_databases!(the_viewer_with_their_email_costs_one_statement);

/// The page of collaborators the batched-pages test asks of each dataset.
const COLLABORATORS_PAGE: &str = "collaborators(first: 1) { totalCount pageInfo { hasNextPage endCursor } nodes { user { username } } }";

/// The selection the batched-pages test asks of each organization.
fn organization_pages() -> String {
    format!(
        "username
  members(first: 2, after: $m) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ role user {{ username }} }} }}
  }}
  datasets(first: 2, after: $d) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ name public {COLLABORATORS_PAGE} }} }}
  }}"
    )
}

/// A page loaded with other parents' pages, in one statement, is the page its parent alone
/// gets: the same rows, order, `hasNextPage` and cursors, with and without `after`, for
/// parents with fewer rows than the page and with more, and with the dataset visibility
/// filter hiding rows inside and beyond a page. Five organizations (2 to 10 members, 1 to 5
/// datasets, every other one private), asked for together through `viewer.memberships` and
/// one by one through `organization(username:)` and `dataset(fullName:)`, by their admin
/// and by a member who collaborates on all their datasets but `d3` (private).
async fn batched_pages_are_the_pages_one_parent_gets(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let jane = app.sign_up("jane").await;
    let ada = app.sign_up("ada").await;
    for m in 1..=8 {
        app.sign_up(&format!("m{m}")).await;
    }
    for k in 0..5 {
        let org = format!("o{k}");
        app.create_org(&jane, &org).await;
        app.add_member(&jane, &org, "ada", "MEMBER", json!(null))
            .await
            .data("/addMember/member");
        for m in 1..=2 * k {
            app.add_member(&jane, &org, &format!("m{m}"), "MEMBER", json!(null))
                .await
                .data("/addMember/member");
        }
        for i in 0..=k {
            let name = format!("d{i}");
            app.create_dataset(&jane, Some(&org), &name, i % 2 == 0)
                .await
                .data("/createDataset/dataset/id");
            let mut collaborators: Vec<String> =
                (1..=i.min(2 * k)).map(|m| format!("m{m}")).collect();
            // The viewer may see every dataset's collaborators but d3's, which they may
            // not see at all (private, and they are not on it).
            if i != 3 {
                collaborators.push("ada".to_owned());
            }
            for user in collaborators {
                app.gql(
                    Some(&jane),
                    "mutation($d: String!, $u: String!) { addCollaborator(input: { dataset: $d, username: $u }) { collaborator { role } } }",
                    json!({ "d": format!("{org}/{name}"), "u": user }),
                )
                .await
                .data("/addCollaborator/collaborator/role");
            }
        }
    }
    let pages = organization_pages();
    let batched = format!(
        "query($m: String, $d: String) {{ viewer {{ memberships {{ organization {{ {pages} }} }} }} }}"
    );
    let alone = format!(
        "query($o: String!, $m: String, $d: String) {{ organization(username: $o) {{ {pages} }} }}"
    );
    let collaborators_alone =
        format!("query($f: String!) {{ dataset(fullName: $f) {{ {COLLABORATORS_PAGE} }} }}");
    // Cursors at `ada` (the first member everywhere) and at `d0` and `d1`.
    let first = app
        .gql(
            Some(&ada),
            &alone,
            json!({ "o": "o4", "m": null, "d": null }),
        )
        .await;
    let cursor = |pointer: &str| first.data(pointer).as_str().unwrap().to_owned();
    let ada_cursor = cursor("/organization/members/edges/0/cursor");
    let d0 = cursor("/organization/datasets/edges/0/cursor");
    let d1 = cursor("/organization/datasets/edges/1/cursor");
    let mut seen_more = [false; 2];
    let mut seen_hidden = false;
    let cases = [
        (None, None),
        (Some(&ada_cursor), Some(&d0)),
        (Some(&ada_cursor), Some(&d1)),
    ];
    for (viewer, (m, d)) in [&ada, &jane]
        .into_iter()
        .flat_map(|v| cases.map(|c| (v, c)))
    {
        let variables = json!({ "m": m, "d": d });
        let reply = app.gql(Some(viewer), &batched, variables.clone()).await;
        let organizations = reply.data("/viewer/memberships").as_array().unwrap();
        assert_eq!(organizations.len(), 5, "{}", reply.body);
        for membership in organizations {
            let organization = &membership["organization"];
            let username = organization["username"].as_str().unwrap();
            let mut variables = variables.clone();
            variables["o"] = json!(username);
            let one = app.gql(Some(viewer), &alone, variables).await;
            assert_eq!(
                organization,
                one.data("/organization"),
                "{username} {m:?} {d:?}"
            );
            for (i, connection) in ["members", "datasets"].into_iter().enumerate() {
                seen_more[i] |= organization[connection]["pageInfo"]["hasNextPage"] == true;
            }
            let datasets = organization["datasets"]["totalCount"].as_u64().unwrap();
            let k: u64 = username[1..].parse().unwrap();
            seen_hidden |= datasets < k + 1;
            for edge in organization["datasets"]["edges"].as_array().unwrap() {
                let name = edge["node"]["name"].as_str().unwrap();
                let one = app
                    .gql(
                        Some(viewer),
                        &collaborators_alone,
                        json!({ "f": format!("{username}/{name}") }),
                    )
                    .await;
                assert_eq!(
                    edge["node"]["collaborators"],
                    *one.data("/dataset/collaborators"),
                    "{username}/{name}"
                );
            }
        }
    }
    // The cases above are the ones the test is for: full pages with more rows after them,
    // and datasets the viewer may not see.
    assert_eq!(seen_more, [true, true]);
    assert!(seen_hidden);
    app.stop().await;
}

on_both_databases!(batched_pages_are_the_pages_one_parent_gets);

/// `organization(username:)` reads the viewer's membership and the page of members the
/// query asks for with the organization, so a member's page of members costs one statement
/// after the credential's check (one indexed look-up of the token's user and session, the
/// only statement a signed-in request adds); a non-member is refused the list after the same
/// one statement (which reads no member).
async fn an_organizations_members_page_costs_one_statement(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let admin = app.sign_up("ann").await;
    let outsider = app.sign_up("otto").await;
    app.sign_up("bob").await;
    app.create_org(&admin, "acme").await;
    app.add_member(&admin, "acme", "bob", "MEMBER", json!(null))
        .await
        .data("/addMember/member");
    let members = "{ organization(username: \"ACME\") { username viewerRole
        members(first: 20) { nodes { role user { username } } pageInfo { hasNextPage } } } }";
    let cases = [
        (Some(admin.as_str()), members, 1 + 1, "ADMIN"),
        (Some(outsider.as_str()), members, 1 + 1, ""),
        (
            Some(outsider.as_str()),
            "{ organization(username: \"acme\") { username viewerRole } }",
            1 + 1,
            "",
        ),
        (
            None,
            "{ organization(username: \"acme\") { username } }",
            1,
            "",
        ),
    ];
    for (token, query, statements, role) in cases {
        let (counted, reply) = counted(&app, token, query).await;
        assert_eq!(counted, statements, "{query}: {}", reply.body);
        if role == "ADMIN" {
            assert_eq!(reply.data("/organization/viewerRole"), "ADMIN");
            let nodes = reply
                .data("/organization/members/nodes")
                .as_array()
                .unwrap();
            let names: Vec<_> = nodes
                .iter()
                .map(|n| n["user"]["username"].clone())
                .collect();
            assert_eq!(names, [json!("ann"), json!("bob")]);
        } else if token.is_some() && query == members {
            reply.expect_code("FORBIDDEN");
        } else {
            assert_eq!(reply.data("/organization/username"), "acme");
            if token.is_some() {
                assert_eq!(
                    reply.data("/organization/viewerRole"),
                    &serde_json::Value::Null
                );
            }
        }
    }
    app.stop().await;
}

on_both_databases!(an_organizations_members_page_costs_one_statement);

/// The page read with its organization is the page the `members` field asks for, however
/// it asks: variables and cursors, fragments, `first: 0`; a field it cannot read ahead
/// (two aliased `members`, invalid arguments) is answered as before, by the loader.
async fn a_members_page_read_with_its_organization_is_the_page_asked_for(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let ann = app.sign_up("ann").await;
    for name in ["bob", "cy"] {
        app.sign_up(name).await;
    }
    app.create_org(&ann, "acme").await;
    for name in ["bob", "cy"] {
        app.add_member(&ann, "acme", name, "MEMBER", json!(null))
            .await
            .data("/addMember/member");
    }
    let names = |nodes: &serde_json::Value| -> Vec<String> {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["user"]["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = "query($first: Int, $after: String) { organization(username: \"acme\") {
        members(first: $first, after: $after) { nodes { user { username } } pageInfo { hasNextPage endCursor } } } }";
    let mut after = serde_json::Value::Null;
    let mut seen = Vec::new();
    for expected_more in [true, true, false] {
        let before = app.state().statements.count();
        let reply = app
            .gql(Some(&ann), page, json!({ "first": 1, "after": after }))
            .await;
        let statements = app.state().statements.count() - before;
        // The credential's check, and the organization with its page.
        assert_eq!(statements, 2, "{}", reply.body);
        seen.extend(names(reply.data("/organization/members/nodes")));
        let info = reply.data("/organization/members/pageInfo");
        assert_eq!(info["hasNextPage"], expected_more, "{}", reply.body);
        after = info["endCursor"].clone();
    }
    assert_eq!(seen, ["ann", "bob", "cy"]);

    let cases = [
        (
            "{ organization(username: \"acme\") { ...F } }
             fragment F on Organization { members(first: 2) { nodes { user { username } } } }",
            1,
            vec![("/organization/members/nodes", vec!["ann", "bob"])],
        ),
        (
            "{ organization(username: \"acme\") { members(first: 0) { nodes { user { username } } } } }",
            1,
            vec![("/organization/members/nodes", vec![])],
        ),
        (
            "{ organization(username: \"acme\") {
                 a: members(first: 1) { nodes { user { username } } }
                 b: members(first: 3) { nodes { user { username } } } } }",
            // The organization, then one page statement for each page size.
            3,
            vec![
                ("/organization/a/nodes", vec!["ann"]),
                ("/organization/b/nodes", vec!["ann", "bob", "cy"]),
            ],
        ),
    ];
    for (query, statements, pages) in cases {
        let (counted, reply) = counted(&app, Some(&ann), query).await;
        // And the credential's check.
        assert_eq!(counted, statements + 1, "{query}: {}", reply.body);
        for (pointer, expected) in pages {
            assert_eq!(names(reply.data(pointer)), expected, "{query}");
        }
    }
    let reply = app
        .gql(Some(&ann), page, json!({ "first": 101, "after": null }))
        .await;
    reply.expect_code("BAD_USER_INPUT");
    app.stop().await;
}

on_both_databases!(a_members_page_read_with_its_organization_is_the_page_asked_for);

/// `viewer { memberships }` reads every membership of the viewer, and the role checks on
/// those organizations (`viewerRole`, the members list) answer from them: no statement of
/// their own. An organization the viewer is not a member of is still refused its members
/// in the same query.
async fn the_viewers_memberships_answer_their_role_checks(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let ann = app.sign_up("ann").await;
    let carl = app.sign_up("carl").await;
    app.create_org(&ann, "acme").await;
    app.create_org(&carl, "beta").await;
    app.create_org(&carl, "other").await;
    app.add_member(&carl, "beta", "ann", "MEMBER", json!(null))
        .await
        .data("/addMember/member");
    app.gql(
        Some(&carl),
        "mutation { updateOrganization(input: { organization: \"beta\", displayName: \"Beta Ltd\" }) { organization { id } } }",
        json!({}),
    )
    .await
    .data("/updateOrganization/organization");
    let roles = "{ viewer { memberships { role organization { username displayName viewerRole
        members(first: 5) { nodes { role user { username } } } } } } }";
    // The viewer; their memberships with those organizations' accounts and settings rows
    // (`displayName`); the members pages.
    let (statements, reply) = counted(&app, Some(&ann), roles).await;
    assert_eq!(statements, 3, "{}", reply.body);
    assert_eq!(
        reply.data("/viewer/memberships"),
        &json!([
            { "role": "ADMIN", "organization": { "username": "acme", "displayName": null, "viewerRole": "ADMIN",
              "members": { "nodes": [{ "role": "ADMIN", "user": { "username": "ann" } }] } } },
            { "role": "MEMBER", "organization": { "username": "beta", "displayName": "Beta Ltd", "viewerRole": "MEMBER",
              "members": { "nodes": [
                  { "role": "MEMBER", "user": { "username": "ann" } },
                  { "role": "ADMIN", "user": { "username": "carl" } }] } } },
        ])
    );
    let reply = app
        .gql(
            Some(&ann),
            "{ viewer { memberships { organization { username } } }
               other: organization(username: \"other\") { viewerRole members(first: 5) { nodes { role } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reply.expect_code("FORBIDDEN"),
        "only members may see the organization's members"
    );
    assert_eq!(reply.body["data"]["other"], json!({ "viewerRole": null }));
    assert_eq!(
        reply.body["data"]["viewer"]["memberships"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.stop().await;
}

on_both_databases!(the_viewers_memberships_answer_their_role_checks);

/// A query runs its statements on one connection that it holds for the request; a mutation
/// takes one per statement and one for its transaction, and never holds one while it waits
/// for another. So a pool of a single connection serves both, concurrently: were a request
/// to hold the connection while waiting for a second, it would wait out the acquire timeout
/// and answer `INTERNAL_SERVER_ERROR`.
async fn one_pooled_connection_serves_queries_and_mutations(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let mut config = test_config(&db.url);
    config.db_max_connections = 1;
    config.request_timeout_seconds = 600;
    let app = spawn_with(config).await;
    let token = seed(&app, 3).await;
    let rename = |o: usize, round: usize| {
        let app = &app;
        let token = &token;
        async move {
            app.gql(
                Some(token),
                "mutation($input: UpdateOrganizationInput!) {
                   updateOrganization(input: $input) { organization { username displayName } }
                 }",
                json!({ "input": { "organization": format!("org{o:03}"), "displayName": format!("Org {o} / {round}") } }),
            )
            .await
        }
    };
    for round in 0..3 {
        let dashboards = futures_util::future::join_all(
            (0..4).map(|_| app.gql(Some(&token), DASHBOARD, json!({}))),
        );
        let renames = futures_util::future::join_all((0..3).map(|o| rename(o, round)));
        let (dashboards, renames) = tokio::join!(dashboards, renames);
        for reply in dashboards {
            let memberships = reply.data("/viewer/memberships").as_array().unwrap();
            assert_eq!(memberships.len(), 3, "{:?}", reply.body);
        }
        for (o, reply) in renames.into_iter().enumerate() {
            assert_eq!(
                reply.data("/updateOrganization/organization/displayName"),
                &json!(format!("Org {o} / {round}")),
                "{:?}",
                reply.body
            );
        }
    }
    let reply = app
        .gql(
            Some(&token),
            "{ organization(username: \"org002\") { displayName } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data("/organization/displayName"), "Org 2 / 2");
    app.stop().await;
}

on_both_databases!(one_pooled_connection_serves_queries_and_mutations);

/// The first two columns, as text, of every row `sql` answers on `conn`.
async fn text_pairs(conn: &DatabaseConnection, sql: &str) -> Vec<(String, String)> {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let first: String = row.try_get_by_index(0).unwrap();
            let second: String = row.try_get_by_index(1).unwrap();
            (first, second)
        })
        .collect()
}

/// The member and collaborator page indexes cover their pages on PostgreSQL and keep their
/// uniqueness: with the copied `username` once rows carry it (the third migration), with
/// the page's other columns and an `account (id)` index for the joined account columns
/// before it (the second), plain before that; each migration reverts to the state before
/// it. On SQLite, which has no `INCLUDE`, the unique page indexes stay plain throughout,
/// and the fourth migration adds covering indexes beside them, which the pages read alone.
async fn page_indexes_cover_their_pages(backend: Backend) {
    use migration::MigratorTrait;

    let db = TestDatabase::create(&backend).await;
    let conn = orgql::db::connect(&db.url, 1).await.unwrap();
    orgql::db::migrate(&conn).await.unwrap();
    let postgres = conn.get_database_backend() == sea_orm::DbBackend::Postgres;
    let names = "('membership_organization_username', 'collaborator_dataset_username', \
                 'account_page_user', 'membership_page', 'collaborator_page')";
    let sql = if postgres {
        format!(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN {names} ORDER BY indexname"
        )
    } else {
        format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN {names} ORDER BY name"
        )
    };
    let indexes = || text_pairs(&conn, &sql);
    let unique_indexes = || {
        vec![
            (
                "collaborator_dataset_username",
                "(dataset_id, username_key)",
            ),
            (
                "membership_organization_username",
                "(organization_id, username_key)",
            ),
        ]
    };
    // (name, how its definition ends) of each page index after the migrations up to the
    // latest minus `undone`.
    let expected = |undone: usize| -> Vec<(&str, &str)> {
        match (postgres, undone) {
            // The fourth migration changes nothing on PostgreSQL.
            (true, 0 | 1) => vec![
                (
                    "collaborator_dataset_username",
                    "(dataset_id, username_key) INCLUDE (user_id, role, username)",
                ),
                (
                    "membership_organization_username",
                    "(organization_id, username_key) INCLUDE (user_id, role, default_dataset_role, joined_at, username)",
                ),
            ],
            (true, 2) => vec![
                ("account_page_user", "(id) INCLUDE (username, created_at)"),
                (
                    "collaborator_dataset_username",
                    "(dataset_id, username_key) INCLUDE (user_id, role)",
                ),
                (
                    "membership_organization_username",
                    "(organization_id, username_key) INCLUDE (user_id, role, default_dataset_role, joined_at)",
                ),
            ],
            // SQLite has no INCLUDE: the fourth migration adds covering indexes beside the
            // unique ones, which stay as the initial migration made them.
            (false, 0) => vec![
                (
                    "collaborator_dataset_username",
                    "(dataset_id, username_key)",
                ),
                (
                    "collaborator_page",
                    "(dataset_id, username_key, user_id, role, username)",
                ),
                (
                    "membership_organization_username",
                    "(organization_id, username_key)",
                ),
                (
                    "membership_page",
                    "(organization_id, username_key, user_id, role, default_dataset_role, joined_at, username)",
                ),
            ],
            _ => unique_indexes(),
        }
    };
    let check = |found: &[(String, String)], undone: usize| {
        let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
        let want = expected(undone);
        let want_names: Vec<&str> = want.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, want_names, "{undone} undone");
        for ((name, definition), (_, end)) in found.iter().zip(&want) {
            let unique = name.ends_with("_username");
            assert_eq!(
                definition.starts_with("CREATE UNIQUE INDEX"),
                unique,
                "{definition}"
            );
            let definition = definition.replace('"', "");
            let definition = definition.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(definition.ends_with(end), "{name}: {definition}");
        }
    };
    let covering = indexes().await;
    check(&covering, 0);
    if !postgres {
        // Each SQLite page reads its index alone, as PostgreSQL's do.
        for (page, index) in [
            (
                "SELECT organization_id, user_id, username_key, role, default_dataset_role, \
                 joined_at, username FROM membership r WHERE r.organization_id = 1 \
                 AND r.username_key > 'a' ORDER BY r.username_key LIMIT 21",
                "membership_page",
            ),
            (
                "SELECT dataset_id, user_id, username_key, role, username FROM collaborator r \
                 WHERE r.dataset_id = 1 ORDER BY r.username_key LIMIT 101",
                "collaborator_page",
            ),
        ] {
            use sea_orm::{ConnectionTrait, Statement};
            let plan: Vec<String> = conn
                .query_all_raw(Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    format!("EXPLAIN QUERY PLAN {page}"),
                ))
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get_by_index::<String>(3).unwrap())
                .collect();
            assert!(
                plan.iter()
                    .any(|detail| detail.contains(&format!("USING COVERING INDEX {index}"))),
                "{plan:?}"
            );
        }
    }
    undo_migrations_after(&conn, "m20261203_000001_sqlite_covering_page_indexes").await;
    for undone in 1..=3 {
        migration::Migrator::down(&conn, Some(1)).await.unwrap();
        check(&indexes().await, undone);
    }
    migration::Migrator::up(&conn, None).await.unwrap();
    assert_eq!(indexes().await, covering);
    conn.close().await.ok();
}

on_both_databases!(page_indexes_cover_their_pages);

/// Undoes every applied migration after the one named `name`, newest first. (On a pool of
/// one connection: another pooled SQLite connection may still hold a read snapshot from
/// before a migration's schema change.)
async fn undo_migrations_after(conn: &sea_orm::DatabaseConnection, name: &str) {
    use migration::MigratorTrait;
    loop {
        let applied = migration::Migrator::get_applied_migrations(conn)
            .await
            .unwrap();
        let last = applied.last().expect("migrations applied");
        if last.name() == name {
            return;
        }
        migration::Migrator::down(conn, Some(1)).await.unwrap();
    }
}

/// Members and collaborators answer `user { id username }` from their own rows, which copy
/// the user's username as typed; `createdAt` on those users costs one more statement per
/// level that asks for it. The copy is the database's to keep: it follows the account when the account
/// changes, and a row cannot disagree with it.
async fn members_answer_their_users_from_their_rows(backend: Backend) {
    use sea_orm::ConnectionTrait;

    let db = TestDatabase::create(&backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let jane = app.sign_up("Jane").await;
    app.sign_up("Ada_Lovelace").await;
    app.create_org(&jane, "acme").await;
    app.add_member(&jane, "acme", "ada_lovelace", "MEMBER", json!("LABELER"))
        .await
        .data("/addMember/member/role");
    // Created under the organization: the fan-out makes Ada a collaborator.
    app.create_dataset(&jane, Some("acme"), "faces", false)
        .await
        .data("/createDataset/dataset/id");

    let pages = |user: &str| {
        format!(
            r#"{{ organization(username: "acme") {{
                 members {{ nodes {{ user {{ {user} }} }} }}
                 datasets {{ nodes {{ collaborators {{ nodes {{ user {{ {user} }} }} }} }} }} }} }}"#
        )
    };
    let users = |reply: &crate::helpers::Reply, field: &str| -> Vec<(String, String)> {
        let members = reply
            .data("/organization/members/nodes")
            .as_array()
            .unwrap();
        let dataset = &reply.data("/organization/datasets/nodes")[0];
        let collaborators = dataset["collaborators"]["nodes"].as_array().unwrap();
        members
            .iter()
            .map(|m| ("member", m))
            .chain(collaborators.iter().map(|c| ("collaborator", c)))
            .map(|(kind, node)| {
                let value = &node["user"][field];
                (kind.to_owned(), value.as_str().unwrap().to_owned())
            })
            .collect()
    };
    let typed = |names: [&str; 2]| -> Vec<(String, String)> {
        ["member", "collaborator"]
            .iter()
            .flat_map(|kind| names.map(|n| (kind.to_string(), n.to_owned())))
            .collect()
    };

    let (plain, reply) = counted(&app, Some(&jane), &pages("id username")).await;
    assert_eq!(users(&reply, "username"), typed(["Ada_Lovelace", "Jane"]));

    let (with_created, reply) = counted(&app, Some(&jane), &pages("username createdAt")).await;
    // One statement for the members' users, one for the collaborators' (a level deeper).
    assert_eq!(with_created, plain + 2, "{}", reply.body);
    let viewer = app
        .gql(Some(&jane), "{ viewer { createdAt } }", json!({}))
        .await;
    let jane_created = viewer
        .data("/viewer/createdAt")
        .as_str()
        .unwrap()
        .to_owned();
    let created = users(&reply, "createdAt");
    assert_eq!(created.len(), 4);
    assert_eq!(created[1].1, jane_created);
    assert_eq!(created[3].1, jane_created);
    assert!(created.iter().all(|(_, at)| !at.is_empty()));

    // The account changes (no mutation renames yet; the database must follow any change).
    let state = app.state();
    state
        .db
        .execute_unprepared(
            "UPDATE account SET username = 'Ada-L', username_key = 'ada-l' \
             WHERE username_key = 'ada_lovelace'",
        )
        .await
        .unwrap();
    let reply = app.gql(Some(&jane), &pages("username"), json!({})).await;
    assert_eq!(users(&reply, "username"), typed(["Ada-L", "Jane"]));

    // A copy that disagrees with its account is refused.
    for table in ["membership", "collaborator"] {
        let refused = state
            .db
            .execute_unprepared(&format!(
                "UPDATE {table} SET username = 'JANE' WHERE username_key = 'jane'"
            ))
            .await;
        assert!(refused.is_err(), "{table}: {refused:?}");
    }
    let reply = app.gql(Some(&jane), &pages("username"), json!({})).await;
    assert_eq!(users(&reply, "username"), typed(["Ada-L", "Jane"]));
    app.stop().await;
}

on_both_databases!(members_answer_their_users_from_their_rows);

/// The migration that copies usernames onto memberships and collaborator entries keeps
/// every row of a database that already has some (on SQLite it rebuilds both tables), fills
/// the copies from the accounts, and its `down` keeps every row again.
async fn the_username_copies_migrate_existing_rows(backend: Backend) {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;

    let db = TestDatabase::create(&backend).await;
    let conn = orgql::db::connect(&db.url, 1).await.unwrap();
    // The schema before the copies: the first two migrations.
    migration::Migrator::up(&conn, Some(2)).await.unwrap();
    let at = "'2026-01-02 03:04:05+00:00'";
    for statement in [
        format!(
            "INSERT INTO account (id, kind, username, username_key, created_at) VALUES \
             (1, 'USER', 'Jane', 'jane', {at}), (2, 'USER', 'Ada_L', 'ada_l', {at}), \
             (3, 'ORGANIZATION', 'Acme', 'acme', {at})"
        ),
        "INSERT INTO user_account (account_id, email, email_key, password_hash) VALUES \
         (1, 'jane@example.com', 'jane@example.com', 'x'), (2, 'ada@example.com', 'ada@example.com', 'x')"
            .to_owned(),
        "INSERT INTO organization (account_id, display_name) VALUES (3, NULL)".to_owned(),
        format!(
            "INSERT INTO membership (organization_id, user_id, username_key, role, default_dataset_role, joined_at) \
             VALUES (3, 1, 'jane', 'ADMIN', NULL, {at}), (3, 2, 'ada_l', 'MEMBER', 'LABELER', {at})"
        ),
        format!(
            "INSERT INTO dataset (id, owner_id, name, name_key, description, public, created_at) \
             VALUES (1, 3, 'Faces', 'faces', 'd', false, {at})"
        ),
        "INSERT INTO collaborator (dataset_id, user_id, username_key, role) VALUES \
         (1, 1, 'jane', 'ADMIN'), (1, 2, 'ada_l', 'LABELER')"
            .to_owned(),
    ] {
        conn.execute_unprepared(&statement).await.unwrap();
    }
    let rows = |sql: &'static str| text_pairs(&conn, sql);
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };

    migration::Migrator::up(&conn, None).await.unwrap();
    let copied = pairs(&[("ada_l", "Ada_L"), ("jane", "Jane")]);
    assert_eq!(
        rows("SELECT username_key, username FROM membership ORDER BY username_key").await,
        copied
    );
    assert_eq!(
        rows("SELECT username_key, username FROM collaborator ORDER BY username_key").await,
        copied
    );
    assert_eq!(
        rows("SELECT username_key, role FROM membership ORDER BY username_key").await,
        pairs(&[("ada_l", "MEMBER"), ("jane", "ADMIN")])
    );

    // Down past the username copies (the migrations after them go first).
    undo_migrations_after(&conn, "m20261202_000002_member_usernames").await;
    migration::Migrator::down(&conn, Some(1)).await.unwrap();
    assert_eq!(
        rows("SELECT username_key, role FROM membership ORDER BY username_key").await,
        pairs(&[("ada_l", "MEMBER"), ("jane", "ADMIN")])
    );
    assert_eq!(
        rows("SELECT username_key, role FROM collaborator ORDER BY username_key").await,
        pairs(&[("ada_l", "LABELER"), ("jane", "ADMIN")])
    );
    let gone = conn
        .execute_unprepared("SELECT username FROM membership")
        .await;
    assert!(gone.is_err(), "the column is gone after down: {gone:?}");
    migration::Migrator::up(&conn, None).await.unwrap();
    assert_eq!(
        rows("SELECT username_key, username FROM membership ORDER BY username_key").await,
        copied
    );
    conn.close().await.ok();
}

on_both_databases!(the_username_copies_migrate_existing_rows);

/// The statements of an admin's dashboard of logs: every organization's audit log (one
/// filtered, one not) and pending invitations, with their counts, and each dataset's log.
async fn logs_statements(backend: &Backend, n: usize) -> u64 {
    let db = TestDatabase::create(backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    let ann = app.sign_up("ann").await;
    app.sign_up("bob").await;
    for i in 0..n {
        let org = format!("org{i}");
        app.create_org(&ann, &org).await;
        app.create_dataset(&ann, Some(&org), "d", false)
            .await
            .data("/createDataset/dataset/id");
        app.gql(
            Some(&ann),
            "mutation($o: String!) { inviteMember(input: { organization: $o, username: \"bob\" }) { invitation { id } } }",
            json!({ "o": org }),
        )
        .await
        .data("/inviteMember/invitation/id");
    }
    let query = "{ viewer { memberships { organization {
        auditLog(first: 5) { totalCount nodes { action actorUsername } }
        adds: auditLog(first: 5, actions: [COLLABORATOR_ADDED]) { totalCount nodes { action } }
        invitations(first: 5, state: PENDING) { totalCount nodes { state invitee { username } } }
        datasets { nodes { auditLog(first: 5) { totalCount nodes { action } } } } } } } }";
    let (statements, reply) = counted(&app, Some(&ann), query).await;
    let memberships = reply.data("/viewer/memberships").as_array().unwrap();
    assert_eq!(memberships.len(), n);
    for m in memberships {
        let org = &m["organization"];
        assert_eq!(org["auditLog"]["totalCount"], 4, "{org}");
        assert_eq!(org["adds"]["totalCount"], 1, "{org}");
        assert_eq!(org["invitations"]["totalCount"], 1, "{org}");
        assert_eq!(
            org["datasets"]["nodes"][0]["auditLog"]["totalCount"], 2,
            "{org}"
        );
    }
    app.stop().await;
    statements
}

/// The audit logs and invitations batch like every other connection: as many statements
/// for one organization as for five.
async fn logs_and_invitations_cost_the_same_statements_at_every_size(backend: Backend) {
    let one = logs_statements(&backend, 1).await;
    let five = logs_statements(&backend, 5).await;
    assert_eq!(one, five);
}

on_both_databases!(logs_and_invitations_cost_the_same_statements_at_every_size);
