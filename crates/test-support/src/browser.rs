//! A real browser: headless Debian Chromium driven through chromedriver with fantoccini.
//!
//! Used by the app's and the cluster's tests. The one flow,
//! [`admin_creates_tag_and_post`], runs against any node's base URL (a standalone app or a
//! replica), starting its own chromedriver and stopping it when done.
//!
//! Missing chromedriver or chromium makes the test fail with a message naming the installer
//! (`scripts/install-test-deps`); it never skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long to wait for one element to appear (page loads, redirects).
const ELEMENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Polls of chromedriver's `/status` before giving up, and the pause between them.
const STATUS_TRIES: u32 = 150;
const STATUS_INTERVAL: Duration = Duration::from_millis(100);

/// A chromedriver child process on a free local port, with a scratch directory for the browser
/// profile and its log. Killed (and the directory removed) on drop.
pub struct Chromedriver {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Chromedriver {
    /// Starts chromedriver and waits until its `/status` says it is ready.
    pub async fn start() -> Chromedriver {
        for (path, what) in [(CHROMEDRIVER, "chromedriver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "{what} is not installed at {path}: the browser test needs Debian's chromium and \
                 chromium-driver packages (run scripts/install-test-deps)"
            );
        }
        let port = free_port();
        let dir = scratch_dir();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let mut driver = Chromedriver { child, port, dir };
        driver.wait_until_ready().await;
        driver
    }

    /// The WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_until_ready(&mut self) {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("reqwest client");
        let status_url = format!("{}/status", self.url());
        for _ in 0..STATUS_TRIES {
            if let Some(exit) = self.child.try_wait().expect("chromedriver's status") {
                panic!(
                    "chromedriver exited at start ({exit}); its log: {}",
                    self.log()
                );
            }
            if let Ok(response) = http.get(&status_url).send().await
                && let Ok(status) = response.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                return;
            }
            tokio::time::sleep(STATUS_INTERVAL).await;
        }
        panic!(
            "chromedriver was not ready on {status_url} after {STATUS_TRIES} tries; its log: {}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default()
    }

    /// A new headless Chromium session with a fresh profile.
    pub async fn session(&self) -> Client {
        self.session_at(1280).await
    }

    /// A session whose viewport is `width` CSS pixels wide (a phone at 390), keeping the
    /// browser's console log for [`console_errors`].
    pub async fn session_at(&self, width: u32) -> Client {
        let profile = self.dir.join(format!("profile-{width}"));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,1024",
                    "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                ],
                "mobileEmulation": {
                    "deviceMetrics": { "width": width, "height": 900, "pixelRatio": 1.0 },
                },
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start chromium: {e}; its log: {}",
                    self.log()
                )
            })
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn scratch_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "blog-browser-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cannot create the browser's scratch dir");
    dir
}

/// In a real browser, against the node at `base_url` (no trailing slash): logs in as the admin
/// through the form, creates the tag `tag` on /admin/tags, writes a published post titled
/// `title` with that tag on /admin/posts/new, then finds the title on the home page and on
/// /tags/{tag}. Panics, with the step that failed, if any of it does not happen.
pub async fn admin_creates_tag_and_post(base_url: &str, password: &str, tag: &str, title: &str) {
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let outcome = flow(
        &browser,
        base_url.trim_end_matches('/'),
        password,
        tag,
        title,
    )
    .await;
    let source = match &outcome {
        Ok(()) => String::new(),
        Err(_) => browser.source().await.unwrap_or_default(),
    };
    let _ = browser.close().await;
    if let Err(step) = outcome {
        panic!("browser flow failed: {step}\n--- page source ---\n{source}");
    }
}

async fn flow(
    browser: &Client,
    base: &str,
    password: &str,
    tag: &str,
    title: &str,
) -> Result<(), String> {
    log_in(browser, base, password).await?;
    create_tag_and_post(browser, base, tag, title).await
}

/// Logs in through the form and waits for the dashboard.
pub async fn log_in(browser: &Client, base: &str, password: &str) -> Result<(), String> {
    goto(browser, &format!("{base}/admin/login")).await?;
    type_into(
        &wait_for(browser, Locator::Css("input[name='password']")).await?,
        password,
    )
    .await?;
    click(
        browser,
        Locator::Css("form[action='/admin/login'] button[type='submit']"),
    )
    .await?;
    wait_for(
        browser,
        Locator::XPath("//h1[normalize-space()='Dashboard']"),
    )
    .await?;
    Ok(())
}

async fn create_tag_and_post(
    browser: &Client,
    base: &str,
    tag: &str,
    title: &str,
) -> Result<(), String> {
    // Create the tag.
    goto(browser, &format!("{base}/admin/tags")).await?;
    type_into(
        &wait_for(
            browser,
            Locator::Css("form[action='/admin/tags'] input[name='label']"),
        )
        .await?,
        tag,
    )
    .await?;
    click(
        browser,
        Locator::Css("form[action='/admin/tags'] button[type='submit']"),
    )
    .await?;
    let renamed_field = format!(
        "//p[@class='flash' and contains(., 'Created tag')]\
         /following::input[@name='label' and @value={}]",
        xpath_literal(tag)
    );
    wait_for(browser, Locator::XPath(&renamed_field)).await?;

    // Write the post, published, with that tag.
    goto(browser, &format!("{base}/admin/posts/new")).await?;
    let form = "form[action='/admin/posts']";
    type_into(
        &wait_for(
            browser,
            Locator::Css(&format!("{form} input[name='title']")),
        )
        .await?,
        title,
    )
    .await?;
    type_into(
        &find(
            browser,
            Locator::Css(&format!("{form} textarea[name='body']")),
        )
        .await?,
        "Written in a *real* browser.",
    )
    .await?;
    type_into(
        &find(browser, Locator::Css(&format!("{form} input[name='tags']"))).await?,
        tag,
    )
    .await?;
    click(
        browser,
        Locator::Css(&format!("{form} input[name='published']")),
    )
    .await?;
    click(
        browser,
        Locator::Css(&format!("{form} button[type='submit']")),
    )
    .await?;
    let post_heading = format!(
        "//article[contains(@class, 'post')]/h1[contains(., {})]",
        xpath_literal(title)
    );
    wait_for(browser, Locator::XPath(&post_heading)).await?;
    wait_for(
        browser,
        Locator::XPath("//p[@class='flash' and contains(., 'Created')]"),
    )
    .await?;

    // The post is listed on the home page and on the tag's page.
    let listed = format!(
        "//article[contains(@class, 'card')]//h2/a[normalize-space()={}]",
        xpath_literal(title)
    );
    goto(browser, &format!("{base}/")).await?;
    wait_for(browser, Locator::XPath(&listed)).await?;
    goto(browser, &format!("{base}/tags/{}", percent_encode(tag))).await?;
    wait_for(
        browser,
        Locator::XPath(&format!(
            "//h1[contains(., {})]",
            xpath_literal(&format!("#{tag}"))
        )),
    )
    .await?;
    wait_for(browser, Locator::XPath(&listed)).await?;
    Ok(())
}

pub async fn goto(browser: &Client, url: &str) -> Result<(), String> {
    browser
        .goto(url)
        .await
        .map_err(|e| format!("opening {url}: {e}"))
}

/// Waits (bounded) for an element to be present.
pub async fn wait_for(browser: &Client, locator: Locator<'_>) -> Result<Element, String> {
    let what = format!("{locator:?}");
    browser
        .wait()
        .at_most(ELEMENT_TIMEOUT)
        .for_element(locator)
        .await
        .map_err(|e| format!("waiting for {what}: {e}"))
}

async fn find(browser: &Client, locator: Locator<'_>) -> Result<Element, String> {
    let what = format!("{locator:?}");
    browser
        .find(locator)
        .await
        .map_err(|e| format!("finding {what}: {e}"))
}

pub async fn click(browser: &Client, locator: Locator<'_>) -> Result<(), String> {
    let what = format!("{locator:?}");
    find(browser, locator)
        .await?
        .click()
        .await
        .map_err(|e| format!("clicking {what}: {e}"))
}

async fn type_into(element: &Element, text: &str) -> Result<(), String> {
    element
        .send_keys(text)
        .await
        .map_err(|e| format!("typing {text:?}: {e}"))
}

/// `text` as an XPath string literal, whatever quotes it holds.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// Percent-encodes a path segment (everything but unreserved characters).
fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Chromium-specific WebDriver command (`POST /session/{id}/{path}`): the console log, and
/// DevTools commands such as emulating the dark colour scheme.
#[derive(Debug)]
struct ChromeCommand {
    path: &'static str,
    body: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for ChromeCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// The console messages at level SEVERE since the last call (JavaScript errors, resources that
/// failed to load, Content-Security-Policy violations).
pub async fn console_errors(browser: &Client) -> Result<Vec<String>, String> {
    let log = browser
        .issue_cmd(ChromeCommand {
            path: "se/log",
            body: json!({ "type": "browser" }),
        })
        .await
        .map_err(|e| format!("reading the console log: {e}"))?;
    Ok(log
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Makes the page report `prefers-color-scheme: dark` (or light again).
pub async fn emulate_dark_scheme(browser: &Client, dark: bool) -> Result<(), String> {
    browser
        .issue_cmd(ChromeCommand {
            path: "goog/cdp/execute",
            body: json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": { "features": [
                    { "name": "prefers-color-scheme", "value": if dark { "dark" } else { "light" } }
                ] },
            }),
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("emulating the colour scheme: {e}"))
}

/// Runs `script` (its `return` value, awaited if a promise) in the page.
pub async fn script(browser: &Client, script: &str) -> Result<serde_json::Value, String> {
    browser
        .execute(script, Vec::new())
        .await
        .map_err(|e| format!("running {script:?}: {e}"))
}
