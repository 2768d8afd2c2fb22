//! Rate limiting of `logIn`, per username and per client address (governor's keyed GCRA
//! limiters, in memory, per server instance).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ApiError, ApiResult};

/// The client's address, put into each request's context data by the HTTP edge.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// Limits sign-in attempts.
pub struct LoginLimiter {
    per_username: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginLimiter {
    /// `per_username` and `per_address` attempts per minute (0 is treated as 1).
    pub fn new(per_username: u32, per_address: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"));
        LoginLimiter {
            per_username: RateLimiter::keyed(quota(per_username)),
            per_address: RateLimiter::keyed(quota(per_address)),
        }
    }

    /// Counts one attempt for `login` (a username or email, any case) from `address`;
    /// `RATE_LIMITED` when either has used up its quota.
    pub fn attempt(&self, login: &str, address: Option<IpAddr>) -> ApiResult<()> {
        let refused = || {
            ApiError::RateLimited("too many sign-in attempts: wait a minute and try again".into())
        };
        if let Some(address) = address {
            self.per_address
                .check_key(&address)
                .map_err(|_| refused())?;
        }
        self.per_username
            .check_key(&login.trim().to_lowercase())
            .map_err(|_| refused())?;
        // Forget keys that are back to a full quota, so the maps do not grow without bound.
        if self.per_username.len() > 10_000 {
            self.per_username.retain_recent();
        }
        if self.per_address.len() > 10_000 {
            self.per_address.retain_recent();
        }
        Ok(())
    }
}
