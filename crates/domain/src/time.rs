//! Units of time. Every timestamp in Tandem is Unix milliseconds (an `i64`).

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
