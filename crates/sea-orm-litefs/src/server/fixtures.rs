use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::wire::{self, Request};
use crate::writer::{Method, Sql, Writer};

/// Creates `t(x)` through `writer`.
pub async fn create_t(writer: &Arc<Writer>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let sql = Sql::Raw("CREATE TABLE t(x)".into());
    writer
        .autocommit(sql, Method::Execute, None, false, deadline)
        .await
        .unwrap();
}

/// A primary serving RPC on loopback (its executor, table `t`): its writer, executor and
/// faults, its RPC address and secret.
pub async fn serving_primary(
    name: &str,
) -> (
    Arc<Writer>,
    Arc<super::Executor>,
    Arc<super::Faults>,
    String,
    Arc<Vec<u8>>,
) {
    let writer = Writer::on_temp_file(name, true);
    create_t(&writer).await;
    let faults = Arc::new(super::Faults::default());
    let executor = super::Executor::new(
        writer.clone(),
        None,
        super::SessionLimits {
            lease: Duration::from_secs(10),
            max_lifetime: Duration::from_secs(30),
            max_sessions: 64,
        },
        faults.clone(),
        Arc::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let secret = Arc::new(format!("{name}-secret").into_bytes());
    tokio::spawn(super::serve(listener, executor.clone(), secret.clone()));
    (writer, executor, faults, addr, secret)
}

/// A replica's view of LiteFS: it names "primary" as the primary (its address is the
/// forwarder's).
pub fn replica_follower(name: &str) -> Arc<crate::litefs::Follower> {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let follower = Arc::new(crate::litefs::Follower::new(crate::litefs::Mount {
        dir,
        db_name: "t.db".into(),
    }));
    follower.set_role(false, "primary");
    follower
}

/// How many rows `t` holds.
pub async fn rows(writer: &Writer) -> i64 {
    let (mut conn, _) = writer.connection().await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// `INSERT INTO t VALUES (x)`, as a replica forwards it.
pub fn insert(x: i64) -> Request {
    Request::Execute(wire::Statement {
        sql: "INSERT INTO t VALUES (?)".into(),
        params: vec![wire::Value::Integer(x)],
    })
}
