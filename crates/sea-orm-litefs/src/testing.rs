//! Hooks for tests and benchmarks (the `testing` feature): faults injected on a primary, the
//! catch-up wait turned off, and SQLite errors made on demand. Nothing here belongs in production.

use std::sync::Arc;

pub use crate::server::Faults;

impl crate::Builder {
    /// Failures this node injects when it is the primary (see [`Faults`]).
    pub fn faults(mut self, faults: Arc<Faults>) -> Self {
        self.faults = faults;
        self
    }

    /// Whether a forwarded write waits until this node has replicated its commit (read your
    /// writes). Only benchmarks turn it off, to measure what it costs.
    pub fn catch_up(mut self, catch_up: bool) -> Self {
        self.catch_up = catch_up;
        self
    }
}

/// A genuine sqlx error for SQLite's extended result `code` with `message`, as a failed statement
/// would return it.
pub async fn sqlite_error(code: i32, message: &str) -> sqlx::Error {
    crate::sqlite::Scratch::open()
        .await
        .expect("an in-memory SQLite connection opens")
        .error(code, message)
        .await
}
