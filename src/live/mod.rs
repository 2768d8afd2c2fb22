//! Live updates: `Subscription.organizationEvents`, `datasetEvents` and `viewerEvents`,
//! built on the audit log, so that what a subscriber receives is exactly what committed.
//!
//! - **The feed** ([`feed`]) reads committed audit events in commit order: on PostgreSQL it
//!   `LISTEN`s to `orgql_audit`, which a trigger notifies (with the range of ids a statement
//!   inserted) only when the inserting transaction commits, then reads those rows; after its
//!   connection was lost it reads what it missed from the table. On SQLite (one instance) it
//!   reads the table for rows past the last one it delivered.
//! - **The hub** ([`Hub`]) keeps this instance's subscriptions and hands each batch of events
//!   to them: it decides, for all of a batch's candidates at once ([`access`]), whose
//!   credential still holds and who may see each event, through `crate::policy`; a
//!   subscriber who may not any more gets no further event and their subscription ends with
//!   `FORBIDDEN`.
//! - **The transports** ([`transport`]): `graphql-transport-ws` on `/graphql`, and
//!   `graphql-sse` (distinct connections) on `/graphql/stream`.

pub mod access;
mod fanout;
pub mod feed;
pub mod transport;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::{Context, Subscription};
use futures_util::{Stream, StreamExt};
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;

use entity::audit_event;

use crate::audit::AuditEvent;
use crate::auth::{Via, Viewer};
use crate::context::ContextExt;
use crate::error::{ApiError, ApiResult};

/// What a subscription follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// An organization's events (`organizationEvents`).
    Organization(i64),
    /// A dataset's events (`datasetEvents`).
    Dataset(i64),
    /// Events whose subject is the subscriber (`viewerEvents`).
    Viewer,
}

/// The credential a subscription was opened with, checked again for every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A sign-in token of this session generation.
    Session { generation: i64 },
    /// An API token (by id).
    ApiToken { id: i64 },
}

/// What a subscription's stream receives.
enum Item {
    /// An event it may see.
    Event(Arc<audit_event::Model>),
    /// An event it may see, rendered for every subscription of its operation (see
    /// [`fanout`]).
    Rendered(Arc<fanout::Rendered>),
    /// The end: it lost access (or fell too far behind).
    End(ApiError),
    /// The end, without an error (the dataset it followed was deleted).
    Complete,
}

/// One subscription, as the hub keeps it.
struct Entry {
    topic: Topic,
    user: i64,
    credential: Credential,
    sender: mpsc::Sender<Item>,
    /// Its operation, when its events are rendered once for all (see [`fanout`]).
    render: Option<Arc<fanout::Key>>,
}

/// How many events a subscriber may fall behind before its subscription ends.
const BACKLOG: usize = 1024;

/// Limits on subscriptions.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Subscriptions one user may hold on this instance at once.
    pub per_user: usize,
    /// Subscriptions one WebSocket connection may hold at once.
    pub per_connection: usize,
}

/// This instance's subscriptions and the feed that serves them.
pub struct Hub {
    db: DatabaseConnection,
    limits: Limits,
    entries: Mutex<HashMap<u64, Entry>>,
    /// The operations rendered for all, each once (with how many entries hold it): the
    /// entries of one operation share its key, which the hub then compares by address.
    operations: Mutex<HashMap<Arc<fanout::Key>, usize>>,
    next: std::sync::atomic::AtomicU64,
    feed: std::sync::OnceLock<()>,
    metrics: Option<Arc<crate::telemetry::Metrics>>,
    /// Set when the server closes: the feed stops and gives its connection back.
    closed: tokio::sync::watch::Sender<bool>,
}

impl Hub {
    /// A hub on `db` (the feed starts with the first subscription).
    pub fn new(
        db: DatabaseConnection,
        limits: Limits,
        metrics: Option<Arc<crate::telemetry::Metrics>>,
    ) -> Self {
        Hub {
            db,
            limits,
            entries: Mutex::default(),
            operations: Mutex::default(),
            next: Default::default(),
            feed: std::sync::OnceLock::new(),
            metrics,
            closed: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Stops the feed (it gives back its connection, so that the pool can close) and ends
    /// every subscription.
    pub fn close(&self) {
        self.closed.send_replace(true);
        self.entries().clear();
        self.operations().clear();
    }

    /// Whether [`Hub::close`] was called, for the feed.
    fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn operations(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<fanout::Key>, usize>> {
        self.operations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared key equal to `key`, held once more.
    fn hold(&self, key: &Arc<fanout::Key>) -> Arc<fanout::Key> {
        use std::collections::hash_map::Entry as Held;
        match self.operations().entry(key.clone()) {
            Held::Occupied(mut held) => {
                *held.get_mut() += 1;
                held.key().clone()
            }
            Held::Vacant(new) => new.insert_entry(1).key().clone(),
        }
    }

    /// Holds `key` once less (forgets it when nothing holds it).
    fn release(&self, key: &Arc<fanout::Key>) {
        let mut operations = self.operations();
        if let Some(held) = operations.get_mut(key) {
            *held -= 1;
            if *held == 0 {
                operations.remove(key);
            }
        }
    }

    /// How many subscriptions are live on this instance.
    pub fn live(&self) -> usize {
        self.entries().len()
    }

    /// Registers a subscription of `user` to `topic`; its events arrive on the stream, which
    /// unregisters it when dropped; or, for a subscription rendered for all (`fanout`), they
    /// go to its own channel, and the stream only keeps it registered. `RATE_LIMITED` when
    /// the user holds too many.
    fn subscribe(
        self: &Arc<Self>,
        topic: Topic,
        user: i64,
        credential: Credential,
        fanout: Option<&fanout::Fanout>,
    ) -> ApiResult<Events> {
        self.feed.get_or_init(|| feed::start(self.clone()));
        let (sender, receiver) = match fanout {
            Some(fanout) => (fanout.sender.clone(), None),
            None => {
                let (sender, receiver) = mpsc::channel(BACKLOG);
                (sender, Some(receiver))
            }
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut entries = self.entries();
            let held = entries.values().filter(|e| e.user == user).count();
            if held >= self.limits.per_user {
                return Err(ApiError::RateLimited(format!(
                    "a user may hold at most {} subscriptions on one server at once",
                    self.limits.per_user
                )));
            }
            entries.insert(
                id,
                Entry {
                    topic,
                    user,
                    credential,
                    sender,
                    render: fanout.map(|f| self.hold(&f.key)),
                },
            );
            if let Some(metrics) = &self.metrics {
                metrics.subscriptions().set(entries.len() as i64);
            }
        }
        let guard = Registered {
            hub: self.clone(),
            id,
        };
        let Some(receiver) = receiver else {
            // Its events go to the fanout's channel; this stream holds the registration.
            return Ok(futures_util::stream::once(async move {
                let _registered = guard;
                std::future::pending().await
            })
            .boxed());
        };
        Ok(futures_util::stream::unfold(
            (receiver, guard, false),
            |(mut receiver, guard, ended)| async move {
                if ended {
                    return None;
                }
                loop {
                    return match receiver.recv().await? {
                        Item::Event(event) => Some((
                            Ok(AuditEvent(event.as_ref().clone())),
                            (receiver, guard, false),
                        )),
                        Item::End(error) => Some((Err(error.into()), (receiver, guard, true))),
                        Item::Complete => None,
                        Item::Rendered(_) => continue,
                    };
                }
            },
        )
        .boxed())
    }

    fn unregister(&self, id: u64) {
        let mut entries = self.entries();
        if let Some(Entry {
            render: Some(key), ..
        }) = entries.remove(&id)
        {
            self.release(&key);
        }
        if let Some(metrics) = &self.metrics {
            metrics.subscriptions().set(entries.len() as i64);
        }
    }

    /// Hands `events` (committed, in commit order) to the subscriptions that may see them;
    /// `known`: what access depends on, as far as the feed keeps it (see [`access::Known`]).
    pub(crate) async fn deliver(
        &self,
        events: Vec<audit_event::Model>,
        mut known: Option<&mut access::Known>,
    ) {
        // The candidates: every subscription following something an event concerns.
        // The operations rendered for all among the candidates (each distinct one once), and
        // each such candidate's.
        let mut operations: Vec<Arc<fanout::Key>> = Vec::new();
        let mut operation_of: HashMap<u64, usize> = HashMap::new();
        // (By address: the entries of one operation share its key.)
        let mut distinct: HashMap<usize, usize> = HashMap::new();
        let candidates: Vec<(u64, Topic, i64, Credential)> = {
            let entries = self.entries();
            entries
                .iter()
                .filter(|(_, e)| events.iter().any(|ev| concerns(e.topic, e.user, ev)))
                .map(|(id, e)| {
                    if let Some(key) = &e.render {
                        let index =
                            *distinct
                                .entry(Arc::as_ptr(key) as usize)
                                .or_insert_with(|| {
                                    operations.push(key.clone());
                                    operations.len() - 1
                                });
                        operation_of.insert(*id, index);
                    }
                    (*id, e.topic, e.user, e.credential)
                })
                .collect()
        };
        if candidates.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        // How long ago the oldest of these events was written (commit to here, roughly).
        let age = events
            .first()
            .map(|e| (chrono::Utc::now() - e.created_at).num_milliseconds());
        let decision = access::decide(&self.db, &candidates, &events, known.as_deref_mut()).await;
        let decisions = match decision {
            Ok(decisions) => decisions,
            Err(error) => {
                // The database is away: the feed reads these events again once it is back.
                tracing::warn!(%error, "live updates: could not check access; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                return Box::pin(self.deliver(events, known)).await;
            }
        };
        let decided = started.elapsed();
        let events: Vec<Arc<audit_event::Model>> = events.into_iter().map(Arc::new).collect();
        // Each event rendered once for each operation rendered for all that receives it.
        let mut rendered: HashMap<(usize, usize), Arc<fanout::Rendered>> = HashMap::new();
        for (id, verdicts) in &decisions {
            let Some(&operation) = operation_of.get(id) else {
                continue;
            };
            for &(index, verdict) in verdicts {
                if verdict != access::Verdict::Lost && !rendered.contains_key(&(operation, index)) {
                    let rendering = operations[operation].render(events[index].clone()).await;
                    rendered.insert((operation, index), Arc::new(rendering));
                }
            }
        }
        let item_of = |id: u64, index: usize| match operation_of
            .get(&id)
            .and_then(|&operation| rendered.get(&(operation, index)))
        {
            Some(rendering) => Item::Rendered(rendering.clone()),
            None => Item::Event(events[index].clone()),
        };
        let mut ended = Vec::new();
        {
            let entries = self.entries();
            for (id, verdicts) in decisions {
                let Some(entry) = entries.get(&id) else {
                    continue;
                };
                for (index, verdict) in verdicts {
                    let item = match verdict {
                        access::Verdict::Deliver => item_of(id, index),
                        access::Verdict::DeliverThenComplete => {
                            if entry.sender.try_send(item_of(id, index)).is_err() {
                                break;
                            }
                            Item::Complete
                        }
                        access::Verdict::Lost => Item::End(ApiError::Forbidden(
                            "this subscription's access was lost (removed, left, made private, \
                             or its credential was revoked)"
                                .into(),
                        )),
                    };
                    let last = !matches!(item, Item::Event(_) | Item::Rendered(_));
                    if entry.sender.try_send(item).is_err() {
                        let _ = entry.sender.try_send(Item::End(ApiError::RateLimited(
                            "this subscription fell too far behind; subscribe again".into(),
                        )));
                        ended.push(id);
                        break;
                    }
                    if last {
                        ended.push(id);
                        break;
                    }
                }
            }
        }
        tracing::debug!(
            events = events.len(),
            subscriptions = candidates.len(),
            age_ms = age,
            decided_ms = decided.as_secs_f64() * 1e3,
            handed_ms = started.elapsed().as_secs_f64() * 1e3,
            "live updates: events handed to their subscriptions"
        );
        // Ended subscriptions leave the registry at once: they get nothing further.
        for id in ended {
            self.unregister(id);
        }
    }
}

/// Whether `event` is about what a subscription of `user` to `topic` follows.
fn concerns(topic: Topic, user: i64, event: &audit_event::Model) -> bool {
    match topic {
        Topic::Organization(id) => event.organization_id == Some(id),
        Topic::Dataset(id) => event.dataset_id == Some(id),
        Topic::Viewer => event.subject_id == Some(user),
    }
}

/// Unregisters a subscription when its stream is dropped.
struct Registered {
    hub: Arc<Hub>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

/// Counts one connection's subscriptions against `--max-subscriptions-per-connection`.
#[derive(Clone, Default)]
pub struct ConnectionSubscriptions(Arc<AtomicUsize>);

/// A subscription counted against its connection's allowance while it lives.
struct Counted<S> {
    inner: S,
    count: ConnectionSubscriptions,
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        self.count.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S: Stream + Unpin> Stream for Counted<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        std::pin::Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// The subscriber's user and credential; `UNAUTHENTICATED` when anonymous.
fn subscriber(ctx: &Context<'_>) -> ApiResult<(i64, Credential, Viewer)> {
    let viewer = ctx.viewer();
    let Viewer::User { id, via } = viewer else {
        return Err(ApiError::Unauthenticated("you must be signed in"));
    };
    let credential = match via {
        Via::Session => Credential::Session {
            generation: ctx
                .data_opt::<crate::auth::Presented>()
                .and_then(|p| match p {
                    crate::auth::Presented::Session(s) => Some(s.generation),
                    _ => None,
                })
                .ok_or(ApiError::Unauthenticated("you must be signed in"))?,
        },
        Via::ApiToken { id, .. } => Credential::ApiToken { id },
    };
    Ok((id, credential, viewer))
}

/// Opens a subscription for the subscriber in `ctx` to `topic`, counted against its
/// connection when it has one.
fn open(ctx: &Context<'_>, topic: Topic, user: i64, credential: Credential) -> ApiResult<Events> {
    let hub = ctx.data_unchecked::<Arc<Hub>>().clone();
    let count = ctx
        .data_opt::<ConnectionSubscriptions>()
        .cloned()
        .unwrap_or_default();
    let per_connection = hub.limits().per_connection;
    if count.0.fetch_add(1, Ordering::Relaxed) >= per_connection {
        count.0.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::RateLimited(format!(
            "a connection may hold at most {per_connection} subscriptions at once"
        )));
    }
    let fanout = ctx.data_opt::<fanout::Fanout>();
    let stream = match hub.subscribe(topic, user, credential, fanout) {
        Ok(stream) => {
            if let Some(fanout) = fanout {
                fanout.registered.store(true, Ordering::Relaxed);
            }
            stream
        }
        Err(error) => {
            count.0.fetch_sub(1, Ordering::Relaxed);
            return Err(error);
        }
    };
    Ok(Box::pin(Counted {
        inner: stream,
        count,
    }))
}

/// A subscription's events, as its resolver returns them.
pub type Events = futures_util::stream::BoxStream<'static, async_graphql::Result<AuditEvent>>;

/// Live updates, from the audit log.
#[derive(Default)]
pub struct LiveSubscription;

#[Subscription(name = "Subscription")]
impl LiveSubscription {
    /// The events of organization `organization` as they commit: for its `ADMIN`s every one;
    /// for its other members, membership events and the events of datasets they may see
    /// (collaborator events: of datasets whose collaborators they may list). The subscriber
    /// must be a member; when they stop being one, the subscription ends with `FORBIDDEN`.
    async fn organization_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization's username.")] organization: String,
    ) -> async_graphql::Result<Events> {
        if let Some(replay) = ctx.data_opt::<fanout::Replay>() {
            return Ok(replay.events());
        }
        let (user, credential, viewer) = subscriber(ctx)?;
        let org = crate::organizations::find_organization(&ctx.reader(), &organization)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no organization named '{organization}'")))?
            .id;
        let member = match viewer.user_id_within(org) {
            Some(user) => crate::organizations::membership(&ctx.reader(), org, user).await?,
            None => None,
        };
        if member.is_none() {
            return Err(ApiError::Forbidden(
                "only the organization's members may follow its events".into(),
            )
            .into());
        }
        Ok(open(ctx, Topic::Organization(org), user, credential)?)
    }

    /// The events of dataset `dataset` (`owner/name`) as they commit, for those who may list
    /// its collaborators; when they may not any more, the subscription ends with
    /// `FORBIDDEN`, and when the dataset is deleted, after its `DATASET_DELETED` event.
    async fn dataset_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dataset's full name, `owner/name`.")] dataset: String,
    ) -> async_graphql::Result<Events> {
        if let Some(replay) = ctx.data_opt::<fanout::Replay>() {
            return Ok(replay.events());
        }
        let (user, credential, viewer) = subscriber(ctx)?;
        let located = crate::datasets::find_dataset(&ctx.reader(), &dataset)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no dataset named '{dataset}'")))?;
        let within = viewer.user_id_within(located.dataset.owner_id);
        let role = crate::datasets::effective_role(&ctx.reader(), &located, within).await?;
        // A dataset the subscriber may not see is not there for them.
        if !crate::policy::dataset_allows(
            role,
            located.dataset.public,
            crate::policy::DatasetAction::See,
        ) {
            return Err(ApiError::NotFound(format!("no dataset named '{dataset}'")).into());
        }
        if !crate::policy::dataset_allows(
            role,
            located.dataset.public,
            crate::policy::DatasetAction::ListCollaborators,
        ) {
            return Err(ApiError::Forbidden(
                "only those who may list a dataset's collaborators may follow its events".into(),
            )
            .into());
        }
        let row = located.dataset;
        Ok(open(ctx, Topic::Dataset(row.id), user, credential)?)
    }

    /// Events whose subject is the viewer, as they commit: added to or removed from an
    /// organization, their role changed, invited, made a collaborator, their collaborator
    /// role changed or removed.
    async fn viewer_events(&self, ctx: &Context<'_>) -> async_graphql::Result<Events> {
        if let Some(replay) = ctx.data_opt::<fanout::Replay>() {
            return Ok(replay.events());
        }
        let (user, credential, _) = subscriber(ctx)?;
        Ok(open(ctx, Topic::Viewer, user, credential)?)
    }
}
