//! What a request must pass before it executes (so a refused query runs no SQL): automatic
//! persisted queries resolved, document size, a document that parses, alias and root-field
//! counts, and no mutation over GET. Depth and complexity are async-graphql's own checks
//! (set up in [`crate::schema::configured_schema_builder`]).
//!
//! These run once per request in the HTTP handler rather than as async-graphql extensions:
//! with any extension installed, async-graphql sends *every field* of every response through
//! the extension chain (a registry look-up and a boxed future per extension per field),
//! which cost the nested dashboard query a large share of its CPU.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Request, ServerError, Variables};
use sha2::{Digest, Sha256};

use crate::schema::with_code;

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

fn refused(message: String) -> ServerError {
    with_code(ServerError::new(message, None), "GRAPHQL_VALIDATION_FAILED")
}

/// The mutations that check or hash a password: one HTTP request may run at most one of
/// them (API.md, "Authentication"), so a batch of aliased sign-ups cannot make the server
/// compute hundreds of argon2 hashes.
pub const PASSWORD_MUTATIONS: &[&str] = &["signUp", "logIn", "changePassword", "deleteAccount"];

/// An operation as it will execute, every fragment written out where it is spread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Fields at the operation's root.
    pub root_fields: usize,
    /// Aliased fields, at any depth.
    pub aliases: usize,
    /// Root fields of a mutation that check or hash a password ([`PASSWORD_MUTATIONS`]).
    pub password_operations: usize,
}

/// The operation `operation_name` selects in `document`, or every operation when that is
/// not one of them (the executor refuses such a request; nothing may slip past on the way).
fn selected<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Vec<&'a OperationDefinition> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => vec![&op.node],
        (DocumentOperations::Multiple(ops), Some(name)) if ops.contains_key(name) => {
            vec![&ops[name].node]
        }
        (DocumentOperations::Multiple(ops), _) => ops.values().map(|op| &op.node).collect(),
    }
}

/// The root fields' names of the mutations among the operations `operation_name` selects
/// (`None` when none is a mutation), fragments written out. Call it only on a document within
/// the root-field limit.
pub fn mutation_fields(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<Vec<String>> {
    let operations = selected(document, operation_name);
    let mut walk = Walk::new(document);
    let mut names = Vec::new();
    let mut any = false;
    for op in operations {
        if op.ty == OperationType::Mutation {
            any = true;
            walk.root_names(&op.selection_set.node, &mut names);
        }
    }
    any.then_some(names)
}

/// Counts an operation's fields with its fragments spread, each fragment counted once and
/// remembered (a fragment spread twice in a fragment spread twice… is counted by
/// multiplication, not by walking every copy). Counts saturate instead of overflowing. A
/// cycle of fragments counts as nothing: validation refuses the document anyway.
struct Walk<'a> {
    fragments: &'a HashMap<
        async_graphql::Name,
        async_graphql::Positioned<async_graphql::parser::types::FragmentDefinition>,
    >,
    aliases: HashMap<&'a str, usize>,
    roots: HashMap<&'a str, (usize, usize)>,
    visiting: HashSet<(&'a str, bool)>,
}

impl<'a> Walk<'a> {
    fn new(document: &'a ExecutableDocument) -> Self {
        Walk {
            fragments: &document.fragments,
            aliases: HashMap::new(),
            roots: HashMap::new(),
            visiting: HashSet::new(),
        }
    }

    /// The definition of fragment `name`, unless it is being counted already (a cycle).
    fn enter(&mut self, name: &str, roots: bool) -> Option<(&'a str, &'a SelectionSet)> {
        let (name, definition) = self.fragments.get_key_value(name)?;
        self.visiting
            .insert((name.as_str(), roots))
            .then_some((name.as_str(), &definition.node.selection_set.node))
    }

    /// Aliased fields in `set`, at any depth.
    fn aliases(&mut self, set: &'a SelectionSet) -> usize {
        set.items.iter().fold(0usize, |count, item| {
            count.saturating_add(match &item.node {
                Selection::Field(field) => usize::from(field.node.alias.is_some())
                    .saturating_add(self.aliases(&field.node.selection_set.node)),
                Selection::InlineFragment(inline) => self.aliases(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(known) = self.aliases.get(name) {
                        *known
                    } else if let Some((name, set)) = self.enter(name, false) {
                        let counted = self.aliases(set);
                        self.visiting.remove(&(name, false));
                        self.aliases.insert(name, counted);
                        counted
                    } else {
                        0
                    }
                }
            })
        })
    }

    /// The names of the fields at the level of `set`, inline fragments and spreads written
    /// out (call it only on an operation within the root-field limit: it walks every copy).
    fn root_names(&mut self, set: &'a SelectionSet, names: &mut Vec<String>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => names.push(field.node.name.node.to_string()),
                Selection::InlineFragment(inline) => {
                    self.root_names(&inline.node.selection_set.node, names)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some((name, set)) = self.enter(name, true) {
                        self.root_names(set, names);
                        self.visiting.remove(&(name, true));
                    }
                }
            }
        }
    }

    /// Fields at the level of `set` (inline fragments and spreads written out), and how many
    /// of them are password mutations when `mutation`.
    fn roots(&mut self, set: &'a SelectionSet, mutation: bool) -> (usize, usize) {
        set.items
            .iter()
            .fold((0usize, 0usize), |(fields, passwords), item| {
                let (f, p) = match &item.node {
                    Selection::Field(field) => (
                        1,
                        usize::from(
                            mutation && PASSWORD_MUTATIONS.contains(&field.node.name.node.as_str()),
                        ),
                    ),
                    Selection::InlineFragment(inline) => {
                        self.roots(&inline.node.selection_set.node, mutation)
                    }
                    Selection::FragmentSpread(spread) => {
                        let name = spread.node.fragment_name.node.as_str();
                        if let Some(known) = self.roots.get(name) {
                            *known
                        } else if let Some((name, set)) = self.enter(name, true) {
                            let counted = self.roots(set, mutation);
                            self.visiting.remove(&(name, true));
                            self.roots.insert(name, counted);
                            counted
                        } else {
                            (0, 0)
                        }
                    }
                };
                (fields.saturating_add(f), passwords.saturating_add(p))
            })
    }
}

/// The shape of the operation `operation_name` selects in `document` (or, when that is not
/// one operation, the largest of each count over all of them: the executor refuses such a
/// request, but nothing may slip past the limits on the way).
pub fn shape(document: &ExecutableDocument, operation_name: Option<&str>) -> Shape {
    let operations = selected(document, operation_name);
    let mut walk = Walk::new(document);
    operations
        .into_iter()
        .map(|op| {
            let set = &op.selection_set.node;
            let (root_fields, password_operations) =
                walk.roots(set, op.ty == OperationType::Mutation);
            Shape {
                root_fields,
                aliases: walk.aliases(set),
                password_operations,
            }
        })
        .fold(Shape::default(), |a, b| Shape {
            root_fields: a.root_fields.max(b.root_fields),
            aliases: a.aliases.max(b.aliases),
            password_operations: a.password_operations.max(b.password_operations),
        })
}

impl QueryLimits {
    /// Checks the operation `operation_name` selects in `document` against the limits,
    /// counting it as it will execute ([`shape`]).
    pub fn check(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
    ) -> Result<Shape, ServerError> {
        let shape = shape(document, operation_name);
        if shape.aliases > self.max_aliases {
            return Err(refused(format!(
                "the operation has {} aliases (fragments counted where they are spread); at \
                 most {} are allowed",
                shape.aliases, self.max_aliases
            )));
        }
        if shape.root_fields > self.max_root_fields {
            return Err(refused(format!(
                "the operation has {} root fields (fragments counted where they are spread); \
                 at most {} are allowed",
                shape.root_fields, self.max_root_fields
            )));
        }
        Ok(shape)
    }
}

/// An LRU cache of `size` entries, or `None` for size 0.
fn lru<V>(size: usize) -> Option<Mutex<lru::LruCache<String, V>>> {
    NonZeroUsize::new(size).map(|size| Mutex::new(lru::LruCache::new(size)))
}

/// How many (operation name, variables) pairs a kept document remembers having validated
/// with; the oldest is forgotten first.
const VALIDATED_PER_DOCUMENT: usize = 8;

/// The most variables (roughly, in bytes: see [`variables_fit`]) a request may have for a
/// kept document to remember it: at most 256 documents × 8 requests × 1 KiB, where 64 KiB
/// bodies' variables could otherwise be kept.
const VALIDATED_VARIABLES_BYTES: usize = 1024;

/// Whether `variables` hold at most `budget` bytes, roughly: names, strings and binary
/// values by their length, every other value as 8.
fn variables_fit(variables: &Variables, budget: usize) -> bool {
    use async_graphql::Value;
    fn take(left: &mut usize, size: usize) -> bool {
        left.checked_sub(size).map(|rest| *left = rest).is_some()
    }
    fn fits(value: &Value, left: &mut usize) -> bool {
        match value {
            Value::String(text) => take(left, text.len()),
            Value::Binary(bytes) => take(left, bytes.len()),
            Value::List(items) => take(left, 8) && items.iter().all(|item| fits(item, left)),
            Value::Object(fields) => {
                take(left, 8)
                    && fields
                        .iter()
                        .all(|(name, item)| take(left, name.len()) && fits(item, left))
            }
            _ => take(left, 8),
        }
    }
    let mut left = budget;
    variables
        .iter()
        .all(|(name, value)| take(&mut left, name.len()) && fits(value, &mut left))
}

/// A document kept parsed, and the requests it has passed validation with.
struct Parsed {
    document: ExecutableDocument,
    /// (operation name, variables) of requests of this document that validated.
    validated: Mutex<VecDeque<(Option<String>, Variables)>>,
}

/// Whether `validated` holds a request with this operation name and these variables.
fn holds(
    validated: &VecDeque<(Option<String>, Variables)>,
    operation_name: &Option<String>,
    variables: &Variables,
) -> bool {
    validated
        .iter()
        .any(|(name, values)| name == operation_name && values == variables)
}

/// Admits requests: the checks above, and Apollo's automatic persisted queries.
pub struct Admission {
    limits: QueryLimits,
    /// Query texts by SHA-256 (hex); `None` when APQ is off.
    persisted: Option<Mutex<lru::LruCache<String, String>>>,
    /// Parsed documents by query text; `None` when the cache is off.
    parsed: Option<Mutex<lru::LruCache<String, Arc<Parsed>>>>,
}

/// What [`Admission::admit`] found out about an admitted request.
pub struct Admitted {
    /// How many password mutations the operation runs (see [`PASSWORD_MUTATIONS`]).
    pub password_operations: usize,
    /// The root fields of the mutation the request runs (`None`: it runs none).
    pub mutations: Option<Vec<String>>,
    /// Every operation in the document is a query: it opens no transaction, so it may hold
    /// a connection (see [`crate::db::Held`]).
    pub only_queries: bool,
    /// This exact request (document text, operation name and variables) has passed
    /// async-graphql's validation rules before, so it passes them again: they depend on
    /// nothing else (the schema is fixed). The executor may skip them.
    pub validated: bool,
    /// Where to record that this request validated, when it is not known yet.
    kept: Option<Arc<Parsed>>,
}

/// A request to remember as validated once it has executed without an error.
pub struct Validating {
    kept: Arc<Parsed>,
    operation_name: Option<String>,
    variables: Variables,
}

impl Validating {
    /// Records that the request validated (call it only when its response has no error
    /// without a `path`: a request that failed validation always has one).
    pub fn validated(self) {
        let mut validated = self.kept.validated.lock().expect("not poisoned");
        if holds(&validated, &self.operation_name, &self.variables) {
            return;
        }
        if validated.len() == VALIDATED_PER_DOCUMENT {
            validated.pop_front();
        }
        validated.push_back((self.operation_name, self.variables));
    }
}

impl Admitted {
    /// What to record once `request` (the request admitted) has executed, when its
    /// validation is not known yet, its document is kept, and its variables are small
    /// enough to keep (see [`VALIDATED_VARIABLES_BYTES`]).
    pub fn validating(&self, request: &Request) -> Option<Validating> {
        let kept = self.kept.as_ref().filter(|_| !self.validated)?;
        if !variables_fit(&request.variables, VALIDATED_VARIABLES_BYTES) {
            return None;
        }
        Some(Validating {
            kept: kept.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
        })
    }
}

impl Admission {
    /// Admission with `limits`, an APQ cache of `apq_cache_size` entries (0: APQ off) and a
    /// cache of `parsed_cache_size` parsed documents (0: every request is parsed).
    pub fn new(limits: QueryLimits, apq_cache_size: usize, parsed_cache_size: usize) -> Self {
        Admission {
            limits,
            persisted: lru(apq_cache_size),
            parsed: lru(parsed_cache_size),
        }
    }

    /// Checks `request` (filling in a persisted query's text and parsing the document, which
    /// the executor then reuses), or the error to answer instead of executing it.
    ///
    /// A client sends the same few documents over and over, and parsing one (async-graphql's
    /// `pest` grammar) is a large part of a small query's work. So admitted documents are
    /// kept, parsed, by their exact text: a repeated one is cloned, not parsed. A kept
    /// document also remembers the last few (operation name, variables) it validated with
    /// ([`Validating`]): the same request validates the same way every time. Depth and
    /// complexity are still checked on every request. (`bench/README.md` measures what the
    /// two caches are worth.)
    pub fn admit(&self, request: &mut Request, via_get: bool) -> Result<Admitted, ServerError> {
        self.resolve_persisted(request)?;
        if request.query.len() > self.limits.max_document_bytes {
            return Err(refused(format!(
                "the document has {} bytes; at most {} are allowed",
                request.query.len(),
                self.limits.max_document_bytes
            )));
        }
        let cached = self.parsed.as_ref().and_then(|cache| {
            cache
                .lock()
                .expect("not poisoned")
                .get(&request.query)
                .cloned()
        });
        let hit = cached.is_some();
        let mut validated = false;
        if let Some(kept) = &cached {
            request.set_parsed_query(kept.document.clone());
            validated = holds(
                &kept.validated.lock().expect("not poisoned"),
                &request.operation_name,
                &request.variables,
            );
        }
        let operation_name = request.operation_name.clone();
        let document = request
            .parsed_query()
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))?;
        let shape = self.limits.check(document, operation_name.as_deref())?;
        let only_queries = document
            .operations
            .iter()
            .all(|(_, op)| op.node.ty == OperationType::Query);
        if via_get && !only_queries {
            return Err(with_code(
                ServerError::new("mutations must be sent with POST", None),
                "BAD_REQUEST",
            ));
        }
        let mutations = mutation_fields(document, operation_name.as_deref());
        let mut kept = cached;
        if let (false, Some(cache)) = (hit, &self.parsed) {
            let parsed = Arc::new(Parsed {
                document: document.clone(),
                validated: Mutex::default(),
            });
            cache
                .lock()
                .expect("not poisoned")
                .put(request.query.clone(), parsed.clone());
            kept = Some(parsed);
        }
        Ok(Admitted {
            password_operations: shape.password_operations,
            mutations,
            only_queries,
            validated,
            kept,
        })
    }

    /// Apollo's APQ protocol: `extensions.persistedQuery.sha256Hash` names the query; without
    /// the text, a known hash supplies it and an unknown one answers `PersistedQueryNotFound`
    /// (the client then sends text and hash once); with the text, the hash must match it.
    fn resolve_persisted(&self, request: &mut Request) -> Result<(), ServerError> {
        let Some(persisted) = request.extensions.get("persistedQuery") else {
            return Ok(());
        };
        let Some(cache) = &self.persisted else {
            return Err(with_code(
                ServerError::new("PersistedQueryNotSupported", None),
                "PERSISTED_QUERY_NOT_SUPPORTED",
            ));
        };
        let hash = match persisted {
            async_graphql::Value::Object(fields) => match fields.get("sha256Hash") {
                Some(async_graphql::Value::String(hash)) => hash.to_ascii_lowercase(),
                _ => return Err(bad_persisted("sha256Hash must be a string")),
            },
            _ => return Err(bad_persisted("persistedQuery must be an object")),
        };
        if request.query.is_empty() {
            let known = cache.lock().expect("not poisoned").get(&hash).cloned();
            match known {
                Some(query) => request.query = query,
                None => {
                    return Err(with_code(
                        ServerError::new("PersistedQueryNotFound", None),
                        "PERSISTED_QUERY_NOT_FOUND",
                    ));
                }
            }
        } else {
            let digest = Sha256::digest(request.query.as_bytes());
            let actual: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            if actual != hash {
                return Err(bad_persisted("sha256Hash does not match the query"));
            }
            cache
                .lock()
                .expect("not poisoned")
                .put(hash, request.query.clone());
        }
        Ok(())
    }
}

fn bad_persisted(message: &str) -> ServerError {
    with_code(
        ServerError::new(format!("persistedQuery: {message}"), None),
        "BAD_USER_INPUT",
    )
}

#[cfg(test)]
mod tests {
    use super::{Admission, QueryLimits};

    /// `admit` tells a document of queries (which may hold a connection) from one with a
    /// mutation in it, whichever operation the request picks.
    #[test]
    fn admit_tells_queries_from_mutations() {
        let limits = QueryLimits {
            max_document_bytes: 10_000,
            max_aliases: 10,
            max_root_fields: 10,
        };
        for parsed_cache_size in [0, 8] {
            let admission = Admission::new(limits, 0, parsed_cache_size);
            let admit = |query: &str| {
                admission
                    .admit(&mut async_graphql::Request::new(query), false)
                    .unwrap()
                    .only_queries
            };
            for _ in 0..2 {
                assert!(admit("{ viewer { id } }"));
                assert!(admit("query A { viewer { id } } query B { __typename }"));
                assert!(!admit("mutation { logOut { ok } }"));
                assert!(!admit(
                    "query A { viewer { id } } mutation B { logOut { ok } }"
                ));
            }
        }
    }

    /// A kept document knows a request as validated only after that exact request (its
    /// operation name and variables too) was recorded as validated; a cache of size 0
    /// knows none.
    #[test]
    fn only_a_recorded_request_is_known_as_validated() {
        let limits = QueryLimits {
            max_document_bytes: 10_000,
            max_aliases: 10,
            max_root_fields: 10,
        };
        let document = "query A($n: Int) { viewer { id } } query B { __typename }";
        let request = |name: &str, n: i32| {
            async_graphql::Request::new(document)
                .operation_name(name)
                .variables(async_graphql::Variables::from_json(
                    serde_json::json!({ "n": n }),
                ))
        };
        for cache_size in [0, 8] {
            let admission = Admission::new(limits, 0, cache_size);
            let admit = |mut request: async_graphql::Request| {
                let admitted = admission.admit(&mut request, false).unwrap();
                (admitted.validated, admitted.validating(&request))
            };
            let (validated, validating) = admit(request("A", 1));
            assert!(!validated);
            assert_eq!(validating.is_some(), cache_size > 0);
            // Admitted again before the first one's answer: still unknown.
            assert!(!admit(request("A", 1)).0);
            if let Some(validating) = validating {
                validating.validated();
            }
            let (validated, validating) = admit(request("A", 1));
            assert_eq!(validated, cache_size > 0, "cache {cache_size}");
            assert!(validating.is_none());
            assert!(!admit(request("A", 2)).0, "other variables");
            assert!(!admit(request("B", 1)).0, "another operation");
        }
        // Each document remembers its last VALIDATED_PER_DOCUMENT requests.
        let admission = Admission::new(limits, 0, 8);
        let count = super::VALIDATED_PER_DOCUMENT as i32 + 1;
        for n in 0..count {
            let mut r = request("A", n);
            let admitted = admission.admit(&mut r, false).unwrap();
            admitted.validating(&r).expect("not known yet").validated();
        }
        let known = |n: i32| {
            let mut r = request("A", n);
            admission.admit(&mut r, false).unwrap().validated
        };
        assert!(!known(0), "the oldest is forgotten");
        assert!((1..count).all(known));

        // Large variables are not kept.
        let with = |text: String| {
            async_graphql::Request::new("query C($t: String) { __typename }").variables(
                async_graphql::Variables::from_json(serde_json::json!({ "t": text })),
            )
        };
        let mut r = with("x".repeat(1000));
        let admitted = admission.admit(&mut r, false).unwrap();
        admitted.validating(&r).expect("small enough").validated();
        assert!(
            admission
                .admit(&mut with("x".repeat(1000)), false)
                .unwrap()
                .validated
        );
        let mut r = with("x".repeat(super::VALIDATED_VARIABLES_BYTES));
        let admitted = admission.admit(&mut r, false).unwrap();
        assert!(admitted.validating(&r).is_none(), "too large to keep");
    }

    /// `variables_fit` counts names, strings, and 8 for every other value, in lists and
    /// objects too.
    #[test]
    fn variables_fit_counts_what_they_hold() {
        let fit = |json: serde_json::Value, budget: usize| {
            super::variables_fit(&async_graphql::Variables::from_json(json), budget)
        };
        // "ab" (2) + "xyz" (3)
        assert!(fit(serde_json::json!({ "ab": "xyz" }), 5));
        assert!(!fit(serde_json::json!({ "ab": "xyz" }), 4));
        // "n" (1) + list (8) + 3 numbers (24) + "k" (1) + object (8) + "v" (1) + "w" (1)
        let nested = serde_json::json!({ "n": [1, 2, 3], "k": { "v": "w" } });
        assert!(fit(nested.clone(), 44));
        assert!(!fit(nested, 43));
        assert!(fit(serde_json::json!({}), 0));
    }
}
