//! Datasets and their collaborators, told through HTTP: who may see and do what (API.md's
//! dataset table, every cell, on public and private datasets of users and organizations),
//! "invisible means absent", the default-dataset-role fan-out and its all-or-nothing
//! transaction, leaving an organization, cloning and transfer.
//!
//! Every refusal is followed by a look at what the database holds: a refused mutation must
//! leave it exactly as it was.
//!
//! One module per concern; the helpers they share (talking to the API, reading what the
//! database holds) are here.

mod clone_transfer;
mod fan_out;
mod lifecycle;
mod pagination;
mod permissions;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::helpers::{Backend, Reply, TestApp, spawn_app};
use entity::roles::DatasetRole;
use entity::{account, collaborator, dataset};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

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
