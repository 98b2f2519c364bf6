//! Classification cost: short, typical OLTP and 100 KB statements; cache hit vs miss;
//! a miss read on the calling thread vs handed to the big-stack pool.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pgwarden::classify::{classify, deep, Classifier, ClassifierOptions, SessionFacts};
use std::hint::black_box;

const SHORT: &str = "SELECT 1";
const UPDATE: &str = "UPDATE accounts SET balance = balance + $1 WHERE id = $2";
const JOIN3: &str = "SELECT o.id, o.total, u.email, p.name FROM orders o \
    JOIN users u ON u.id = o.user_id JOIN products p ON p.id = o.product_id \
    WHERE o.created_at > $1 AND u.status = 'active' ORDER BY o.id DESC LIMIT 50";

/// An INSERT of ~100 KB: many VALUES rows.
fn big_statement() -> String {
    let mut s = String::from("INSERT INTO events (id, kind, payload) VALUES ");
    let mut i = 0u32;
    while s.len() < 100 * 1024 {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!(
            "({i}, 'kind_{}', '{{\"n\": {i}, \"ok\": true}}')",
            i % 7
        ));
        i += 1;
    }
    s
}

fn bench(c: &mut Criterion) {
    let facts = SessionFacts::default();
    let big = big_statement();
    let inputs: [(&str, &str); 4] = [
        ("short", SHORT),
        ("oltp_update", UPDATE),
        ("join3", JOIN3),
        ("100kb", &big),
    ];

    // The parser's own cost, for reference: a miss is parse + fingerprint + the walk.
    let mut parts = c.benchmark_group("pg_query");
    for (name, sql) in inputs {
        parts.bench_with_input(BenchmarkId::new("parse", name), sql, |b, sql| {
            b.iter(|| pg_query::parse(black_box(sql), 0).map(|r| r.protobuf.stmts.len()))
        });
        parts.bench_with_input(BenchmarkId::new("fingerprint", name), sql, |b, sql| {
            b.iter(|| pg_query::fingerprint(black_box(sql), 0, 0).map(|f| f.value))
        });
    }
    parts.finish();

    let mut miss = c.benchmark_group("classify_miss");
    for (name, sql) in inputs {
        miss.bench_with_input(BenchmarkId::from_parameter(name), sql, |b, sql| {
            b.iter(|| classify(black_box(sql), &facts))
        });
    }
    miss.finish();

    // A short text's miss is read on the calling thread; the same work handed to the
    // big-stack pool (as every miss was before) adds the two threads' wake-ups.
    // (The 3-table join has more tokens than a text read inline may have: it always
    // goes to the pool, as `classify_miss/join3` measures.)
    let mut place = c.benchmark_group("classify_miss_where");
    for (name, sql) in [("short", SHORT), ("oltp_update", UPDATE)] {
        assert!(deep::inline(sql), "{name} is read inline");
        place.bench_with_input(BenchmarkId::new("inline", name), sql, |b, sql| {
            b.iter(|| classify(black_box(sql), &facts))
        });
        place.bench_with_input(BenchmarkId::new("pool", name), sql, |b, sql| {
            b.iter(|| {
                let (text, facts) = (sql.to_string(), facts.clone());
                deep::run(move || classify(black_box(&text), &facts))
            })
        });
    }
    place.finish();

    let mut hit = c.benchmark_group("classify_hit");
    let classifier = Classifier::new(ClassifierOptions::default());
    for (name, sql) in inputs {
        let _ = classifier.classify(sql, &facts);
        hit.bench_with_input(BenchmarkId::from_parameter(name), sql, |b, sql| {
            b.iter(|| classifier.classify(black_box(sql), &facts))
        });
    }
    hit.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
