//! Criterion benches: policy evaluation on the example policy, and parsing it.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use pgwarden::classify::{Class, Statement};
use pgwarden::policy::{Policy, SessionContext};

fn st(classes: &[Class], objects: &[&str]) -> Statement {
    Statement {
        sql: String::new(),
        classes: classes.to_vec(),
        objects: objects.iter().map(|o| o.to_string()).collect(),
        fingerprint: String::new(),
        prepares: None,
        executes: None,
        deallocates: None,
        asks: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let text = include_str!("../policy.example.toml");
    let policy = match Policy::parse(text, "policy.example.toml") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let ctx = SessionContext {
        environment: "production",
        target: "prod",
        database: "app",
        user: "alice",
        application: "psql",
        client_addr: Some([10, 1, 2, 3].into()),
        now: jiff::Timestamp::now(),
    };
    let read = st(&[Class::Read], &["public.users"]);
    let drop = st(&[Class::DropTable], &["public.users"]);
    let cte = st(&[Class::DeleteUnbounded, Class::Read], &["orders"]);
    let many = vec![read.clone(), st(&[Class::Write], &["orders"]), drop.clone()];

    c.bench_function("evaluate/read (default)", |b| {
        b.iter(|| policy.evaluate(black_box(&read), black_box(&ctx)))
    });
    c.bench_function("evaluate/drop.table (rule)", |b| {
        b.iter(|| policy.evaluate(black_box(&drop), black_box(&ctx)))
    });
    c.bench_function("evaluate/read+delete.unbounded", |b| {
        b.iter(|| policy.evaluate(black_box(&cte), black_box(&ctx)))
    });
    c.bench_function("evaluate_all/3 statements", |b| {
        b.iter(|| policy.evaluate_all(black_box(&many), black_box(&ctx)))
    });
    c.bench_function("parse/policy.example.toml", |b| {
        b.iter(|| Policy::parse(black_box(text), "policy.example.toml").map(|p| p.rule_count()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
