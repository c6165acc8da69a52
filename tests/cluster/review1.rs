//! Review (fresh context) of the dashboard's delete on a replica that lags behind the primary.

use std::time::Duration;

use crate::harness::{ADMIN_PASSWORD, Cluster, wait_until};
use crate::{get_text, http};

/// The hidden fields of the delete form of the post `slug` on a dashboard page.
fn delete_fields(html: &str, slug: &str) -> Option<Vec<(String, String)>> {
    let marker = format!(r#"<form method="post" action="/admin/posts/{slug}/delete">"#);
    let form = &html[html.find(&marker)?..];
    let form = &form[..form.find("</form>")?];
    Some(
        form.match_indices(r#"<input type="hidden" name=""#)
            .map(|(at, marker)| {
                let rest = &form[at + marker.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                let value_at = rest.find(r#"value=""#).unwrap() + r#"value=""#.len();
                let value = &rest[value_at..value_at + rest[value_at..].find('"').unwrap()];
                (name.to_owned(), value.replace("&#43;", "+"))
            })
            .collect(),
    )
}

/// An admin on a replica that lags (1.5 s) loads the dashboard; another admin deletes the post
/// on the primary; the first presses Delete at once. The primary has no such post, so nothing is
/// deleted, and the answer must say the post was already deleted (a 303 to the dashboard with
/// that message), as it does on a single node. The delete then reads the post by its id on the
/// replica, which has not caught up yet, finds it there, and answers 409 "This post was changed
/// since this page was loaded ... Look at it as it is now, below", showing the deleted post as
/// it was, with a delete button for it.
#[tokio::test]
async fn review_a_delete_on_a_lagging_replica_of_a_post_deleted_on_the_primary_says_it_is_gone() {
    let cluster = Cluster::start_with_lag(2, 2, Duration::from_millis(1500)).await;
    let (primary, replica) = (cluster.url(1), cluster.url(2));
    let api = http();
    let created = api
        .post(format!("{primary}/api/posts"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({ "title": "Gone", "body": "v1", "published": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = get_text(&browser, &format!("{replica}/admin/login")).await;
    let at = login.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = login[at..].split('"').next().unwrap().to_owned();
    let signed = browser
        .post(format!("{replica}/admin/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("password", ADMIN_PASSWORD),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    // The dashboard on the replica, once the post has reached it.
    let form = wait_until("the post on the replica's dashboard", || {
        let browser = browser.clone();
        let replica = replica.clone();
        async move {
            let html = get_text(&browser, &format!("{replica}/admin")).await;
            delete_fields(&html, "gone")
        }
    })
    .await;

    let deleted = api
        .delete(format!("{primary}/api/posts/gone"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let response = browser
        .post(format!("{replica}/admin/posts/gone/delete"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let html = response.text().await.unwrap();
    let refused = html.find("delete-refused").map_or("", |at| {
        &html[at..html[at..].find("</section>").map_or(html.len(), |e| at + e)]
    });
    assert!(
        !html.contains("was changed since this page was loaded"),
        "the post deleted on the primary is shown ({status}) as changed, 'as it is now', from \
         the lagging replica's copy: {refused}"
    );
    assert_eq!(status, 303, "{html}");
}
