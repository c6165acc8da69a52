//! Read your writes across requests and nodes. While a request runs inside [`track_writes`],
//! every write it commits (forwarded or local) records the LiteFS TXID that includes it. The web
//! layer hands that TXID to the client in a signed cookie, and any node that later gets the
//! cookie waits, bounded, until its own LiteFS position has reached it.

use std::cell::Cell;

tokio::task_local! {
    /// The highest TXID written by the current request; 0 for none.
    static WRITTEN: Cell<u64>;
}

/// Runs `work`, returning its output and the TXID of the last write it committed, if any.
pub async fn track_writes<F: Future>(work: F) -> (F::Output, Option<u64>) {
    WRITTEN
        .scope(Cell::new(0), async {
            let output = work.await;
            let txid = WRITTEN.with(Cell::get);
            (output, (txid > 0).then_some(txid))
        })
        .await
}

/// Notes that the current request committed a write included in `txid`.
pub(crate) fn record(txid: u64) {
    let _ = WRITTEN.try_with(|written| written.set(written.get().max(txid)));
}

/// Whether the current task is inside [`track_writes`].
pub(crate) fn tracking() -> bool {
    WRITTEN.try_with(|_| ()).is_ok()
}
