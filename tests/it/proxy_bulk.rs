//! Bulk data through pgwarden vs. directly: COPY FROM STDIN / TO STDOUT of 100k rows, a
//! failing COPY, a 50 MB bytea round trip and a 10 MB text value in the simple protocol.

use crate::support;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_postgres::SimpleQueryMessage;

use support::*;

const ROWS: usize = 100_000;

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

async fn copy_in_and_out(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let client = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    client
        .batch_execute("CREATE TEMP TABLE items (id int, name text, note text)")
        .await
        .unwrap();

    // COPY FROM STDIN: 100k rows sent in 1000-row CopyData chunks.
    let mut sent = Vec::new();
    let sink = client
        .copy_in("COPY items FROM STDIN")
        .await
        .unwrap_or_else(|e| panic!("[{}] COPY FROM STDIN: {e:?}", ep.label));
    futures_util::pin_mut!(sink);
    for chunk_start in (0..ROWS).step_by(1000) {
        let mut chunk = String::new();
        for i in chunk_start..chunk_start + 1000 {
            let note = if i % 10 == 0 {
                "\\N".to_string()
            } else {
                format!("ünïcödé\\ttab {}", i * 7)
            };
            chunk.push_str(&format!("{i}\tname-{i}\t{note}\n"));
        }
        sent.extend_from_slice(chunk.as_bytes());
        sink.send(Bytes::from(chunk)).await.unwrap();
    }
    let n = sink.finish().await.unwrap();
    t.push(format!("copied in {n} rows, {} bytes", sent.len()));
    assert_eq!(n as usize, ROWS);

    // COPY TO STDOUT returns exactly what went in (text format is canonical here).
    let stream = client
        .copy_out("COPY (SELECT * FROM items ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let mut received = Vec::with_capacity(sent.len());
    let mut chunks = 0usize;
    while let Some(chunk) = stream.next().await {
        received.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    let lines = received.iter().filter(|&&b| b == b'\n').count();
    t.push(format!(
        "copied out {lines} rows, {} bytes, fnv {:016x}",
        received.len(),
        fnv1a(&received)
    ));
    assert!(
        chunks >= ROWS,
        "one CopyData per row expected, got {chunks}"
    );
    assert_eq!(received.len(), sent.len(), "[{}]", ep.label);
    assert!(
        received == sent,
        "[{}] COPY OUT differs from COPY IN",
        ep.label
    );

    // Binary COPY out.
    let stream = client
        .copy_out("COPY items TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let mut binary = 0usize;
    while let Some(chunk) = stream.next().await {
        binary += chunk.unwrap().len();
    }
    t.push(format!("binary copy out {binary} bytes"));

    // A bad row fails the COPY with the server's error; the session carries on.
    let sink = client.copy_in("COPY items FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\tok\tfine\n"))
        .await
        .unwrap();
    sink.send(Bytes::from_static(b"not-a-number\tbad\trow\n"))
        .await
        .unwrap();
    let e = sink.finish().await.unwrap_err();
    t.push(format!("bad copy: {}", describe_error(&e)));
    let n: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    t.push(format!("rows after failed copy {n}"));

    // COPY aborted by the client (sink dropped without finish → CopyFail).
    {
        let sink = client.copy_in("COPY items FROM STDIN").await.unwrap();
        futures_util::pin_mut!(sink);
        sink.send(Bytes::from_static(b"2\tabandoned\tx\n"))
            .await
            .unwrap();
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM items WHERE name = 'abandoned'", &[])
        .await
        .unwrap()
        .get(0);
    t.push(format!("rows after abandoned copy {n}"));
    t
}

async fn large_values(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let client = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    client
        .batch_execute("CREATE TEMP TABLE blobs (id int, b bytea)")
        .await
        .unwrap();

    // 50 MB up as one Bind parameter, and back as one DataRow (binary format).
    let data: Vec<u8> = (0..50 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let n = client
        .execute("INSERT INTO blobs VALUES (1, $1)", &[&data])
        .await
        .unwrap_or_else(|e| panic!("[{}] insert 50 MB: {e:?}", ep.label));
    t.push(format!("inserted {n}"));
    let row = client
        .query_one("SELECT b FROM blobs WHERE id = 1", &[])
        .await
        .unwrap_or_else(|e| panic!("[{}] select 50 MB: {e:?}", ep.label));
    let back: Vec<u8> = row.get(0);
    assert_eq!(back.len(), data.len(), "[{}]", ep.label);
    assert!(
        back == data,
        "[{}] bytea differs after round trip",
        ep.label
    );
    drop(back);
    let row = client
        .query_one("SELECT length(b), md5(b) FROM blobs WHERE id = 1", &[])
        .await
        .unwrap();
    t.push(format!(
        "server sees {} bytes, md5 {}",
        row.get::<_, i32>(0),
        row.get::<_, String>(1)
    ));

    // A 10 MB text value through the simple protocol (text format).
    let msgs = client
        .simple_query("SELECT repeat('abcdefghij', 1048576) AS big")
        .await
        .unwrap();
    let len = msgs
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::len),
            _ => None,
        })
        .unwrap();
    t.push(format!("simple-protocol text of {len} bytes"));

    // The session is fine afterwards.
    let v: i32 = client.query_one("SELECT 7", &[]).await.unwrap().get(0);
    t.push(format!("after {v}"));
    t
}

transparency!(copy_100k_rows_in_and_out, copy_in_and_out);
transparency!(bytea_50mb_round_trip, large_values);
