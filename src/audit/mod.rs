//! The audit log. Every change goes through a [`Change`]: a write transaction that cannot
//! commit without the events it records, and writes them in itself, so there is never a
//! change without its event nor an event without its change (a crash loses both or neither).

mod graphql;

pub use graphql::{Action, AuditEvent, AuditEventConnection};
pub(crate) use graphql::{dataset_log, organization_log, readable};

use std::ops::Deref;

use async_graphql::dataloader::Loader;
use chrono::Utc;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ActiveEnum, ColumnTrait};
use sea_orm::{
    ActiveValue::NotSet, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, ExecResult, QueryResult, Set, Statement, TransactionTrait,
};
use std::collections::HashMap;

pub use entity::audit_event::AuditAction;
use entity::{account, audit_event};

use crate::db::write_tx;
use crate::error::{ApiError, ApiResult};
use crate::loaders::{DbLoader, LoadError};
use crate::pages::{CountKey, Filter, Page, PageKey, Paged, child};
use crate::telemetry::traces::Span;

/// One thing that happened, as a domain function describes it; [`Change::commit`] adds who
/// did it and when.
#[derive(Clone, Debug, Default)]
pub struct Event {
    action: Option<AuditAction>,
    organization: Option<i64>,
    dataset: Option<(i64, String)>,
    dataset_name: Option<String>,
    subject: Option<(i64, String)>,
    role: Option<String>,
    previous_role: Option<String>,
}

impl Event {
    /// An event of `action`.
    pub fn new(action: AuditAction) -> Self {
        Event {
            action: Some(action),
            ..Default::default()
        }
    }

    /// About organization `id` (it shows in its log).
    pub fn organization(mut self, id: i64) -> Self {
        self.organization = Some(id);
        self
    }

    /// About the dataset `id`, named `full_name` now; `owner`: the organization that owns it
    /// (whose log shows the event), if one does.
    pub fn dataset(mut self, id: i64, full_name: String, owner: Option<i64>) -> Self {
        self.dataset = Some((id, full_name));
        if owner.is_some() {
            self.organization = owner;
        }
        self
    }

    /// The same event for another organization's log only (a transferred dataset's former
    /// owner): it keeps the dataset's name but leaves the dataset's own log.
    pub fn copy_for(&self, organization: i64) -> Self {
        let mut copy = self.clone();
        copy.organization = Some(organization);
        copy.dataset = None;
        copy.dataset_name = self
            .dataset
            .as_ref()
            .map(|(_, n)| n.clone())
            .or(copy.dataset_name);
        copy
    }

    /// About the member, invitee or collaborator `id`, named `username`.
    pub fn subject(mut self, id: i64, username: &str) -> Self {
        self.subject = Some((id, username.to_owned()));
        self
    }

    /// With the new role `role` (as the API writes it: `ADMIN`, `LABELER`, …).
    pub fn role<R: ActiveEnum<Value = String>>(mut self, role: Option<R>) -> Self {
        self.role = role.map(|r| r.to_value());
        self
    }

    /// With the former role `role`.
    pub fn previous_role<R: ActiveEnum<Value = String>>(mut self, role: Option<R>) -> Self {
        self.previous_role = role.map(|r| r.to_value());
        self
    }
}

/// A write transaction that records what it changes. Domain functions run their statements
/// on it (it derefs to the transaction and is a connection itself) and [`Change::record`] an
/// event for each change; [`Change::commit`] writes the events in the same transaction and
/// refuses to commit a change that recorded none.
pub struct Change {
    tx: DatabaseTransaction,
    actor: i64,
    actor_username: Option<String>,
    actor_gone: bool,
    events: Vec<Event>,
}

impl Change {
    /// Begins a change made by user `actor` (SQLite: `BEGIN IMMEDIATE`, see
    /// [`crate::db::write_tx`]), reading their username for the events.
    pub async fn begin(db: &DatabaseConnection, actor: i64) -> ApiResult<Change> {
        let tx = db.begin_with_options(write_tx()).await?;
        let actor_username = account::Entity::find_by_id(actor)
            .one(&tx)
            .await?
            .map(|a| a.username);
        Ok(Change {
            tx,
            actor,
            actor_username,
            actor_gone: false,
            events: Vec::new(),
        })
    }

    /// Records that `event` happened in this change.
    pub fn record(&mut self, event: Event) {
        self.events.push(event);
    }

    /// The actor's account is deleted by this change: its events keep the name only.
    pub fn actor_is_deleted(&mut self) {
        self.actor_gone = true;
    }

    /// Writes the recorded events and commits. A change that recorded nothing is a bug:
    /// it is rolled back with an internal error rather than committed without its event.
    pub async fn commit(self) -> ApiResult<()> {
        if self.events.is_empty() {
            return Err(ApiError::internal("a change without an audit event"));
        }
        self.commit_even_if_unrecorded().await
    }

    /// [`Change::commit`], for the one change that may concern no organization, dataset or
    /// token: deleting an account that belongs to no organization (it has no log to show it
    /// in).
    pub async fn commit_even_if_unrecorded(self) -> ApiResult<()> {
        let now = Utc::now();
        let gone = |id: i64| self.actor_gone && id == self.actor;
        let rows: Vec<audit_event::ActiveModel> = self
            .events
            .iter()
            .map(|event| audit_event::ActiveModel {
                id: NotSet,
                action: Set(event.action.expect("every event has an action")),
                created_at: Set(now),
                actor_id: Set(Some(self.actor).filter(|id| !gone(*id))),
                actor_username: Set(self.actor_username.clone()),
                organization_id: Set(event.organization),
                dataset_id: Set(event.dataset.as_ref().map(|(id, _)| *id)),
                dataset_full_name: Set(event
                    .dataset
                    .as_ref()
                    .map(|(_, name)| name.clone())
                    .or_else(|| event.dataset_name.clone())),
                subject_id: Set(event
                    .subject
                    .as_ref()
                    .map(|(id, _)| *id)
                    .filter(|id| !gone(*id))),
                subject_username: Set(event.subject.as_ref().map(|(_, name)| name.clone())),
                role: Set(event.role.clone()),
                previous_role: Set(event.previous_role.clone()),
            })
            .collect();
        if !rows.is_empty() {
            audit_event::Entity::insert_many(rows)
                .exec(&self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

impl Deref for Change {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Change {
    fn get_database_backend(&self) -> DbBackend {
        self.tx.get_database_backend()
    }

    // Each statement in its trace span (see `crate::telemetry::traces`).
    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let _span = Span::statement(&stmt.sql);
        self.tx.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let _span = Span::statement(sql);
        self.tx.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let _span = Span::statement(&stmt.sql);
        self.tx.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let _span = Span::statement(&stmt.sql);
        self.tx.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.tx.support_returning()
    }
}

/// An organization's log: the events of the organization and of the datasets it owned when
/// they happened, newest first.
pub struct OrganizationLog;
/// A dataset's log, newest first.
pub struct DatasetLog;

impl Paged for OrganizationLog {
    type Entity = audit_event::Entity;
    type Parents = account::Entity;
    const PARENT: audit_event::Column = audit_event::Column::OrganizationId;
    const KEY: audit_event::Column = audit_event::Column::Id;
    const PARENT_ID: account::Column = account::Column::Id;
    const DESCENDING: bool = true;
    fn parent_of(row: &audit_event::Model) -> i64 {
        row.organization_id.unwrap_or_default()
    }
}

impl Paged for DatasetLog {
    type Entity = audit_event::Entity;
    type Parents = entity::dataset::Entity;
    const PARENT: audit_event::Column = audit_event::Column::DatasetId;
    const KEY: audit_event::Column = audit_event::Column::Id;
    const PARENT_ID: entity::dataset::Column = entity::dataset::Column::Id;
    const DESCENDING: bool = true;
    fn parent_of(row: &audit_event::Model) -> i64 {
        row.dataset_id.unwrap_or_default()
    }
}

/// Which events of an organization's log to list: some actions only (none: all), and the
/// events of one actor only (by username, case-insensitively, as it was at the time).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LogFilter {
    /// The actions, sorted; empty: every action.
    pub actions: Vec<AuditAction>,
    /// The actor's username, lowercased.
    pub actor: Option<String>,
}

impl LogFilter {
    /// The filter of `actions` (in any order, repeats ignored) and `actor`.
    pub fn new(actions: Option<Vec<AuditAction>>, actor: Option<String>) -> Self {
        let mut actions = actions.unwrap_or_default();
        actions.sort_by_key(|a| a.to_value());
        actions.dedup();
        LogFilter {
            actions,
            actor: actor.map(|a| a.trim().to_ascii_lowercase()),
        }
    }

    /// The condition on the log's rows.
    fn condition(&self) -> Filter {
        let mut condition = sea_orm::Condition::all();
        if !self.actions.is_empty() {
            condition = condition.add(
                child(audit_event::Column::Action).is_in(self.actions.iter().map(|a| a.to_value())),
            );
        }
        if let Some(actor) = &self.actor {
            condition = condition.add(
                sea_orm::sea_query::Func::lower(child(audit_event::Column::ActorUsername))
                    .eq(actor.as_str()),
            );
        }
        (!condition.is_empty()).then_some(condition)
    }
}

/// A page of an organization's log under a filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrganizationLogPage(pub PageKey<5>, pub LogFilter);
/// How many events of an organization's log a filter keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrganizationLogCount(pub CountKey<5>, pub LogFilter);
/// A page of a dataset's log.
pub type DatasetLogPage = PageKey<6>;
/// How many events a dataset's log holds.
pub type DatasetLogCount = CountKey<6>;

impl Loader<OrganizationLogPage> for DbLoader {
    type Value = Page<audit_event::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[OrganizationLogPage],
    ) -> Result<HashMap<OrganizationLogPage, Self::Value>, Self::Error> {
        let mut found = HashMap::new();
        for (filter, pages) in
            crate::pages::by_filter(keys.iter().map(|k| (k.0.clone(), k.1.clone())))
        {
            let loaded = self
                .pages::<5, OrganizationLog>(&pages, &filter.condition())
                .await?;
            found.extend(
                loaded
                    .into_iter()
                    .map(|(page, rows)| (OrganizationLogPage(page, filter.clone()), rows)),
            );
        }
        Ok(found)
    }
}

impl Loader<OrganizationLogCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[OrganizationLogCount],
    ) -> Result<HashMap<OrganizationLogCount, u64>, Self::Error> {
        let mut found = HashMap::new();
        for (filter, counts) in crate::pages::by_filter(keys.iter().map(|k| (k.0, k.1.clone()))) {
            let loaded = self
                .counts::<5, OrganizationLog>(&counts, &filter.condition())
                .await?;
            found.extend(
                loaded
                    .into_iter()
                    .map(|(key, n)| (OrganizationLogCount(key, filter.clone()), n)),
            );
        }
        Ok(found)
    }
}

impl Loader<DatasetLogPage> for DbLoader {
    type Value = Page<audit_event::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DatasetLogPage],
    ) -> Result<HashMap<DatasetLogPage, Self::Value>, Self::Error> {
        self.pages::<6, DatasetLog>(keys, &None).await
    }
}

impl Loader<DatasetLogCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DatasetLogCount],
    ) -> Result<HashMap<DatasetLogCount, u64>, Self::Error> {
        self.counts::<6, DatasetLog>(keys, &None).await
    }
}

/// Event `id`, to be shown to whoever may read a log that holds it (the caller decides).
pub async fn event(db: &impl ConnectionTrait, id: i64) -> ApiResult<Option<audit_event::Model>> {
    Ok(audit_event::Entity::find_by_id(id).one(db).await?)
}

/// Deletes events older than `days` days, `batch` at a time (oldest first), until none is
/// left; the number deleted. Small batches keep each delete's lock short beside live traffic.
pub async fn prune(db: &DatabaseConnection, days: u32, batch: u64) -> ApiResult<u64> {
    use sea_orm::{QueryFilter, QueryOrder, QuerySelect};
    let before = Utc::now() - chrono::Duration::days(i64::from(days));
    let mut deleted = 0;
    loop {
        let ids: Vec<i64> = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::Id)
            .filter(audit_event::Column::CreatedAt.lt(before))
            .order_by_asc(audit_event::Column::Id)
            .limit(batch)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(deleted);
        }
        let result = audit_event::Entity::delete_many()
            .filter(audit_event::Column::Id.is_in(ids))
            .exec(db)
            .await?;
        deleted += result.rows_affected;
    }
}

/// How often the retention's pruning runs, and how many events one of its deletes takes.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60 * 60);
const PRUNE_BATCH: u64 = 1000;

/// Deletes events older than `days` days, at start and then every hour, in batches of
/// [`PRUNE_BATCH`] (see [`prune`]). Several instances may prune at once: each delete is by
/// id, so they only repeat one another's work.
pub fn prune_periodically(db: DatabaseConnection, days: u32) {
    tokio::spawn(async move {
        loop {
            match prune(&db, days, PRUNE_BATCH).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, days, "audit events past retention deleted"),
                // Unreachable, or closed as the server stops: the next round tries again.
                Err(error) => tracing::debug!(%error, "audit pruning skipped"),
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    });
}
