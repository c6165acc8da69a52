//! Static files (`static/`) linked by their content's version, so a deploy's stylesheet reaches
//! every visitor at once while browsers keep each version for good.
//!
//! Pages link `/static/style.css?v=<hash>` ([`url`]): the first 16 hex digits of the SHA-256 of
//! the file, computed at start-up ([`prime`]) and again if the file changes on disk (its size,
//! modification time, inode or change time, checked at each link: an edit of `static/style.css`
//! under `cargo run` shows at the next reload). A request whose `v` is the file's version is served `immutable` for a
//! year; without `v` (an address typed, or a post's `![](/static/...)`) for five minutes; with
//! another `v` (a page of another version of the site, during a deploy) with `no-cache`, so no
//! browser keeps this content under that version's address.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

/// A file's version at this address is this file: browsers may keep it for a year.
const VERSIONED: &str = "public, max-age=31536000, immutable";
/// The file at its bare address.
const UNVERSIONED: &str = "public, max-age=300";
/// Another version than the file's: served, but kept by no cache without asking again.
const OTHER_VERSION: &str = "no-cache";

/// Digits of the hash in a version.
const VERSION_DIGITS: usize = 16;

struct Stamp {
    modified: Option<SystemTime>,
    /// The inode and its change time: a file rewritten with its size and mtime kept (`cp -p`,
    /// `touch -r`) still has a new ctime, which no one can set.
    changed: (u64, i64, i64),
    len: u64,
    version: String,
}

struct StaticFiles {
    dir: PathBuf,
    versions: Mutex<HashMap<String, Stamp>>,
}

static FILES: LazyLock<StaticFiles> = LazyLock::new(|| StaticFiles {
    dir: super::static_dir(),
    versions: Mutex::new(HashMap::new()),
});

/// A name of a file under `static/`: relative, plain components only (no `..`, no `%`).
fn plain(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['%', '\\'])
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

impl StaticFiles {
    /// The version of the file `name`, `None` if there is no such file.
    fn version(&self, name: &str) -> Option<String> {
        if !plain(name) {
            return None;
        }
        let path = self.dir.join(name);
        let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
        let modified = meta.modified().ok();
        let changed = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.ctime(), meta.ctime_nsec())
        };
        let mut versions = self
            .versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(stamp) = versions.get(name)
            && stamp.modified == modified
            && stamp.changed == changed
            && stamp.len == meta.len()
        {
            return Some(stamp.version.clone());
        }
        let bytes = std::fs::read(&path).ok()?;
        let mut version = hex::encode(Sha256::digest(&bytes));
        version.truncate(VERSION_DIGITS);
        versions.insert(
            name.to_owned(),
            Stamp {
                modified,
                changed,
                len: meta.len(),
                version: version.clone(),
            },
        );
        Some(version)
    }
}

/// Computes the versions of the files in `static/` (at start-up, so no page waits for it).
pub fn prime() {
    let Ok(entries) = std::fs::read_dir(&FILES.dir) else {
        return;
    };
    for entry in entries.flatten() {
        if let Some(name) = entry.file_name().to_str() {
            FILES.version(name);
        }
    }
}

/// The address pages link the file `name` of `static/` at: with its version, if it exists.
pub fn url(name: &str) -> String {
    match FILES.version(name) {
        Some(version) => format!("/static/{name}?v={version}"),
        None => format!("/static/{name}"),
    }
}

/// Middleware of `/static`: the `Cache-Control` of a file served, by the version asked for.
pub async fn cache_control(request: Request, next: Next) -> Response {
    let name = request.uri().path().trim_start_matches('/').to_owned();
    let asked = request.uri().query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "v")
            .map(|(_, value)| value.into_owned())
    });
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let policy = match asked {
            None => UNVERSIONED,
            Some(v) if FILES.version(&name).is_some_and(|current| current == v) => VERSIONED,
            Some(_) => OTHER_VERSION,
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_have_versions() {
        assert!(plain("style.css"));
        assert!(plain("img/cat.png"));
        for odd in [
            "",
            "../Cargo.toml",
            "/etc/passwd",
            "a/../b",
            "%2e%2e/x",
            "a\\b",
        ] {
            assert!(!plain(odd), "{odd}");
        }
        assert_eq!(FILES.version("../Cargo.toml"), None);
        assert!(url("style.css").starts_with("/static/style.css?v="));
        assert_eq!(url("no-such-file.css"), "/static/no-such-file.css");
    }
}
