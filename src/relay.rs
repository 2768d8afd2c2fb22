//! Relay conventions: global object IDs and keyset-paginated connections.

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::resolver_utils::ContainerType;
use async_graphql::{Context, ID, Object};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;

use crate::context::ContextExt;
use crate::eager::{Boxed, Eager};
use crate::error::{ApiError, ApiResult};
use crate::loaders::{DbLoader, LoadError};
use crate::pages::{CollaboratorCount, CountKey, DatasetCount, MemberCount, PageKey};

/// The kinds of object `node(id:)` can fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A `User`.
    User,
    /// An `Organization`.
    Organization,
    /// A `Dataset`.
    Dataset,
    /// An `ApiToken`.
    ApiToken,
    /// An `AuditEvent`.
    AuditEvent,
    /// An `Invitation`.
    Invitation,
}

impl NodeKind {
    fn tag(self) -> &'static str {
        match self {
            NodeKind::User => "User",
            NodeKind::Organization => "Organization",
            NodeKind::Dataset => "Dataset",
            NodeKind::ApiToken => "ApiToken",
            NodeKind::AuditEvent => "AuditEvent",
            NodeKind::Invitation => "Invitation",
        }
    }
}

/// Encodes a global ID: opaque to clients, `base64url("Type:id")`.
pub fn global_id(kind: NodeKind, id: i64) -> ID {
    // Written on the stack, the number by `itoa`: a page answers hundreds of IDs.
    let mut digits = itoa::Buffer::new();
    let (tag, number) = (kind.tag().as_bytes(), digits.format(id).as_bytes());
    let mut raw = [0u8; 40]; // "Organization:" and an i64 take at most 33 bytes
    let len = tag.len() + 1 + number.len();
    raw[..tag.len()].copy_from_slice(tag);
    raw[tag.len()] = b':';
    raw[tag.len() + 1..len].copy_from_slice(number);
    ID(URL_SAFE_NO_PAD.encode(&raw[..len]))
}

/// Decodes a global ID; `None` for anything that is not one of ours.
pub fn parse_global_id(id: &str) -> Option<(NodeKind, i64)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    let (tag, number) = raw.split_once(':')?;
    let kind = [
        NodeKind::User,
        NodeKind::Organization,
        NodeKind::Dataset,
        NodeKind::ApiToken,
        NodeKind::AuditEvent,
        NodeKind::Invitation,
    ]
    .into_iter()
    .find(|k| k.tag() == tag)?;
    Some((kind, number.parse().ok()?))
}

/// Connections return at most this many nodes per page.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Connections return this many nodes when `first` is not given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// The complexity of a connection field: its page size (`first`, default 20, counted as at
/// most 100) times the cost of what is selected on each node.
pub fn connection_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE) as usize;
    first.saturating_mul(child_complexity.max(1))
}

/// A validated page request: `first` nodes after the sort key `after`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageArgs {
    /// How many nodes to return (1..=100, or 0).
    pub first: u64,
    /// Return nodes whose sort key is greater than this.
    pub after: Option<String>,
}

impl PageArgs {
    /// Checks `first` (0..=100, default 20) and decodes the `after` cursor.
    pub fn parse(first: Option<i32>, after: Option<String>) -> ApiResult<Self> {
        let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(0..=MAX_PAGE_SIZE).contains(&first) {
            return Err(ApiError::bad_input(
                "first",
                format!("must be between 0 and {MAX_PAGE_SIZE}"),
            ));
        }
        let after = match after {
            None => None,
            Some(cursor) => Some(
                KeyCursor::decode_cursor(&cursor)
                    .map_err(|_| ApiError::bad_input("after", "is not a valid cursor"))?
                    .0,
            ),
        };
        Ok(PageArgs {
            first: first as u64,
            after,
        })
    }

    /// How many rows to fetch: one more than asked, to learn whether there is a next page.
    pub fn limit(&self) -> u64 {
        self.first + 1
    }
}

/// A keyset cursor: the sort key of the edge's node, opaque to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCursor(pub String);

impl CursorType for KeyCursor {
    type Error = ApiError;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| ApiError::bad_input("after", "is not a valid cursor"))?;
        let raw = String::from_utf8(bytes)
            .map_err(|_| ApiError::bad_input("after", "is not a valid cursor"))?;
        raw.strip_prefix("k:")
            .map(|key| KeyCursor(key.to_owned()))
            .ok_or_else(|| ApiError::bad_input("after", "is not a valid cursor"))
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("k:{}", self.0))
    }
}

/// What a connection's `totalCount` counts; loaded (batched) only when asked for.
#[derive(Clone, Debug)]
pub enum ConnectionTotal {
    /// An organization's members.
    Members(i64),
    /// A dataset's collaborators.
    Collaborators(i64),
    /// An owner's datasets the viewer may see.
    Datasets(i64),
    /// A user's API tokens.
    UserTokens(i64),
    /// The API tokens restricted to an organization.
    OrganizationTokens(i64),
    /// The events of an organization's log a filter keeps.
    OrganizationLog(i64, crate::audit::LogFilter),
    /// A dataset's log.
    DatasetLog(i64),
    /// An organization's invitations in one state (`None`: all).
    OrganizationInvitations(i64, Option<entity::invitation::InvitationState>),
    /// A user's pending invitations.
    UserInvitations(i64),
}

#[Object]
impl ConnectionTotal {
    /// How many nodes the whole list has (that the viewer may see), across all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let count = match self {
            ConnectionTotal::Members(id) => ctx.load::<MemberCount>(CountKey(*id)).await?,
            ConnectionTotal::Collaborators(id) => {
                ctx.load::<CollaboratorCount>(CountKey(*id)).await?
            }
            ConnectionTotal::Datasets(id) => ctx.load::<DatasetCount>(CountKey(*id)).await?,
            ConnectionTotal::UserTokens(id) => {
                ctx.load::<crate::tokens::UserTokenCount>(CountKey(*id))
                    .await?
            }
            ConnectionTotal::OrganizationTokens(id) => {
                ctx.load::<crate::tokens::OrganizationTokenCount>(CountKey(*id))
                    .await?
            }
            ConnectionTotal::OrganizationLog(id, filter) => {
                ctx.load(crate::audit::OrganizationLogCount(
                    CountKey(*id),
                    filter.clone(),
                ))
                .await?
            }
            ConnectionTotal::OrganizationInvitations(id, state) => {
                ctx.load(crate::invitations::OrganizationInvitationCount(
                    CountKey(*id),
                    *state,
                ))
                .await?
            }
            ConnectionTotal::UserInvitations(id) => {
                ctx.load::<crate::invitations::UserInvitationCount>(CountKey(*id))
                    .await?
            }
            ConnectionTotal::DatasetLog(id) => {
                ctx.load::<crate::audit::DatasetLogCount>(CountKey(*id))
                    .await?
            }
        };
        Ok(count.unwrap_or(0))
    }
}

/// A Relay connection of `Node`s with `nodes` and `totalCount`. Its nodes resolve
/// [eagerly](crate::eager): a page holds up to 100 of them.
/// (Boxed: a connection and its `resolve` future would otherwise sit inline in every field
/// future of the object that has the connection field.)
pub type KeyConnection<Node> = Boxed<Connection<KeyCursor, Eager<Node>, ConnectionTotal>>;

/// Builds a connection page from `rows` fetched with `args.limit()`, each with its sort key.
fn page<Node: ContainerType + Sync>(
    args: &PageArgs,
    mut rows: Vec<(String, Node)>,
    total: ConnectionTotal,
) -> KeyConnection<Node> {
    let has_next = rows.len() as u64 > args.first;
    rows.truncate(args.first as usize);
    let mut connection = Connection::with_additional_fields(args.after.is_some(), has_next, total);
    connection.edges.extend(
        rows.into_iter()
            .map(|(key, node)| Edge::new(KeyCursor(key), Eager(node))),
    );
    Boxed(connection)
}

impl<const KIND: u8> PageKey<KIND> {
    /// The page `args` asks for among `parent`'s children.
    pub fn of(parent: i64, args: &PageArgs) -> Self {
        PageKey {
            parent,
            after: args.after.clone(),
            limit: args.limit(),
        }
    }
}

/// A page of a parent's children as a connection, from `rows` read already (with
/// `args.limit()`); `node` as for [`load_page`].
pub fn page_of<Row, Node: ContainerType + Sync>(
    args: &PageArgs,
    rows: Vec<Row>,
    total: ConnectionTotal,
    node: impl Fn(Row) -> (String, Node),
) -> KeyConnection<Node> {
    page(args, rows.into_iter().map(node).collect(), total)
}

/// One page of a parent's children as a connection: the rows come from the request's
/// batched page loader for the `key`'s kind (one statement for every parent asking at once),
/// and `node` turns each row into its sort key and node. The future is boxed, so the
/// connection resolvers awaiting it stay small (see [`crate::eager`]).
pub fn load_page<'a, const KIND: u8, Row, Node>(
    ctx: &'a Context<'_>,
    args: &'a PageArgs,
    key: PageKey<KIND>,
    total: ConnectionTotal,
    node: impl Fn(Row) -> (String, Node) + Send + 'a,
) -> BoxFuture<'a, ApiResult<KeyConnection<Node>>>
where
    DbLoader: async_graphql::dataloader::Loader<
            PageKey<KIND>,
            Value = crate::pages::Page<Row>,
            Error = LoadError,
        >,
    Row: Send + Sync + Clone + 'static,
    Node: ContainerType + Send + Sync + 'a,
{
    Box::pin(async move {
        let rows = ctx
            .load(key)
            .await?
            .map(std::sync::Arc::unwrap_or_clone)
            .unwrap_or_default();
        Ok(page(args, rows.into_iter().map(node).collect(), total))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_round_trip_and_reject_garbage() {
        let id = global_id(NodeKind::Dataset, 42);
        assert_eq!(parse_global_id(&id), Some((NodeKind::Dataset, 42)));
        assert_eq!(id.as_str(), URL_SAFE_NO_PAD.encode("Dataset:42"));
        for kind in [NodeKind::User, NodeKind::Organization, NodeKind::Dataset] {
            for n in [0, 1, -7, i64::MAX, i64::MIN] {
                let id = global_id(kind, n);
                assert_eq!(
                    id.as_str(),
                    URL_SAFE_NO_PAD.encode(format!("{}:{n}", kind.tag()))
                );
                assert_eq!(parse_global_id(&id), Some((kind, n)));
            }
        }
        assert_eq!(parse_global_id("nope"), None);
        assert_eq!(parse_global_id(&URL_SAFE_NO_PAD.encode("Thing:1")), None);
        assert_eq!(parse_global_id(&URL_SAFE_NO_PAD.encode("User:x")), None);
    }

    #[test]
    fn page_size_is_bounded() {
        assert!(PageArgs::parse(Some(100), None).is_ok());
        assert_eq!(PageArgs::parse(None, None).unwrap().first, 20);
        assert_eq!(
            PageArgs::parse(Some(101), None).unwrap_err().code(),
            "BAD_USER_INPUT"
        );
        assert_eq!(
            PageArgs::parse(Some(-1), None).unwrap_err().code(),
            "BAD_USER_INPUT"
        );
        assert_eq!(
            PageArgs::parse(Some(1), Some("!!".into()))
                .unwrap_err()
                .code(),
            "BAD_USER_INPUT"
        );
    }
}
