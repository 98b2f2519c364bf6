//! Table-driven tests of the session core with the real guard (the built-in policy,
//! a production target, the real classifier): client and server messages in, the
//! steps the core returns out, written as short words. They run in milliseconds;
//! `tests/it/` checks the same paths end to end against PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Core, Phase, Step};
use crate::hold::Resolution;
use crate::protocol::frame;
use crate::session::guard::{Decision, Guard, Ticket};
use crate::session::replies::Route;

/// The policy used unless a test names its own: the built-in one plus a measured
/// rule (DELETE/UPDATE bounded by a WHERE clause are probed).
const PROBE_RULE: &str = r#"
[[rule]]
name = "measured-writes"
environment = "production"
classes = ["delete.bounded", "update.bounded"]
action = "hold"
confirm = "approver"
timeout = "10m"
impact = { rows = 1000, share = "10%", share_min_rows = 10, on_unknown = "hold" }
"#;

fn shared(environment: &str, policy_extra: &str) -> Arc<crate::shared::Shared> {
    let dir = std::env::temp_dir().join(format!(
        "pgwarden-core-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!("{}\n{policy_extra}", crate::shared::BUILTIN_POLICY),
    )
    .expect("policy file");
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[policy]
path = "{}"

[targets.db]
host = "127.0.0.1"
port = 1
environment = "{environment}"
"#,
        policy.display()
    );
    let config = crate::config::Config::from_toml_str(&toml, "test.toml").expect("config");
    Arc::new(crate::shared::build(Arc::new(config)).expect("shared"))
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A session without sockets: the core and the real guard, driven as `relay.rs`
/// drives them, each step written down as a word.
struct Session {
    core: Core,
    guard: Guard,
    now: Instant,
    /// The held message's ticket and bytes.
    held: Option<(Ticket, Vec<u8>)>,
    /// Client bytes not yet framed (they wait while a statement is held).
    pending: Vec<u8>,
    log: Vec<String>,
    /// Bytes the server received, in order (forwarded and injected).
    to_server: Vec<u8>,
}

impl Session {
    fn new(environment: &str) -> Self {
        Self::with(shared(environment, PROBE_RULE))
    }

    fn with(shared: Arc<crate::shared::Shared>) -> Self {
        let target = shared.config.target("db").expect("target").clone();
        let guard = Guard::new(
            shared,
            target,
            "alice".into(),
            "app".into(),
            "psql".into(),
            None,
            1,
        );
        let mut core = Core::new();
        let now = Instant::now();
        // Authentication is over: the server's start-up messages.
        for (tag, body) in [
            (b'S', &b"application_name\0psql\0"[..]),
            (b'K', b"\0\0\0\x07abcd"),
            (b'Z', b"I"),
        ] {
            core.on_server(tag, body, now);
        }
        Session {
            core,
            guard,
            now,
            held: None,
            pending: Vec::new(),
            log: Vec::new(),
            to_server: Vec::new(),
        }
    }

    /// Client bytes arrive; every whole message the core frames is carried out.
    fn client(&mut self, bytes: &[u8]) -> &mut Self {
        self.pending.extend_from_slice(bytes);
        self.pump();
        self
    }

    fn pump(&mut self) {
        while self.core.frames() {
            let f = match frame::next(&self.pending, 1 << 20) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    self.log.push(format!("frame error {e}"));
                    self.core.close();
                    return;
                }
            };
            let (tag, total) = (f.tag(), f.total());
            let msg: Vec<u8> = self.pending.drain(..total).collect();
            if !self.core.on_client(tag) {
                self.log.push(format!("skip {}", char::from(tag)));
                continue;
            }
            let decision = self.guard.decide(tag, &msg[5..], &self.core.state);
            self.decided(decision, msg);
        }
    }

    /// What the driver does with a decision (audit records are written at once).
    fn decided(&mut self, decision: Decision, msg: Vec<u8>) {
        if let Decision::Blast(order) = decision {
            // The blast read talks to the server (relay/blast.rs); here it fails,
            // and the statement is decided without it.
            let d = self.guard.after_blast(order, Some("not read in this test"));
            return self.decided(d, msg);
        }
        let audit = self.guard.take_audit();
        let id = match (&decision, audit) {
            (Decision::Forward(_), Some(_)) => Some(self.guard.statement_id()),
            _ => None,
        };
        self.core.audited(id);
        if let Decision::Probe(_) = decision {
            self.log.push("probe".into());
            self.core.begin_probe();
            // The probe itself talks to the server (relay/probe.rs); here it is
            // only seen to stop framing.
            assert!(!self.core.frames(), "nothing is framed while probing");
            self.core.end_probe();
            return;
        }
        let tag = msg[0];
        match self.core.carry_out(decision, tag, &msg[5..], self.now) {
            Step::Forward(_permit) => {
                self.log.push(format!("fwd {}", char::from(tag)));
                self.to_server.extend_from_slice(&msg);
            }
            Step::ForwardAndEnd(_permit) => {
                self.log.push(format!("end {}", char::from(tag)));
                self.to_server.extend_from_slice(&msg);
            }
            Step::Inject { permit: _, request } => {
                self.log.push(format!(
                    "refuse {} as {}",
                    char::from(tag),
                    char::from(request[0])
                ));
                self.to_server.extend_from_slice(&request);
            }
            Step::Hold { notice, ticket } => {
                self.log.push(format!(
                    "hold {}{}",
                    char::from(tag),
                    if notice.is_empty() { "" } else { " +notice" }
                ));
                self.held = Some((ticket, msg));
            }
            Step::Reject { reply } => {
                assert_eq!(reply.first(), Some(&b'E'));
                self.log.push(format!("reject {}", char::from(tag)));
            }
        }
    }

    /// The held statement's resolution arrives.
    fn resolve(&mut self, r: Resolution) -> &mut Self {
        let (ticket, msg) = self.held.take().expect("a held statement");
        let (hold, waited) = self
            .core
            .hold_ended(self.now + Duration::from_secs(3))
            .expect("held");
        assert_eq!(waited, Duration::from_secs(3));
        assert_eq!(hold.id, ticket.id);
        let decision = self.guard.resolved(&r, ticket.extended);
        self.log.push("resolved".into());
        self.decided(decision, msg);
        self.pump();
        self
    }

    /// The client cancelled its held statement.
    fn cancel(&mut self) -> &mut Self {
        let (ticket, msg) = self.held.take().expect("a held statement");
        self.core.hold_ended(self.now);
        self.guard.withdraw(ticket.id);
        let decision = self.guard.cancelled(ticket.extended);
        self.log.push("cancelled".into());
        self.decided(decision, msg);
        self.pump();
        self
    }

    /// Server messages arrive (tag and body each).
    fn server(&mut self, msgs: &[(u8, &[u8])]) -> &mut Self {
        for (tag, body) in msgs {
            let step = self.core.on_server(*tag, body, self.now);
            if let Some(done) = &step.outcome {
                self.log.push(format!("outcome {:?}", done.statements));
            }
            self.log.push(match step.route {
                Route::Forward => format!("S {}", char::from(*tag)),
                Route::Replace(_) => format!("S {} replaced", char::from(*tag)),
                Route::OutOfSync(_) => format!("S {} out of sync", char::from(*tag)),
            });
        }
        self
    }

    fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    fn expect(&mut self, words: &[&str]) -> &mut Self {
        assert_eq!(self.take(), words, "phase now {:?}", self.core.phase());
        self
    }
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn q(sql: &str) -> Vec<u8> {
    msg(b'Q', &cstr(sql))
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend_from_slice(&cstr(sql));
    b.extend_from_slice(&[0, 0]);
    msg(b'P', &b)
}

fn bind(portal: &str, stmt: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend_from_slice(&cstr(stmt));
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    msg(b'B', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend_from_slice(&[0, 0, 0, 0]);
    msg(b'E', &b)
}

fn describe_portal(portal: &str) -> Vec<u8> {
    let mut b = vec![b'P'];
    b.extend_from_slice(&cstr(portal));
    msg(b'D', &b)
}

fn close_statement(name: &str) -> Vec<u8> {
    let mut b = vec![b'S'];
    b.extend_from_slice(&cstr(name));
    msg(b'C', &b)
}

fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

fn flush() -> Vec<u8> {
    msg(b'H', b"")
}

fn copy_data(d: &[u8]) -> Vec<u8> {
    msg(b'd', d)
}

fn copy_done() -> Vec<u8> {
    msg(b'c', b"")
}

fn terminate() -> Vec<u8> {
    msg(b'X', b"")
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

const ERR: &[u8] = b"SERROR\0C42P01\0Mno such table\0\0";
const Z_IDLE: (u8, &[u8]) = (b'Z', b"I");
const Z_FAILED: (u8, &[u8]) = (b'Z', b"E");
const Z_TX: (u8, &[u8]) = (b'Z', b"T");

fn approved() -> Resolution {
    Resolution::Approved {
        approver: "bob".into(),
    }
}

#[test]
fn simple_queries_and_multi_statement() {
    let mut s = Session::new("production");
    s.client(&q("SELECT 1"))
        .expect(&["fwd Q"])
        .server(&[(b'T', b""), (b'D', b""), (b'C', b"SELECT 1\0"), Z_IDLE])
        .expect(&["S T", "S D", "S C", "S Z"]);
    // Several statements in one Query: one decision, one ReadyForQuery.
    s.client(&q("BEGIN; SELECT 1; COMMIT"))
        .expect(&["fwd Q"])
        .server(&[
            (b'C', b"BEGIN\0"),
            (b'C', b"SELECT 1\0"),
            (b'C', b"COMMIT\0"),
            Z_IDLE,
        ])
        .expect(&["S C", "S C", "S C", "S Z"]);
    assert!(s.core.idle());
}

#[test]
fn a_blocked_simple_query_gets_pgwardens_error_in_the_servers() {
    let mut s = Session::new("production");
    s.client(&q("DELETE FROM orders"))
        .expect(&["refuse Q as Q"])
        .server(&[(b'E', ERR), Z_IDLE])
        .expect(&["S E replaced", "S Z"]);
    // Inside a transaction the server's status after the injected error is E, as
    // for a real error; pgwarden passes it on untouched.
    s.client(&q("BEGIN")).server(&[(b'C', b"BEGIN\0"), Z_TX]);
    s.client(&q("SELECT 1; DELETE FROM orders"))
        .server(&[(b'E', ERR), Z_FAILED])
        .expect(&[
            "fwd Q",
            "S C",
            "S Z",
            "refuse Q as Q",
            "S E replaced",
            "S Z",
        ]);
    // The injected request can run nothing.
    assert!(
        String::from_utf8_lossy(&s.to_server).contains("pgwarden_refused"),
        "the refused statement's place is taken by a syntax error"
    );
    assert!(!String::from_utf8_lossy(&s.to_server).contains("DELETE FROM orders"));
    // Outside production the same statement passes.
    let mut dev = Session::new("development");
    dev.client(&q("DELETE FROM orders")).expect(&["fwd Q"]);
}

#[test]
fn extended_named_and_unnamed() {
    let mut s = Session::new("production");
    let batch = cat(&[
        parse("", "SELECT $1"),
        bind("", ""),
        describe_portal(""),
        execute(""),
        sync(),
    ]);
    s.client(&batch)
        .expect(&["fwd P", "fwd B", "fwd D", "fwd E", "fwd S"])
        .server(&[
            (b'1', b""),
            (b'2', b""),
            (b'T', b""),
            (b'D', b""),
            (b'C', b"SELECT 1\0"),
            Z_IDLE,
        ])
        .expect(&["S 1", "S 2", "S T", "S D", "S C", "S Z"]);
    // A named statement prepared once, executed twice, then closed.
    s.client(&cat(&[parse("s1", "SELECT 1"), sync()]))
        .server(&[(b'1', b""), Z_IDLE])
        .client(&cat(&[
            bind("", "s1"),
            execute(""),
            bind("", "s1"),
            execute(""),
            sync(),
        ]))
        .server(&[
            (b'2', b""),
            (b'C', b"SELECT 1\0"),
            (b'2', b""),
            (b'C', b"SELECT 1\0"),
            Z_IDLE,
        ])
        .client(&cat(&[close_statement("s1"), sync()]))
        .server(&[(b'3', b""), Z_IDLE])
        .expect(&[
            "fwd P", "fwd S", "S 1", "S Z", "fwd B", "fwd E", "fwd B", "fwd E", "fwd S", "S 2",
            "S C", "S 2", "S C", "S Z", "fwd C", "fwd S", "S 3", "S Z",
        ]);
    assert!(s.core.idle() && s.core.replies.is_empty());
}

#[test]
fn a_blocked_parse_skips_the_batch_to_sync() {
    let mut s = Session::new("production");
    s.client(&cat(&[
        parse("", "SELECT 1"),
        bind("", ""),
        execute(""),
        parse("", "DELETE FROM orders"),
        bind("", ""),
        execute(""),
        sync(),
        q("SELECT 2"),
    ]))
    .expect(&[
        "fwd P",
        "fwd B",
        "fwd E",
        "refuse P as P",
        "skip B",
        "skip E",
        "fwd S",
        "fwd Q",
    ])
    .server(&[
        (b'1', b""),
        (b'2', b""),
        (b'C', b"SELECT 1\0"),
        (b'E', ERR),
        Z_IDLE,
    ])
    .expect(&["S 1", "S 2", "S C", "S E replaced", "S Z"])
    .server(&[(b'C', b"SELECT 1\0"), Z_IDLE])
    .expect(&["S C", "S Z"]);
    assert_eq!(s.core.phase(), Phase::Ready);
}

#[test]
fn a_server_error_mid_batch_skips_its_replies_to_sync() {
    let mut s = Session::new("production");
    s.client(&cat(&[
        parse("", "SELECT * FROM missing"),
        bind("", ""),
        execute(""),
        parse("", "SELECT 1"),
        bind("", ""),
        execute(""),
        sync(),
    ]))
    .expect(&[
        "fwd P", "fwd B", "fwd E", "fwd P", "fwd B", "fwd E", "fwd S",
    ])
    // The server skips everything after its error up to the Sync.
    .server(&[(b'E', ERR), Z_IDLE])
    .expect(&["S E", "S Z"]);
    assert!(s.core.replies.is_empty() && s.core.idle());
}

#[test]
fn pipelines_without_sync_and_with_flush() {
    let mut s = Session::new("production");
    // Flush: replies come without a ReadyForQuery; the Sync comes later.
    s.client(&cat(&[parse("a", "SELECT 1"), flush()]))
        .expect(&["fwd P", "fwd H"])
        .server(&[(b'1', b"")])
        .expect(&["S 1"]);
    assert!(!s.core.replies.is_empty() || s.core.state.pending_ready == 0);
    s.client(&cat(&[bind("", "a"), execute(""), flush()]))
        .server(&[(b'2', b""), (b'C', b"SELECT 1\0")])
        .client(&sync())
        .server(&[Z_IDLE])
        .expect(&["fwd B", "fwd E", "fwd H", "S 2", "S C", "fwd S", "S Z"]);
    // Several segments in one pipeline, each ended by its own Sync.
    s.client(&cat(&[
        parse("", "SELECT 1"),
        bind("", ""),
        execute(""),
        sync(),
        parse("", "DROP TABLE t"),
        bind("", ""),
        execute(""),
        sync(),
    ]))
    .expect(&["fwd P", "fwd B", "fwd E", "fwd S", "hold P +notice"]);
    // Held in the middle of the pipeline: the rest waits unframed.
    assert!(s.core.holding() && !s.pending.is_empty());
    s.server(&[(b'1', b""), (b'2', b""), (b'C', b"SELECT 1\0"), Z_IDLE])
        .expect(&["S 1", "S 2", "S C", "S Z"]);
    assert!(!s.core.idle(), "a held statement is not idle");
    s.resolve(Resolution::Denied {
        approver: "bob".into(),
        reason: None,
    })
    .expect(&["resolved", "refuse P as P", "skip B", "skip E", "fwd S"])
    .server(&[(b'E', ERR), Z_IDLE])
    .expect(&["S E replaced", "S Z"]);
}

#[test]
fn copy_in_and_out_inside_pipelines() {
    let mut s = Session::new("production");
    // Extended COPY IN the way libpq sends it: a Sync right after the Execute.
    s.client(&cat(&[
        parse("", "COPY t FROM STDIN"),
        bind("", ""),
        execute(""),
        sync(),
    ]))
    .expect(&["fwd P", "fwd B", "fwd E", "fwd S"])
    .server(&[(b'1', b""), (b'2', b""), (b'G', b"\0\0\0")])
    .expect(&["S 1", "S 2", "S G"]);
    // The server ignores that Sync: none is owed for it, nor for those sent during
    // the copy.
    assert_eq!(s.core.state.pending_ready, 0);
    s.client(&cat(&[
        copy_data(b"1\n"),
        sync(),
        copy_data(b"2\n"),
        copy_done(),
        sync(),
    ]))
    .expect(&["fwd d", "fwd S", "fwd d", "fwd c", "fwd S"])
    .server(&[(b'C', b"COPY 2\0"), Z_IDLE])
    .expect(&["S C", "S Z"]);
    assert!(s.core.idle() && s.core.replies.is_empty());
    // Simple-protocol COPY IN.
    s.client(&q("COPY t FROM STDIN"))
        .server(&[(b'G', b"\0\0\0")])
        .client(&cat(&[copy_data(b"3\n"), copy_done()]))
        .server(&[(b'C', b"COPY 1\0"), Z_IDLE])
        .expect(&["fwd Q", "S G", "fwd d", "fwd c", "S C", "S Z"]);
    // COPY OUT inside a pipeline, followed by another segment.
    s.client(&cat(&[
        parse("", "COPY t TO STDOUT"),
        bind("", ""),
        execute(""),
        sync(),
        q("SELECT 1"),
    ]))
    .server(&[
        (b'1', b""),
        (b'2', b""),
        (b'H', b"\0\0\0"),
        (b'd', b"1\n"),
        (b'c', b""),
        (b'C', b"COPY 1\0"),
        Z_IDLE,
        (b'C', b"SELECT 1\0"),
        Z_IDLE,
    ])
    .expect(&[
        "fwd P", "fwd B", "fwd E", "fwd S", "fwd Q", "S 1", "S 2", "S H", "S d", "S c", "S C",
        "S Z", "S C", "S Z",
    ]);
    assert!(s.core.idle());
    // COPY ... FROM PROGRAM is blocked in production.
    s.client(&q("COPY t FROM PROGRAM 'id'"))
        .expect(&["refuse Q as Q"]);
}

#[test]
fn hold_then_approve_runs_it_and_what_waited_behind_it() {
    let mut s = Session::new("production");
    s.client(&cat(&[q("DROP VIEW orders_view"), q("SELECT 1")]))
        .expect(&["hold Q +notice"]);
    assert!(matches!(s.core.phase(), Phase::Holding(h) if h.tag == b'Q' && !h.extended));
    // More input while held stays unframed.
    s.client(&sync()).expect(&[]);
    s.resolve(approved())
        .expect(&["resolved", "fwd Q", "fwd Q", "fwd S"]);
    assert_eq!(s.core.phase(), Phase::Ready);
    assert!(String::from_utf8_lossy(&s.to_server).contains("DROP VIEW orders_view"));
}

#[test]
fn hold_then_deny_expire_or_shutdown_refuses() {
    for r in [
        Resolution::Denied {
            approver: "bob".into(),
            reason: Some("not now".into()),
        },
        Resolution::Expired,
        Resolution::Shutdown,
        Resolution::Withdrawn {
            reason: "gone".into(),
        },
    ] {
        let mut s = Session::new("production");
        s.client(&q("DROP VIEW orders_view"))
            .expect(&["hold Q +notice"]);
        s.resolve(r)
            .expect(&["resolved", "refuse Q as Q"])
            .server(&[(b'E', ERR), Z_IDLE])
            .expect(&["S E replaced", "S Z"]);
        assert!(!String::from_utf8_lossy(&s.to_server).contains("DROP VIEW"));
    }
}

#[test]
fn cancel_while_held_refuses_in_the_extended_protocol_too() {
    let mut s = Session::new("production");
    s.client(&cat(&[
        parse("", "DROP TABLE t"),
        bind("", ""),
        execute(""),
        sync(),
    ]))
    .expect(&["hold P +notice"]);
    s.cancel()
        .expect(&["cancelled", "refuse P as P", "skip B", "skip E", "fwd S"])
        .server(&[(b'E', ERR), Z_IDLE])
        .expect(&["S E replaced", "S Z"]);
    assert!(!String::from_utf8_lossy(&s.to_server).contains("DROP TABLE"));
}

#[test]
fn disconnect_while_held_forwards_nothing() {
    let mut s = Session::new("production");
    s.client(&q("DROP VIEW orders_view"))
        .expect(&["hold Q +notice"]);
    let (ticket, _) = s.held.take().expect("held");
    // The driver's path when the client goes away: the core closes, the guard
    // withdraws the hold.
    s.core.close();
    s.guard.withdraw(ticket.id);
    assert!(!s.core.frames());
    s.client(&q("SELECT 1")).expect(&[]);
    assert!(s.to_server.is_empty());
}

#[test]
fn drain_waits_for_idle() {
    let mut s = Session::new("production");
    assert!(s.core.idle());
    s.client(&q("SELECT pg_sleep(1)"));
    assert!(!s.core.idle(), "a statement in flight");
    s.server(&[(b'C', b"SELECT 1\0"), Z_IDLE]);
    assert!(s.core.idle());
    s.client(&q("BEGIN")).server(&[(b'C', b"BEGIN\0"), Z_TX]);
    assert!(s.core.idle(), "idle in a transaction is idle for the drain");
}

#[test]
fn terminate_and_unknown_messages_end_the_session() {
    let mut s = Session::new("production");
    s.client(&terminate()).expect(&["end X"]);
    assert_eq!(s.core.phase(), Phase::Closed);
    let mut s = Session::new("production");
    s.client(&msg(b'#', b"")).expect(&["reject #"]);
    assert_eq!(s.core.phase(), Phase::Closed);
}

#[test]
fn a_reply_nothing_accounts_for_closes_the_session() {
    let mut s = Session::new("production");
    s.server(&[
        (b'N', b"SNOTICE\0\0"),
        (b'A', b""),
        (b'S', b"TimeZone\0UTC\0"),
    ])
    .expect(&["S N", "S A", "S S"]);
    s.server(&[(b'C', b"DELETE 1\0")])
        .expect(&["S C out of sync"]);
    assert_eq!(s.core.phase(), Phase::Closed);
    assert!(!s.core.frames());
    let mut s = Session::new("production");
    s.server(&[Z_IDLE]).expect(&["S Z out of sync"]);
}

#[test]
fn probe_within_and_over_limits_is_the_drivers_phase() {
    let mut s = Session::new("production");
    // A bounded DELETE under a measured rule: the guard asks for a probe; the core
    // stops framing while it runs.
    s.client(&cat(&[q("DELETE FROM orders WHERE id = 1"), q("SELECT 1")]))
        .expect(&["probe", "fwd Q"]);
    assert_eq!(s.core.phase(), Phase::Ready);
    // The statement ran under the probe and stays: its replies are the answer to
    // the client's Query.
    s.core.probed_delivered(s.now);
    assert_eq!(s.core.state.pending_ready, 2);
    // Outside production nothing is measured.
    let mut dev = Session::new("development");
    dev.client(&q("DELETE FROM orders WHERE id = 1"))
        .expect(&["fwd Q"]);
}

#[test]
fn application_name_reaches_the_state() {
    let mut s = Session::new("production");
    s.server(&[(b'S', b"application_name\0batch\0")]);
    assert_eq!(s.core.state.application_name.as_deref(), Some("batch"));
    assert_eq!(s.core.state.backend_key, Some((7, b"abcd".to_vec())));
}

/// A recorded session: client bytes, and the server's reply bytes after each
/// client message batch.
fn recorded() -> (Vec<u8>, Vec<u8>) {
    let client = cat(&[
        q("SELECT 1"),
        parse("s", "SELECT $1"),
        bind("", "s"),
        execute(""),
        sync(),
        q("DELETE FROM orders"),
        parse("", "DELETE FROM orders"),
        bind("", ""),
        execute(""),
        sync(),
        q("COPY t FROM STDIN"),
        copy_data(b"1\n"),
        copy_done(),
        terminate(),
    ]);
    let server = cat(&[
        msg(b'T', b""),
        msg(b'D', b""),
        msg(b'C', b"SELECT 1\0"),
        msg(b'Z', b"I"),
        msg(b'1', b""),
        msg(b'2', b""),
        msg(b'C', b"SELECT 1\0"),
        msg(b'Z', b"I"),
        msg(b'E', ERR),
        msg(b'Z', b"I"),
        msg(b'E', ERR),
        msg(b'Z', b"I"),
        msg(b'G', b"\0\0\0"),
        msg(b'C', b"COPY 1\0"),
        msg(b'Z', b"I"),
    ]);
    (client, server)
}

/// Feeds both streams in chunks of `n` bytes, client first, framing as the driver
/// does; returns the steps.
fn chunked(
    client: &[u8],
    server: &[u8],
    n: usize,
    shared: &Arc<crate::shared::Shared>,
) -> Vec<String> {
    let mut s = Session::with(Arc::clone(shared));
    for c in client.chunks(n) {
        s.client(c);
    }
    let mut sbuf = Vec::new();
    for c in server.chunks(n) {
        sbuf.extend_from_slice(c);
        while let Ok(Some(f)) = frame::next(&sbuf, 1 << 20) {
            let (tag, total) = (f.tag(), f.total());
            let m: Vec<u8> = sbuf.drain(..total).collect();
            s.server(&[(tag, &m[5..])]);
        }
    }
    s.log
        .push(format!("{} bytes to the server", s.to_server.len()));
    s.take()
}

#[test]
fn every_chunk_size_gives_the_same_steps() {
    let shared = shared("production", PROBE_RULE);
    let (client, server) = recorded();
    let whole = chunked(&client, &server, client.len().max(server.len()), &shared);
    assert!(whole.contains(&"refuse P as P".to_string()), "{whole:?}");
    assert!(whole.contains(&"end X".to_string()), "{whole:?}");
    assert!(
        !whole.iter().any(|w| w.contains("out of sync")),
        "{whole:?}"
    );
    for n in 1..client.len().max(server.len()) {
        assert_eq!(
            chunked(&client, &server, n, &shared),
            whole,
            "chunks of {n} bytes"
        );
    }
}
