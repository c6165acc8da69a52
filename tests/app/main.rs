//! Integration tests of the blog on one standalone node: each test starts the real app on port 0
//! against its own fresh SQLite database (see `helpers::spawn_app`).

mod api;
mod browser_test;
mod cli;
mod content;
mod content_edges;
mod dashboard;
mod delete_conflicts;
mod edit_conflicts;
mod fuzz;
mod hardening;
mod helpers;
mod pages;
mod review10;
mod review11;
mod review2_tags;
mod review3_tags;
mod review4_tags;
mod review5_tags;
mod review8_search;
mod review9;
mod review_b_roles;
mod review_b_search;
mod review_c_search;
mod review_d;
mod review_four;
mod review_int;
mod review_reva;
mod review_three;
mod review_two;
mod search;
mod shutdown;
mod signin;
mod signin_availability;
mod site;
mod slug_redirects;
mod tag_case;
mod user_review;

use test_support::browser;
