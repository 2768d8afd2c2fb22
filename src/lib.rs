//! orgql as a library: the schema, the domains, and the HTTP server around them. The binary
//! (`src/main.rs`) parses configuration and calls [`Application::build`].

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod config;
pub mod context;
pub mod datasets;
pub mod db;
pub mod demo;
pub mod eager;
pub mod error;
mod graphiql;
pub mod http;
pub mod invitations;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod newtypes;
pub mod node;
pub mod organizations;
pub mod pages;
pub mod policy;
pub mod ratelimit;
pub mod relay;
pub mod roles;
pub mod schema;
mod server;
pub mod telemetry;
pub mod tick;
pub mod tokens;

pub use server::{Application, build_state, serve};
