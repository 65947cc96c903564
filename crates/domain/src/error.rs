//! What a validation returns when input is bad: every wrong field of the request, each with why.
//!
//! A validator checks all fields and collects a [`FieldViolation`] for each wrong one into
//! [`Violations`], so that a caller fixes a request in one go instead of one field per attempt.
//! The services send them as `google.rpc.BadRequest` details, one field violation per field.

use std::fmt;

/// One wrong field: its path in the request (such as `mentee.goals[1].topic`) and what is wrong
/// with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the offending field in the request.
    pub field: String,
    /// What is wrong with it, lower case, no trailing punctuation.
    pub description: String,
}

impl FieldViolation {
    /// Returns the violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

impl std::error::Error for FieldViolation {}

/// The violations found in one request, in the order of its fields.
///
/// A validator starts with [`Violations::new`], records what each check finds
/// ([`check`](Self::check), [`add`](Self::add)) and ends with [`finish`](Self::finish) or
/// [`into_result`](Self::into_result), which fail when anything was recorded. As an error it
/// reads `field: description; field: description`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Returns an empty collection, for a validator to record into.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the single violation of `field`.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self(vec![FieldViolation::new(field, description)])
    }

    /// Records a violation of `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Returns the value of a check that passed; records what a failed check found and returns
    /// `None`.
    pub fn check<T>(&mut self, result: Result<T, impl Into<Violations>>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(found) => {
                self.0.extend(found.into().0);
                None
            }
        }
    }

    /// Returns `Ok` when nothing was recorded, else these violations.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Returns what `build` makes of the checked values when nothing was recorded, else these
    /// violations. `build` runs only when every check passed, so each value it takes from
    /// [`check`](Self::check) is there; were one missing all the same, the request is refused
    /// as a whole rather than half-read.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Self> {
        self.into_result()?;
        build().ok_or_else(|| Self::one("request", "is invalid"))
    }

    /// Returns whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns how many violations were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns the violations in the order they were recorded.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldViolation> {
        self.0.iter()
    }

    /// Returns the paths of the wrong fields, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|v| v.field.as_str()).collect()
    }

    /// Returns whether a violation of `field` was recorded.
    pub fn names(&self, field: &str) -> bool {
        self.0.iter().any(|v| v.field == field)
    }
}

impl From<FieldViolation> for Violations {
    fn from(violation: FieldViolation) -> Self {
        Self(vec![violation])
    }
}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a FieldViolation;
    type IntoIter = std::slice::Iter<'a, FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Violations {
    type Item = FieldViolation;
    type IntoIter = std::vec::IntoIter<FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("invalid request");
        }
        for (i, violation) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            violation.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_violation_in_order() {
        let mut found = Violations::new();
        assert_eq!(found.check(Ok::<_, FieldViolation>(3)), Some(3));
        found.add("mentee.region", "invalid region \"XX-YY\"");
        assert_eq!(
            found.check(Err::<u32, _>(FieldViolation::new(
                "mentee.languages[0]",
                "unknown language code \"xx\""
            ))),
            None
        );
        assert_eq!(found.fields(), ["mentee.region", "mentee.languages[0]"]);
        assert!(found.names("mentee.region"));
        let err = found.finish(|| Some(())).expect_err("two violations");
        assert_eq!(
            err.to_string(),
            "mentee.region: invalid region \"XX-YY\"; mentee.languages[0]: unknown language code \"xx\""
        );
    }

    #[test]
    fn one_violation_reads_as_before() {
        assert_eq!(
            Violations::one("mentor.capacity", "must be 1 to 10").to_string(),
            "mentor.capacity: must be 1 to 10"
        );
        assert_eq!(Violations::new().finish(|| Some(7)), Ok(7));
    }
}
