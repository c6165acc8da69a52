//! The admin area: login, dashboard, the post form and tag management. Forms use
//! post-redirect-get with a flash message, keep what was typed when it is rejected, and are read
//! only through [`CsrfForm`], which checks the CSRF token and the origin first. The post form's
//! text is also kept in the browser (`static/drafts.js`) until a save is confirmed, for the
//! submit that never reaches the form: one sent after the session ended goes to the login.

use super::slash::RouteWithSlash;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::SignedCookieJar;
use serde::Deserialize;

use super::AppState;
use super::auth::{self, ClientIp, PageAdmin, Verdict, Visitor};
use super::csrf::CsrfForm;
use super::error::{Error, PageError};
use super::views::{
    AdminTagsPage, CurrentPost, DashboardFilter, DashboardPage, DashboardPost, DeleteRefused,
    LoginPage, Pager, PostFormPage, TagRename,
};
use crate::blog::input::{PostDraft, PostInput, Slug, TagLabel, split_tag_list};
use crate::blog::posts::{self, PostWithTags, Shown, Visibility};
use crate::blog::{BlogError, FieldErrors, tags};

pub fn router() -> Router<AppState> {
    Router::new()
        .route_with_tsr("/admin/login", get(login_form).post(login))
        .route_with_tsr("/admin/logout", post(logout))
        .route_with_tsr("/admin", get(dashboard))
        .route_with_tsr("/admin/posts/new", get(new_post))
        .route_with_tsr("/admin/posts", get(to_new_post).post(create_post))
        .route_with_tsr("/admin/posts/{slug}/edit", get(edit_post))
        .route_with_tsr("/admin/posts/{slug}", get(to_edit_post).post(update_post))
        .route_with_tsr(
            "/admin/posts/{slug}/delete",
            get(to_dashboard).post(delete_post),
        )
        .route_with_tsr("/admin/tags", get(tag_admin).post(create_tag))
        .route_with_tsr("/admin/tags/{id}", post(rename_tag))
        .route_with_tsr("/admin/tags/{id}/delete", post(delete_tag))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// The longest `next` a login keeps; a longer one is not a page of this site worth returning to.
const MAX_NEXT_BYTES: usize = 2048;

/// Only same-site paths, so the login form cannot send anyone elsewhere: a `/` followed by
/// anything but `/` or `\\` (which browsers read as another host), and only printable ASCII (no
/// tabs or line breaks, which browsers drop and which cannot go in a header).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.len() <= MAX_NEXT_BYTES
                && n.starts_with('/')
                && !n[1..].starts_with(['/', '\\'])
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            // Never back to the login (or out): a signed-in admin would see the form again.
            let path = n.split(['?', '#']).next().unwrap_or_default();
            if matches!(path, "/admin/login" | "/admin/logout") {
                return "/admin".to_owned();
            }
            n.to_owned()
        }
        _ => "/admin".to_owned(),
    }
}

/// The login form; a visitor already signed in goes on to where it leads.
async fn login_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if visitor.admin {
        return Redirect::to(&next).into_response();
    }
    let (jar, chrome) = state.chrome(&visitor, "Log in");
    let page = LoginPage {
        chrome,
        next,
        error: None,
    };
    (jar, page).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    visitor: Visitor,
    CsrfForm(mut form): CsrfForm<LoginForm>,
) -> Result<Response, PageError> {
    // Taken out of the form: the submitted string (up to the body limit) is dropped here, not held
    // while the password waits for an argon2 slot.
    let next = safe_next(form.next.take().as_deref());
    let signed_in_before = auth::signed_in_before(&visitor.jar);
    match state
        .passwords
        .check(client, signed_in_before, &form.password, "form")
        .await
    {
        Verdict::Right => {
            auth::start_session(&visitor.session).await?;
            let jar = auth::remember_sign_in(visitor.jar, state.security.secure_cookies);
            // "Welcome back" only to a browser that signed in before.
            let welcome = if signed_in_before {
                "Welcome back."
            } else {
                "Signed in."
            };
            let jar = state.flash(jar, welcome);
            Ok((jar, Redirect::to(&next)).into_response())
        }
        Verdict::Throttled(wait) => Err(PageError(Error::TooManyRequests(wait))),
        Verdict::Wrong => {
            let (jar, chrome) = state.chrome(&visitor, "Log in");
            let view = LoginPage {
                chrome,
                next,
                error: Some("That password is not right.".into()),
            };
            Ok((StatusCode::UNAUTHORIZED, jar, view).into_response())
        }
    }
}

/// A form with nothing but its CSRF token (checked by [`CsrfForm`]).
#[derive(Deserialize)]
struct EmptyForm {}

async fn logout(
    State(state): State<AppState>,
    visitor: Visitor,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    let jar = auth::end_session(&state, &visitor.session, visitor.jar).await?;
    let jar = state.flash(jar, "You are logged out.");
    Ok((jar, Redirect::to("/")).into_response())
}

/// The dashboard's address: its page and its filter.
#[derive(Deserialize)]
struct DashboardQuery {
    #[serde(default = "first_page")]
    page: u64,
    /// `all` (or absent), `drafts` or `published`; anything else is a 400 that says so.
    #[serde(default)]
    status: Shown,
}

fn first_page() -> u64 {
    1
}

async fn dashboard(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<DashboardQuery>,
) -> Result<Response, PageError> {
    dashboard_page(&state, visitor, q.status, q.page, None).await
}

/// Posts on a page of the dashboard.
const DASHBOARD_PER_PAGE: u64 = 20;

/// The dashboard's address with the filter `shown` (`/admin` for all posts), without a page.
fn dashboard_address(shown: Shown) -> String {
    match shown {
        Shown::All => "/admin".to_owned(),
        other => format!("/admin?status={}", other.as_str()),
    }
}

/// The dashboard at page `page` of the posts `shown`; with `refused`, a delete just refused (a
/// 409), shown on that page if it is still there, else on the last page.
async fn dashboard_page(
    state: &AppState,
    visitor: Visitor,
    shown: Shown,
    page: u64,
    refused: Option<DeleteRefused>,
) -> Result<Response, PageError> {
    let list = |page| posts::dashboard(&state.db, shown, page, DASHBOARD_PER_PAGE);
    let page = match list(page).await {
        // A refused delete from a page that is gone (posts deleted meanwhile), or from a page
        // that never was: the last page there is, not a 404 in place of the 409.
        Err(BlogError::NotFound) if refused.is_some() && page > 1 => {
            let first = list(1).await?;
            match first.total_pages {
                1 => first,
                last => match list(last).await {
                    Err(BlogError::NotFound) => first,
                    other => other?,
                },
            }
        }
        other => other?,
    };
    let post_count = posts::count_all(&state.db).await?;
    let drafts = posts::count_drafts(&state.db).await?;
    let tag_count = tags::list_with_counts(&state.db, Visibility::All)
        .await?
        .len();
    let (jar, chrome) = state.chrome(&visitor, "Dashboard");
    let status = if refused.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let filters = Shown::EVERY
        .into_iter()
        .map(|filter| DashboardFilter {
            href: dashboard_address(filter),
            label: match filter {
                Shown::All => "All",
                Shown::Drafts => "Drafts",
                Shown::Published => "Published",
            },
            count: match filter {
                Shown::All => post_count,
                Shown::Drafts => drafts,
                Shown::Published => post_count.saturating_sub(drafts),
            },
            current: filter == shown,
        })
        .collect();
    let view = DashboardPage {
        chrome,
        posts: page.items.iter().map(DashboardPost::new).collect(),
        pager: Pager::new(dashboard_address(shown), &page),
        post_count,
        drafts,
        tag_count,
        shown: shown.as_str(),
        filters,
        refused,
    };
    Ok((status, jar, view).into_response())
}

/// The post and the version of it a form was loaded from, when it says both as this server
/// writes them (hidden `post_id` and `version` fields); `None` for a form that does not (opened
/// before a deploy added them), which cannot tell whether the post changed since.
fn loaded_from(post_id: Option<&str>, version: Option<&str>) -> Option<(i32, posts::Version)> {
    let id = post_id?.trim().parse().ok()?;
    let version = posts::Version::parse(version?)?;
    Some((id, version))
}

/// The post form as submitted: tags as one comma-separated field, the checkbox absent when off.
#[derive(Deserialize, Default, Clone)]
struct PostForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    tags: String,
    published: Option<String>,
    /// The key of the browser's draft of this form (see [`PostFormPage::draft_key`]).
    draft_key: Option<String>,
    /// The id of the post the edit form was loaded from (hidden; absent in a new-post form, and
    /// in an edit form opened before forms carried it).
    post_id: Option<String>,
    /// The version of the post the edit form was loaded from, a [`posts::Version::token`]
    /// (hidden, absent as `post_id` is).
    version: Option<String>,
}

/// The longest draft key a form may send back (`edit:id:` and an id, or, from a form of before
/// ids, `edit:` and a slug, which are far shorter).
const MAX_DRAFT_KEY_BYTES: usize = 1024;

impl PostForm {
    /// The key under which the browser keeps this form's unsaved text (`static/drafts.js`): the
    /// one its page gave it, sent back with the form, or else the one of the post the form says
    /// it edits, or of the address it was sent to (`editing`: the slug of the post edited).
    fn draft_key(&self, editing: Option<&str>) -> String {
        match &self.draft_key {
            Some(key)
                if key.len() <= MAX_DRAFT_KEY_BYTES
                    && (key == "new" || key.starts_with("edit:"))
                    && !key.chars().any(char::is_control) =>
            {
                key.clone()
            }
            _ => match (editing, self.post_id.as_deref().map(str::trim)) {
                (None, _) => "new".to_owned(),
                (Some(_), Some(id)) if id.parse::<i32>().is_ok() => edit_draft_key(id),
                (Some(slug), _) => format!("edit:{slug}"),
            },
        }
    }

    /// The post and the version of it this edit form was loaded from, when it says both in a
    /// form this server writes; `None` for a form that does not (opened before a deploy added
    /// them), which cannot tell whether the post changed since.
    fn loaded_from(&self) -> Option<(i32, posts::Version)> {
        loaded_from(self.post_id.as_deref(), self.version.as_deref())
    }

    /// This form with the post `current`'s id and version, to be saved over it.
    fn against(&self, current: &PostWithTags) -> PostForm {
        PostForm {
            post_id: Some(current.post.id.to_string()),
            version: Some(posts::Version::of(current).token()),
            ..self.clone()
        }
    }

    fn draft(&self) -> PostDraft {
        PostDraft {
            title: self.title.clone(),
            slug: Some(self.slug.clone()),
            body: self.body.clone(),
            tags: split_tag_list(&self.tags),
            published: self.published.is_some(),
        }
    }
}

/// The key under which `static/drafts.js` keeps the unsaved text of the edit of the post `id`:
/// its id, which a change of its slug keeps and a new post at its old slug does not have.
fn edit_draft_key(id: impl std::fmt::Display) -> String {
    format!("edit:id:{id}")
}

fn post_form(
    state: &AppState,
    visitor: Visitor,
    editing: Option<&str>,
    form: &PostForm,
    draft_key: String,
    errors: FieldErrors,
) -> (SignedCookieJar, PostFormPage) {
    let (jar, chrome) = state.chrome(
        &visitor,
        if editing.is_some() {
            "Edit post"
        } else {
            "New post"
        },
    );
    let view = PostFormPage {
        chrome,
        action: editing.map_or("/admin/posts".to_owned(), |slug| {
            format!("/admin/posts/{}", super::path_segment(slug))
        }),
        editing: editing.is_some(),
        draft_key,
        title: form.title.clone(),
        slug: form.slug.clone(),
        body: form.body.clone(),
        tags: form.tags.clone(),
        published: form.published.is_some(),
        post_id: editing.and(form.post_id.clone()).unwrap_or_default(),
        version: editing.and(form.version.clone()).unwrap_or_default(),
        errors,
        current: None,
        legacy_draft: None,
    };
    (jar, view)
}

/// A post form the server sent back (a 422 or a 503) is shown at the form's POST address, so a
/// submit from it after the session ended returns there from the login: a GET of that address
/// leads to the form, where the browser's draft of it is offered back, not to a 405 page.
async fn to_new_post() -> Redirect {
    Redirect::to("/admin/posts/new")
}

/// As [`to_new_post`], for the edit of the post `slug`.
async fn to_edit_post(Path(slug): Path<String>) -> Redirect {
    Redirect::to(&super::edit_path(&slug))
}

async fn new_post(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
) -> impl IntoResponse {
    post_form(
        &state,
        visitor,
        None,
        &PostForm::default(),
        "new".to_owned(),
        FieldErrors::new(),
    )
}

async fn edit_post(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let existing = match posts::find_by_slug(&state.db, &slug, Visibility::All).await {
        Ok(existing) => existing,
        Err(BlogError::NotFound) => {
            // A slug the post had before (it was renamed): its edit page is at its slug now.
            let moved = posts::find_by_old_slug(&state.db, &slug, Visibility::All).await?;
            return super::moved_permanently(&super::edit_path(&moved.slug)).map_err(PageError);
        }
        Err(err) => return Err(err.into()),
    };
    let form = PostForm {
        title: existing.post.title.clone(),
        slug: existing.post.slug.clone(),
        body: existing.post.body.clone(),
        tags: existing.tags.join(", "),
        published: existing.post.published.then(|| "on".into()),
        draft_key: None,
        post_id: Some(existing.post.id.to_string()),
        version: Some(posts::Version::of(&existing).token()),
    };
    let (jar, mut view) = post_form(
        &state,
        visitor,
        Some(&slug),
        &form,
        edit_draft_key(existing.post.id),
        FieldErrors::new(),
    );
    // A draft kept under the slug, before drafts were keyed by the post, is moved to its key.
    view.legacy_draft = Some((
        format!("edit:{slug}"),
        posts::Version::time_text(existing.post.created_at),
    ));
    Ok((jar, view).into_response())
}

/// What the edit form says when no post has the address it edits any more.
const GONE_MEANWHILE: &str = "This post was deleted, or given another address, while you were \
     editing it: nothing was saved. Your text is kept below: \u{201c}Create post\u{201d} saves it \
     as a new post, or copy it into the post from the dashboard.";

/// What the edit form says when the post changed since the form was opened.
const CHANGED_MEANWHILE: &str = "This post was changed by someone else since you opened this \
     form: nothing was saved. Your text is kept in the form; the post as it is now is shown below \
     it. Bring over what you want to keep of it, then save again to replace it with this form.";

/// What the edit form says when it came without the version it was loaded from.
const VERSION_UNKNOWN: &str = "This form does not say which version of the post it was \
     opened on (it was opened before an update of the blog), so the post may have been changed by \
     someone else since you opened this form: nothing was saved. Your text is kept in the form; \
     the post as it is now is shown below it. Check it, then save again to replace it with this \
     form.";

/// The edit form sent back with a 409 because the post is not the version it was loaded from
/// (or the form does not say which): the user's text kept, the post as it is now shown under it,
/// and the form now carrying that version and posting to the post's address now, so that saving
/// it again replaces the post as the user has seen it.
fn changed_form(
    state: &AppState,
    visitor: Visitor,
    form: &PostForm,
    current: &PostWithTags,
    message: &str,
) -> Response {
    let form = form.against(current);
    let slug = current.post.slug.as_str();
    // The key the page gave it: the browser's draft of it is the text shown.
    let draft_key = form.draft_key(Some(slug));
    let errors = FieldErrors::from([("form", message.to_owned())]);
    let (jar, mut view) = post_form(state, visitor, Some(slug), &form, draft_key, errors);
    view.current = Some(CurrentPost::new(current, &form.draft()));
    (StatusCode::CONFLICT, jar, view).into_response()
}

/// Re-renders the form with what the user typed and what is wrong, or passes the error on.
///
/// A post changed since its edit form was opened comes back as [`changed_form`], with a 409. An
/// edit whose post is gone (deleted, or, for a form without the post's id, its slug changed on
/// another node, since the form was opened) comes back as a new-post form holding the edit, with
/// a 404: the post it was sent to does not exist, as the API answers a PATCH of it.
fn rejected_form(
    state: &AppState,
    visitor: Visitor,
    editing: Option<&str>,
    form: &PostForm,
    err: BlogError,
) -> Result<Response, PageError> {
    let err = match err {
        BlogError::Changed(current) => {
            return Ok(changed_form(
                state,
                visitor,
                form,
                &current,
                CHANGED_MEANWHILE,
            ));
        }
        other => other,
    };
    if editing.is_some() && matches!(err, BlogError::NotFound) {
        let errors = FieldErrors::from([("form", GONE_MEANWHILE.to_owned())]);
        // Still under the edit's draft key: the browser's draft of it is the text shown.
        let draft_key = form.draft_key(editing);
        let (jar, view) = post_form(state, visitor, None, form, draft_key, errors);
        return Ok((StatusCode::NOT_FOUND, jar, view).into_response());
    }
    let (status, errors, unavailable) = match err {
        BlogError::Validation(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, None),
        BlogError::Conflict(msg) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            FieldErrors::from([("slug", slug_conflict(form, msg))]),
            None,
        ),
        other => {
            let unavailable = unavailable(other)?;
            let errors = FieldErrors::from([("form", unavailable.sentence())]);
            (StatusCode::SERVICE_UNAVAILABLE, errors, Some(unavailable))
        }
    };
    let draft_key = form.draft_key(editing);
    let (jar, view) = post_form(state, visitor, editing, form, draft_key, errors);
    let mut response = (status, jar, view).into_response();
    if let Some(unavailable) = unavailable {
        unavailable.attach_to(&mut response);
    }
    Ok(response)
}

/// A slug conflict's message at the slug field: when the field was left empty, the address was
/// made from the title, and the message says which, or it would point at an empty field.
fn slug_conflict(form: &PostForm, msg: String) -> String {
    if !form.slug.trim().is_empty() {
        return msg;
    }
    match Slug::from_title(&form.title) {
        Some(slug) => format!(
            "the address \u{201c}{}\u{201d}, made from the title, is another post's: give this \
             one a slug of its own",
            slug.as_str()
        ),
        None => msg,
    }
}

/// A form's write that could not be done for a reason of the moment: the error a form shows
/// itself (its message says that nothing was saved) with a 503 and Retry-After, as the error
/// pages and the API do. Anything else goes to the error page.
fn unavailable(err: BlogError) -> Result<Error, PageError> {
    match Error::from(err) {
        unavailable @ Error::Unavailable(_) => Ok(unavailable),
        other => Err(PageError(other)),
    }
}

async fn create_post(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
    CsrfForm(form): CsrfForm<PostForm>,
) -> Result<Response, PageError> {
    let created = match PostInput::parse(&form.draft()) {
        Ok(input) => posts::create(&state.db, &input).await,
        Err(err) => Err(err),
    };
    match created {
        Ok(post) => {
            let message = format!("Created \"{}\".", post.post.title);
            let jar = state.flash_saved(visitor.jar, &message, &form.draft_key(None));
            Ok((jar, Redirect::to(&super::post_path(&post.post.slug))).into_response())
        }
        Err(err) => rejected_form(&state, visitor, None, &form, err),
    }
}

async fn update_post(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<PostForm>,
) -> Result<Response, PageError> {
    let Some((id, expected)) = form.loaded_from() else {
        // A form that does not say which version of the post it shows (opened before a deploy
        // added it) is not saved blindly over changes it cannot see: it comes back with the post
        // as it is now and its version, and saved again it saves. Read here, not in a write: it
        // only shows the post.
        return match posts::find_by_slug(&state.db, &slug, Visibility::All).await {
            Ok(current) => Ok(changed_form(
                &state,
                visitor,
                &form,
                &current,
                VERSION_UNKNOWN,
            )),
            Err(err) => rejected_form(&state, visitor, Some(&slug), &form, err),
        };
    };
    // The post as it is now, read outside the write: it only decides how the form is read, and
    // the write saves only over the version the form was loaded from (`expected`), whose slug
    // is the one read here whenever the write goes through.
    let current = posts::find_by_id(&state.db, id).await.ok();
    if let Some(label) = current
        .as_ref()
        .and_then(|current| legacy_tag_split(current, &form.tags))
    {
        let message = format!(
            "the tag \u{201c}{label}\u{201d} was saved when a label could hold a comma, and this \
             field separates tags with commas: rename it on the Tags page first, or take it out \
             of this list to remove it from the post"
        );
        let err = BlogError::field("tags", message);
        return rejected_form(&state, visitor, Some(&slug), &form, err);
    }
    // The slug field is sent back as the form showed it: the stored slug, unchanged, is kept as
    // stored (not folded as a typed slug, which would rename the post or refuse the save).
    let stored = current.as_ref().map(|current| current.post.slug.as_str());
    let updated = match PostInput::parse_edit(&form.draft(), stored) {
        Ok(input) => posts::update(&state.db, id, expected, &input).await,
        Err(err) => Err(err),
    };
    match updated {
        Ok(post) => {
            let message = format!("Saved \"{}\".", post.post.title);
            let jar = state.flash_saved(visitor.jar, &message, &form.draft_key(Some(&slug)));
            Ok((jar, Redirect::to(&super::post_path(&post.post.slug))).into_response())
        }
        Err(err) => rejected_form(&state, visitor, Some(&slug), &form, err),
    }
}

/// A tag of the post saved with a comma before labels could not hold one (see
/// [`crate::blog::input::lookup_label`]), still in the edit form's tag list: split on its commas
/// it would become other tags, and the post would lose it although the form was saved untouched.
/// Found when its parts (two or more) come in a row in the list. `current` is read outside the
/// write: it only decides whether the form is refused, and the post keeps its tags either way.
fn legacy_tag_split(current: &PostWithTags, raw_tags: &str) -> Option<String> {
    let typed = split_tag_list(raw_tags);
    current
        .tags
        .iter()
        .filter(|label| label.contains(','))
        .find(|label| {
            let parts = split_tag_list(label);
            parts.len() >= 2
                && typed
                    .windows(parts.len())
                    .any(|run| run == parts.as_slice())
        })
        .cloned()
}

/// A delete button of a post (the dashboard's, or the one shown with a refused delete): the id
/// and the version of the post the page showed, in hidden fields.
#[derive(Deserialize)]
struct DeleteForm {
    post_id: Option<String>,
    version: Option<String>,
    /// The page of the dashboard the button was on, to come back to if the delete is refused;
    /// absent (a page of before this field) or not a number: page 1.
    page: Option<String>,
    /// The dashboard's filter the button was shown with, to come back to (a [`Shown`]); absent
    /// (a page of before this field) or not a filter: all posts.
    status: Option<String>,
}

impl DeleteForm {
    /// A number too big for a u64 is a page past the end, as any other.
    fn page(&self) -> u64 {
        match self.page.as_deref().map(|p| p.trim().parse::<u64>()) {
            Some(Ok(page)) => page,
            Some(Err(e)) if *e.kind() == std::num::IntErrorKind::PosOverflow => u64::MAX,
            _ => 1,
        }
    }

    fn shown(&self) -> Shown {
        self.status
            .as_deref()
            .and_then(Shown::parse)
            .unwrap_or_default()
    }
}

/// A delete form's address opened (a login returning to the page a delete was refused on):
/// the dashboard, where the delete buttons are.
async fn to_dashboard() -> Redirect {
    Redirect::to("/admin")
}

/// Deletes the post `slug` if it is still the version the page showed (checked in the delete's
/// transaction). A post changed since, or given another address (found by its id), is kept, and
/// the dashboard comes back with a 409 showing it as it is now, with a delete button for that
/// version; a form that does not say which version it showed (a page of before versions) comes
/// back the same way, as an edit form without a version does. A post already gone: the dashboard
/// and a message.
async fn delete_post(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, PageError> {
    let shown = form.shown();
    let gone = |visitor: Visitor, message: &str| {
        let dashboard = Redirect::to(&dashboard_address(shown));
        Ok((state.flash(visitor.jar, message), dashboard).into_response())
    };
    let Some((id, version)) = loaded_from(form.post_id.as_deref(), form.version.as_deref()) else {
        // Not deleted blindly: shown as it is now, to be deleted from there. Read here, not in a
        // write: it only shows the post.
        return match posts::find_by_slug(&state.db, &slug, Visibility::All).await {
            Ok(current) => {
                let refused = DeleteRefused::new(DELETE_VERSION_UNKNOWN, &current);
                dashboard_page(&state, visitor, shown, form.page(), Some(refused)).await
            }
            Err(BlogError::NotFound) => gone(visitor, POST_ALREADY_GONE),
            Err(other) => Err(other.into()),
        };
    };
    let expected = posts::Expected::OneOf(vec![(id, version)]);
    let current = match posts::delete(&state.db, &slug, &expected).await {
        Ok(()) => return gone(visitor, "Post deleted."),
        Err(BlogError::Changed(current)) if current.post.id == id => *current,
        // No post at that address, or another one: the post the page showed, found by its id,
        // was given another address (it changed), or it was deleted.
        Err(BlogError::Changed(_) | BlogError::NotFound) => {
            match posts::find_by_id(&state.db, id).await {
                Ok(moved) => moved,
                Err(BlogError::NotFound) => return gone(visitor, POST_DELETED_MEANWHILE),
                Err(other) => return Err(other.into()),
            }
        }
        Err(other) => return Err(other.into()),
    };
    let refused = DeleteRefused::new(DELETE_CHANGED_MEANWHILE, &current);
    dashboard_page(&state, visitor, shown, form.page(), Some(refused)).await
}

/// What the dashboard says after a delete of a post that no address holds any more (deleted in
/// another tab or by another admin, or given another address), from a page that does not say
/// which post it showed: the list shows what is there.
const POST_ALREADY_GONE: &str = "No post has that address any more: it was deleted, or given \
     another address, meanwhile (in another tab, or by another admin). Nothing was deleted now.";

/// What the dashboard says after a delete of a post already deleted (the post the page showed,
/// by its id; another post may have its address now).
const POST_DELETED_MEANWHILE: &str = "That post was already deleted (in another tab, or by \
     another admin). Nothing was deleted now.";

/// What a refused delete says when the post changed since the page was loaded.
const DELETE_CHANGED_MEANWHILE: &str = "This post was changed since this page was loaded (by \
     someone else, or in another tab): nothing was deleted. Look at it as it is now, below, then \
     delete it again if it should still go.";

/// What a refused delete says when its form did not say which version of the post it showed.
const DELETE_VERSION_UNKNOWN: &str = "This page does not say which version of the post it was \
     loaded on (it was loaded before an update of the blog), so the post may have been changed \
     since: nothing was deleted. Look at it as it is now, below, then delete it again if it \
     should still go.";

/// What the tags page says after a delete of a tag already deleted.
const TAG_ALREADY_GONE: &str = "That tag was already deleted (in another tab, or by another \
     admin). Nothing was deleted now.";

async fn tag_admin(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<impl IntoResponse, PageError> {
    tag_page(&state, visitor, StatusCode::OK, String::new(), None, None).await
}

async fn tag_page(
    state: &AppState,
    visitor: Visitor,
    status: StatusCode,
    mut new_label: String,
    mut error: Option<String>,
    mut rename: Option<TagRename>,
) -> Result<Response, PageError> {
    let tags = tags::list_with_counts(&state.db, Visibility::All).await?;
    if let Some(gone) = rename.take_if(|r| !tags.iter().any(|t| t.id == r.id)) {
        // A rejected rename of a tag deleted meanwhile has no row to show it: the New tag field
        // keeps the label and the message.
        new_label = gone.label;
        error = Some(gone.error);
    }
    let (jar, chrome) = state.chrome(&visitor, "Manage tags");
    Ok((
        status,
        jar,
        AdminTagsPage {
            chrome,
            tags,
            new_label,
            error,
            rename,
        },
    )
        .into_response())
}

#[derive(Deserialize)]
struct TagForm {
    #[serde(default)]
    label: String,
}

/// A rejected tag form: the message next to the field it was typed in (the "New tag" field, or
/// the row of the tag renamed, `renaming`), with the label kept; the error page for anything else.
/// A rename of a tag deleted meanwhile puts its label in the "New tag" field, with a 404 (as the
/// post form does with an edit of a post deleted meanwhile).
async fn rejected_tag(
    state: &AppState,
    visitor: Visitor,
    renaming: Option<i32>,
    label: String,
    err: BlogError,
) -> Result<Response, PageError> {
    if renaming.is_some() && matches!(err, BlogError::NotFound) {
        // The row is gone: the label goes to the New tag field, from which it can be created.
        let message = "The tag you renamed was deleted meanwhile: nothing was renamed. Your label \
                       is kept here: \u{201c}Create tag\u{201d} adds it as a new tag.";
        return tag_page(
            state,
            visitor,
            StatusCode::NOT_FOUND,
            label,
            Some(message.to_owned()),
            None,
        )
        .await;
    }
    let (status, message, unavailable) = match err {
        BlogError::Validation(fields) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            fields.into_values().next().unwrap_or_default(),
            None,
        ),
        BlogError::Conflict(msg) => (StatusCode::UNPROCESSABLE_ENTITY, msg, None),
        // Not the input's fault: the write could not be done, as the post form says with a 503.
        other => {
            let unavailable = unavailable(other)?;
            let message = unavailable.sentence();
            (StatusCode::SERVICE_UNAVAILABLE, message, Some(unavailable))
        }
    };
    let mut response = match renaming {
        Some(id) => {
            let rename = TagRename {
                id,
                label,
                error: message,
            };
            tag_page(state, visitor, status, String::new(), None, Some(rename)).await?
        }
        None => tag_page(state, visitor, status, label, Some(message), None).await?,
    };
    if let Some(unavailable) = unavailable {
        unavailable.attach_to(&mut response);
    }
    Ok(response)
}

fn parse_label(raw: &str) -> Result<TagLabel, BlogError> {
    TagLabel::parse(raw).map_err(|e| BlogError::field("label", e))
}

async fn create_tag(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
    CsrfForm(form): CsrfForm<TagForm>,
) -> Result<Response, PageError> {
    let created = match parse_label(&form.label) {
        Ok(label) => tags::create(&state.db, &label).await,
        Err(err) => Err(err),
    };
    match created {
        Ok(tag) => Ok((
            state.flash(visitor.jar, &format!("Created tag \"{}\".", tag.label)),
            Redirect::to("/admin/tags"),
        )
            .into_response()),
        Err(err) => rejected_tag(&state, visitor, None, form.label, err).await,
    }
}

async fn rename_tag(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<i32>,
    CsrfForm(form): CsrfForm<TagForm>,
) -> Result<Response, PageError> {
    let renamed = match parse_label(&form.label) {
        Ok(label) => tags::rename(&state.db, id, &label).await,
        Err(err) => Err(err),
    };
    match renamed {
        Ok(tag) => Ok((
            state.flash(visitor.jar, &format!("Renamed to \"{}\".", tag.label)),
            Redirect::to("/admin/tags"),
        )
            .into_response()),
        Err(err) => rejected_tag(&state, visitor, Some(id), form.label, err).await,
    }
}

async fn delete_tag(
    _: PageAdmin,
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<i32>,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    // Gone before the look-up or between it and the delete: the same, the list says so.
    let deleted = match tags::find_by_id(&state.db, id).await {
        Ok(tag) => tags::delete(&state.db, id).await.map(|()| tag),
        Err(err) => Err(err),
    };
    let message = match deleted {
        Ok(tag) => format!("Deleted tag \"{}\".", tag.label),
        Err(BlogError::NotFound) => TAG_ALREADY_GONE.to_owned(),
        Err(other) => return Err(other.into()),
    };
    Ok((
        state.flash(visitor.jar, &message),
        Redirect::to("/admin/tags"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A login form's `next` is held while its password waits for an argon2 slot: one as long as
    /// the body limit (1 MiB) must not be kept, nor sent back as a redirect.
    #[test]
    fn an_overlong_next_is_not_kept() {
        let long = format!("/{}", "a".repeat(super::super::BODY_LIMIT - 100));
        assert_eq!(safe_next(Some(&long)), "/admin");
        assert_eq!(safe_next(Some("/admin/posts")), "/admin/posts");
    }

    /// A form sends back the draft key its page gave it; anything else is not a key the page's
    /// script uses, and the address's own key stands in.
    #[test]
    fn a_draft_key_is_the_form_s_own_or_the_address_s() {
        let form = |key: &str| PostForm {
            draft_key: Some(key.to_owned()),
            ..PostForm::default()
        };
        assert_eq!(form("new").draft_key(Some("a")), "new");
        assert_eq!(form("edit:gone").draft_key(None), "edit:gone");
        assert_eq!(PostForm::default().draft_key(None), "new");
        assert_eq!(PostForm::default().draft_key(Some("a")), "edit:a");
        let of_post = |id: &str| PostForm {
            post_id: Some(id.to_owned()),
            ..PostForm::default()
        };
        assert_eq!(of_post("7").draft_key(Some("a")), "edit:id:7");
        assert_eq!(of_post("7").draft_key(None), "new");
        assert_eq!(of_post("x").draft_key(Some("a")), "edit:a");
        assert_eq!(form("edit:id:7").draft_key(Some("a")), "edit:id:7");
        assert_eq!(form("blog-session").draft_key(None), "new");
        assert_eq!(form("edit:a\nb").draft_key(Some("a")), "edit:a");
        let long = format!("edit:{}", "a".repeat(MAX_DRAFT_KEY_BYTES));
        assert_eq!(form(&long).draft_key(None), "new");
    }
}
