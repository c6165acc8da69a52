//! The structs behind the askama templates in `templates/`.

use askama::Template;
use askama_web::WebTemplate;

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
    /// The token every form on the page carries.
    pub csrf: String,
}

/// A post as lists show it.
pub struct PostCard {
    pub slug: String,
    pub title: String,
    pub excerpt: String,
    pub date: String,
    pub published: bool,
    pub tags: Vec<String>,
}

impl PostCard {
    pub fn new(p: &PostWithTags) -> Self {
        PostCard {
            slug: p.post.slug.clone(),
            title: p.post.title.clone(),
            excerpt: crate::blog::markdown::excerpt(&p.post.body, 220),
            date: p
                .post
                .published_at
                .unwrap_or(p.post.updated_at)
                .format("%B %-d, %Y")
                .to_string(),
            published: p.post.published,
            tags: p.tags.clone(),
        }
    }
}

/// Pager links; `base` is the path the `?page=` goes on.
pub struct Pager {
    pub base: String,
    pub page: u64,
    pub total_pages: u64,
    pub prev: Option<u64>,
    pub next: Option<u64>,
}

impl Pager {
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
    pub posts: Vec<PostCard>,
    pub pager: Pager,
}

#[derive(Template, WebTemplate)]
#[template(path = "post.html")]
pub struct PostPage {
    pub chrome: Chrome,
    pub post: PostCard,
    pub html: String,
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
    pub posts: Vec<PostCard>,
    pub pager: Pager,
    pub drafts: u64,
    pub tag_count: usize,
}

/// The new/edit post form, with what the user typed and what is wrong with it.
#[derive(Template, WebTemplate)]
#[template(path = "post_form.html")]
pub struct PostFormPage {
    pub chrome: Chrome,
    /// Where the form posts.
    pub action: String,
    pub editing: bool,
    pub title: String,
    pub slug: String,
    pub body: String,
    pub tags: String,
    pub published: bool,
    pub errors: FieldErrors,
}

impl PostFormPage {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_tags.html")]
pub struct AdminTagsPage {
    pub chrome: Chrome,
    pub tags: Vec<TagWithCount>,
    /// The label typed into the "new tag" field, kept when it is rejected.
    pub new_label: String,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPageView {
    pub chrome: Chrome,
    pub status: u16,
    pub reason: String,
    pub message: String,
}
