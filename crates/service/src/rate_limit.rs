//! Per-caller rate limits: each caller (an API key id) may send `rate` requests per second on
//! average, with bursts up to `burst`. One caller running out does not slow any other. The
//! broker and the nodes put one in front of their APIs ([`crate::Gate`]).
//!
//! The buckets are `governor`'s keyed GCRA limiter: one atomic word per caller, no lock held
//! across callers.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota};

/// A caller sent more requests than its rate allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited;

impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rate limit exceeded; retry later")
    }
}

impl std::error::Error for RateLimited {}

/// Rate limits per caller.
pub struct RateLimiter {
    /// `None` when limiting is off.
    buckets: Option<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("enabled", &self.buckets.is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// Returns a limiter; a `rate` of 0 disables limiting, a `burst` of 0 means 1.
    pub fn new(rate: u32, burst: u32) -> Self {
        let buckets = NonZeroU32::new(rate).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { buckets }
    }

    /// Returns a limiter of `rate` requests per minute per caller with bursts up to `burst`,
    /// for rare calls such as enrolment; a `rate` of 0 disables limiting.
    pub fn per_minute(rate: u32, burst: u32) -> Self {
        let buckets = NonZeroU32::new(rate).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            governor::RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        Self { buckets }
    }

    /// Takes one request of `caller`'s allowance, or refuses.
    pub fn admit(&self, caller: &str) -> Result<(), RateLimited> {
        match &self.buckets {
            None => Ok(()),
            Some(buckets) => buckets
                .check_key(&caller.to_owned())
                .map_err(|_| RateLimited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_running_out_does_not_slow_another() {
        let limiter = RateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.admit("k1").is_ok());
        }
        assert_eq!(limiter.admit("k1"), Err(RateLimited));
        assert!(limiter.admit("k2").is_ok());
    }

    #[test]
    fn a_rate_of_zero_never_refuses() {
        let limiter = RateLimiter::new(0, 1);
        for _ in 0..1000 {
            assert!(limiter.admit("k").is_ok());
        }
    }
}
