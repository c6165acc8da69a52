//! Writes through the cluster layer outside HTTP: opens a `ClusterConnection` on a LiteFS node,
//! begins a transaction (on a replica, a session on the primary), inserts a tag, then waits for a
//! line on stdin before committing. The cluster tests kill it at that point to show that the
//! primary rolls back a transaction whose replica vanished.
//!
//! ```sh
//! cargo run --example remote_transaction -- <litefs mount> <litefs api> <label>
//! ```
//! with `BLOG_CLUSTER_SECRET` set as on the nodes.

use std::path::PathBuf;

use blog::entity::tag;
use sea_orm::{ActiveModelTrait, Set, TransactionSession, TransactionTrait};
use sea_orm_litefs::Builder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(mount), Some(api), Some(label)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: remote_transaction <litefs mount> <litefs api> <label>".into());
    };
    let mount = PathBuf::from(mount);
    let db = Builder::new(mount.join("blog.db"))
        .litefs(mount, api)
        .rpc_listen("127.0.0.1:0")
        .secret(std::env::var("BLOG_CLUSTER_SECRET").unwrap_or_default())
        .start()
        .await?;
    let txn = db.begin().await?;
    let tag = tag::ActiveModel {
        label: Set(label),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    println!(
        "inserted {} as {} (role: {})",
        tag.label,
        tag.id,
        db.role().as_str()
    );
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    txn.commit().await?;
    println!("committed");
    Ok(())
}
