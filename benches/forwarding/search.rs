//! What the most expensive searches cost (`scripts/bench search` runs this section alone, under
//! a minute): one standalone node with 3,000 published posts of about 200 words (one in ten with
//! a Japanese sentence), each case against a search for one ordinary word in the same run.
//!
//! Each word of a query is looked up by prefix in two full-text indexes, and a word with Chinese,
//! Japanese or Korean characters is also looked for inside every post, so a query's cost grows
//! with its words: a query keeps its first 8, and a one-character word is matched whole (as a
//! prefix it would match most of the index). These rows show what that bound leaves.

use super::render::{get, median, start};
use super::{Row, latency_row, print_table};

const POSTS: usize = 3_000;
const WARMUP: usize = 3;
const SAMPLES: usize = 15;

/// Fills the blog's database with [`POSTS`] published posts, in one SQL statement (the
/// database's triggers keep both search indexes, as for posts written through the app).
async fn fill(database: &std::path::Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", database.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("the bench's database");
    const SQL: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
         INSERT INTO posts (slug, title, body, published, published_at, created_at, updated_at)
         SELECT 'bulk-' || i, 'Bulk ' || i,
                replace(hex(zeroblob(20)), '00',
                    'the tale of t' || i || ' and a bold cat eats fine grapes here in july ' ||
                    'keeping lots more nice old pears quite ripe so that unusual vines ' ||
                    'were xenial yet zesty ')
                || CASE WHEN i % 10 = 0 THEN ' 東京と大阪の世界、京都の漢字。' ELSE '' END,
                1, '2026-11-29T00:00:00Z', '2026-11-29T00:00:00Z', '2026-11-29T00:00:00Z'
         FROM n";
    sqlx::query(SQL)
        .bind(POSTS as i64)
        .execute(&mut conn)
        .await
        .expect("the posts");
}

pub async fn run() {
    eprintln!("bench: search: one node, {POSTS} posts");
    let dir = std::env::temp_dir().join(format!("blog-bench-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let base = start(&dir, &["--render-cache-mb", "0"]).await;
    fill(&dir.join("blog.db")).await;
    let client = reqwest::Client::new();
    let url = |q: &str| {
        let q = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC);
        format!("{base}/api/posts?q={q}")
    };
    let baseline_query = "grapes";
    let cases = [
        ("one letter (t)", "t"),
        ("8 one-letter words", "t a b c f g h i"),
        ("8 two-letter prefixes", "th an bo ca ea fi gr he"),
        ("8 common words", "the tale of and bold cat eats fine"),
        (
            "20 words (the first 8 searched)",
            "th an bo ca ea fi gr he in ju ke lo mo ni ol pe qu ri so un",
        ),
        ("8 CJK words", "世界 東京 大阪 京都 漢字 北京 서울 カナ"),
    ];
    let mut rows: Vec<Row> = Vec::new();
    for (what, q) in cases {
        let (case, baseline) = (url(q), url(baseline_query));
        for _ in 0..WARMUP {
            get(&client, &case).await;
            get(&client, &baseline).await;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..SAMPLES {
            a.push(get(&client, &case).await);
            b.push(get(&client, &baseline).await);
        }
        rows.push(latency_row(
            &format!("{what} vs one word"),
            median(a),
            median(b),
            None,
        ));
    }
    println!();
    println!(
        "search over {POSTS} posts (medians of {SAMPLES}, interleaved; one word: {baseline_query:?}):"
    );
    print_table(&rows);
    let _ = std::fs::remove_dir_all(&dir);
}
