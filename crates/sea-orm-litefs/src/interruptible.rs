//! Reads that stop when nobody waits for them any more. A future dropped mid-read (a request's
//! timeout, a client that went away) leaves SQLite running the statement on its connection's
//! thread until it ends by itself: for an expensive query, a core and a connection of the read
//! pool held for nothing. Inside [`interruptible_reads`], a read whose future is dropped is
//! interrupted (`sqlite3_interrupt`) until its statement has ended (see `writer::WatchedRead`). Watching a read costs one more exchange
//! with the connection's thread (about 7 µs in a release build, half again what the smallest
//! read costs), so it is for the requests that may read for long, such as searches, not for
//! every read.

tokio::task_local! {
    static INTERRUPTIBLE: ();
}

/// Runs `work`; a read it makes through a [`crate::ClusterConnection`] (outside a transaction,
/// on this node) is interrupted if the future is dropped before the read ends, and its
/// connection goes back to the pool once the statement has stopped. The read's caller is gone
/// by then, so nobody sees its error. Counted in `reads_abandoned_total`. Reads in tasks `work` spawns are not watched, nor reads through `db.local()`.
pub async fn interruptible_reads<F: Future>(work: F) -> F::Output {
    INTERRUPTIBLE.scope((), work).await
}

/// Whether the current task runs inside [`interruptible_reads`].
pub(crate) fn active() -> bool {
    INTERRUPTIBLE.try_with(|_| ()).is_ok()
}
