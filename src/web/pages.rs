//! Public pages: the home page, a post, the tag index and a tag's posts.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::auth::Visitor;
use super::error::PageError;
use super::views::{IndexPage, Pager, PostCard, PostPage, TagsPage};
use crate::blog::input::TagLabel;
use crate::blog::posts::{self, Visibility};
use crate::blog::{markdown, tags};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/posts/{slug}", get(show_post))
        .route("/tags", get(tag_index))
        .route("/tags/{label}", get(tag_posts))
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default = "first_page")]
    pub page: u64,
}

fn first_page() -> u64 {
    1
}

async fn home(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<PageQuery>,
) -> Result<impl IntoResponse, PageError> {
    let page = posts::list(
        &state.db,
        Visibility::PublishedOnly,
        None,
        q.page,
        posts::PER_PAGE,
    )
    .await?;
    let (jar, chrome) = state.chrome(&visitor, "Posts");
    let view = IndexPage {
        chrome,
        heading: "Latest posts".into(),
        posts: page.items.iter().map(PostCard::new).collect(),
        pager: Pager::new("/", &page),
    };
    Ok((jar, view))
}

async fn show_post(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(slug): Path<String>,
) -> Result<impl IntoResponse, PageError> {
    let visibility = if visitor.admin {
        Visibility::All
    } else {
        Visibility::PublishedOnly
    };
    let post = posts::find_by_slug(&state.db, &slug, visibility).await?;
    let (jar, chrome) = state.chrome(&visitor, post.post.title.clone());
    let view = PostPage {
        chrome,
        html: markdown::render(&post.post.body),
        post: PostCard::new(&post),
    };
    Ok((jar, view))
}

/// Tags of published posts (and tags on no post), with counts of published posts.
async fn tag_index(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<impl IntoResponse, PageError> {
    let tags = tags::list_with_counts(&state.db, Visibility::PublishedOnly).await?;
    let (jar, chrome) = state.chrome(&visitor, "Tags");
    Ok((jar, TagsPage { chrome, tags }))
}

async fn tag_posts(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(label): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<impl IntoResponse, PageError> {
    let label = TagLabel::parse(&label).map_err(|_| PageError(super::error::Error::NotFound))?;
    let tag = tags::find_public(&state.db, &label).await?;
    let page = posts::list(
        &state.db,
        Visibility::PublishedOnly,
        Some(&tag.label),
        q.page,
        posts::PER_PAGE,
    )
    .await?;
    let (jar, chrome) = state.chrome(&visitor, format!("#{}", tag.label));
    let view = IndexPage {
        chrome,
        heading: format!("Posts tagged #{}", tag.label),
        posts: page.items.iter().map(PostCard::new).collect(),
        pager: Pager::new(format!("/tags/{}", super::urlencode(&tag.label)), &page),
    };
    Ok((jar, view))
}
