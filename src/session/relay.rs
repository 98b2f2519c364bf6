//! The relay after authentication: one task pumps both directions, framing client
//! messages for a decision and scanning server messages for session facts. Reads are
//! cancel-safe (partial input lives in buffers owned here) and writes are
//! non-blocking with high-water marks, so neither side can deadlock the other.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::sync::watch;
use tokio_util::io::poll_read_buf;

use std::sync::Arc;

mod blast;
mod extended;
mod lookup;
mod multi;
mod probe;
mod trash;

use super::cancel::CancelSignal;
use super::core::{self, Core, Step};
use super::guard::{self, Decision, Guard, Permit, Ticket};
use super::replies::{self, Route};
use super::state::SessionState;
use super::stream::Stream;
use crate::config::Durability;
use crate::protocol::{backend, frame, frontend, originate, sqlstate::SqlState};

/// Stop reading a side while this much is waiting to be written to the other.
const HIGH_WATER: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Largest server message pgwarden relays at all (PostgreSQL's own MaxAllocSize).
const SERVER_MAX_MESSAGE: usize = 1 << 30;
/// Largest server message pgwarden buffers whole to read it (ReadyForQuery,
/// ParameterStatus, CommandComplete, …). A larger ErrorResponse or NoticeResponse is
/// read from its first this-many bytes and streamed; any other larger message of a
/// type pgwarden must read ends the session: only a broken or hostile server sends one.
const SERVER_WHOLE_MAX: usize = 64 * 1024;
/// While a statement is held the client's later messages wait unframed; past this
/// much pgwarden stops reading the client (as for a slow server) until the hold ends.
const HELD_INPUT_MAX: usize = 64 * 1024;
/// How often a client pgwarden stopped reading is checked for having gone away.
const CLOSED_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Why a relay ended (logged through Debug).
#[derive(Debug)]
#[allow(dead_code)] // fields are read through Debug in the session log
pub enum End {
    ClientClosed,
    ClientTerminated,
    ServerClosed,
    ClientError(io::Error),
    ServerError(io::Error),
    ClientProtocol(String),
    ServerProtocol(String),
    Drained,
}

#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

enum Wake {
    Client,
    ClientEof,
    Server,
    ServerEof,
}

/// Hooks the relay calls into; implemented by the session driver.
pub trait Hooks {
    /// The server reported its backend key (also available in `state`); `cancel`
    /// is to be signalled when a CancelRequest with that key arrives.
    fn backend_key(&mut self, state: &SessionState, cancel: &Arc<CancelSignal>);
}

/// Resolves once a drain has begun (or the proxy's shutdown channel is gone). Kept
/// pinned across the relay loop: its waiter is registered once, not per message.
async fn drain_started(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Waits for the held statement's resolution (None: the queue dropped it).
async fn held_resolution(held: &mut Option<(Ticket, BytesMut)>) -> Option<crate::hold::Resolution> {
    match held {
        Some((ticket, _)) => (&mut ticket.rx).await.ok(),
        None => std::future::pending().await,
    }
}

pub struct Relay {
    pub client: Stream,
    pub server: Stream,
    pub cbuf: BytesMut,
    pub sbuf: BytesMut,
    /// The session's phase, reply queue and server facts (pure; see `core`).
    pub core: Core,
    pub max_message: usize,
    to_client: BytesMut,
    to_server: BytesMut,
    client_dirty: bool,
    server_dirty: bool,
    /// The queue's buffer is a large message's own allocation: released once written
    /// rather than kept as a read buffer.
    client_spill: bool,
    server_spill: bool,
    /// Bytes of a large server message still to pass through unbuffered.
    server_skip: usize,
    /// Bytes of a large server message still to drop (its replacement was sent).
    server_discard: usize,
    pub guard: Guard,
    /// The held statement's ticket and original bytes (the core's phase says a
    /// statement is held); the run loop takes it out to wait on it.
    held: Option<(Ticket, BytesMut)>,
    /// Signalled when a CancelRequest for this session arrives.
    pub cancel: Arc<CancelSignal>,
    bytes_in: prometheus_client::metrics::counter::Counter,
    bytes_out: prometheus_client::metrics::counter::Counter,
}

impl Relay {
    pub fn new(
        client: Stream,
        server: Stream,
        cbuf: BytesMut,
        max_message: usize,
        guard: Guard,
    ) -> Self {
        let (bytes_in, bytes_out) = guard.byte_counters();
        Relay {
            bytes_in,
            bytes_out,
            client,
            server,
            cbuf,
            sbuf: BytesMut::with_capacity(READ_CHUNK),
            core: Core::new(),
            max_message,
            to_client: BytesMut::new(),
            to_server: BytesMut::new(),
            client_dirty: false,
            server_dirty: false,
            client_spill: false,
            server_spill: false,
            server_skip: 0,
            server_discard: 0,
            guard,
            held: None,
            cancel: Arc::new(CancelSignal::default()),
        }
    }

    /// Records the audit event the last decision calls for. A guarded statement that
    /// is about to be forwarded must be on disk first; if it cannot be written, the
    /// statement is refused instead.
    async fn audited(&mut self, decision: Decision, extended: bool) -> Decision {
        self.core.audited(None);
        let Some((event, durability)) = self.guard.take_audit() else {
            return decision;
        };
        let log = self.guard.audit_log();
        let id = self.guard.statement_id();
        match decision {
            Decision::Forward(permit) if durability == Durability::BeforeExecute => {
                match log.record_durable(event).await {
                    Ok(_) => {
                        self.core.audited(Some(id));
                        Decision::Forward(permit)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "audit log unavailable: refusing a guarded statement");
                        self.guard.audit_unavailable(extended)
                    }
                }
            }
            d => {
                if matches!(d, Decision::Forward(_)) {
                    self.core.audited(Some(id));
                }
                log.record(event);
                d
            }
        }
    }

    /// Carries out the decision on a statement that was held, then goes on with the
    /// client messages that waited behind it.
    async fn end_hold(
        &mut self,
        decision: Decision,
        extended: bool,
        msg: BytesMut,
    ) -> Result<(), End> {
        self.cancel.hold_ended();
        let decision = self.audited(decision, extended).await;
        // Back in front of the messages that arrived while it was held.
        let total = msg.len();
        let mut front = msg;
        front.extend_from_slice(&self.cbuf);
        self.cbuf = front;
        match decision {
            Decision::Lookup(order) => self.lookup(order, total).await?,
            Decision::Probe(order) => self.run_probe(order, total).await?,
            Decision::Trash(order) => self.run_trash(order, total).await?,
            decision => self.carry_out(decision, total)?,
        }
        self.process_client().await
    }

    /// Runs the impact probe on the message in the first `total` bytes of `cbuf`.
    async fn run_probe(&mut self, order: Box<guard::ProbeOrder>, total: usize) -> Result<(), End> {
        self.core.begin_probe();
        let r = self.probe(order, total).await;
        self.core.end_probe();
        r
    }

    /// Carries out a trash rule on the message in the first `total` bytes of `cbuf`.
    async fn run_trash(&mut self, order: Box<guard::TrashOrder>, total: usize) -> Result<(), End> {
        self.core.begin_probe();
        let r = self.trash(order, total).await;
        self.core.end_probe();
        r
    }

    /// Carries out a decision on the whole message that makes up the first `total`
    /// bytes of `cbuf`, consuming them: the core says what to do, this does it.
    fn carry_out(&mut self, decision: Decision, total: usize) -> Result<(), End> {
        let (tag, body) = match frame::next(&self.cbuf[..total], usize::MAX) {
            Ok(Some(f)) => (f.tag(), f.body()),
            _ => (0, &[][..]),
        };
        let now = std::time::Instant::now();
        match self.core.carry_out(decision, tag, body, now) {
            Step::Forward(permit) => self.forward_front(permit, total),
            Step::ForwardAndEnd(permit) => {
                self.forward_front(permit, total);
                return Err(End::ClientTerminated);
            }
            Step::Inject { permit, request } => {
                bytes::Buf::advance(&mut self.cbuf, total);
                self.forward(permit, request);
            }
            Step::Hold { notice, ticket } => {
                // Only a cancel that arrives while this statement is held withdraws it.
                self.cancel.hold_started();
                self.to_client.extend_from_slice(&notice);
                self.held = Some((ticket, self.cbuf.split_to(total)));
            }
            Step::Reject { reply } => {
                bytes::Buf::advance(&mut self.cbuf, total);
                self.to_client.extend_from_slice(&reply);
                self.terminate_server();
                return Err(End::ClientProtocol(format!("rejected message type {tag}")));
            }
        }
        Ok(())
    }

    /// Queues bytes for the server; only a decision can produce the permit.
    fn forward(&mut self, _permit: Permit, msg: BytesMut) {
        append(&mut self.to_server, msg);
    }

    /// Moves the client message in the first `total` bytes of `cbuf` to the server's
    /// queue; only a decision can produce the permit.
    fn forward_front(&mut self, _permit: Permit, total: usize) {
        move_front(
            &mut self.cbuf,
            &mut self.to_server,
            &mut self.server_spill,
            total,
        );
    }

    /// Runs until either side ends or a drain completes.
    pub async fn run(
        &mut self,
        hooks: &mut (dyn Hooks + Send),
        shutdown: watch::Receiver<bool>,
    ) -> End {
        let mut draining = *shutdown.borrow();
        // Polling the drain future takes the shutdown channel's lock; once it has
        // registered this task's waker, a version check tells whether to poll again.
        let drain_seen = shutdown.clone();
        let mut drain_registered = false;
        let drain = drain_started(shutdown);
        tokio::pin!(drain);
        let mut hold: Option<(Ticket, BytesMut)> = None;
        // Authentication may have left whole messages buffered on either side.
        let first = match self.process_server(hooks) {
            Ok(()) => self.process_client().await,
            Err(e) => Err(e),
        };
        if let Err(end) = first {
            self.flush_all().await;
            return end;
        }
        loop {
            // A held statement is not idle: it first gets its resolution (PW005 once
            // the drain closes the hold queue), then the session closes.
            if draining && self.core.idle() && self.cbuf.is_empty() {
                self.to_client.extend_from_slice(&originate::fatal(
                    SqlState::ADMIN_SHUTDOWN,
                    "terminating connection because pgwarden is shutting down",
                ));
                self.terminate_server();
                self.flush_all().await;
                return End::Drained;
            }
            if let Some(h) = self.held.take() {
                hold = Some(h);
            }
            let wake = if hold.is_none() {
                // The common case, without the hold branches' futures: I/O, then
                // whether a drain has begun.
                let w = poll_fn(|cx| match self.poll_io(cx) {
                    Poll::Ready(w) => Poll::Ready(Some(w)),
                    Poll::Pending if draining => Poll::Pending,
                    Poll::Pending
                        if drain_registered && matches!(drain_seen.has_changed(), Ok(false)) =>
                    {
                        Poll::Pending
                    }
                    Poll::Pending => {
                        drain_registered = true;
                        std::future::Future::poll(drain.as_mut(), cx).map(|()| None)
                    }
                })
                .await;
                match w {
                    Some(w) => w,
                    None => {
                        draining = true;
                        continue;
                    }
                }
            } else {
                // A statement is held: also wait for its resolution or a cancel.
                let cancel = Arc::clone(&self.cancel);
                tokio::select! {
                    // Fixed order: I/O first; no per-message random number for fairness
                    // between branches that are rarely ready together.
                    biased;
                    w = poll_fn(|cx| self.poll_io(cx)) => w,
                    () = &mut drain, if !draining => {
                        draining = true;
                        continue;
                    }
                    r = held_resolution(&mut hold) => {
                        if let Some((ticket, msg)) = hold.take() {
                            // A dropped queue fails closed, as at shutdown.
                            let res = r.unwrap_or(crate::hold::Resolution::Shutdown);
                            if let Some((_, waited)) = self.core.hold_ended(std::time::Instant::now()) {
                                self.guard.observe_hold(waited, &res);
                            }
                            let decision = self.guard.resolved(&res, ticket.extended);
                            if let Err(end) = self.end_hold(decision, ticket.extended, msg).await {
                                self.flush_all().await;
                                return end;
                            }
                        }
                        continue;
                    }
                    // pgwarden stopped reading the client (HELD_INPUT_MAX): notice a
                    // client that went away all the same, so its statement never runs.
                    () = tokio::time::sleep(CLOSED_CHECK),
                        if self.core.holding() && self.cbuf.len() >= HELD_INPUT_MAX =>
                    {
                        if self.client.peer_closed() {
                            Ok(Wake::ClientEof)
                        } else {
                            continue;
                        }
                    }
                    _ = cancel.notified() => {
                        if let Some((ticket, msg)) = hold.take() {
                            self.core.hold_ended(std::time::Instant::now());
                            self.guard.withdraw(ticket.id);
                            let decision = self.guard.cancelled(ticket.extended);
                            if let Err(end) = self.end_hold(decision, ticket.extended, msg).await {
                                self.flush_all().await;
                                return end;
                            }
                        }
                        continue;
                    }
                }
            };
            let end = match wake {
                Ok(Wake::Client) => match self.process_client().await {
                    Ok(()) => continue,
                    Err(end) => end,
                },
                Ok(Wake::Server) => match self.process_server(hooks) {
                    Ok(()) => continue,
                    Err(end) => end,
                },
                Ok(Wake::ClientEof) => {
                    self.terminate_server();
                    End::ClientClosed
                }
                Ok(Wake::ServerEof) => End::ServerClosed,
                Err(e) => e,
            };
            // However the session ends (the client closed or reset the connection, an
            // I/O or protocol error), its held statement never runs and leaves the
            // queue, so an approver cannot approve a statement nobody waits for.
            self.core.close();
            if let Some((ticket, _)) = hold.take().or_else(|| self.held.take()) {
                self.guard.withdraw(ticket.id);
            }
            self.flush_all().await;
            return end;
        }
    }

    fn terminate_server(&mut self) {
        let mut x = BytesMut::new();
        x.extend_from_slice(&[frontend::TERMINATE, 0, 0, 0, 4]);
        self.forward(guard::internal(), x);
    }

    /// Frames whole client messages and carries out the guard's decision on each.
    async fn process_client(&mut self) -> Result<(), End> {
        while self.core.frames() {
            let f = match frame::next(&self.cbuf, self.max_message) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.to_client.extend_from_slice(&originate::fatal(
                        SqlState::PROTOCOL_VIOLATION,
                        &e.to_string(),
                    ));
                    self.terminate_server();
                    return Err(End::ClientProtocol(e.to_string()));
                }
            };
            let (tag, total) = (f.tag(), f.total());
            if !self.core.on_client(tag) {
                // Skipped to Sync after a refusal, as the server does after an error.
                bytes::Buf::advance(&mut self.cbuf, total);
                continue;
            }
            if let Some(work) = self.guard.classify_ahead(tag, f.body(), &self.core.state) {
                // A failed task only means `decide` parses the statement itself.
                let _ = tokio::task::spawn_blocking(work).await;
            }
            match self.extended_batch(tag).await? {
                extended::BatchStep::Each => {}
                extended::BatchStep::Wait => return Ok(()),
                extended::BatchStep::Done => continue,
            }
            let f = match frame::next(&self.cbuf, self.max_message) {
                Ok(Some(f)) => f,
                _ => return Ok(()),
            };
            let decision = self.guard.decide(tag, f.body(), &self.core.state);
            let decision = if self.guard.has_audit() {
                self.audited(decision, tag == frontend::PARSE).await
            } else {
                // Most messages (Bind, Execute, Sync, unaudited statements): no
                // audit step to await.
                self.core.audited(None);
                decision
            };
            let decision = match decision {
                Decision::Lookup(order) => {
                    self.lookup(order, total).await?;
                    continue;
                }
                Decision::Blast(order) => {
                    self.blast(order, total).await?;
                    continue;
                }
                Decision::Probe(order) => {
                    self.run_probe(order, total).await?;
                    continue;
                }
                Decision::Trash(order) => {
                    self.run_trash(order, total).await?;
                    continue;
                }
                d => d,
            };
            self.carry_out(decision, total)?;
        }
        Ok(())
    }

    /// Scans server messages for session facts, attributes them to requests, and
    /// queues them for the client (with pgwarden's error in place of the server's
    /// for a request it injected).
    fn process_server(&mut self, hooks: &mut (dyn Hooks + Send)) -> Result<(), End> {
        let mut consumed = 0;
        let now = std::time::Instant::now();
        loop {
            if self.server_discard > 0 {
                // Only ever set with nothing consumed before it in this buffer.
                let n = self.server_discard.min(self.sbuf.len());
                bytes::Buf::advance(&mut self.sbuf, n);
                self.server_discard -= n;
                if self.server_discard > 0 {
                    break;
                }
            }
            let buf = &self.sbuf[..];
            if self.server_skip > 0 {
                let n = self.server_skip.min(buf.len() - consumed);
                consumed += n;
                self.server_skip -= n;
                if self.server_skip > 0 {
                    break;
                }
                continue;
            }
            let rest = &buf[consumed..];
            // Too large to read whole, or invalid: the streaming path below decides.
            let whole = frame::next(rest, SERVER_WHOLE_MAX).unwrap_or_default();
            if let Some(f) = whole {
                let (tag, total) = (f.tag(), f.total());
                let step = self.core.on_server(tag, f.body(), now);
                if step.backend_key {
                    hooks.backend_key(&self.core.state, &self.cancel);
                }
                if let Some(done) = step.outcome {
                    self.guard.record_outcome(done);
                }
                match step.route {
                    Route::Forward => consumed += total,
                    Route::Replace(error) => {
                        move_front(
                            &mut self.sbuf,
                            &mut self.to_client,
                            &mut self.client_spill,
                            consumed,
                        );
                        bytes::Buf::advance(&mut self.sbuf, total);
                        self.to_client.extend_from_slice(&error);
                        consumed = 0;
                    }
                    Route::OutOfSync(e) => return Err(self.out_of_sync(consumed, e)),
                }
                continue;
            }
            let (h, part) = match frame::partial(rest, SERVER_MAX_MESSAGE, SERVER_WHOLE_MAX - 5) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    self.to_client.extend_from_slice(&originate::fatal(
                        SqlState::CONNECTION_FAILURE,
                        "pgwarden received an invalid message from the server",
                    ));
                    return Err(End::ServerProtocol(e.to_string()));
                }
            };
            let reads_prefix = matches!(h.tag, backend::ERROR_RESPONSE | backend::NOTICE_RESPONSE);
            if streams_through(h.tag) || (reads_prefix && h.total > SERVER_WHOLE_MAX) {
                // Large rows and copy data pass through in pieces, and so does a
                // large error or notice once its first bytes (the SQLSTATE comes
                // first) are read: memory stays bounded.
                if reads_prefix && 5 + part.len() < SERVER_WHOLE_MAX {
                    break;
                }
                let step = self.core.on_server_prefix(h.tag, part, now);
                if let Some(done) = step.outcome {
                    self.guard.record_outcome(done);
                }
                let taken = rest.len().min(h.total);
                match step.route {
                    Route::Forward => {
                        consumed += taken;
                        self.server_skip = h.total - taken;
                        continue;
                    }
                    Route::Replace(error) => {
                        move_front(
                            &mut self.sbuf,
                            &mut self.to_client,
                            &mut self.client_spill,
                            consumed,
                        );
                        bytes::Buf::advance(&mut self.sbuf, taken);
                        self.server_discard = h.total - taken;
                        self.to_client.extend_from_slice(&error);
                        consumed = 0;
                        continue;
                    }
                    Route::OutOfSync(e) => return Err(self.out_of_sync(consumed, e)),
                }
            }
            if h.total > SERVER_WHOLE_MAX {
                let what = format!(
                    "server sent a {}-byte message of type '{}', over pgwarden's limit of {SERVER_WHOLE_MAX} bytes for it",
                    h.total - 1,
                    char::from(h.tag)
                );
                tracing::warn!("{what}");
                self.to_client.extend_from_slice(&originate::fatal(
                    SqlState::CONNECTION_FAILURE,
                    "pgwarden received an invalid message from the server",
                ));
                return Err(End::ServerProtocol(what));
            }
            // A message pgwarden reads whole, not all here yet.
            break;
        }
        if consumed > 0 {
            move_front(
                &mut self.sbuf,
                &mut self.to_client,
                &mut self.client_spill,
                consumed,
            );
        }
        Ok(())
    }

    /// The server sent what no forwarded request accounts for: what came before it
    /// still reaches the client, then a FATAL error, and the session closes.
    fn out_of_sync(&mut self, consumed: usize, e: replies::OutOfSync) -> End {
        move_front(
            &mut self.sbuf,
            &mut self.to_client,
            &mut self.client_spill,
            consumed,
        );
        tracing::error!(error = %e, "server and client out of sync: closing the session");
        self.guard
            .audit_log()
            .record(crate::audit::Event::OutOfSync(crate::audit::OutOfSync {
                session: self.guard.session_id,
                message_type: char::from(e.tag).to_string(),
                expected: e.expected.map(|r| format!("{r:?}")),
            }));
        self.to_client
            .extend_from_slice(&core::out_of_sync_error(&e));
        self.terminate_server();
        End::ServerProtocol(format!("out of sync: {e}"))
    }

    /// One pass: write what is queued to each side, then read from whichever side
    /// has room. Every branch that returns Pending has registered the waker, so one
    /// pass suffices; reads come after the writes so they see the room a write made.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Result<Wake, End>> {
        if let Err(e) = drain(
            &mut self.server,
            cx,
            &mut self.to_server,
            &mut self.server_dirty,
            &mut self.server_spill,
        ) {
            return Poll::Ready(Err(End::ServerError(e)));
        }
        if let Err(e) = drain(
            &mut self.client,
            cx,
            &mut self.to_client,
            &mut self.client_dirty,
            &mut self.client_spill,
        ) {
            return Poll::Ready(Err(End::ClientError(e)));
        }
        // The side more likely to have something first: the server while it owes
        // replies, else the client. A Ready read returns at once, so this saves the
        // other side's readiness check on most wake-ups; when both are Pending, both
        // have registered the waker.
        let sides = if self.core.expects_server() {
            [Side::Server, Side::Client]
        } else {
            [Side::Client, Side::Server]
        };
        for side in sides {
            if let Poll::Ready(r) = self.poll_read(side, cx) {
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    }

    /// Reads what `side` has sent into its buffer, unless the other side's queue is
    /// above the high-water mark.
    fn poll_read(&mut self, side: Side, cx: &mut Context<'_>) -> Poll<Result<Wake, End>> {
        let (stream, buf, queued, counter) = match side {
            Side::Client => (
                &mut self.client,
                &mut self.cbuf,
                &self.to_server,
                &self.bytes_in,
            ),
            Side::Server => (
                &mut self.server,
                &mut self.sbuf,
                &self.to_client,
                &self.bytes_out,
            ),
        };
        if queued.len() >= HIGH_WATER {
            return Poll::Pending;
        }
        if matches!(side, Side::Client) && self.core.holding() && buf.len() >= HELD_INPUT_MAX {
            // The hold's end (or the closed-client check) wakes the task.
            return Poll::Pending;
        }
        buf.reserve(READ_CHUNK);
        let read = std::task::ready!(poll_read_buf(Pin::new(stream), cx, buf));
        if let Ok(n) = &read {
            counter.inc_by(*n as u64);
        }
        Poll::Ready(match (side, read) {
            (Side::Client, Ok(0)) => Ok(Wake::ClientEof),
            (Side::Client, Ok(_)) => Ok(Wake::Client),
            (Side::Client, Err(e)) => Err(End::ClientError(e)),
            (Side::Server, Ok(0)) => Ok(Wake::ServerEof),
            (Side::Server, Ok(_)) => Ok(Wake::Server),
            (Side::Server, Err(e)) => Err(End::ServerError(e)),
        })
    }

    /// Best-effort delivery of what is queued (bounded in time), then close both.
    async fn flush_all(&mut self) {
        let flush = async {
            use tokio::io::AsyncWriteExt;
            if !self.to_server.is_empty() {
                let _ = self.server.write_all(&self.to_server).await;
            }
            let _ = self.server.flush().await;
            if !self.to_client.is_empty() {
                let _ = self.client.write_all(&self.to_client).await;
            }
            let _ = self.client.flush().await;
            let _ = self.client.shutdown().await;
            let _ = self.server.shutdown().await;
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), flush).await;
        self.to_client.clear();
        self.to_server.clear();
    }
}

/// Message types that need not be whole to be forwarded (pgwarden does not read them).
fn streams_through(tag: u8) -> bool {
    !matches!(
        tag,
        backend::READY_FOR_QUERY
            | backend::PARAMETER_STATUS
            | backend::BACKEND_KEY_DATA
            | backend::AUTHENTICATION
            | backend::ERROR_RESPONSE
            | backend::NOTICE_RESPONSE
            | backend::COMMAND_COMPLETE
            | backend::COPY_IN_RESPONSE
            | backend::COPY_OUT_RESPONSE
            | backend::COPY_BOTH_RESPONSE
    )
}

/// Buffers up to this size change places whole; messages up to `COPY_MAX` are copied.
const SWAP_MAX: usize = HIGH_WATER;
const COPY_MAX: usize = 4096;

/// Moves the first `n` bytes of `src` to the end of `dst`. A whole buffer changes
/// places with an empty one and a small message is copied, so both keep their
/// allocations: splitting a read buffer for each message (`split_to`) would allocate
/// a new read buffer for nearly every message. Only a large part is split off, and
/// its memory is released once written.
fn move_front(src: &mut BytesMut, dst: &mut BytesMut, spill: &mut bool, n: usize) {
    if n == src.len() && dst.is_empty() && !*spill && src.capacity() <= SWAP_MAX {
        std::mem::swap(src, dst);
    } else if n <= COPY_MAX {
        dst.extend_from_slice(&src[..n]);
        bytes::Buf::advance(src, n);
    } else {
        let part = src.split_to(n);
        append(dst, part);
        *spill = true;
    }
}

/// Appends without copying when `dst` is empty (the common case).
fn append(dst: &mut BytesMut, src: BytesMut) {
    if dst.is_empty() {
        *dst = src;
    } else {
        dst.unsplit(src);
    }
}

/// Writes as much of `buf` as the socket takes, then flushes. Whatever is left has
/// registered the waker for writability; only errors are returned. A large message's
/// buffer (`spill`) is released once all of it is written.
fn drain(
    s: &mut Stream,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    dirty: &mut bool,
    spill: &mut bool,
) -> io::Result<()> {
    while !buf.is_empty() {
        match Pin::new(&mut *s).poll_write(cx, buf) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => {
                bytes::Buf::advance(buf, n);
                *dirty = true;
            }
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(()),
        }
    }
    if *spill {
        *buf = BytesMut::new();
        *spill = false;
    }
    if *dirty {
        match Pin::new(&mut *s).poll_flush(cx) {
            Poll::Ready(Ok(())) => *dirty = false,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(bytes: &[u8], capacity: usize) -> BytesMut {
        let mut b = BytesMut::with_capacity(capacity);
        b.extend_from_slice(bytes);
        b
    }

    #[test]
    fn move_front_keeps_read_buffers_and_releases_large_ones() {
        // A whole small buffer into an empty queue: the two change places, so the
        // read side gets the queue's (empty) allocation back for its next read.
        let mut src = buf(b"Qabc", 16 * 1024);
        let ptr = src.as_ptr();
        let mut dst = BytesMut::new();
        let mut spill = false;
        move_front(&mut src, &mut dst, &mut spill, 4);
        assert_eq!((&dst[..], src.len(), spill), (&b"Qabc"[..], 0, false));
        assert_eq!(dst.as_ptr(), ptr, "moved, not copied");

        // Part of a buffer, or into a non-empty queue: small messages are copied.
        let mut src = buf(b"onetwo", 64);
        move_front(&mut src, &mut dst, &mut spill, 3);
        assert_eq!(
            (&dst[..], &src[..], spill),
            (&b"Qabcone"[..], &b"two"[..], false)
        );

        // A large message is split off (no copy) and marked to be released once
        // written.
        let big = vec![7u8; COPY_MAX + 1];
        let mut src = buf(&big, 2 * big.len());
        src.extend_from_slice(b"next");
        let mut dst = BytesMut::new();
        move_front(&mut src, &mut dst, &mut spill, big.len());
        assert_eq!(
            (dst.len(), &src[..], spill),
            (big.len(), &b"next"[..], true)
        );

        // While marked, the queue's buffer never becomes a read buffer.
        bytes::Buf::advance(&mut dst, big.len());
        let mut src = buf(b"S", 64);
        move_front(&mut src, &mut dst, &mut spill, 1);
        assert_eq!((&dst[..], src.len()), (&b"S"[..], 0));
        assert_ne!(src.capacity(), 0, "the read buffer kept its own allocation");

        // A read buffer that grew past SWAP_MAX is not passed around either.
        let mut src = buf(&[1u8; 10], SWAP_MAX + 1);
        let mut dst = BytesMut::new();
        let mut spill = false;
        move_front(&mut src, &mut dst, &mut spill, 10);
        assert_eq!((dst.len(), src.len(), spill), (10, 0, false));
        assert!(dst.capacity() < SWAP_MAX);
    }
}
