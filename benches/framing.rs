//! Criterion benches for the wire codec: framing a pipelined client batch, scanning
//! a result set the way the relay does, and parsing a startup packet.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgwarden::protocol::{backend, frame, frontend, startup};

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn client_batch() -> Vec<u8> {
    let mut b = Vec::new();
    for _ in 0..100 {
        b.extend(msg(
            b'P',
            b"\0SELECT abalance FROM pgbench_accounts WHERE aid = $1\0\0\0",
        ));
        b.extend(msg(b'B', b"\0\0\0\0\0\x01\0\0\0\x0512345\0\0"));
        b.extend(msg(b'E', b"\0\0\0\0\0"));
        b.extend(msg(b'S', b""));
    }
    b
}

fn result_set() -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..1000 {
        let row = format!("row number {i} with some text");
        let mut body = vec![0, 1];
        body.extend_from_slice(&(row.len() as i32).to_be_bytes());
        body.extend_from_slice(row.as_bytes());
        b.extend(msg(b'D', &body));
    }
    b.extend(msg(b'C', b"SELECT 1000\0"));
    b.extend(msg(b'Z', b"I"));
    b
}

fn bench(c: &mut Criterion) {
    let batch = client_batch();
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("client_batch_400_messages", |b| {
        b.iter(|| {
            let mut rest = black_box(&batch[..]);
            let mut n = 0;
            while let Ok(Some(h)) = frame::complete(rest, 1 << 28) {
                if h.tag == frontend::PARSE {
                    n += frontend::parse(&rest[5..h.total]).map_or(0, |p| p.query.len());
                }
                rest = &rest[h.total..];
            }
            n
        })
    });
    let rows = result_set();
    g.throughput(Throughput::Bytes(rows.len() as u64));
    g.bench_function("server_result_1000_rows", |b| {
        b.iter(|| {
            let mut rest = black_box(&rows[..]);
            let mut status = 0;
            while let Ok(Some(h)) = frame::complete(rest, 1 << 30) {
                if h.tag == backend::READY_FOR_QUERY {
                    status = backend::ready_status(&rest[5..h.total]).unwrap_or(0);
                }
                rest = &rest[h.total..];
            }
            status
        })
    });
    g.finish();
    let packet = startup::StartupMessage {
        major: 3,
        minor: 0,
        params: vec![
            ("user".into(), "app".into()),
            ("database".into(), "app".into()),
            ("application_name".into(), "psql".into()),
            ("client_encoding".into(), "UTF8".into()),
        ],
    }
    .encode_v3_0();
    c.bench_function("startup_packet_parse", |b| {
        b.iter(|| startup::parse(black_box(&packet)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
