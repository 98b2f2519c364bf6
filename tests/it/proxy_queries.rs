//! Queries through pgwarden vs. directly: simple and extended protocol, startup
//! parameters, errors and transactions, notices, prepared statements reused 1000 times,
//! and a pipelined batch of 200 queries.

use crate::support;

use std::time::Duration;

use futures_util::future::join_all;
use tokio_postgres::{AsyncMessage, SimpleQueryMessage};

use support::*;

fn simple_messages(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter().map(describe_simple).collect()
}

fn describe_simple(m: &SimpleQueryMessage) -> String {
    match m {
        SimpleQueryMessage::Row(row) => {
            let vals: Vec<String> = (0..row.len())
                .map(|i| row.get(i).unwrap_or("NULL").to_string())
                .collect();
            format!("row {}", vals.join("|"))
        }
        SimpleQueryMessage::CommandComplete(n) => format!("complete {n}"),
        SimpleQueryMessage::RowDescription(cols) => {
            let names: Vec<&str> = cols.iter().map(|c| c.name()).collect();
            format!("columns {}", names.join(","))
        }
        _ => "other".to_string(),
    }
}

async fn simple_and_extended(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let mut cfg = ep.config(SCRAM_USER, SCRAM_PASSWORD, APP_DB);
    cfg.application_name("pgwarden-it")
        .options("-c statement_timeout=4321 -c DateStyle=German");
    let (client, mut messages) = ep
        .connect_config_with_messages(&cfg)
        .await
        .unwrap_or_else(|e| panic!("[{}] connect: {e:?}", ep.label));

    // Startup parameters reach the server verbatim.
    for setting in [
        "application_name",
        "statement_timeout",
        "DateStyle",
        "client_encoding",
    ] {
        let row = client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .unwrap();
        t.push(format!("{setting} = {}", row.get::<_, String>(0)));
    }

    // Simple protocol: several statements in one Query, each with its own result.
    let msgs = client
        .simple_query(
            "SELECT 1 AS a, 'x' AS b, NULL AS c; \
             SELECT generate_series(1, 3) AS n; \
             CREATE TEMP TABLE t (id int PRIMARY KEY, v text); \
             INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL); \
             UPDATE t SET v = v || '!' WHERE v IS NOT NULL; \
             DELETE FROM t WHERE id = 2; \
             SELECT * FROM t ORDER BY id",
        )
        .await
        .unwrap();
    t.extend(simple_messages(&msgs));
    // An empty query string.
    let msgs = client.simple_query("").await.unwrap();
    t.push(format!("empty query -> {:?}", simple_messages(&msgs)));

    // Extended protocol with typed parameters and binary results.
    let bytes: Vec<u8> = vec![0, 1, 2, 255];
    let row = client
        .query_one(
            "SELECT $1::int4 + 1, $2::text || '!', $3::bytea, $4::float8 * 2, NOT $5::bool, \
             $6::text IS NULL, $7::int8, now() IS NOT NULL",
            &[
                &41i32,
                &"héllo wörld",
                &bytes,
                &1.25f64,
                &true,
                &None::<String>,
                &i64::MAX,
            ],
        )
        .await
        .unwrap();
    t.push(format!(
        "extended: {} {} {:?} {} {} {} {} {}",
        row.get::<_, i32>(0),
        row.get::<_, String>(1),
        row.get::<_, Vec<u8>>(2),
        row.get::<_, f64>(3),
        row.get::<_, bool>(4),
        row.get::<_, bool>(5),
        row.get::<_, i64>(6),
        row.get::<_, bool>(7)
    ));
    let rows = client
        .query("SELECT * FROM t WHERE id > $1 ORDER BY id", &[&100i32])
        .await
        .unwrap();
    t.push(format!("zero rows: {}", rows.len()));
    let n = client
        .execute("UPDATE t SET v = $1 WHERE id = $2", &[&"z", &3i32])
        .await
        .unwrap();
    t.push(format!("updated {n}"));
    let rows = client
        .query(
            "SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
            &[],
        )
        .await
        .unwrap();
    let last: String = rows.last().unwrap().get(1);
    t.push(format!("5000 rows, last md5 {last}"));

    // Errors in both protocols; the connection stays usable.
    for sql in ["SELECT 1/0", "SELEC 1", "SELECT * FROM no_such_table"] {
        let e = client.simple_query(sql).await.unwrap_err();
        t.push(format!("simple {sql:?}: {}", describe_error(&e)));
        let e = client.query(sql, &[]).await.unwrap_err();
        let pos = e.as_db_error().and_then(|d| d.position().cloned());
        t.push(format!(
            "extended {sql:?}: {} at {pos:?}",
            describe_error(&e)
        ));
    }
    let e = client
        .query("SELECT $1::int / 0", &[&7i32])
        .await
        .unwrap_err();
    t.push(format!("bound error: {}", describe_error(&e)));
    let e = client
        .execute("INSERT INTO t VALUES (1, 'dup')", &[])
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    t.push(format!(
        "unique: {} constraint={:?} detail={:?}",
        describe_error(&e),
        db.constraint(),
        db.detail()
    ));

    // Transactions: a failed statement aborts the block until ROLLBACK.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("INSERT INTO t VALUES (10, 'in-tx')", &[])
        .await
        .unwrap();
    let e = client.simple_query("SELECT 1/0").await.unwrap_err();
    t.push(format!("in tx: {}", describe_error(&e)));
    let e = client.query("SELECT 1", &[]).await.unwrap_err();
    t.push(format!("after error in tx: {}", describe_error(&e)));
    client.batch_execute("ROLLBACK").await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    t.push(format!("rows after rollback {n}"));

    // Client-side transaction API with a savepoint.
    let mut client = client;
    {
        let mut tx = client.transaction().await.unwrap();
        tx.execute("INSERT INTO t VALUES (20, 'kept')", &[])
            .await
            .unwrap();
        {
            let sp = tx.transaction().await.unwrap();
            sp.execute("INSERT INTO t VALUES (21, 'rolled back')", &[])
                .await
                .unwrap();
            sp.rollback().await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let ids: Vec<i32> = client
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    t.push(format!("ids {ids:?}"));

    // Notices and warnings arrive as asynchronous messages, in order.
    while messages.try_recv().is_ok() {}
    client
        .batch_execute(
            "DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$; \
             SET client_min_messages = notice; DROP TABLE IF EXISTS does_not_exist",
        )
        .await
        .unwrap();
    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(5), messages.recv()).await {
            Ok(Some(AsyncMessage::Notice(n))) => t.push(format!(
                "notice {} {} {}",
                n.severity(),
                n.code().code(),
                n.message()
            )),
            other => t.push(format!("expected a notice, got {other:?}")),
        }
    }

    // Session settings changed with SET are visible to the next statements.
    client
        .batch_execute("SET application_name = 'renamed'; SET TimeZone = 'Europe/Berlin'")
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('application_name'), current_setting('TimeZone')",
            &[],
        )
        .await
        .unwrap();
    t.push(format!(
        "settings {} {}",
        row.get::<_, String>(0),
        row.get::<_, String>(1)
    ));

    assert!(
        t.iter().all(|l| !l.starts_with("expected")),
        "[{}] {t:#?}",
        ep.label
    );
    assert!(t.contains(&"application_name = pgwarden-it".to_string()));
    assert!(t.contains(&"statement_timeout = 4321ms".to_string()));
    assert!(t.contains(&"DateStyle = German, DMY".to_string()));
    t
}

async fn prepared_reuse(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let client = ep.must_connect(MD5_USER, MD5_PASSWORD, APP_DB).await;

    // One named statement, executed 1000 times.
    let stmt = client
        .prepare("SELECT $1::int4 * 2, $2::text || '-' || $1::text")
        .await
        .unwrap();
    t.push(format!(
        "params {:?} columns {:?}",
        stmt.params(),
        stmt.columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().clone()))
            .collect::<Vec<_>>()
    ));
    let mut sum = 0i64;
    for i in 0..1000i32 {
        let row = client
            .query_one(&stmt, &[&i, &"r"])
            .await
            .unwrap_or_else(|e| panic!("[{}] execution {i}: {e:?}", ep.label));
        sum += i64::from(row.get::<_, i32>(0));
        assert_eq!(row.get::<_, String>(1), format!("r-{i}"));
    }
    t.push(format!("sum {sum}"));
    assert_eq!(sum, 999_000);

    // Many statements prepared and closed (dropping a Statement sends Close).
    for i in 0..100 {
        let s = client
            .prepare(&format!("SELECT {i}::int4 + $1::int4"))
            .await
            .unwrap();
        let v: i32 = client.query_one(&s, &[&1i32]).await.unwrap().get(0);
        assert_eq!(v, i + 1);
    }
    // The long-lived statement still works after all that.
    let v: i32 = client
        .query_one(&stmt, &[&21i32, &"x"])
        .await
        .unwrap()
        .get(0);
    t.push(format!("still prepared {v}"));

    // SQL-level PREPARE / EXECUTE through the simple protocol.
    let mut script = String::from("PREPARE p(int) AS SELECT $1 + 1;");
    for i in 0..200 {
        script.push_str(&format!("EXECUTE p({i});"));
    }
    script.push_str("DEALLOCATE p;");
    let msgs = client.simple_query(&script).await.unwrap();
    let rows = msgs
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    t.push(format!("sql-level executes {rows}"));
    let e = client.simple_query("EXECUTE p(1)").await.unwrap_err();
    t.push(format!("after deallocate: {}", describe_error(&e)));

    // A portal read in chunks (Execute with a row limit) inside a transaction.
    let mut client = client;
    let tx = client.transaction().await.unwrap();
    let portal = tx
        .bind("SELECT g FROM generate_series(1, 1000) g", &[])
        .await
        .unwrap();
    let mut chunks = 0;
    let mut total = 0i64;
    loop {
        let rows = tx.query_portal(&portal, 300).await.unwrap();
        if rows.is_empty() {
            break;
        }
        chunks += 1;
        total += rows
            .iter()
            .map(|r| i64::from(r.get::<_, i32>(0)))
            .sum::<i64>();
    }
    tx.commit().await.unwrap();
    t.push(format!("portal chunks {chunks} total {total}"));
    t
}

async fn pipelined_batch(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let client = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let stmt = client
        .prepare("SELECT $1::int4, repeat('x', $1::int4)")
        .await
        .unwrap();

    // 200 concurrent queries on one connection: tokio-postgres pipelines them (each
    // its own Parse/Bind/Execute/Sync or Bind/Execute/Sync) without waiting for replies.
    let client_ref = &client;
    let stmt_ref = &stmt;
    let futures = (0..200i32).map(|i| async move {
        let result = match i % 4 {
            _ if i == 100 => client_ref
                .query_one("SELECT 1 / $1::int4", &[&0i32])
                .await
                .map(|r| r.get::<_, i32>(0)),
            0 => client_ref
                .query_one(stmt_ref, &[&i])
                .await
                .map(|r| r.get::<_, i32>(0)),
            1 => client_ref
                .query_one("SELECT $1::int4 + 0", &[&i])
                .await
                .map(|r| r.get::<_, i32>(0)),
            2 => client_ref
                .simple_query(&format!("SELECT {i}"))
                .await
                .map(|m| match &m[1] {
                    SimpleQueryMessage::Row(r) => r.get(0).unwrap().parse().unwrap(),
                    other => panic!("unexpected {}", describe_simple(other)),
                }),
            _ => client_ref
                .query(stmt_ref, &[&i])
                .await
                .map(|rows| rows[0].get::<_, i32>(0)),
        };
        (i, result)
    });
    let results = join_all(futures).await;
    let mut ok = 0;
    for (i, r) in &results {
        match r {
            Ok(v) => {
                assert_eq!(v, i, "[{}] reply out of order", ep.label);
                ok += 1;
            }
            Err(e) => t.push(format!("query {i}: {}", describe_error(e))),
        }
    }
    t.push(format!("{ok} of 200 ok"));
    assert_eq!(ok, 199, "[{}] {t:?}", ep.label);

    // A pipelined transaction: BEGIN, inserts, COMMIT all in flight at once.
    client
        .batch_execute("CREATE TEMP TABLE pipe (i int)")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO pipe VALUES ($1)")
        .await
        .unwrap();
    let begin = client.batch_execute("BEGIN");
    let inserts = join_all((0..100i32).map(|i| {
        let c = &client;
        let s = &insert;
        async move { c.execute(s, &[&i]).await }
    }));
    let commit = client.batch_execute("COMMIT");
    let (b, ins, c) = futures_util::join!(begin, inserts, commit);
    b.unwrap();
    c.unwrap();
    assert!(ins.iter().all(|r| r.is_ok()));
    let n: i64 = client
        .query_one("SELECT count(*) FROM pipe", &[])
        .await
        .unwrap()
        .get(0);
    t.push(format!("pipelined tx rows {n}"));
    t
}

transparency!(simple_and_extended_protocol, simple_and_extended);
transparency!(prepared_statement_reused_1000_times, prepared_reuse);
transparency!(pipelined_batch_of_200, pipelined_batch);
