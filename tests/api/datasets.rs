//! Datasets and their collaborators, told through HTTP: who may see and do what (API.md's
//! dataset table, every cell, on public and private datasets of users and organizations),
//! "invisible means absent", the default-dataset-role fan-out and its all-or-nothing
//! transaction, leaving an organization, cloning and transfer.
//!
//! Every refusal is followed by a look at what the database holds: a refused mutation must
//! leave it exactly as it was.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::helpers::{Backend, Reply, TestApp, spawn_app};
use entity::roles::DatasetRole;
use entity::{account, collaborator, dataset};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

on_both_databases!(
    every_cell_of_the_dataset_role_table,
    creating_a_dataset_under_oneself_or_an_administered_organization,
    settings_update_and_deletion,
    organization_datasets_fan_out_to_members_by_default_dataset_role,
    a_failed_creation_leaves_neither_dataset_nor_collaborators,
    leaving_or_being_removed_from_an_organization_drops_its_collaborations_and_their_access,
    an_invisible_private_dataset_answers_exactly_like_a_missing_one,
    owners_and_organization_admins_act_as_admin_without_an_entry,
    collaborator_management_rules,
    lists_show_what_the_viewer_may_see_in_name_order,
    cloning_public_or_administered_datasets,
    transferring_to_oneself_or_an_administered_organization,
    racing_creations_of_one_name_let_exactly_one_win,
    racing_leaves_and_creations_never_leave_a_non_member_collaborator,
    deleting_an_organization_while_its_datasets_change_answers_cleanly,
);

// ---------------------------------------------------------------------------------------------
// Talking to the API
// ---------------------------------------------------------------------------------------------

const DATASET: &str = "query($f: String!) { dataset(fullName: $f) {
    id name fullName description public viewerRole owner { __typename username } } }";

const COLLABORATORS: &str = "query($f: String!, $first: Int, $after: String) {
    dataset(fullName: $f) { collaborators(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor }
      nodes { role user { username } dataset { fullName } } } } }";

const NODE: &str =
    "query($id: ID!) { node(id: $id) { id __typename ... on Dataset { fullName viewerRole } } }";

/// Runs mutation `field` with `{ input }` and the given selection of its payload.
async fn mutate(
    app: &TestApp,
    token: Option<&str>,
    field: &str,
    input: Value,
    selection: &str,
) -> Reply {
    let input_type = format!("{}{}Input", field[..1].to_uppercase(), &field[1..]);
    app.gql(
        token,
        &format!("mutation($input: {input_type}!) {{ {field}(input: $input) {{ {selection} }} }}"),
        json!({ "input": input }),
    )
    .await
}

/// Creates a dataset with a description; returns the reply.
async fn create(
    app: &TestApp,
    token: Option<&str>,
    owner: Option<&str>,
    name: &str,
    description: &str,
    public: bool,
) -> Reply {
    mutate(
        app,
        token,
        "createDataset",
        json!({ "owner": owner, "name": name, "description": description, "public": public }),
        "dataset { id fullName description public viewerRole owner { __typename username } }",
    )
    .await
}

/// Creates a dataset that must succeed; returns (full name, global id).
async fn created(
    app: &TestApp,
    token: &str,
    owner: Option<&str>,
    name: &str,
    public: bool,
) -> (String, String) {
    let reply = create(app, Some(token), owner, name, "about it", public).await;
    (
        reply
            .data("/createDataset/dataset/fullName")
            .as_str()
            .unwrap()
            .to_owned(),
        reply
            .data("/createDataset/dataset/id")
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn add_collaborator(
    app: &TestApp,
    token: Option<&str>,
    dataset: &str,
    username: &str,
    role: Option<&str>,
) -> Reply {
    let mut input = json!({ "dataset": dataset, "username": username });
    if let Some(role) = role {
        input["role"] = json!(role);
    }
    mutate(
        app,
        token,
        "addCollaborator",
        input,
        "collaborator { role user { username } dataset { fullName } }",
    )
    .await
}

/// The dataset as `token` sees it through `dataset(fullName:)` (JSON null when absent).
async fn look_up(app: &TestApp, token: Option<&str>, full_name: &str) -> Value {
    app.gql(token, DATASET, json!({ "f": full_name }))
        .await
        .data("/dataset")
        .clone()
}

/// The collaborators as `token` lists them: (username, role) in API order.
async fn listed_collaborators(
    app: &TestApp,
    token: &str,
    full_name: &str,
) -> Vec<(String, String)> {
    let reply = app
        .gql(
            Some(token),
            COLLABORATORS,
            json!({ "f": full_name, "first": 100 }),
        )
        .await;
    let nodes = reply
        .data("/dataset/collaborators/nodes")
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        reply.data("/dataset/collaborators/totalCount"),
        nodes.len(),
        "totalCount counts what is listed"
    );
    nodes
        .iter()
        .map(|n| {
            (
                n["user"]["username"].as_str().unwrap().to_owned(),
                n["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The full names in `owner`'s `datasets` connection as `token` sees it, asserting that
/// `totalCount` agrees with what is listed.
async fn listed_datasets(
    app: &TestApp,
    token: Option<&str>,
    owner_field: &str,
    owner: &str,
) -> Vec<String> {
    let reply = app
        .gql(
            token,
            &format!(
                "query($u: String!) {{ {owner_field}(username: $u) {{
                   datasets(first: 100) {{ totalCount pageInfo {{ hasNextPage }} nodes {{ fullName }} }} }} }}"
            ),
            json!({ "u": owner }),
        )
        .await;
    let connection = reply.data(&format!("/{owner_field}/datasets")).clone();
    let names: Vec<String> = connection["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["fullName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(connection["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        connection["totalCount"],
        names.len(),
        "totalCount counts only what the viewer may see: {connection}"
    );
    names
}

fn owned(names: &[(&str, &str)]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|(u, r)| (u.to_string(), r.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the database holds
// ---------------------------------------------------------------------------------------------

/// A dataset as stored: the truth every refusal is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    description: String,
    public: bool,
    /// username → role.
    collaborators: BTreeMap<String, String>,
}

fn role_name(role: DatasetRole) -> String {
    format!("{role:?}").to_uppercase()
}

/// Every stored dataset whose name starts with `prefix` (all of them for ""), by full name.
async fn stored(app: &TestApp, prefix: &str) -> BTreeMap<String, Stored> {
    let db = &app.state().db;
    let usernames: HashMap<i64, String> = account::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.username))
        .collect();
    let datasets = dataset::Entity::find()
        .filter(dataset::Column::NameKey.starts_with(prefix.to_ascii_lowercase()))
        .all(db)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for d in datasets {
        let collaborators = collaborator::Entity::find()
            .filter(collaborator::Column::DatasetId.eq(d.id))
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (usernames[&c.user_id].clone(), role_name(c.role)))
            .collect();
        out.insert(
            format!("{}/{}", usernames[&d.owner_id], d.name),
            Stored {
                description: d.description,
                public: d.public,
                collaborators,
            },
        );
    }
    out
}

/// The stored collaborators of one dataset (panics if it is not stored).
async fn stored_collaborators(app: &TestApp, full_name: &str) -> BTreeMap<String, String> {
    let name = full_name.split_once('/').unwrap().1;
    stored(app, name)
        .await
        .remove(full_name)
        .unwrap_or_else(|| panic!("{full_name} is not stored"))
        .collaborators
}

/// How many dataset and collaborator rows there are in all.
async fn row_counts(app: &TestApp) -> (u64, u64) {
    let db = &app.state().db;
    (
        dataset::Entity::find().count(db).await.unwrap(),
        collaborator::Entity::find().count(db).await.unwrap(),
    )
}

fn roles(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(u, r)| (u.to_string(), r.to_string()))
        .collect()
}

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
// Creating, updating, deleting
// ---------------------------------------------------------------------------------------------

async fn creating_a_dataset_under_oneself_or_an_administered_organization(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let member = app.sign_up("member").await;
    let sam = app.sign_up("sam").await;
    app.create_org(&olivia, "Acme").await;
    app.add_member(&olivia, "acme", "member", "MEMBER", json!("VIEWER"))
        .await
        .data("/addMember/member");

    // Under the viewer by default, with API.md's defaults.
    let reply = mutate(
        &app,
        Some(&olivia),
        "createDataset",
        json!({ "name": "Street.Scenes_2" }),
        "dataset { name fullName description public viewerRole createdAt owner { __typename username } }",
    )
    .await;
    let dataset = reply.data("/createDataset/dataset");
    assert_eq!(dataset["name"], "Street.Scenes_2");
    assert_eq!(dataset["fullName"], "olivia/Street.Scenes_2");
    assert_eq!(dataset["description"], "");
    assert_eq!(dataset["public"], false);
    assert_eq!(dataset["viewerRole"], "ADMIN");
    assert_eq!(
        dataset["owner"],
        json!({ "__typename": "User", "username": "olivia" })
    );
    assert!(dataset["createdAt"].is_string());
    // Found by full name in any case.
    let found = look_up(&app, Some(&olivia), "OLIVIA/street.scenes_2").await;
    assert_eq!(found["fullName"], "olivia/Street.Scenes_2");
    // Naming herself explicitly is the same thing.
    let reply = create(&app, Some(&olivia), Some("Olivia"), "second", "", false).await;
    assert_eq!(
        reply.data("/createDataset/dataset/fullName"),
        "olivia/second"
    );

    // Under an organization she administers (named in any case).
    let reply = create(&app, Some(&olivia), Some("ACME"), "fleet", "cars", true).await;
    assert_eq!(
        reply.data("/createDataset/dataset/owner"),
        &json!({ "__typename": "Organization", "username": "Acme" })
    );
    assert_eq!(reply.data("/createDataset/dataset/fullName"), "Acme/fleet");
    assert_eq!(reply.data("/createDataset/dataset/description"), "cars");
    assert_eq!(reply.data("/createDataset/dataset/public"), true);

    // The same name under another owner is fine.
    created(&app, &sam, None, "street.scenes_2", false).await;

    let rows = row_counts(&app).await;
    let world = stored(&app, "").await;
    let refusals = [
        // (why, token, owner, name, code)
        (
            "taken, in another case",
            Some(&olivia),
            None,
            "STREET.scenes_2",
            "CONFLICT",
        ),
        (
            "taken in the organization",
            Some(&olivia),
            Some("acme"),
            "FLEET",
            "CONFLICT",
        ),
        (
            "a plain member",
            Some(&member),
            Some("acme"),
            "x",
            "FORBIDDEN",
        ),
        ("a non-member", Some(&sam), Some("acme"), "x", "FORBIDDEN"),
        ("another user", Some(&sam), Some("olivia"), "x", "FORBIDDEN"),
        (
            "no such owner",
            Some(&sam),
            Some("nobody"),
            "x",
            "NOT_FOUND",
        ),
        ("anonymous", None, None, "x", "UNAUTHENTICATED"),
        (
            "anonymous, for an org",
            None,
            Some("acme"),
            "x",
            "UNAUTHENTICATED",
        ),
    ];
    for (why, token, owner, name, code) in refusals {
        let reply = create(&app, token.map(String::as_str), owner, name, "", false).await;
        assert_eq!(reply.code(), code, "{why}: {}", reply.body);
    }
    let too_long = "d".repeat(101);
    let longest = "d".repeat(100);
    for bad in [
        "",
        ".",
        "..",
        "a b",
        "a/b",
        "naïve",
        "x?",
        too_long.as_str(),
    ] {
        let reply = create(&app, Some(&olivia), None, bad, "", false).await;
        reply.expect_code("BAD_USER_INPUT");
        assert_eq!(
            reply.body["errors"][0]["extensions"]["field"], "name",
            "{bad:?}: {}",
            reply.body
        );
    }
    assert_eq!(row_counts(&app).await, rows, "refusals stored nothing");
    assert_eq!(stored(&app, "").await, world);
    // Edge names that are allowed.
    for good in ["a", "...", ".hidden", longest.as_str()] {
        create(&app, Some(&olivia), None, good, "", false)
            .await
            .data("/createDataset/dataset/id");
    }
    app.stop().await;
}

async fn settings_update_and_deletion(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let sam = app.sign_up("sam").await;
    let vera = app.sign_up("vera").await;
    let (full, id) = created(&app, &olivia, None, "atlas", true).await;
    add_collaborator(&app, Some(&olivia), &full, "vera", Some("VIEWER"))
        .await
        .data("/addCollaborator/collaborator");

    // An omitted field is left unchanged.
    let update = |input: Value| {
        let app = &app;
        let olivia = olivia.clone();
        async move {
            mutate(
                app,
                Some(&olivia),
                "updateDataset",
                input,
                "dataset { fullName description public }",
            )
            .await
        }
    };
    let reply = update(json!({ "dataset": "olivia/atlas", "description": "maps" })).await;
    assert_eq!(
        reply.data("/updateDataset/dataset"),
        &json!({ "fullName": "olivia/atlas", "description": "maps", "public": true })
    );
    let reply = update(json!({ "dataset": "OLIVIA/ATLAS", "public": false })).await;
    assert_eq!(
        reply.data("/updateDataset/dataset"),
        &json!({ "fullName": "olivia/atlas", "description": "maps", "public": false })
    );
    assert_eq!(
        stored(&app, "atlas").await["olivia/atlas"],
        Stored {
            description: "maps".into(),
            public: false,
            collaborators: roles(&[("olivia", "ADMIN"), ("vera", "VIEWER")]),
        }
    );
    // Made private, it is gone for strangers and still there for its collaborators.
    assert_eq!(look_up(&app, Some(&sam), &full).await, Value::Null);
    assert_eq!(look_up(&app, None, &full).await, Value::Null);
    assert_eq!(
        look_up(&app, Some(&vera), &full).await["viewerRole"],
        "VIEWER"
    );
    // And public again.
    update(json!({ "dataset": full, "public": true }))
        .await
        .data("/updateDataset/dataset");
    assert_eq!(look_up(&app, None, &full).await["fullName"], full);

    // Deletion takes its collaborators with it, and frees the name.
    let reply = mutate(
        &app,
        Some(&olivia),
        "deleteDataset",
        json!({ "dataset": "Olivia/Atlas" }),
        "deletedDatasetId",
    )
    .await;
    assert_eq!(reply.data("/deleteDataset/deletedDatasetId"), &json!(id));
    assert!(stored(&app, "").await.is_empty());
    assert_eq!(row_counts(&app).await, (0, 0));
    assert_eq!(look_up(&app, Some(&olivia), &full).await, Value::Null);
    assert_eq!(
        app.gql(Some(&olivia), NODE, json!({ "id": id }))
            .await
            .data("/node"),
        &Value::Null
    );
    // Deleting it again: it does not exist.
    mutate(
        &app,
        Some(&olivia),
        "deleteDataset",
        json!({ "dataset": full }),
        "deletedDatasetId",
    )
    .await
    .expect_code("NOT_FOUND");
    let (_, new_id) = created(&app, &olivia, None, "atlas", false).await;
    assert_ne!(new_id, id);
    assert_eq!(
        stored_collaborators(&app, "olivia/atlas").await,
        roles(&[("olivia", "ADMIN")]),
        "a new dataset of the same name starts afresh"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The fan-out
// ---------------------------------------------------------------------------------------------

async fn organization_datasets_fan_out_to_members_by_default_dataset_role(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    let second_admin = app.sign_up("Boss").await;
    app.create_org(&founder, "acme").await;
    app.add_member(&founder, "acme", "Boss", "ADMIN", json!("REVIEWER"))
        .await
        .data("/addMember/member");
    let mut tokens = HashMap::new();
    // Mixed case, to see the order is case-insensitive.
    for (user, default) in [
        ("Vic", json!("VIEWER")),
        ("lars", json!("LABELER")),
        ("Rosa", json!("REVIEWER")),
        ("mo", json!("MANAGER")),
        ("ann", json!("ADMIN")),
        ("nobody-default", Value::Null),
    ] {
        tokens.insert(user, app.sign_up(user).await);
        app.add_member(&founder, "acme", user, "MEMBER", default)
            .await
            .data("/addMember/member");
    }
    let outsider = app.sign_up("outsider").await;

    // Created by `founder` (default role null): everyone with a default role is added with
    // it, `founder` as ADMIN, `nobody-default` not at all.
    let (one, _) = created(&app, &founder, Some("acme"), "one", false).await;
    let expected = owned(&[
        ("ann", "ADMIN"),
        ("Boss", "REVIEWER"),
        ("founder", "ADMIN"),
        ("lars", "LABELER"),
        ("mo", "MANAGER"),
        ("Rosa", "REVIEWER"),
        ("Vic", "VIEWER"),
    ]);
    assert_eq!(listed_collaborators(&app, &founder, &one).await, expected);
    // Each of them now sees it with that role; the member without a default role does not.
    for (user, role) in [
        ("Vic", "VIEWER"),
        ("lars", "LABELER"),
        ("Rosa", "REVIEWER"),
        ("mo", "MANAGER"),
        ("ann", "ADMIN"),
    ] {
        let seen = look_up(&app, Some(&tokens[user]), &one).await;
        assert_eq!(seen["viewerRole"], role, "{user}");
    }
    assert_eq!(
        look_up(&app, Some(&tokens["nobody-default"]), &one).await,
        Value::Null
    );
    // An organization admin acts as ADMIN whatever their entry says.
    assert_eq!(
        look_up(&app, Some(&second_admin), &one).await["viewerRole"],
        "ADMIN"
    );
    assert_eq!(look_up(&app, Some(&outsider), &one).await, Value::Null);

    // The creator is always ADMIN, whatever their own default role.
    let (two, _) = created(&app, &second_admin, Some("acme"), "two", true).await;
    assert_eq!(
        stored_collaborators(&app, &two).await,
        roles(&[
            ("ann", "ADMIN"),
            ("Boss", "ADMIN"),
            ("lars", "LABELER"),
            ("mo", "MANAGER"),
            ("Rosa", "REVIEWER"),
            ("Vic", "VIEWER"),
        ])
    );
    // A personal dataset of a member has no fan-out.
    let (personal, _) = created(&app, &tokens["mo"], None, "mine", false).await;
    assert_eq!(
        stored_collaborators(&app, &personal).await,
        roles(&[("mo", "ADMIN")])
    );

    // Members added later are not added to existing datasets, only to new ones.
    let before = stored(&app, "").await;
    app.sign_up("late").await;
    app.add_member(&founder, "acme", "late", "MEMBER", json!("MANAGER"))
        .await
        .data("/addMember/member");
    assert_eq!(stored(&app, "").await, before);
    let (three, _) = created(&app, &founder, Some("acme"), "three", false).await;
    assert_eq!(
        stored_collaborators(&app, &three).await.get("late"),
        Some(&"MANAGER".to_owned())
    );
    app.stop().await;
}

/// Whether the database is PostgreSQL (else SQLite).
fn is_postgres(app: &TestApp) -> bool {
    orgql::db::is_postgres(&app.state().db)
}

/// Makes every insert of a collaborator row for `saboteur` fail, like a disk error would,
/// in the middle of the fan-out (after the dataset row is inserted).
async fn sabotage_the_fan_out(app: &TestApp) {
    let db = &app.state().db;
    if is_postgres(app) {
        db.execute_unprepared(
            "CREATE FUNCTION refuse_saboteur() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.username_key = 'saboteur' THEN RAISE EXCEPTION 'injected failure'; END IF;
               RETURN NEW;
             END $$",
        )
        .await
        .unwrap();
        db.execute_unprepared(
            "CREATE TRIGGER refuse_saboteur BEFORE INSERT ON collaborator
             FOR EACH ROW EXECUTE FUNCTION refuse_saboteur()",
        )
        .await
        .unwrap();
    } else {
        db.execute_unprepared(
            "CREATE TRIGGER refuse_saboteur BEFORE INSERT ON collaborator
             WHEN NEW.username_key = 'saboteur'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .await
        .unwrap();
    }
}

async fn end_sabotage(app: &TestApp) {
    let sql = if is_postgres(app) {
        "DROP TRIGGER refuse_saboteur ON collaborator"
    } else {
        "DROP TRIGGER refuse_saboteur"
    };
    app.state().db.execute_unprepared(sql).await.unwrap();
}

async fn a_failed_creation_leaves_neither_dataset_nor_collaborators(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    app.sign_up("saboteur").await;
    app.sign_up("vera").await;
    app.create_org(&founder, "acme").await;
    app.add_member(&founder, "acme", "vera", "MEMBER", json!("VIEWER"))
        .await
        .data("/addMember/member");
    app.add_member(&founder, "acme", "saboteur", "MEMBER", json!("LABELER"))
        .await
        .data("/addMember/member");
    let (source, _) = created(&app, &founder, None, "source", true).await;
    created(&app, &founder, Some("acme"), "existing", false).await;

    // A name clash is refused before anything is written.
    let world = stored(&app, "").await;
    let rows = row_counts(&app).await;
    create(&app, Some(&founder), Some("acme"), "EXISTING", "", true)
        .await
        .expect_code("CONFLICT");
    assert_eq!(stored(&app, "").await, world);
    assert_eq!(row_counts(&app).await, rows);

    // A failure in the middle of the fan-out rolls the whole creation back.
    sabotage_the_fan_out(&app).await;
    let reply = create(&app, Some(&founder), Some("acme"), "doomed", "", false).await;
    assert_eq!(reply.code(), "INTERNAL_SERVER_ERROR", "{}", reply.body);
    assert!(
        !reply.body.to_string().contains("injected"),
        "{}",
        reply.body
    );
    let reply = mutate(
        &app,
        Some(&founder),
        "cloneDataset",
        json!({ "dataset": source, "owner": "acme", "name": "doomed-clone" }),
        "dataset { id }",
    )
    .await;
    assert_eq!(reply.code(), "INTERNAL_SERVER_ERROR", "{}", reply.body);
    assert_eq!(
        stored(&app, "").await,
        world,
        "neither dataset nor collaborators"
    );
    assert_eq!(row_counts(&app).await, rows);
    assert_eq!(
        look_up(&app, Some(&founder), "acme/doomed").await,
        Value::Null
    );
    // (The sabotage is real: it spares datasets without the saboteur.)
    let (personal, _) = created(&app, &founder, None, "unaffected", false).await;
    end_sabotage(&app).await;

    // Nothing was half-made: the names are free and the fan-out is whole.
    let (doomed, _) = created(&app, &founder, Some("acme"), "doomed", false).await;
    assert_eq!(
        stored_collaborators(&app, &doomed).await,
        roles(&[
            ("founder", "ADMIN"),
            ("saboteur", "LABELER"),
            ("vera", "VIEWER")
        ])
    );
    mutate(
        &app,
        Some(&founder),
        "cloneDataset",
        json!({ "dataset": source, "owner": "acme", "name": "doomed-clone" }),
        "dataset { id }",
    )
    .await
    .data("/cloneDataset/dataset/id");
    assert_eq!(
        stored_collaborators(&app, &personal).await,
        roles(&[("founder", "ADMIN")])
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Leaving an organization
// ---------------------------------------------------------------------------------------------

async fn leaving_or_being_removed_from_an_organization_drops_its_collaborations_and_their_access(
    backend: Backend,
) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    let vera = app.sign_up("vera").await;
    let lee = app.sign_up("lee").await;
    let olivia = app.sign_up("olivia").await;
    app.create_org(&founder, "acme").await;
    app.create_org(&founder, "globex").await;
    for org in ["acme", "globex"] {
        for (user, default) in [("vera", "VIEWER"), ("lee", "LABELER")] {
            app.add_member(&founder, org, user, "MEMBER", json!(default))
                .await
                .data("/addMember/member");
        }
    }
    let (secret, secret_id) = created(&app, &founder, Some("acme"), "secret", false).await;
    let (open, _) = created(&app, &founder, Some("acme"), "open", true).await;
    let (elsewhere, _) = created(&app, &founder, Some("globex"), "elsewhere", false).await;
    let (diary, _) = created(&app, &olivia, None, "diary", false).await;
    add_collaborator(&app, Some(&olivia), &diary, "vera", Some("REVIEWER"))
        .await
        .data("/addCollaborator/collaborator");
    add_collaborator(&app, Some(&olivia), &diary, "lee", Some("REVIEWER"))
        .await
        .data("/addCollaborator/collaborator");

    assert_eq!(
        look_up(&app, Some(&vera), &secret).await["viewerRole"],
        "VIEWER"
    );
    assert_eq!(
        look_up(&app, Some(&lee), &secret).await["viewerRole"],
        "LABELER"
    );
    let before = stored(&app, "").await;

    // vera leaves; lee is removed by an admin.
    mutate(
        &app,
        Some(&vera),
        "leaveOrganization",
        json!({ "organization": "acme" }),
        "organization { username }",
    )
    .await
    .data("/leaveOrganization/organization");
    mutate(
        &app,
        Some(&founder),
        "removeMember",
        json!({ "organization": "acme", "username": "lee" }),
        "organization { username }",
    )
    .await
    .data("/removeMember/organization");

    // Their entries on acme's datasets are gone, and nothing else changed.
    let mut expected = before.clone();
    for full in [&secret, &open] {
        let collaborators = &mut expected.get_mut(full.as_str()).unwrap().collaborators;
        collaborators.remove("vera");
        collaborators.remove("lee");
    }
    assert_eq!(stored(&app, "").await, expected);
    assert_eq!(
        stored_collaborators(&app, &elsewhere).await,
        roles(&[("founder", "ADMIN"), ("lee", "LABELER"), ("vera", "VIEWER")])
    );
    assert_eq!(
        stored_collaborators(&app, &diary).await,
        roles(&[
            ("lee", "REVIEWER"),
            ("olivia", "ADMIN"),
            ("vera", "REVIEWER")
        ])
    );

    // And so is the access those entries gave.
    for (who, token) in [("vera", &vera), ("lee", &lee)] {
        assert_eq!(
            look_up(&app, Some(token), &secret).await,
            Value::Null,
            "{who}"
        );
        assert_eq!(
            app.gql(Some(token), NODE, json!({ "id": secret_id }))
                .await
                .data("/node"),
            &Value::Null,
            "{who}"
        );
        assert_eq!(
            listed_datasets(&app, Some(token), "organization", "acme").await,
            vec!["acme/open".to_owned()],
            "{who}"
        );
        // Public: still visible, but no longer theirs.
        assert_eq!(
            look_up(&app, Some(token), &open).await["viewerRole"],
            Value::Null
        );
        app.gql(Some(token), COLLABORATORS, json!({ "f": open }))
            .await
            .expect_code("FORBIDDEN");
        mutate(
            &app,
            Some(token),
            "updateDataset",
            json!({ "dataset": secret, "description": "mine now" }),
            "dataset { id }",
        )
        .await
        .expect_code("NOT_FOUND");
        // Their other collaborations stand.
        assert_eq!(
            look_up(&app, Some(token), &elsewhere).await["fullName"],
            elsewhere
        );
        assert_eq!(
            look_up(&app, Some(token), &diary).await["viewerRole"],
            "REVIEWER"
        );
    }

    // Rejoining does not bring the old entries back…
    let world = stored(&app, "").await;
    app.add_member(&founder, "acme", "vera", "MEMBER", json!("VIEWER"))
        .await
        .data("/addMember/member");
    assert_eq!(stored(&app, "").await, world);
    assert_eq!(look_up(&app, Some(&vera), &secret).await, Value::Null);
    // …and a non-member can be made a collaborator again, as an outside collaborator.
    let (_, wander) = (
        mutate(
            &app,
            Some(&vera),
            "leaveOrganization",
            json!({ "organization": "acme" }),
            "organization { username }",
        )
        .await
        .data("/leaveOrganization/organization/username")
        .clone(),
        app.sign_up("wander").await,
    );
    for (user, token) in [("vera", &vera), ("wander", &wander)] {
        add_collaborator(&app, Some(&founder), &secret, user, Some("VIEWER"))
            .await
            .data("/addCollaborator/collaborator");
        assert_eq!(
            look_up(&app, Some(token), &secret).await["viewerRole"],
            "VIEWER",
            "{user}, an outside collaborator"
        );
        assert_eq!(
            app.gql(
                Some(token),
                "{ organization(username: \"acme\") { viewerRole } }",
                json!({})
            )
            .await
            .data("/organization/viewerRole"),
            &Value::Null,
            "{user} is no member"
        );
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

// ---------------------------------------------------------------------------------------------
// Collaborators
// ---------------------------------------------------------------------------------------------

async fn collaborator_management_rules(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let max = app.sign_up("max").await;
    for user in ["Zoe", "bob", "Carl", "dave"] {
        app.sign_up(user).await;
    }
    app.create_org(&olivia, "acme").await;
    app.add_member(&olivia, "acme", "max", "MEMBER", json!("MANAGER"))
        .await
        .data("/addMember/member");
    let (ds, _) = created(&app, &olivia, None, "ds", false).await;

    // The role defaults to LABELER; the payload names user, role and dataset.
    let reply = add_collaborator(&app, Some(&olivia), &ds, "ZOE", None).await;
    assert_eq!(
        reply.data("/addCollaborator/collaborator"),
        &json!({ "role": "LABELER", "user": { "username": "Zoe" }, "dataset": { "fullName": "olivia/ds" } })
    );
    add_collaborator(&app, Some(&olivia), &ds, "max", Some("MANAGER"))
        .await
        .data("/addCollaborator/collaborator");

    let world = stored(&app, "").await;
    let refusals: Vec<(&str, Reply, &str)> = vec![
        (
            "already a collaborator (any case)",
            add_collaborator(&app, Some(&olivia), &ds, "zoe", Some("VIEWER")).await,
            "CONFLICT",
        ),
        (
            "no such user",
            add_collaborator(&app, Some(&olivia), &ds, "nobody", None).await,
            "NOT_FOUND",
        ),
        (
            "an organization is not a user",
            add_collaborator(&app, Some(&olivia), &ds, "acme", None).await,
            "NOT_FOUND",
        ),
        (
            "updating a non-collaborator",
            mutate(
                &app,
                Some(&olivia),
                "updateCollaborator",
                json!({ "dataset": ds, "username": "bob", "role": "VIEWER" }),
                "collaborator { role }",
            )
            .await,
            "NOT_FOUND",
        ),
        (
            "removing a non-collaborator",
            mutate(
                &app,
                Some(&olivia),
                "removeCollaborator",
                json!({ "dataset": ds, "username": "bob" }),
                "dataset { id }",
            )
            .await,
            "NOT_FOUND",
        ),
        (
            "a manager promoting himself",
            mutate(
                &app,
                Some(&max),
                "updateCollaborator",
                json!({ "dataset": ds, "username": "max", "role": "ADMIN" }),
                "collaborator { role }",
            )
            .await,
            "FORBIDDEN",
        ),
        (
            "a manager removing the owner's ADMIN entry",
            mutate(
                &app,
                Some(&max),
                "removeCollaborator",
                json!({ "dataset": ds, "username": "olivia" }),
                "dataset { id }",
            )
            .await,
            "FORBIDDEN",
        ),
        (
            "an invalid role",
            add_collaborator(&app, Some(&olivia), &ds, "bob", Some("OWNER")).await,
            "BAD_USER_INPUT",
        ),
    ];
    for (why, reply, code) in refusals {
        assert_eq!(reply.codes(), [code], "{why}: {}", reply.body);
    }
    assert_eq!(stored(&app, "").await, world, "refusals changed nothing");

    // On an organization's dataset, collaborators need not be members (outside
    // collaborators), whether an admin or a manager adds them.
    let (org_ds, _) = created(&app, &olivia, Some("acme"), "org-ds", false).await;
    add_collaborator(&app, Some(&max), &org_ds, "bob", Some("REVIEWER"))
        .await
        .data("/addCollaborator/collaborator");
    assert_eq!(stored_collaborators(&app, &org_ds).await["bob"], "REVIEWER");

    // Paging through the collaborators, by username case-insensitively.
    for user in ["bob", "Carl", "dave"] {
        add_collaborator(&app, Some(&olivia), &ds, user, Some("VIEWER"))
            .await
            .data("/addCollaborator/collaborator");
    }
    let order = ["bob", "Carl", "dave", "max", "olivia", "Zoe"];
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let reply = app
            .gql(
                Some(&olivia),
                COLLABORATORS,
                json!({ "f": ds, "first": 4, "after": after }),
            )
            .await;
        let connection = reply.data("/dataset/collaborators").clone();
        assert_eq!(connection["totalCount"], 6);
        for node in connection["nodes"].as_array().unwrap() {
            seen.push(node["user"]["username"].as_str().unwrap().to_owned());
        }
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, order);
    for first in [101, -1] {
        app.gql(
            Some(&olivia),
            COLLABORATORS,
            json!({ "f": ds, "first": first }),
        )
        .await
        .expect_code("BAD_USER_INPUT");
    }
    app.stop().await;
}

async fn lists_show_what_the_viewer_may_see_in_name_order(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let vera = app.sign_up("vera").await;
    let sam = app.sign_up("sam").await;
    app.create_org(&olivia, "acme").await;
    for (name, public) in [
        ("Beta", true),
        ("alpha", false),
        ("Delta", false),
        ("charlie", true),
    ] {
        created(&app, &olivia, None, name, public).await;
        created(&app, &olivia, Some("acme"), name, public).await;
    }
    add_collaborator(&app, Some(&olivia), "olivia/delta", "vera", Some("VIEWER"))
        .await
        .data("/addCollaborator/collaborator");

    for (field, owner) in [("user", "olivia"), ("organization", "acme")] {
        let all: Vec<String> = ["alpha", "Beta", "charlie", "Delta"]
            .iter()
            .map(|n| format!("{}/{n}", if owner == "acme" { "acme" } else { "olivia" }))
            .collect();
        assert_eq!(
            listed_datasets(&app, Some(&olivia), field, owner).await,
            all
        );
        let public: Vec<String> = vec![all[1].clone(), all[2].clone()];
        assert_eq!(
            listed_datasets(&app, Some(&sam), field, owner).await,
            public
        );
        assert_eq!(listed_datasets(&app, None, field, owner).await, public);
    }
    assert_eq!(
        listed_datasets(&app, Some(&vera), "user", "olivia").await,
        vec!["olivia/Beta", "olivia/charlie", "olivia/Delta"]
    );
    // viewer.datasets are one's own.
    let reply = app
        .gql(Some(&olivia), "{ viewer { datasets(first: 2) { totalCount pageInfo { hasNextPage endCursor } nodes { name } } } }", json!({}))
        .await;
    assert_eq!(reply.data("/viewer/datasets/totalCount"), 4);
    assert_eq!(
        reply.data("/viewer/datasets/nodes"),
        &json!([{ "name": "alpha" }, { "name": "Beta" }])
    );
    let cursor = reply.data("/viewer/datasets/pageInfo/endCursor").clone();
    let reply = app
        .gql(Some(&olivia), "query($a: String) { viewer { datasets(first: 2, after: $a) { pageInfo { hasNextPage } nodes { name } } } }", json!({ "a": cursor }))
        .await;
    assert_eq!(
        reply.data("/viewer/datasets/nodes"),
        &json!([{ "name": "charlie" }, { "name": "Delta" }])
    );
    assert_eq!(reply.data("/viewer/datasets/pageInfo/hasNextPage"), false);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Clone and transfer
// ---------------------------------------------------------------------------------------------

async fn clone_reply(
    app: &TestApp,
    token: Option<&str>,
    dataset: &str,
    owner: Option<&str>,
    name: Option<&str>,
) -> Reply {
    let mut input = json!({ "dataset": dataset });
    if let Some(owner) = owner {
        input["owner"] = json!(owner);
    }
    if let Some(name) = name {
        input["name"] = json!(name);
    }
    mutate(
        app,
        token,
        "cloneDataset",
        input,
        "dataset { fullName description public viewerRole owner { __typename username } }",
    )
    .await
}

async fn cloning_public_or_administered_datasets(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let vera = app.sign_up("vera").await;
    let sam = app.sign_up("sam").await;
    app.sign_up("nick").await;
    app.create_org(&olivia, "acme").await;
    app.create_org(&sam, "sams").await;
    app.add_member(&olivia, "acme", "vera", "MEMBER", json!("LABELER"))
        .await
        .data("/addMember/member");
    app.add_member(&olivia, "acme", "nick", "MEMBER", Value::Null)
        .await
        .data("/addMember/member");
    let reply = create(&app, Some(&olivia), None, "flowers", "petals", true).await;
    let flowers = reply
        .data("/createDataset/dataset/fullName")
        .as_str()
        .unwrap()
        .to_owned();
    let reply = create(&app, Some(&olivia), None, "diary", "private things", false).await;
    let diary = reply
        .data("/createDataset/dataset/fullName")
        .as_str()
        .unwrap()
        .to_owned();
    add_collaborator(&app, Some(&olivia), &flowers, "vera", Some("VIEWER"))
        .await
        .data("/addCollaborator/collaborator");
    add_collaborator(&app, Some(&olivia), &diary, "vera", Some("MANAGER"))
        .await
        .data("/addCollaborator/collaborator");

    // Anyone signed in may clone a public dataset into their own account: description and
    // visibility are copied, the collaborators are not.
    let reply = clone_reply(&app, Some(&sam), &flowers, None, None).await;
    assert_eq!(
        reply.data("/cloneDataset/dataset"),
        &json!({ "fullName": "sam/flowers-clone", "description": "petals", "public": true,
                 "viewerRole": "ADMIN", "owner": { "__typename": "User", "username": "sam" } })
    );
    assert_eq!(
        stored_collaborators(&app, "sam/flowers-clone").await,
        roles(&[("sam", "ADMIN")])
    );
    // Or into an organization they administer, under a name of their choice.
    let reply = clone_reply(&app, Some(&sam), &flowers, Some("sams"), Some("Bouquet")).await;
    assert_eq!(reply.data("/cloneDataset/dataset/fullName"), "sams/Bouquet");

    // The admin of a private dataset may clone it; into an organization, the fan-out applies.
    let reply = clone_reply(&app, Some(&olivia), &diary, None, None).await;
    assert_eq!(
        reply.data("/cloneDataset/dataset/fullName"),
        "olivia/diary-clone"
    );
    assert_eq!(reply.data("/cloneDataset/dataset/public"), false);
    assert_eq!(
        stored_collaborators(&app, "olivia/diary-clone").await,
        roles(&[("olivia", "ADMIN")])
    );
    let reply = clone_reply(&app, Some(&olivia), &diary, Some("acme"), None).await;
    assert_eq!(
        reply.data("/cloneDataset/dataset"),
        &json!({ "fullName": "acme/diary-clone", "description": "private things", "public": false,
                 "viewerRole": "ADMIN", "owner": { "__typename": "Organization", "username": "acme" } })
    );
    assert_eq!(
        stored_collaborators(&app, "acme/diary-clone").await,
        roles(&[("olivia", "ADMIN"), ("vera", "LABELER")]),
        "members by their default role (vera's MANAGER entry on the source is not copied)"
    );
    assert_eq!(
        look_up(&app, Some(&vera), "acme/diary-clone").await["viewerRole"],
        "LABELER"
    );

    // Refusals leave nothing behind.
    let world = stored(&app, "").await;
    let rows = row_counts(&app).await;
    let refusals = [
        (
            "default name taken",
            Some(&sam),
            flowers.as_str(),
            None,
            None,
            "CONFLICT",
        ),
        (
            "name taken in another case",
            Some(&sam),
            flowers.as_str(),
            None,
            Some("FLOWERS-CLONE"),
            "CONFLICT",
        ),
        (
            "name taken in the organization",
            Some(&olivia),
            diary.as_str(),
            Some("acme"),
            Some("Diary-Clone"),
            "CONFLICT",
        ),
        (
            "a private dataset the viewer only manages",
            Some(&vera),
            diary.as_str(),
            None,
            Some("mine"),
            "FORBIDDEN",
        ),
        (
            "a private dataset the viewer cannot see",
            Some(&sam),
            diary.as_str(),
            None,
            Some("mine"),
            "NOT_FOUND",
        ),
        (
            "no such dataset",
            Some(&sam),
            "olivia/nothing",
            None,
            Some("mine"),
            "NOT_FOUND",
        ),
        (
            "into an organization the viewer is a plain member of",
            Some(&vera),
            flowers.as_str(),
            Some("acme"),
            Some("mine"),
            "FORBIDDEN",
        ),
        (
            "into an organization the viewer is not in",
            Some(&sam),
            flowers.as_str(),
            Some("acme"),
            Some("mine"),
            "FORBIDDEN",
        ),
        (
            "into another user's account",
            Some(&sam),
            flowers.as_str(),
            Some("olivia"),
            Some("mine"),
            "FORBIDDEN",
        ),
        (
            "into no such account",
            Some(&sam),
            flowers.as_str(),
            Some("nobody"),
            Some("mine"),
            "NOT_FOUND",
        ),
        (
            "a bad name",
            Some(&sam),
            flowers.as_str(),
            None,
            Some("a b"),
            "BAD_USER_INPUT",
        ),
        (
            "anonymous",
            None,
            flowers.as_str(),
            None,
            Some("mine"),
            "UNAUTHENTICATED",
        ),
    ];
    for (why, token, dataset, owner, name, code) in refusals {
        let reply = clone_reply(&app, token.map(String::as_str), dataset, owner, name).await;
        assert_eq!(reply.codes(), [code], "{why}: {}", reply.body);
    }
    assert_eq!(
        stored(&app, "").await,
        world,
        "refused clones stored nothing"
    );
    assert_eq!(row_counts(&app).await, rows);

    // A default name that would be too long is the name's fault, not a server error.
    let longest = "n".repeat(100);
    let (long, _) = created(&app, &olivia, None, &longest, true).await;
    let world = stored(&app, "").await;
    let reply = clone_reply(&app, Some(&sam), &long, None, None).await;
    reply.expect_code("BAD_USER_INPUT");
    assert_eq!(reply.body["errors"][0]["extensions"]["field"], "name");
    assert_eq!(stored(&app, "").await, world);
    app.stop().await;
}

async fn transfer(app: &TestApp, token: Option<&str>, dataset: &str, new_owner: &str) -> Reply {
    mutate(
        app,
        token,
        "transferDataset",
        json!({ "dataset": dataset, "newOwner": new_owner }),
        "dataset { id fullName viewerRole owner { __typename username } }",
    )
    .await
}

async fn transferring_to_oneself_or_an_administered_organization(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let olivia = app.sign_up("olivia").await;
    let vera = app.sign_up("vera").await;
    let max = app.sign_up("max").await;
    let ada = app.sign_up("ada").await;
    let sam = app.sign_up("sam").await;
    app.create_org(&olivia, "acme").await;
    app.create_org(&olivia, "initech").await;
    app.create_org(&sam, "globex").await;
    app.add_member(&olivia, "acme", "vera", "MEMBER", Value::Null)
        .await
        .data("/addMember/member");
    app.add_member(&sam, "globex", "olivia", "MEMBER", Value::Null)
        .await
        .data("/addMember/member");
    let (atlas, atlas_id) = created(&app, &olivia, None, "atlas", false).await;
    for (user, role) in [("vera", "VIEWER"), ("max", "MANAGER"), ("ada", "ADMIN")] {
        add_collaborator(&app, Some(&olivia), &atlas, user, Some(role))
            .await
            .data("/addCollaborator/collaborator");
    }
    created(&app, &olivia, Some("initech"), "ATLAS", false).await;

    let world = stored(&app, "").await;
    let refusals = [
        ("a MANAGER", Some(&max), "acme", "FORBIDDEN"),
        ("a VIEWER", Some(&vera), "vera", "FORBIDDEN"),
        ("a stranger, private", Some(&sam), "sam", "NOT_FOUND"),
        ("anonymous", None, "acme", "UNAUTHENTICATED"),
        ("to another user", Some(&olivia), "sam", "FORBIDDEN"),
        (
            "to an organization she is a plain member of",
            Some(&olivia),
            "globex",
            "FORBIDDEN",
        ),
        ("to no such account", Some(&olivia), "nobody", "NOT_FOUND"),
        (
            "the name is taken there (any case)",
            Some(&olivia),
            "initech",
            "CONFLICT",
        ),
        (
            "an ADMIN collaborator, to an org she is not in",
            Some(&ada),
            "acme",
            "FORBIDDEN",
        ),
    ];
    for (why, token, new_owner, code) in refusals {
        let reply = transfer(&app, token.map(String::as_str), &atlas, new_owner).await;
        assert_eq!(reply.codes(), [code], "{why}: {}", reply.body);
    }
    assert_eq!(
        stored(&app, "").await,
        world,
        "refused transfers changed nothing"
    );

    // Into an organization she administers: the same dataset under a new name; the
    // collaborators stay, those who are not members as outside collaborators.
    let reply = transfer(&app, Some(&olivia), &atlas, "ACME").await;
    assert_eq!(
        reply.data("/transferDataset/dataset"),
        &json!({ "id": atlas_id, "fullName": "acme/atlas", "viewerRole": "ADMIN",
                 "owner": { "__typename": "Organization", "username": "acme" } })
    );
    assert_eq!(
        stored_collaborators(&app, "acme/atlas").await,
        roles(&[
            ("ada", "ADMIN"),
            ("max", "MANAGER"),
            ("olivia", "ADMIN"),
            ("vera", "VIEWER")
        ])
    );
    assert_eq!(
        look_up(&app, Some(&olivia), &atlas).await,
        Value::Null,
        "the old name is gone"
    );
    for (who, token, role) in [
        ("vera", &vera, "VIEWER"),
        ("max", &max, "MANAGER"),
        ("ada", &ada, "ADMIN"),
    ] {
        assert_eq!(
            look_up(&app, Some(token), "acme/atlas").await["viewerRole"],
            role,
            "{who}"
        );
    }
    // Now the organization's dataset, it moves or goes only by an ADMIN of the organization:
    // ada, its ADMIN but an outside collaborator, and vera, a MEMBER made its ADMIN, may not.
    mutate(
        &app,
        Some(&olivia),
        "updateCollaborator",
        json!({ "dataset": "acme/atlas", "username": "vera", "role": "ADMIN" }),
        "collaborator { role }",
    )
    .await
    .data("/updateCollaborator/collaborator");
    let world = stored(&app, "").await;
    for (who, token) in [("ada", &ada), ("vera", &vera)] {
        let reply = transfer(&app, Some(token), "acme/atlas", who).await;
        assert_eq!(reply.codes(), ["FORBIDDEN"], "{who}: {}", reply.body);
        let reply = mutate(
            &app,
            Some(token),
            "deleteDataset",
            json!({ "dataset": "acme/atlas" }),
            "deletedDatasetId",
        )
        .await;
        assert_eq!(reply.codes(), ["FORBIDDEN"], "{who}: {}", reply.body);
    }
    assert_eq!(stored(&app, "").await, world, "refusals changed nothing");
    assert_eq!(
        app.gql(Some(&olivia), NODE, json!({ "id": atlas_id }))
            .await
            .data("/node/fullName"),
        "acme/atlas"
    );

    // An ADMIN collaborator (not the owner) may take a dataset to her own account; the
    // collaborators stay, the previous owner now by her entry.
    let (map, _) = created(&app, &olivia, None, "map", true).await;
    add_collaborator(&app, Some(&olivia), &map, "ada", Some("ADMIN"))
        .await
        .data("/addCollaborator/collaborator");
    let reply = transfer(&app, Some(&ada), &map, "ada").await;
    assert_eq!(reply.data("/transferDataset/dataset/fullName"), "ada/map");
    assert_eq!(
        stored_collaborators(&app, "ada/map").await,
        roles(&[("ada", "ADMIN"), ("olivia", "ADMIN")])
    );
    assert_eq!(
        look_up(&app, Some(&olivia), "ada/map").await["viewerRole"],
        "ADMIN"
    );
    // And back, from an organization to a personal account: every entry stays.
    let reply = transfer(&app, Some(&olivia), "acme/atlas", "olivia").await;
    assert_eq!(
        reply.data("/transferDataset/dataset/fullName"),
        "olivia/atlas"
    );
    assert_eq!(
        stored_collaborators(&app, "olivia/atlas").await,
        roles(&[
            ("ada", "ADMIN"),
            ("max", "MANAGER"),
            ("olivia", "ADMIN"),
            ("vera", "ADMIN")
        ])
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------------------------

async fn racing_creations_of_one_name_let_exactly_one_win(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    app.create_org(&founder, "acme").await;
    for user in ["vera", "lee"] {
        app.sign_up(user).await;
        app.add_member(&founder, "acme", user, "MEMBER", json!("VIEWER"))
            .await
            .data("/addMember/member");
    }
    let app = std::sync::Arc::new(app);
    let names = [
        "race", "Race", "RACE", "rAce", "raCe", "racE", "RAce", "raCE",
    ];
    let mut tasks = Vec::new();
    for name in names {
        let app = app.clone();
        let founder = founder.clone();
        tasks.push(tokio::spawn(async move {
            create(&app, Some(&founder), Some("acme"), name, "", false).await
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
    let world = stored(&app, "").await;
    assert_eq!(world.len(), 1);
    let (_, winner) = world.into_iter().next().unwrap();
    assert_eq!(
        winner.collaborators,
        roles(&[("founder", "ADMIN"), ("lee", "VIEWER"), ("vera", "VIEWER")])
    );
    assert_eq!(
        row_counts(&app).await,
        (1, 3),
        "the losers left nothing behind"
    );
}

/// Members leave while datasets are being created for their organization: whichever comes
/// first, no one ends up a collaborator of an organization they are no longer in.
async fn racing_leaves_and_creations_never_leave_a_non_member_collaborator(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    app.create_org(&founder, "acme").await;
    let mut members = Vec::new();
    for i in 0..6 {
        let user = format!("member{i}");
        members.push((user.clone(), app.sign_up(&user).await));
        app.add_member(&founder, "acme", &user, "MEMBER", json!("LABELER"))
            .await
            .data("/addMember/member");
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for (i, (_, token)) in members.into_iter().enumerate() {
        let creator = {
            let app = app.clone();
            let founder = founder.clone();
            tokio::spawn(async move {
                create(
                    &app,
                    Some(&founder),
                    Some("acme"),
                    &format!("ds{i}"),
                    "",
                    false,
                )
                .await
            })
        };
        let leaver = {
            let app = app.clone();
            tokio::spawn(async move {
                mutate(
                    &app,
                    Some(&token),
                    "leaveOrganization",
                    json!({ "organization": "acme" }),
                    "organization { username }",
                )
                .await
            })
        };
        tasks.push(creator);
        tasks.push(leaver);
    }
    for task in tasks {
        let reply = task.await.unwrap();
        assert!(reply.body.get("errors").is_none(), "{}", reply.body);
    }
    let world = stored(&app, "").await;
    assert_eq!(world.len(), 6);
    for (name, dataset) in world {
        assert_eq!(
            dataset.collaborators,
            roles(&[("founder", "ADMIN")]),
            "{name}: every member has left"
        );
    }
}

/// Deleting an organization takes its datasets with it while others change them: every
/// request either happens before the deletion or finds nothing, and none fails (no deadlock
/// between the organization's lock and its datasets').
async fn deleting_an_organization_while_its_datasets_change_answers_cleanly(backend: Backend) {
    let (app, _db) = spawn_app(&backend).await;
    let founder = app.sign_up("founder").await;
    app.create_org(&founder, "acme").await;
    for (user, default) in [
        ("vera", json!("VIEWER")),
        ("lee", json!("LABELER")),
        ("nick", Value::Null),
    ] {
        app.sign_up(user).await;
        app.add_member(&founder, "acme", user, "MEMBER", default)
            .await
            .data("/addMember/member");
    }
    let mut names = Vec::new();
    for i in 0..4 {
        names.push(
            created(&app, &founder, Some("acme"), &format!("ds{i}"), false)
                .await
                .0,
        );
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for (i, full) in names.iter().enumerate() {
        let requests = [
            (
                "addCollaborator",
                json!({ "dataset": full, "username": "nick" }),
                "collaborator { role }",
            ),
            (
                "updateCollaborator",
                json!({ "dataset": full, "username": "vera", "role": "LABELER" }),
                "collaborator { role }",
            ),
            (
                "removeCollaborator",
                json!({ "dataset": full, "username": "lee" }),
                "dataset { id }",
            ),
            (
                "updateDataset",
                json!({ "dataset": full, "description": "busy" }),
                "dataset { id }",
            ),
        ];
        for (field, input, selection) in requests {
            let app = app.clone();
            let founder = founder.clone();
            tasks.push(tokio::spawn(async move {
                (
                    field,
                    mutate(&app, Some(&founder), field, input, selection).await,
                )
            }));
        }
        // The deletion starts in the middle of the stream of changes.
        if i == 1 {
            let app = app.clone();
            let founder = founder.clone();
            tasks.push(tokio::spawn(async move {
                let input = json!({ "organization": "acme" });
                let reply = mutate(
                    &app,
                    Some(&founder),
                    "deleteOrganization",
                    input,
                    "deletedOrganizationId",
                )
                .await;
                ("deleteOrganization", reply)
            }));
        }
    }
    for task in tasks {
        let (field, reply) = task.await.unwrap();
        if field == "deleteOrganization" {
            reply.data("/deleteOrganization/deletedOrganizationId");
        } else if reply.body.get("errors").is_some() {
            reply.expect_code("NOT_FOUND");
        }
    }
    assert_eq!(
        row_counts(&app).await,
        (0, 0),
        "the datasets went with their organization"
    );
}
