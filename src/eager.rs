//! Eager resolution for the objects that pages return by the hundred.
//!
//! async-graphql resolves every object by boxing one future per selected field and running
//! them in a fresh `FuturesUnordered`: an allocation and a reference-counted task per field,
//! and a waker round trip per object, even when every field is already in memory. A
//! dashboard request resolves about 2,500 such objects (1,000 members, their users, 400
//! datasets), and that machinery was the largest item left in the profile.
//!
//! [`Eager<T>`] is the same GraphQL type as `T` — same name, same fields, same schema — but
//! resolves its selection with one `join_all` over `T`'s own field futures: one allocation
//! per object instead of two per field, and the fields answer in the order the query asked
//! for them. Fields that wait (a DataLoader) still run concurrently, so batching is
//! unchanged. It does not run async-graphql extensions' per-field hooks: orgql registers no
//! extension (see [`crate::schema::configured_schema_builder`]), and one added later must
//! drop `Eager` or accept that its `resolve` hook skips these objects' fields. With custom
//! directives (orgql has none) it falls back to async-graphql's own resolver.

use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;

use futures_util::future::{BoxFuture, Either, ready};

use async_graphql::indexmap::IndexMap;
use async_graphql::indexmap::map::raw_entry_v1::RawEntryMut;
use async_graphql::indexmap::map::{Entry, RawEntryApiV1};
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container};
use async_graphql::{Context, ContextSelectionSet, Name, OutputType, Positioned, ServerError};
use async_graphql::{ServerResult, Value};

/// The `OutputType` items that make a wrapper `W(T)` the very same GraphQL type as `T`.
macro_rules! same_type_as_inner {
    () => {
        fn type_name() -> Cow<'static, str> {
            T::type_name()
        }

        fn qualified_type_name() -> String {
            T::qualified_type_name()
        }

        fn introspection_type_name(&self) -> Cow<'static, str> {
            self.0.introspection_type_name()
        }

        fn create_type_info(registry: &mut Registry) -> String {
            T::create_type_info(registry)
        }
    };
}

/// `T`, resolved eagerly (see the module's documentation). GraphQL sees `T`.
#[derive(Clone)]
pub struct Eager<T>(pub T);

impl<T: ContainerType + Sync> OutputType for Eager<T> {
    same_type_as_inner!();

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        // Boxed, as async-graphql boxes its field futures: an object's future contains its
        // fields' futures, which may contain objects (a member's user), so an unboxed type
        // would be infinitely recursive.
        let boxed: BoxFuture<'_, ServerResult<Value>> = Box::pin(resolve_eagerly(ctx, &self.0));
        boxed.await
    }
}

/// `T`, the same GraphQL type, resolved in a boxed future. For the large answers a field
/// gives (connections, lists, interfaces): async-graphql's derived `resolve_field` future of
/// an object holds its largest field's answer and that answer's `resolve` future inline, so
/// every field future of the object has that size, and [`Eager`] moves each one twice.
/// Boxing the few large answers (and the resolvers' own long awaits) keeps an object's field
/// futures small, about half the size.
pub struct Boxed<T>(pub T);

impl<T: OutputType> OutputType for Boxed<T> {
    same_type_as_inner!();

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let boxed: BoxFuture<'_, ServerResult<Value>> = Box::pin(self.0.resolve(ctx, field));
        boxed.await
    }
}

/// One entry of an object's answer, in the order the query selected it.
enum Selected<'a> {
    /// `__typename`, answered without a resolver.
    Typename(Name),
    /// A field, answered by `T::resolve_field` in this field's context.
    Field(Context<'a>),
}

async fn resolve_eagerly<'a, T: ContainerType + Sync>(
    ctx: &'a ContextSelectionSet<'a>,
    root: &'a T,
) -> ServerResult<Value> {
    if !ctx.schema_env.custom_directives.is_empty() {
        return resolve_container(ctx, root).await;
    }
    let mut entries = Vec::with_capacity(ctx.item.node.items.len());
    collect(ctx, ctx.item, root, &mut entries)?;

    // One future per entry (a ready one for `__typename`): the iterator's exact length lets
    // `join_all` allocate its futures once, where a `filter_map` grew and then shrank them.
    let resolved = futures_util::future::join_all(entries.iter().map(|entry| match entry {
        Selected::Field(field_ctx) => Either::Left(root.resolve_field(field_ctx)),
        Selected::Typename(_) => Either::Right(ready(Ok(None))),
    }))
    .await;

    let mut answer = IndexMap::with_capacity_and_hasher(entries.len(), ANSWER_HASHER.clone());
    for (entry, resolved) in entries.iter().zip(resolved) {
        let (key, value) = match (entry, resolved) {
            (Selected::Typename(key), _) => (
                key.clone(),
                Value::String(root.introspection_type_name().into_owned()),
            ),
            (Selected::Field(field_ctx), Ok(value)) => (
                field_ctx.item.node.response_key().node.clone(),
                value.unwrap_or_default(),
            ),
            (Selected::Field(_), Err(error)) => {
                ctx.add_error(error);
                continue;
            }
        };
        merge(&mut answer, key, value);
    }
    Ok(if answer.is_empty() {
        Value::Null
    } else {
        Value::Object(answer)
    })
}

/// Adds the fields `selection_set` selects on `root` (following fragments that apply to it)
/// to `entries`. Mirrors async-graphql's `Fields::add_set`; `@skip`/`@include` were already
/// applied to the document before execution.
fn collect<'a, T: ContainerType + Sync>(
    ctx: &'a ContextSelectionSet<'a>,
    selection_set: &'a Positioned<SelectionSet>,
    root: &T,
    entries: &mut Vec<Selected<'a>>,
) -> ServerResult<()> {
    for selection in &selection_set.node.items {
        let (condition, inner) = match &selection.node {
            Selection::Field(field) => {
                entries.push(if field.node.name.node == "__typename" {
                    Selected::Typename(field.node.response_key().node.clone())
                } else {
                    Selected::Field(ctx.with_field(field))
                });
                continue;
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                let Some(fragment) = ctx.query_env.fragments.get(name) else {
                    return Err(ServerError::new(
                        format!(r#"Unknown fragment "{name}"."#),
                        Some(spread.pos),
                    ));
                };
                (
                    Some(fragment.node.type_condition.node.on.node.as_str()),
                    &fragment.node.selection_set,
                )
            }
            Selection::InlineFragment(fragment) => (
                fragment
                    .node
                    .type_condition
                    .as_ref()
                    .map(|condition| condition.node.on.node.as_str()),
                &fragment.node.selection_set,
            ),
        };
        let applies = condition.is_none_or(|condition| {
            let type_name = root.introspection_type_name();
            type_name == condition
                || T::type_name() == condition
                || ctx
                    .schema_env
                    .registry
                    .implements
                    .get(type_name.as_ref())
                    .is_some_and(|interfaces| interfaces.contains(condition))
        });
        if applies {
            collect(ctx, inner, root, entries)?;
        }
    }
    Ok(())
}

/// The hasher of every answer map [`Eager`] builds. `Value::Object`'s map hashes its keys
/// with std's SipHash under a `RandomState`; giving all of ours one (random) state lets a
/// key's hash be computed once and reused ([`key_hash`]), where a fresh state per map made
/// every field of every object hash its name again.
static ANSWER_HASHER: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// How many keys [`key_hash`] remembers per thread.
const KEY_HASH_SLOTS: usize = 64;

thread_local! {
    /// Recent keys and their hashes under [`ANSWER_HASHER`], by the address of the key's
    /// text. An answer's keys are the query's response keys, shared (`Arc`) by every object
    /// of a list, so the same few recur. Each slot holds its key, so the text it is known
    /// by cannot be freed and its address reused for another key while it is here.
    static KEY_HASHES: RefCell<[Option<(Name, u64)>; KEY_HASH_SLOTS]> =
        const { RefCell::new([const { None }; KEY_HASH_SLOTS]) };
}

/// `key`'s hash under [`ANSWER_HASHER`].
///
/// Two slots per text address (the pair `slot`, `slot ^ 1`, the last used first), picked by
/// a multiplicative hash of the address: with one slot picked by the address's low bits, the
/// few keys of a query could share a slot (how depends on where the allocator put them) and
/// hash again on every use.
fn key_hash(key: &Name) -> u64 {
    let text = key.as_str();
    let address = text.as_ptr() as usize as u64;
    let slot = (address.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % KEY_HASH_SLOTS;
    let known = |entry: &Option<(Name, u64)>| match entry {
        Some((known, hash)) if std::ptr::eq(known.as_str(), text) => Some(*hash),
        _ => None,
    };
    KEY_HASHES.with_borrow_mut(|slots| {
        if let Some(hash) = known(&slots[slot]) {
            return hash;
        }
        let hash = known(&slots[slot ^ 1]).unwrap_or_else(|| ANSWER_HASHER.hash_one(key));
        // The last used first: the pair keeps the two most recent keys of this address.
        slots[slot ^ 1] = slots[slot].take();
        slots[slot] = Some((key.clone(), hash));
        hash
    })
}

/// Puts `value` under `key`, merging it into an object (or list of objects) already there,
/// as async-graphql does when fragments select the same field twice. `target` is one of our
/// answer maps (built with [`ANSWER_HASHER`]), so the key's remembered hash is its hash.
fn merge(target: &mut IndexMap<Name, Value>, key: Name, value: Value) {
    let hash = key_hash(&key);
    debug_assert_eq!(target.hasher().hash_one(&key), hash);
    match target
        .raw_entry_mut_v1()
        .from_key_hashed_nocheck(hash, &key)
    {
        RawEntryMut::Vacant(slot) => {
            slot.insert_hashed_nocheck(hash, key, value);
        }
        RawEntryMut::Occupied(mut slot) => merge_values(slot.get_mut(), value),
    }
}

/// Merges `value` into `existing`, the answer already under the same key.
fn merge_values(existing: &mut Value, value: Value) {
    match (existing, value) {
        (Value::Object(existing), Value::Object(object)) => merge_objects(existing, object),
        (Value::List(existing), Value::List(list)) => {
            for (existing, value) in existing.iter_mut().zip(list) {
                if let (Value::Object(existing), Value::Object(object)) = (existing, value) {
                    merge_objects(existing, object);
                }
            }
        }
        _ => {}
    }
}

/// Merges `object` into `target` key by key. `target` is an object a field answered, built
/// with a hasher of its own, so this hashes as the map does.
fn merge_objects(target: &mut IndexMap<Name, Value>, object: IndexMap<Name, Value>) {
    for (key, value) in object {
        match target.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(value);
            }
            Entry::Occupied(mut slot) => merge_values(slot.get_mut(), value),
        }
    }
}
