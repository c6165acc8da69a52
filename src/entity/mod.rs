//! SeaORM entities: `tags`, `posts` and the `posts_tags` link.

pub mod post;
pub mod post_tag;
pub mod tag;
