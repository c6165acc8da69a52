//! The `blog` binary as an operator runs it, output piped (not a terminal): `blog migrate`
//! and its `status` / `down`, `DATABASE_URL`, and the logs (migrations visible at info, one
//! access-log line per request, no colour codes).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How long a served binary has to print an expected line.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// The first line from `lines` containing `needle`, waiting at most [`LINE_TIMEOUT`]: a missing
/// line fails the test rather than hanging it.
fn line_containing(lines: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + LINE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line containing {needle:?} within {LINE_TIMEOUT:?}"),
        }
    }
}

fn scratch_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("blog-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("blog.db")
}

/// `blog` with a clean environment for what it reads, and the given variables.
fn blog(env: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_blog"));
    command.args(args);
    for name in [
        "DATABASE_URL",
        "BLOG_DATABASE",
        "RUST_LOG",
        "BLOG_LITEFS_DIR",
        "NO_COLOR",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn run(env: &[(&str, String)], args: &[&str]) -> String {
    let output = blog(env, args).output().expect("blog runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "blog {args:?}: {text}");
    text
}

#[test]
fn migrate_up_status_down_with_logs_at_info_and_no_colours() {
    let db = scratch_db("migrate");
    let env = [("BLOG_DATABASE", db.display().to_string())];
    let up = run(&env, &["migrate"]);
    assert!(
        up.contains("Applying migration 'm20261126_000001_create_tags_posts'"),
        "{up}"
    );
    assert!(
        up.contains("Applying migration 'm20261128_000001_posts_search'"),
        "{up}"
    );
    assert!(
        !up.contains('\u{1b}'),
        "no ANSI escape codes off a terminal: {up:?}"
    );

    let status = run(&env, &["migrate", "status"]);
    assert!(status.contains("m20261128_000001_posts_search"), "{status}");
    assert!(
        status.contains("Applied") && !status.contains("Pending"),
        "{status}"
    );

    let down = run(&env, &["migrate", "down"]);
    assert!(
        down.contains("Rolling back migration 'm20261130_000001_post_slugs'"),
        "{down}"
    );
    let status = run(&env, &["migrate", "status"]);
    assert!(status.contains("Pending"), "{status}");
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn database_url_names_the_database() {
    let db = scratch_db("database-url");
    let env = [(
        "DATABASE_URL",
        format!("sqlite://{}?mode=rwc", db.display()),
    )];
    let up = run(&env, &["migrate"]);
    assert!(up.contains(&format!("database: {}", db.display())), "{up}");
    assert!(db.exists(), "the file in DATABASE_URL was created");
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

/// The served binary writes one `served` line per request, with everything an operator greps for.
#[test]
fn one_access_log_line_per_request() {
    let db = scratch_db("access-log");
    let mut child = blog(
        &[
            ("BLOG_DATABASE", db.display().to_string()),
            ("BLOG_ADMIN_PASSWORD", "a-long-enough-admin-password".into()),
        ],
        &["--listen", "127.0.0.1:0"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("blog serves");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let addr = line_containing(&lines, "Blog listening on http://")
        .trim_start_matches("Blog listening on http://")
        .trim_end_matches('/')
        .to_owned();

    let status = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        std::io::Write::write_all(
            &mut stream,
            b"GET /tags?x=1 HTTP/1.1\r\nHost: blog\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
        response.lines().next().unwrap_or_default().to_owned()
    })
    .join()
    .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");

    let served = std::panic::catch_unwind(|| line_containing(&lines, "served"));
    let _ = child.kill();
    let _ = child.wait();
    let served = served.expect("an access-log line");
    assert!(served.contains(" INFO "), "{served}");
    for part in [
        "method=GET",
        "path=/tags",
        "status=200",
        "latency_ms=",
        "request_id=",
    ] {
        assert!(served.contains(part), "no {part} in {served:?}");
    }
    assert!(!served.contains("x=1"), "no query string: {served}");
    assert!(!served.contains('\u{1b}'), "no colours: {served:?}");
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

/// What `blog ... --help` prints, whatever its exit status.
fn help(args: &[&str]) -> String {
    let output = blog(&[], args).output().expect("blog runs");
    assert!(output.status.success(), "blog {args:?} --help failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `blog migrate --help` (and its actions') lists the options migrating reads, and none of those
/// only serving reads; `blog --help` and `blog serve --help` list every option.
#[test]
fn migrate_help_lists_only_what_migrate_uses() {
    const MIGRATE: [&str; 5] = [
        "--database",
        "--litefs-dir",
        "--litefs-api",
        "--cluster-secret",
        "--log-format",
    ];
    const SERVE_ONLY: [&str; 20] = [
        "--listen",
        "--site-title",
        "--site-description",
        "--node-name",
        "--admin-password",
        "--session-secret",
        "--public-url",
        "--client-ip-header",
        "--metrics-listen",
        "--header-read-timeout-ms",
        "--shutdown-grace-ms",
        "--max-connections",
        "--max-connections-per-client",
        "--rpc-listen",
        "--primary-rpc",
        "--forward-timeout-ms",
        "--remote-tx-lease-ms",
        "--search-timeout-ms",
        "--request-timeout-ms",
        "--steps",
    ];
    for args in [
        &["migrate", "--help"][..],
        &["migrate", "up", "--help"],
        &["migrate", "status", "--help"],
        &["migrate", "down", "--help"],
    ] {
        let text = help(args);
        for option in MIGRATE {
            assert!(
                text.contains(option),
                "blog {args:?} lacks {option}: {text}"
            );
        }
        for option in SERVE_ONLY {
            if option == "--steps" && args[1] == "down" {
                continue;
            }
            assert!(
                !text.contains(option),
                "blog {args:?} lists {option}: {text}"
            );
        }
    }
    for args in [&["--help"][..], &["serve", "--help"]] {
        let text = help(args);
        for option in MIGRATE.iter().chain(&SERVE_ONLY[..17]) {
            assert!(
                text.contains(option),
                "blog {args:?} lacks {option}: {text}"
            );
        }
    }
}

/// `migrate`'s options go before or after it (and its action); serving's options are refused
/// after `migrate`, with a message, rather than taken and ignored.
#[test]
fn migrate_options_go_before_or_after_it() {
    let db = scratch_db("migrate-options");
    let path = db.display().to_string();
    let up = run(&[], &["migrate", "--database", &path]);
    assert!(up.contains(&format!("database: {path}")), "{up}");
    for args in [
        &["migrate", "status", "--database", &path][..],
        &["--database", &path, "migrate", "status"],
    ] {
        let status = run(&[], args);
        assert!(
            status.contains("Applied") && !status.contains("Pending"),
            "{args:?}: {status}"
        );
    }
    let output = blog(
        &[],
        &["migrate", "--database", &path, "--listen", "127.0.0.1:1"],
    )
    .output()
    .expect("blog runs");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "migrate took --listen: {text}");
    assert!(text.contains("--listen"), "{text}");
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

/// `BLOG_SEARCH_TIMEOUT_MS` is from 1 to 29000 ms, under a request's own bound of 30 s (review
/// two found 30000 accepted, though the request's bound always came first): 0 would stop every
/// search, and more would never stop one with its own answer; either is refused saying so.
#[test]
fn a_search_timeout_is_within_a_requests_bound() {
    use blog::config::Cli;
    let parsed = |ms: &str| {
        <Cli as clap::Parser>::try_parse_from(["blog", "--search-timeout-ms", ms])
            .map(|cli| cli.config.search_timeout)
            .map_err(|e| e.to_string())
    };
    assert_eq!(parsed("1"), Ok(std::time::Duration::from_millis(1)));
    assert_eq!(parsed("29000"), Ok(std::time::Duration::from_secs(29)));
    for refused in ["0", "29001", "30000", "5s"] {
        let err = parsed(refused).expect_err(refused);
        assert!(err.contains("--search-timeout-ms"), "{refused}: {err}");
    }
    assert!(parsed("0").unwrap_err().contains("1 to 29000"));
    let default = <Cli as clap::Parser>::try_parse_from(["blog"]).unwrap();
    assert_eq!(
        default.config.search_timeout,
        std::time::Duration::from_secs(5)
    );
}

/// Serving's options reach `blog serve` given before it as well as after, as they did when
/// every option was global.
#[test]
fn serve_options_go_before_or_after_serve() {
    use blog::config::{Cli, Command};
    let serve_config = |args: &[&str]| match <Cli as clap::Parser>::try_parse_from(args)
        .expect("parses")
        .command
    {
        Some(Command::Serve(config)) => *config,
        other => panic!("{args:?} gave {other:?}"),
    };
    for args in [
        &[
            "blog",
            "--listen",
            "127.0.0.1:1234",
            "--database",
            "x.db",
            "serve",
        ][..],
        &[
            "blog",
            "serve",
            "--listen",
            "127.0.0.1:1234",
            "--database",
            "x.db",
        ],
        &[
            "blog",
            "--database",
            "x.db",
            "serve",
            "--listen",
            "127.0.0.1:1234",
        ],
    ] {
        let config = serve_config(args);
        assert_eq!(config.listen.port(), 1234, "{args:?}");
        assert_eq!(config.database, std::path::Path::new("x.db"), "{args:?}");
    }
    // The one after `serve` wins, as for any option given twice.
    let config = serve_config(&["blog", "--site-title", "A", "serve", "--site-title", "B"]);
    assert_eq!(config.site_title, "B");
}

/// `blog serve` with `env`, expected to refuse to start: it exits with status 1 (an error, not a
/// panic, nor clap's usage error), before it creates the database. Returns what it printed on
/// stderr. A blog that starts instead fails the test as soon as it says it listens.
fn refused_start(what: &str, env: &[(&str, String)]) -> String {
    let Err((status, stderr, created)) = start_outcome(what, env) else {
        panic!("{what}: blog started");
    };
    assert_eq!(status.code(), Some(1), "{what}: {status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(!created, "{what}: the database was created: {stderr}");
    stderr
}

/// A remote-transaction lease at or above the forward timeout, or either of them 0, given through
/// the environment: the blog says which settings, their values and what to do, and exits 1.
#[test]
fn forwarding_limits_that_cannot_work_are_refused_at_start() {
    let ms = |v: u64| v.to_string();
    for (what, env, words) in [
        (
            "lease equal to the timeout",
            vec![
                ("BLOG_FORWARD_TIMEOUT_MS", ms(2000)),
                ("BLOG_REMOTE_TX_LEASE_MS", ms(2000)),
            ],
            &[
                "BLOG_REMOTE_TX_LEASE_MS (2000 ms)",
                "BLOG_FORWARD_TIMEOUT_MS (2000 ms)",
            ][..],
        ),
        (
            "lease above the timeout",
            vec![
                ("BLOG_FORWARD_TIMEOUT_MS", ms(1000)),
                ("BLOG_REMOTE_TX_LEASE_MS", ms(3000)),
            ],
            &[
                "BLOG_REMOTE_TX_LEASE_MS (3000 ms)",
                "BLOG_FORWARD_TIMEOUT_MS (1000 ms)",
            ],
        ),
        (
            "lease set at a timeout below the default lease",
            vec![
                ("BLOG_FORWARD_TIMEOUT_MS", ms(1000)),
                ("BLOG_REMOTE_TX_LEASE_MS", ms(1000)),
            ],
            &[
                "BLOG_REMOTE_TX_LEASE_MS (1000 ms)",
                "BLOG_FORWARD_TIMEOUT_MS (1000 ms)",
            ],
        ),
        (
            "timeout 0",
            vec![("BLOG_FORWARD_TIMEOUT_MS", ms(0))],
            &["BLOG_FORWARD_TIMEOUT_MS is 0"],
        ),
        (
            "lease 0",
            vec![("BLOG_REMOTE_TX_LEASE_MS", ms(0))],
            &["BLOG_REMOTE_TX_LEASE_MS is 0"],
        ),
    ] {
        let stderr = refused_start(what, &env);
        for word in words {
            assert!(stderr.contains(word), "{what}: {stderr:?} lacks {word:?}");
        }
    }
}

/// Only the forward timeout set, at or below the lease's default (2000 ms): the lease not set
/// follows it (half of it), so the blog starts. (Premise changed: this was refused, as the default
/// lease was 2000 whatever the timeout; a lease set explicitly at or above the timeout still is,
/// above.)
#[test]
fn a_forward_timeout_set_alone_at_or_below_the_default_lease_starts() {
    for timeout in [2000u64, 1000, 1] {
        let what = format!("timeout {timeout} alone");
        let env = [("BLOG_FORWARD_TIMEOUT_MS", timeout.to_string())];
        if let Err((status, stderr, _)) = start_outcome(&what, &env) {
            panic!("{what}: {status}: {stderr}");
        }
    }
}

/// How `blog serve` with `env` ended up: `Ok` once it says it listens (then it is stopped), else
/// its exit status and stderr, and whether the database file was created meanwhile.
fn start_outcome(
    what: &str,
    env: &[(&str, String)],
) -> Result<(), (std::process::ExitStatus, String, bool)> {
    let db = scratch_db(&format!("outcome-{}", what.replace(' ', "-")));
    let mut env = env.to_vec();
    env.push(("BLOG_DATABASE", db.display().to_string()));
    env.push(("BLOG_LISTEN", "127.0.0.1:0".to_owned()));
    let mut child = blog(&env, &["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("blog runs");
    let stdout = child.stdout.take().unwrap();
    let (lines, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + LINE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let listening = receive
            .recv_timeout(Duration::from_millis(50))
            .is_ok_and(|line| line.contains("Blog listening"));
        if listening {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(db.parent().unwrap());
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: neither listening nor exited within {LINE_TIMEOUT:?}");
        }
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let created = db.exists();
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
    Err((status, stderr, created))
}

/// Review: a lease below the forward timeout, both above 0, is what `--help` and
/// docs/reference.md call valid. With a lease above 30 s (the cluster crate's default
/// remote-transaction lifetime, which the blog has no setting for), the blog must start, or be
/// refused in its own settings' names, as the other forwarding limits are.
#[test]
fn review_a_lease_above_30_s_below_the_timeout_starts_or_is_refused_in_the_blogs_terms() {
    let ms = |v: u64| v.to_string();
    for (lease, timeout) in [(30_001, 60_000), (45_000, 45_001)] {
        let what = format!("lease {lease} timeout {timeout}");
        let env = [
            ("BLOG_FORWARD_TIMEOUT_MS", ms(timeout)),
            ("BLOG_REMOTE_TX_LEASE_MS", ms(lease)),
        ];
        if let Err((status, stderr, created)) = start_outcome(&what, &env) {
            assert_eq!(status.code(), Some(1), "{what}: {status}: {stderr}");
            assert!(
                stderr.contains("BLOG_REMOTE_TX_LEASE_MS")
                    && !stderr.contains("remote_transaction_max_lifetime"),
                "{what}: refused in terms the operator cannot set: {stderr}"
            );
            assert!(!created, "{what}: the database was created: {stderr}");
        }
    }
    // The edge that does start: a lease of exactly 30 s.
    let env = [
        ("BLOG_FORWARD_TIMEOUT_MS", ms(30_001)),
        ("BLOG_REMOTE_TX_LEASE_MS", ms(30_000)),
    ];
    if let Err((status, stderr, _)) = start_outcome("lease 30000", &env) {
        panic!("lease 30000 timeout 30001: {status}: {stderr}");
    }
}

/// Review: a forward timeout too big for the cluster layer's use of it (SQLite's busy timeout is
/// half of it, in i32 milliseconds: from 4294967296 ms on) must start, or be refused like the
/// other forwarding limits: exit 1, no panic, the database not created, a message naming
/// BLOG_FORWARD_TIMEOUT_MS. (Premise changed by the fix: the limit is an hour, so the edge
/// checked is the hour's, not the review's 4294967295 ms, which is now refused the same way.)
#[test]
fn review_a_huge_forward_timeout_starts_or_is_refused_without_a_panic() {
    let ms = |v: u64| v.to_string();
    for timeout in [
        3_600_001,
        4_294_967_295,
        4_294_967_296,
        u64::MAX / 2,
        u64::MAX,
    ] {
        let what = format!("timeout {timeout}");
        let env = [("BLOG_FORWARD_TIMEOUT_MS", ms(timeout))];
        if let Err((status, stderr, created)) = start_outcome(&what, &env) {
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            assert_eq!(status.code(), Some(1), "{what}: {status}: {stderr}");
            assert!(!created, "{what}: the database was created: {stderr}");
            assert!(
                stderr.contains("BLOG_FORWARD_TIMEOUT_MS"),
                "{what}: the message does not name the setting: {stderr}"
            );
        }
    }
    let env = [("BLOG_FORWARD_TIMEOUT_MS", ms(3_600_000))];
    if let Err((status, stderr, _)) = start_outcome("timeout 3600000", &env) {
        panic!("timeout 3600000 (an hour): {status}: {stderr}");
    }
}

/// Review, holds: the edges of the blog's own check, 1 ms apart: a lease 1 ms below the timeout
/// starts, at it or 1 ms above is refused in the blog's terms, and the smallest pair (1, 2) starts.
#[test]
fn review_holds_forwarding_limits_one_ms_apart() {
    let ms = |v: u64| v.to_string();
    for (lease, timeout) in [(1, 2), (4_999, 5_000)] {
        let env = [
            ("BLOG_FORWARD_TIMEOUT_MS", ms(timeout)),
            ("BLOG_REMOTE_TX_LEASE_MS", ms(lease)),
        ];
        let what = format!("lease {lease} timeout {timeout}");
        if let Err((status, stderr, _)) = start_outcome(&what, &env) {
            panic!("{what}: {status}: {stderr}");
        }
    }
    for (lease, timeout) in [(5_000, 5_000), (5_001, 5_000), (2, 1)] {
        let env = [
            ("BLOG_FORWARD_TIMEOUT_MS", ms(timeout)),
            ("BLOG_REMOTE_TX_LEASE_MS", ms(lease)),
        ];
        let what = format!("refused lease {lease} timeout {timeout}");
        let stderr = refused_start(&what, &env);
        assert!(
            stderr.contains(&format!("BLOG_REMOTE_TX_LEASE_MS ({lease} ms)")),
            "{what}: {stderr}"
        );
    }
}
