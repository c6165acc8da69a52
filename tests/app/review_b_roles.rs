//! Review B: the footer of a node that knows no primary (Role::NoPrimary, now "no-primary").

use blog::web::views::Chrome;
use sea_orm_litefs::Role;

fn chrome(role: &'static str) -> Chrome {
    Chrome {
        title: String::new(),
        node: "node-2".into(),
        role,
        admin: false,
        flash: None,
        saved_draft: None,
        csrf: String::new(),
        site_title: String::new(),
        description: String::new(),
        canonical: String::new(),
        og_type: "website",
        noindex: false,
        search: String::new(),
    }
}

/// "A node that knows no primary says so (no-primary), in its header, footer and logs": its
/// footer, built from `Role::NoPrimary.as_str()`, says "SQLite, one standalone node" (the
/// `_` arm of `Chrome::replication`), on a node of a LiteFS cluster. Before the change it said
/// writes are forwarded; now it says something false.
#[test]
fn revb_a_node_without_primary_is_not_called_standalone_in_the_footer() {
    let footer = chrome(Role::NoPrimary.as_str()).replication();
    assert!(
        !footer.contains("standalone"),
        "no-primary footer: {footer:?}"
    );
    assert_ne!(
        footer,
        chrome(Role::Standalone.as_str()).replication(),
        "a LiteFS node that knows no primary is shown as a standalone one"
    );
}
