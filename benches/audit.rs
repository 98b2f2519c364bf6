//! Criterion benches of the audit writer on a real file: the caller's cost of a
//! buffered `record`, sustained buffered throughput, and `record_durable` (write +
//! fsync) with 1 and 8 concurrent waiters sharing group commits.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgwarden::audit::{AuditLog, Disposition, Event, StatementEvent};
use pgwarden::config::{AuditConfig, AuditScope, Durability};

fn stmt() -> Event {
    StatementEvent {
        session: 42,
        statement_id: 1,
        client: Some("10.1.2.3:51234".into()),
        user: "alice".into(),
        database: "app".into(),
        application: "psql".into(),
        target: "prod".into(),
        environment: "production".into(),
        sql: "UPDATE orders SET status = 'shipped' WHERE id = 12345".into(),
        fingerprint: "a0b1c2d3e4f5a6b7".into(),
        classes: vec!["update.bounded".into()],
        objects: vec!["orders".into()],
        decision: Disposition::Audit,
        rule: Some("audit-writes".into()),
        hold_id: None,
        approver: None,
        shadow: false,
        plan: None,
        impact: None,
        blast: None,
    }
    .into()
}

fn open(dir: &std::path::Path, name: &str) -> AuditLog {
    let cfg = AuditConfig {
        path: Some(dir.join(name)),
        statements: AuditScope::All,
        durability: Durability::BeforeExecute,
        redact: false,
    };
    match AuditLog::open(&cfg) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    }
}

fn bench(c: &mut Criterion) {
    let dir = match tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let ev = stmt();
    let mut g = c.benchmark_group("audit");
    g.throughput(Throughput::Elements(1));

    // Baseline: building (cloning) the event, included in the figures below.
    g.bench_function("event_clone", |b| b.iter(|| black_box(ev.clone())));

    // What a session pays per buffered event (enqueue; the writer works meanwhile).
    let log = open(dir.path(), "enqueue.jsonl");
    // Timed in chunks well under the queue limit, flushed (untimed) in between, so no
    // event is dropped for a full queue.
    g.bench_function("record_enqueue", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(20_000);
                left -= n;
                let start = Instant::now();
                for _ in 0..n {
                    log.record(black_box(ev.clone()));
                }
                spent += start.elapsed();
                if let Err(e) = rt.block_on(log.flush()) {
                    panic!("{e}");
                }
            }
            spent
        })
    });
    drop(log);

    // Sustained buffered throughput: N records, then wait until all are written.
    let log = open(dir.path(), "buffered.jsonl");
    g.bench_function("record_buffered_sustained", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                log.record(ev.clone());
            }
            if let Err(e) = rt.block_on(log.flush()) {
                panic!("{e}");
            }
            start.elapsed()
        })
    });
    drop(log);

    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for waiters in [1u64, 8] {
        let log = open(dir.path(), &format!("durable{waiters}.jsonl"));
        g.bench_function(format!("record_durable_{waiters}_waiters"), |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(waiters);
                rt.block_on(async {
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for _ in 0..waiters {
                        let log = log.clone();
                        let ev = ev.clone();
                        tasks.push(tokio::spawn(async move {
                            for _ in 0..per {
                                if let Err(e) = log.record_durable(ev.clone()).await {
                                    panic!("{e}");
                                }
                            }
                        }));
                    }
                    for t in tasks {
                        if let Err(e) = t.await {
                            panic!("{e}");
                        }
                    }
                    // Per event: total time over the events actually written.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per * waiters) as f64)
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
