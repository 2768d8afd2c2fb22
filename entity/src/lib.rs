//! sea-orm entities for orgql's tables, one module per table. These are the storage layout
//! only; the GraphQL types in the server crate are separate, so the wire format never follows
//! the table layout by accident.

pub mod account;
pub mod api_token;
pub mod audit_event;
pub mod collaborator;
pub mod dataset;
pub mod invitation;
pub mod membership;
pub mod organization;
pub mod rate_limit;
pub mod roles;
pub mod server_setting;
pub mod user_account;
