//! orgql's black-box tests: one binary, a module per area. Each test starts a real server
//! (`helpers::spawn_app`) on a database of its own and speaks GraphQL to it over HTTP.
//!
//! `cargo test` runs them on SQLite, and on PostgreSQL too when `TEST_DATABASE_URL` names a
//! server (each test then gets a fresh database there); `TEST_LOG=1` shows the server's logs.

#[macro_use]
mod helpers;

mod accounts;
mod audit;
mod datasets;
mod durability;
mod edge;
mod faults;
mod fuzz;
mod hardening;
mod invitations;
mod live;
mod operating;
mod organizations;
mod policy;
mod spa;
mod statements;
mod tokens;
