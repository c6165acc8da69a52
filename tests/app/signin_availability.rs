//! Availability and security findings of the second pen test of sign-in (numbered as its
//! report): a failed logout, a public URL with a default port, the writes of a login, the global
//! throttle, the remembered password, and who may read `/metrics`.

use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Client, StatusCode};
use sqlx::{Connection, Executor, SqliteConnection};

use crate::helpers::{
    PASSWORD, TestApp, bare_client, cookie_client, csrf_of, login_cookies, new_dir, post_login,
    spawn_app_with, spawn_binary, status_with_cookies,
};

/// A connection of its own to the app's database file, as another process would open it.
async fn open_file(app: &TestApp) -> SqliteConnection {
    let path = app.dir.join("blog.db");
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the app's database file")
}

/// The `Set-Cookie` values of a response that set or remove `name`.
fn set_cookies_named(response: &reqwest::Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .collect()
}

// --- 1: a logout that cannot be written -----------------------------------------------------------

#[tokio::test]
async fn s1_a_logout_that_cannot_be_written_keeps_the_cookie_and_says_so() {
    // A short write deadline, so the locked database fails the delete quickly (and a lease below
    // it, as the blog requires).
    let app = spawn_app_with(&["--forward-timeout-ms", "400", "--remote-tx-lease-ms", "200"])
        .await
        .expect("starts");
    let cookies = login_cookies(&app).await;
    let client = bare_client();
    let page = client
        .get(app.url("/admin"))
        .header(COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.unwrap());
    let logout = || {
        client
            .post(app.url("/admin/logout"))
            .header(COOKIE, &cookies)
            .form(&[("csrf", csrf.as_str())])
            .send()
    };

    // Another process holds the write lock: the session's row cannot be deleted.
    let mut holder = open_file(&app).await;
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let response = logout().await.unwrap();
    let status = response.status();
    let removed = set_cookies_named(&response, "blog_session");
    let html = response.text().await.unwrap();
    holder.execute("ROLLBACK").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(
        removed.is_empty(),
        "the session cookie is kept when its row was not deleted: {removed:?}"
    );
    assert!(html.contains("still logged in"), "{html}");
    assert!(
        html.contains("Log out"),
        "the error page shows the visitor as still signed in: {html}"
    );
    // The session does still work: what the page said is true.
    assert_eq!(
        status_with_cookies(&app, "/admin", &cookies).await,
        StatusCode::OK
    );

    // Once the database can be written, logging out deletes the row and the cookie.
    let response = logout().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let removed = set_cookies_named(&response, "blog_session");
    assert!(
        removed.iter().any(|c| c.contains("Max-Age=0")),
        "the session cookie is removed: {removed:?}"
    );
    assert_eq!(
        status_with_cookies(&app, "/admin", &cookies).await,
        StatusCode::SEE_OTHER
    );
}

// --- 2: a public URL with a default port ----------------------------------------------------------

#[tokio::test]
async fn s2_a_public_url_with_a_default_port_accepts_the_browsers_origin() {
    for (public_url, origin) in [
        ("https://Blog.Example:443/", "https://blog.example"),
        ("http://blog.example:80", "http://blog.example"),
    ] {
        let app = spawn_app_with(&["--public-url", public_url])
            .await
            .expect("starts");
        let (_, response) = post_login(&app, Some(origin)).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "BLOG_PUBLIC_URL={public_url}, Origin: {origin}"
        );
    }
    // What the configuration keeps: scheme and host in lower case, no default port, no path.
    for (given, origin) in [
        ("https://Blog.Example:443/", "https://blog.example"),
        ("http://x:80", "http://x"),
        ("https://x:8443/blog/", "https://x:8443"),
        ("HTTPS://[2001:DB8::1]:443", "https://[2001:db8::1]"),
    ] {
        let cli =
            <blog::config::Cli as clap::Parser>::try_parse_from(["blog", "--public-url", given])
                .expect("parses");
        assert_eq!(
            cli.config.public_origin().as_deref(),
            Some(origin),
            "{given}"
        );
    }
    for bad in ["ftp://x", "https://", "blog.example", "https://user:pw@x"] {
        let refused =
            <blog::config::Cli as clap::Parser>::try_parse_from(["blog", "--public-url", bad])
                .map_err(|e| e.to_string())
                .and_then(|cli| cli.config.check());
        assert!(refused.is_err(), "{bad} is accepted");
    }
}

// --- 3: the writes of a login ---------------------------------------------------------------------

#[tokio::test]
async fn s3_a_login_writes_the_session_once() {
    let app = spawn_app_with(&[]).await.expect("starts");
    // Every row the app writes to `sessions` is recorded by triggers.
    let mut file = open_file(&app).await;
    for sql in [
        "CREATE TABLE session_writes (op TEXT NOT NULL)",
        "CREATE TRIGGER sw_insert AFTER INSERT ON sessions \
         BEGIN INSERT INTO session_writes VALUES ('insert'); END",
        "CREATE TRIGGER sw_update AFTER UPDATE ON sessions \
         BEGIN INSERT INTO session_writes VALUES ('update'); END",
        "CREATE TRIGGER sw_delete AFTER DELETE ON sessions \
         BEGIN INSERT INTO session_writes VALUES ('delete'); END",
    ] {
        file.execute(sql).await.unwrap();
    }
    let cookies = login_cookies(&app).await;
    assert_eq!(
        status_with_cookies(&app, "/admin", &cookies).await,
        StatusCode::OK
    );
    let writes: Vec<(String,)> = sqlx::query_as("SELECT op FROM session_writes")
        .fetch_all(&mut file)
        .await
        .unwrap();
    assert_eq!(
        writes,
        [("insert".to_owned(),)],
        "a login is one write of the session row"
    );

    // Logging in again over a live session (a login form left open in another tab) replaces it:
    // its row is deleted, a new one written. The form's token is taken from another page: a
    // signed-in admin who opens the login page is sent on to the dashboard.
    let client = bare_client();
    let page = client
        .get(app.url("/admin/posts/new"))
        .header(COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let response = client
        .post(app.url("/admin/login"))
        .header(COOKIE, &cookies)
        .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let renewed = set_cookies_named(&response, "blog_session");
    assert_eq!(renewed.len(), 1, "{renewed:?}");
    let renewed = renewed[0].split(';').next().unwrap().to_owned();
    assert_eq!(
        status_with_cookies(&app, "/admin", &cookies).await,
        StatusCode::SEE_OTHER,
        "the replaced session opens nothing"
    );
    assert_eq!(
        status_with_cookies(&app, "/admin", &renewed).await,
        StatusCode::OK
    );
    let writes: Vec<(String,)> = sqlx::query_as("SELECT op FROM session_writes")
        .fetch_all(&mut file)
        .await
        .unwrap();
    let ops: Vec<&str> = writes.iter().map(|(op,)| op.as_str()).collect();
    assert_eq!(ops, ["insert", "delete", "insert"]);
}

// --- 4: the global throttle and the admin -----------------------------------------------------

const SECRET: &str = "a-session-secret-shared-by-both-runs-of-the-test";

/// The status of an API read as the admin with `password`, from the client address `ip`.
async fn api_as(app: &TestApp, ip: &str, password: &str) -> StatusCode {
    bare_client()
        .get(app.url("/api/posts"))
        .header("x-client-ip", ip)
        .basic_auth("admin", Some(password))
        .send()
        .await
        .unwrap()
        .status()
}

/// Wrong Basic-auth guesses from `ips`, all at once; their statuses.
async fn guesses(app: &TestApp, ips: &[String]) -> Vec<StatusCode> {
    let wrong: Vec<String> = ips
        .iter()
        .map(|ip| format!("a-long-wrong-guess-from-{ip}"))
        .collect();
    join_all(ips.iter().zip(&wrong).map(|(ip, w)| api_as(app, ip, w))).await
}

/// Logs `client` in from `ip` through the form; the status of the POST.
async fn form_login(app: &TestApp, client: &Client, ip: &str, password: &str) -> StatusCode {
    let page = client
        .get(app.url("/admin/login"))
        .header("x-client-ip", ip)
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    client
        .post(app.url("/admin/login"))
        .header("x-client-ip", ip)
        .form(&[("csrf", csrf.as_str()), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_guesses_from_many_addresses_do_not_lock_out_an_admin_who_signed_in_before() {
    let args = [
        "--client-ip-header",
        "x-client-ip",
        "--session-secret",
        SECRET,
    ];
    let admin = cookie_client();
    {
        let before = spawn_app_with(&args).await.expect("starts");
        assert_eq!(
            form_login(&before, &admin, "10.0.0.1", PASSWORD).await,
            StatusCode::SEE_OTHER
        );
    }
    // The blog restarted (or this is another node): nothing of the sign-in is in memory.
    let app = spawn_app_with(&args).await.expect("starts again");
    let page = admin
        .get(app.url("/admin/login"))
        .header("x-client-ip", "10.0.0.1")
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    // Guesses spread over many addresses, one each, until the global bucket refuses a newcomer.
    // They come 64 at once, more than its burst, so it runs dry however slowly the machine
    // checks passwords (8 at once could come slower than it refills on a loaded machine).
    let mut next = 0;
    let exhausted = loop {
        let ips: Vec<String> = (next..next + 64)
            .map(|i| format!("10.1.{}.{}", i / 250, i % 250 + 1))
            .collect();
        next += 64;
        if guesses(&app, &ips)
            .await
            .contains(&StatusCode::TOO_MANY_REQUESTS)
        {
            break true;
        }
        if next > 400 {
            break false;
        }
    };
    assert!(exhausted, "the global bucket was never exhausted");
    // The admin signs in while the guessing goes on.
    let more: Vec<String> = (0..48).map(|i| format!("10.3.0.{}", i + 1)).collect();
    let admin_login = admin
        .post(app.url("/admin/login"))
        .header("x-client-ip", "10.0.0.1")
        .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
        .send();
    let (admin_login, _) = tokio::join!(admin_login, guesses(&app, &more));
    assert_eq!(
        admin_login.unwrap().status(),
        StatusCode::SEE_OTHER,
        "the admin's browser, which signed in before, still signs in"
    );
}

#[tokio::test]
async fn s4_ipv6_clients_are_throttled_by_their_64_prefix() {
    let app = spawn_app_with(&["--client-ip-header", "x-client-ip"])
        .await
        .expect("starts");
    let mut statuses = Vec::new();
    for i in 1..=12 {
        statuses.extend(guesses(&app, &[format!("2001:db8:1:2::{i:x}")]).await);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "twelve addresses of one /64 are one client: {statuses:?}"
    );
    // Another /64 is another client.
    assert_eq!(
        guesses(&app, &["2001:db8:1:3::1".to_owned()]).await,
        [StatusCode::UNAUTHORIZED]
    );
}

// --- 4b: the remembered password is no way around the throttle ---------------------------------

#[tokio::test]
async fn s4_once_the_admin_signed_in_a_guesser_is_still_throttled_on_the_right_password() {
    let app = spawn_app_with(&["--client-ip-header", "x-client-ip"])
        .await
        .expect("starts");
    // The admin uses the API from their address: the password is now remembered.
    assert_eq!(api_as(&app, "10.0.0.1", PASSWORD).await, StatusCode::OK);
    // A guesser elsewhere uses up their burst...
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(api_as(&app, "10.9.9.9", &format!("a-long-wrong-guess-{i}")).await);
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // ...and is refused the right password too: a throttled guess learns nothing.
    assert_eq!(
        api_as(&app, "10.9.9.9", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The admin's own calls are not throttled, however many.
    for _ in 0..15 {
        assert_eq!(api_as(&app, "10.0.0.1", PASSWORD).await, StatusCode::OK);
    }
    // Someone guessing from the admin's own address ends that address's exemption: once its
    // bucket is empty, the right password is refused there too.
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(api_as(&app, "10.0.0.1", &format!("a-long-wrong-guess-{i}")).await);
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(
        api_as(&app, "10.0.0.1", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

// --- 5: who may read /metrics -------------------------------------------------------------------

/// This machine's address on its network (not loopback), as the kernel would pick it to reach
/// another host. No packet is sent.
fn non_loopback_address() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .connect("192.0.2.1:9")
        .expect("this test needs a network interface besides loopback");
    let ip = socket.local_addr().unwrap().ip();
    assert!(!ip.is_loopback(), "{ip}");
    ip
}

async fn metrics_status(url: String) -> (StatusCode, String) {
    let response = bare_client().get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn s5_metrics_are_not_served_to_other_machines() {
    let app = spawn_app_with(&["--listen", "0.0.0.0:0"])
        .await
        .expect("starts");
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let (status, _) =
        metrics_status(format!("http://{}:{port}/metrics", non_loopback_address())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "metrics to another machine");
    let (status, body) = metrics_status(format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("blog_auth_failures_total"), "{body}");
}

#[tokio::test]
async fn s5_behind_a_proxy_the_main_port_serves_no_metrics_even_to_loopback() {
    // A reverse proxy on this machine connects from loopback for every client it relays.
    let app = spawn_app_with(&["--client-ip-header", "x-forwarded-for"])
        .await
        .expect("starts behind a proxy");
    let (status, _) = metrics_status(app.url("/metrics")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "metrics through a same-host proxy"
    );
}

/// The raw answer to `request_line` sent as is to `base` (no client normalizes the path).
async fn raw_answer(base: &str, request_line: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{request_line}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn s5_behind_a_proxy_no_spelling_of_the_metrics_path_serves_them() {
    let app = spawn_app_with(&["--client-ip-header", "x-forwarded-for"])
        .await
        .expect("starts behind a proxy");
    for line in [
        "GET /metrics HTTP/1.1",
        "HEAD /metrics HTTP/1.1",
        "GET /metrics/ HTTP/1.1",
        "GET //metrics HTTP/1.1",
        "GET /Metrics HTTP/1.1",
        "GET /%6detrics HTTP/1.1",
        "GET /./metrics HTTP/1.1",
        "GET /static/../metrics HTTP/1.1",
        "GET /metrics?x=1 HTTP/1.1",
        "GET /metrics;x HTTP/1.1",
        "GET /api/../metrics HTTP/1.1",
    ] {
        let answer = raw_answer(&app.base, line).await;
        let status = answer.split(' ').nth(1).unwrap_or_default();
        assert!(
            status.starts_with('4') && !answer.contains("# TYPE"),
            "{line}: {answer}"
        );
    }
}

#[tokio::test]
async fn s5_a_metrics_listener_takes_metrics_off_the_main_port() {
    let app = spawn_app_with(&["--metrics-listen", "127.0.0.1:0"])
        .await
        .expect("starts with a metrics listener");
    let (status, _) = metrics_status(app.url("/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let metrics = app.metrics_addr.expect("the metrics listener's address");
    let (status, body) = metrics_status(format!("http://{metrics}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("http_requests_total"), "{body}");
}

// --- 1, on a real replica: its primary is down --------------------------------------------------

/// Logs in through the form of the node at `base`; returns the session's cookies.
async fn login_at(base: &str, password: &str) -> String {
    let client = bare_client();
    let page = client
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    let anon = crate::helpers::cookie_pairs(&page);
    let csrf = csrf_of(&page.text().await.unwrap());
    let response = client
        .post(format!("{base}/admin/login"))
        .header(COOKIE, &anon)
        .form(&[("csrf", csrf.as_str()), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    format!("{anon}; {}", crate::helpers::cookie_pairs(&response))
}

/// The status of `GET base/path` with `cookies`, and the page.
async fn get_with(base: &str, path: &str, cookies: &str) -> (StatusCode, String) {
    let response = bare_client()
        .get(format!("{base}{path}"))
        .header(COOKIE, cookies)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_on_a_replica_whose_primary_is_down_a_logout_keeps_the_session_and_says_so() {
    use test_support::cluster::{ADMIN_PASSWORD, Cluster};
    let mut cluster = Cluster::start(2).await;
    let replica = cluster.url(2);
    let cookies = login_at(&replica, ADMIN_PASSWORD).await;
    let (status, page) = get_with(&replica, "/admin", &cookies).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&page);
    let logout = || {
        bare_client()
            .post(format!("{replica}/admin/logout"))
            .header(COOKIE, &cookies)
            .form(&[("csrf", csrf.as_str())])
            .send()
    };

    cluster.stop_app(1);
    let response = logout().await.unwrap();
    let status = response.status();
    let removed = set_cookies_named(&response, "blog_session");
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(removed.is_empty(), "the cookie is kept: {removed:?}");
    assert!(html.contains("still logged in"), "{html}");
    assert!(html.contains("Log out"), "still shown signed in: {html}");
    assert_eq!(
        get_with(&replica, "/admin", &cookies).await.0,
        StatusCode::OK,
        "the session does still work on the replica"
    );

    // With the primary back, the logout is saved, and only then is the cookie removed.
    cluster.start_app(1).await;
    let response = logout().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let removed = set_cookies_named(&response, "blog_session");
    assert!(
        removed.iter().any(|c| c.contains("Max-Age=0")),
        "{removed:?}"
    );
    assert_eq!(
        get_with(&replica, "/admin", &cookies).await.0,
        StatusCode::SEE_OTHER
    );
}

// --- extra: open connections per client ---------------------------------------------------------

/// A connection from this machine's network address that has sent a request and read its status.
async fn held_connection(addr: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
    stream
}

#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    let app = spawn_app_with(&["--listen", "0.0.0.0:0", "--max-connections-per-client", "3"])
        .await
        .expect("starts with a per-client connection cap");
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let from_network = format!("{}:{port}", non_loopback_address());
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(held_connection(&from_network).await);
    }
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let out = crate::helpers::raw_exchange(&from_network, request, Duration::from_secs(5)).await;
    assert!(
        out.starts_with("HTTP/1.1 503"),
        "a fourth connection: {out}"
    );
    assert!(out.contains("from your address"), "{out}");
    // Others are served meanwhile (here this machine itself, which is never capped).
    let out = crate::helpers::raw_exchange(
        &format!("127.0.0.1:{port}"),
        request,
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // A connection that ends gives its place back.
    drop(held.pop());
    let mut answered = false;
    for _ in 0..100 {
        let out =
            crate::helpers::raw_exchange(&from_network, request, Duration::from_secs(5)).await;
        if out.starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "the place of a closed connection is given back");
}

// --- argon2's memory under a flood of wrong passwords ---------------------------------------------

/// A process's peak resident memory in MiB (`VmHWM` in `/proc`).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line");
    kib / 1024
}

#[tokio::test]
async fn a_flood_of_wrong_passwords_does_not_grow_the_process() {
    // The real binary, alone in its process, so its memory is its own.
    let dir = new_dir();
    let (mut child, addr) = spawn_binary(&dir, &["--client-ip-header", "x-client-ip"]);
    let before = peak_rss_mib(child.id());
    // Wrong passwords from many addresses, 16 at once: the global burst of them reaches argon2
    // (19 MiB of working memory each), the rest are throttled.
    let client = bare_client();
    let guesses = (0..200u32).map(|i| {
        let request = client
            .post(format!("http://{addr}/api/tags"))
            .basic_auth("admin", Some(format!("a-long-wrong-guess-{i}")))
            .header("x-client-ip", format!("10.1.{}.{}", i / 256, i % 256))
            .json(&serde_json::json!({ "label": "nope" }));
        async move { request.send().await.map(|r| r.status()) }
    });
    let statuses: Vec<StatusCode> = futures::stream::iter(guesses)
        .buffer_unordered(16)
        .map(|status| status.expect("an answer"))
        .collect()
        .await;
    let after = peak_rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        checked >= 50,
        "argon2 ran for only {checked} guesses: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)),
        "{statuses:?}"
    );
    // Each check's memory is reused, not left behind: 19 MiB for each check that may run at
    // once (one per core, at most the 16 sent at once), and some slack; not 19 MiB per check (a
    // 256 MB Fly machine must survive this).
    let at_once = std::thread::available_parallelism().map_or(1, |n| n.get().min(16)) as u64;
    let bound = at_once * 19 + 40;
    assert!(
        after.saturating_sub(before) < bound,
        "peak memory grew from {before} MiB to {after} MiB over {checked} argon2 checks \
         (bound: {bound} MiB of growth)"
    );
}

/// Odd Basic-auth passwords (not UTF-8, NUL bytes, very long, no colon, not base64) and an odd
/// form password: each a clear 4xx, never a 500 or a hang, and the app still answers the right one.
#[tokio::test]
async fn odd_passwords_get_a_clear_refusal_and_the_right_one_still_works() {
    use base64::Engine;
    let app = spawn_app_with(&[]).await.expect("starts");
    let basic = |raw: &[u8]| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    let long = [b"admin:".as_slice(), &vec![b'x'; 48 * 1024]].concat();
    let cases = [
        basic(b"admin:\xff\xfe\xfd-not-utf8-at-all-here"),
        basic(b"admin:with\0nul\0bytes-long-enough"),
        basic(b"admin:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
        basic(&long),
        basic(b"admin-without-a-colon-at-all"),
        basic(b":"),
        "Basic !!!not-base64".to_owned(),
        "Basic".to_owned(),
        "basic YWRtaW46".to_owned(),
    ];
    for header in &cases {
        let status = bare_client()
            .get(app.url("/api/posts"))
            .header("authorization", header)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{:.40}: {status}",
            header
        );
    }
    let client = cookie_client();
    let page = client.get(app.url("/admin/login")).send().await.unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let huge = "\0é".repeat(200 * 1024);
    let status = client
        .post(app.url("/admin/login"))
        .form(&[("csrf", csrf.as_str()), ("password", huge.as_str())])
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_client_error(), "{status}");
    let status = bare_client()
        .get(app.url("/api/posts"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}
