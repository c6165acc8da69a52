//! The blog's domain: validated inputs and the operations on tags and posts.
//!
//! Every operation takes any SeaORM connection (`C: ConnectionTrait`, or `TransactionTrait` where it
//! needs a transaction), so the same code runs on a plain SQLite connection, on the LiteFS primary
//! and, through [`sea_orm_litefs::ClusterConnection`], on a replica that forwards its writes.

mod attributes;
mod error;
pub mod highlight;
pub mod input;
pub mod markdown;
mod nesting;
pub mod posts;
pub mod procedures;
pub mod rendered;
pub mod tags;

pub use error::{BlogError, FieldErrors, Unique};

/// The CPU time the calling thread has used. The tests that check a cost grows linearly time
/// with it rather than with a wall clock, so that a machine busy with other work (a build beside
/// the test run) does not count: a thread waiting for a core uses none.
#[cfg(test)]
pub(crate) fn thread_cpu_time() -> std::time::Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a timespec the call may write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// One page of a list, with what a pager needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// 1-based.
    pub page: u64,
    pub per_page: u64,
    pub total_items: u64,
    pub total_pages: u64,
}

impl<T> Page<T> {
    /// The one page of nothing.
    pub fn empty(per_page: u64) -> Self {
        Page {
            items: Vec::new(),
            page: 1,
            per_page,
            total_items: 0,
            total_pages: 1,
        }
    }

    pub fn has_prev(&self) -> bool {
        self.page > 1
    }
    pub fn has_next(&self) -> bool {
        self.page < self.total_pages
    }
}
