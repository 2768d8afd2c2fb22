//! The `graphql.validate` and `graphql.execute` spans of an operation, which async-graphql
//! runs itself between being handed the operation and answering it.
//!
//! async-graphql's hooks for these stages belong to its extensions, and any extension costs
//! every field of every response a hook of its own (with the names of its parent and return
//! types looked up and formatted): on the nested benchmark query, more than the whole trace.
//! So there is none. Instead, the schema's roots are [`Staged`]: the first root field to start
//! ends the operation's validate span (begun when the operation was handed to async-graphql)
//! and starts its execute span, which every root field runs in, and which ends when the
//! response is there ([`Stages::finish`]). An operation that failed validation, or that only
//! asked for `__typename` or introspection, has no execute span.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container};
use async_graphql::{Context, ContextSelectionSet, ObjectType, OutputType, Positioned};
use async_graphql::{ServerResult, Value};
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanKind;

use super::traces::{Span, exporting};

tokio::task_local! {
    /// The stages of the operation the task is running ([`Stages::run`]).
    static STAGES: Arc<Stages>;
}

/// One operation's stage spans, while traces are exported.
pub struct Stages {
    /// Until the first root field starts.
    validate: Mutex<Option<Span>>,
    /// From the first root field on; `Some` once it has started.
    execute: Mutex<Option<Span>>,
    /// The operation's name, for the execute span.
    operation: Option<String>,
}

impl Stages {
    /// The stages of operation `operation`, its validation starting now: `None` when no
    /// trace is current.
    pub fn begin(operation: Option<&str>) -> Option<Arc<Stages>> {
        if !exporting() {
            return None;
        }
        let validate = Span::leaf("graphql.validate", SpanKind::Internal, Vec::new);
        validate.exists().then(|| {
            Arc::new(Stages {
                validate: Mutex::new(Some(validate)),
                execute: Mutex::new(None),
                operation: operation.map(str::to_owned),
            })
        })
    }

    /// `operation` (async-graphql's execution of it) run in these stages; [`Stages::finish`]
    /// them once it is done.
    pub fn scope<F: std::future::Future>(
        self: &Arc<Self>,
        operation: F,
    ) -> tokio::task::futures::TaskLocalFuture<Arc<Stages>, F> {
        STAGES.scope(self.clone(), operation)
    }

    /// The execute span's context, starting it (and ending validation) on the first call.
    fn executing(&self) -> Option<opentelemetry::Context> {
        let mut execute = self.execute.lock().unwrap_or_else(|e| e.into_inner());
        let span = execute.get_or_insert_with(|| {
            drop(
                self.validate
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(),
            );
            Span::child("graphql.execute", SpanKind::Internal, || {
                vec![KeyValue::new(
                    "graphql.operation.name",
                    self.operation.clone().unwrap_or_default(),
                )]
            })
        });
        span.context().cloned()
    }

    /// Ends both spans: the operation has its response.
    pub fn finish(&self) {
        drop(
            self.validate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        drop(
            self.execute
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }
}

/// A root type (`Query`, `Mutation`) whose fields run in their operation's execute span: the
/// same type to GraphQL, one check per root field to orgql.
#[derive(Default)]
pub struct Staged<T>(pub T);

impl<T: ObjectType> ContainerType for Staged<T> {
    fn is_empty() -> bool {
        T::is_empty()
    }

    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        if exporting()
            && let Ok(Some(cx)) = STAGES.try_with(|stages| stages.executing())
        {
            return self.0.resolve_field(ctx).with_context(cx).await;
        }
        self.0.resolve_field(ctx).await
    }

    async fn find_entity(&self, ctx: &Context<'_>, params: &Value) -> ServerResult<Option<Value>> {
        self.0.find_entity(ctx, params).await
    }
}

impl<T: ObjectType> OutputType for Staged<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_container(ctx, self).await
    }
}

impl<T: ObjectType> ObjectType for Staged<T> {}
