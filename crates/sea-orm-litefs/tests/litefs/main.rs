//! The crate's own tests on real LiteFS (FUSE mounts, a static lease, node 1 primary), with its own
//! tiny schema and no app: every connection is opened in this process with the crate's
//! [`Builder`](sea_orm_litefs::Builder), the replica forwarding to the primary's RPC.
//!
//! Needs root, FUSE and LiteFS (`LITEFS_BIN`, or the repository's `scripts/install-test-deps`),
//! and the loopback addresses 127.0.0.11-12: one such run per machine at a time.

mod differential;
mod forwarding;
