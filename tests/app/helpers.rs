//! Starts the real application in-process, on port 0, against a fresh SQLite database in its own
//! temporary directory, and offers the few request helpers the tests share.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clap::Parser;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder};
use sea_orm_litefs::ClusterConnection;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const PASSWORD: &str = "a-long-test-password";
pub const NODE_NAME: &str = "test-node";

/// A running blog and what a test needs to talk to it. Dropping it stops the server and removes
/// the database directory.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    /// Keeps cookies (session, CSRF, flash) and does not follow redirects, so tests see the 303s.
    pub client: Client,
    /// The admin password the app was started with.
    pub password: String,
    /// The app's own database handle, to look behind the HTTP interface.
    pub db: ClusterConnection,
    /// The temporary directory that holds the database (`blog.db`).
    pub dir: PathBuf,
    /// Where `/metrics` is served, when the app was started with `--metrics-listen`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A fresh, empty directory under the system temp dir, unique to this process and call.
fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "blog-app-test-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("cannot create the test's temp dir");
    dir
}

/// A client with a cookie store that never follows redirects and never uses a proxy.
pub fn cookie_client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Starts the blog on 127.0.0.1:0 with a new database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[])
        .await
        .expect("the app starts on a fresh database")
}

/// Starts the blog on 127.0.0.1:0 with a new database and extra command-line arguments (which
/// replace the defaults they name); the error is what `blog::start` said.
pub async fn spawn_app_with(extra: &[&str]) -> Result<TestApp, String> {
    spawn_app_in(fresh_dir(), extra).await
}

/// Starts the blog on 127.0.0.1:0 with the database `dir/blog.db` (created if missing).
pub async fn spawn_app_in(dir: PathBuf, extra: &[&str]) -> Result<TestApp, String> {
    let database = dir.join("blog.db");
    let defaults = [
        ("--listen", "127.0.0.1:0"),
        (
            "--database",
            database.to_str().expect("temp dir path is UTF-8"),
        ),
        ("--admin-password", PASSWORD),
        ("--node-name", NODE_NAME),
    ];
    let mut args = vec!["blog"];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend_from_slice(extra);
    let cli = blog::config::Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    assert!(
        cli.config.litefs_dir.is_none(),
        "BLOG_LITEFS_DIR is set in the environment: these tests need a standalone node"
    );
    let running = blog::start(cli.config).await.map_err(|e| e.to_string())?;
    Ok(TestApp {
        base: format!("http://{}", running.addr),
        client: cookie_client(),
        password: running.admin_password,
        db: running.db,
        dir,
        metrics_addr: running.metrics_addr,
        server: running.server,
    })
}

/// A fresh, empty directory for a database, for tests that start apps with [`spawn_app_in`].
pub fn new_dir() -> PathBuf {
    fresh_dir()
}

/// Starts the real `blog` binary, standalone, on a port of its own with its database in `dir`
/// and [`PASSWORD`], plus `args`; returns the process and its `host:port` once it listens.
pub fn spawn_binary(dir: &std::path::Path, args: &[&str]) -> (std::process::Child, String) {
    spawn_binary_with(dir, args, &[])
}

/// [`spawn_binary`] with these environment variables set too.
pub fn spawn_binary_with(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_blog"))
        .args(args)
        .envs(env.iter().copied())
        .env("BLOG_LISTEN", "127.0.0.1:0")
        .env("BLOG_DATABASE", dir.join("blog.db"))
        .env("BLOG_ADMIN_PASSWORD", PASSWORD)
        .env_remove("BLOG_LITEFS_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the blog binary starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // Log lines come first; the address is on the line that announces it.
    let addr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "exited before listening"
        );
        if let Some(rest) = line.trim().strip_prefix("Blog listening on http://") {
            break rest.trim_end_matches('/').to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (child, addr)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with this app's cookie-keeping client.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET request")
    }

    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.expect("response body"))
    }

    /// A request to the JSON API authenticated as the admin.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(&format!("/api{path}")))
            .basic_auth("admin", Some(&self.password))
    }

    /// Sends an API request and returns its status and JSON body (`Null` for an empty body).
    pub async fn api_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.api(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        json_of(request.send().await.expect("API request")).await
    }

    /// A public (unauthenticated) GET on the API.
    pub async fn api_get(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.get(&format!("/api{path}")).await).await
    }

    pub async fn create_tag(&self, label: &str) -> Value {
        let (status, body) = self
            .api_call(
                reqwest::Method::POST,
                "/tags",
                Some(&serde_json::json!({ "label": label })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating tag {label}: {body}");
        body
    }

    pub async fn create_post(&self, post: Value) -> Value {
        let (status, body) = self
            .api_call(reqwest::Method::POST, "/posts", Some(&post))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating post {post}: {body}");
        body
    }

    /// Every tag label, as `GET /api/tags` lists them to the admin (visitors see only tags of
    /// published posts).
    pub async fn tag_labels(&self) -> Vec<String> {
        let (status, body) = self.api_call(reqwest::Method::GET, "/tags", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array()
            .expect("tags are an array")
            .iter()
            .map(|t| t["label"].as_str().expect("label is a string").to_owned())
            .collect()
    }

    /// A rename as a node of before the tags' keys makes it (a rolling deploy): it sets the label
    /// only, `UPDATE tags SET label = ? WHERE label = ?`. The database's error as text if refused.
    pub async fn old_node_renames(&self, from: &str, to: &str) -> Result<(), String> {
        use sea_orm::ConnectionTrait;
        self.db
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                "UPDATE tags SET label = ? WHERE label = ?",
                [to.into(), from.into()],
            ))
            .await
            .map(|done| assert_eq!(done.rows_affected(), 1, "no tag {from}"))
            .map_err(|e| e.to_string())
    }

    /// [`old_node_renames`](Self::old_node_renames), refused by the database as a rename by code
    /// of before case-insensitive tags.
    pub async fn old_node_rename_is_refused(&self, from: &str, to: &str) {
        let err = self
            .old_node_renames(from, to)
            .await
            .expect_err("an old node's rename that keeps the key is refused");
        assert!(
            err.contains("renamed by code of before case-insensitive tags"),
            "{from} -> {to}: {err}"
        );
    }

    /// `id|label|key` of every tag, by id, read straight from the database; each key checked to
    /// be its label's (no tag's key is ever stale).
    pub async fn tag_rows(&self) -> Vec<String> {
        let tags = blog::entity::tag::Entity::find()
            .order_by_asc(blog::entity::tag::Column::Id)
            .all(&self.db)
            .await
            .expect("read tags");
        tags.iter()
            .map(|t| {
                assert_eq!(t.label_key, blog::blog::input::label_key(&t.label), "{t:?}");
                format!("{}|{}|{}", t.id, t.label, t.label_key)
            })
            .collect()
    }

    /// Rows in the posts and tags tables, read straight from the database.
    pub async fn row_counts(&self) -> (u64, u64) {
        let posts = blog::entity::post::Entity::find()
            .count(&self.db)
            .await
            .expect("count posts");
        let tags = blog::entity::tag::Entity::find()
            .count(&self.db)
            .await
            .expect("count tags");
        (posts, tags)
    }

    /// Logs the cookie client in through the login form, as a browser would.
    pub async fn login(&self) {
        let (status, html) = self.get_text("/admin/login").await;
        assert_eq!(status, StatusCode::OK);
        let response = self
            .post_form(
                "/admin/login",
                &[
                    ("csrf", &csrf_of(&html)),
                    ("password", &self.password),
                    ("next", "/admin"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(response.headers()), "/admin");
    }

    /// Posts an urlencoded form with the cookie client.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("form POST")
    }

    /// The CSRF token of the form on the page at `path`.
    pub async fn csrf_for(&self, path: &str) -> String {
        let (status, html) = self.get_text(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {html}");
        csrf_of(&html)
    }
}

/// Status and JSON body of a response; an empty body is `Null`, a non-JSON body fails the test.
pub async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("response body");
    if text.is_empty() {
        return (status, Value::Null);
    }
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("expected JSON from a {status} response ({e}): {text}"));
    (status, value)
}

/// The `Location` of a redirect.
pub fn location(headers: &HeaderMap) -> &str {
    headers
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("Location is ASCII")
}

/// The value of the first hidden `csrf` field in a page.
pub fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in the page: {html}"))
        + marker.len();
    let len = html[start..]
        .find('"')
        .expect("closing quote of the csrf value");
    let token = &html[start..start + len];
    assert!(!token.is_empty(), "empty csrf token");
    token.to_owned()
}

/// The value of the first field named `name` in a page (one without characters to escape, as the
/// edit form's hidden `post_id` and `version`).
pub fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in the page: {html}"))
        + marker.len();
    let len = html[start..].find('"').expect("closing quote of the value");
    html[start..start + len].to_owned()
}

// --- For the tests of sign-in and hardening ---------------------------------------------------

/// The `name=value` pairs a response sets, as a `Cookie` header would send them back.
pub fn cookie_pairs(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A client without a cookie store, so a test can carry cookies by hand.
pub fn bare_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// Opens the login page and posts the right password with a client that keeps no cookies, from
/// `origin` when given; returns the page's cookies and the POST's response.
pub async fn post_login(app: &TestApp, origin: Option<&str>) -> (String, reqwest::Response) {
    let client = bare_client();
    let page = client.get(app.url("/admin/login")).send().await.unwrap();
    let anon = cookie_pairs(&page);
    let csrf = csrf_of(&page.text().await.unwrap());
    let mut request = client.post(app.url("/admin/login")).header(COOKIE, &anon);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request
        .form(&[
            ("csrf", csrf.as_str()),
            ("password", PASSWORD),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    (anon, response)
}

/// Logs in with a client that keeps no cookies; returns the cookies of the logged-in session.
pub async fn login_cookies(app: &TestApp) -> String {
    let (anon, response) = post_login(app, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = cookie_pairs(&response);
    assert!(!session.is_empty(), "login sets a session cookie");
    format!("{anon}; {session}")
}

pub async fn status_with_cookies(app: &TestApp, path: &str, cookies: &str) -> StatusCode {
    bare_client()
        .get(app.url(path))
        .header(COOKIE, cookies)
        .send()
        .await
        .unwrap()
        .status()
}

/// Sends raw bytes on a new connection and reads until the server closes it (or `wait` passes).
pub async fn raw_exchange(addr: &str, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

pub fn host_of(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// A new visitor (a client with its own cookies) who opened the login page, and the page's token.
pub async fn new_visitor_at_login(app: &TestApp) -> (Client, String) {
    let client = cookie_client();
    let html = client
        .get(app.url("/admin/login"))
        .send()
        .await
        .expect("GET /admin/login")
        .text()
        .await
        .expect("login page");
    let csrf = csrf_of(&html);
    (client, csrf)
}

/// Undoes askama's escaping of an attribute's value.
pub fn unescape(value: &str) -> String {
    // The ampersand last, so an escaped "&#34;" stays that text.
    value
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// The `value` of the input named `name` in a page.
pub fn input_value(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    unescape(&html[start..end])
}

/// The tags of the post `slug`, as the API shows them.
pub async fn tags_of(app: &TestApp, slug: &str) -> serde_json::Value {
    let (status, post) = app
        .api_call(reqwest::Method::GET, &format!("/posts/{slug}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    post["tags"].clone()
}

/// The id of the tag labelled exactly `label`, as `GET /api/tags` lists it to the admin.
pub async fn tag_id(app: &TestApp, label: &str) -> i64 {
    let (_, tags) = app.api_call(reqwest::Method::GET, "/tags", None).await;
    tags.as_array()
        .expect("tags are an array")
        .iter()
        .find(|t| t["label"] == label)
        .unwrap_or_else(|| panic!("no tag {label}: {tags}"))["id"]
        .as_i64()
        .expect("an id")
}

/// Renames the tag `id` to `label` through the API: the status and the answer.
pub async fn rename_tag(app: &TestApp, id: i64, label: &str) -> (StatusCode, serde_json::Value) {
    app.api_call(
        reqwest::Method::PATCH,
        &format!("/tags/{id}"),
        Some(&serde_json::json!({ "label": label })),
    )
    .await
}

/// The hidden fields of the form `form` (its HTML, from `<form` to `</form>`), as a browser sends
/// them back.
pub fn hidden_inputs(form: &str) -> Vec<(String, String)> {
    form.match_indices(r#"<input type="hidden" name=""#)
        .map(|(at, marker)| {
            let rest = &form[at + marker.len()..];
            let name_end = rest.find('"').unwrap();
            let value_at = rest.find(r#"value=""#).unwrap() + r#"value=""#.len();
            let value_end = value_at + rest[value_at..].find('"').unwrap();
            (
                rest[..name_end].to_owned(),
                unescape(&rest[value_at..value_end]),
            )
        })
        .collect()
}

/// `s` with every byte outside ASCII percent-encoded (upper-case hex), as links to it must be.
pub fn encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The first `<form ...>...</form>` of `html` whose start contains `marker`.
pub fn form_with<'a>(html: &'a str, marker: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let start = html[..at].rfind("<form").expect("a form");
    let end = at + html[at..].find("</form>").expect("the form's end");
    &html[start..end]
}

/// Every hidden field of the post form in `html`, as a browser sends them back.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let form = &html[html.find("<form method=\"post\"").expect("the post form")..];
    let form = &form[..form.find("</form>").unwrap()];
    hidden_inputs(form)
}

/// The `action` of the post form in `html`.
pub fn action_of(html: &str) -> String {
    let marker = r#"<form method="post" action=""#;
    let start = html.find(marker).expect("the post form") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// Sends the post form of `html` to its action as a browser would: its hidden fields and its
/// fields as shown, but with the body `body`.
pub async fn save_with_body(app: &TestApp, html: &str, body: &str) -> reqwest::Response {
    let mut fields = hidden_fields(html);
    for name in ["title", "slug", "tags"] {
        fields.push((name.to_owned(), input_value(html, name)));
    }
    fields.push(("body".to_owned(), body.to_owned()));
    fields.push(("published".to_owned(), "on".to_owned()));
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    app.post_form(&action_of(html), &fields).await
}

/// `GET /api/posts?q=` as a visitor: the slugs in order, and the whole answer.
pub async fn api_search(app: &TestApp, q: &str) -> (Vec<String>, Value) {
    let (status, page) = app
        .api_get(&format!("/posts?q={}&per_page=100", encoded(q)))
        .await;
    assert_eq!(status, StatusCode::OK, "q={q:?}: {page}");
    let slugs = page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("q={q:?}: {page}"))
        .iter()
        .map(|p| p["slug"].as_str().unwrap().to_owned())
        .collect();
    (slugs, page)
}
