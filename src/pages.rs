//! Batched keyset pages: every connection field of one request (all organizations' members,
//! all datasets' collaborators, all owners' datasets) is answered by one statement per kind
//! of connection and page request, and `totalCount` by one more — a number fixed by the
//! query's shape, never by how many parents there are.
//!
//! A page is always an index range scan: on PostgreSQL each parent's page is a `LATERAL`
//! subquery (`… ORDER BY key LIMIT n` on the `(parent, key)` index); on SQLite, which has no
//! `LATERAL`, a parent's page is the range of its rows between `after` and the key of the
//! page's last row, which a correlated subquery finds on the same index.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use async_graphql::dataloader::Loader;
use sea_orm::sqlx::postgres::PgValueFormat;
use sea_orm::sqlx::{Decode, Postgres, Row, Sqlite, Type, ValueRef};
use sea_orm::{
    ActiveEnum, ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, TryGetable, Value,
};

use entity::roles::{AccountKind, DatasetRole, OrganizationRole};
use entity::{account, collaborator, dataset, membership, organization, user_account};

use crate::loaders::{DbLoader, LoadError, db_error};

/// One parent's page of rows, as its loader answers it. Shared, not copied: async-graphql's
/// `DataLoader` clones each answer on its way to the resolver that asked (a page of 100 rows
/// was 100 rows' strings allocated and copied again); the resolver takes the rows out with
/// `Arc::unwrap_or_clone`, which copies only if another resolver asked for the same page.
pub type Page<Row> = Arc<Vec<Row>>;

/// A SQL statement being written, with placeholders in the backend's style.
pub(crate) struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(backend: DbBackend) -> Self {
        Sql {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// `SELECT r.column, … FROM table r WHERE `: the start of a statement reading `M` rows of
    /// `table` (aliased `r`), its condition to follow.
    pub(crate) fn select_where<M: ByPosition>(&mut self, table: &str) -> &mut Self {
        self.push("SELECT ")
            .columns::<M>("r")
            .push(" FROM ")
            .push(table)
            .push(" r WHERE ")
    }

    /// `alias.column, …` for every column of `M`, in the order [`ByPosition::read`] reads
    /// them.
    pub(crate) fn columns<M: ByPosition>(&mut self, alias: &str) -> &mut Self {
        for (i, column) in M::COLUMNS.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.text.push_str(alias);
            self.text.push('.');
            self.text.push_str(column);
        }
        self
    }

    /// `NULL, …`, once for every column of `M`: `M`'s place in a row of a `UNION` branch
    /// that has none (read back as `None` by [`Columns::optional`]).
    pub(crate) fn nulls<M: ByPosition>(&mut self) -> &mut Self {
        for i in 0..M::COLUMNS.len() {
            self.text.push_str(if i > 0 { ", NULL" } else { "NULL" });
        }
        self
    }

    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }

    /// `(v1, v2, …)`, each of `ids` bound.
    pub(crate) fn bind_list(&mut self, ids: &[i64]) -> &mut Self {
        self.push("(");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(*id);
        }
        self.push(")")
    }

    fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }

    /// Runs the statement on `db` and reads each row with `read`, by position (see
    /// [`Columns`]).
    pub(crate) async fn fetch<T>(
        self,
        db: &impl ConnectionTrait,
        read: impl Fn(&mut Columns<'_>) -> Result<T, DbErr>,
    ) -> Result<Vec<T>, DbErr> {
        let rows = db.query_all_raw(self.build()).await?;
        rows.iter()
            .map(|row| read(&mut Columns { row, next: 0 }))
            .collect()
    }
}

/// A table's row as its entity's model, read by position from a statement of ours that
/// selects [`ByPosition::COLUMNS`] in order ([`Sql::columns`]). sea-orm's selects build
/// their SQL text anew on every call and read every column by its (prefixed, so formatted)
/// name on every row: for the one or two statements of a small query, a fifth of its
/// instructions.
pub(crate) trait ByPosition: Sized {
    /// The table's columns, in the order [`ByPosition::read`] reads them.
    const COLUMNS: &'static [&'static str];
    /// Reads the next [`ByPosition::COLUMNS`]`.len()` columns.
    fn read(columns: &mut Columns<'_>) -> Result<Self, DbErr>;
}

/// `impl ByPosition` for a model whose columns are named as its fields, read in the order
/// listed (every field, so that a column added to the model fails to compile here).
macro_rules! by_position {
    ($($module:ident { $($field:ident),* $(,)? })*) => {$(
        impl ByPosition for $module::Model {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];
            fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
                Ok($module::Model {
                    $($field: c.next()?),*
                })
            }
        }
    )*};
}

by_position! {
    account { id, kind, username, username_key, created_at }
    user_account { account_id, email, email_key, password_hash }
    organization { account_id, display_name }
    membership { organization_id, user_id, username_key, role, default_dataset_role, joined_at, username }
    collaborator { dataset_id, user_id, username_key, role, username }
    dataset { id, owner_id, name, name_key, description, public, created_at }
}

/// One kind of paginated child list, whose rows read as `M`.
struct PageSpec<M> {
    /// The child table.
    table: &'static str,
    /// Its columns, as the entity's model reads them.
    columns: &'static [&'static str],
    /// The column naming the parent.
    parent: &'static str,
    /// The parents' table, whose integer primary key `id` the parent column refers to.
    parents: &'static str,
    /// The sort key (unique per parent).
    key: &'static str,
    /// Reads one row, by position: `columns` in order. (By name, every row would look each
    /// column's name up again; at a few thousand rows per request that was a tenth of the
    /// request's CPU.)
    read: fn(&mut Columns<'_>) -> Result<M, DbErr>,
}

/// A result row's columns, read left to right.
pub(crate) struct Columns<'a> {
    row: &'a QueryResult,
    next: usize,
}

impl Columns<'_> {
    /// The next column's value.
    fn next<T: Cell>(&mut self) -> Result<T, DbErr> {
        let value = T::read(self.row, self.next)?;
        self.next += 1;
        Ok(value)
    }

    /// The next columns as an `M`.
    pub(crate) fn model<M: ByPosition>(&mut self) -> Result<M, DbErr> {
        M::read(self)
    }

    /// The next columns as an `M`, or `None` when its first column is NULL (the row of an
    /// outer join that found none).
    pub(crate) fn optional<M: ByPosition>(&mut self) -> Result<Option<M>, DbErr> {
        if is_null(self.row, self.next)? {
            self.next += M::COLUMNS.len();
            return Ok(None);
        }
        M::read(self).map(Some)
    }
}

/// A value a page reads from one column of its own statement.
///
/// Pages decode without sqlx's per-value type check: the statements and the tables are
/// both ours (the migrations fix every column's type, and the tests run every page on both
/// databases), and the check — comparing the column's type against each type the Rust type
/// accepts — cost more than the decoding itself, about a tenth of a big page's CPU. A
/// mismatch would still be an error (a decoding error), never a wrong value of another type.
trait Cell: Sized {
    fn read(row: &QueryResult, index: usize) -> Result<Self, DbErr>;
}

/// Decodes column `index` of `row` as `T`, unchecked, on either database (`None` for NULL).
fn unchecked<T>(row: &QueryResult, index: usize) -> Result<Option<T>, DbErr>
where
    T: TryGetable + Send,
    for<'r> T: Decode<'r, Postgres> + Type<Postgres> + Decode<'r, Sqlite> + Type<Sqlite>,
{
    let decoded = if let Some(row) = row.try_as_pg_row() {
        row.try_get_unchecked::<Option<T>, _>(index)
    } else if let Some(row) = row.try_as_sqlite_row() {
        row.try_get_unchecked::<Option<T>, _>(index)
    } else {
        return row.try_get_by_index(index);
    };
    decoded.map_err(|err| DbErr::Type(format!("column {index}: {err}")))
}

fn required<T>(value: Option<T>, index: usize) -> Result<T, DbErr> {
    value.ok_or_else(|| DbErr::Type(format!("column {index}: unexpected NULL")))
}

macro_rules! plain_cells {
    ($($ty:ty),*) => {$(
        impl Cell for $ty {
            fn read(row: &QueryResult, index: usize) -> Result<Self, DbErr> {
                required(unchecked(row, index)?, index)
            }
        }
    )*};
}

plain_cells!(bool);

/// Column `index` as text borrowed from the row (`None` for NULL), on either database.
///
/// Both databases hand over text as its UTF-8 bytes, and sqlx's decoders checked them with
/// `str::from_utf8`: about 100 instructions for a ten-byte username, 5% of a dashboard
/// request on PostgreSQL (5,000 values) and 2% on SQLite. Nearly every value is ASCII,
/// which `is_ascii` checks eight bytes at a time; anything else still goes through
/// `from_utf8`. (On SQLite the bytes are those sqlx's `&str` decoder reads: the value's
/// `sqlite3_value_blob`, in the database's UTF-8 encoding.)
fn text(row: &QueryResult, index: usize) -> Result<Option<&str>, DbErr> {
    let error = |err: &dyn std::fmt::Display| DbErr::Type(format!("column {index}: {err}"));
    let bytes = if let Some(pg) = row.try_as_pg_row() {
        let value = pg.try_get_raw(index).map_err(|err| error(&err))?;
        if value.is_null() {
            return Ok(None);
        }
        value.as_bytes().map_err(|err| error(&err))?
    } else if let Some(sqlite) = row.try_as_sqlite_row() {
        match sqlite
            .try_get_unchecked::<Option<&[u8]>, _>(index)
            .map_err(|err| error(&err))?
        {
            Some(bytes) => bytes,
            None => return Ok(None),
        }
    } else {
        return Err(error(&"pages run on PostgreSQL and SQLite"));
    };
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok(Some(unsafe { std::str::from_utf8_unchecked(bytes) }));
    }
    std::str::from_utf8(bytes)
        .map(Some)
        .map_err(|err| error(&err))
}

/// Whether column `index` of `row` is NULL, on either database.
fn is_null(row: &QueryResult, index: usize) -> Result<bool, DbErr> {
    let error = |err: &dyn std::fmt::Display| DbErr::Type(format!("column {index}: {err}"));
    if let Some(pg) = row.try_as_pg_row() {
        return Ok(pg.try_get_raw(index).map_err(|err| error(&err))?.is_null());
    }
    if let Some(sqlite) = row.try_as_sqlite_row() {
        return Ok(sqlite
            .try_get_raw(index)
            .map_err(|err| error(&err))?
            .is_null());
    }
    Err(error(&"is_null reads PostgreSQL and SQLite rows"))
}

impl Cell for String {
    fn read(row: &QueryResult, index: usize) -> Result<Self, DbErr> {
        required(text(row, index)?, index).map(str::to_owned)
    }
}

impl Cell for Option<String> {
    fn read(row: &QueryResult, index: usize) -> Result<Self, DbErr> {
        Ok(text(row, index)?.map(str::to_owned))
    }
}

/// A stored enum value as `T`, without a `String` of its own for each value: sea-orm's
/// conversion takes a `&String`, so the text is copied into one buffer per thread.
fn stored_enum<T: ActiveEnum<Value = String>>(text: &str) -> Result<T, DbErr> {
    thread_local! {
        static STORED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    STORED.with_borrow_mut(|stored| {
        stored.clear();
        stored.push_str(text);
        T::try_from_value(stored)
    })
}

/// Column `index` of a PostgreSQL row, when it is a value (not NULL) of eight bytes in
/// binary format: how PostgreSQL sends a `bigint` and a `timestamptz` to sqlx's prepared
/// statements. Anything else is left to sqlx.
fn pg_eight_bytes(row: &QueryResult, index: usize) -> Option<[u8; 8]> {
    let value = row.try_as_pg_row()?.try_get_raw(index).ok()?;
    if value.format() != PgValueFormat::Binary {
        return None;
    }
    value.as_bytes().ok()?.try_into().ok()
}

/// On PostgreSQL a `bigint` is eight big-endian bytes, read here directly: sqlx's decoder
/// (through `try_get_unchecked`) cost about 160 instructions a value, 2% of a dashboard
/// request (3,000 ids).
impl Cell for i64 {
    fn read(row: &QueryResult, index: usize) -> Result<Self, DbErr> {
        if let Some(bytes) = pg_eight_bytes(row, index) {
            return Ok(i64::from_be_bytes(bytes));
        }
        required(unchecked(row, index)?, index)
    }
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC).
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// The instant a binary `timestamptz` holds: microseconds since PostgreSQL's epoch. `None`
/// beyond chrono's range (PostgreSQL's `infinity` among them), which sqlx then refuses.
fn pg_timestamp(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros.checked_add(PG_EPOCH_UNIX_MICROS)?)
}

/// Timestamps are read without sqlx's decoders, which cost 370 to 780 instructions a value
/// (4% of a dashboard request on PostgreSQL, 5% on SQLite; it reads 2,400 of them). On
/// PostgreSQL a binary `timestamptz` is microseconds since 2000-01-01 UTC
/// ([`pg_timestamp`]). On SQLite it is the text sqlx wrote, which [`parse_stored_utc`]
/// reads in a tenth of the time chrono's general RFC 3339 parser takes. Anything else still
/// goes through sqlx.
impl Cell for DateTime<Utc> {
    fn read(row: &QueryResult, index: usize) -> Result<Self, DbErr> {
        if let Some(bytes) = pg_eight_bytes(row, index)
            && let Some(instant) = pg_timestamp(i64::from_be_bytes(bytes))
        {
            return Ok(instant);
        }
        if row.try_as_sqlite_row().is_some()
            && let Ok(Some(text)) = text(row, index)
            && let Some(parsed) = parse_stored_utc(text)
        {
            return Ok(parsed);
        }
        required(unchecked(row, index)?, index)
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]+00:00`, the form in which sqlx stores a
/// `DateTime<Utc>` on SQLite (RFC 3339, UTC, 0 to 9 fraction digits), to the same instant as
/// chrono's RFC 3339 parser; `None` for any other text, leap seconds included.
fn parse_stored_utc(text: &str) -> Option<DateTime<Utc>> {
    let text = text.as_bytes().strip_suffix(b"+00:00")?;
    let (date_time, fraction) = text.split_at_checked(19)?;
    if date_time[4] != b'-'
        || date_time[7] != b'-'
        || date_time[10] != b'T'
        || date_time[13] != b':'
        || date_time[16] != b':'
    {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            number(digits)? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        number(&date_time[0..4])? as i32,
        number(&date_time[5..7])?,
        number(&date_time[8..10])?,
    )?;
    let time = NaiveTime::from_hms_nano_opt(
        number(&date_time[11..13])?,
        number(&date_time[14..16])?,
        number(&date_time[17..19])?,
        nanos,
    )?;
    Some(date.and_time(time).and_utc())
}

/// Enums are stored as their string values.
macro_rules! enum_cells {
    ($($ty:ty),*) => {$(
        impl Cell for $ty {
            fn read(row: &QueryResult, index: usize) -> Result<Self, DbErr> {
                stored_enum(required(text(row, index)?, index)?)
            }
        }

        impl Cell for Option<$ty> {
            fn read(row: &QueryResult, index: usize) -> Result<Self, DbErr> {
                text(row, index)?.map(stored_enum).transpose()
            }
        }
    )*};
}

enum_cells!(AccountKind, OrganizationRole, DatasetRole);

// Member and collaborator rows carry their user's `username` (a copy the database keeps
// in step), so a page answers `user { id username }` from its own rows, with no join.
const MEMBERS: PageSpec<membership::Model> = PageSpec {
    table: "membership",
    columns: membership::Model::COLUMNS,
    parent: "organization_id",
    parents: "account",
    key: "username_key",
    read: |c| c.model(),
};

const COLLABORATORS: PageSpec<collaborator::Model> = PageSpec {
    table: "collaborator",
    columns: collaborator::Model::COLUMNS,
    parent: "dataset_id",
    parents: "dataset",
    key: "username_key",
    read: |c| c.model(),
};

const DATASETS: PageSpec<dataset::Model> = PageSpec {
    table: "dataset",
    columns: dataset::Model::COLUMNS,
    parent: "owner_id",
    parents: "account",
    key: "name_key",
    read: |c| c.model(),
};

/// Appends the condition under which `viewer` may see dataset row `r` (API.md: public, or
/// owned by the viewer, or owned by an organization the viewer administers, or the viewer
/// collaborates on it).
fn visible_datasets(sql: &mut Sql, viewer: Option<i64>) {
    match viewer {
        None => {
            sql.push(" AND r.public = ").bind(true);
        }
        Some(viewer) => {
            sql.push(" AND (r.public = ").bind(true);
            sql.push(" OR r.owner_id = ").bind(viewer);
            sql.push(" OR r.owner_id IN (SELECT organization_id FROM membership WHERE user_id = ")
                .bind(viewer)
                .push(" AND role = 'ADMIN')");
            sql.push(" OR r.id IN (SELECT dataset_id FROM collaborator WHERE user_id = ")
                .bind(viewer)
                .push("))");
        }
    }
}

/// The columns of a page's rows as read from the table (`r`).
fn table_columns<M>(spec: &PageSpec<M>) -> String {
    page_columns(spec, "r.")
}

/// The same columns as read from the derived table `t` that numbers or limits them.
fn derived_columns<M>(spec: &PageSpec<M>) -> String {
    page_columns(spec, "t.")
}

/// `spec`'s columns, each after `prefix`. Pushed into one string: `format!` per column was
/// 2% of a small page's instructions.
fn page_columns<M>(spec: &PageSpec<M>, prefix: &str) -> String {
    let mut columns = String::with_capacity(256);
    for c in spec.columns {
        if !columns.is_empty() {
            columns.push_str(", ");
        }
        columns.push_str(prefix);
        columns.push_str(c);
    }
    columns
}

/// The child table, as `r`.
fn from_clause<M>(spec: &PageSpec<M>) -> String {
    format!("{} r", spec.table)
}

/// One statement answering a page (`after`, `limit`) of `spec` rows for each of `parents`.
fn page_statement<M>(
    backend: DbBackend,
    spec: &PageSpec<M>,
    parents: &[i64],
    after: Option<&str>,
    limit: u64,
    filter: &(dyn Fn(&mut Sql) + Sync),
) -> Statement {
    let mut sql = Sql::new(backend);
    let after_and_filter = |sql: &mut Sql| {
        if let Some(after) = after {
            sql.push(&format!(" AND r.{} > ", spec.key))
                .bind(after.to_owned());
        }
        filter(sql);
    };
    let sqlite_range = |sql: &mut Sql, parent: i64| {
        sql.push(&format!(
            "SELECT {} FROM {} WHERE r.{} = ",
            table_columns(spec),
            from_clause(spec),
            spec.parent
        ))
        .bind(parent);
        after_and_filter(sql);
        sql.push(&format!(" ORDER BY r.{} LIMIT ", spec.key))
            .bind(limit as i64);
    };
    match (backend, parents) {
        (DbBackend::Postgres, _) => {
            sql.push(&format!("SELECT {} FROM (VALUES ", derived_columns(spec)));
            for (i, parent) in parents.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" })
                    .bind(*parent)
                    .push("::bigint)");
            }
            sql.push(&format!(
                ") AS p(id) CROSS JOIN LATERAL (SELECT {} FROM {} WHERE r.{} = p.id",
                table_columns(spec),
                from_clause(spec),
                spec.parent
            ));
            after_and_filter(&mut sql);
            // The limit is written into the statement, not bound: with `LIMIT $n`
            // PostgreSQL's generic plan guesses a tenth of the parent's rows, so it never
            // beats the custom plans and every execution was planned anew (planning cost
            // four times the execution of a 20-member page). With the number in the text,
            // the prepared statement settles on its generic plan after five executions.
            sql.push(&format!(" ORDER BY r.{} LIMIT {limit}) t", spec.key));
        }
        (_, [parent]) => {
            sqlite_range(&mut sql, *parent);
        }
        (_, parents) => {
            // SQLite has no `LATERAL`. Each parent's page is instead the range of its rows
            // from `after` up to the key of the page's last row, which a correlated
            // subquery finds by stepping `limit - 1` keys along the same index (SQLite runs
            // it once per parent, as it seeks that parent's range). A join, so the rows go
            // out as the index holds them: a `UNION ALL` of per-parent `LIMIT` queries runs
            // each as a co-routine, which copies every text cell once more, and builds the
            // dataset filter's subqueries once per parent. With fewer than `limit` rows
            // after `after` the bound is NULL, and the range runs to the parent's last key:
            // `x''`, an empty blob, sorts after every text value. The parents are rows of
            // their own table, looked up by primary key in ascending order, so
            // `ORDER BY p.id, key` is the order the rows come in and costs no sort.
            sql.push(&format!(
                "SELECT {} FROM {} p JOIN {} ON r.{} = p.id",
                table_columns(spec),
                spec.parents,
                from_clause(spec),
                spec.parent
            ));
            after_and_filter(&mut sql);
            // The subquery's `r` is its own row; the filter and `after` read it as the
            // outer query's conditions read theirs.
            sql.push(&format!(
                " AND r.{key} <= coalesce((SELECT r.{key} FROM {from} WHERE r.{parent} = p.id",
                key = spec.key,
                from = from_clause(spec),
                parent = spec.parent
            ));
            after_and_filter(&mut sql);
            sql.push(&format!(
                " ORDER BY r.{} LIMIT 1 OFFSET {}), x'') WHERE p.id IN ",
                spec.key,
                limit.saturating_sub(1)
            ))
            .bind_list(parents);
            sql.push(&format!(" ORDER BY p.id, r.{}", spec.key));
        }
    }
    sql.build()
}

/// One statement counting `spec` rows per parent.
fn count_statement<M>(
    backend: DbBackend,
    spec: &PageSpec<M>,
    parents: &[i64],
    filter: &(dyn Fn(&mut Sql) + Sync),
) -> Statement {
    let mut sql = Sql::new(backend);
    sql.push(&format!(
        "SELECT r.{parent} AS parent, COUNT(*) AS n FROM {table} r WHERE r.{parent} IN ",
        parent = spec.parent,
        table = spec.table
    ))
    .bind_list(parents);
    filter(&mut sql);
    sql.push(&format!(" GROUP BY r.{}", spec.parent));
    sql.build()
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

impl DbLoader {
    async fn pages<const KIND: u8, M>(
        &self,
        spec: &PageSpec<M>,
        keys: &[PageKey<KIND>],
        parent_of: impl Fn(&M) -> i64,
        filter: &(dyn Fn(&mut Sql) + Sync),
    ) -> Result<HashMap<PageKey<KIND>, Page<M>>, LoadError> {
        // Requests with the same page arguments share one statement.
        let mut groups: HashMap<(Option<&str>, u64), Vec<i64>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.after.as_deref(), key.limit))
                .or_default()
                .push(key.parent);
        }
        let mut pages: HashMap<PageKey<KIND>, Vec<M>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        let backend = self.db.get_database_backend();
        for ((after, limit), mut parents) in groups {
            parents.sort_unstable();
            parents.dedup();
            let statement = page_statement(backend, spec, &parents, after, limit, filter);
            let rows = self
                .reader()
                .query_all_raw(statement)
                .await
                .map_err(db_error)?;
            // The statement returns each parent's rows together, in key order: file each
            // parent's run of rows into its page with one look-up, not one per row.
            let mut rows = rows
                .iter()
                .map(|row| (spec.read)(&mut Columns { row, next: 0 }).map_err(db_error))
                .peekable();
            while let Some(first) = rows.next() {
                let first = first?;
                let parent = parent_of(&first);
                let mut run = Vec::with_capacity(limit as usize);
                run.push(first);
                while let Some(Ok(row)) =
                    rows.next_if(|row| row.as_ref().is_ok_and(|row| parent_of(row) == parent))
                {
                    run.push(row);
                }
                let key = PageKey {
                    parent,
                    after: after.map(str::to_owned),
                    limit,
                };
                match pages.get_mut(&key) {
                    Some(page) if page.is_empty() => *page = run,
                    Some(page) => page.extend(run),
                    None => {}
                }
            }
        }
        Ok(pages
            .into_iter()
            .map(|(key, rows)| (key, Arc::new(rows)))
            .collect())
    }

    async fn counts<const KIND: u8, M>(
        &self,
        spec: &PageSpec<M>,
        keys: &[CountKey<KIND>],
        filter: &(dyn Fn(&mut Sql) + Sync),
    ) -> Result<HashMap<CountKey<KIND>, u64>, LoadError> {
        let mut parents: Vec<i64> = keys.iter().map(|k| k.0).collect();
        parents.sort_unstable();
        parents.dedup();
        let statement = count_statement(self.db.get_database_backend(), spec, &parents, filter);
        let rows = self
            .reader()
            .query_all_raw(statement)
            .await
            .map_err(db_error)?;
        let mut counts: HashMap<CountKey<KIND>, u64> = keys.iter().map(|k| (*k, 0)).collect();
        for row in rows {
            let parent: i64 = row.try_get("", "parent").map_err(db_error)?;
            let n: i64 = row.try_get("", "n").map_err(db_error)?;
            counts.insert(CountKey(parent), n as u64);
        }
        Ok(counts)
    }
}

fn no_filter(_: &mut Sql) {}

impl Loader<MemberPage> for DbLoader {
    type Value = Page<membership::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[MemberPage],
    ) -> Result<HashMap<MemberPage, Self::Value>, Self::Error> {
        self.pages(
            &MEMBERS,
            keys,
            |m: &membership::Model| m.organization_id,
            &no_filter,
        )
        .await
    }
}

impl Loader<CollaboratorPage> for DbLoader {
    type Value = Page<collaborator::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CollaboratorPage],
    ) -> Result<HashMap<CollaboratorPage, Self::Value>, Self::Error> {
        self.pages(
            &COLLABORATORS,
            keys,
            |c: &collaborator::Model| c.dataset_id,
            &no_filter,
        )
        .await
    }
}

impl Loader<DatasetPage> for DbLoader {
    type Value = Page<dataset::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DatasetPage],
    ) -> Result<HashMap<DatasetPage, Self::Value>, Self::Error> {
        let viewer = self.viewer;
        self.pages(&DATASETS, keys, |d: &dataset::Model| d.owner_id, &|sql| {
            visible_datasets(sql, viewer)
        })
        .await
    }
}

impl Loader<MemberCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[MemberCount]) -> Result<HashMap<MemberCount, u64>, Self::Error> {
        self.counts(&MEMBERS, keys, &no_filter).await
    }
}

impl Loader<CollaboratorCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CollaboratorCount],
    ) -> Result<HashMap<CollaboratorCount, u64>, Self::Error> {
        self.counts(&COLLABORATORS, keys, &no_filter).await
    }
}

impl Loader<DatasetCount> for DbLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[DatasetCount]) -> Result<HashMap<DatasetCount, u64>, Self::Error> {
        let viewer = self.viewer;
        self.counts(&DATASETS, keys, &|sql| visible_datasets(sql, viewer))
            .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, SecondsFormat, Utc};
    use proptest::prelude::*;

    use super::{AccountKind, DatasetRole, OrganizationRole, parse_stored_utc, pg_timestamp};
    use entity::membership;

    /// The instant chrono's RFC 3339 parser (what sqlx uses) reads from `text`.
    fn chrono_reads(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
    }

    proptest! {
        /// Every timestamp as sqlx stores it (each of chrono's fraction widths) reads back
        /// as the same instant, as chrono reads it.
        #[test]
        fn stored_timestamps_read_back(seconds in 0i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let instant = DateTime::from_timestamp(seconds, nanos).unwrap();
            for format in [SecondsFormat::AutoSi, SecondsFormat::Secs, SecondsFormat::Millis, SecondsFormat::Micros, SecondsFormat::Nanos] {
                let text = instant.to_rfc3339_opts(format, false);
                prop_assert_eq!(parse_stored_utc(&text), chrono_reads(&text), "{}", text);
            }
            prop_assert_eq!(parse_stored_utc(&instant.to_rfc3339_opts(SecondsFormat::AutoSi, false)), Some(instant));
        }

        /// A binary `timestamptz` (microseconds since 2000-01-01 UTC) reads as the instant
        /// sqlx's decoder makes of it, over the whole range chrono can hold.
        #[test]
        fn pg_timestamps_read_as_sqlx_reads_them(micros in any::<i64>()) {
            let epoch = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
            let sqlx = epoch.checked_add_signed(chrono::TimeDelta::microseconds(micros)).map(|t| t.and_utc());
            prop_assert_eq!(pg_timestamp(micros), sqlx);
        }

        /// Any text in roughly that shape: whenever the fast path reads an instant, chrono
        /// reads the same one.
        #[test]
        fn never_disagrees_with_chrono(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?(\\+00:00|Z|-01:00)?") {
            if let Some(parsed) = parse_stored_utc(&text) {
                prop_assert_eq!(Some(parsed), chrono_reads(&text), "{}", text);
            }
        }
    }

    #[test]
    fn other_shapes_are_left_to_sqlx() {
        for text in [
            "2026-12-01 19:47:53.5+00:00",
            "2026-12-01T19:47:53Z",
            "2026-12-01T19:47:60+00:00",
            "2026-02-30T00:00:00+00:00",
            "2026-12-01T19:47:53.+00:00",
            "2026-12-01T19:47:53.1234567890+00:00",
            "+2026-12-01T19:47:53+00:00",
            "",
        ] {
            assert_eq!(parse_stored_utc(text), None, "{text}");
        }
        assert_eq!(
            parse_stored_utc("2026-12-01T19:47:53.570053504+00:00"),
            chrono_reads("2026-12-01T19:47:53.570053504+00:00")
        );
    }

    /// On PostgreSQL, `bigint` and `timestamptz` values (and NULL) read by [`super::Cell`]
    /// as sqlx's checked decoders read them, through the statements' own path
    /// ([`crate::db::fetch_all`]). Runs where `TEST_DATABASE_URL` names a PostgreSQL server.
    #[tokio::test]
    async fn pg_cells_read_as_sqlx_reads_them() {
        use sea_orm::DbBackend;

        use super::Cell;

        let Some(url) = crate::db::tests::postgres_url() else {
            return;
        };
        let db = crate::db::connect(&url, 1).await.unwrap();
        let sql = "SELECT 9223372036854775807::bigint, (-5)::bigint, 0::bigint, NULL::bigint, \
                   TIMESTAMPTZ '1999-12-31 23:59:59.999999+00', TIMESTAMPTZ '2026-12-02 04:05:06.123456+00', \
                   TIMESTAMPTZ '0001-01-01 00:00:00+00', TIMESTAMPTZ '9999-12-31 23:59:59.999999+00', \
                   TIMESTAMPTZ '1970-01-01 00:00:00+00', NULL::timestamptz";
        let row = &first_row(&db, DbBackend::Postgres, sql).await;
        for index in 0..4 {
            let sqlx: Option<i64> = row.try_get_by_index(index).unwrap();
            assert_eq!(i64::read(row, index).ok(), sqlx, "column {index}");
        }
        for index in 4..10 {
            let sqlx: Option<DateTime<Utc>> = row.try_get_by_index(index).unwrap();
            assert_eq!(
                DateTime::<Utc>::read(row, index).ok(),
                sqlx,
                "column {index}"
            );
        }
        assert_eq!(i64::read(row, 0).unwrap(), i64::MAX);
        assert!(i64::read(row, 3).is_err() && DateTime::<Utc>::read(row, 9).is_err());
        text_cells_read_as_sqlx_reads_them(&db, DbBackend::Postgres).await;
    }

    /// Text and stored enums on SQLite (and, from the test above, on PostgreSQL): ASCII,
    /// other UTF-8, empty and NULL text as sqlx's `String` decoder reads it; text that is
    /// not UTF-8 (SQLite does not check what it stores) is refused, as sqlx refuses it.
    #[tokio::test]
    async fn sqlite_text_cells_read_as_sqlx_reads_them() {
        use super::Cell;

        let db = crate::db::connect("sqlite::memory:", 1).await.unwrap();
        text_cells_read_as_sqlx_reads_them(&db, sea_orm::DbBackend::Sqlite).await;
        let sql = "SELECT CAST(x'6162c3' AS TEXT), CAST(x'ff' AS TEXT), CAST(x'c3a9' AS TEXT)";
        let row = &first_row(&db, sea_orm::DbBackend::Sqlite, sql).await;
        for index in 0..2 {
            assert!(row.try_get_by_index::<String>(index).is_err(), "{index}");
            assert!(String::read(row, index).is_err(), "{index}");
        }
        assert_eq!(String::read(row, 2).unwrap(), "é");
    }

    /// A SQLite page statement for several parents reads each parent's range on the
    /// covering index, takes the parents in primary-key order and sorts nothing, and
    /// returns at most `limit` rows per parent, from after `after`: the rows of the page,
    /// its one row more for `hasNextPage`, and not one row beyond.
    #[tokio::test]
    async fn sqlite_pages_read_each_parents_range_and_no_more() {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};

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
                 INSERT INTO user_account VALUES ({user}, 'u{user}@x', 'u{user}@x', '-');"
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
            super::page_statement(
                DbBackend::Sqlite,
                &super::MEMBERS,
                &parents,
                after,
                limit,
                &super::no_filter,
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
            let rows = db.query_all_raw(page(after, limit)).await.unwrap();
            let got: Vec<(i64, i64)> = rows
                .iter()
                .map(|row| {
                    let m: membership::Model = super::Columns { row, next: 0 }.model().unwrap();
                    (m.organization_id, m.user_id)
                })
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

    /// The first row `sql` answers, read through the pages' own path
    /// ([`crate::db::fetch_all`]).
    async fn first_row(
        db: &sea_orm::DatabaseConnection,
        backend: sea_orm::DbBackend,
        sql: &str,
    ) -> sea_orm::QueryResult {
        let statements = std::sync::atomic::AtomicU64::new(0);
        let statement = sea_orm::Statement::from_string(backend, sql.to_owned());
        let rows = crate::db::fetch_all(db, &statements, statement, None)
            .await
            .unwrap();
        rows.into_iter().next().expect("a row")
    }

    async fn text_cells_read_as_sqlx_reads_them(
        db: &sea_orm::DatabaseConnection,
        backend: sea_orm::DbBackend,
    ) {
        use super::Cell;

        let sql = "SELECT 'user-00042', 'Zoë, ünïcode — 名前', '', NULL, 'ADMIN', 'MANAGER', NULL, 'nope', 'ORGANIZATION'";
        let row = &first_row(db, backend, sql).await;
        for index in 0..4 {
            let sqlx: Option<String> = row.try_get_by_index(index).unwrap();
            assert_eq!(String::read(row, index).ok(), sqlx, "column {index}");
            assert_eq!(Option::<String>::read(row, index).unwrap(), sqlx);
            assert_eq!(super::is_null(row, index).unwrap(), sqlx.is_none());
        }
        assert_eq!(
            AccountKind::read(row, 8).unwrap(),
            AccountKind::Organization
        );
        assert!(AccountKind::read(row, 4).is_err());
        assert_eq!(String::read(row, 1).unwrap(), "Zoë, ünïcode — 名前");
        assert!(String::read(row, 3).is_err());
        assert_eq!(
            OrganizationRole::read(row, 4).unwrap(),
            OrganizationRole::Admin
        );
        assert_eq!(DatasetRole::read(row, 5).unwrap(), DatasetRole::Manager);
        assert_eq!(
            Option::<DatasetRole>::read(row, 5).unwrap(),
            Some(DatasetRole::Manager)
        );
        assert_eq!(Option::<DatasetRole>::read(row, 6).unwrap(), None);
        assert!(DatasetRole::read(row, 6).is_err() && DatasetRole::read(row, 7).is_err());
    }
}
