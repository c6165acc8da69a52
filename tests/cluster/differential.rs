//! The same SeaORM operations, forwarded from a replica and run locally on the primary, give the
//! same models, ids, counts and errors.

use chrono::{TimeZone, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ModelTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set, Statement, TransactionSession, TransactionTrait,
};

use crate::harness::Cluster;
use blog::entity::{post, post_tag, tag};

fn at(second: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, second).unwrap()
}

fn new_tag(label: &str, second: u32) -> tag::ActiveModel {
    tag::ActiveModel {
        label: Set(label.into()),
        label_key: Set(blog::blog::input::label_key(label)),
        created_at: Set(at(second)),
        ..Default::default()
    }
}

/// How an error looks to the app: its text and SeaORM's classification.
fn describe_err(err: &DbErr) -> String {
    format!("{err} / {:?}", err.sql_err())
}

fn show<T: std::fmt::Debug>(result: Result<T, DbErr>) -> String {
    match result {
        Ok(value) => format!("ok {value:?}"),
        Err(err) => format!("err {}", describe_err(&err)),
    }
}

/// Runs every operation on `db` and records what each returned.
async fn script<C: ConnectionTrait + TransactionTrait>(db: &C) -> Vec<String> {
    let mut log = Vec::new();
    // insert (RETURNING), insert_many, duplicate insert
    log.push(show(new_tag("alpha", 1).insert(db).await));
    log.push(show(
        tag::Entity::insert_many([new_tag("beta", 2), new_tag("gamma", 3)])
            .exec(db)
            .await
            .map(|r| r.last_insert_id),
    ));
    log.push(show(new_tag("alpha", 4).insert(db).await));
    // update, update_many
    let alpha = tag::Entity::find()
        .filter(tag::Column::Label.eq("alpha"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let mut alpha: tag::ActiveModel = alpha.into();
    alpha.label = Set("alpha-2".into());
    log.push(show(alpha.update(db).await));
    log.push(show(
        tag::Entity::update_many()
            .col_expr(tag::Column::CreatedAt, Expr::value(at(9)))
            .filter(tag::Column::Id.gt(1))
            .exec(db)
            .await
            .map(|r| r.rows_affected),
    ));
    // on-conflict upsert and do-nothing
    log.push(show(
        tag::Entity::insert(new_tag("beta", 10))
            .on_conflict(
                OnConflict::column(tag::Column::Label)
                    .update_column(tag::Column::CreatedAt)
                    .to_owned(),
            )
            .exec(db)
            .await
            .map(|r| r.last_insert_id),
    ));
    log.push(show(
        tag::Entity::insert(new_tag("beta", 11))
            .on_conflict_do_nothing_on([tag::Column::Label])
            .exec(db)
            .await
            .map(|r| format!("{r:?}")),
    ));
    // a post with every column type the blog uses, links, joins and counts
    let post = post::ActiveModel {
        slug: Set("diff".into()),
        title: Set("Différentiel ✓".into()),
        body: Set("body\nwith \"quotes\" and ' and \0 nul".into()),
        published: Set(true),
        published_at: Set(Some(at(20))),
        created_at: Set(at(20)),
        updated_at: Set(at(21)),
        ..Default::default()
    };
    let post = post.insert(db).await;
    log.push(show(post.clone()));
    let post = post.unwrap();
    log.push(show(
        post_tag::Entity::insert_many([1, 2].map(|tag_id| post_tag::ActiveModel {
            post_id: Set(post.id),
            tag_id: Set(tag_id),
        }))
        .exec(db)
        .await
        .map(|r| r.last_insert_id),
    ));
    log.push(show(
        post_tag::Entity::insert(post_tag::ActiveModel {
            post_id: Set(999),
            tag_id: Set(1),
        })
        .exec(db)
        .await
        .map(|_| ()),
    ));
    log.push(show(
        post.find_related(tag::Entity)
            .order_by_asc(tag::Column::Id)
            .all(db)
            .await,
    ));
    log.push(show(
        post::Entity::find()
            .find_with_related(tag::Entity)
            .all(db)
            .await,
    ));
    log.push(show(tag::Entity::find().count(db).await));
    log.push(show(
        tag::Entity::find()
            .order_by_asc(tag::Column::Id)
            .paginate(db, 2)
            .fetch_page(1)
            .await,
    ));
    // raw statements, including every storage class through RETURNING (DDL's rows_affected is
    // whatever the connection's last DML left in sqlite3_changes(), and an UPDATE's
    // last_insert_id is whatever that pooled connection last inserted: neither is compared)
    log.push(show(db.execute_unprepared("CREATE TABLE IF NOT EXISTS diff_types(id INTEGER PRIMARY KEY, r REAL, b BLOB, t TEXT, n)").await.map(|_| ())));
    let insert = Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO diff_types(r, b, t, n) VALUES (?, ?, ?, ?), (?, ?, ?, ?) RETURNING id, r, b, t, n",
        [
            1.5f64.into(),
            vec![0u8, 255].into(),
            "x".into(),
            sea_orm::Value::Int(None),
            (-2.25f64).into(),
            Vec::<u8>::new().into(),
            "".into(),
            i64::MAX.into(),
        ],
    );
    let rows = db.query_all_raw(insert).await;
    log.push(show(rows.map(|rows| {
        rows.iter()
            .map(|r| {
                format!(
                    "{:?} {:?} {:?} {:?} {:?}",
                    r.try_get_by_index::<i64>(0),
                    r.try_get_by_index::<f64>(1),
                    r.try_get_by_index::<Vec<u8>>(2),
                    r.try_get_by_index::<String>(3),
                    r.try_get_by_index::<Option<i64>>(4)
                )
            })
            .collect::<Vec<_>>()
    })));
    log.push(show(
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            "UPDATE diff_types SET t = t || '!'",
        ))
        .await
        .map(|r| r.rows_affected()),
    ));
    log.push(show(
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            "INSERT INTO diff_types(id) VALUES (123456789012)",
        ))
        .await
        .map(|r| (r.rows_affected(), r.last_insert_id())),
    ));
    log.push(show(
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            "INSERT INTO no_such_table VALUES (1)",
        ))
        .await
        .map(|r| r.rows_affected()),
    ));
    // transactions with savepoints: the inner rollback undoes only its part
    let txn = db.begin().await.unwrap();
    log.push(show(new_tag("txn-outer", 30).insert(&txn).await));
    let inner = txn.begin().await.unwrap();
    log.push(show(
        new_tag("txn-inner-rolled-back", 31).insert(&inner).await,
    ));
    log.push(show(inner.rollback().await));
    let inner = txn.begin().await.unwrap();
    log.push(show(new_tag("txn-inner-kept", 32).insert(&inner).await));
    log.push(show(inner.commit().await));
    log.push(show(new_tag("alpha-2", 33).insert(&txn).await));
    log.push(show(txn.commit().await));
    // a transaction that fails midway leaves nothing, one dropped without commit neither
    let failed = db
        .transaction::<_, (), DbErr>(|txn| {
            Box::pin(async move {
                new_tag("txn-failed", 40).insert(txn).await?;
                new_tag("gamma", 41).insert(txn).await?;
                Ok(())
            })
        })
        .await;
    log.push(
        format!("{failed:?}")
            .replace("Transaction(", "")
            .replace("Connection(", ""),
    );
    {
        let dropped = db.begin().await.unwrap();
        log.push(show(new_tag("txn-dropped", 50).insert(&dropped).await));
    }
    // deletes
    log.push(show(post.delete(db).await.map(|r| r.rows_affected)));
    log.push(show(
        tag::Entity::delete_many()
            .filter(tag::Column::Label.starts_with("g"))
            .exec(db)
            .await
            .map(|r| r.rows_affected),
    ));
    log.push(show(
        tag::Entity::find()
            .order_by_asc(tag::Column::Id)
            .all(db)
            .await,
    ));
    log
}

/// Empties the blog's tables and their id sequences, on the primary.
async fn reset<C: ConnectionTrait>(primary: &C) {
    primary
        .execute_unprepared(
            "DELETE FROM posts_tags; DELETE FROM posts; DELETE FROM tags; DELETE FROM sqlite_sequence; DROP TABLE IF EXISTS diff_types;",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn forwarded_operations_equal_local_ones() {
    let cluster = Cluster::start(2).await;
    let primary = cluster.connect(1).await;
    let replica = cluster.connect(2).await;
    assert_eq!(
        (primary.role().as_str(), replica.role().as_str()),
        ("primary", "replica")
    );

    reset(&primary).await;
    let forwarded = script(&replica).await;
    // The dropped transaction was rolled back on the primary, so the write lock is free again.
    let started = std::time::Instant::now();
    reset(&primary).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "a dropped remote transaction kept the write lock"
    );
    let local = script(&primary).await;

    for (i, (f, l)) in forwarded.iter().zip(&local).enumerate() {
        assert_eq!(f, l, "step {i} differs: forwarded (left) vs local (right)");
    }
    assert_eq!(forwarded.len(), local.len());
    // The script hit the interesting cases, so equality means something.
    let joined = local.join("\n");
    for expected in [
        "UniqueConstraintViolation",
        "ForeignKeyConstraintViolation",
        "no such table",
        "123456789012",
        "txn-inner-kept",
    ] {
        assert!(
            joined.contains(expected),
            "the script should cover {expected}:\n{joined}"
        );
    }
    let remaining = local.last().unwrap();
    for gone in ["txn-inner-rolled-back", "txn-failed", "txn-dropped"] {
        assert!(
            !remaining.contains(gone),
            "{gone} should have been rolled back: {remaining}"
        );
    }
}
