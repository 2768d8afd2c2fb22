//! The committed audit events, in commit order, for the hub (see the module above).

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use entity::audit_event;

use super::Hub;
use super::access::{Changed, Known};

/// The channel the `audit_event` trigger notifies on PostgreSQL (see the migration
/// `m20261208_000001_audit_notify`).
const CHANNEL: &str = "orgql_audit";

/// The channel that changes to credentials and memberships notify on PostgreSQL (see the
/// migration `m20261209_000001_access_notify`); one connection listens to both, so their
/// notifications arrive in commit order.
const ACCESS_CHANNEL: &str = "orgql_access";

/// How often SQLite's table is read for new events.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// After a lost connection, how far below the highest delivered id the catch-up reads:
/// events of transactions that committed after later ids had been delivered (ids are taken
/// at insert, not at commit) are found, and the ids already delivered skipped.
const LOOKBACK: i64 = 1000;

/// After the LISTEN connection was lost (or at start), how long the table is read again
/// and how often: until the listener surely listens again.
const RESCAN_FOR: Duration = Duration::from_secs(5);
const RESCAN_EVERY: Duration = Duration::from_millis(250);

/// How many events one read takes at most.
const BATCH: u64 = 1000;

/// Starts the feed of `hub` in the background; it stops when the hub is gone.
pub(crate) fn start(hub: Arc<Hub>) {
    let backend = hub.db.get_database_backend();
    let weak = Arc::downgrade(&hub);
    let mut closing = hub.closing();
    tokio::spawn(async move {
        let feed = async {
            match backend {
                DbBackend::Postgres => listen(weak).await,
                _ => poll(weak).await,
            }
        };
        // Until the server closes (the listener's connection goes back to the pool then).
        tokio::select! {
            _ = feed => {}
            _ = closing.wait_for(|closed| *closed) => {}
        }
    });
}

/// The highest event id now (0 for none), retried until the database answers.
async fn newest(db: &DatabaseConnection) -> i64 {
    loop {
        let found: Result<Option<Option<i64>>, _> = audit_event::Entity::find()
            .select_only()
            .expr_as(Func::max(Expr::col(audit_event::Column::Id)), "newest")
            .into_tuple()
            .one(db)
            .await;
        match found {
            Ok(found) => return found.flatten().unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "live updates: the database does not answer; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// At most [`BATCH`] events with ids above `after` (and up to `up_to`, included), in id order.
async fn read(
    db: &DatabaseConnection,
    after: i64,
    up_to: Option<i64>,
) -> Result<Vec<audit_event::Model>, sea_orm::DbErr> {
    let mut select = audit_event::Entity::find().filter(audit_event::Column::Id.gt(after));
    if let Some(last) = up_to {
        select = select.filter(audit_event::Column::Id.lte(last));
    }
    select
        .order_by_asc(audit_event::Column::Id)
        .limit(BATCH)
        .all(db)
        .await
}

/// SQLite: one writer at a time, so ids grow in commit order; read past the last one.
async fn poll(hub: Weak<Hub>) {
    let Some(db) = hub.upgrade().map(|h| h.db.clone()) else {
        return;
    };
    let mut cursor = newest(&db).await;
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        match read(&db, cursor, None).await {
            Ok(events) if !events.is_empty() => {
                cursor = events.last().map(|e| e.id).unwrap_or(cursor);
                hub.deliver(events, None).await;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "live updates: reading events failed; retrying"),
        }
    }
}

/// The ids already delivered, above a floor below which none is kept.
#[derive(Default)]
struct Delivered {
    ids: BTreeSet<i64>,
    highest: i64,
}

impl Delivered {
    fn keep_new(&mut self, events: Vec<audit_event::Model>) -> Vec<audit_event::Model> {
        let fresh: Vec<_> = events
            .into_iter()
            .filter(|e| !self.ids.contains(&e.id))
            .collect();
        for event in &fresh {
            self.ids.insert(event.id);
            self.highest = self.highest.max(event.id);
        }
        // Only the lookback window matters for skipping.
        let floor = self.highest - 2 * LOOKBACK;
        self.ids = self.ids.split_off(&floor);
        fresh
    }
}

/// PostgreSQL: `LISTEN`, read the notified ids; after a lost connection, catch up from the
/// table.
async fn listen(hub: Weak<Hub>) {
    let Some(db) = hub.upgrade().map(|h| h.db.clone()) else {
        return;
    };
    let pool = db.get_postgres_connection_pool().clone();
    let start = newest(&db).await;
    let mut delivered = Delivered {
        highest: start,
        ..Delivered::default()
    };
    let mut listener = loop {
        match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen_all([CHANNEL, ACCESS_CHANNEL]).await {
                Ok(()) => break listener,
                Err(error) => tracing::warn!(%error, "live updates: LISTEN failed; retrying"),
            },
            Err(error) => {
                tracing::warn!(%error, "live updates: no connection to listen on; retrying")
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    listener.eager_reconnect(true);
    // The listener forwards what it hears; this loop takes everything heard since its last
    // round at once, so that when delivering falls behind, batches grow instead of queues.
    let (heard, mut signals) = tokio::sync::mpsc::unbounded_channel();
    let _listening = AbortOnDrop(tokio::spawn(async move {
        loop {
            let signal = match listener.try_recv().await {
                Ok(Some(notification)) if notification.channel() == ACCESS_CHANNEL => {
                    match Changed::parse(notification.payload()) {
                        Some(changed) => Signal::Changed(changed),
                        // Not understood: forget everything rather than keep something stale.
                        None => Signal::Lost,
                    }
                }
                Ok(Some(notification)) => {
                    let Some(range) = notification
                        .payload()
                        .split_once('-')
                        .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
                    else {
                        continue;
                    };
                    Signal::Committed(range)
                }
                // The connection was lost: notifications may have been missed. The listener
                // reconnects and listens again; the table has what was missed.
                Ok(None) => Signal::Lost,
                Err(error) => {
                    tracing::warn!(%error, "live updates: LISTEN failed; retrying");
                    tokio::time::sleep(RESCAN_EVERY).await;
                    Signal::Lost
                }
            };
            if heard.send(signal).is_err() {
                return;
            }
        }
    }));
    // Anything committed between reading `start` and listening; after a lost connection, the
    // table is read again for a few seconds, until the listener surely listens again.
    let mut rescan_until = Some(tokio::time::Instant::now() + RESCAN_FOR);
    // What access depends on, kept while every change to it is heard: from the start (the
    // listener listens already), not after a lost connection until it surely listens again.
    let mut known = Known::default();
    let mut unheard_until: Option<tokio::time::Instant> = None;
    loop {
        if hub.strong_count() == 0 {
            return;
        }
        let now = tokio::time::Instant::now();
        if rescan_until.is_some_and(|until| now >= until) {
            rescan_until = None;
        }
        // Wake up now and then: to rescan, and to notice that the hub is gone.
        let wait = if rescan_until.is_some() {
            RESCAN_EVERY
        } else {
            Duration::from_secs(5)
        };
        let mut committed: Option<(i64, i64)> = None;
        // Changes to access are forgotten before the events are decided: all of them,
        // including those that committed after some of these events, which is stricter
        // than their commit order asks.
        let mut absorb = |signal: Signal,
                          rescan_until: &mut Option<tokio::time::Instant>,
                          unheard_until: &mut Option<tokio::time::Instant>,
                          known: &mut Known| match signal {
            Signal::Committed((low, high)) => {
                committed = Some(match committed {
                    Some((l, h)) => (l.min(low), h.max(high)),
                    None => (low, high),
                });
            }
            Signal::Changed(changed) => known.forget(changed),
            Signal::Lost => {
                tracing::info!("live updates: the LISTEN connection was lost; catching up");
                *rescan_until = Some(tokio::time::Instant::now() + RESCAN_FOR);
                *unheard_until = *rescan_until;
                known.clear();
            }
        };
        match tokio::time::timeout(wait, signals.recv()).await {
            Err(_) => {}
            Ok(None) => return,
            Ok(Some(signal)) => {
                absorb(signal, &mut rescan_until, &mut unheard_until, &mut known);
                while let Ok(signal) = signals.try_recv() {
                    absorb(signal, &mut rescan_until, &mut unheard_until, &mut known);
                }
            }
        }
        let range = if rescan_until.is_some() {
            Some((start.max(delivered.highest - LOOKBACK), None))
        } else {
            committed.map(|(low, high)| (low - 1, Some(high)))
        };
        let Some((after, up_to)) = range else {
            continue;
        };
        match read_all(&db, after, up_to).await {
            Ok(events) => {
                let fresh = delivered.keep_new(events);
                if let Some(hub) = hub.upgrade()
                    && !fresh.is_empty()
                {
                    // Until the listener surely listens again, changes may go unheard:
                    // nothing is kept.
                    if unheard_until.is_some_and(|until| tokio::time::Instant::now() >= until) {
                        unheard_until = None;
                    }
                    let keep = unheard_until.is_none().then_some(&mut known);
                    hub.deliver(fresh, keep).await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "live updates: reading events failed; catching up");
                rescan_until = Some(tokio::time::Instant::now() + RESCAN_FOR);
            }
        }
    }
}

/// What the listener heard.
enum Signal {
    /// A transaction committed the events with ids in this range (bounds included).
    Committed((i64, i64)),
    /// A transaction changed what access depends on.
    Changed(Changed),
    /// The connection was lost (and is being re-established).
    Lost,
}

/// Aborts a task when dropped (the listener, when the feed stops; a connection's reader).
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every event after `after` (up to `up_to`, included), in id order, page by page.
async fn read_all(
    db: &DatabaseConnection,
    mut after: i64,
    up_to: Option<i64>,
) -> Result<Vec<audit_event::Model>, sea_orm::DbErr> {
    let mut all = Vec::new();
    loop {
        let page = read(db, after, up_to).await?;
        let full = page.len() as u64 == BATCH;
        after = page.last().map_or(after, |e| e.id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}
