//! Operations on posts. Creating, editing, patching or deleting a post with its tags is one
//! transaction, run as a write procedure ([`CreatePost`], [`UpdatePost`], [`PatchPost`],
//! [`DeletePost`]): from a replica, one round trip to the primary whatever the number of tags.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, ModelTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Select, Set, Statement,
    sea_query::{Expr, ExprTrait},
};
use sea_orm_litefs::{ClusterConnection, ClusterTransaction, Procedure};
use unicode_normalization::UnicodeNormalization;

use super::input::{PostDraft, PostInput, PostPatch};
use super::{BlogError, Page, Unique, tags};
use crate::entity::{post, post_tag, tag};

/// A post with its tags, alphabetically.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PostWithTags {
    #[serde(flatten)]
    pub post: post::Model,
    pub tags: Vec<String>,
}

/// Which posts a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    PublishedOnly,
    /// Drafts too (the admin's view).
    All,
}

pub const PER_PAGE: u64 = 10;

/// Posts newest first (published ones by publication time, drafts by last edit), one page of them.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    visibility: Visibility,
    tag_label: Option<&str>,
    page: u64,
    per_page: u64,
) -> Result<Page<PostWithTags>, BlogError> {
    let mut query = post::Entity::find();
    if visibility == Visibility::PublishedOnly {
        query = query.filter(post::Column::Published.eq(true));
    }
    if let Some(label) = tag_label {
        query = query
            .join(sea_orm::JoinType::InnerJoin, post::Relation::PostTag.def())
            .join(sea_orm::JoinType::InnerJoin, post_tag::Relation::Tag.def())
            .filter(tag::Column::Label.eq(label));
    }
    let query = query
        .order_by_desc(Expr::col(post::Column::PublishedAt).is_not_null())
        .order_by_desc(post::Column::PublishedAt)
        .order_by_desc(post::Column::UpdatedAt)
        .order_by_desc(post::Column::Id);
    paginate(db, query, page, per_page).await
}

/// Which posts the admin dashboard lists (its filter, `?status=` in its address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shown {
    #[default]
    All,
    Drafts,
    Published,
}

impl Shown {
    /// Every filter, in the order the dashboard offers them.
    pub const EVERY: [Shown; 3] = [Shown::All, Shown::Drafts, Shown::Published];

    /// The filter `text` names (`all`, `drafts`, `published`, as in the address), if any.
    pub fn parse(text: &str) -> Option<Self> {
        Shown::EVERY.into_iter().find(|s| s.as_str() == text.trim())
    }

    /// Its name in the dashboard's address.
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::All => "all",
            Shown::Drafts => "drafts",
            Shown::Published => "published",
        }
    }
}

/// One page of the admin dashboard's posts `shown`: drafts first, the newest edited first (a post
/// taken back to a draft too, whenever it was published), then published posts, the newest
/// published first.
pub async fn dashboard<C: ConnectionTrait>(
    db: &C,
    shown: Shown,
    page: u64,
    per_page: u64,
) -> Result<Page<PostWithTags>, BlogError> {
    let mut query = post::Entity::find();
    match shown {
        Shown::All => {}
        Shown::Drafts => query = query.filter(post::Column::Published.eq(false)),
        Shown::Published => query = query.filter(post::Column::Published.eq(true)),
    }
    let query = query
        .order_by_asc(post::Column::Published)
        .order_by_desc(Expr::cust(
            "CASE WHEN posts.published THEN NULL ELSE posts.updated_at END",
        ))
        .order_by_desc(post::Column::PublishedAt)
        .order_by_desc(post::Column::UpdatedAt)
        .order_by_desc(post::Column::Id);
    paginate(db, query, page, per_page).await
}

/// Longest search text accepted, and most words used from it: each word is one full-text query
/// per index, so a query's cost grows with its words (the rest are ignored, and said to be:
/// [`SearchWords::ignored`]).
pub const MAX_SEARCH_CHARS: usize = 200;
pub const MAX_SEARCH_WORDS: usize = 8;
/// Most ignored words listed (the first ones typed); past them, [`SearchWords::more_ignored`].
pub const MAX_IGNORED_WORDS: usize = 16;

/// The words of a person's search text ([`search_words`]): the first [`MAX_SEARCH_WORDS`] are
/// searched, the others ignored (a page or the API says which).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchWords {
    pub searched: Vec<String>,
    /// The first [`MAX_IGNORED_WORDS`] ignored words, in the order typed.
    pub ignored: Vec<String>,
    /// Whether more words than those were ignored.
    pub more_ignored: bool,
    /// Whether the text, trimmed and in NFC (as its words are read), is longer than
    /// [`MAX_SEARCH_CHARS`]: then words past the cut are ignored for that reason.
    pub cut: bool,
}

/// Posts whose title or body contain every one of `words` (full-text search with SQLite FTS5),
/// best matches first. A word matches a post that has a word it begins, as written ("lite"
/// finds "LiteFS", "replicatio" finds "replication"; case and Latin diacritics aside), or a
/// word whose stem begins with the word's stem ("replicating" finds "replicated", "running"
/// finds "runner"): two indexes, `posts_fts_unstemmed` and `posts_fts` (porter), each asked for
/// the word as a prefix (which `posts_fts` stems). A word of one character is matched whole,
/// not as a prefix: one letter begins most words of most posts, so as a prefix it was the most
/// expensive search there was, and found everything (marks aside: [`base_len`]). A word with a
/// CJK character is also found inside a run of them (the index makes a run one word), as a
/// substring: its ASCII letters in any case, and, when it begins with a CJK character, its Latin
/// letters with any accent ([`substring_glob`]); the others as typed. No words find nothing.
///
/// Ranking: first the posts with fewer words found only by their stem (a word found as typed
/// is the better match; a CJK substring match is one), then per post the sum over the words of the word's BM25 score (a title
/// match weighing five times a body match, a rare word more than a common one) in the index of
/// words as written if it matched there, else in the stemmed one (a CJK word's score, in every
/// post: -5 if found in the title plus -1 if in the body, without rarity); ties in the order of the post lists
/// (newest published first). Each index is queried once per word, ranks and all (a CJK word's
/// three times: the word, the word in the title, the word in the body) (ranking each
/// post found by a query of its own made a search that finds thousands of posts quadratic).
///
/// `words` are the searched ones of [`search_words`].
pub async fn search<C: ConnectionTrait>(
    db: &C,
    visibility: Visibility,
    words: &[String],
    page: u64,
    per_page: u64,
) -> Result<Page<PostWithTags>, BlogError> {
    let per_page = per_page.clamp(1, 100);
    if words.is_empty() {
        return Ok(Page::empty(per_page));
    }
    let unstemmed = has_table(db, "posts_fts_unstemmed").await?;
    let (sql, values) = search_sql(words, visibility, unstemmed);
    let found: Vec<i32> = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index(0))
        .collect::<Result<_, _>>()?;
    let total_items = found.len() as u64;
    let total_pages = std::cmp::max(total_items.div_ceil(per_page), 1);
    let page = std::cmp::max(page, 1);
    // Past the last page there is nothing (and a huge page number would overflow the offset).
    if page > total_pages {
        return Err(BlogError::NotFound);
    }
    let ids: Vec<i32> = found
        .iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .copied()
        .collect();
    let mut posts = post::Entity::find()
        .filter(post::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    posts.sort_by_key(|p| ids.iter().position(|id| *id == p.id));
    Ok(Page {
        items: with_tags(db, posts).await?,
        page,
        per_page,
        total_items,
        total_pages,
    })
}

/// The words of a person's search text: its runs of letters, digits and the marks that combine
/// with them (an accent typed apart, `e` then U+0301, is part of its word, as in the indexes),
/// in NFC, lowercased (ASCII only in a word with a CJK character), each once. The words that end within the first [`MAX_SEARCH_CHARS`]
/// characters of the text (trimmed, in NFC), up to [`MAX_SEARCH_WORDS`] of them, are searched;
/// every other word is ignored, and said to be: past the 8th, a word the cut splits (searched as
/// the fragment left, it would be another word) and the words after it. Only those, so a word
/// quoted (`"word"`) is never FTS5 syntax. The search page and the API both take their words
/// from here, so the same text searches the same words.
pub fn search_words(text: &str) -> SearchWords {
    use unicode_normalization::char::is_combining_mark;
    let text: String = text.trim().nfc().collect();
    let mut words = SearchWords {
        cut: text.chars().count() > MAX_SEARCH_CHARS,
        ..SearchWords::default()
    };
    // Each word with the number of characters of the text up to its end.
    let mut end = 0;
    let mut current = String::new();
    let mut found: Vec<(String, usize)> = Vec::new();
    for c in text.chars() {
        if c.is_alphanumeric() || is_combining_mark(c) {
            current.push(c);
        } else if !current.is_empty() {
            found.push((std::mem::take(&mut current), end));
        }
        end += 1;
    }
    if !current.is_empty() {
        found.push((current, end));
    }
    for (word, end) in found {
        // A word has a letter or digit: marks alone (an emoji's variation selector) are none.
        if !word.chars().any(char::is_alphanumeric) {
            continue;
        }
        // A CJK word is also looked for as a substring of `lower(title)` and `lower(body)`
        // ([`search_sql`]), and SQLite's `lower()` folds ASCII only: so such a word is lowercased
        // the same way, and found as typed ("京ÉCOLE" in "東京ÉCOLE"). The indexes fold the rest.
        let word = if has_cjk(&word) {
            word.to_ascii_lowercase()
        } else {
            word.to_lowercase()
        };
        if words.searched.contains(&word) || words.ignored.contains(&word) {
            continue;
        }
        if end <= MAX_SEARCH_CHARS
            && words.searched.len() < MAX_SEARCH_WORDS
            && words.ignored.is_empty()
        {
            words.searched.push(word);
        } else if words.ignored.len() < MAX_IGNORED_WORDS {
            words.ignored.push(word);
        } else {
            // Listing them all would cost the square of their number (each is compared with
            // those before): 10,000 words, a query string within the server's 64 KB, took 0.3 s
            // of a core.
            words.more_ignored = true;
            break;
        }
    }
    words
}

/// Whether the database has the table `name`: a node of this version may find a database its
/// latest migrations have not run on yet during a rolling deploy (on a replica, while the
/// primary still runs the version before), or after `blog migrate down`. Search then answers
/// without the unstemmed index (`m20261129_000002_posts_search_unstemmed`), and an old slug
/// without `post_slugs` (`m20261130_000001_post_slugs`) is no old slug.
async fn has_table<C: ConnectionTrait>(db: &C, name: &str) -> Result<bool, BlogError> {
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
            [name.into()],
        ))
        .await?
        .is_some())
}

/// How many characters `word` has besides marks (General Category M: the combining accents, the
/// variation selectors, the enclosing keycap), which the indexes drop: `t` + U+0301, `1️⃣` and
/// `i̇` (`İ` lowercased) are one character, as `t`, `1` and `i` are, for the rule that a word of
/// one character is matched whole ([`search_sql`]).
fn base_len(word: &str) -> usize {
    word.chars()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .count()
}

/// The longest CJK word matched inside a run with the accents of its Latin letters aside
/// ([`substring_glob`]); a longer one is matched as typed. A pattern's cost is the text's length
/// times the pattern's wherever its start repeats in the text (a word of 199 characters over
/// four 512 KiB posts of the same two letters took 15 s).
const MAX_GLOB_CHARS: usize = 16;

/// The first character of `word` as [`substring_glob`] reads it (its accent aside).
fn first_letter(word: &str) -> char {
    word.nfd().next().map_or(' ', |c| c.to_ascii_lowercase())
}

/// The `GLOB` pattern that finds `word` (a CJK word, lowercased as [`search_words`] does it)
/// inside `lower(title)` or `lower(body)` with the accents of Latin letters aside, as the
/// indexes have them: the word's accented Latin letters are taken without their accents, and each
/// Latin letter then matches itself or any of its accented forms, capitals included (SQLite's
/// `lower()` leaves them): `京café` and `京cafe` give `*京caf[eèéêë…ÈÉÊË…]*`, which finds
/// "東京café" and "東京cafe". An accent typed apart in a title or body (`e` then U+0301) is text
/// after the letter: such a word is found where the accent ends it, not inside.
///
/// With the pattern, its longest run of characters that are themselves (the word's CJK
/// characters among them), which a text it matches contains: `instr` finds it fast, where a
/// `GLOB` that begins with a set is slow, so the `GLOB` runs on the texts that have it alone.
fn substring_glob(word: &str) -> (String, String) {
    use unicode_normalization::char::is_combining_mark;
    let mut plain = String::new();
    let mut after_latin = false;
    for c in word.nfd() {
        if is_combining_mark(c) && after_latin {
            continue;
        }
        after_latin = c.is_ascii_alphabetic() || (after_latin && is_combining_mark(c));
        // A capital with an accent (`É`, which `lower()` leaves) is taken as its small letter,
        // whose forms include it.
        plain.push(c.to_ascii_lowercase());
    }
    let mut pattern = String::from("*");
    let (mut literal, mut longest) = (String::new(), String::new());
    for c in plain.nfc() {
        match latin_accented().get(&c) {
            Some(forms) => {
                pattern.push('[');
                pattern.push(c);
                pattern.push_str(forms);
                pattern.push(']');
                literal.clear();
            }
            None => {
                pattern.push(c);
                literal.push(c);
                if literal.chars().count() > longest.chars().count() {
                    longest.clone_from(&literal);
                }
            }
        }
    }
    pattern.push('*');
    (pattern, longest)
}

/// The accented forms of each lowercase ASCII letter, small and capital: the letters of the
/// Latin blocks whose canonical decomposition is that letter and marks (`é`: `e` U+0301).
fn latin_accented() -> &'static HashMap<char, String> {
    static FORMS: std::sync::OnceLock<HashMap<char, String>> = std::sync::OnceLock::new();
    FORMS.get_or_init(|| {
        use unicode_normalization::char::{decompose_canonical, is_combining_mark};
        let mut forms: HashMap<char, String> = HashMap::new();
        for c in (0xC0..=0x24F_u32)
            .chain(0x1E00..=0x1EFF)
            .filter_map(char::from_u32)
        {
            let mut parts = Vec::new();
            decompose_canonical(c, |p| parts.push(p));
            if let Some((base, marks)) = parts.split_first()
                && base.is_ascii_alphabetic()
                && !marks.is_empty()
                && marks.iter().all(|m| is_combining_mark(*m))
            {
                forms.entry(base.to_ascii_lowercase()).or_default().push(c);
            }
        }
        forms
    })
}

/// Whether `word` has a Chinese, Japanese or Korean character (Han, Hiragana, Katakana, Hangul):
/// SQLite's unicode61 tokenizer makes a whole run of them one token, so such a word is also
/// looked for as a substring of titles and bodies ([`search_sql`]).
fn has_cjk(word: &str) -> bool {
    word.chars().any(|c| {
        matches!(c as u32,
            0x1100..=0x11FF     // Hangul Jamo
            | 0x2E80..=0x2FDF   // CJK radicals, Kangxi radicals
            | 0x3005..=0x3007   // 々 〆 〇
            | 0x3040..=0x30FF   // Hiragana, Katakana
            | 0x3130..=0x318F   // Hangul compatibility Jamo
            | 0x31F0..=0x31FF   // Katakana phonetic extensions
            | 0x3400..=0x4DBF   // CJK extension A
            | 0x4E00..=0x9FFF   // CJK unified ideographs
            | 0xA960..=0xA97F   // Hangul Jamo extended A
            | 0xAC00..=0xD7FF   // Hangul syllables, Jamo extended B
            | 0xF900..=0xFAFF   // CJK compatibility ideographs
            | 0xFF66..=0xFF9D   // halfwidth Katakana
            | 0xFFA0..=0xFFDC   // halfwidth Hangul
            | 0x20000..=0x3FFFF // CJK extensions B and on (planes 2 and 3)
        )
    })
}

/// The query of [`search`]: the ids of the posts that match every one of `words` (not empty),
/// best first, and its values. Per word, each index is asked once for the word as a prefix
/// (`"word"*`; the stemmed index stems it first), or whole if it is one character besides marks
/// ([`base_len`]: `"w"`), with
/// the row's BM25 score and how it matched (`kind`: 0 in the unstemmed index, 2 in the stemmed
/// one). A word with a CJK character ([`has_cjk`]) is also looked for as a substring of the
/// title and the body (`kind` 1: found as typed), and every match of such a word, in an index or
/// as a substring, is scored by the columns it is in, -5 for the title plus -1 for the body (as
/// BM25's weights have it, with no rarity), never by BM25: so a post where the word stands alone
/// and one where it is inside a run are ranked on one scale. A post is found when every word
/// matched it one way or another, and each word counts with the score of its best match found
/// as typed (kind 0 or 1), else with its stemmed one. Without the unstemmed
/// index (a database not migrated yet) the stemmed one alone answers, as before that index: so
/// a migrated node finds whatever an unmigrated one does.
fn search_sql(
    words: &[String],
    visibility: Visibility,
    unstemmed: bool,
) -> (String, Vec<sea_orm::Value>) {
    let mut matches = Vec::new();
    let mut values: Vec<sea_orm::Value> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let pattern = if base_len(word) == 1 {
            format!("\"{word}\"")
        } else {
            format!("\"{word}\"*")
        };
        let cjk = has_cjk(word);
        let indexes: &[(&str, u8)] = if unstemmed {
            &[("posts_fts", 2), ("posts_fts_unstemmed", 0)]
        } else {
            &[("posts_fts", 2)]
        };
        for (index, kind) in indexes {
            if cjk {
                // Scored as the substring match is (below), by the columns it matched in, not
                // by BM25: a word's scores are then of one scale in every post.
                matches.push(format!(
                    "SELECT {i}, rowid, -(5.0 * (rowid IN (\
                        SELECT rowid FROM {index} WHERE {index} MATCH ?)) \
                        + (rowid IN (SELECT rowid FROM {index} WHERE {index} MATCH ?))), {kind} \
                     FROM {index} WHERE {index} MATCH ?"
                ));
                values.push(format!("title : {pattern}").into());
                values.push(format!("body : {pattern}").into());
            } else {
                matches.push(format!(
                    "SELECT {i}, rowid, bm25({index}, 5.0, 1.0), {kind} \
                     FROM {index} WHERE {index} MATCH ?"
                ));
            }
            values.push(pattern.clone().into());
        }
        if cjk {
            // `lower()` folds ASCII only, as `search_words` lowercased the word, and the pattern
            // takes each Latin letter with any accent: a word mixing scripts ("litefs世界",
            // "京École", "京cafe") is found whatever the case of its ASCII and the Latin accents.
            matches.push(format!(
                "SELECT {i}, id, -(5.0 * in_title + in_body), 1 FROM (\
                    SELECT id, \
                        instr(lower(title), ?) > 0 AND lower(title) GLOB ? AS in_title, \
                        instr(lower(body), ?) > 0 AND lower(body) GLOB ? AS in_body \
                    FROM posts\
                 ) WHERE in_title OR in_body"
            ));
            // A word that begins with a Latin letter is found as typed (`instr` alone): its
            // pattern would begin with a set of letters, which `GLOB` tries at every character
            // of every text, at a cost of the text's length times the word's (a 190-letter word
            // over four 500 KB posts ran past the request's timeout).
            // A pattern of characters that are all themselves (no Latin letter) is its literal
            // run, which `instr` alone finds: the `GLOB` is then `*`.
            // So is a word longer than MAX_GLOB_CHARS, whatever it begins with: each character
            // the pattern has is tried at each place a shorter part of it matched.
            let as_typed = latin_accented().contains_key(&first_letter(word))
                || word.chars().count() > MAX_GLOB_CHARS;
            let (glob, literal) = match as_typed {
                true => ("*".to_owned(), word.clone()),
                false => match substring_glob(word) {
                    (glob, literal) if glob == format!("*{literal}*") => ("*".to_owned(), literal),
                    found => found,
                },
            };
            for _ in ["title", "body"] {
                values.push(literal.clone().into());
                values.push(glob.clone().into());
            }
        }
    }
    let published = match visibility {
        Visibility::PublishedOnly => "AND posts.published",
        Visibility::All => "",
    };
    // MATERIALIZED: the rows of each full-text query with their scores first, then the
    // aggregates; flattened into them (as SQLite does with one query alone), `bm25()` is "unable
    // to use function bm25 in the requested context". In `per_word`, a word's row for a post is
    // its best match found as typed (kind 0 or 1), else its stemmed one: for a word without CJK
    // the unstemmed index's row, for a CJK word the best columns any as-typed match found (the
    // same, in a post that has the word in the index's words and as a substring alike). Ties in
    // the post lists' order (`list`).
    let sql = format!(
        "WITH matched(word, id, score, kind) AS MATERIALIZED ({}), \
         per_word AS (SELECT word, id, score, kind FROM (\
            SELECT word, id, score, kind, row_number() OVER (\
                PARTITION BY word, id ORDER BY kind = 2, score) AS best FROM matched\
            ) WHERE best = 1) \
         SELECT found.id FROM (\
            SELECT id, sum(kind = 2) AS stem_only, sum(score) AS score FROM per_word \
            GROUP BY id HAVING count(*) = {} \
         ) AS found JOIN posts ON posts.id = found.id {published} \
         ORDER BY found.stem_only, found.score, posts.published_at IS NOT NULL DESC, \
            posts.published_at DESC, posts.updated_at DESC, posts.id DESC",
        matches.join(" UNION ALL "),
        words.len()
    );
    (sql, values)
}

/// One page of the posts `query` selects, in its order, with their tags.
async fn paginate<C: ConnectionTrait>(
    db: &C,
    query: Select<post::Entity>,
    page: u64,
    per_page: u64,
) -> Result<Page<PostWithTags>, BlogError> {
    let per_page = per_page.clamp(1, 100);
    let paginator = query.paginate(db, per_page);
    let counts = paginator.num_items_and_pages().await?;
    let page = std::cmp::max(page, 1);
    let total_pages = std::cmp::max(counts.number_of_pages, 1);
    // Past the last page there is nothing (and a huge page number would overflow the offset).
    if page > total_pages {
        return Err(BlogError::NotFound);
    }
    let posts = paginator.fetch_page(page - 1).await?;
    Ok(Page {
        items: with_tags(db, posts).await?,
        page,
        per_page,
        total_items: counts.number_of_items,
        total_pages,
    })
}

/// The latest `limit` published posts, newest first: for the feed and the sitemap.
pub async fn latest_published<C: ConnectionTrait>(
    db: &C,
    limit: u64,
) -> Result<Vec<post::Model>, BlogError> {
    Ok(post::Entity::find()
        .filter(post::Column::Published.eq(true))
        .order_by_desc(post::Column::PublishedAt)
        .order_by_desc(post::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

pub async fn find_by_slug<C: ConnectionTrait>(
    db: &C,
    slug: &str,
    visibility: Visibility,
) -> Result<PostWithTags, BlogError> {
    // Slugs are stored in NFC: an address may spell one decomposed.
    let slug: String = slug.nfc().collect();
    let post = post::Entity::find()
        .filter(post::Column::Slug.eq(slug))
        .one(db)
        .await?;
    match post {
        Some(post) if post.published || visibility == Visibility::All => {
            Ok(with_tags(db, vec![post]).await?.remove(0))
        }
        _ => Err(BlogError::NotFound),
    }
}

/// The post that had the slug `slug` before it was renamed (the database records a post's old
/// slugs, `post_slugs`: see `migration/src/m20261130_000001_post_slugs.rs`), if `visibility`
/// shows it. A slug a post has now is never an old slug: look it up with [`find_by_slug`] first.
pub async fn find_by_old_slug<C: ConnectionTrait>(
    db: &C,
    slug: &str,
    visibility: Visibility,
) -> Result<post::Model, BlogError> {
    if !has_table(db, "post_slugs").await? {
        return Err(BlogError::NotFound);
    }
    // Slugs are stored in NFC, old ones too: an address may spell one decomposed.
    let slug: String = slug.nfc().collect();
    let post = post::Entity::find()
        .filter(Expr::cust_with_values(
            "posts.id IN (SELECT post_id FROM post_slugs WHERE slug = ?)",
            [slug.as_str()],
        ))
        .one(db)
        .await?;
    match post {
        Some(post) if post.published || visibility == Visibility::All => Ok(post),
        _ => Err(BlogError::NotFound),
    }
}

/// The post `id`, drafts included.
pub async fn find_by_id<C: ConnectionTrait>(db: &C, id: i32) -> Result<PostWithTags, BlogError> {
    match post::Entity::find_by_id(id).one(db).await? {
        Some(post) => Ok(with_tags(db, vec![post]).await?.remove(0)),
        None => Err(BlogError::NotFound),
    }
}

/// Creates a post and links its tags (creating missing ones) in one transaction.
pub async fn create(db: &ClusterConnection, input: &PostInput) -> Result<PostWithTags, BlogError> {
    db.call::<CreatePost>(input.clone()).await.map(Saved::into)
}

/// Replaces the fields and tags of the post `id` in one transaction, if it is still the version
/// `expected` (see [`Version`]): otherwise nothing is written and the answer is
/// [`BlogError::Changed`] with the post as it is now. The check is made inside the write's
/// transaction, on the primary, so no change made between the read of `expected` and this write
/// (a save of the post, or a rename or deletion of one of its tags) is overwritten. The slug may
/// change.
pub async fn update(
    db: &ClusterConnection,
    id: i32,
    expected: Version,
    input: &PostInput,
) -> Result<PostWithTags, BlogError> {
    db.call::<UpdatePost>((id, expected, input.clone()))
        .await
        .map(Saved::into)
}

/// A version of a post, as an edit form or an `ETag` names it: its `updated_at` to the
/// nanosecond, which every write of the post moves (`src/entity/post.rs`), and a hash of the
/// labels of its tags, which a tag renamed or deleted on the Tags page changes without writing
/// the post. An equal version means the post and its tags are as they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Version {
    updated_at: DateTime<Utc>,
    tags: u64,
}

impl Version {
    /// The version `post` is, with its tags as read with it.
    pub fn of(post: &PostWithTags) -> Self {
        Version {
            updated_at: post.post.updated_at,
            tags: tags_hash(&post.tags),
        }
    }

    /// The version as text: `updated_at` (RFC 3339, nanoseconds, UTC), `~`, and the tags' hash
    /// (16 hex digits). No `"`, `,` or space, so it fits in an `ETag` and an `If-Match` list.
    pub fn token(&self) -> String {
        format!("{}~{:016x}", Version::time_text(self.updated_at), self.tags)
    }

    /// A moment as a token writes it: RFC 3339 to the nanosecond (always nine digits), UTC, so
    /// that two of them compare as texts as they do as times (`static/drafts.js` compares a
    /// draft's version with the post's creation).
    pub fn time_text(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Nanos, true)
    }

    /// The version a [`Version::token`] names; `None` for any other text (among them a token of
    /// before the tags' hash, which cannot tell whether the post's tags changed since).
    pub fn parse(token: &str) -> Option<Self> {
        let (updated_at, tags) = token.trim().rsplit_once('~')?;
        if tags.len() != 16 || !tags.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Version {
            updated_at: DateTime::parse_from_rfc3339(updated_at)
                .ok()?
                .with_timezone(&Utc),
            tags: u64::from_str_radix(tags, 16).ok()?,
        })
    }
}

/// The first 8 bytes of the SHA-256 of the labels, sorted, each preceded by its length: the same
/// on every node and in every build (unlike `std`'s hashers), whatever order they were read in.
fn tags_hash(labels: &[String]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&str> = labels.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut hasher = Sha256::new();
    for label in sorted {
        hasher.update((label.len() as u64).to_le_bytes());
        hasher.update(label.as_bytes());
    }
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// The versions of a post a write may replace or delete (the API's `If-Match`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Expected {
    /// Whatever version it is now.
    #[default]
    Any,
    /// One of these: the post's id and a [`Version`] of it. None of them matching, nothing is
    /// written ([`BlogError::Changed`]).
    OneOf(Vec<(i32, Version)>),
}

impl Expected {
    fn allows(&self, post: &PostWithTags) -> bool {
        match self {
            Expected::Any => true,
            Expected::OneOf(versions) => versions.contains(&(post.post.id, Version::of(post))),
        }
    }
}

/// Applies `patch` to the post `slug`: reads the post, merges the fields given, validates the
/// result as [`PostInput::parse`] does and writes it, in one transaction (so a concurrent edit of
/// other fields is kept), if the post is a version `expected` allows (checked in that
/// transaction). The slug may change.
pub async fn patch(
    db: &ClusterConnection,
    slug: &str,
    patch: &PostPatch,
    expected: &Expected,
) -> Result<PostWithTags, BlogError> {
    db.call::<PatchPost>((slug.to_owned(), patch.clone(), expected.clone()))
        .await
        .map(Saved::into)
}

/// Deletes the post `slug` if it is a version `expected` allows (checked in the delete's
/// transaction: otherwise nothing is deleted, [`BlogError::Changed`]); its tag links go with it
/// (the tags stay).
pub async fn delete(
    db: &ClusterConnection,
    slug: &str,
    expected: &Expected,
) -> Result<(), BlogError> {
    db.call::<DeletePost>((slug.to_owned(), expected.clone()))
        .await
}

/// A post with its tags as a procedure returns it ([`PostWithTags`] flattens the post for JSON,
/// which bincode cannot encode).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Saved(post::Model, Vec<String>);

impl From<Saved> for PostWithTags {
    fn from(Saved(post, tags): Saved) -> Self {
        PostWithTags { post, tags }
    }
}

impl From<PostWithTags> for Saved {
    fn from(saved: PostWithTags) -> Self {
        Saved(saved.post, saved.tags)
    }
}

/// [`create`]'s transaction.
pub struct CreatePost;

impl Procedure for CreatePost {
    const NAME: &'static str = "blog.posts.create";
    const VERSION: u32 = 1;
    type Args = PostInput;
    type Output = Saved;
    type Error = BlogError;

    async fn run(txn: &ClusterTransaction, input: PostInput) -> Result<Saved, BlogError> {
        create_in(txn, &input).await.map(Saved::from)
    }
}

/// [`update`]'s transaction: the post's id, the version of it the new content was written
/// against ([`Version`]), and the new content.
///
/// Version 2 (version 1 took the post's slug and no version). On a primary still running version
/// 1 (a rolling deploy) the call is refused before anything runs, and the caller runs this same
/// body as an interactive transaction on the primary: the version check is then made in that
/// transaction, as here.
pub struct UpdatePost;

impl Procedure for UpdatePost {
    const NAME: &'static str = "blog.posts.update";
    const VERSION: u32 = 2;
    type Args = (i32, Version, PostInput);
    type Output = Saved;
    type Error = BlogError;

    async fn run(
        txn: &ClusterTransaction,
        (id, expected, input): Self::Args,
    ) -> Result<Saved, BlogError> {
        update_in(txn, id, expected, &input).await.map(Saved::from)
    }
}

/// [`patch`]'s transaction: the slug the post has now, the fields to change, and the versions
/// of the post it may change. Its validation errors are [`BlogError::Validation`] with their
/// fields, as [`PostInput::parse`] gives them.
///
/// Version 2 (version 1 had no versions to check): on a primary still running version 1 the
/// caller runs this body as an interactive transaction, which checks them.
pub struct PatchPost;

impl Procedure for PatchPost {
    const NAME: &'static str = "blog.posts.patch";
    const VERSION: u32 = 2;
    type Args = (String, PostPatch, Expected);
    type Output = Saved;
    type Error = BlogError;

    async fn run(
        txn: &ClusterTransaction,
        (slug, patch, expected): Self::Args,
    ) -> Result<Saved, BlogError> {
        patch_in(txn, &slug, &patch, &expected)
            .await
            .map(Saved::from)
    }
}

/// [`delete`]'s transaction: the post's slug, and the versions of the post it may delete.
///
/// Version 2 (version 1 had no versions to check): on a primary still running version 1 the
/// caller runs this body as an interactive transaction, which checks them.
pub struct DeletePost;

impl Procedure for DeletePost {
    const NAME: &'static str = "blog.posts.delete";
    const VERSION: u32 = 2;
    type Args = (String, Expected);
    type Output = ();
    type Error = BlogError;

    async fn run(txn: &ClusterTransaction, (slug, expected): Self::Args) -> Result<(), BlogError> {
        delete_in(txn, &slug, &expected).await
    }
}

/// Creates a post and links its tags (creating missing ones), inside the caller's transaction.
pub async fn create_in<C: ConnectionTrait>(
    txn: &C,
    input: &PostInput,
) -> Result<PostWithTags, BlogError> {
    let post = post::ActiveModel {
        slug: Set(input.slug.as_str().to_owned()),
        title: Set(input.title.clone()),
        body: Set(input.body.clone()),
        published: Set(input.published),
        published_at: Set(input.published.then(Utc::now)),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(BlogError::unless_unique(Unique::PostSlug))?;
    link_tags(txn, post.id, input).await?;
    Ok(with_tags(txn, vec![post]).await?.remove(0))
}

/// Replaces the fields and tags of the post `id` if it is still the version `expected`, inside
/// the caller's transaction (see [`update`]).
pub async fn update_in<C: ConnectionTrait>(
    txn: &C,
    id: i32,
    expected: Version,
    input: &PostInput,
) -> Result<PostWithTags, BlogError> {
    let existing = find_by_id(txn, id).await?;
    if Version::of(&existing) != expected {
        return Err(BlogError::Changed(Box::new(existing)));
    }
    save_in(txn, existing.post, input, true).await
}

/// Applies a patch to a post, inside the caller's transaction: the post as it is now, with the
/// fields given replaced, validated as a whole. Tags left out are kept as they are, not parsed
/// again (so a tag saved before a label rule was added does not make the patch fail).
pub async fn patch_in<C: ConnectionTrait>(
    txn: &C,
    slug: &str,
    patch: &PostPatch,
    expected: &Expected,
) -> Result<PostWithTags, BlogError> {
    let current = find_by_slug(txn, slug, Visibility::All).await?;
    if !expected.allows(&current) {
        return Err(BlogError::Changed(Box::new(current)));
    }
    let existing = current.post;
    let draft = PostDraft {
        title: patch
            .title
            .clone()
            .unwrap_or_else(|| existing.title.clone()),
        slug: Some(patch.slug.clone().unwrap_or_else(|| existing.slug.clone())),
        body: patch.body.clone().unwrap_or_else(|| existing.body.clone()),
        tags: patch.tags.clone().unwrap_or_default(),
        published: patch.published.unwrap_or(existing.published),
    };
    // Not given, or given as stored (exactly or in NFC), the slug stays as stored: it is not
    // parsed as a typed one (folded, or refused where folding it would be), as a slug typed in
    // fullwidth before typed slugs were folded is no rename of an edit of the body, nor a
    // conflict with a post at its folded form.
    let input = PostInput::parse_edit(&draft, Some(&existing.slug))?;
    save_in(txn, existing, &input, patch.tags.is_some()).await
}

/// Writes `input` over the post `existing`, its tags too when `replace_tags`.
async fn save_in<C: ConnectionTrait>(
    txn: &C,
    existing: post::Model,
    input: &PostInput,
    replace_tags: bool,
) -> Result<PostWithTags, BlogError> {
    let first_publication = input.published && existing.published_at.is_none();
    let mut post: post::ActiveModel = existing.into();
    post.slug = Set(input.slug.as_str().to_owned());
    post.title = Set(input.title.clone());
    post.body = Set(input.body.clone());
    post.published = Set(input.published);
    if first_publication {
        post.published_at = Set(Some(Utc::now()));
    }
    let post = post
        .update(txn)
        .await
        .map_err(BlogError::unless_unique(Unique::PostSlug))?;
    if replace_tags {
        post_tag::Entity::delete_many()
            .filter(post_tag::Column::PostId.eq(post.id))
            .exec(txn)
            .await?;
        link_tags(txn, post.id, input).await?;
    }
    Ok(with_tags(txn, vec![post]).await?.remove(0))
}

/// Deletes the post `slug` if it is a version `expected` allows, inside the caller's transaction
/// (see [`delete`]).
pub async fn delete_in<C: ConnectionTrait>(
    txn: &C,
    slug: &str,
    expected: &Expected,
) -> Result<(), BlogError> {
    let current = find_by_slug(txn, slug, Visibility::All).await?;
    if !expected.allows(&current) {
        return Err(BlogError::Changed(Box::new(current)));
    }
    current.post.delete(txn).await?;
    Ok(())
}

pub async fn count_drafts<C: ConnectionTrait>(db: &C) -> Result<u64, BlogError> {
    Ok(post::Entity::find()
        .filter(post::Column::Published.eq(false))
        .count(db)
        .await?)
}

/// Every post, drafts included.
pub async fn count_all<C: ConnectionTrait>(db: &C) -> Result<u64, BlogError> {
    Ok(post::Entity::find().count(db).await?)
}

async fn link_tags<C: ConnectionTrait>(
    db: &C,
    post_id: i32,
    input: &PostInput,
) -> Result<(), BlogError> {
    let tag_ids = tags::ensure(db, &input.tags).await?;
    if tag_ids.is_empty() {
        return Ok(());
    }
    let links = tag_ids.into_iter().map(|tag_id| post_tag::ActiveModel {
        post_id: Set(post_id),
        tag_id: Set(tag_id),
    });
    post_tag::Entity::insert_many(links).exec(db).await?;
    Ok(())
}

async fn with_tags<C: ConnectionTrait>(
    db: &C,
    posts: Vec<post::Model>,
) -> Result<Vec<PostWithTags>, BlogError> {
    let ids: Vec<i32> = posts.iter().map(|p| p.id).collect();
    let mut by_post: HashMap<i32, Vec<String>> = HashMap::new();
    for (post_id, tag) in tags::for_posts(db, &ids).await? {
        by_post.entry(post_id).or_default().push(tag.label);
    }
    Ok(posts
        .into_iter()
        .map(|post| PostWithTags {
            tags: by_post.remove(&post.id).unwrap_or_default(),
            post,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{
        MAX_IGNORED_WORDS, MAX_SEARCH_CHARS, MAX_SEARCH_WORDS, PostWithTags, SearchWords, Version,
        base_len, has_cjk, search_words, substring_glob,
    };

    #[test]
    fn a_cjk_substring_glob_takes_latin_letters_with_any_accent() {
        let glob = substring_glob("京café");
        assert_eq!(glob, substring_glob("京cafe"));
        assert_eq!(glob, substring_glob("京cafe\u{301}"));
        assert_eq!(glob, substring_glob("京cafÉ"));
        assert!(glob.0.starts_with("*京[cÇ"), "{glob:?}");
        assert!(
            glob.0.contains("][eÈÉ") && glob.0.ends_with("]*"),
            "{glob:?}"
        );
        assert_eq!(glob.1, "京");
        assert_eq!(substring_glob("ab東京x世界").1, "東京");
        // Other scripts keep their marks; Hangul stays composed; digits are themselves.
        assert_eq!(
            substring_glob("한국1ά"),
            ("*한국1ά*".into(), "한국1ά".into())
        );
        assert_eq!(substring_glob("世界"), ("*世界*".into(), "世界".into()));
    }

    #[test]
    fn a_word_is_as_long_as_its_characters_besides_marks() {
        for word in ["t", "t\u{301}", "1\u{fe0f}\u{20e3}", "i\u{307}", "é", "世"] {
            assert_eq!(base_len(word), 1, "{word:?}");
        }
        assert_eq!(base_len("te\u{301}"), 2);
        assert_eq!(base_len("12"), 2);
    }

    #[test]
    fn cjk_words_are_those_with_han_kana_or_hangul() {
        for word in [
            "世界",
            "ひらがな",
            "カタカナ",
            "ｶﾀｶﾅ",
            "한국어",
            "litefs世界",
            "々",
            "𠮷",
        ] {
            assert!(has_cjk(word), "{word}");
        }
        for word in ["litefs", "ünïcode", "ελληνικά", "हिन्दी", "١٢٣", "ｌｉｔｅ"]
        {
            assert!(!has_cjk(word), "{word}");
        }
    }
    use crate::entity::post;

    fn post_with(tags: &[&str]) -> PostWithTags {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-29T07:00:00.123456789Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        PostWithTags {
            post: post::Model {
                id: 7,
                slug: "p".into(),
                title: "P".into(),
                body: String::new(),
                published: false,
                published_at: None,
                created_at: at,
                updated_at: at,
            },
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn a_version_covers_the_tags_in_any_order_and_round_trips() {
        let v = Version::of(&post_with(&["b", "a"]));
        assert_eq!(v, Version::of(&post_with(&["a", "b"])));
        assert_ne!(v, Version::of(&post_with(&["a"])));
        assert_ne!(v, Version::of(&post_with(&["a", "b-renamed"])));
        assert_ne!(
            Version::of(&post_with(&["ab"])),
            Version::of(&post_with(&["a", "b"]))
        );
        let token = v.token();
        assert!(
            token.starts_with("2026-11-29T07:00:00.123456789Z~"),
            "{token}"
        );
        assert_eq!(Version::parse(&token), Some(v));
        let whole_second = chrono::DateTime::parse_from_rfc3339("2026-11-29T07:00:01Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            Version::time_text(whole_second),
            "2026-11-29T07:00:01.000000000Z",
            "nine digits always, so the texts compare as the times do"
        );
        assert!(token.split('~').next().unwrap() < Version::time_text(whole_second).as_str());
        for odd in [
            "",
            "2026-11-29T07:00:00.123456789Z",
            "x~0000000000000000",
            &token[..token.len() - 1],
        ] {
            assert_eq!(Version::parse(odd), None, "{odd:?}");
        }
    }

    /// Only the first MAX_IGNORED_WORDS ignored words are listed, and that more were is said:
    /// listing every word of a long query string compared each with all before it (0.3 s for
    /// 10,000 words). A word repeated is still counted once.
    #[test]
    fn ignored_words_are_listed_up_to_a_bound() {
        let listed = MAX_SEARCH_WORDS + MAX_IGNORED_WORDS;
        let exactly: String = (0..listed).map(|i| format!("w{i} w{i} ")).collect();
        let words = search_words(&exactly);
        assert_eq!(words.ignored.len(), MAX_IGNORED_WORDS);
        assert!(!words.more_ignored, "every ignored word is listed");
        let long: String = (0..40_000).map(|i| format!("w{i} ")).collect();
        let words = search_words(&long);
        assert_eq!(words.searched.len(), MAX_SEARCH_WORDS);
        assert_eq!(words.ignored.len(), MAX_IGNORED_WORDS);
        assert_eq!(words.ignored[0], format!("w{MAX_SEARCH_WORDS}"));
        assert!(words.more_ignored);
    }

    #[test]
    fn search_words_are_letters_and_digits_lowercased_once() {
        // A CJK word is lowercased as SQLite's lower() does it: ASCII only.
        assert_eq!(
            search_words("京ÉCOLE LiteFS世界 ÉCOLE").searched,
            ["京École", "litefs世界", "école"]
        );
        assert_eq!(
            search_words("  LiteFS, \"replica\" OR NEAR(x*) litefs Ünïcode 世界 ").searched,
            ["litefs", "replica", "or", "near", "x", "ünïcode", "世界"]
        );
        assert_eq!(search_words(" -- ** \" "), SearchWords::default());
        let many: String = (0..20).map(|i| format!("w{i} w{i} ")).collect();
        let words = search_words(&many);
        assert_eq!(words.searched.len(), MAX_SEARCH_WORDS);
        assert_eq!(words.searched[0], "w0");
        assert_eq!(words.ignored.len(), 20 - MAX_SEARCH_WORDS);
        assert_eq!(words.ignored[0], format!("w{MAX_SEARCH_WORDS}"));
        // A word the cut at MAX_SEARCH_CHARS splits is not searched as its fragment: it is
        // ignored whole, as the words after it are.
        let long = "a".repeat(500);
        assert_eq!(
            search_words(&long),
            SearchWords {
                searched: vec![],
                ignored: vec![long.clone()],
                cut: true,
                more_ignored: false,
            }
        );
        let cut = format!("{} replication basil", "-".repeat(MAX_SEARCH_CHARS - 1));
        assert_eq!(
            search_words(&cut),
            SearchWords {
                searched: vec![],
                ignored: vec!["replication".to_owned(), "basil".to_owned()],
                cut: true,
                more_ignored: false,
            }
        );
        // A word that ends at the last character is searched; the text is trimmed first.
        let edge = format!(
            "{}{}tomatoes basil tomatoes",
            " ".repeat(300),
            "-".repeat(MAX_SEARCH_CHARS - "tomatoes".len())
        );
        assert_eq!(
            search_words(&edge),
            SearchWords {
                searched: vec!["tomatoes".to_owned()],
                ignored: vec!["basil".to_owned()],
                cut: true,
                more_ignored: false,
            }
        );
    }
}
