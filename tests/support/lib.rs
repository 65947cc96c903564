//! Test support placeholder
