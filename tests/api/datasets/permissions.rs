//! API.md's dataset table, every cell, on public and private datasets of users and
//! organizations; "invisible means absent"; owners and organization admins acting as ADMIN.

use super::*;

on_both_databases!(
    every_cell_of_the_dataset_role_table,
    an_invisible_private_dataset_answers_exactly_like_a_missing_one,
    owners_and_organization_admins_act_as_admin_without_an_entry,
);

// ---------------------------------------------------------------------------------------------
// The dataset table, cell by cell
// ---------------------------------------------------------------------------------------------

/// What a cell expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// It works.
    Yes,
    /// A query answers as if there were no such dataset: `null`, not listed.
    Absent,
    Forbidden,
    NotFound,
    Unauthenticated,
}
const Y: Want = Want::Yes;
const A: Want = Want::Absent;
const F: Want = Want::Forbidden;
const NF: Want = Want::NotFound;
const U: Want = Want::Unauthenticated;

/// The table's columns. `OWNER` is the personal owner on a user's dataset, and an admin of
/// the owning organization on an organization's dataset; neither has a collaborator entry.
/// The five roles are collaborator entries; `OTHER` is signed in and not a collaborator.
const COLUMNS: [&str; 8] = [
    "OWNER",
    "VIEWER",
    "LABELER",
    "REVIEWER",
    "MANAGER",
    "ADMIN",
    "OTHER",
    "ANONYMOUS",
];

/// The effective role (`Dataset.viewerRole`) of each column, whenever it sees the dataset.
const VIEWER_ROLE: [Option<&str>; 8] = [
    Some("ADMIN"),
    Some("VIEWER"),
    Some("LABELER"),
    Some("REVIEWER"),
    Some("MANAGER"),
    Some("ADMIN"),
    None,
    None,
];

#[derive(Clone, Copy, Debug)]
enum Read {
    /// `dataset(fullName:)`, with its `viewerRole`.
    Query,
    /// The owner's `datasets` connection, with its `totalCount`.
    List,
    /// `node(id:)`.
    Node,
    /// `Dataset.collaborators`.
    Collaborators,
}

#[derive(Clone, Copy, Debug)]
enum Write {
    /// addCollaborator nick as LABELER.
    AddLabeler,
    /// addCollaborator nick as ADMIN.
    AddAdmin,
    /// updateCollaborator lee: LABELER → REVIEWER.
    ChangeLabeler,
    /// updateCollaborator lee: LABELER → ADMIN.
    GrantAdmin,
    /// updateCollaborator ada: ADMIN → MANAGER.
    ChangeAdmin,
    /// removeCollaborator lee (LABELER).
    RemoveLabeler,
    /// removeCollaborator ada (ADMIN).
    RemoveAdmin,
    /// updateDataset's description.
    UpdateSettings,
    /// deleteDataset.
    Delete,
    /// cloneDataset into the actor's own account.
    Clone,
    /// transferDataset to `<actor>-lab`, an organization the actor administers.
    Transfer,
}

#[rustfmt::skip]
const READS_PRIVATE: [(Read, [Want; 8]); 4] = [
    //                    OWNER VIEWER LABELER REVIEWER MANAGER ADMIN OTHER ANONYMOUS
    (Read::Query,         [Y,   Y,     Y,      Y,       Y,      Y,    A,    A]),
    (Read::List,          [Y,   Y,     Y,      Y,       Y,      Y,    A,    A]),
    (Read::Node,          [Y,   Y,     Y,      Y,       Y,      Y,    A,    A]),
    (Read::Collaborators, [Y,   Y,     Y,      Y,       Y,      Y,    A,    A]),
];

#[rustfmt::skip]
const READS_PUBLIC: [(Read, [Want; 8]); 4] = [
    //                    OWNER VIEWER LABELER REVIEWER MANAGER ADMIN OTHER ANONYMOUS
    (Read::Query,         [Y,   Y,     Y,      Y,       Y,      Y,    Y,    Y]),
    (Read::List,          [Y,   Y,     Y,      Y,       Y,      Y,    Y,    Y]),
    (Read::Node,          [Y,   Y,     Y,      Y,       Y,      Y,    Y,    Y]),
    (Read::Collaborators, [Y,   Y,     Y,      Y,       Y,      Y,    F,    U]),
];

#[rustfmt::skip]
const WRITES_PRIVATE: [(Write, [Want; 8]); 11] = [
    //                     OWNER VIEWER LABELER REVIEWER MANAGER ADMIN OTHER ANONYMOUS
    (Write::AddLabeler,     [Y,  F,     F,      F,       Y,      Y,    NF,   U]),
    (Write::AddAdmin,       [Y,  F,     F,      F,       F,      Y,    NF,   U]),
    (Write::ChangeLabeler,  [Y,  F,     F,      F,       Y,      Y,    NF,   U]),
    (Write::GrantAdmin,     [Y,  F,     F,      F,       F,      Y,    NF,   U]),
    (Write::ChangeAdmin,    [Y,  F,     F,      F,       F,      Y,    NF,   U]),
    (Write::RemoveLabeler,  [Y,  F,     F,      F,       Y,      Y,    NF,   U]),
    (Write::RemoveAdmin,    [Y,  F,     F,      F,       F,      Y,    NF,   U]),
    (Write::UpdateSettings, [Y,  F,     F,      F,       F,      Y,    NF,   U]),
    (Write::Delete,         [Y,  F,     F,      F,       F,      Y,    NF,   U]),
    (Write::Clone,          [Y,  F,     F,      F,       F,      Y,    NF,   U]),
    (Write::Transfer,       [Y,  F,     F,      F,       F,      Y,    NF,   U]),
];

#[rustfmt::skip]
const WRITES_PUBLIC: [(Write, [Want; 8]); 11] = [
    //                     OWNER VIEWER LABELER REVIEWER MANAGER ADMIN OTHER ANONYMOUS
    (Write::AddLabeler,     [Y,  F,     F,      F,       Y,      Y,    F,    U]),
    (Write::AddAdmin,       [Y,  F,     F,      F,       F,      Y,    F,    U]),
    (Write::ChangeLabeler,  [Y,  F,     F,      F,       Y,      Y,    F,    U]),
    (Write::GrantAdmin,     [Y,  F,     F,      F,       F,      Y,    F,    U]),
    (Write::ChangeAdmin,    [Y,  F,     F,      F,       F,      Y,    F,    U]),
    (Write::RemoveLabeler,  [Y,  F,     F,      F,       Y,      Y,    F,    U]),
    (Write::RemoveAdmin,    [Y,  F,     F,      F,       F,      Y,    F,    U]),
    (Write::UpdateSettings, [Y,  F,     F,      F,       F,      Y,    F,    U]),
    (Write::Delete,         [Y,  F,     F,      F,       F,      Y,    F,    U]),
    (Write::Clone,          [Y,  Y,     Y,      Y,       Y,      Y,    Y,    U]),
    (Write::Transfer,       [Y,  F,     F,      F,       F,      Y,    F,    U]),
];

/// Who owns the dataset a table runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OwnerKind {
    /// `olivia`'s personal dataset; the collaborators are added one by one, and she drops
    /// her own creator's entry.
    Personal,
    /// `acme`'s dataset, created by its admin `founder`; the collaborators come from the
    /// members' default dataset roles (the fan-out), and `oscar`, also an admin of `acme`
    /// with no default role, is the `OWNER` column.
    Organization,
}

/// The users and tokens the table test acts with.
struct World {
    tokens: HashMap<&'static str, String>,
}

impl World {
    /// The username of a column (None: anonymous).
    fn actor(&self, kind: OwnerKind, column: usize) -> Option<&'static str> {
        match column {
            0 if kind == OwnerKind::Personal => Some("olivia"),
            0 => Some("oscar"),
            1 => Some("vera"),
            2 => Some("lee"),
            3 => Some("rita"),
            4 => Some("max"),
            5 => Some("ada"),
            6 => Some("sam"),
            _ => None,
        }
    }

    fn token(&self, username: Option<&str>) -> Option<&str> {
        username.map(|u| self.tokens[u].as_str())
    }

    async fn build(app: &TestApp) -> World {
        let mut tokens = HashMap::new();
        for name in [
            "olivia", "oscar", "founder", "vera", "lee", "rita", "max", "ada", "sam", "nick",
        ] {
            tokens.insert(name, app.sign_up(name).await);
        }
        let founder = tokens["founder"].clone();
        app.create_org(&founder, "acme").await;
        for (user, role, default) in [
            ("oscar", "ADMIN", Value::Null),
            ("vera", "MEMBER", json!("VIEWER")),
            ("lee", "MEMBER", json!("LABELER")),
            ("rita", "MEMBER", json!("REVIEWER")),
            ("max", "MEMBER", json!("MANAGER")),
            ("ada", "MEMBER", json!("ADMIN")),
            ("nick", "MEMBER", Value::Null),
        ] {
            app.add_member(&founder, "acme", user, role, default)
                .await
                .data("/addMember/member/role");
        }
        // Every signed-in actor administers an organization of their own, to transfer into.
        for name in [
            "olivia", "oscar", "vera", "lee", "rita", "max", "ada", "sam",
        ] {
            app.create_org(&tokens[name], &format!("{name}-lab")).await;
        }
        World { tokens }
    }

    /// A fresh dataset `name` of `kind` whose only collaborators are a VIEWER, a LABELER, a
    /// REVIEWER, a MANAGER and an ADMIN (the columns), so that each column's authority has
    /// exactly one source: the personal owner drops the ADMIN entry she got as creator, and
    /// `oscar` has none; only `founder`, who is no column, keeps his creator's entry.
    /// Returns (full name, global id).
    async fn fixture(
        &self,
        app: &TestApp,
        kind: OwnerKind,
        public: bool,
        name: &str,
    ) -> (String, String) {
        let roles_by_column = [
            ("vera", "VIEWER"),
            ("lee", "LABELER"),
            ("rita", "REVIEWER"),
            ("max", "MANAGER"),
            ("ada", "ADMIN"),
        ];
        let (full, id) = match kind {
            OwnerKind::Personal => {
                let olivia = self.tokens["olivia"].as_str();
                let (full, id) = created(app, olivia, None, name, public).await;
                for (user, role) in roles_by_column {
                    add_collaborator(app, Some(olivia), &full, user, Some(role))
                        .await
                        .data("/addCollaborator/collaborator/role");
                }
                mutate(
                    app,
                    Some(olivia),
                    "removeCollaborator",
                    json!({ "dataset": full, "username": "olivia" }),
                    "dataset { id }",
                )
                .await
                .data("/removeCollaborator/dataset");
                (full, id)
            }
            OwnerKind::Organization => {
                created(app, &self.tokens["founder"], Some("acme"), name, public).await
            }
        };
        let mut expected = roles(&roles_by_column);
        if kind == OwnerKind::Organization {
            expected.insert("founder".into(), "ADMIN".into());
        }
        assert_eq!(stored_collaborators(app, &full).await, expected);
        (full, id)
    }
}

/// Asserts a reply's outcome: no error for `Yes`/`Absent`, else the error code.
fn assert_outcome(reply: &Reply, want: Want, cell: &str) {
    match want {
        Want::Yes | Want::Absent => assert!(
            reply.body.get("errors").is_none(),
            "{cell}: expected no error, got {}",
            reply.body
        ),
        Want::Forbidden => assert_eq!(reply.codes(), ["FORBIDDEN"], "{cell}: {}", reply.body),
        Want::NotFound => assert_eq!(reply.codes(), ["NOT_FOUND"], "{cell}: {}", reply.body),
        Want::Unauthenticated => {
            assert_eq!(reply.codes(), ["UNAUTHENTICATED"], "{cell}: {}", reply.body)
        }
    }
}

/// One cell of a table: the column that acts, on which dataset, and what it should get.
struct Cell<'a> {
    kind: OwnerKind,
    column: usize,
    want: Want,
    label: String,
    full: &'a str,
    id: &'a str,
}

async fn check_read(app: &TestApp, world: &World, read: Read, cell: &Cell<'_>) {
    let &Cell {
        kind,
        column,
        want,
        full,
        id,
        ..
    } = cell;
    let label = cell.label.as_str();
    let actor = world.actor(kind, column);
    let token = world.token(actor);
    match read {
        Read::Query => {
            let reply = app.gql(token, DATASET, json!({ "f": full })).await;
            assert_outcome(&reply, want, label);
            if want == Y {
                assert_eq!(reply.data("/dataset/fullName"), full, "{label}");
                assert_eq!(
                    reply.data("/dataset/viewerRole"),
                    &json!(VIEWER_ROLE[column]),
                    "{label}: viewerRole"
                );
            } else {
                assert_eq!(reply.data("/dataset"), &Value::Null, "{label}");
            }
        }
        Read::List => {
            let (field, owner) = match kind {
                OwnerKind::Personal => ("user", "olivia"),
                OwnerKind::Organization => ("organization", "acme"),
            };
            let names = listed_datasets(app, token, field, owner).await;
            assert_eq!(
                names.iter().any(|n| n == full),
                want == Y,
                "{label}: {names:?}"
            );
        }
        Read::Node => {
            let reply = app.gql(token, NODE, json!({ "id": id })).await;
            assert_outcome(&reply, want, label);
            if want == Y {
                assert_eq!(reply.data("/node/fullName"), full, "{label}");
                assert_eq!(
                    reply.data("/node/viewerRole"),
                    &json!(VIEWER_ROLE[column]),
                    "{label}"
                );
            } else {
                assert_eq!(reply.data("/node"), &Value::Null, "{label}");
            }
        }
        Read::Collaborators => {
            let reply = app
                .gql(token, COLLABORATORS, json!({ "f": full, "first": 100 }))
                .await;
            assert_outcome(&reply, want, label);
            match want {
                Want::Yes => {
                    let listed: BTreeMap<String, String> = reply
                        .data("/dataset/collaborators/nodes")
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|n| {
                            (
                                n["user"]["username"].as_str().unwrap().to_owned(),
                                n["role"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect();
                    assert_eq!(listed, stored_collaborators(app, full).await, "{label}");
                    assert_eq!(
                        reply.data("/dataset/collaborators/totalCount"),
                        listed.len(),
                        "{label}"
                    );
                }
                Want::Absent => assert_eq!(reply.data("/dataset"), &Value::Null, "{label}"),
                _ => {}
            }
        }
    }
}

/// Performs `write` as the column's actor; returns the reply.
async fn perform(
    app: &TestApp,
    token: Option<&str>,
    actor: Option<&str>,
    write: Write,
    full: &str,
) -> Reply {
    let collab = "collaborator { role user { username } }";
    match write {
        Write::AddLabeler => add_collaborator(app, token, full, "nick", Some("LABELER")).await,
        Write::AddAdmin => add_collaborator(app, token, full, "nick", Some("ADMIN")).await,
        Write::ChangeLabeler | Write::GrantAdmin | Write::ChangeAdmin => {
            let (user, role) = match write {
                Write::ChangeLabeler => ("lee", "REVIEWER"),
                Write::GrantAdmin => ("lee", "ADMIN"),
                _ => ("ada", "MANAGER"),
            };
            mutate(
                app,
                token,
                "updateCollaborator",
                json!({ "dataset": full, "username": user, "role": role }),
                collab,
            )
            .await
        }
        Write::RemoveLabeler | Write::RemoveAdmin => {
            let user = if matches!(write, Write::RemoveLabeler) {
                "lee"
            } else {
                "ada"
            };
            mutate(
                app,
                token,
                "removeCollaborator",
                json!({ "dataset": full, "username": user }),
                "dataset { fullName }",
            )
            .await
        }
        Write::UpdateSettings => {
            mutate(
                app,
                token,
                "updateDataset",
                json!({ "dataset": full, "description": "changed" }),
                "dataset { description public }",
            )
            .await
        }
        Write::Delete => {
            mutate(
                app,
                token,
                "deleteDataset",
                json!({ "dataset": full }),
                "deletedDatasetId",
            )
            .await
        }
        Write::Clone => {
            mutate(
                app,
                token,
                "cloneDataset",
                json!({ "dataset": full }),
                "dataset { fullName description public viewerRole }",
            )
            .await
        }
        Write::Transfer => {
            mutate(
                app,
                token,
                "transferDataset",
                json!({ "dataset": full, "newOwner": format!("{}-lab", actor.unwrap_or("sam")) }),
                "dataset { fullName owner { __typename username } }",
            )
            .await
        }
    }
}

/// What the database must hold after `write` succeeded as `actor` on `full`.
fn expected_after(
    write: Write,
    mut world: BTreeMap<String, Stored>,
    full: &str,
    actor: &str,
) -> BTreeMap<String, Stored> {
    let set = |world: &mut BTreeMap<String, Stored>, user: &str, role: Option<&str>| {
        let collaborators = &mut world.get_mut(full).unwrap().collaborators;
        match role {
            Some(role) => collaborators.insert(user.into(), role.into()),
            None => collaborators.remove(user),
        };
    };
    match write {
        Write::AddLabeler => set(&mut world, "nick", Some("LABELER")),
        Write::AddAdmin => set(&mut world, "nick", Some("ADMIN")),
        Write::ChangeLabeler => set(&mut world, "lee", Some("REVIEWER")),
        Write::GrantAdmin => set(&mut world, "lee", Some("ADMIN")),
        Write::ChangeAdmin => set(&mut world, "ada", Some("MANAGER")),
        Write::RemoveLabeler => set(&mut world, "lee", None),
        Write::RemoveAdmin => set(&mut world, "ada", None),
        Write::UpdateSettings => world.get_mut(full).unwrap().description = "changed".into(),
        Write::Delete => {
            world.remove(full);
        }
        Write::Clone => {
            let source = world[full].clone();
            let name = full.split_once('/').unwrap().1;
            world.insert(
                format!("{actor}/{name}-clone"),
                Stored {
                    collaborators: roles(&[(actor, "ADMIN")]),
                    ..source
                },
            );
        }
        Write::Transfer => {
            // Into `<actor>-lab`; every collaborator stays.
            let moved = world.remove(full).unwrap();
            let name = full.split_once('/').unwrap().1;
            world.insert(format!("{actor}-lab/{name}"), moved);
        }
    }
    world
}

/// Checks the payload of a successful `write`.
async fn check_payload(
    app: &TestApp,
    reply: &Reply,
    write: Write,
    full: &str,
    actor: &str,
    id: &str,
) {
    let name = full.split_once('/').unwrap().1;
    match write {
        Write::AddLabeler | Write::AddAdmin => {
            assert_eq!(
                reply.data("/addCollaborator/collaborator/user/username"),
                "nick"
            );
        }
        Write::ChangeLabeler | Write::GrantAdmin | Write::ChangeAdmin => {
            reply.data("/updateCollaborator/collaborator/role");
        }
        Write::RemoveLabeler | Write::RemoveAdmin => {
            assert_eq!(reply.data("/removeCollaborator/dataset/fullName"), full);
        }
        Write::UpdateSettings => {
            assert_eq!(reply.data("/updateDataset/dataset/description"), "changed");
        }
        Write::Delete => {
            assert_eq!(reply.data("/deleteDataset/deletedDatasetId"), id);
            // No collaborator row outlives its dataset.
            let db = &app.state().db;
            let datasets: HashSet<i64> = dataset::Entity::find()
                .all(db)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect();
            let orphans = collaborator::Entity::find()
                .all(db)
                .await
                .unwrap()
                .into_iter()
                .filter(|c| !datasets.contains(&c.dataset_id))
                .count();
            assert_eq!(orphans, 0);
            assert_eq!(
                app.gql(None, NODE, json!({ "id": id })).await.data("/node"),
                &Value::Null
            );
        }
        Write::Clone => {
            assert_eq!(
                reply.data("/cloneDataset/dataset/fullName"),
                &json!(format!("{actor}/{name}-clone"))
            );
            assert_eq!(reply.data("/cloneDataset/dataset/viewerRole"), "ADMIN");
        }
        Write::Transfer => {
            assert_eq!(
                reply.data("/transferDataset/dataset/fullName"),
                &json!(format!("{actor}-lab/{name}"))
            );
            assert_eq!(
                reply.data("/transferDataset/dataset/owner/__typename"),
                "Organization"
            );
        }
    }
}

/// API.md's dataset table, every cell: for a personal and an organization dataset, public
/// and private, each action is tried by the owner (or a non-collaborating organization
/// admin), each of the five roles, a signed-in stranger and an anonymous client. A permitted
/// write must change exactly what it says; a refused one must leave the database untouched.
async fn every_cell_of_the_dataset_role_table(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let world = World::build(&app).await;
    let combos = [
        (OwnerKind::Personal, true),
        (OwnerKind::Personal, false),
        (OwnerKind::Organization, true),
        (OwnerKind::Organization, false),
    ];

    // Reads change nothing: one dataset per combination.
    let mut read_fixtures = Vec::new();
    for (n, &(kind, public)) in combos.iter().enumerate() {
        read_fixtures.push(world.fixture(&app, kind, public, &format!("read{n}")).await);
    }
    let before = stored(&app, "").await;
    for (n, &(kind, public)) in combos.iter().enumerate() {
        let (full, id) = &read_fixtures[n];
        let table = if public { READS_PUBLIC } else { READS_PRIVATE };
        for (read, wants) in table {
            for (column, want) in wants.into_iter().enumerate() {
                let cell = format!(
                    "{kind:?} {} dataset, {read:?} by {}",
                    if public { "public" } else { "private" },
                    COLUMNS[column]
                );
                let cell = Cell {
                    kind,
                    column,
                    want,
                    label: cell,
                    full,
                    id,
                };
                check_read(&app, &world, read, &cell).await;
            }
        }
    }
    assert_eq!(stored(&app, "").await, before, "reads changed nothing");

    // Writes: a fresh dataset whenever the previous one was changed.
    let mut counter = 0;
    for &(kind, public) in &combos {
        let table = if public {
            WRITES_PUBLIC
        } else {
            WRITES_PRIVATE
        };
        let mut current: Option<(String, String, String)> = None;
        for (write, wants) in table {
            for (column, want) in wants.into_iter().enumerate() {
                let cell = format!(
                    "{kind:?} {} dataset, {write:?} by {}",
                    if public { "public" } else { "private" },
                    COLUMNS[column]
                );
                // An organization's dataset moves or goes only by an ADMIN of the
                // organization: its dataset ADMIN `ada`, a MEMBER of acme, is refused.
                let want = match (kind, column, write) {
                    (OwnerKind::Organization, 5, Write::Delete | Write::Transfer) => F,
                    _ => want,
                };
                if current.is_none() {
                    counter += 1;
                    let name = format!("w{counter:03}");
                    let (full, id) = world.fixture(&app, kind, public, &name).await;
                    current = Some((name, full, id));
                }
                let (name, full, id) = current.clone().unwrap();
                let actor = world.actor(kind, column);
                let before = stored(&app, &name).await;
                let reply = perform(&app, world.token(actor), actor, write, &full).await;
                assert_outcome(&reply, want, &cell);
                let after = stored(&app, &name).await;
                if want == Y {
                    let actor = actor.unwrap();
                    check_payload(&app, &reply, write, &full, actor, &id).await;
                    assert_eq!(
                        after,
                        expected_after(write, before, &full, actor),
                        "{cell}: stored state"
                    );
                    current = None;
                } else {
                    assert_eq!(after, before, "{cell}: a refusal changed the stored state");
                }
            }
        }
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Invisible means absent
// ---------------------------------------------------------------------------------------------

/// A reply with `name` replaced by a placeholder, to compare two replies about different
/// names.
fn masked(reply: &Reply, name: &str) -> String {
    reply.body.to_string().replace(name, "<DATASET>")
}

async fn an_invisible_private_dataset_answers_exactly_like_a_missing_one(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let founder = app.sign_up("founder").await;
    let vera = app.sign_up("vera").await;
    let sam = app.sign_up("sam").await;
    let member = app.sign_up("member").await;
    app.create_org(&founder, "acme").await;
    app.add_member(&founder, "acme", "member", "MEMBER", Value::Null)
        .await
        .data("/addMember/member");
    app.add_member(&founder, "acme", "vera", "MEMBER", json!("VIEWER"))
        .await
        .data("/addMember/member");
    let (secret, secret_id) = created(&app, &olivia, None, "secret", false).await;
    add_collaborator(&app, Some(&olivia), &secret, "vera", Some("MANAGER"))
        .await
        .data("/addCollaborator/collaborator");
    let (vault, vault_id) = created(&app, &founder, Some("acme"), "vault", false).await;
    let world = stored(&app, "").await;

    // For each invisible dataset, a viewer who may not see it, and a name that does not exist.
    let cases = [
        (
            &secret,
            &secret_id,
            "olivia/nothing",
            Some(&sam),
            "a stranger",
        ),
        (&secret, &secret_id, "olivia/nothing", None, "anonymous"),
        (
            &vault,
            &vault_id,
            "acme/nothing",
            Some(&member),
            "a member without a role",
        ),
        (
            &vault,
            &vault_id,
            "acme/nothing",
            Some(&sam),
            "a non-member",
        ),
        (&vault, &vault_id, "acme/nothing", None, "anonymous"),
    ];
    for (hidden, hidden_id, missing, token, who) in cases {
        let token = token.map(String::as_str);
        // Queries: null.
        assert_eq!(look_up(&app, token, hidden).await, Value::Null, "{who}");
        assert_eq!(look_up(&app, token, missing).await, Value::Null, "{who}");
        assert_eq!(
            app.gql(token, NODE, json!({ "id": hidden_id }))
                .await
                .data("/node"),
            &Value::Null,
            "{who}"
        );
        let reply = app.gql(token, COLLABORATORS, json!({ "f": hidden })).await;
        assert_eq!(reply.data("/dataset"), &Value::Null, "{who}");
        // Lists: absent, and not counted.
        let (field, owner) = if hidden.starts_with("acme/") {
            ("organization", "acme")
        } else {
            ("user", "olivia")
        };
        assert!(
            listed_datasets(&app, token, field, owner).await.is_empty(),
            "{who}"
        );

        // Mutations: the very answer a missing dataset gets.
        let hidden_name = hidden.as_str();
        let mutations = [
            (
                "updateDataset",
                json!({ "description": "x" }),
                "dataset { id }",
            ),
            ("deleteDataset", json!({}), "deletedDatasetId"),
            (
                "addCollaborator",
                json!({ "username": "vera" }),
                "collaborator { role }",
            ),
            (
                "updateCollaborator",
                json!({ "username": "vera", "role": "ADMIN" }),
                "collaborator { role }",
            ),
            (
                "removeCollaborator",
                json!({ "username": "vera" }),
                "dataset { id }",
            ),
            ("cloneDataset", json!({ "name": "copy" }), "dataset { id }"),
            (
                "transferDataset",
                json!({ "newOwner": "sam" }),
                "dataset { id }",
            ),
        ];
        for (field, rest, selection) in mutations {
            let input = |dataset: &str| {
                let mut input = rest.clone();
                input["dataset"] = json!(dataset);
                input
            };
            let on_hidden = mutate(&app, token, field, input(hidden_name), selection).await;
            let on_missing = mutate(&app, token, field, input(missing), selection).await;
            let code = if token.is_some() {
                "NOT_FOUND"
            } else {
                "UNAUTHENTICATED"
            };
            assert_eq!(
                on_hidden.codes(),
                [code],
                "{who} {field}: {}",
                on_hidden.body
            );
            assert_eq!(
                masked(&on_hidden, hidden_name),
                masked(&on_missing, missing),
                "{who} {field}: the answers differ"
            );
            assert_eq!(on_hidden.status, on_missing.status, "{who} {field}");
        }
    }
    assert_eq!(stored(&app, "").await, world, "nothing changed");

    // Those who may see them do.
    assert_eq!(
        look_up(&app, Some(&vera), &secret).await["viewerRole"],
        "MANAGER"
    );
    assert_eq!(
        look_up(&app, Some(&vera), &vault).await["viewerRole"],
        "VIEWER"
    );
    assert_eq!(
        look_up(&app, Some(&founder), &vault).await["viewerRole"],
        "ADMIN"
    );
    assert_eq!(
        listed_datasets(&app, Some(&vera), "user", "olivia").await,
        vec![secret.clone()]
    );
    // A collaborator's view of the other collaborators' datasets stays within what they see.
    let reply = app
        .gql(
            Some(&vera),
            "query($f: String!) { dataset(fullName: $f) { collaborators { nodes { user { username datasets { totalCount nodes { fullName } } } } } } }",
            json!({ "f": secret }),
        )
        .await;
    for node in reply
        .data("/dataset/collaborators/nodes")
        .as_array()
        .unwrap()
    {
        for dataset in node["user"]["datasets"]["nodes"].as_array().unwrap() {
            let full = dataset["fullName"].as_str().unwrap();
            assert!(look_up(&app, Some(&vera), full).await.is_object(), "{full}");
        }
    }
    app.stop().await;
}

async fn owners_and_organization_admins_act_as_admin_without_an_entry(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let founder = app.sign_up("founder").await;
    let oscar = app.sign_up("oscar").await;
    app.create_org(&founder, "acme").await;
    app.add_member(&founder, "acme", "oscar", "ADMIN", Value::Null)
        .await
        .data("/addMember/member");

    // The personal owner removes her own entry and still acts as ADMIN.
    let (diary, _) = created(&app, &olivia, None, "diary", false).await;
    mutate(
        &app,
        Some(&olivia),
        "removeCollaborator",
        json!({ "dataset": diary, "username": "olivia" }),
        "dataset { viewerRole }",
    )
    .await
    .data("/removeCollaborator/dataset");
    assert!(stored_collaborators(&app, &diary).await.is_empty());
    assert_eq!(
        look_up(&app, Some(&olivia), &diary).await["viewerRole"],
        "ADMIN"
    );
    assert_eq!(listed_collaborators(&app, &olivia, &diary).await, vec![]);
    mutate(
        &app,
        Some(&olivia),
        "updateDataset",
        json!({ "dataset": diary, "description": "still mine" }),
        "dataset { description }",
    )
    .await
    .data("/updateDataset/dataset");

    // An admin of the owning organization, not a collaborator, acts as ADMIN — while an
    // admin. Demoted to MEMBER, the private dataset is gone for him.
    let (vault, _) = created(&app, &founder, Some("acme"), "vault", false).await;
    assert_eq!(
        stored_collaborators(&app, &vault).await,
        roles(&[("founder", "ADMIN")])
    );
    assert_eq!(
        look_up(&app, Some(&oscar), &vault).await["viewerRole"],
        "ADMIN"
    );
    mutate(
        &app,
        Some(&founder),
        "updateMember",
        json!({ "organization": "acme", "username": "oscar", "role": "MEMBER" }),
        "member { role }",
    )
    .await
    .data("/updateMember/member");
    assert_eq!(look_up(&app, Some(&oscar), &vault).await, Value::Null);
    let world = stored(&app, "").await;
    mutate(
        &app,
        Some(&oscar),
        "deleteDataset",
        json!({ "dataset": vault }),
        "deletedDatasetId",
    )
    .await
    .expect_code("NOT_FOUND");
    assert_eq!(stored(&app, "").await, world);
    app.stop().await;
}
