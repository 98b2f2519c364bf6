//! The checks behind the fuzz targets in `fuzz/` (cargo-fuzz): each takes arbitrary
//! bytes, must not panic or allocate without bound, and asserts its part's own
//! invariant. They live in the crate so that `cargo test` runs them too, over a
//! fixed pseudo-random corpus (the tests below), without a nightly toolchain.

use bytes::BytesMut;

use crate::protocol::{backend, frame, frontend, startup};
use crate::session::replies::{Replies, Request, Route};
use crate::session::state::SessionState;

const MAX: usize = 64 * 1024;

/// The framer: every message it hands out lies inside the buffer and under the cap,
/// and framing the same bytes split into chunks of any size (as reads deliver them)
/// gives the same messages and the same error.
pub fn framer(data: &[u8]) {
    let (whole, end) = frame_all(data);
    for chunk in [1, 2, 3, 5, 7, 64, 4096] {
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut err = None;
        'feed: for piece in data.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match frame::split_next(&mut buf, MAX) {
                    Ok(Some(m)) => got.push((m.tag(), m.body().to_vec())),
                    Ok(None) => break,
                    Err(e) => {
                        err = Some(e);
                        break 'feed;
                    }
                }
            }
        }
        assert_eq!(got, whole, "chunks of {chunk}");
        assert_eq!(err.is_some(), end.is_some(), "chunks of {chunk}");
    }
    if let Ok(Some((h, part))) = frame::partial(data, MAX, 100) {
        assert!(h.total <= MAX + 1 && part.len() <= 100 && 5 + part.len() <= data.len());
    }
}

fn frame_all(data: &[u8]) -> (Vec<(u8, Vec<u8>)>, Option<frame::FrameError>) {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        match frame::next(rest, MAX) {
            Ok(Some(f)) => {
                assert!(f.total() <= rest.len() && f.total() <= MAX + 1);
                out.push((f.tag(), f.body().to_vec()));
                rest = &rest[f.total()..];
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The startup parser: any packet parses or is an error; a startup message it
/// accepts encodes back to one that parses to the same parameters.
pub fn startup(data: &[u8]) {
    let _ = frame::startup_len(data);
    match startup::parse(data) {
        Ok(startup::StartupPacket::Startup(m)) => {
            let again = startup::parse(&m.encode_v3_0());
            let Ok(startup::StartupPacket::Startup(back)) = again else {
                panic!("re-encoded startup message does not parse: {again:?}");
            };
            let kept: Vec<_> = m
                .params
                .iter()
                .filter(|(k, _)| !k.starts_with("_pq_."))
                .collect();
            assert_eq!(back.params.iter().collect::<Vec<_>>(), kept);
        }
        Ok(startup::StartupPacket::Cancel { key, .. }) => {
            assert!(!key.is_empty() && key.len() <= 256)
        }
        _ => {}
    }
}

/// The message views: each reads any body without panicking, and what it returns
/// lies inside the body.
pub fn messages(data: &[u8]) {
    let inside = |s: &[u8]| {
        let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
        let p = s.as_ptr() as usize;
        assert!(s.is_empty() || (p >= start && p + s.len() <= end));
    };
    if let Some(q) = frontend::query(data) {
        inside(q);
    }
    if let Some(p) = frontend::parse(data) {
        inside(p.name);
    }
    if let Some((portal, stmt)) = frontend::bind_names(data) {
        inside(portal);
        inside(stmt);
    }
    if let Some((portal, _)) = frontend::execute(data) {
        inside(portal);
    }
    if let Some((_, name)) = frontend::target(data) {
        inside(name);
    }
    let _ = frontend::function_oid(data);
    let _ = backend::auth(data);
    let _ = backend::ready_status(data);
    let _ = backend::parameter_status(data);
    if let Some((_, key)) = backend::backend_key(data) {
        inside(key);
    }
    let _ = backend::fields(data);
    let _ = backend::sqlstate(data);
}

const CLIENT_TAGS: &[u8] = b"QPBDECSHFdcf";
const SERVER_TAGS: &[u8] = b"123tTnDCIsZEN ASKGHWdcV";

/// The session's reply bookkeeping fed an arbitrary interleaving of forwarded client
/// requests and server messages: it never panics, a message it routes is one it
/// expected or one sent at any time, and once it reports the server out of sync the
/// session ends (nothing further is fed).
pub fn replies(data: &[u8]) {
    let mut replies = Replies::default();
    let mut state = SessionState::default();
    let mut pushed = 1usize;
    for pair in data.chunks(2) {
        let (op, arg) = (pair[0], pair.get(1).copied().unwrap_or(0));
        if op & 1 == 0 {
            let tag = CLIENT_TAGS[usize::from(arg) % CLIENT_TAGS.len()];
            state.observe_client(tag);
            match Request::of(tag) {
                Some(r) if op & 2 == 0 => replies.push(r),
                Some(r) => replies.push_substitute(r, b"refused".to_vec()),
                None if tag == frontend::COPY_DONE => replies.push_copy_end(),
                None => continue,
            }
            pushed += 1;
        } else {
            let tag = SERVER_TAGS[usize::from(arg) % SERVER_TAGS.len()];
            let body: &[u8] = match tag {
                b'Z' => b"I",
                b'E' => b"SERROR\0C42P01\0\0",
                b'C' => b"SELECT 1\0",
                b'S' => b"application_name\0x\0",
                _ => b"",
            };
            state.observe_server(tag, body);
            if tag == b'G' {
                let _ = replies.copy_in_started();
            }
            if matches!(tag, b'C' | b'E' | b'Z') {
                let _ = replies.outcome(tag, body);
            }
            match replies.on_server(tag) {
                Route::Forward | Route::Replace(_) => {}
                Route::OutOfSync(e) => {
                    assert!(!matches!(tag, b'N' | b'A' | b'S'), "{e}");
                    return;
                }
            }
        }
        assert!(replies.len() <= pushed);
    }
}

/// The proxy's configuration for the session target: one production target under
/// the built-in policy plus a measured rule, so blocks, holds, tokens and probes all
/// occur.
fn session_shared() -> std::sync::Arc<crate::shared::Shared> {
    use std::sync::{Arc, OnceLock};
    static CONFIG: OnceLock<Arc<crate::config::Config>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let toml = r#"
[server]
listen = "127.0.0.1:0"

[targets.db]
host = "127.0.0.1"
port = 1
environment = "production"
"#;
        Arc::new(crate::config::Config::from_toml_str(toml, "fuzz.toml").expect("fuzz config"))
    });
    // Built per input: holds and tokens of one input never pile up across inputs.
    Arc::new(crate::shared::build(Arc::clone(config)).expect("fuzz shared state"))
}

/// Statements the session target sends most of the time (arbitrary bytes otherwise),
/// so that every kind of decision is reached.
const SESSION_SQL: &[&str] = &[
    "SELECT 1",
    "BEGIN",
    "COMMIT",
    "DELETE FROM t",
    "DELETE FROM t WHERE id = $1",
    "DROP TABLE t",
    "COPY t FROM STDIN",
    "COPY t TO PROGRAM 'x'",
    "PREPARE p AS DELETE FROM t",
    "EXECUTE p",
    "SET ROLE x",
    "SELECT (",
    "/* pgwarden:confirm=abc */ SELECT (",
];

/// The session core with the real guard, fed an arbitrary sequence of client
/// messages, server messages and hold resolutions: it never panics, keeps its
/// queues bounded by what it was sent, frames nothing while a statement is held or
/// after the session ended, and forwards a client message only on a `Forward`
/// decision of the guard, with exactly the client's bytes (asserted here).
pub fn session(data: &[u8]) {
    use crate::hold::Resolution;
    use crate::session::core::{Core, Phase, Step, REFUSED_SQL};
    use crate::session::guard::{Decision, Guard, ProbeResult};

    let shared = session_shared();
    let Some(target) = shared.config.target("db").cloned() else {
        return;
    };
    let mut guard = Guard::new(
        std::sync::Arc::clone(&shared),
        target,
        "fuzz".into(),
        "app".into(),
        "psql".into(),
        None,
        1,
    );
    let mut core = Core::new();
    let start = std::time::Instant::now();
    let mut held: Option<(crate::session::guard::Ticket, Vec<u8>)> = None;
    let mut pending: Vec<u8> = Vec::new();
    let (mut requests, mut names) = (1usize, 0usize);
    let mut i = 0usize;
    let mut clock = 0u64;

    // Carries out one decision on the whole client message `m`.
    let carry = |core: &mut Core,
                 guard: &mut Guard,
                 held: &mut Option<(crate::session::guard::Ticket, Vec<u8>)>,
                 decision: Decision,
                 m: Vec<u8>,
                 now: std::time::Instant|
     -> usize {
        let decision = match decision {
            Decision::Probe(order) => guard.after_probe(order, ProbeResult::NotRun("fuzz".into())),
            Decision::Lookup(order) => guard.after_lookup(*order, None),
            Decision::Blast(order) => guard.after_blast(order, Some("fuzz")),
            d => d,
        };
        let _ = guard.take_audit();
        let allowed = matches!(decision, Decision::Forward(_));
        let refused = matches!(
            decision,
            Decision::Refuse(_)
                | Decision::Probe(_)
                | Decision::Trash(_)
                | Decision::Lookup(_)
                | Decision::Blast(_)
        );
        let tag = m[0];
        match core.carry_out(decision, tag, &m[5..], now) {
            Step::Forward(_) | Step::ForwardAndEnd(_) => {
                assert!(allowed, "forwarded without an allow decision");
                // A CopyDone/CopyFail may mark the end of an extended COPY IN.
                usize::from(
                    crate::session::replies::Request::of(tag).is_some()
                        || matches!(tag, frontend::COPY_DONE | frontend::COPY_FAIL),
                )
            }
            Step::Inject { request, .. } => {
                assert!(refused, "a request injected without a refusal");
                assert!(request.windows(REFUSED_SQL.len()).any(|w| w == REFUSED_SQL));
                1
            }
            Step::Hold { ticket, .. } => {
                assert!(matches!(core.phase(), Phase::Holding(_)));
                *held = Some((ticket, m));
                0
            }
            Step::Reject { reply } => {
                assert_eq!(reply.first(), Some(&backend::ERROR_RESPONSE));
                assert_eq!(core.phase(), Phase::Closed);
                0
            }
        }
    };

    while i + 1 < data.len() && core.phase() != Phase::Closed {
        let (op, arg) = (data[i], data[i + 1]);
        i += 2;
        let len = usize::from(arg % 48).min(data.len() - i);
        let raw = &data[i..i + len];
        i += len;
        clock += u64::from(arg);
        let now = start + std::time::Duration::from_millis(clock);
        match op % 8 {
            0..=3 => {
                // A client message, framed as the driver frames it.
                let tag = CLIENT_TAGS[usize::from(op >> 3) % CLIENT_TAGS.len()];
                let body: Vec<u8> = match tag {
                    frontend::QUERY if arg & 1 == 0 => {
                        let mut b = SESSION_SQL[usize::from(arg >> 1) % SESSION_SQL.len()]
                            .as_bytes()
                            .to_vec();
                        b.push(0);
                        b
                    }
                    frontend::PARSE if arg & 1 == 0 => {
                        let mut b = vec![b's', 0];
                        b.extend_from_slice(
                            SESSION_SQL[usize::from(arg >> 1) % SESSION_SQL.len()].as_bytes(),
                        );
                        b.extend_from_slice(&[0, 0, 0]);
                        b
                    }
                    _ => raw.to_vec(),
                };
                pending.push(tag);
                pending.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
                pending.extend_from_slice(&body);
                if matches!(tag, frontend::PARSE | frontend::BIND) {
                    names += 1;
                }
            }
            4 | 5 => {
                let tag = SERVER_TAGS[usize::from(op >> 3) % SERVER_TAGS.len()];
                let body: &[u8] = match (tag, arg & 1) {
                    (b'Z', 0) => b"I",
                    (b'Z', _) => b"T",
                    (b'E', 0) => b"SERROR\0C42P01\0\0",
                    (b'C', 0) => b"DELETE 1\0",
                    (b'K', 0) => b"\0\0\0\x01abcd",
                    _ => raw,
                };
                let step = core.on_server(tag, body, now);
                if let Some(done) = step.outcome {
                    guard.record_outcome(done);
                }
                if let crate::session::replies::Route::OutOfSync(_) = step.route {
                    assert_eq!(core.phase(), Phase::Closed);
                }
            }
            6 => {
                // The held statement's wait ends.
                if let Some((ticket, m)) = held.take() {
                    assert!(core.hold_ended(now).is_some());
                    let decision = match arg % 5 {
                        0 => {
                            guard.withdraw(ticket.id);
                            guard.cancelled(ticket.extended)
                        }
                        1 => guard.resolved(
                            &Resolution::Approved {
                                approver: "a".into(),
                            },
                            ticket.extended,
                        ),
                        2 => guard.resolved(
                            &Resolution::Denied {
                                approver: "a".into(),
                                reason: None,
                            },
                            ticket.extended,
                        ),
                        3 => guard.resolved(&Resolution::Expired, ticket.extended),
                        _ => guard.resolved(
                            &Resolution::Withdrawn { reason: "x".into() },
                            ticket.extended,
                        ),
                    };
                    requests += carry(&mut core, &mut guard, &mut held, decision, m, now);
                }
            }
            _ => {}
        }
        // Frame and carry out what the core frames now.
        while core.frames() {
            let (tag, total) = match frame::next(&pending, MAX) {
                Ok(Some(f)) => (f.tag(), f.total()),
                _ => break,
            };
            let m: Vec<u8> = pending.drain(..total).collect();
            if !core.on_client(tag) {
                continue;
            }
            let decision = guard.decide(tag, &m[5..], &core.state);
            requests += carry(&mut core, &mut guard, &mut held, decision, m, now);
        }
        if core.holding() {
            assert!(held.is_some(), "held without a ticket");
        }
        assert!(
            core.replies.len() <= requests,
            "the reply queue outgrew the requests"
        );
        assert!(
            core.audit.tracked() <= names,
            "tracked names outgrew those sent"
        );
        assert!(core.audit.segment.len() <= requests);
    }
    if let Some((ticket, _)) = held {
        guard.withdraw(ticket.id);
    }
}

/// The literal scanner (`classify::literals`): any text gives a shape or none without
/// panicking; a shape is its text, a NUL and one kind per literal, the text has a
/// parameter for each, and a shape's text has no shape of its own (it holds
/// parameters, which the scanner never takes for literals).
pub fn literals(data: &[u8]) {
    use crate::classify::literals::{shape_into, Shape};
    use crate::classify::SessionFacts;
    let text = String::from_utf8_lossy(data);
    let facts = SessionFacts::default();
    let mut shape = Shape::default();
    if !shape_into(&text, &facts, &mut shape) {
        assert!(shape.key().is_empty());
        return;
    }
    let (body, kinds) = shape.key().split_once('\0').expect("a NUL after the text");
    assert_eq!(body, shape.text());
    assert!(!body.contains('\0'));
    assert!(!kinds.is_empty() && kinds.chars().all(|k| "idse".contains(k)));
    for n in 1..=kinds.len() {
        assert!(body.contains(&format!("${n}")), "{body}");
    }
    let again = shape.text().to_string();
    assert!(!shape_into(&again, &facts, &mut shape), "{again}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift): the same inputs on every run.
    fn inputs(seed: u64, count: usize, max_len: usize) -> Vec<Vec<u8>> {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..count)
            .map(|_| {
                let len = (next() as usize) % max_len;
                (0..len).map(|_| next() as u8).collect()
            })
            .collect()
    }

    /// Well-formed messages with random bodies, so the framer sees whole messages too.
    fn messages_of(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for b in bodies {
            out.push(b.first().copied().unwrap_or(b'Q'));
            out.extend_from_slice(&((b.len() + 4) as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
        out
    }

    #[test]
    fn framer_on_random_and_well_formed_input() {
        for input in inputs(1, 300, 64) {
            framer(&input);
        }
        let bodies = inputs(2, 40, 300);
        let stream = messages_of(&bodies);
        framer(&stream);
        assert_eq!(frame_all(&stream).0.len(), bodies.len());
    }

    #[test]
    fn startup_on_random_input() {
        for mut input in inputs(3, 500, 80) {
            startup(&input);
            // With a plausible length word and protocol 3.0.
            let len = (input.len() + 8) as i32;
            let mut p = len.to_be_bytes().to_vec();
            p.extend_from_slice(&startup::PROTOCOL_3_0.to_be_bytes());
            p.append(&mut input);
            startup(&p);
        }
    }

    #[test]
    fn message_views_on_random_input() {
        for input in inputs(4, 2000, 40) {
            messages(&input);
        }
    }

    #[test]
    fn replies_on_random_interleavings() {
        for input in inputs(5, 3000, 200) {
            replies(&input);
        }
    }

    #[test]
    fn literals_on_random_sql_like_input() {
        const ALPHABET: &[u8] = b"''''\"\"$$--//**\\\n eEuU&xX01239.+_;:abc";
        for input in inputs(7, 20_000, 40) {
            literals(&input);
            let sqlish: Vec<u8> = input
                .iter()
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()])
                .collect();
            literals(&sqlish);
            let mut prefixed = b"SELECT 1, ".to_vec();
            prefixed.extend_from_slice(&sqlish);
            literals(&prefixed);
        }
    }

    #[test]
    fn literals_regressions() {
        // Found by cargo-fuzz (session 9): a NUL inside a comment made the shape's
        // key ("text NUL kinds") split in the wrong place.
        literals(&[11, 51, 45, 45, 175, 101, 0, 0, 0, 93, 0, 0]);
        literals(b"SELECT 1 -- \0 2");
    }

    #[test]
    fn session_on_random_interleavings() {
        for input in inputs(6, 100, 300) {
            session(&input);
        }
    }
}
