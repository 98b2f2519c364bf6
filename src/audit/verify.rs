//! `pgwarden audit verify`: checks the hash chain of one or more audit files and
//! reports the first broken line.
//!
//! Each line must end with a newline, carry a hash that matches its own bytes (see
//! [`super::chain`]), a `prev` equal to the previous line's hash, and `seq` one more
//! than the previous line's. The first line of a chain has `prev` = 64 zeros and
//! `seq` 1. A file whose first line continues an earlier chain (a rotated file, or
//! a file whose head was removed) is accepted and reported as such; several files
//! given in order are checked as one chain.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::chain::{hash_body, is_hash, unseal, GENESIS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked, over all files.
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Hash of the last record (64 zeros when there are none).
    pub last_hash: String,
    /// The first record continues an earlier chain: its `prev`. `None` when the
    /// records start at the genesis (or there are none).
    pub continues_from: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    /// `line` counts from 1 within `path`.
    #[error("{path}:{line}: broken: {reason}")]
    Broken {
        path: String,
        line: u64,
        reason: String,
    },
}

/// Checks one file.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, VerifyError> {
    verify_files(&[path])
}

/// Checks files in order as one chain (e.g. `audit.jsonl.2 audit.jsonl.1 audit.jsonl`).
pub fn verify_files<P: AsRef<Path>>(paths: &[P]) -> Result<VerifyReport, VerifyError> {
    let mut v = Verifier::new();
    for p in paths {
        let p = p.as_ref();
        let name = p.display().to_string();
        let f = File::open(p).map_err(|source| VerifyError::Io {
            path: name.clone(),
            source,
        })?;
        v.check(BufReader::with_capacity(256 * 1024, f), &name)?;
    }
    Ok(v.report())
}

/// Checks lines from any reader; `name` is used in errors.
pub fn verify_reader(r: impl BufRead, name: &str) -> Result<VerifyReport, VerifyError> {
    let mut v = Verifier::new();
    v.check(r, name)?;
    Ok(v.report())
}

struct Verifier {
    records: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    last_hash: String,
    continues_from: Option<String>,
}

impl Verifier {
    fn new() -> Verifier {
        Verifier {
            records: 0,
            first_seq: None,
            last_seq: None,
            last_hash: GENESIS.to_string(),
            continues_from: None,
        }
    }

    fn report(self) -> VerifyReport {
        VerifyReport {
            records: self.records,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            last_hash: self.last_hash,
            continues_from: self.continues_from,
        }
    }

    fn check(&mut self, mut r: impl BufRead, name: &str) -> Result<(), VerifyError> {
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let n = r
                .read_until(b'\n', &mut buf)
                .map_err(|source| VerifyError::Io {
                    path: name.to_string(),
                    source,
                })?;
            if n == 0 {
                return Ok(());
            }
            line_no += 1;
            let broken = |reason: String| VerifyError::Broken {
                path: name.to_string(),
                line: line_no,
                reason,
            };
            if buf.last() != Some(&b'\n') {
                return Err(broken(
                    "the last line is incomplete (no newline at its end): truncated".into(),
                ));
            }
            buf.pop();
            self.line(&buf).map_err(broken)?;
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<(), String> {
        if line.is_empty() {
            return Err("empty line".into());
        }
        let value: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| format!("not a JSON record ({e})"))?;
        let obj = value.as_object().ok_or("not a JSON object")?;
        let (body, hash) = unseal(line).ok_or("the line does not end with its \"hash\" member")?;
        let seq = obj
            .get("seq")
            .and_then(|s| s.as_u64())
            .ok_or("no \"seq\" number")?;
        let prev = obj
            .get("prev")
            .and_then(|p| p.as_str())
            .filter(|p| is_hash(p))
            .ok_or("no \"prev\" hash")?;
        if obj.get("hash").and_then(|h| h.as_str()) != Some(hash) {
            return Err("more than one \"hash\" member".into());
        }
        if hash_body(prev, &body) != hash {
            return Err("hash mismatch: the record was changed after it was written".into());
        }
        match self.last_seq {
            None => {
                if prev == GENESIS {
                    if seq != 1 {
                        return Err(format!(
                            "the first record of a chain must have seq 1, not {seq}"
                        ));
                    }
                } else {
                    self.continues_from = Some(prev.to_string());
                }
                self.first_seq = Some(seq);
            }
            Some(last) => {
                if seq <= last {
                    return Err(format!(
                        "seq {seq} after {last}: a record was inserted, repeated or moved here"
                    ));
                }
                if seq != last + 1 {
                    let missing = if seq == last + 2 {
                        format!("record {} is", last + 1)
                    } else {
                        format!("records {}..{} are", last + 1, seq - 1)
                    };
                    return Err(format!(
                        "seq {seq} after {last}: {missing} missing (removed, or lines reordered)"
                    ));
                }
                if prev != self.last_hash {
                    return Err(
                        "prev does not match the previous record's hash: a record before this one was replaced, or this one was inserted"
                            .into(),
                    );
                }
            }
        }
        self.records += 1;
        self.last_seq = Some(seq);
        self.last_hash = hash.to_string();
        Ok(())
    }
}
