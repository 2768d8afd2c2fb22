//! The GraphQL schema: every domain's queries and mutations merged.

use async_graphql::{MergedObject, Schema, SchemaBuilder, ServerError};

use crate::accounts::{AccountControlMutation, AccountMutation, AccountQuery};
use crate::datasets::{DatasetMutation, DatasetQuery};
use crate::invitations::InvitationMutation;
use crate::live::LiveSubscription;
use crate::node::{AccountInterface, NodeQuery};
use crate::organizations::{OrganizationMutation, OrganizationQuery};
use crate::telemetry::stages::Staged;
use crate::tokens::TokenMutation;

/// Every query.
#[derive(MergedObject, Default)]
pub struct Query(AccountQuery, OrganizationQuery, DatasetQuery, NodeQuery);

/// Every mutation. Each takes one `input` argument and returns a payload object.
#[derive(MergedObject, Default)]
pub struct Mutation(
    AccountMutation,
    AccountControlMutation,
    TokenMutation,
    OrganizationMutation,
    InvitationMutation,
    DatasetMutation,
);

/// orgql's schema type.
pub type OrgqlSchema = Schema<Staged<Query>, Staged<Mutation>, LiveSubscription>;

/// The schema, without request data or limits (what `--print-schema` prints).
pub fn schema_builder() -> SchemaBuilder<Staged<Query>, Staged<Mutation>, LiveSubscription> {
    Schema::build(Staged::default(), Staged::default(), LiveSubscription)
        .register_output_type::<AccountInterface>()
}

/// The schema as the server runs it: with the configured depth and complexity limits and
/// introspection setting. (No async-graphql extensions: see [`crate::limits`]; an extension
/// added here would not see the fields of [`crate::eager::Eager`] objects.)
pub fn configured_schema_builder(
    config: &crate::config::Config,
) -> SchemaBuilder<Staged<Query>, Staged<Mutation>, LiveSubscription> {
    let mut builder = schema_builder()
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(10);
    if config.disable_introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder
}

/// The schema as SDL, sorted (what `--print-schema` prints and `schema.graphql` holds).
pub fn sdl() -> String {
    schema_builder().finish().sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}

/// Sets `extensions.code` on `error` unless it already has one.
pub(crate) fn with_code(mut error: ServerError, code: &'static str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}
