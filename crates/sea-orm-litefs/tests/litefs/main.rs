//! The crate's own tests on real LiteFS (FUSE mounts, a static lease, node 1 primary), with its own
//! tiny schema and no app: every connection is opened in this process with the crate's
//! [`Builder`](sea_orm_litefs::Builder), the replica forwarding to the primary's RPC.
//!
//! Needs root, FUSE and LiteFS (`LITEFS_BIN`, or the repository's `scripts/install-test-deps`),
//! Each test process uses loopback addresses of its own (127.A.B.11-12), so runs may share a
//! machine.

mod differential;
mod forwarding;
