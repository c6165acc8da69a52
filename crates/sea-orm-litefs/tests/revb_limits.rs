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

/// "refuses a non-http:// LiteFS API address at once": an address with a path, credentials, an
/// upper-case scheme or no port is not `http://host:port` either, and is either refused by name
/// (StartError::LiteFsApi) or, for the upper-case scheme, accepted as the same address. Here
/// each start is given 1 s; a `LiteFsSilent` answer means it was tried for the whole start-up
/// timeout instead.
#[tokio::test]
async fn revb_litefs_api_addresses_that_are_not_host_port_are_refused_at_once() {
    let dir = dir("api-forms");
    std::fs::create_dir_all(&dir).unwrap();
    let mut silent = Vec::new();
    for api in [
        "http://127.0.0.1:20202/litefs",
        "http://user:pw@127.0.0.1:20202",
        "http://127.0.0.1",
        "http://127.0.0.1:20202?x=1",
    ] {
        let started = std::time::Instant::now();
        let result = Builder::new(dir.join("app.db"))
            .litefs(&dir, api)
            .secret("s")
            .startup_timeout(Duration::from_secs(1))
            .start()
            .await;
        match result {
            Err(sea_orm_litefs::StartError::LiteFsApi { .. }) => {}
            Err(e) => silent.push(format!("{api}: after {:?}: {e}", started.elapsed())),
            Ok(_) => silent.push(format!("{api}: started")),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(silent.is_empty(), "{silent:#?}");
}

/// URL schemes are case-insensitive: `HTTP://127.0.0.1:20202` is refused as "not http://".
#[tokio::test]
async fn revb_an_upper_case_http_scheme_is_not_refused_as_not_http() {
    let dir = dir("api-upper");
    std::fs::create_dir_all(&dir).unwrap();
    let result = Builder::new(dir.join("app.db"))
        .litefs(&dir, "HTTP://127.0.0.1:9")
        .secret("s")
        .startup_timeout(Duration::from_millis(300))
        .start()
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !matches!(result, Err(sea_orm_litefs::StartError::LiteFsApi { .. })),
        "{:?}",
        result.err().map(|e| e.to_string())
    );
}

/// "Start-up names why LiteFS was silent (the last connection error)": LiteFS refuses the first
/// tries (not up yet), then answers `/events` with a 200 and no event. The cause given is the
/// first refusal ("the last try said: Connection refused"), though the last try connected and
/// was answered; the error of an attempt is never cleared by a later one that succeeded.
#[tokio::test]
async fn revb_the_cause_of_a_silent_litefs_is_the_last_try_not_an_old_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = dir("stale-cause");
    std::fs::create_dir_all(&dir).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let mut held = Vec::new();
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            held.push(stream);
        }
    });
    let err = Builder::new(dir.join("app.db"))
        .litefs(&dir, &format!("http://{addr}"))
        .secret("s")
        .startup_timeout(Duration::from_millis(2500))
        .start()
        .await
        .err()
        .map(|e| e.to_string());
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    let err = err.expect("no event: start-up fails");
    assert!(
        !err.to_lowercase().contains("refused"),
        "the last try was answered (200, no event), not refused: {err}"
    );
}
