//! The structs behind the askama templates in `templates/`.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;

use crate::blog::input::PostDraft;
use crate::blog::posts::PostWithTags;
use crate::blog::tags::TagWithCount;
use crate::blog::{FieldErrors, Page};

/// What every page shows around its content.
pub struct Chrome {
    /// The page's `<title>`.
    pub title: String,
    /// Which node served the page, and its LiteFS role: replication is visible, not hidden.
    pub node: String,
    pub role: &'static str,
    pub admin: bool,
    /// The message left by the previous request (post-redirect-get).
    pub flash: Option<String>,
    /// The key of the browser draft of a post form the previous request saved: the page tells
    /// `static/drafts.js` to remove it.
    pub saved_draft: Option<String>,
    /// The token every form on the page carries.
    pub csrf: String,
    /// The site's name, from configuration.
    pub site_title: String,
    /// `<meta name=description>` and `og:description`: the site's, or a post's excerpt.
    pub description: String,
    /// This page's absolute URL: `<link rel=canonical>` and `og:url`.
    pub canonical: String,
    /// `og:type`: `article` on a post, `website` elsewhere.
    pub og_type: &'static str,
    /// Admin pages ask search engines not to index them.
    pub noindex: bool,
    /// What the search box holds: the query, on the search page.
    pub search: String,
}

impl Chrome {
    /// The address of the file `name` of `static/`, with its version (see
    /// [`super::static_files`]): how every template links a static file.
    pub fn asset(&self, name: &str) -> String {
        super::static_files::url(name)
    }

    /// What the footer says about where writes go, true to this node's role.
    pub fn replication(&self) -> &'static str {
        match self.role {
            "primary" => "SQLite on LiteFS: this node writes, replicas follow",
            "replica" => "SQLite on LiteFS: writes forwarded to the primary",
            "no-primary" => "SQLite on LiteFS: no primary right now, so no writes",
            _ => "SQLite, one standalone node",
        }
    }
}

/// A post as lists show it.
pub struct PostCard {
    pub slug: String,
    pub title: String,
    pub excerpt: String,
    /// As people read it ("November 28, 2026").
    pub date: String,
    /// The same moment for `<time datetime>`, RFC 3339.
    pub datetime: String,
    pub published: bool,
    pub tags: Vec<String>,
}

impl PostCard {
    pub fn new(p: &PostWithTags) -> Self {
        let when = p.post.published_at.unwrap_or(p.post.updated_at);
        PostCard {
            slug: p.post.slug.clone(),
            title: p.post.title.clone(),
            excerpt: crate::blog::markdown::excerpt(&p.post.body, 220),
            date: when.format("%B %-d, %Y").to_string(),
            datetime: when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            published: p.post.published,
            tags: p.tags.clone(),
        }
    }
}

/// Pager links; `base` is the URL the `page=` parameter goes on (it may have a query already).
pub struct Pager {
    pub base: String,
    pub page: u64,
    pub total_pages: u64,
    pub prev: Option<u64>,
    pub next: Option<u64>,
}

impl Pager {
    /// The link to page `n`.
    pub fn href(&self, n: &u64) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{separator}page={n}", self.base)
    }

    pub fn new<T>(base: impl Into<String>, page: &Page<T>) -> Self {
        Pager {
            base: base.into(),
            page: page.page,
            total_pages: page.total_pages,
            prev: page.has_prev().then(|| page.page - 1),
            next: page.has_next().then(|| page.page + 1),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub chrome: Chrome,
    pub heading: String,
    /// The home page: when empty, it says how to write the first post.
    pub home: bool,
    pub posts: Vec<PostCard>,
    pub pager: Pager,
}

#[derive(Template, WebTemplate)]
#[template(path = "post.html")]
pub struct PostPage {
    pub chrome: Chrome,
    pub post: PostCard,
    pub html: Arc<str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "search.html")]
pub struct SearchPage {
    pub chrome: Chrome,
    pub query: String,
    /// The words searched, and those ignored: past the first `max_words`, or not within the
    /// first `max_chars` characters (`long`: the text has more).
    pub words: Vec<String>,
    pub ignored: Vec<String>,
    /// More words were ignored than `ignored` lists.
    pub more_ignored: bool,
    /// Why the search was stopped before it ended (it ran past its timeout).
    pub stopped: Option<String>,
    pub max_words: usize,
    pub max_chars: usize,
    pub long: bool,
    pub total: u64,
    pub posts: Vec<PostCard>,
    pub pager: Pager,
}

/// A published post as the feed and the sitemap list it.
pub struct FeedEntry {
    /// The post's absolute URL.
    pub url: String,
    /// A permanent id (a `tag:` URI of the host, the creation date and the row id), so that
    /// renaming a post's slug does not make feed readers show it again as new.
    pub id: String,
    pub title: String,
    pub summary: String,
    /// The sanitised HTML; the template escapes it once more, as Atom's `type="html"` wants.
    pub html: String,
    /// RFC 3339.
    pub published: String,
    pub updated: String,
}

impl FeedEntry {
    /// `html` is the post's rendered body.
    pub fn new(origin: &str, post: &crate::entity::post::Model, html: &str) -> Self {
        let rfc3339 =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let host = origin.split("://").nth(1).unwrap_or(origin);
        let host = host.split(':').next().unwrap_or(host);
        FeedEntry {
            url: format!("{origin}{}", super::post_path(&post.slug)),
            id: format!(
                "tag:{host},{}:post-{}",
                post.created_at.format("%Y-%m-%d"),
                post.id
            ),
            title: xml_text(&post.title),
            summary: xml_text(&crate::blog::markdown::excerpt(&post.body, 300)),
            html: xml_text(html),
            published: rfc3339(post.published_at.unwrap_or(post.created_at)),
            updated: rfc3339(post.updated_at),
        }
    }
}

/// `text` with every character XML 1.0 does not allow (control characters other than tab, line
/// feed and carriage return; U+FFFE, U+FFFF) made a space: escaping cannot make them allowed,
/// and one form feed pasted into a post's body made the whole feed unreadable.
pub fn xml_text(text: &str) -> String {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    };
    text.chars()
        .map(|c| if allowed(c) { c } else { ' ' })
        .collect()
}

#[derive(Template)]
#[template(path = "feed.xml")]
pub struct FeedXml {
    pub site_title: String,
    pub description: String,
    pub origin: String,
    pub updated: String,
    pub entries: Vec<FeedEntry>,
}

#[derive(Template)]
#[template(path = "sitemap.xml")]
pub struct SitemapXml {
    pub origin: String,
    /// Each published post's absolute URL and last change (`YYYY-MM-DD`).
    pub posts: Vec<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "tags.html")]
pub struct TagsPage {
    pub chrome: Chrome,
    pub tags: Vec<TagWithCount>,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub next: String,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub posts: Vec<DashboardPost>,
    pub pager: Pager,
    /// Every post, drafts included.
    pub post_count: u64,
    pub drafts: u64,
    pub tag_count: usize,
    /// The filter shown, as its address names it (`all`, `drafts`, `published`): the delete
    /// buttons send it back.
    pub shown: &'static str,
    /// The filter's links, each with its count.
    pub filters: Vec<DashboardFilter>,
    /// A delete just refused (a 409): why, and the post as it is now.
    pub refused: Option<DeleteRefused>,
}

/// A link of the dashboard's filter: All, Drafts or Published, with the number of such posts.
pub struct DashboardFilter {
    pub href: String,
    pub label: &'static str,
    pub count: u64,
    /// The filter shown.
    pub current: bool,
}

/// A post on the dashboard, with the id and version of it its delete button names (hidden
/// fields: the delete is refused if the post changed since the page was loaded).
pub struct DashboardPost {
    pub card: PostCard,
    pub id: i32,
    /// A [`crate::blog::posts::Version::token`].
    pub version: String,
}

impl DashboardPost {
    pub fn new(p: &PostWithTags) -> Self {
        DashboardPost {
            card: PostCard::new(p),
            id: p.post.id,
            version: crate::blog::posts::Version::of(p).token(),
        }
    }
}

/// A delete of a post refused because the post changed since the page was loaded (or the page
/// does not say which version it showed): the message, and the post as it is now, whose delete
/// button names that version.
pub struct DeleteRefused {
    pub message: String,
    pub post: DashboardPost,
    /// When the post was last changed, as people read it, and for `<time datetime>`.
    pub changed: String,
    pub changed_datetime: String,
}

impl DeleteRefused {
    pub fn new(message: impl Into<String>, current: &PostWithTags) -> Self {
        let changed = current.post.updated_at;
        DeleteRefused {
            message: message.into(),
            post: DashboardPost::new(current),
            changed: changed.format("%B %-d, %Y, %H:%M:%S UTC").to_string(),
            changed_datetime: changed.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// The new/edit post form, with what the user typed and what is wrong with it.
#[derive(Template, WebTemplate)]
#[template(path = "post_form.html")]
pub struct PostFormPage {
    pub chrome: Chrome,
    /// Where the form posts.
    pub action: String,
    pub editing: bool,
    /// Under which key `static/drafts.js` keeps this form's unsaved text in the browser: `new`, or
    /// `edit:id:{id}` (kept when an edit of a post deleted meanwhile comes back as a new-post
    /// form; a form of before ids sends back `edit:{slug}`, which is kept too).
    pub draft_key: String,
    /// On the edit form: the key under which the script kept drafts of this post before they were
    /// keyed by its id (`edit:{slug}`), and when the post was created
    /// ([`crate::blog::posts::Version::time_text`]), so that the script moves a draft kept there
    /// to `draft_key` unless it was typed before this post existed (for another post).
    pub legacy_draft: Option<(String, String)>,
    pub title: String,
    pub slug: String,
    pub body: String,
    pub tags: String,
    pub published: bool,
    /// The id of the post edited, and the version of it the form was loaded from (hidden fields:
    /// the save is refused if the post changed since); empty in a new-post form.
    pub post_id: String,
    pub version: String,
    pub errors: FieldErrors,
    /// The post as it is now, shown when it changed since the form was opened (a 409).
    pub current: Option<CurrentPost>,
}

/// The post as it is now, under an edit form refused because the post changed since it was
/// opened; each field says whether it differs from the form's.
pub struct CurrentPost {
    pub title: String,
    pub title_differs: bool,
    pub slug: String,
    pub slug_differs: bool,
    pub tags: String,
    pub tags_differs: bool,
    pub published: bool,
    pub published_differs: bool,
    pub body: String,
    pub body_differs: bool,
}

impl CurrentPost {
    /// `current` compared with what the form holds, `shown`.
    pub fn new(current: &PostWithTags, shown: &PostDraft) -> Self {
        let mut typed_tags = shown.tags.clone();
        typed_tags.sort();
        typed_tags.dedup();
        let mut tags = current.tags.clone();
        tags.sort();
        CurrentPost {
            title_differs: current.post.title != shown.title.trim(),
            slug_differs: shown.slug.as_deref().map(str::trim) != Some(current.post.slug.as_str()),
            tags_differs: tags != typed_tags,
            published_differs: current.post.published != shown.published,
            body_differs: current.post.body != shown.body,
            title: current.post.title.clone(),
            slug: current.post.slug.clone(),
            tags: current.tags.join(", "),
            published: current.post.published,
            body: current.post.body.clone(),
        }
    }
}

impl PostFormPage {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    /// The attributes that tie an invalid field to its message (`<p id="{field}-error">`), for
    /// screen readers; empty when the field is fine. `field` is one of the form's own names.
    pub fn invalid(&self, field: &str) -> String {
        if self.errors.contains_key(field) {
            format!(r#" aria-invalid="true" aria-describedby="{field}-error""#)
        } else {
            String::new()
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_tags.html")]
pub struct AdminTagsPage {
    pub chrome: Chrome,
    pub tags: Vec<TagWithCount>,
    /// The label typed into the "new tag" field, kept when it is rejected.
    pub new_label: String,
    /// What is wrong with the "new tag" field.
    pub error: Option<String>,
    /// A rejected rename, shown at its row.
    pub rename: Option<TagRename>,
}

/// A rename the tag page rejected: the row's tag, the label typed there and what is wrong.
pub struct TagRename {
    pub id: i32,
    pub label: String,
    pub error: String,
}

impl AdminTagsPage {
    /// The rejected rename of the tag `id`, if that is the row it was typed in.
    pub fn rename_of(&self, id: &i32) -> Option<&TagRename> {
        self.rename.as_ref().filter(|r| r.id == *id)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPageView {
    pub chrome: Chrome,
    pub status: u16,
    pub reason: String,
    pub message: String,
}
