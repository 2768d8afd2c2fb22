//! One rendering of an event for every subscription that asks for it alike.
//!
//! Subscribers mostly run the same operation: a client's `organizationEvents` with the same
//! selection and variables. Resolving an event's selection and building its response for
//! each of them, one by one, was about a fifth of what delivering an event cost, and the
//! largest part that was orgql's own. When an operation's
//! answer cannot depend on who asks ([`Shape::of`]: one root field of `Subscription`,
//! selecting only event fields that read the event itself), the hub renders each event once
//! per distinct operation ([`Key::render`], replaying the operation with the event as its
//! only item), and every such subscription receives that response.
//!
//! Which subscriptions receive an event, and when one ends, is decided for each of them as
//! before (see the hub); only the rendering is shared. An operation of another shape (a
//! fragment, a directive, a field such as `actor` that loads data as the viewer) is
//! resolved for each subscriber as before.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{
    Data, Executor, Pos, Request, Response, ServerError, Value, Variables, futures_util,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::mpsc;

use entity::audit_event;

use super::{BACKLOG, Item};
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::schema::OrgqlSchema;

/// The root fields whose events may be rendered once for all.
const ROOT_FIELDS: [&str; 3] = ["organizationEvents", "datasetEvents", "viewerEvents"];

/// The `AuditEvent` fields whose value is the event's own, whoever asks.
const SHARED_FIELDS: [&str; 9] = [
    "__typename",
    "id",
    "action",
    "createdAt",
    "actorUsername",
    "datasetFullName",
    "subjectUsername",
    "role",
    "previousRole",
];

/// Where an operation's only root field is, when its events render alike for everyone.
struct Shape {
    /// The root field's position in the document.
    pos: Pos,
    /// The root field's response key (its alias, else its name).
    key: String,
}

impl Shape {
    /// The shape of `request`, when it is a subscription whose answer cannot depend on who
    /// asks: one root field of [`ROOT_FIELDS`], no directives, no fragments, and below it
    /// only [`SHARED_FIELDS`].
    fn of(request: &mut Request) -> Option<Shape> {
        let name = request.operation_name.clone();
        let document = request.parsed_query().ok()?;
        let operation = match (&document.operations, name) {
            (DocumentOperations::Single(operation), None) => operation,
            (DocumentOperations::Multiple(operations), Some(name)) => {
                operations.get(name.as_str())?
            }
            _ => return None,
        };
        let operation = &operation.node;
        if operation.ty != OperationType::Subscription || !operation.directives.is_empty() {
            return None;
        }
        let [root] = &operation.selection_set.node.items[..] else {
            return None;
        };
        let Selection::Field(root) = &root.node else {
            return None;
        };
        let field = &root.node;
        let plain = field.directives.is_empty()
            && ROOT_FIELDS.contains(&field.name.node.as_str())
            && field
                .selection_set
                .node
                .items
                .iter()
                .all(|item| match &item.node {
                    Selection::Field(inner) => {
                        let inner = &inner.node;
                        inner.directives.is_empty()
                            && inner.arguments.is_empty()
                            && inner.selection_set.node.items.is_empty()
                            && SHARED_FIELDS.contains(&inner.name.node.as_str())
                    }
                    _ => false,
                });
        plain.then(|| Shape {
            pos: root.pos,
            key: field.response_key().node.to_string(),
        })
    }

    /// What the subscription answers when it ends with `error`: the error at the root field,
    /// as the schema answers an error its stream yields.
    fn ended(&self, error: ApiError) -> Response {
        let error: async_graphql::Error = error.into();
        Response::from_errors(vec![
            error
                .into_server_error(self.pos)
                .with_path(vec![async_graphql::PathSegment::Field(self.key.clone())]),
        ])
    }
}

/// An operation as subscribers ask it: subscriptions with equal keys receive the same
/// rendering of each event.
pub(crate) struct Key {
    query: String,
    variables: Variables,
    operation_name: Option<String>,
    /// The schema that renders it (not part of the key).
    schema: OrgqlSchema,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.query == other.query
            && self.operation_name == other.operation_name
            && self.variables == other.variables
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.query.hash(state);
        self.operation_name.hash(state);
    }
}

impl Key {
    /// `event` rendered as this operation answers it: the operation replayed with the event
    /// as its only item ([`Replay`]).
    pub(crate) async fn render(&self, event: Arc<audit_event::Model>) -> Rendered {
        let mut request = Request::new(self.query.clone())
            .variables(self.variables.clone())
            .data(Replay(event));
        request.operation_name = self.operation_name.clone();
        let response = self
            .schema
            .execute_stream(request)
            .next()
            .await
            .unwrap_or_default();
        Rendered {
            data: response.data,
            errors: response.errors,
        }
    }
}

/// One event as one operation answers it.
pub(crate) struct Rendered {
    data: Value,
    errors: Vec<ServerError>,
}

impl Rendered {
    /// As a subscriber's response.
    fn response(&self) -> Response {
        let mut response = Response::new(self.data.clone());
        response.errors = self.errors.clone();
        response
    }
}

/// What a subscription rendered for all finds in its request's data: its key, and where
/// the hub sends what it receives.
pub(crate) struct Fanout {
    pub(crate) key: Arc<Key>,
    pub(crate) sender: mpsc::Sender<Item>,
    /// Set once the hub holds the subscription: the schema's stream has nothing more to say.
    pub(crate) registered: Arc<AtomicBool>,
}

/// In a replayed operation's data: the event its subscription field yields, once.
pub(crate) struct Replay(Arc<audit_event::Model>);

impl Replay {
    /// The subscription field's stream: the event, then the end.
    pub(crate) fn events(&self) -> super::Events {
        let event = AuditEvent(self.0.as_ref().clone());
        futures_util::stream::once(async move { Ok(event) }).boxed()
    }
}

/// Runs `request` (with `session` data) as a stream of responses: an operation whose events
/// render alike for everyone receives the hub's renderings; any other runs on the schema.
pub(crate) fn execute_stream(
    schema: &OrgqlSchema,
    mut request: Request,
    session: Option<Arc<Data>>,
) -> BoxStream<'static, Response> {
    let Some(shape) = Shape::of(&mut request) else {
        return schema.execute_stream_with_session_data(request, session.unwrap_or_default());
    };
    let (sender, receiver) = mpsc::channel(BACKLOG);
    let key = Arc::new(Key {
        query: request.query.clone(),
        variables: request.variables.clone(),
        operation_name: request.operation_name.clone(),
        schema: schema.clone(),
    });
    // The schema runs the subscription field: it checks the subscriber and registers the
    // subscription with the hub, which then sends its events to `receiver`. Its own stream
    // answers only a refusal (and keeps the subscription registered while it lives).
    let registered = Arc::new(AtomicBool::new(false));
    let refusals = schema.execute_stream_with_session_data(
        request.data(Fanout {
            key,
            sender,
            registered: registered.clone(),
        }),
        session.unwrap_or_default(),
    );
    let state = (refusals, receiver, Some(shape));
    futures_util::stream::unfold(state, move |(mut refusals, mut receiver, shape)| {
        let registered = registered.clone();
        async move {
            let shape = shape?;
            // Once registered, the schema's stream is only held (it keeps the registration),
            // not polled: it will not answer anything more.
            let listening = || !registered.load(Ordering::Relaxed);
            loop {
                tokio::select! {
                    biased;
                    item = receiver.recv() => match item {
                        Some(Item::Rendered(rendered)) => {
                            return Some((rendered.response(), (refusals, receiver, Some(shape))));
                        }
                        Some(Item::End(error)) => {
                            return Some((shape.ended(error), (refusals, receiver, None)));
                        }
                        Some(Item::Complete) | None => return None,
                        Some(Item::Event(_)) => continue,
                    },
                    response = refusals.next(), if listening() => {
                        return Some((response?, (refusals, receiver, Some(shape))));
                    }
                }
            }
        }
    })
    .boxed()
}

/// The schema as the WebSocket transport runs it (see [`execute_stream`]).
#[derive(Clone)]
pub(crate) struct LiveExecutor(pub(crate) OrgqlSchema);

impl Executor for LiveExecutor {
    async fn execute(&self, request: Request) -> Response {
        self.0.execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        execute_stream(&self.0, request, session_data)
    }
}
