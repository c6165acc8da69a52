//! The JSON API under `/api`: CRUD, validation, auth, errors, transactions and pagination.

use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{json_of, spawn_app};

/// The `error` message of a JSON error body.
fn error_message(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a JSON error {{\"error\": ...}}, got {body}"))
}

/// The field names of a 422 body.
fn invalid_fields(body: &Value) -> Vec<String> {
    assert_eq!(error_message(body), "invalid input", "{body}");
    body["fields"]
        .as_object()
        .unwrap_or_else(|| panic!("a 422 has per-field messages: {body}"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn tags_crud() {
    let app = spawn_app().await;
    assert_eq!(app.api_get("/tags").await, (StatusCode::OK, json!([])));
    // The admin lists every tag; visitors only tags a published post carries.
    let admin_list = || app.api_call(Method::GET, "/tags", None);

    let created = app.create_tag("rust").await;
    let id = created["id"].as_i64().expect("a created tag has an id");
    assert_eq!(created["label"], "rust");
    assert_eq!(
        admin_list().await,
        (
            StatusCode::OK,
            json!([{ "id": id, "label": "rust", "post_count": 0 }])
        )
    );
    assert_eq!(app.api_get("/tags").await, (StatusCode::OK, json!([])));

    let (status, renamed) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{id}"),
            Some(&json!({ "label": "  Rust lang " })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["id"], id);
    assert_eq!(renamed["label"], "Rust lang", "labels are trimmed");
    assert_eq!(
        admin_list().await,
        (
            StatusCode::OK,
            json!([{ "id": id, "label": "Rust lang", "post_count": 0 }])
        )
    );

    let (status, body) = app
        .api_call(Method::DELETE, &format!("/tags/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(admin_list().await, (StatusCode::OK, json!([])));
    let (status, body) = app
        .api_call(Method::DELETE, &format!("/tags/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn posts_crud() {
    let app = spawn_app().await;
    let created = app
        .create_post(json!({
            "title": "Hello, World!",
            "body": "First **post**.",
            "tags": ["sqlite", "rust", "rust"],
            "published": true
        }))
        .await;
    assert_eq!(
        created["slug"], "hello-world",
        "slug derived from the title"
    );
    assert_eq!(created["title"], "Hello, World!");
    assert_eq!(created["body"], "First **post**.");
    assert_eq!(created["published"], true);
    assert!(created["published_at"].is_string(), "{created}");
    assert_eq!(created["tags"], json!(["rust", "sqlite"]));

    let (status, fetched) = app.api_get("/posts/hello-world").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);
    let (status, list) = app.api_get("/posts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total_items"], 1);
    assert_eq!(list["items"][0]["slug"], "hello-world");
    let (_, tags) = app.api_get("/tags").await;
    let counts: Vec<(&str, i64)> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap(),
                t["post_count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("rust", 1), ("sqlite", 1)]);

    // PATCH: new title, slug and tags; the body is left out and kept.
    let (status, patched) = app
        .api_call(
            Method::PATCH,
            "/posts/hello-world",
            Some(&json!({ "title": "Hello again", "slug": "hello-again", "tags": ["litefs"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["slug"], "hello-again");
    assert_eq!(patched["title"], "Hello again");
    assert_eq!(patched["body"], "First **post**.");
    assert_eq!(patched["tags"], json!(["litefs"]));
    assert_eq!(patched["id"], created["id"]);
    // The old slug is no post of its own: it leads to the post's address now.
    let moved = app.get("/api/posts/hello-world").await;
    assert_eq!(moved.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        crate::helpers::location(moved.headers()),
        "/api/posts/hello-again"
    );
    let (status, fetched) = app.api_get("/posts/hello-again").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, patched);
    let (_, tags) = app.api_get("/tags").await;
    let litefs = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "litefs")
        .expect("the new tag exists");
    assert_eq!(litefs["post_count"], 1);
    assert!(
        tags.as_array()
            .unwrap()
            .iter()
            .filter(|t| t["label"] != "litefs")
            .all(|t| t["post_count"] == 0),
        "old tags are unlinked: {tags}"
    );

    // Unpublishing hides it from the public API but not from the admin.
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/hello-again",
            Some(&json!({ "published": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.api_get("/posts/hello-again").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.api_get("/posts").await.1["total_items"], 0);
    let (status, body) = app.api_call(Method::GET, "/posts", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total_items"], 1, "the admin sees drafts: {body}");
    let (status, body) = app.api_call(Method::GET, "/posts/hello-again", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["published"], false);

    let (status, body) = app
        .api_call(Method::DELETE, "/posts/hello-again", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        app.api_call(Method::GET, "/posts/hello-again", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.api_call(Method::GET, "/posts", None).await.1["total_items"],
        0
    );
    assert_eq!(app.row_counts().await.0, 0);
}

#[tokio::test]
async fn invalid_input_is_422_with_field_names() {
    let app = spawn_app().await;
    let cases = [
        ("/tags", json!({ "label": "" }), "label"),
        ("/tags", json!({ "label": "   " }), "label"),
        ("/tags", json!({ "label": "a/b" }), "label"),
        ("/tags", json!({ "label": "x".repeat(41) }), "label"),
        ("/posts", json!({ "title": "", "body": "text" }), "title"),
        (
            "/posts",
            json!({ "title": "Fine", "slug": "Not A Slug!" }),
            "slug",
        ),
        ("/posts", json!({ "title": "Fine", "slug": "a--b" }), "slug"),
        (
            "/posts",
            json!({ "title": "Fine", "tags": ["ok", "a/b"] }),
            "tags",
        ),
    ];
    for (path, body, field) in cases {
        let (status, response) = app.api_call(Method::POST, path, Some(&body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {response}"
        );
        assert_eq!(invalid_fields(&response), [field], "{body}: {response}");
        assert!(
            response["fields"][field]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "a message for {field}: {response}"
        );
    }

    // Several fields at once are all reported.
    let (status, response) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": " ", "slug": "BAD" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid_fields(&response), ["slug", "title"]);

    // The same rules on PATCH.
    let tag = app.create_tag("ok").await;
    let (status, response) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{}", tag["id"]),
            Some(&json!({ "label": "x/y" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid_fields(&response), ["label"]);
    app.create_post(json!({ "title": "A post" })).await;
    let (status, response) = app
        .api_call(
            Method::PATCH,
            "/posts/a-post",
            Some(&json!({ "title": "", "slug": "Nope" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid_fields(&response), ["slug", "title"]);

    // Nothing invalid was stored.
    assert_eq!(app.tag_labels().await, ["ok"]);
    let (_, post) = app.api_call(Method::GET, "/posts/a-post", None).await;
    assert_eq!(post["title"], "A post");
    assert_eq!(app.row_counts().await, (1, 1));
}

#[tokio::test]
async fn writes_need_the_admin() {
    let app = spawn_app().await;
    let tag = app.create_tag("kept").await;
    app.create_post(json!({ "title": "Kept", "published": true }))
        .await;
    let anonymous = crate::helpers::cookie_client();
    let requests = [
        (
            Method::POST,
            "/api/tags".to_owned(),
            json!({ "label": "new" }),
        ),
        (
            Method::PATCH,
            format!("/api/tags/{}", tag["id"]),
            json!({ "label": "renamed" }),
        ),
        (
            Method::DELETE,
            format!("/api/tags/{}", tag["id"]),
            json!({}),
        ),
        (
            Method::POST,
            "/api/posts".to_owned(),
            json!({ "title": "New" }),
        ),
        (
            Method::PATCH,
            "/api/posts/kept".to_owned(),
            json!({ "title": "X" }),
        ),
        (Method::DELETE, "/api/posts/kept".to_owned(), json!({})),
    ];
    let credentials = [
        None,
        Some(("admin", "wrong-password")),
        Some(("root", app.password.as_str())),
        Some(("admin", "")),
    ];
    for (method, path, body) in &requests {
        for credentials in credentials {
            let mut request = anonymous.request(method.clone(), app.url(path)).json(body);
            if let Some((user, password)) = credentials {
                request = request.basic_auth(user, Some(password));
            }
            let response = request.send().await.unwrap();
            assert!(
                response.headers().contains_key("www-authenticate"),
                "a 401 carries a Basic challenge"
            );
            let (status, body) = json_of(response).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {credentials:?}"
            );
            assert!(!error_message(&body).is_empty());
        }
    }
    // A garbled Authorization header is a 401 too, even on a read.
    let response = anonymous
        .get(app.url("/api/posts"))
        .header("authorization", "Basic !!!not-base64")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Nothing changed.
    assert_eq!(app.tag_labels().await, ["kept"]);
    let (status, post) = app.api_get("/posts/kept").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(post["title"], "Kept");
    assert_eq!(app.row_counts().await, (1, 1));
}

#[tokio::test]
async fn missing_resources_are_404() {
    let app = spawn_app().await;
    let cases = [
        (Method::GET, "/posts/nope", None),
        (Method::PATCH, "/posts/nope", Some(json!({ "title": "T" }))),
        (Method::DELETE, "/posts/nope", None),
        (Method::PATCH, "/tags/4242", Some(json!({ "label": "t" }))),
        (Method::DELETE, "/tags/4242", None),
        (Method::GET, "/nothing-here", None),
    ];
    for (method, path, body) in cases {
        let (status, response) = app.api_call(method.clone(), path, body.as_ref()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {response}");
        assert_eq!(error_message(&response), "not found");
    }
    assert_eq!(app.api_get("/posts/nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn duplicates_are_409_with_a_message() {
    let app = spawn_app().await;
    app.create_tag("rust").await;
    let other = app.create_tag("go").await;

    let (status, body) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "rust" })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body).contains("already exists"), "{body}");
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{}", other["id"]),
            Some(&json!({ "label": "rust" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body).contains("already exists"), "{body}");
    assert_eq!(app.tag_labels().await, ["go", "rust"]);

    app.create_post(json!({ "title": "First", "slug": "taken" }))
        .await;
    app.create_post(json!({ "title": "Second", "slug": "second" }))
        .await;
    let (status, body) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Another", "slug": "taken" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body).contains("slug"), "{body}");
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/second",
            Some(&json!({ "slug": "taken" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body).contains("slug"), "{body}");
    let (_, second) = app.api_call(Method::GET, "/posts/second", None).await;
    assert_eq!(second["title"], "Second");
    assert_eq!(app.row_counts().await, (2, 2));
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413() {
    let app = spawn_app().await;
    let big = json!({ "title": "Big", "body": "x".repeat(1024 * 1024 + 1) });
    let (status, body) = app.api_call(Method::POST, "/posts", Some(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(!error_message(&body).is_empty());
    assert_eq!(app.row_counts().await, (0, 0));

    // Just under the limit passes the size check (and is then refused by validation, 512 KiB).
    let under = json!({ "title": "Big", "body": "x".repeat(1000 * 1000) });
    let (status, body) = app.api_call(Method::POST, "/posts", Some(&under)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(invalid_fields(&body), ["body"]);
}

#[tokio::test]
async fn malformed_json_is_a_json_4xx() {
    let app = spawn_app().await;
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("/posts", Some("application/json"), "{\"title\": "),
        ("/tags", Some("application/json"), "not json at all"),
        ("/tags", Some("application/json"), "{\"label\": 5}"),
        ("/tags", Some("application/json"), "{}"),
        ("/tags", None, "{\"label\": \"no content type\"}"),
    ];
    for (path, content_type, raw) in cases {
        let mut request = app.api(Method::POST, path).body(raw);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, body) = json_of(request.send().await.unwrap()).await;
        assert!(status.is_client_error(), "{raw}: {status} {body}");
        assert!(!error_message(&body).is_empty(), "{raw}: {body}");
    }
    assert_eq!(app.row_counts().await, (0, 0));
}

/// Tags are created inside the post's transaction: when the post fails, they are not left behind.
#[tokio::test]
async fn a_failed_post_transaction_leaves_nothing_behind() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "First", "tags": ["existing"], "published": true }))
        .await;
    let before = app.row_counts().await;
    assert_eq!(before, (1, 1));

    // The duplicate slug is refused, and the new tag is not created.
    let (status, body) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({
                "title": "Second",
                "slug": "first",
                "tags": ["brand-new", "existing"],
                "published": true
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body).contains("slug"), "{body}");
    assert_eq!(app.tag_labels().await, ["existing"]);
    assert_eq!(app.api_get("/posts").await.1["total_items"], 1);
    assert_eq!(app.row_counts().await, before);

    // A failure after the post row and the new tags were written: a trigger refuses to link the
    // tag "poison", so the post's insert and the upsert of "fresh" must be rolled back too.
    app.db
        .execute_unprepared(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON posts_tags \
             WHEN (SELECT label FROM tags WHERE id = NEW.tag_id) = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .await
        .expect("create the failure-injecting trigger");
    let (status, body) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Doomed", "tags": ["fresh", "poison"], "published": true })),
        )
        .await;
    assert!(
        !status.is_success(),
        "the injected failure fails the create: {body}"
    );
    assert_eq!(
        app.api_call(Method::GET, "/posts/doomed", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.tag_labels().await, ["existing"]);
    assert_eq!(app.row_counts().await, before);

    // The same for an update: the post keeps its title and tags.
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/first",
            Some(&json!({ "title": "Changed", "tags": ["fresh", "poison"] })),
        )
        .await;
    assert!(
        !status.is_success(),
        "the injected failure fails the update: {body}"
    );
    let (status, first) = app.api_get("/posts/first").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["title"], "First");
    assert_eq!(first["tags"], json!(["existing"]));
    assert_eq!(app.tag_labels().await, ["existing"]);
    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn posts_are_paginated_newest_first() {
    let app = spawn_app().await;
    for i in 1..=23 {
        app.create_post(json!({
            "title": format!("Post {i:02}"),
            "body": format!("Body of post {i:02}."),
            "published": true
        }))
        .await;
    }
    // A draft is not counted in the public list.
    app.create_post(json!({ "title": "Secret draft" })).await;

    let titles = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items is an array")
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, first) = app.api_get("/posts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["page"], 1);
    assert_eq!(first["per_page"], 10);
    assert_eq!(first["total_items"], 23);
    assert_eq!(first["total_pages"], 3);
    assert_eq!(titles(&first).len(), 10);
    assert_eq!(titles(&first)[0], "Post 23");
    assert_eq!(titles(&first)[9], "Post 14");

    let (status, third) = app.api_get("/posts?page=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(third["page"], 3);
    assert_eq!(third["total_pages"], 3);
    assert_eq!(titles(&third), ["Post 03", "Post 02", "Post 01"]);

    let (status, beyond) = app.api_get("/posts?page=4").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "past the last page: {beyond}"
    );
    let (_, small) = app.api_get("/posts?per_page=5&page=5").await;
    assert_eq!(small["total_pages"], 5);
    assert_eq!(titles(&small), ["Post 03", "Post 02", "Post 01"]);
    let (_, admin) = app.api_call(Method::GET, "/posts", None).await;
    assert_eq!(admin["total_items"], 24, "the admin also sees the draft");

    // The home page: ten posts and a link to older ones.
    let (status, home) = app.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(home.matches("<article class=\"card\">").count(), 10);
    assert!(home.contains("Post 23") && home.contains("Post 14"));
    assert!(!home.contains("Post 13"), "page 1 stops at the tenth post");
    assert!(!home.contains("Secret draft"));
    let older = r#"<a rel="next" href="/?page=2">Older"#;
    assert!(home.contains(older), "an Older link: {home}");
    assert!(home.contains("Page 1 of 3"));

    let (status, last) = app.get_text("/?page=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(last.matches("<article class=\"card\">").count(), 3);
    assert!(
        last.contains("Post 01"),
        "the oldest post is on the last page"
    );
    assert!(!last.contains("Post 04"));
    assert!(
        !last.contains("rel=\"next\""),
        "no Older link on the last page"
    );
    assert!(last.contains(r#"<a rel="prev" href="/?page=2">"#));
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let (status, body) = app.get_text("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.trim(), "ok");
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("standalone"), "{body}");

    // A write, so that the metrics have seen the app at work.
    app.create_tag("metrics").await;
    let (status, body) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let line = body
        .lines()
        .find(|l| l.starts_with("blog_replica_local_write_attempts_total"))
        .unwrap_or_else(|| panic!("no blog_replica_local_write_attempts_total in {body}"));
    assert_eq!(
        line.split_whitespace().last(),
        Some("0"),
        "a standalone node never hits the backstop: {line}"
    );
    assert!(body.contains("# TYPE blog_replica_local_write_attempts_total counter"));
}

/// A body that is not JSON, or not the JSON the request takes, is answered in plain words: what
/// the body was meant to be and what is wrong with it, without the server's internal names.
#[tokio::test]
async fn a_body_that_is_not_the_json_asked_for_is_answered_plainly() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "A post" })).await;
    let cases = [
        (
            Method::POST,
            "/posts",
            "{}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body is not valid JSON for a post: missing field `title`",
        ),
        (
            Method::POST,
            "/posts",
            "[]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body is not valid JSON for a post: invalid length 0, expected a JSON object at line 1",
        ),
        (
            Method::POST,
            "/posts",
            r#"{"title": "T", "tags": "rust"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body is not valid JSON for a post: tags: invalid type: string \"rust\", expected a sequence",
        ),
        (
            Method::PATCH,
            "/posts/a-post",
            r#"{"titel": "typo"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body is not valid JSON for a post's changes: unknown field `titel`, expected one of `title`",
        ),
        (
            Method::POST,
            "/tags",
            r#""rust""#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body is not valid JSON for a tag: invalid type: string \"rust\", expected a JSON object",
        ),
        (
            Method::POST,
            "/tags",
            "{not json",
            StatusCode::BAD_REQUEST,
            "the body is not valid JSON: key must be a string",
        ),
    ];
    for (method, path, body, expected, start) in cases {
        let response = app
            .api(method.clone(), path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, answer) = json_of(response).await;
        assert_eq!(status, expected, "{method} {path} {body}: {answer}");
        let message = error_message(&answer);
        assert!(
            message.starts_with(start),
            "{method} {path} {body}: {message}"
        );
        for internal in ["target type", "struct", "Draft", "Patch", "TagBody"] {
            assert!(
                !message.contains(internal),
                "{method} {path} {body}: {message}"
            );
        }
        assert!(answer.get("fields").is_none(), "{answer}");
    }
}
