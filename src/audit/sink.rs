//! Where sealed lines go: an append-only file (reopened on request or when the path
//! no longer names the open file) or stdout. The writer thread drives a [`Sink`].
//! A file's writer holds an advisory lock (flock) on it while open: each writer
//! keeps its own hash chain, so two in one file would break it. An exclusive sink
//! (`pgwarden trash`'s) refuses a file whose lock another writer holds.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::chain::{is_hash, ChainState};

/// Destination of the writer thread's batches. Implemented by [`FileSink`] and
/// [`StdoutSink`]; tests and benches may supply their own.
pub trait Sink: Send + 'static {
    /// Makes sure the sink is open and current (reopening it if asked to, or after
    /// a failure, or when the file was moved away). When it (re)opens a file that
    /// already holds records, returns the chain state of its last record: the
    /// writer continues from there.
    fn prepare(&mut self) -> io::Result<Option<ChainState>>;
    /// Writes one batch of complete lines.
    fn write(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes what was written durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
    /// After a failed `write` or `sync`: removes what part of the batch reached
    /// the sink, where possible, and closes it so the next `prepare` reopens it.
    fn abandon(&mut self);
    /// Reopen at the next `prepare` (SIGUSR1, logrotate).
    fn reopen(&mut self);
}

/// Largest tail read when looking for the last line (a line holds one statement).
const MAX_TAIL: u64 = 256 * 1024 * 1024;
const CHUNK: u64 = 64 * 1024;

/// An append-only audit file. The directory must exist; the file is created with
/// mode 0600.
pub struct FileSink {
    path: PathBuf,
    file: Option<File>,
    /// (device, inode) of the open file.
    id: Option<(u64, u64)>,
    reopen: bool,
    /// File length before the current batch, to cut a partly written batch.
    len_before: Option<u64>,
    /// Refuse the file when another writer holds its lock (else: a warning).
    exclusive: bool,
}

/// Why an exclusive sink refuses a file.
pub const IN_USE: &str =
    "another process is writing this file (a running pgwarden holds its lock); \
     give this command an audit file of its own: two writers in one file break its hash chain";

impl FileSink {
    pub fn new(path: impl Into<PathBuf>) -> FileSink {
        FileSink {
            path: path.into(),
            file: None,
            id: None,
            reopen: false,
            len_before: None,
            exclusive: false,
        }
    }

    /// A sink that refuses a file another writer holds the lock of ([`IN_USE`]).
    pub fn exclusive(path: impl Into<PathBuf>) -> FileSink {
        FileSink {
            exclusive: true,
            ..FileSink::new(path)
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&mut self) -> io::Result<Option<ChainState>> {
        self.file = None;
        self.id = None;
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&self.path)?;
        match try_lock(&file) {
            Ok(true) => {}
            Ok(false) if self.exclusive => {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, IN_USE));
            }
            Ok(false) => tracing::warn!(
                path = %self.path.display(),
                "another process holds the audit log's lock: two writers in one file break its hash chain"
            ),
            Err(e) if self.exclusive => return Err(e),
            Err(e) => tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "cannot lock the audit log; a second writer of this file would not be seen"
            ),
        }
        let state = continue_from(&mut file, &self.path)?;
        self.id = file_id(&file.metadata()?);
        self.file = Some(file);
        Ok(state)
    }

    /// True when the path no longer names the open file (renamed, removed, replaced).
    fn moved(&self) -> io::Result<bool> {
        let Some(id) = self.id else {
            return Ok(false);
        };
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(file_id(&m) != Some(id)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// Takes the file's advisory lock without waiting: false when another open file
/// (another process, or another sink) holds it. Released when the file is closed.
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> io::Result<bool> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "file locks are not supported on this system",
    ))
}

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

impl Sink for FileSink {
    fn prepare(&mut self) -> io::Result<Option<ChainState>> {
        let mut state = None;
        if self.file.is_none() || self.reopen {
            self.reopen = false;
            state = self.open()?;
        } else if self.moved()? {
            tracing::warn!(
                path = %self.path.display(),
                "audit log file was moved or removed; writing to a new file at its path"
            );
            state = self.open()?;
        }
        let len = match &self.file {
            Some(f) => f.metadata()?.len(),
            None => return Err(io::Error::other("audit log file is not open")),
        };
        self.len_before = Some(len);
        Ok(state)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(buf),
            None => Err(io::Error::other("audit log file is not open")),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Err(io::Error::other("audit log file is not open")),
        }
    }

    fn abandon(&mut self) {
        if let (Some(f), Some(len)) = (&self.file, self.len_before) {
            if let Err(e) = f.set_len(len) {
                tracing::warn!(
                    path = %self.path.display(),
                    error = %e,
                    "could not cut a partly written audit batch; the writer continues after it"
                );
            }
        }
        self.file = None;
        self.id = None;
        self.len_before = None;
    }

    fn reopen(&mut self) {
        self.reopen = true;
    }
}

/// Writes to standard output (for log collection). No fsync: a line is "durable"
/// once it is written to the stdout pipe or file. Each process run starts a new chain.
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn prepare(&mut self) -> io::Result<Option<ChainState>> {
        Ok(None)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(buf)?;
        out.flush()
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn abandon(&mut self) {}

    fn reopen(&mut self) {}
}

/// Reads the end of an audit file: cuts a torn last line (no newline: a write that
/// never completed, so never acknowledged as durable) and returns the chain state of
/// the last complete line, or `None` for an empty file. A last line that is not a
/// record is an error: continuing would hide it.
fn continue_from(file: &mut File, path: &Path) -> io::Result<Option<ChainState>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let n = CHUNK.min(pos);
        pos -= n;
        let mut chunk = vec![0u8; n as usize];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        if len - pos > MAX_TAIL {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the last line is longer than {MAX_TAIL} bytes; not an audit log?",
                    path.display()
                ),
            ));
        }
        // End of the last complete line (just past its newline).
        let complete_end = match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if pos == 0 => 0,
            None => continue,
        };
        let start = match buf[..complete_end.saturating_sub(1)]
            .iter()
            .rposition(|&b| b == b'\n')
        {
            Some(j) => j + 1,
            None if pos == 0 => 0,
            None => continue,
        };
        if complete_end < buf.len() {
            let torn_at = pos + complete_end as u64;
            tracing::warn!(
                path = %path.display(),
                bytes = len - torn_at,
                torn = %String::from_utf8_lossy(&buf[complete_end..buf.len().min(complete_end + 200)]),
                "audit log ends with an incomplete line (interrupted write); removing it"
            );
            file.set_len(torn_at)?;
            file.sync_data()?;
        }
        if complete_end == 0 {
            return Ok(None);
        }
        let line = &buf[start..complete_end - 1];
        return parse_state(line).map(Some).map_err(|why| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the last line is not an audit record ({why}); run `pgwarden audit verify` and move the file aside",
                    path.display()
                ),
            )
        });
    }
}

fn parse_state(line: &[u8]) -> Result<ChainState, String> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let seq = v.get("seq").and_then(|s| s.as_u64()).ok_or("no seq")?;
    let hash = v
        .get("hash")
        .and_then(|h| h.as_str())
        .filter(|h| is_hash(h))
        .ok_or("no hash")?;
    Ok(ChainState {
        seq,
        hash: hash.to_string(),
    })
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn an_exclusive_sink_refuses_a_file_another_writer_holds() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let mut proxy = FileSink::new(&path);
        proxy.prepare().expect("the first writer opens it");
        let mut cli = FileSink::exclusive(&path);
        let e = cli.prepare().expect_err("held by the first writer");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(e.to_string(), IN_USE);
        // A second non-exclusive writer only warns (the proxy's behaviour).
        FileSink::new(&path).prepare().expect("warns, opens");
        // Reopening (logrotate) lets go of the old file's lock before taking the new one.
        proxy.reopen();
        proxy.prepare().expect("reopened");
        drop(proxy);
        cli.prepare()
            .expect("free once the first writer has closed it");
        let other = dir.path().join("cli.jsonl");
        FileSink::exclusive(&other)
            .prepare()
            .expect("a file of its own");
    }
}
