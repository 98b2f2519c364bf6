//! `AuditLog`: the handle sessions use, and the writer thread behind it.
//!
//! Events go over one channel to a dedicated thread that numbers them (`seq`), chains
//! them (`prev`, `hash`) and writes them. Group commit: the thread takes everything
//! queued, writes it in one `write`, fsyncs once if any caller in the batch waits for
//! durability, then answers those callers. The chain advances only over lines that
//! were written (and synced, when synced); a failed batch is cut from the file where
//! possible and the writer reopens the file for the next batch, continuing from the
//! last record the file actually holds.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::chain::{seal, ChainState};
use super::event::{AuditGap, Event};
use super::sink::{FileSink, Sink, StdoutSink};
use crate::config::AuditConfig;

/// Buffered events waiting for the writer beyond this are dropped (and counted in
/// the next `audit_gap` event) rather than growing memory without bound.
pub const MAX_QUEUED: usize = 100_000;
/// Most events written in one batch.
const MAX_BATCH: usize = 4096;
/// While the log is failing, the writer retries (writing an `audit_gap` event) this often.
const RETRY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open the audit log {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("audit log write failed: {0}")]
    Write(String),
    #[error("audit event could not be encoded: {0}")]
    Encode(String),
    #[error("the audit writer has stopped")]
    Closed,
}

type Reply = oneshot::Sender<Result<u64, AuditError>>;

enum Msg {
    Event {
        ts: jiff::Timestamp,
        event: Event,
        /// `Some` for `record_durable`.
        done: Option<Reply>,
    },
    Flush(Reply),
    Reopen,
}

/// What the writer thread reports back: health, errors, queue depth.
#[derive(Default)]
struct Health {
    healthy: AtomicBool,
    write_errors: AtomicU64,
    queued: AtomicUsize,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Inner {
    tx: Option<Sender<Msg>>,
    shared: Arc<Health>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the thread write what is queued and exit.
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The audit log handle. Cheap to clone; the writer thread stops (after writing
/// everything queued) when the last clone is dropped.
#[derive(Clone)]
pub struct AuditLog {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("enabled", &self.is_enabled())
            .field("healthy", &self.healthy())
            .finish()
    }
}

impl AuditLog {
    /// Opens the configured log: no path → disabled, `-` → stdout, otherwise the file
    /// (appended to; created, but not its directory). An existing file's chain is
    /// continued from its last record.
    pub fn open(cfg: &AuditConfig) -> Result<AuditLog, AuditError> {
        match &cfg.path {
            None => Ok(AuditLog::disabled()),
            Some(p) if p.as_os_str() == "-" => AuditLog::with_sink(Box::new(StdoutSink), "-"),
            Some(p) => AuditLog::with_sink(Box::new(FileSink::new(p)), &p.display().to_string()),
        }
    }

    /// A log that records nothing; `record_durable` succeeds at once.
    pub fn disabled() -> AuditLog {
        AuditLog { inner: None }
    }

    /// Starts a writer on any sink (tests, benches). `name` is used in errors.
    pub fn with_sink(mut sink: Box<dyn Sink>, name: &str) -> Result<AuditLog, AuditError> {
        let state = sink
            .prepare()
            .map_err(|e| AuditError::Open {
                path: name.to_string(),
                reason: e.to_string(),
            })?
            .unwrap_or_else(ChainState::genesis);
        let shared = Arc::new(Health::default());
        shared.healthy.store(true, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            sink,
            state,
            shared: shared.clone(),
            gap: None,
            buf: Vec::with_capacity(64 * 1024),
        };
        let thread = std::thread::Builder::new()
            .name("pgwarden-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::Open {
                path: name.to_string(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(AuditLog {
            inner: Some(Arc::new(Inner {
                tx: Some(tx),
                shared,
                thread: Some(thread),
            })),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    fn send(&self, msg: Msg) -> Result<(), AuditError> {
        let inner = self.inner.as_ref().ok_or(AuditError::Closed)?;
        let tx = inner.tx.as_ref().ok_or(AuditError::Closed)?;
        tx.send(msg).map_err(|_| AuditError::Closed)
    }

    /// Records `ev` and returns its `seq` once its line is written and synced
    /// (for stdout: written). `Ok(0)` when the log is disabled. On `Err` the event
    /// is not in the log: the caller must not run what it describes.
    pub async fn record_durable(&self, ev: Event) -> Result<u64, AuditError> {
        if self.inner.is_none() {
            return Ok(0);
        }
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Event {
            ts: jiff::Timestamp::now(),
            event: ev,
            done: Some(tx),
        })?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Records `ev` without waiting. The line is written soon after, unsynced
    /// (unless a durable event in the same batch syncs it). Events that cannot be
    /// written are counted in the next `audit_gap` event.
    pub fn record(&self, ev: Event) {
        let Some(inner) = &self.inner else {
            return;
        };
        if inner.shared.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED {
            inner.shared.queued.fetch_sub(1, Ordering::Relaxed);
            inner.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self
            .send(Msg::Event {
                ts: jiff::Timestamp::now(),
                event: ev,
                done: None,
            })
            .is_err()
        {
            inner.shared.queued.fetch_sub(1, Ordering::Relaxed);
            inner.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until everything recorded before this call is written and synced;
    /// returns the last written `seq`.
    pub async fn flush(&self) -> Result<u64, AuditError> {
        if self.inner.is_none() {
            return Ok(0);
        }
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Flush(tx))?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Reopens the file at its path (SIGUSR1 after logrotate); the chain continues.
    pub fn reopen(&self) {
        let _ = self.send(Msg::Reopen);
    }

    /// False after a failed write or sync, until a write succeeds again (the writer
    /// retries every second while failing). Always true when disabled.
    pub fn healthy(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|i| i.shared.healthy.load(Ordering::Relaxed))
    }

    /// Failed write, sync or reopen attempts since start.
    pub fn write_errors(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.shared.write_errors.load(Ordering::Relaxed))
    }

    /// The most recent failure (kept after recovery; see [`AuditLog::healthy`]).
    pub fn last_error(&self) -> Option<String> {
        let inner = self.inner.as_ref()?;
        match inner.shared.last_error.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

struct Gap {
    since: jiff::Timestamp,
    lost: u64,
    refused: u64,
    error: String,
}

struct Writer {
    sink: Box<dyn Sink>,
    /// The last record the sink holds.
    state: ChainState,
    shared: Arc<Health>,
    /// Set while failing; written as an `audit_gap` event on recovery.
    gap: Option<Gap>,
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut batch: Vec<Msg> = Vec::new();
        loop {
            if self.gap.is_some() {
                match rx.recv_timeout(RETRY_EVERY) {
                    Ok(m) => batch.push(m),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            self.process(&mut batch);
        }
        // Last chance to record a gap; then make buffered lines durable.
        if self.gap.is_some() || self.shared.dropped.load(Ordering::Relaxed) > 0 {
            self.process(&mut batch);
        }
        if self.gap.is_none() {
            let _ = self.sink.sync();
        }
    }

    fn process(&mut self, batch: &mut Vec<Msg>) {
        let mut events: Vec<(jiff::Timestamp, Event, Option<Reply>)> = Vec::new();
        let mut flushes: Vec<Reply> = Vec::new();
        let mut reopen = false;
        for m in batch.drain(..) {
            match m {
                Msg::Event { ts, event, done } => {
                    if done.is_none() {
                        self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                    }
                    events.push((ts, event, done));
                }
                Msg::Flush(r) => flushes.push(r),
                Msg::Reopen => reopen = true,
            }
        }
        if reopen {
            self.sink.reopen();
        }
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let g = self.gap.get_or_insert_with(|| Gap {
                since: jiff::Timestamp::now(),
                lost: 0,
                refused: 0,
                error: format!("more than {MAX_QUEUED} events queued for the audit writer"),
            });
            g.lost += dropped;
        }
        if events.is_empty() && flushes.is_empty() && self.gap.is_none() && !reopen {
            return;
        }

        match self.sink.prepare() {
            Ok(Some(found)) => {
                if found != self.state {
                    tracing::info!(
                        seq = found.seq,
                        "audit log (re)opened; continuing the chain from its last record"
                    );
                }
                self.state = found;
            }
            Ok(None) => {}
            Err(e) => {
                self.sink.abandon();
                self.fail(format!("opening: {e}"), events, flushes);
                return;
            }
        }

        self.buf.clear();
        let mut st = self.state.clone();
        let mut need_sync = !flushes.is_empty();
        if let Some(g) = &self.gap {
            let ev = Event::AuditGap(AuditGap {
                since: format!("{:.6}", g.since),
                lost: g.lost,
                refused: g.refused,
                error: g.error.clone(),
            });
            let ts = format!("{:.6}", jiff::Timestamp::now());
            match seal(&mut self.buf, st.seq + 1, &ts, &ev, &st.hash) {
                Ok(h) => {
                    st.seq += 1;
                    st.hash = h;
                    need_sync = true;
                }
                Err(e) => tracing::error!(error = %e, "cannot encode the audit_gap event"),
            }
        }
        let mut waiters: Vec<(u64, Reply)> = Vec::new();
        let mut buffered = 0u64;
        for (ts, ev, done) in events {
            let ts = format!("{:.6}", ts);
            match seal(&mut self.buf, st.seq + 1, &ts, &ev, &st.hash) {
                Ok(h) => {
                    st.seq += 1;
                    st.hash = h;
                    match done {
                        Some(r) => {
                            need_sync = true;
                            waiters.push((st.seq, r));
                        }
                        None => buffered += 1,
                    }
                }
                Err(e) => {
                    tracing::error!(event = ev.kind(), error = %e, "cannot encode an audit event");
                    if let Some(r) = done {
                        let _ = r.send(Err(AuditError::Encode(e.to_string())));
                    }
                }
            }
        }

        let mut result: io::Result<()> = Ok(());
        if !self.buf.is_empty() {
            result = self.sink.write(&self.buf);
        }
        if result.is_ok() && need_sync {
            result = self.sink.sync();
        }
        match result {
            Ok(()) => {
                self.state = st;
                if self.gap.take().is_some() || !self.shared.healthy.load(Ordering::Relaxed) {
                    tracing::info!("audit log writable again");
                }
                self.shared.healthy.store(true, Ordering::Relaxed);
                for (seq, r) in waiters {
                    let _ = r.send(Ok(seq));
                }
                for r in flushes {
                    let _ = r.send(Ok(self.state.seq));
                }
            }
            Err(e) => {
                self.sink.abandon();
                let refused: Vec<Reply> = waiters.into_iter().map(|(_, r)| r).collect();
                let n = refused.len() as u64;
                self.record_failure(e.to_string(), buffered, n);
                let err = AuditError::Write(e.to_string());
                for r in refused.into_iter().chain(flushes) {
                    let _ = r.send(Err(err.clone()));
                }
            }
        }
    }

    /// The batch could not be written at all (the sink did not open).
    fn fail(
        &mut self,
        why: String,
        events: Vec<(jiff::Timestamp, Event, Option<Reply>)>,
        flushes: Vec<Reply>,
    ) {
        let mut buffered = 0;
        let mut refused = Vec::new();
        for (_, _, done) in events {
            match done {
                Some(r) => refused.push(r),
                None => buffered += 1,
            }
        }
        let n = refused.len() as u64;
        self.record_failure(why.clone(), buffered, n);
        let err = AuditError::Write(why);
        for r in refused.into_iter().chain(flushes) {
            let _ = r.send(Err(err.clone()));
        }
    }

    fn record_failure(&mut self, why: String, lost: u64, refused: u64) {
        self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
        let was_healthy = self.shared.healthy.swap(false, Ordering::Relaxed);
        if was_healthy {
            tracing::error!(error = %why, "audit log write failed; guarded statements are refused until it recovers");
        } else {
            tracing::debug!(error = %why, "audit log still failing");
        }
        match self.shared.last_error.lock() {
            Ok(mut g) => *g = Some(why.clone()),
            Err(p) => *p.into_inner() = Some(why.clone()),
        }
        let g = self.gap.get_or_insert_with(|| Gap {
            since: jiff::Timestamp::now(),
            lost: 0,
            refused: 0,
            error: why,
        });
        g.lost += lost;
        g.refused += refused;
    }
}
