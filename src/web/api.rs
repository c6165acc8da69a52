//! The JSON API under `/api`. Reads are public; writes need the admin by HTTP Basic auth.

use super::slash::RouteWithSlash;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::ApiAdmin;
use super::error::{Error, Result};
use crate::blog::input::{PostDraft, PostInput, PostPatch, TagLabel};
use crate::blog::posts::{self, Expected, PostWithTags, Version, Visibility};
use crate::blog::tags::{self, TagWithCount};
use crate::blog::{BlogError, Page};
use crate::entity::tag;

pub fn router() -> Router<AppState> {
    Router::new()
        .route_with_tsr("/tags", get(list_tags).post(create_tag))
        .route_with_tsr(
            "/tags/{id}",
            axum::routing::patch(rename_tag).delete(delete_tag),
        )
        .route_with_tsr("/posts", get(list_posts).post(create_post))
        .route_with_tsr(
            "/posts/{slug}",
            get(show_post).patch(update_post).delete(delete_post),
        )
}

/// `Json<T>` whose rejections are this API's JSON errors (400, 413, 415, 422), in plain words:
/// "the body is not valid JSON for a post: missing field `title` at line 1 column 2".
pub struct ApiJson<T>(pub T);

/// A JSON body the API takes, and what its error messages call it ("a post").
pub trait ApiBody: DeserializeOwned {
    const WHAT: &'static str;
}

impl ApiBody for TagBody {
    const WHAT: &'static str = "a tag";
}

impl ApiBody for PostDraft {
    const WHAT: &'static str = "a post";
}

impl ApiBody for PostPatch {
    const WHAT: &'static str = "a post's changes";
}

impl<T: ApiBody, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let status = match &rejection {
                    JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    other => other.status(),
                };
                let message = match &rejection {
                    JsonRejection::JsonDataError(_) => format!(
                        "the body is not valid JSON for {}: {}",
                        T::WHAT,
                        parser_message(&rejection)
                    ),
                    JsonRejection::JsonSyntaxError(_) => {
                        format!("the body is not valid JSON: {}", parser_message(&rejection))
                    }
                    _ if status == StatusCode::PAYLOAD_TOO_LARGE => format!(
                        "the request body is larger than {} bytes",
                        super::BODY_LIMIT
                    ),
                    other => other.body_text(),
                };
                Err(Error::Request(status, message))
            }
        }
    }
}

/// What the JSON parser says is wrong (the field's path, the problem, the line and column),
/// without axum's prefix ("Failed to deserialize the JSON body into the target type") and with
/// serde's "struct PostDraft" (or "struct PostDraft with 5 elements"), the name of a type of
/// this program, said as "a JSON object", and an unknown field named once.
fn parser_message(rejection: &JsonRejection) -> String {
    let detail = std::error::Error::source(rejection)
        .map_or_else(|| rejection.body_text(), ToString::to_string);
    let mut plain = String::with_capacity(detail.len());
    let mut rest = detail.as_str();
    while let Some(at) = rest.find("struct ") {
        plain.push_str(&rest[..at]);
        let after = &rest[at + "struct ".len()..];
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        plain.push_str("a JSON object");
        rest = &after[name_len..];
        // A struct may also be read from an array ("struct PostDraft with 5 elements"): not
        // something to suggest.
        if let Some(count) = rest.strip_prefix(" with ") {
            let digits = count.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
            let unit = &count[digits..];
            if digits > 0 && (unit.starts_with(" elements") || unit.starts_with(" element")) {
                let unit_len = if unit.starts_with(" elements") { 9 } else { 8 };
                rest = &unit[unit_len..];
            }
        }
    }
    plain.push_str(rest);
    // The path names an unknown field a second time ("titel: unknown field `titel`"): once is
    // enough.
    if let Some((path, message)) = plain.split_once(": ")
        && let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        && path.rsplit('.').next() == Some(field)
    {
        return message.to_owned();
    }
    plain
}

/// Tags of published posts (and tags on no post), with counts of published posts.
/// Tags a published post carries, with counts of published posts; the admin (with Basic auth)
/// sees every tag, drafts counted, as tag management does (see [`tags::list_with_counts`]).
async fn list_tags(
    State(state): State<AppState>,
    admin: Option<ApiAdmin>,
) -> Result<Json<Vec<TagWithCount>>> {
    let visibility = if admin.is_some() {
        Visibility::All
    } else {
        Visibility::PublishedOnly
    };
    Ok(Json(tags::list_with_counts(&state.db, visibility).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    label: String,
}

fn label(raw: &str) -> Result<TagLabel> {
    TagLabel::parse(raw).map_err(|e| BlogError::field("label", e).into())
}

async fn create_tag(
    _: ApiAdmin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TagBody>,
) -> Result<impl IntoResponse> {
    let tag: tag::Model = tags::create(&state.db, &label(&body.label)?).await?;
    Ok((StatusCode::CREATED, Json(tag)))
}

async fn rename_tag(
    _: ApiAdmin,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    ApiJson(body): ApiJson<TagBody>,
) -> Result<Json<tag::Model>> {
    Ok(Json(
        tags::rename(&state.db, id, &label(&body.label)?).await?,
    ))
}

async fn delete_tag(
    _: ApiAdmin,
    State(state): State<AppState>,
    Path(id): Path<i32>,
) -> Result<StatusCode> {
    tags::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default = "one")]
    page: u64,
    #[serde(default = "per_page")]
    per_page: u64,
    /// Full-text search: only posts containing every word.
    q: Option<String>,
}

fn one() -> u64 {
    1
}
fn per_page() -> u64 {
    posts::PER_PAGE
}

/// A page of posts; with `?q=`, also the words of the search text that were not searched (past
/// the first [`posts::MAX_SEARCH_WORDS`], or not within the first [`posts::MAX_SEARCH_CHARS`]
/// characters: [`posts::search_words`], as the search page), empty when none were.
#[derive(Serialize)]
struct PostList {
    #[serde(flatten)]
    page: Page<PostWithTags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored_words: Option<Vec<String>>,
    /// With `?q=`: whether more words were ignored than `ignored_words` lists (at most
    /// [`posts::MAX_IGNORED_WORDS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    more_ignored_words: Option<bool>,
}

/// Published posts, newest first (best match first with `?q=`); the admin (with Basic auth)
/// also sees drafts.
async fn list_posts(
    State(state): State<AppState>,
    admin: Option<ApiAdmin>,
    Query(q): Query<ListQuery>,
) -> Result<Json<PostList>> {
    let visibility = if admin.is_some() {
        Visibility::All
    } else {
        Visibility::PublishedOnly
    };
    let list = match &q.q {
        Some(text) => {
            let words = posts::search_words(text);
            let found = state
                .search(visibility, &words.searched, q.page, q.per_page)
                .await?;
            let Some(page) = found else {
                return Err(Error::Request(
                    StatusCode::SERVICE_UNAVAILABLE,
                    state.search_stopped(),
                ));
            };
            PostList {
                page,
                ignored_words: Some(words.ignored),
                more_ignored_words: Some(words.more_ignored),
            }
        }
        None => PostList {
            page: posts::list(&state.db, visibility, None, q.page, q.per_page).await?,
            ignored_words: None,
            more_ignored_words: None,
        },
    };
    Ok(Json(list))
}

/// A post. A slug the post had before (it was renamed) is a 301 to the post's address in the
/// API now, query kept, if the caller may see the post (a draft: with the admin's credentials),
/// as the public page is; a slug a post has now always wins over another post's old one.
async fn show_post(
    State(state): State<AppState>,
    admin: Option<ApiAdmin>,
    OriginalUri(uri): OriginalUri,
    Path(slug): Path<String>,
) -> Result<Response> {
    let visibility = if admin.is_some() {
        Visibility::All
    } else {
        Visibility::PublishedOnly
    };
    match posts::find_by_slug(&state.db, &slug, visibility).await {
        Ok(post) => Ok(with_etag(post).into_response()),
        Err(BlogError::NotFound) => {
            let moved = posts::find_by_old_slug(&state.db, &slug, visibility).await?;
            super::moved_permanently(&super::with_query(
                super::api_post_path(&moved.slug),
                uri.query(),
            ))
        }
        Err(err) => Err(err.into()),
    }
}

/// A write (PATCH, DELETE) at a slug no post has: a 404, which names the post's address now if
/// the slug is one the post had before (the caller is the admin, who may see any post). The
/// write is not redirected: it goes where the client said, and the client decides.
async fn not_found_at(state: &AppState, slug: &str, done: &str) -> Error {
    match posts::find_by_old_slug(&state.db, slug, Visibility::All).await {
        Ok(moved) => Error::Request(
            StatusCode::NOT_FOUND,
            format!(
                "no post has this address now: it was renamed, and is at {}; nothing was {done}",
                super::api_post_path(&moved.slug)
            ),
        ),
        Err(BlogError::NotFound) => Error::NotFound,
        Err(err) => err.into(),
    }
}

/// A post with its `ETag`: the post's id and version ([`Version`]: its `updated_at` to the
/// nanosecond, which every write of the post moves, and a hash of its tags' labels, which a tag
/// renamed or deleted changes), for the `If-Match` of a PATCH or DELETE.
fn with_etag(post: PostWithTags) -> impl IntoResponse {
    let etag = format!("\"{}@{}\"", post.post.id, Version::of(&post).token());
    ([(header::ETAG, etag)], Json(post))
}

/// The versions of the post a PATCH may change or a DELETE delete, from its `If-Match` headers: any without one or
/// with `*`, else those of the ETags listed that this API gave ([`with_etag`]). A weak ETag
/// never matches (`If-Match` compares strongly), nor one this API did not give: with none left,
/// no version is allowed and the PATCH is refused.
fn if_match(headers: &HeaderMap) -> Expected {
    let values: Vec<&str> = headers
        .get_all(header::IF_MATCH)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    if values.is_empty() {
        return Expected::Any;
    }
    let tags: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if tags.contains(&"*") {
        return Expected::Any;
    }
    Expected::OneOf(
        tags.into_iter()
            .filter_map(|tag| {
                let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
                let (id, version) = inner.split_once('@')?;
                Some((id.parse().ok()?, Version::parse(version)?))
            })
            .collect(),
    )
}

async fn create_post(
    _: ApiAdmin,
    State(state): State<AppState>,
    ApiJson(draft): ApiJson<PostDraft>,
) -> Result<impl IntoResponse> {
    let input = PostInput::parse(&draft)?;
    Ok((
        StatusCode::CREATED,
        with_etag(posts::create(&state.db, &input).await?),
    ))
}

/// Fields left out keep their current values; unknown (misspelled) fields are a 422. The merge
/// happens inside the write's transaction, so concurrent patches of different fields both stay.
/// With `If-Match` (the `ETag` of a GET), the PATCH applies only to that version of the post,
/// checked in the same transaction: a 412 when it changed since, nothing written.
async fn update_post(
    _: ApiAdmin,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<PostPatch>,
) -> Result<impl IntoResponse> {
    match posts::patch(&state.db, &slug, &patch, &if_match(&headers)).await {
        Ok(post) => Ok(with_etag(post)),
        Err(BlogError::NotFound) => Err(not_found_at(&state, &slug, "saved").await),
        Err(err) => Err(precondition_failed(err, "saved")),
    }
}

/// A post changed since the version `If-Match` names: a 412 saying nothing was `done`.
fn precondition_failed(err: BlogError, done: &str) -> Error {
    match err {
        BlogError::Changed(_) => Error::Request(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "the post was changed since the version If-Match names (or If-Match names no \
                 version this API gave): nothing was {done}; GET it for its current ETag"
            ),
        ),
        err => err.into(),
    }
}

/// With `If-Match` (the `ETag` of a GET), the DELETE applies only to that version of the post,
/// checked in the delete's transaction: a 412 when it changed since, the post kept.
async fn delete_post(
    _: ApiAdmin,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    match posts::delete(&state.db, &slug, &if_match(&headers)).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(BlogError::NotFound) => Err(not_found_at(&state, &slug, "deleted").await),
        Err(err) => Err(precondition_failed(err, "deleted")),
    }
}
