//! The GraphQL schema: every domain's queries and mutations merged, plus the extension that
//! gives every error an `extensions.code`.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    EmptySubscription, MergedObject, Schema, SchemaBuilder, ServerError, ServerResult,
    ValidationResult, Variables,
};

use async_graphql::extensions::apollo_persisted_queries::{
    ApolloPersistedQueries, LruCacheStorage,
};
use async_graphql::parser::types::OperationType;

use crate::accounts::{AccountMutation, AccountQuery};
use crate::datasets::{DatasetMutation, DatasetQuery};
use crate::node::{AccountInterface, NodeQuery};
use crate::organizations::{OrganizationMutation, OrganizationQuery};

/// Every query.
#[derive(MergedObject, Default)]
pub struct Query(AccountQuery, OrganizationQuery, DatasetQuery, NodeQuery);

/// Every mutation. Each takes one `input` argument and returns a payload object.
#[derive(MergedObject, Default)]
pub struct Mutation(AccountMutation, OrganizationMutation, DatasetMutation);

/// orgql's schema type.
pub type OrgqlSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema, without request data or limits (what `--print-schema` prints).
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .register_output_type::<AccountInterface>()
        .extension(ErrorCodes)
}

/// The schema as the server runs it: with the configured query limits and introspection
/// setting.
pub fn configured_schema_builder(
    config: &crate::config::Config,
) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    let mut builder = schema_builder()
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(10)
        .extension(ReadOnlyOverGet)
        .extension(crate::limits::QueryLimits {
            max_document_bytes: config.max_document_bytes,
            max_aliases: config.max_aliases,
            max_root_fields: config.max_root_fields,
        });
    if config.apq_cache_size > 0 {
        builder = builder.extension(ApolloPersistedQueries::new(LruCacheStorage::new(
            config.apq_cache_size,
        )));
    }
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

/// Gives the errors async-graphql itself raises a code, following Apollo's conventions:
/// `GRAPHQL_PARSE_FAILED` for a document that does not parse, `GRAPHQL_VALIDATION_FAILED` for
/// one that does not validate against the schema, and `BAD_USER_INPUT` for variables that
/// do not fit their types.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

/// Sets `extensions.code` on `error` unless it already has one.
pub(crate) fn with_code(mut error: ServerError, code: &'static str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let code = if e.message.contains("Invalid value for argument")
                        || e.message.contains("Variable")
                    {
                        "BAD_USER_INPUT"
                    } else {
                        "GRAPHQL_VALIDATION_FAILED"
                    };
                    with_code(e, code)
                })
                .collect()
        })
    }
}

/// Marks a request that arrived over `GET` (put into its data by the HTTP edge).
#[derive(Clone, Copy, Debug)]
pub struct ViaGet;

/// Refuses any document with a mutation when the request came over `GET`, once the document
/// is known — which for an automatic persisted query is only after the hash was looked up,
/// so the HTTP edge's own check cannot see it.
pub struct ReadOnlyOverGet;

impl ExtensionFactory for ReadOnlyOverGet {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ReadOnlyOverGet)
    }
}

#[async_trait::async_trait]
impl Extension for ReadOnlyOverGet {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if ctx.data_opt::<ViaGet>().is_some()
            && document
                .operations
                .iter()
                .any(|(_, op)| op.node.ty != OperationType::Query)
        {
            return Err(with_code(
                ServerError::new("mutations must be sent with POST", None),
                "BAD_REQUEST",
            ));
        }
        Ok(document)
    }
}
