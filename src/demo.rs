//! `--demo`: a small world for a first look in GraphiQL — two organizations, six users,
//! four datasets, every organization role and every dataset role in use — created through
//! the same domain functions the API uses, on an empty database only.

use sea_orm::{EntityTrait, PaginatorTrait};

use entity::account;
use entity::roles::{DatasetRole, OrganizationRole};

use crate::auth::Actor;
use crate::context::AppState;
use crate::error::ApiResult;
use crate::newtypes::{DatasetName, Email, Password, Username};
use crate::{accounts, datasets, organizations};

/// Every demo user signs in with this password.
pub const DEMO_PASSWORD: &str = "demo-password";

/// The demo users, in the order they are created.
pub const DEMO_USERS: &[&str] = &["ada", "bob", "cleo", "dan", "erin", "finn"];

/// Seeds the demo world if the database has no accounts yet. Returns each demo user with a
/// fresh token, or `None` (and changes nothing) when the database is not empty.
pub async fn seed(state: &AppState) -> ApiResult<Option<Vec<(String, String)>>> {
    let db = &state.db;
    if account::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    let mut ids = Vec::new();
    for name in DEMO_USERS {
        // No client address: the demo is seeded by the server itself, not limited.
        let account = accounts::sign_up(
            db,
            &state.rate_limits,
            None,
            Username::parse("username", name)?,
            Email::parse("email", &format!("{name}@example.com"))?,
            Password::parse("password", DEMO_PASSWORD)?,
        )
        .await?;
        ids.push(account.id);
    }
    let [ada, bob, _, dan, _, _] = ids[..] else {
        unreachable!("six demo users");
    };

    // Acme: ada is the admin; members with each default dataset role (erin: none).
    organizations::create_organization(
        db,
        Actor::user(ada),
        Username::parse("username", "acme")?,
        Some("Acme Robotics".into()),
    )
    .await?;
    for (user, role, default) in [
        ("bob", OrganizationRole::Member, Some(DatasetRole::Labeler)),
        (
            "cleo",
            OrganizationRole::Member,
            Some(DatasetRole::Reviewer),
        ),
        ("dan", OrganizationRole::Member, Some(DatasetRole::Viewer)),
        ("erin", OrganizationRole::Member, None),
    ] {
        organizations::add_member(db, Actor::user(ada), "acme", user, role, default).await?;
    }
    // Globex: dan is the admin; finn manages its datasets by default.
    organizations::create_organization(
        db,
        Actor::user(dan),
        Username::parse("username", "globex")?,
        Some("Globex Corporation".into()),
    )
    .await?;
    organizations::add_member(
        db,
        Actor::user(dan),
        "globex",
        "finn",
        OrganizationRole::Member,
        Some(DatasetRole::Manager),
    )
    .await?;

    let dataset = |name: &str| DatasetName::parse("name", name);
    datasets::create_dataset(
        db,
        Actor::user(ada),
        Some("acme"),
        dataset("street-scenes")?,
        "Dashcam frames for pedestrian and vehicle segmentation.".into(),
        true,
    )
    .await?;
    datasets::create_dataset(
        db,
        Actor::user(ada),
        Some("acme"),
        dataset("warehouse-pallets")?,
        "Private: pallet detection in warehouse footage.".into(),
        false,
    )
    .await?;
    // erin has no default role: added by hand, as a MANAGER.
    datasets::add_collaborator(
        db,
        Actor::user(ada),
        "acme/warehouse-pallets",
        "erin",
        DatasetRole::Manager,
    )
    .await?;
    datasets::create_dataset(
        db,
        Actor::user(dan),
        Some("globex"),
        dataset("parts-inspection")?,
        "Private: surface defects on machined parts.".into(),
        false,
    )
    .await?;
    datasets::create_dataset(
        db,
        Actor::user(bob),
        None,
        dataset("flowers")?,
        "bob's personal playground.".into(),
        true,
    )
    .await?;

    let mut tokens = Vec::new();
    for (name, id) in DEMO_USERS.iter().zip(&ids) {
        tokens.push(((*name).to_owned(), state.keys.issue(*id, 0)?));
    }
    Ok(Some(tokens))
}
