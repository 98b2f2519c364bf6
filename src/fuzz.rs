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
}
