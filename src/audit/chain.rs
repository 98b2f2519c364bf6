//! The hash chain: how a line is sealed and how its hash is checked.
//!
//! A line is `BODY` with the member `,"hash":"H"` inserted before its closing brace,
//! where `BODY` is the compact JSON object `{"seq":…,…,"prev":P}` exactly as written,
//! `P` is the previous line's hash (64 zeros for the first record) and
//! `H = lowercase hex SHA-256(P as 64 ASCII hex digits ‖ BODY as UTF-8 bytes)`.
//! Hashing the bytes as written (not a re-serialisation) means a verifier needs no
//! JSON canonicaliser and any changed byte is detected.

use sha2::{Digest, Sha256};

use super::event::{Event, Unsealed};

/// `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where the chain stands: the last written record's `seq` (0 before the first) and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    pub seq: u64,
    pub hash: String,
}

impl ChainState {
    pub fn genesis() -> ChainState {
        ChainState {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// `,"hash":"` + 64 hex + `"}`.
const SUFFIX_LEN: usize = 9 + 64 + 2;

/// The hash of `body` (the line without its hash member) after `prev`.
pub fn hash_body(prev: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// Appends the sealed line (with its newline) for `event` as record `seq` after
/// `prev`, and returns its hash.
pub fn seal(
    out: &mut Vec<u8>,
    seq: u64,
    ts: &str,
    event: &Event,
    prev: &str,
) -> Result<String, serde_json::Error> {
    let start = out.len();
    let unsealed = Unsealed {
        seq,
        ts,
        event,
        prev,
    };
    if let Err(e) = serde_json::to_writer(&mut *out, &unsealed) {
        out.truncate(start);
        return Err(e);
    }
    let hash = hash_body(prev, &out[start..]);
    // The body always ends with the object's closing brace.
    out.pop();
    out.extend_from_slice(b",\"hash\":\"");
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"\"}\n");
    Ok(hash)
}

/// Splits a line (without newline) into its hash and the body that was hashed
/// (the line with `,"hash":"…"` removed). `None` when the line does not end with a
/// well-formed hash member.
pub fn unseal(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    if line.len() < SUFFIX_LEN + 2 {
        return None;
    }
    let cut = line.len() - SUFFIX_LEN;
    let suffix = &line[cut..];
    if !suffix.starts_with(b",\"hash\":\"") || !suffix.ends_with(b"\"}") {
        return None;
    }
    let hex = &suffix[9..9 + 64];
    if !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let hash = std::str::from_utf8(hex).ok()?;
    let mut body = Vec::with_capacity(cut + 1);
    body.extend_from_slice(&line[..cut]);
    body.push(b'}');
    Some((body, hash))
}

/// True for 64 lowercase hex digits.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::Expire;

    #[test]
    fn seal_then_unseal_round_trips() {
        let ev = Event::Expire(Expire {
            hold_id: 3,
            session: 1,
            statement_id: 2,
        });
        let mut out = Vec::new();
        let h = seal(&mut out, 1, "2025-01-01T00:00:00Z", &ev, GENESIS).expect("seal");
        assert_eq!(*out.last().expect("newline"), b'\n');
        let line = &out[..out.len() - 1];
        let text = std::str::from_utf8(line).expect("utf8");
        assert!(text.starts_with(r#"{"seq":1,"ts":"2025-01-01T00:00:00Z","event":"expire","#));
        assert!(text.ends_with(&format!(r#""prev":"{GENESIS}","hash":"{h}"}}"#)));
        let (body, hash) = unseal(line).expect("unseal");
        assert_eq!(hash, h);
        assert_eq!(hash_body(GENESIS, &body), h);
        // The documented recipe: the body is the line without the hash member.
        let expected_body = text.replace(&format!(r#","hash":"{h}""#), "");
        assert_eq!(body, expected_body.as_bytes());
    }
}
