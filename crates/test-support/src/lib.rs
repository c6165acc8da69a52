//! What the workspace's tests and benchmark share (not published):
//!
//! - [`cluster`]: a real LiteFS cluster on one machine (FUSE mounts, static lease, loopback
//!   addresses of its own per process, see [`cluster::ip`]), with or without the blog's app on every node, and process faults
//!   (kill -9, SIGSTOP, restarts with another primary);
//! - [`toxiproxy`]: network faults between each node and the primary, through Toxiproxy;
//! - [`packets`]: a delay of every packet of some ports, by the kernel (NFQUEUE), so that TCP
//!   itself sees the distance (the benchmark's packet mode);
//! - [`browser`]: headless Chromium driven with fantoccini, and the admin flow run in it.
//!
//! The tools they need (LiteFS, Toxiproxy, Chromium) are installed by the repository's
//! `scripts/install-test-deps`, which they call when `LITEFS_BIN` / `TOXIPROXY_BIN` are unset.

pub mod browser;
pub mod cluster;
pub mod locks;
pub mod packets;
pub mod toxiproxy;

use std::path::PathBuf;

/// The repository's `scripts/install-test-deps`.
fn install_test_deps() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-test-deps")
}

/// The `blog` binary cargo built beside the running test or benchmark (`target/<profile>/blog`;
/// the test itself runs from `target/<profile>/deps/`), or `BLOG_BIN`.
pub fn blog_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("BLOG_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary runs from target/<profile>/deps");
    let bin = profile_dir.join("blog");
    assert!(
        bin.exists(),
        "{} is missing: cargo builds it for the blog package's tests and benchmarks (or set BLOG_BIN)",
        bin.display()
    );
    bin
}
