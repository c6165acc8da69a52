//! POSIX record locks as another process would meet them.

use std::os::fd::AsRawFd;

/// What [`lock_met`] says of a read lock (SQLite's shared locks are read locks).
pub const READ_LOCK: i32 = libc::F_RDLCK;

/// The lock that a write lock on byte `at` of `file` would meet: `F_RDLCK`, `F_WRLCK` or
/// `F_UNLCK`. An open file description lock (`F_OFD_GETLK`) conflicts with this process's own
/// POSIX locks, as SQLite's are, so a test can see the locks its own SQLite connections hold.
/// Keep `file` open while they matter: closing any descriptor of a file drops every POSIX lock
/// the process holds on it.
pub fn lock_met(file: &std::fs::File, at: i64) -> i32 {
    // SAFETY: a plain fcntl query on an open descriptor with a valid, zero-initialised `flock`.
    let mut query: libc::flock = unsafe { std::mem::zeroed() };
    query.l_type = libc::F_WRLCK as _;
    query.l_whence = libc::SEEK_SET as _;
    query.l_start = at;
    query.l_len = 1;
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut query) };
    assert_eq!(rc, 0, "F_OFD_GETLK: {}", std::io::Error::last_os_error());
    i32::from(query.l_type)
}
