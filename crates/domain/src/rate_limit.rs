//! Per-caller token buckets: each caller (an API key id) may send `rate` requests per second
//! on average, with bursts up to `burst`. One caller running out does not slow any other. The
//! broker and the nodes put one in front of their APIs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A caller sent more requests than its rate allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited;

impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rate limit exceeded; retry later")
    }
}

impl std::error::Error for RateLimited {}

/// Token buckets per caller.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Returns a limiter; a `rate` of 0 disables limiting.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `caller`'s bucket, or refuses.
    pub fn admit(&self, caller: &str) -> Result<(), RateLimited> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets
            .entry(caller.to_owned())
            .or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens < 1.0 {
            return Err(RateLimited);
        }
        *tokens -= 1.0;
        Ok(())
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
