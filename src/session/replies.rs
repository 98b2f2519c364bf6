//! The queue of server replies a session still expects, one entry per forwarded
//! request. It lets pgwarden attribute each server message to the request that
//! caused it, which is what makes refusing a statement exact: pgwarden sends the
//! server a request that is sure to fail in the refused statement's place, and swaps
//! that request's error for its own. The server then aborts the transaction, skips
//! the rest of an extended-protocol batch and reports the transaction status exactly
//! as it would for a real error, so client and server never disagree.

use std::collections::VecDeque;
use std::time::Instant;

use crate::protocol::frontend;

/// What kind of request a reply belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Simple Query or FunctionCall: everything until ReadyForQuery.
    Simple,
    Parse,
    Bind,
    Describe,
    Execute,
    Close,
    Sync,
    /// Not a request: where the client ended an extended-protocol COPY IN
    /// (CopyDone/CopyFail), so Syncs before it can be told from those after it.
    CopyEnd,
    /// The session's start: ParameterStatus, BackendKeyData, then ReadyForQuery.
    Startup,
}

impl Request {
    /// The request a forwarded client message makes, if it expects a reply.
    pub fn of(tag: u8) -> Option<Request> {
        Some(match tag {
            frontend::QUERY | frontend::FUNCTION_CALL => Request::Simple,
            frontend::PARSE => Request::Parse,
            frontend::BIND => Request::Bind,
            frontend::DESCRIBE => Request::Describe,
            frontend::EXECUTE => Request::Execute,
            frontend::CLOSE => Request::Close,
            frontend::SYNC => Request::Sync,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    request: Request,
    /// Error to show instead of the server's, for a request pgwarden injected.
    substitute: Option<Vec<u8>>,
    /// Audited statements whose outcome this request reports (Simple or Sync).
    audit: Vec<u64>,
    started: Option<std::time::Instant>,
    /// The last command tag and error seen while this entry was current.
    tag: Option<String>,
    sqlstate: Option<String>,
}

impl Entry {
    fn new(request: Request) -> Self {
        Entry {
            request,
            substitute: None,
            audit: Vec::new(),
            started: None,
            tag: None,
            sqlstate: None,
        }
    }
}

/// A finished request with audited statements: their outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub statements: Vec<u64>,
    pub tag: Option<String>,
    pub sqlstate: Option<String>,
    pub duration: std::time::Duration,
}

/// What to do with a server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Forward,
    /// Send these bytes to the client instead of the server's message.
    Replace(Vec<u8>),
    /// The message answers no request pgwarden forwarded: client and server can no
    /// longer be told apart safely, so the session must close.
    OutOfSync(OutOfSync),
}

/// A server message that no expected reply accounts for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server sent message type '{}' while pgwarden expected {}", char::from(*.tag), expected_text(.expected))]
pub struct OutOfSync {
    pub tag: u8,
    /// The request whose reply was due, if any.
    pub expected: Option<Request>,
}

fn expected_text(r: &Option<Request>) -> String {
    match r {
        Some(r) => format!("the reply to {r:?}"),
        None => "no reply".to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct Replies {
    queue: VecDeque<Entry>,
    /// The time of the message being attributed (set by the session core with
    /// [`Replies::at`]; the queue reads no clock). Audited requests are timed from it.
    now: Option<Instant>,
}

impl Default for Replies {
    /// A session just authenticated: the server's start-up messages are due.
    fn default() -> Self {
        Replies {
            queue: VecDeque::from([Entry::new(Request::Startup)]),
            now: None,
        }
    }
}

impl Replies {
    /// A queue with nothing due (for tests of one request at a time).
    pub fn idle() -> Self {
        Replies {
            queue: VecDeque::new(),
            now: None,
        }
    }

    /// Sets the time of the messages attributed next (what audited statements'
    /// durations are measured with).
    pub fn at(&mut self, now: Instant) {
        self.now = Some(now);
    }

    pub fn push(&mut self, request: Request) {
        self.queue.push_back(Entry::new(request));
    }

    /// A request whose outcome is reported for these audited statements.
    pub fn push_audited(&mut self, request: Request, statements: Vec<u64>) {
        let mut e = Entry::new(request);
        if !statements.is_empty() {
            e.started = self.now;
        }
        e.audit = statements;
        self.queue.push_back(e);
    }

    /// Records a request pgwarden injected to fail in place of a refused one.
    pub fn push_substitute(&mut self, request: Request, error: Vec<u8>) {
        let mut e = Entry::new(request);
        e.substitute = Some(error);
        self.queue.push_back(e);
    }

    /// Notes a command tag or error for the audited request it belongs to, and
    /// returns the outcome when a ReadyForQuery finishes that request.
    pub fn outcome(&mut self, tag: u8, body: &[u8]) -> Option<Completed> {
        // The request that ends the current segment carries the audit ids.
        let e = self
            .queue
            .iter_mut()
            .find(|e| matches!(e.request, Request::Simple | Request::Sync))?;
        let now = self.now;
        if tag == b'E' {
            // Noted even before the segment has audited statements: a failed Parse's
            // statement is moved here by `on_server` after this error is seen.
            e.sqlstate = crate::protocol::backend::sqlstate(body);
            return None;
        }
        if e.audit.is_empty() {
            return None;
        }
        match tag {
            b'C' => {
                e.tag = crate::protocol::cstr(body)
                    .map(|(t, _)| String::from_utf8_lossy(t).into_owned());
                None
            }
            b'Z' => Some(Completed {
                statements: std::mem::take(&mut e.audit),
                tag: e.tag.take(),
                sqlstate: e.sqlstate.take(),
                duration: match (e.started, now) {
                    (Some(s), Some(now)) => now.saturating_duration_since(s),
                    _ => std::time::Duration::ZERO,
                },
            }),
            _ => None,
        }
    }

    /// Whether an extended-protocol Execute still awaits its reply.
    pub fn has_execute(&self) -> bool {
        self.queue.iter().any(|e| e.request == Request::Execute)
    }

    /// The server answered an Execute with CopyInResponse: it ignores every Sync it
    /// receives until the client's CopyDone/CopyFail, so the Syncs forwarded in
    /// between (libpq and tokio-postgres send one right after the Execute) get no
    /// ReadyForQuery. Drops their entries and returns how many, the audit ids they
    /// carried (moved to the first Sync after the copy's end when it was already
    /// forwarded, else returned for the segment), and whether the copy's end was
    /// already forwarded. A simple-protocol COPY (front is not an Execute) is
    /// untouched.
    pub fn copy_in_started(&mut self) -> Option<(usize, Vec<u64>, bool)> {
        if self.queue.front().map(|e| e.request) != Some(Request::Execute) {
            return None;
        }
        let mut removed = 0;
        let mut ids = Vec::new();
        let mut i = 1;
        let mut ended = false;
        while i < self.queue.len() {
            match self.queue[i].request {
                Request::CopyEnd => {
                    ended = true;
                    break;
                }
                Request::Sync => {
                    if let Some(mut e) = self.queue.remove(i) {
                        ids.append(&mut e.audit);
                    }
                    removed += 1;
                }
                _ => i += 1,
            }
        }
        if ended && !ids.is_empty() {
            if let Some(sync) = self
                .queue
                .iter_mut()
                .skip(i)
                .find(|e| e.request == Request::Sync)
            {
                if sync.started.is_none() {
                    sync.started = self.now;
                }
                sync.audit.append(&mut ids);
            }
        }
        Some((removed, ids, ended))
    }

    /// Marks where the client ended an extended-protocol COPY IN.
    pub fn push_copy_end(&mut self) {
        self.queue.push_back(Entry::new(Request::CopyEnd));
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Attributes one server message (by tag) and says what to do with it.
    pub fn on_server(&mut self, tag: u8) -> Route {
        use Request as R;
        let front = self.queue.front().map(|e| e.request);
        match (tag, front) {
            // Sent at any time: notices, notifications, parameter changes.
            (b'N' | b'A' | b'S', _) => Route::Forward,
            (b'K', Some(R::Startup)) => Route::Forward,
            (b'1', Some(R::Parse))
            | (b'2', Some(R::Bind))
            | (b'3', Some(R::Close))
            | (b'T' | b'n', Some(R::Describe))
            | (b'C' | b'I' | b's', Some(R::Execute)) => {
                self.queue.pop_front();
                Route::Forward
            }
            (b't', Some(R::Describe)) => Route::Forward,
            // What a query or an Execute produces on the way to its end.
            (
                b'T' | b'D' | b'C' | b'I' | b'V' | b'G' | b'H' | b'W' | b'd' | b'c',
                Some(R::Simple),
            )
            | (b'D' | b'G' | b'H' | b'W' | b'd' | b'c', Some(R::Execute)) => Route::Forward,
            (b'E', Some(R::Simple)) => {
                match self.queue.front_mut().and_then(|e| e.substitute.take()) {
                    Some(err) => Route::Replace(err),
                    None => Route::Forward,
                }
            }
            // A FATAL error needs no request (shutdown, timeouts, role limits).
            (b'E', Some(R::Sync | R::Startup)) | (b'E', None) => Route::Forward,
            (b'E', Some(_)) => {
                // The server skips everything up to the next Sync after an error.
                // Audited statements of Parse requests that failed or were skipped
                // never exist on the server: their outcome is this error, reported
                // with the Sync.
                let mut failed: Vec<u64> = Vec::new();
                let first = self.queue.pop_front().and_then(|mut e| {
                    if e.request == R::Parse {
                        failed.append(&mut e.audit);
                    }
                    e.substitute
                });
                while let Some(e) = self.queue.front_mut() {
                    if e.request == R::Sync {
                        if !failed.is_empty() {
                            if e.started.is_none() {
                                e.started = self.now;
                            }
                            e.audit.append(&mut failed);
                        }
                        break;
                    }
                    if e.request == R::Parse {
                        failed.append(&mut e.audit);
                    }
                    self.queue.pop_front();
                }
                first.map_or(Route::Forward, Route::Replace)
            }
            (b'Z', _) => {
                // Ends the segment up to the first request that expects it; the
                // requests before it were skipped after an error (or answered).
                let Some(end) = self
                    .queue
                    .iter()
                    .position(|e| matches!(e.request, R::Sync | R::Simple | R::Startup))
                else {
                    return Route::OutOfSync(OutOfSync {
                        tag,
                        expected: front,
                    });
                };
                self.queue.drain(..=end);
                Route::Forward
            }
            _ => Route::OutOfSync(OutOfSync {
                tag,
                expected: front,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &mut Replies, tags: &[u8]) -> Vec<Route> {
        tags.iter().map(|t| r.on_server(*t)).collect()
    }

    #[test]
    fn extended_batch_completes_in_order() {
        let mut r = Replies::idle();
        for t in [b'P', b'B', b'D', b'E', b'S'] {
            r.push(Request::of(t).unwrap());
        }
        run(&mut r, b"12TDDC");
        assert_eq!(r.len(), 1);
        run(&mut r, b"Z");
        assert!(r.is_empty());
    }

    #[test]
    fn injected_parse_error_is_replaced_and_the_batch_skipped() {
        let mut r = Replies::idle();
        r.push(Request::Parse);
        r.push(Request::Bind);
        r.push_substitute(Request::Parse, b"ours".to_vec());
        r.push(Request::Bind);
        r.push(Request::Execute);
        r.push(Request::Sync);
        let v = run(&mut r, b"12EZ");
        assert_eq!(v[2], Route::Replace(b"ours".to_vec()));
        assert!(r.is_empty());
    }

    #[test]
    fn a_real_error_before_the_injected_one_wins() {
        let mut r = Replies::idle();
        r.push(Request::Parse);
        r.push_substitute(Request::Parse, b"ours".to_vec());
        r.push(Request::Sync);
        let v = run(&mut r, b"EZ");
        assert_eq!(v, vec![Route::Forward, Route::Forward]);
        assert!(r.is_empty());
    }

    #[test]
    fn a_failed_parse_reports_its_statement_with_the_sync() {
        let mut r = Replies::idle();
        r.push_audited(Request::Parse, vec![7]);
        r.push(Request::Bind);
        r.push(Request::Execute);
        r.push_audited(Request::Sync, vec![]);
        assert_eq!(r.outcome(b'E', b"SERROR\0C42P01\0\0"), None);
        assert_eq!(r.on_server(b'E'), Route::Forward);
        let done = r.outcome(b'Z', b"I").expect("an outcome at ReadyForQuery");
        assert_eq!(done.statements, vec![7]);
        assert_eq!(done.sqlstate.as_deref(), Some("42P01"));
        assert_eq!(done.tag, None);
        r.on_server(b'Z');
        assert!(r.is_empty());
    }

    #[test]
    fn syncs_sent_during_an_extended_copy_in_expect_no_reply() {
        let mut r = Replies::idle();
        // Bind, Execute, Sync, (CopyData…), CopyDone, Sync: the first Sync is ignored.
        r.push(Request::Bind);
        r.push(Request::Execute);
        r.push_audited(Request::Sync, vec![3]);
        r.push_copy_end();
        r.push_audited(Request::Sync, vec![]);
        run(&mut r, b"2");
        assert_eq!(r.copy_in_started(), Some((1, vec![], true)));
        run(&mut r, b"C");
        let done = r.outcome(b'Z', b"I").expect("the copy's outcome");
        assert_eq!(done.statements, vec![3]);
        run(&mut r, b"Z");
        assert!(r.is_empty());
        // A simple-protocol COPY is left alone.
        r.push(Request::Simple);
        assert_eq!(r.copy_in_started(), None);
    }

    #[test]
    fn simple_query_substitution() {
        let mut r = Replies::idle();
        r.push(Request::Simple);
        r.push_substitute(Request::Simple, b"ours".to_vec());
        let v = run(&mut r, b"TDCZEZ");
        assert_eq!(v[4], Route::Replace(b"ours".to_vec()));
        assert!(r.is_empty());
    }

    /// Server message sequences against the requests forwarded: what each gets.
    #[test]
    fn out_of_sync_messages_are_named_not_forwarded() {
        use Request as R;
        let oos = |tag, expected| Route::OutOfSync(OutOfSync { tag, expected });
        let cases: &[(&str, &[Request], &[u8], Route)] = &[
            (
                "ParseComplete for a Bind",
                &[R::Bind, R::Sync],
                b"1",
                oos(b'1', Some(R::Bind)),
            ),
            ("BindComplete with nothing due", &[], b"2", oos(b'2', None)),
            ("ReadyForQuery with nothing due", &[], b"Z", oos(b'Z', None)),
            (
                "a second ReadyForQuery",
                &[R::Simple],
                b"CZZ",
                oos(b'Z', None),
            ),
            (
                "DataRow for a Describe",
                &[R::Describe, R::Sync],
                b"D",
                oos(b'D', Some(R::Describe)),
            ),
            (
                "BackendKeyData mid-session",
                &[R::Simple],
                b"K",
                oos(b'K', Some(R::Simple)),
            ),
            (
                "authentication after startup",
                &[R::Simple],
                b"R",
                oos(b'R', Some(R::Simple)),
            ),
            (
                "an unknown type",
                &[R::Sync],
                b"?",
                oos(b'?', Some(R::Sync)),
            ),
            (
                "a whole extended batch",
                &[R::Parse, R::Bind, R::Describe, R::Execute, R::Sync],
                b"12TDDCZ",
                Route::Forward,
            ),
            (
                "describe a statement",
                &[R::Describe, R::Sync],
                b"tnZ",
                Route::Forward,
            ),
            (
                "simple query with copy out",
                &[R::Simple],
                b"HddcCZ",
                Route::Forward,
            ),
            ("function call", &[R::Simple], b"VZ", Route::Forward),
            ("notices any time", &[], b"NAS", Route::Forward),
            ("a FATAL error any time", &[], b"E", Route::Forward),
            (
                "error skips to Sync",
                &[R::Parse, R::Bind, R::Execute, R::Sync],
                b"EZ",
                Route::Forward,
            ),
        ];
        for (name, requests, tags, last) in cases {
            let mut r = Replies::idle();
            for q in *requests {
                r.push(*q);
            }
            let routes = run(&mut r, tags);
            let (end, before) = routes.split_last().expect("a tag");
            assert!(
                before.iter().all(|v| *v == Route::Forward),
                "{name}: {routes:?}"
            );
            assert_eq!(end, last, "{name}");
        }
    }

    #[test]
    fn startup_messages_are_expected_first() {
        let mut r = Replies::default();
        assert_eq!(run(&mut r, b"SSKZ"), vec![Route::Forward; 4]);
        assert!(r.is_empty());
        assert_eq!(
            r.on_server(b'K'),
            Route::OutOfSync(OutOfSync {
                tag: b'K',
                expected: None
            })
        );
    }

    #[test]
    fn notices_and_async_messages_pass() {
        let mut r = Replies::idle();
        r.push(Request::Simple);
        assert_eq!(run(&mut r, b"NAS"), vec![Route::Forward; 3]);
        assert_eq!(r.len(), 1);
    }
}
