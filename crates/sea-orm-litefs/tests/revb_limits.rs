//! Review B of the remote-transaction lease default (min(2 s, forward_timeout / 2)).

use std::time::Duration;

use sea_orm_litefs::Builder;

fn dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("revb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The forward timeout set alone is promised to work ("so that setting only the timeout works";
/// "a timeout set alone at or below 2 s is not refused for a default the app never chose").
/// A 1 ns timeout gives a default lease of 0 (1 ns / 2), and start-up refuses the lease the app
/// never set: "remote_transaction_lease is 0".
#[tokio::test]
async fn revb_a_forward_timeout_of_one_nanosecond_alone_is_not_refused_for_the_default_lease() {
    let dir = dir("one-ns");
    let result = Builder::new(dir.join("app.db"))
        .forward_timeout(Duration::from_nanos(1))
        .start()
        .await;
    if let Err(e) = &result {
        let text = e.to_string();
        assert!(
            !text.contains("remote_transaction_lease"),
            "refused for a lease the app never set: {text}"
        );
    }
    drop(result);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The maximum lifetime set alone below 2 s is refused for the default lease (2 s) the app never
/// chose, as the forward timeout set alone was before this change: "max lifetime 1s below lease
/// 2s". The default lease follows the timeout now, but not the lifetime.
#[tokio::test]
async fn revb_a_max_lifetime_set_alone_is_not_refused_for_the_default_lease() {
    let dir = dir("lifetime-alone");
    let result = Builder::new(dir.join("app.db"))
        .remote_transaction_max_lifetime(Duration::from_secs(1))
        .start()
        .await;
    let err = result.as_ref().err().map(ToString::to_string);
    drop(result);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(err, None, "refused for a default lease the app never chose");
}
