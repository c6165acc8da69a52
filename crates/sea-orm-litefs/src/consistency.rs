//! Read your writes across requests and nodes. While a request runs inside [`track_writes`],
//! every write it commits (forwarded or local) records the LiteFS position that includes it, and
//! a forwarded write that committed but did not reach this node within the catch-up bound marks
//! the request stale. The web layer hands the position to the client in a signed cookie (any node
//! that later gets it waits, bounded, until its own database includes it), and says
//! a stale header when the node may not show the request's own write yet (see the `axum` layer).

use std::cell::Cell;

use super::wire::Pos;

/// What the current request wrote, and whether this node may not show it yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// The position of the request's last commit.
    pub pos: Option<Pos>,
    /// A commit of this request had not reached this node when its answer was returned.
    pub stale: bool,
}

tokio::task_local! {
    static WRITTEN: Cell<Written>;
}

/// Runs `work`, returning its output and what it wrote.
pub async fn track_writes<F: Future>(work: F) -> (F::Output, Written) {
    WRITTEN
        .scope(Cell::new(Written::default()), async {
            let output = work.await;
            (output, WRITTEN.with(Cell::get))
        })
        .await
}

/// Notes that the current request committed a write included in `pos`. Positions of one request
/// come from one primary in commit order, so the last one includes the others.
pub(crate) fn record(pos: Pos) {
    let _ = WRITTEN.try_with(|w| {
        w.set(Written {
            pos: Some(pos),
            ..w.get()
        })
    });
}

/// Notes that a write of the current request committed but is not visible on this node yet.
pub(crate) fn record_stale() {
    let _ = WRITTEN.try_with(|w| {
        w.set(Written {
            stale: true,
            ..w.get()
        })
    });
}
