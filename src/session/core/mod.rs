//! The session's pure core after authentication: it takes whole client and server
//! messages (and the guard's decisions, and the time, as arguments) and says what
//! to do with each. It owns the session's phase, the queue of replies the server
//! still owes, the facts the server reported and the attribution of outcomes to
//! audited statements. No I/O, no tokio, no clock: the driver (`relay.rs`) moves
//! the bytes and carries out the steps returned here.

mod attribution;
mod phase;

use std::time::{Duration, Instant};

use bytes::BytesMut;

pub use attribution::Attribution;
pub use phase::{Hold, Phase};

use super::guard::{self, Decision, Permit, Refusal, Ticket};
use super::replies::{Completed, OutOfSync, Replies, Request, Route};
use super::state::{ServerEvent, SessionState};
use crate::protocol::{backend, frontend, originate, sqlstate::SqlState};

/// A request pgwarden sends in a refused statement's place: a syntax error, so it
/// can run nothing, yet the server aborts the transaction as for any error.
pub const REFUSED_SQL: &[u8] = b"/* pgwarden refused a statement */ pgwarden_refused";

/// What to do with a whole client message the core was given.
#[derive(Debug)]
pub enum Step {
    /// Move the message to the server.
    Forward(Permit),
    /// Move the message (Terminate) to the server; the session then ends.
    ForwardAndEnd(Permit),
    /// Drop the message and send `request` to the server in its place: a request
    /// sure to fail, whose error the reply queue replaces with pgwarden's.
    Inject { permit: Permit, request: BytesMut },
    /// Keep the message aside, send `notice` (if any) to the client and wait for
    /// the ticket; then give the core the resolution's decision (`hold_ended`).
    Hold { notice: Vec<u8>, ticket: Ticket },
    /// Drop the message, send `reply` (a FATAL error) to the client, end the session.
    Reject { reply: Vec<u8> },
}

/// What to do with a server message the core was shown.
#[derive(Debug)]
pub struct ServerStep {
    pub route: Route,
    /// The server handed out its cancel key (in `state.backend_key`): register it.
    pub backend_key: bool,
    /// Audited statements whose outcome this message completes.
    pub outcome: Option<Completed>,
}

/// One session's protocol state after authentication.
#[derive(Debug)]
pub struct Core {
    phase: Phase,
    /// Facts the server reported (parameters, key, transaction status, owed
    /// ReadyForQuery messages, COPY IN).
    pub state: SessionState,
    /// The replies the server still owes, one entry per forwarded request.
    pub replies: Replies,
    /// Audited statements waiting for their outcome.
    pub audit: Attribution,
    /// The server is in an extended-protocol COPY IN whose end (CopyDone/CopyFail)
    /// the client has not sent yet: it ignores Syncs until then.
    copy_in_extended: bool,
}

impl Default for Core {
    fn default() -> Self {
        Core::new()
    }
}

impl Core {
    /// A session just authenticated: the server's start-up messages are due.
    pub fn new() -> Self {
        Core {
            phase: Phase::Ready,
            state: SessionState::default(),
            replies: Replies::default(),
            audit: Attribution::default(),
            copy_in_extended: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether whole client messages are framed now (not while a statement is held
    /// or probed, nor once the session is ending).
    pub fn frames(&self) -> bool {
        self.phase.frames()
    }

    /// Whether a statement is held.
    pub fn holding(&self) -> bool {
        matches!(self.phase, Phase::Holding(_))
    }

    /// Nothing in flight and nothing held: a drain may close the session.
    pub fn idle(&self) -> bool {
        !self.holding() && self.state.is_idle()
    }

    /// Whether the whole client message of type `tag` is to be decided on (`false`:
    /// drop it, the server skips it too).
    pub fn on_client(&mut self, tag: u8) -> bool {
        if self.phase == Phase::SkipToSync {
            if !matches!(tag, frontend::SYNC | frontend::TERMINATE) {
                return false;
            }
            if tag == frontend::SYNC {
                self.phase = Phase::Ready;
            }
        }
        true
    }

    /// The audit id recorded for the message about to be carried out, if any.
    pub fn audited(&mut self, id: Option<u64>) {
        self.audit.current = id;
    }

    /// Carries out the guard's decision on the whole client message `tag`/`body`.
    /// A `Decision::Probe` or `Decision::Trash` is the driver's to run
    /// (`begin_probe`); one given here is refused (fail closed).
    pub fn carry_out(&mut self, decision: Decision, tag: u8, body: &[u8], now: Instant) -> Step {
        self.replies.at(now);
        match decision {
            Decision::Forward(permit) => self.forwarded(permit, tag, body),
            Decision::Refuse(refusal) => self.refuse(refusal),
            Decision::Hold { notice, ticket } => {
                self.phase = Phase::Holding(Hold {
                    id: ticket.id,
                    extended: ticket.extended,
                    tag,
                    since: now,
                });
                Step::Hold { notice, ticket }
            }
            // The driver runs probes and the trash; one given here is a bug.
            Decision::Probe(_) | Decision::Trash(_) | Decision::Lookup(_) | Decision::Blast(_) => {
                self.refuse(Refusal {
                    error: originate::report(&originate::Report::new(
                        originate::Severity::Error,
                        SqlState::INTERNAL_ERROR,
                        "pgwarden could not measure this statement and refused it",
                    )),
                    extended: false,
                })
            }
            Decision::Reject(reply) => {
                self.phase = Phase::Closed;
                Step::Reject { reply }
            }
        }
    }

    /// The bookkeeping of a forwarded message: the reply it expects, the audited
    /// statement whose outcome that reply reports, COPY IN's ignored Syncs.
    fn forwarded(&mut self, permit: Permit, tag: u8, body: &[u8]) -> Step {
        if tag == frontend::SYNC && (self.copy_in_extended || self.state.copy_in) {
            // Ignored by the server during COPY IN: no ReadyForQuery comes.
            return Step::Forward(permit);
        }
        if matches!(tag, frontend::COPY_DONE | frontend::COPY_FAIL) {
            if self.copy_in_extended {
                self.copy_in_extended = false;
            } else if self.replies.has_execute() {
                self.replies.push_copy_end();
            }
        }
        self.state.observe_client(tag);
        match Request::of(tag) {
            Some(Request::Simple) => {
                let ids = self.audit.current.take().into_iter().collect();
                self.replies.push_audited(Request::Simple, ids);
            }
            Some(Request::Sync) => {
                let ids = std::mem::take(&mut self.audit.segment);
                self.replies.push_audited(Request::Sync, ids);
            }
            Some(Request::Parse) => {
                let name = frontend::parse(body).map(|p| p.name);
                let id = self.audit.current.take();
                match self.audit.parsed(name, id) {
                    Some(id) => self.replies.push_audited(Request::Parse, vec![id]),
                    None => self.replies.push(Request::Parse),
                }
            }
            Some(Request::Bind) => {
                if self.audit.tracking() {
                    if let Some((portal, stmt)) = frontend::bind_names(body) {
                        self.audit.bound(portal, stmt);
                    }
                }
                self.replies.push(Request::Bind);
            }
            Some(Request::Execute) => {
                if self.audit.tracking() {
                    if let Some((portal, _)) = frontend::execute(body) {
                        self.audit.executed(portal);
                    }
                }
                self.replies.push(Request::Execute);
            }
            Some(r) => self.replies.push(r),
            None => {}
        }
        if tag == frontend::TERMINATE {
            self.phase = Phase::Closed;
            return Step::ForwardAndEnd(permit);
        }
        Step::Forward(permit)
    }

    /// A refusal: the server gets a request that must fail, and the client
    /// `refusal.error` in place of the server's error.
    fn refuse(&mut self, refusal: Refusal) -> Step {
        let (tag, request) = if refusal.extended {
            (frontend::PARSE, Request::Parse)
        } else {
            (frontend::QUERY, Request::Simple)
        };
        let body_len = if refusal.extended {
            1 + REFUSED_SQL.len() + 1 + 2
        } else {
            REFUSED_SQL.len() + 1
        };
        let mut msg = BytesMut::with_capacity(body_len + 5);
        msg.extend_from_slice(&[tag]);
        msg.extend_from_slice(&((body_len + 4) as i32).to_be_bytes());
        if refusal.extended {
            msg.extend_from_slice(b"\0");
        }
        msg.extend_from_slice(REFUSED_SQL);
        msg.extend_from_slice(b"\0");
        if refusal.extended {
            msg.extend_from_slice(&[0, 0]);
            self.phase = Phase::SkipToSync;
        } else {
            self.state.observe_client(frontend::QUERY);
        }
        self.replies.push_substitute(request, refusal.error);
        Step::Inject {
            permit: guard::internal(),
            request: msg,
        }
    }

    /// The held statement's wait is over (resolved, cancelled or withdrawn): the
    /// hold, and how long it waited. The driver then carries out the decision on it
    /// (`carry_out`), in front of the messages that waited behind it.
    pub fn hold_ended(&mut self, now: Instant) -> Option<(Hold, Duration)> {
        match self.phase {
            Phase::Holding(h) => {
                self.phase = Phase::Ready;
                Some((h, now.saturating_duration_since(h.since)))
            }
            _ => None,
        }
    }

    /// The impact probe starts on the message at the front of the client's buffer.
    pub fn begin_probe(&mut self) {
        self.phase = Phase::Probing;
    }

    /// The probe is over (its decision carried out, which may have held it).
    pub fn end_probe(&mut self) {
        if self.phase == Phase::Probing {
            self.phase = Phase::Ready;
        }
    }

    /// The probed Query ran and stays: its replies, held back so far, are due now
    /// as the answer to the client's Query.
    pub fn probed_delivered(&mut self, now: Instant) {
        self.replies.at(now);
        self.state.observe_client(frontend::QUERY);
        let ids = self.audit.current.take().into_iter().collect();
        self.replies.push_audited(Request::Simple, ids);
    }

    /// Whether the server owes this session nothing (pgwarden may send its own
    /// requests without interleaving them with replies to the client's).
    pub fn server_owes_nothing(&self) -> bool {
        self.replies.is_empty() && self.state.is_idle()
    }

    /// Whether replies are due (the driver reads the server first then).
    pub fn expects_server(&self) -> bool {
        self.state.pending_ready > 0 || !self.replies.is_empty()
    }

    /// Attributes one whole server message.
    pub fn on_server(&mut self, tag: u8, body: &[u8], now: Instant) -> ServerStep {
        self.replies.at(now);
        let backend_key = self.state.observe_server(tag, body) == ServerEvent::BackendKey;
        if tag == backend::COPY_IN_RESPONSE {
            if let Some((ignored, mut ids, ended)) = self.replies.copy_in_started() {
                self.state.pending_ready = self.state.pending_ready.saturating_sub(ignored);
                ids.append(&mut self.audit.segment);
                self.audit.segment = ids;
                self.copy_in_extended = !ended;
            }
        }
        let mut outcome = None;
        if matches!(tag, b'C' | b'E' | b'Z') {
            if let Some(done) = self.replies.outcome(tag, body) {
                // A failed Parse's statement gets its outcome here.
                self.audit.forget(&done.statements);
                outcome = Some(done);
            }
        }
        let route = self.route(tag);
        ServerStep {
            route,
            backend_key,
            outcome,
        }
    }

    /// Attributes a server message too large to read whole (rows, copy data, a
    /// large error or notice) from its first bytes, `prefix`.
    pub fn on_server_prefix(&mut self, tag: u8, prefix: &[u8], now: Instant) -> ServerStep {
        self.replies.at(now);
        let mut outcome = None;
        if tag == backend::ERROR_RESPONSE {
            outcome = self.replies.outcome(tag, prefix);
        }
        ServerStep {
            route: self.route(tag),
            backend_key: false,
            outcome,
        }
    }

    fn route(&mut self, tag: u8) -> Route {
        let route = self.replies.on_server(tag);
        if matches!(route, Route::OutOfSync(_)) {
            self.phase = Phase::Closed;
        }
        route
    }

    /// The session is ending (either side closed, an error): nothing more is framed.
    pub fn close(&mut self) {
        self.phase = Phase::Closed;
    }
}

/// The FATAL error a client gets when the server is out of sync.
pub fn out_of_sync_error(_e: &OutOfSync) -> Vec<u8> {
    originate::fatal(
        SqlState::PROTOCOL_VIOLATION,
        "pgwarden lost track of the server's replies and closed the session",
    )
}

#[cfg(test)]
mod tests;
