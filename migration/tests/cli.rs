//! The crate's command line, run as a user would (`cargo run -p migration -- ...`), on a fresh
//! database named the blog's way (`BLOG_DATABASE`) and SeaORM's way (`DATABASE_URL`).

use std::process::Command;

fn migration(database: (&str, String), args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_migration"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BLOG_DATABASE")
        .env(database.0, database.1)
        .env("RUST_LOG", "info")
        .output()
        .expect("the migration binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{args:?} failed: {text}");
    text
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("blog-migration-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("blog.db")
}

#[test]
fn status_up_and_down_on_blog_database() {
    let db = scratch("blog-database");
    let env = || ("BLOG_DATABASE", db.display().to_string());
    let before = migration(env(), &["status"]);
    assert!(
        before.contains("m20261128_000001_posts_search") && before.contains("Pending"),
        "{before}"
    );
    let up = migration(env(), &["up"]);
    assert!(
        up.contains("Applying migration 'm20261128_000001_posts_search'"),
        "{up}"
    );
    let after = migration(env(), &["status"]);
    assert!(!after.contains("Pending"), "{after}");
    let down = migration(env(), &["down"]);
    assert!(
        down.contains("Rolling back migration 'm20261130_000001_post_slugs'"),
        "{down}"
    );
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn database_url_is_accepted() {
    let db = scratch("database-url");
    let up = migration(
        (
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        ),
        &["up"],
    );
    assert!(
        up.contains("Applying migration 'm20261126_000001_create_tags_posts'"),
        "{up}"
    );
    assert!(db.exists());
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}
