//! Passwords (argon2id), tokens (HS256 JWTs) and the authenticated viewer.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lru::LruCache;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Checks `password` against a stored PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a random password, checked when the account asked for does not exist, so that
/// `logIn` costs one argon2 verification either way and its timing does not tell who exists.
pub fn dummy_hash() -> String {
    let random: [u8; 16] = rand::random();
    hash_password(&format!("{random:?}")).expect("argon2 hashes a fixed-size input")
}

/// The claims of an orgql token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user's account id, as a string (RFC 7519 makes `sub` a string).
    pub sub: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// Issuer.
    pub iss: String,
    /// Not before (seconds since the epoch); orgql does not set it, but honours it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The user's session generation when the token was issued (see
    /// `user_account.session_generation`): "sign out everywhere" and a password change move
    /// it on, and every token of an earlier one stops working. Tokens without it are of
    /// generation 0.
    #[serde(default)]
    pub sgn: i64,
}

/// How far in the future a token's `iat` or `nbf` may lie (clock skew between the issuing
/// and the checking machine); a token from further ahead was not issued by a sane clock.
pub const CLOCK_SKEW_SECONDS: u64 = 60;

/// Signs and checks tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    /// The current secret first, then previous ones still accepted (key rotation).
    decoding: Vec<DecodingKey>,
    issuer: String,
    ttl_seconds: u64,
    /// Tokens that passed [`TokenKeys::verify`] lately, by their whole text, with their user
    /// and expiry. A client sends the same token with every request, and checking its
    /// signature and parsing its claims again is a large part of a small query's work. A
    /// token gets here only once every check passed, and each use checks its expiry again;
    /// the keys that verified it do not change while the server runs.
    verified: Arc<Mutex<LruCache<Box<str>, Verified>>>,
}

/// A verified token's user, session generation and expiry (seconds since the epoch).
#[derive(Clone, Copy)]
struct Verified {
    session: Session,
    exp: u64,
}

/// What a valid sign-in token says: whose it is and the session generation it belongs to.
/// Whether that generation is still the user's is the database's to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// The user's account id.
    pub user: i64,
    /// The session generation the token was issued in.
    pub generation: i64,
}

/// How many verified tokens [`TokenKeys`] remembers (about 250 bytes each).
const VERIFIED_TOKENS: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

impl TokenKeys {
    /// Keys that sign with `secret` and also accept tokens signed with any of `previous`,
    /// issuing as `issuer` for `ttl_seconds`.
    pub fn new(secret: &[u8], previous: &[&[u8]], issuer: &str, ttl_seconds: u64) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: std::iter::once(secret)
                .chain(previous.iter().copied())
                .map(DecodingKey::from_secret)
                .collect(),
            issuer: issuer.to_owned(),
            ttl_seconds,
            verified: Arc::new(Mutex::new(LruCache::new(VERIFIED_TOKENS))),
        }
    }

    /// A token for the user `user_id` in session generation `generation`.
    pub fn issue(&self, user_id: i64, generation: i64) -> ApiResult<String> {
        let now = unix_now();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.ttl_seconds,
            iss: self.issuer.clone(),
            nbf: None,
            sgn: generation,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The session in `token`, if the token is well-formed, signed by us with HS256 (the
    /// algorithm is pinned: `none` and every other algorithm are refused), unexpired, issued
    /// by us, not issued (or valid from) more than [`CLOCK_SKEW_SECONDS`] in the future, and
    /// with a lifetime (`exp - iat`) no longer than the configured one: a token that says
    /// otherwise was made with a stolen secret or a broken clock, not by `issue`.
    pub fn verify(&self, token: &str) -> Option<Session> {
        // Unexpired as jsonwebtoken counts it (with no leeway): until `exp` has passed.
        let now = unix_now();
        let known = self
            .verified
            .lock()
            .expect("not poisoned")
            .get(token)
            .copied();
        if let Some(known) = known
            && known.exp >= now
        {
            return Some(known.session);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.leeway = 0;
        let verified = self.decoding.iter().find_map(|key| {
            let data = jsonwebtoken::decode::<Claims>(token, key, &validation).ok()?;
            let claims = &data.claims;
            let skewed = now + CLOCK_SKEW_SECONDS;
            if claims.iat > skewed
                || claims.nbf.is_some_and(|nbf| nbf > skewed)
                || claims.exp.saturating_sub(claims.iat) > self.ttl_seconds
            {
                return None;
            }
            let session = Session {
                user: data.claims.sub.parse().ok()?,
                generation: data.claims.sgn,
            };
            Some(Verified {
                session,
                exp: data.claims.exp,
            })
        })?;
        let mut known = self.verified.lock().expect("not poisoned");
        known.put(token.into(), verified);
        Some(verified.session)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The prefix of every API token's secret.
pub const API_TOKEN_PREFIX: &str = "orgql_pat_";

/// A new API token: its secret (`orgql_pat_` and 43 base64url characters: 32 bytes from
/// `rand`'s thread-local CSPRNG, ChaCha seeded by the operating system), shown once, and the
/// SHA-256 of it that is stored.
pub fn new_api_token() -> (String, String) {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    let secret = format!(
        "{API_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = api_token_hash(&secret);
    (secret, hash)
}

/// The SHA-256 of an API token's secret, in lowercase hex: what is stored and looked up.
pub fn api_token_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether two hashes are equal, in a time that does not depend on where they differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What the `Authorization` header presents, before the database has a say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    /// No header.
    Nothing,
    /// A sign-in token that verified.
    Session(Session),
    /// An API token: the SHA-256 of its secret.
    ApiToken(String),
}

/// What an `Authorization` value presents: nothing without one; a sign-in token that
/// verifies, or an API token (which only the database can judge); `None` (refused, never
/// anonymous) for anything else. RFC 7235: the scheme is case-insensitive, followed by one
/// or more spaces.
pub fn presented_in(authorization: Option<&str>, keys: &TokenKeys) -> Option<Presented> {
    let Some(value) = authorization else {
        return Some(Presented::Nothing);
    };
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    if token.starts_with(API_TOKEN_PREFIX) {
        return Some(Presented::ApiToken(api_token_hash(token)));
    }
    keys.verify(token).map(Presented::Session)
}

/// How a signed-in request is signed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A sign-in token (a person).
    Session,
    /// An API token.
    ApiToken {
        /// The token's id.
        id: i64,
        /// Its `READ` scope.
        can_read: bool,
        /// Its `WRITE` scope.
        can_write: bool,
        /// The organization it is restricted to, if any.
        organization: Option<i64>,
    },
}

/// Who is asking: put into every request's context data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// No token was sent.
    Anonymous,
    /// A valid token for this user.
    User {
        /// The user's account id.
        id: i64,
        /// How they signed in.
        via: Via,
    },
}

impl Viewer {
    /// The signed-in user's id, or `UNAUTHENTICATED`; also for a token restricted to an
    /// organization, which is anonymous outside it: where a whole-account question is asked
    /// (`viewer`, the user's own settings), such a token answers as nobody.
    pub fn require(&self) -> ApiResult<i64> {
        self.user_id().ok_or_else(ApiError::sign_in_required)
    }

    /// The signed-in user's id, unless there is none or the token is restricted to an
    /// organization (see [`Viewer::require`]).
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Viewer::User { id, via } if via.organization().is_none() => Some(*id),
            _ => None,
        }
    }

    /// The signed-in user's id, when they act on something the account `owner` owns (or on
    /// `owner` itself): any token but one restricted to another organization.
    pub fn user_id_within(&self, owner: i64) -> Option<i64> {
        match self {
            Viewer::User { id, via } if crate::policy::reaches(via.organization(), owner) => {
                Some(*id)
            }
            _ => None,
        }
    }

    /// The signed-in user, for a mutation (see [`Actor`]); `UNAUTHENTICATED` without one.
    pub fn actor(&self) -> ApiResult<Actor> {
        match self {
            Viewer::User { id, via } => Ok(Actor {
                user: *id,
                within: via.organization(),
            }),
            Viewer::Anonymous => Err(ApiError::sign_in_required()),
        }
    }

    /// The signed-in user's id, whatever their token reaches (for conditions that apply
    /// the restriction themselves, such as [`crate::policy::visible_datasets`]).
    pub fn signed_in(&self) -> Option<i64> {
        match self {
            Viewer::User { id, .. } => Some(*id),
            Viewer::Anonymous => None,
        }
    }

    /// How the viewer signed in, if they did.
    pub fn via(&self) -> Option<Via> {
        match self {
            Viewer::User { via, .. } => Some(*via),
            Viewer::Anonymous => None,
        }
    }
}

impl Via {
    /// The organization an API token is restricted to.
    pub fn organization(&self) -> Option<i64> {
        match self {
            Via::Session => None,
            Via::ApiToken { organization, .. } => *organization,
        }
    }
}

/// Who performs a mutation: the signed-in user, and the one organization an API token
/// restricts them to (outside it they are anonymous).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The user's account id.
    pub user: i64,
    /// The organization the token is restricted to, if any.
    pub within: Option<i64>,
}

impl Actor {
    /// User `user`, unrestricted (a person signed in, or the server itself acting for them).
    pub fn user(user: i64) -> Self {
        Actor { user, within: None }
    }

    /// The user, acting on something the account `owner` owns (or on `owner` itself);
    /// `UNAUTHENTICATED` where a restricted token is anonymous.
    pub fn on(&self, owner: i64) -> ApiResult<i64> {
        if crate::policy::reaches(self.within, owner) {
            Ok(self.user)
        } else {
            Err(outside_its_organization())
        }
    }

    /// The user, acting on their own account as a whole (creating an organization,
    /// their own datasets): `UNAUTHENTICATED` for a token restricted to an organization.
    pub fn as_themself(&self) -> ApiResult<i64> {
        match self.within {
            Some(_) => Err(outside_its_organization()),
            None => Ok(self.user),
        }
    }
}

fn outside_its_organization() -> ApiError {
    ApiError::Unauthenticated("this API token is restricted to one organization")
}

/// How many argon2 computations may run at once: one per core. Each is CPU-bound and works
/// in a 19 MiB buffer, so more at once would only queue on the cores while holding more
/// memory (unbounded, a burst of sign-ins grew the process by hundreds of MiB) and would let
/// a flood of `logIn` calls starve everything else.
fn argon2_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// Runs an argon2 computation off the async runtime, at most one per core at a time.
async fn with_argon2_slot<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    let _slot = argon2_slots().acquire().await.map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)
}

/// [`hash_password`] off the async runtime (argon2 is deliberately slow).
pub async fn hash_password_off_thread(password: String) -> ApiResult<String> {
    with_argon2_slot(move || hash_password(&password)).await?
}

/// [`verify_password`] off the async runtime.
pub async fn verify_password_off_thread(password: String, hash: String) -> ApiResult<bool> {
    with_argon2_slot(move || verify_password(&password, &hash)).await
}

#[cfg(test)]
mod tests {
    use super::{TokenKeys, Verified, unix_now};

    fn keys() -> TokenKeys {
        TokenKeys::new(
            b"a-test-secret-of-thirty-two-bytes!",
            &[],
            "orgql-test",
            3600,
        )
    }

    #[test]
    fn a_remembered_token_answers_its_user_and_a_tampered_one_is_still_refused() {
        let keys = keys();
        let token = keys.issue(42, 3).unwrap();
        let session = super::Session {
            user: 42,
            generation: 3,
        };
        assert_eq!(keys.verify(&token), Some(session));
        assert_eq!(
            keys.verify(&token),
            Some(session),
            "the second time, from memory"
        );
        let mut tampered = token.clone();
        tampered.pop();
        assert_eq!(keys.verify(&tampered), None);
        assert_eq!(keys.verify(&format!("{token}x")), None);
        let other = TokenKeys::new(
            b"another-secret-of-thirty-two-byte",
            &[],
            "orgql-test",
            3600,
        );
        assert_eq!(other.verify(&token), None, "memory is per set of keys");
    }

    #[test]
    fn a_remembered_token_past_its_expiry_is_checked_again() {
        let keys = keys();
        let token = keys.issue(7, 0).unwrap();
        // Remembered as expired (and for another user): the memory is not trusted past the
        // expiry, and the token itself is checked again.
        let expired = Verified {
            session: super::Session {
                user: 8,
                generation: 0,
            },
            exp: unix_now() - 1,
        };
        keys.verified
            .lock()
            .unwrap()
            .put(token.as_str().into(), expired);
        assert_eq!(keys.verify(&token).map(|s| s.user), Some(7));
    }

    #[test]
    fn an_expired_token_is_refused_even_after_it_was_remembered() {
        let keys = TokenKeys::new(b"a-test-secret-of-thirty-two-bytes!", &[], "orgql-test", 0);
        let token = keys.issue(9, 0).unwrap();
        assert_eq!(keys.verify(&token).map(|s| s.user), Some(9));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(keys.verify(&token), None);
    }
}
