//! Limits on what one GraphQL document may ask, checked before anything executes (so a
//! refused query runs no SQL). Depth and complexity are async-graphql's own checks (set up
//! in [`crate::schema::schema_builder`]); this extension adds document size, alias count and
//! root field count.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{ServerError, ServerResult, Variables};

/// The configured limits.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    /// Maximum document size in bytes.
    pub max_document_bytes: usize,
    /// Maximum aliased fields in the document.
    pub max_aliases: usize,
    /// Maximum root fields in any one operation.
    pub max_root_fields: usize,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

fn refused(message: String) -> ServerError {
    crate::schema::with_code(ServerError::new(message, None), "GRAPHQL_VALIDATION_FAILED")
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some())
                    + count_aliases(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => count_aliases(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

impl QueryLimits {
    /// Checks a parsed document against the limits.
    pub fn check(&self, document: &ExecutableDocument) -> Result<(), ServerError> {
        let operations: Vec<&SelectionSet> = match &document.operations {
            DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
            DocumentOperations::Multiple(ops) => {
                ops.values().map(|op| &op.node.selection_set.node).collect()
            }
        };
        let aliases: usize = operations
            .iter()
            .map(|set| count_aliases(set))
            .sum::<usize>()
            + document
                .fragments
                .values()
                .map(|f| count_aliases(&f.node.selection_set.node))
                .sum::<usize>();
        if aliases > self.max_aliases {
            return Err(refused(format!(
                "the query has {aliases} aliases; at most {} are allowed",
                self.max_aliases
            )));
        }
        for set in operations {
            if set.items.len() > self.max_root_fields {
                return Err(refused(format!(
                    "an operation has {} root fields; at most {} are allowed",
                    set.items.len(),
                    self.max_root_fields
                )));
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Extension for QueryLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if query.len() > self.max_document_bytes {
            return Err(refused(format!(
                "the document has {} bytes; at most {} are allowed",
                query.len(),
                self.max_document_bytes
            )));
        }
        let document = next.run(ctx, query, variables).await?;
        self.check(&document)?;
        Ok(document)
    }
}
