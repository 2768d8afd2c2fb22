//! Batched keyset pages: every connection field of one request (all organizations' members,
//! all datasets' collaborators, all owners' datasets) is answered by one statement per kind
//! of connection and page request, and `totalCount` by one more — a number fixed by the
//! query's shape, never by how many parents there are.
//!
//! A page is always an index range scan on the child table's `(parent, key)` index. On
//! PostgreSQL each parent's page is a `LATERAL` subquery (`… ORDER BY key LIMIT n`); SQLite
//! has no `LATERAL`, so there a parent's page is the range of its rows between `after` and
//! the key of the page's last row, which a correlated subquery finds on the same index.
//! The statements are sea-query's, built from the entities' columns, and their rows are read
//! with sea-orm's `FromQueryResult`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::sea_query::{
    Condition, Expr, ExprTrait, Func, IntoIden, JoinType, Order, Query, SelectStatement,
};
use sea_orm::{
    ConnectionTrait, DbBackend, DeriveIden, EntityTrait, FromQueryResult, Statement, Value,
};

use entity::{account, collaborator, dataset, membership};

use crate::loaders::{DbLoader, LoadError, db_error};

/// One parent's page of rows, as its loader answers it. Shared, not copied: async-graphql's
/// `DataLoader` clones each answer on its way to the resolver that asked; the resolver takes
/// the rows out with `Arc::unwrap_or_clone`, which copies only if another resolver asked for
/// the same page.
pub type Page<Row> = Arc<Vec<Row>>;

/// The aliases page statements give their tables: the child rows (`r`), their parents (`p`)
/// and, on PostgreSQL, each parent's page (`t`).
#[derive(Clone, Copy, DeriveIden)]
enum As {
    R,
    P,
    T,
}

/// A kind of child list that comes in keyset pages per parent.
pub trait Paged {
    /// The child table.
    type Entity: EntityTrait<Model: FromQueryResult + Send + Sync>;
    /// The parents' table.
    type Parents: EntityTrait;
    /// The column naming the parent.
    const PARENT: <Self::Entity as EntityTrait>::Column;
    /// The sort key, unique per parent.
    const KEY: <Self::Entity as EntityTrait>::Column;
    /// The parents' integer primary key, which `PARENT` refers to.
    const PARENT_ID: <Self::Parents as EntityTrait>::Column;
    /// Whether pages run newest first: down from the greatest key, an integer id, rather
    /// than up along a text key.
    const DESCENDING: bool = false;
    /// The parent of a row.
    fn parent_of(row: &<Self::Entity as EntityTrait>::Model) -> i64;
    /// A cursor's key as the key column's value (a cursor that is no id starts at the top).
    fn key_value(after: &str) -> Value {
        if Self::DESCENDING {
            after.parse::<i64>().unwrap_or(i64::MAX).into()
        } else {
            after.into()
        }
    }
    /// A value beyond every key in the page's direction: where a SQLite page runs to when
    /// fewer than its limit of rows are left. (An empty blob sorts after every text value.)
    fn beyond_every_key() -> Value {
        if Self::DESCENDING {
            i64::MIN.into()
        } else {
            Value::Bytes(Some(Vec::new()))
        }
    }
}

/// An organization's members, by username.
pub struct Members;
/// A dataset's collaborators, by username.
pub struct Collaborators;
/// An owner's datasets, by name.
pub struct Datasets;

impl Paged for Members {
    type Entity = membership::Entity;
    type Parents = account::Entity;
    const PARENT: membership::Column = membership::Column::OrganizationId;
    const KEY: membership::Column = membership::Column::UsernameKey;
    const PARENT_ID: account::Column = account::Column::Id;
    fn parent_of(row: &membership::Model) -> i64 {
        row.organization_id
    }
}

impl Paged for Collaborators {
    type Entity = collaborator::Entity;
    type Parents = dataset::Entity;
    const PARENT: collaborator::Column = collaborator::Column::DatasetId;
    const KEY: collaborator::Column = collaborator::Column::UsernameKey;
    const PARENT_ID: dataset::Column = dataset::Column::Id;
    fn parent_of(row: &collaborator::Model) -> i64 {
        row.dataset_id
    }
}

impl Paged for Datasets {
    type Entity = dataset::Entity;
    type Parents = account::Entity;
    const PARENT: dataset::Column = dataset::Column::OwnerId;
    const KEY: dataset::Column = dataset::Column::NameKey;
    const PARENT_ID: account::Column = account::Column::Id;
    fn parent_of(row: &dataset::Model) -> i64 {
        row.owner_id
    }
}

/// A row of `P`'s child table.
type Row<P> = <<P as Paged>::Entity as EntityTrait>::Model;

/// A condition on the child rows (aliased `r`) beside the page's own.
pub(crate) type Filter = Option<Condition>;

/// `column` of a page's child rows, for the conditions its loader filters them with.
pub(crate) fn child<C: IntoIden>(column: C) -> Expr {
    col(As::R, column)
}

/// `E`'s column `column` of the table aliased `alias`.
fn col<C: IntoIden>(alias: As, column: C) -> Expr {
    Expr::col((alias, column))
}

/// Selects every column of `E` from the table aliased `alias`, under the column's own name.
fn all_columns<E: EntityTrait>(select: &mut SelectStatement, alias: As) {
    crate::db::select_model::<E>(select, alias.into_iden(), "");
}

/// The order of `P`'s pages.
fn order<P: Paged>() -> Order {
    if P::DESCENDING {
        Order::Desc
    } else {
        Order::Asc
    }
}

/// `key` comes after `value` in `P`'s order.
fn after<P: Paged>(key: Expr, value: impl Into<Expr>) -> Expr {
    if P::DESCENDING {
        key.lt(value)
    } else {
        key.gt(value)
    }
}

/// `key` comes no later than `value` in `P`'s order.
fn up_to<P: Paged>(key: Expr, value: impl Into<Expr>) -> Expr {
    if P::DESCENDING {
        key.gte(value)
    } else {
        key.lte(value)
    }
}

/// The rows of `P` (as `r`) of the parent in `parent` after `after` that pass `filter`,
/// in key order.
fn range<P: Paged>(parent: Expr, after_key: Option<&str>, filter: &Filter) -> SelectStatement {
    let mut select = Query::select();
    select
        .from_as(P::Entity::default(), As::R)
        .and_where(col(As::R, P::PARENT).eq(parent));
    if let Some(key) = after_key {
        select.and_where(after::<P>(col(As::R, P::KEY), P::key_value(key)));
    }
    if let Some(filter) = filter {
        select.cond_where(filter.clone());
    }
    select.order_by((As::R, P::KEY), order::<P>());
    select
}

/// One statement answering a page (`after`, `limit`) of `E` rows for each of `parents`.
pub(crate) fn page_statement<P: Paged>(
    backend: DbBackend,
    parents: &[i64],
    after: Option<&str>,
    limit: u64,
    filter: &Filter,
) -> Statement {
    let select = match (backend, parents) {
        (_, [parent]) => {
            let mut select = range::<P>(Expr::val(*parent), after, filter);
            all_columns::<P::Entity>(&mut select, As::R);
            select.limit(limit);
            select
        }
        (DbBackend::Postgres, _) => {
            let mut page = range::<P>(col(As::P, P::PARENT_ID), after, filter);
            all_columns::<P::Entity>(&mut page, As::R);
            page.limit(limit);
            let mut select = Query::select();
            all_columns::<P::Entity>(&mut select, As::T);
            select
                .from_as(P::Parents::default(), As::P)
                .join_lateral(JoinType::InnerJoin, page, As::T, Condition::all())
                .and_where(col(As::P, P::PARENT_ID).is_in(parents.iter().copied()));
            select
        }
        _ => {
            // Each parent's page is the range of its rows from `after` up to the key of the
            // page's last row, which the correlated subquery finds by stepping `limit - 1`
            // keys along the index (SQLite runs it once per parent, as it seeks that
            // parent's range). A join, so the rows go out as the index holds them. With
            // fewer than `limit` rows the bound is NULL and the range runs to the parent's
            // last key (`Paged::beyond_every_key`). The parents are rows of their own table,
            // read by primary key in ascending order, so the `ORDER BY` is the order the rows
            // come in and sorts nothing.
            let mut last = range::<P>(col(As::P, P::PARENT_ID), after, filter);
            last.expr(col(As::R, P::KEY))
                .limit(1)
                .offset(limit.saturating_sub(1));
            let bound = Func::coalesce([Expr::from(last), Expr::val(P::beyond_every_key())]);
            let mut on = Condition::all()
                .add(col(As::R, P::PARENT).equals((As::P, P::PARENT_ID)))
                .add(up_to::<P>(col(As::R, P::KEY), bound));
            if let Some(key) = after {
                on = on.add(after_key::<P>(key));
            }
            if let Some(filter) = filter {
                on = on.add(filter.clone());
            }
            let mut select = Query::select();
            all_columns::<P::Entity>(&mut select, As::R);
            select
                .from_as(P::Parents::default(), As::P)
                .join_as(JoinType::InnerJoin, P::Entity::default(), As::R, on)
                .and_where(col(As::P, P::PARENT_ID).is_in(parents.iter().copied()))
                .order_by((As::P, P::PARENT_ID), Order::Asc)
                .order_by((As::R, P::KEY), order::<P>());
            select
        }
    };
    backend.build(&select)
}

/// `r.key` comes after the cursor's `key` in `P`'s order.
fn after_key<P: Paged>(key: &str) -> Expr {
    after::<P>(col(As::R, P::KEY), P::key_value(key))
}

/// One statement counting the `P` rows of each of `parents` that pass `filter`.
fn count_statement<P: Paged>(backend: DbBackend, parents: &[i64], filter: &Filter) -> Statement {
    let mut select = Query::select();
    select
        .expr(col(As::R, P::PARENT))
        .expr(Func::count(col(As::R, P::PARENT)))
        .from_as(P::Entity::default(), As::R)
        .and_where(col(As::R, P::PARENT).is_in(parents.iter().copied()))
        .group_by_col((As::R, P::PARENT));
    if let Some(filter) = filter {
        select.cond_where(filter.clone());
    }
    backend.build(&select)
}

/// A request for one page of children of one parent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageKey<const KIND: u8> {
    /// The parent's id.
    pub parent: i64,
    /// Children whose sort key is greater than this.
    pub after: Option<String>,
    /// How many rows to fetch.
    pub limit: u64,
}

/// A page of an organization's members.
pub type MemberPage = PageKey<0>;
/// A page of a dataset's collaborators.
pub type CollaboratorPage = PageKey<1>;
/// A page of an owner's datasets that the request's viewer may see.
pub type DatasetPage = PageKey<2>;

/// A count of the children of one parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CountKey<const KIND: u8>(pub i64);

/// How many members an organization has.
pub type MemberCount = CountKey<0>;
/// How many collaborators a dataset has.
pub type CollaboratorCount = CountKey<1>;
/// How many of an owner's datasets the request's viewer may see.
pub type DatasetCount = CountKey<2>;

/// Groups page or count keys by the filter that goes with each (one statement per filter).
pub(crate) fn by_filter<K, F: std::hash::Hash + Eq>(
    keys: impl Iterator<Item = (K, F)>,
) -> HashMap<F, Vec<K>> {
    let mut groups: HashMap<F, Vec<K>> = HashMap::new();
    for (key, filter) in keys {
        groups.entry(filter).or_default().push(key);
    }
    groups
}

impl DbLoader {
    /// The pages `keys` ask for, one statement per page arguments (see [`page_statement`]).
    pub(crate) async fn pages<const KIND: u8, P: Paged>(
        &self,
        keys: &[PageKey<KIND>],
        filter: &Filter,
    ) -> Result<HashMap<PageKey<KIND>, Page<Row<P>>>, LoadError> {
        // Requests with the same page arguments share one statement.
        let mut groups: HashMap<(Option<&str>, u64), Vec<i64>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.after.as_deref(), key.limit))
                .or_default()
                .push(key.parent);
        }
        let mut pages: HashMap<PageKey<KIND>, Vec<Row<P>>> = HashMap::with_capacity(keys.len());
        let db = self.reader();
        for ((after, limit), mut parents) in groups {
            parents.sort_unstable();
            parents.dedup();
            let statement =
                page_statement::<P>(db.get_database_backend(), &parents, after, limit, filter);
            let rows = Row::<P>::find_by_statement(statement)
                .all(&db)
                .await
                .map_err(db_error)?;
            // Each parent's rows come in key order.
            let mut by_parent: HashMap<i64, Vec<Row<P>>> = HashMap::new();
            for row in rows {
                by_parent.entry(P::parent_of(&row)).or_default().push(row);
            }
            for (parent, rows) in by_parent {
                let key = PageKey {
                    parent,
                    after: after.map(str::to_owned),
                    limit,
                };
                pages.insert(key, rows);
            }
        }
        // A parent without rows has an empty page.
        Ok(keys
            .iter()
            .map(|key| {
                let rows = pages.remove(key).unwrap_or_default();
                (key.clone(), Arc::new(rows))
            })
            .collect())
    }

    /// How many rows each parent of `keys` has, in one statement.
    pub(crate) async fn counts<const KIND: u8, P: Paged>(
        &self,
        keys: &[CountKey<KIND>],
        filter: &Filter,
    ) -> Result<HashMap<CountKey<KIND>, u64>, LoadError> {
        let mut parents: Vec<i64> = keys.iter().map(|k| k.0).collect();
        parents.sort_unstable();
        parents.dedup();
        let db = self.reader();
        let statement = count_statement::<P>(db.get_database_backend(), &parents, filter);
        let rows = db.query_all_raw(statement).await.map_err(db_error)?;
        let mut counts: HashMap<CountKey<KIND>, u64> = keys.iter().map(|k| (*k, 0)).collect();
        for row in rows {
            let parent: i64 = row.try_get_by_index(0).map_err(db_error)?;
            let n: i64 = row.try_get_by_index(1).map_err(db_error)?;
            counts.insert(CountKey(parent), n as u64);
        }
        Ok(counts)
    }

    /// The datasets the request's viewer may see, as a condition on the rows aliased `r`
    /// (the policy decides: [`crate::policy::visible_datasets`]).
    fn visible_datasets(&self) -> Filter {
        Some(crate::policy::visible_datasets(
            self.viewer.signed_in(),
            self.viewer.via().and_then(|via| via.organization()),
            As::R.into_iden(),
        ))
    }
}

impl Loader<MemberPage> for DbLoader {
    type Value = Page<membership::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[MemberPage],
    ) -> Result<HashMap<MemberPage, Self::Value>, Self::Error> {
        self.pages::<0, Members>(keys, &None).await
    }
}

impl Loader<CollaboratorPage> for DbLoader {
    type Value = Page<collaborator::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CollaboratorPage],
    ) -> Result<HashMap<CollaboratorPage, Self::Value>, Self::Error> {
        self.pages::<1, Collaborators>(keys, &None).await
    }
}

impl Loader<DatasetPage> for DbLoader {
    type Value = Page<dataset::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DatasetPage],
    ) -> Result<HashMap<DatasetPage, Self::Value>, Self::Error> {
        self.pages::<2, Datasets>(keys, &self.visible_datasets())
            .await
    }
}

impl Loader<MemberCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[MemberCount]) -> Result<HashMap<MemberCount, u64>, Self::Error> {
        self.counts::<0, Members>(keys, &None).await
    }
}

impl Loader<CollaboratorCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CollaboratorCount],
    ) -> Result<HashMap<CollaboratorCount, u64>, Self::Error> {
        self.counts::<1, Collaborators>(keys, &None).await
    }
}

impl Loader<DatasetCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[DatasetCount]) -> Result<HashMap<DatasetCount, u64>, Self::Error> {
        self.counts::<2, Datasets>(keys, &self.visible_datasets())
            .await
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};

    use entity::membership;

    /// A SQLite page statement for several parents reads each parent's range on the
    /// covering index, takes the parents in primary-key order and sorts nothing, and
    /// returns at most `limit` rows per parent, from after `after`: the rows of the page,
    /// its one row more for `hasNextPage`, and not one row beyond.
    #[tokio::test]
    async fn sqlite_pages_read_each_parents_range_and_no_more() {
        let db = crate::db::connect("sqlite::memory:", 1).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let at = "2026-12-03T00:00:00+00:00";
        let mut sql = String::new();
        // Organizations 1, 2 and 3 with 0, 3 and 10 members (users 10 to 19).
        for org in 1..=3 {
            sql += &format!(
                "INSERT INTO account VALUES ({org}, 'ORGANIZATION', 'o{org}', 'o{org}', '{at}');
                 INSERT INTO organization VALUES ({org}, NULL);"
            );
        }
        for user in 10..20 {
            sql += &format!(
                "INSERT INTO account VALUES ({user}, 'USER', 'U{user}', 'u{user}', '{at}');
                 INSERT INTO user_account VALUES ({user}, 'u{user}@x', 'u{user}@x', '-', 0);"
            );
            for org in [2, 3] {
                if org == 3 || user < 13 {
                    sql += &format!(
                        "INSERT INTO membership VALUES ({org}, {user}, 'u{user}', 'MEMBER', NULL, '{at}', 'U{user}');"
                    );
                }
            }
        }
        db.execute_unprepared(&sql).await.unwrap();
        let parents = [1, 2, 3];
        let page = |after: Option<&str>, limit| {
            super::page_statement::<super::Members>(
                DbBackend::Sqlite,
                &parents,
                after,
                limit,
                &None,
            )
        };
        for (after, limit, want) in [
            (
                None,
                4,
                vec![
                    (2, 10),
                    (2, 11),
                    (2, 12),
                    (3, 10),
                    (3, 11),
                    (3, 12),
                    (3, 13),
                ],
            ),
            (Some("u11"), 2, vec![(2, 12), (3, 12), (3, 13)]),
            (Some("u18"), 5, vec![(3, 19)]),
            (None, 1, vec![(2, 10), (3, 10)]),
        ] {
            let rows = membership::Model::find_by_statement(page(after, limit))
                .all(&db)
                .await
                .unwrap();
            let got: Vec<(i64, i64)> = rows
                .iter()
                .map(|m| (m.organization_id, m.user_id))
                .collect();
            assert_eq!(got, want, "after {after:?}, limit {limit}");
        }
        let statement = page(Some("u11"), 21);
        let plan: Vec<String> = db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {}", statement.sql),
                statement.values.map(|v| v.0).unwrap_or_default(),
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index::<String>(3).unwrap())
            .collect();
        let has = |text: &str| plan.iter().any(|detail| detail.contains(text));
        assert!(has("SEARCH p USING INTEGER PRIMARY KEY"), "{plan:?}");
        assert!(
            has("SEARCH r USING COVERING INDEX membership_page"),
            "{plan:?}"
        );
        assert!(has("CORRELATED SCALAR SUBQUERY"), "{plan:?}");
        assert!(!has("TEMP B-TREE"), "{plan:?}");
    }
}
