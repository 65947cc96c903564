//! The error a validation returns: which field is wrong and why.

use std::fmt;

/// Bad input, naming the field (as a path such as `mentee.languages[1]`) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Path of the offending field in the request.
    pub field: String,
    /// What is wrong with it, lower case, no trailing punctuation.
    pub reason: String,
}

impl ValidationError {
    /// Returns an error for `field` with the given reason.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ValidationError {}
