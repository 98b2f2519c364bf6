//! When a changed policy file may be reloaded: only once its writer has finished
//! (closed the file, or renamed or linked a new version into place) and nothing has
//! touched it for a settle period; each distinct content is tried once.
//!
//! Why: an editor or `cat > policy.toml` rewrites the file in place, and a reload in
//! the middle of that would make a truncated file (say, `[defaults]` and no rules)
//! the policy in force. Opens and reads are ignored, including pgwarden's own, which
//! would otherwise trigger the next reload attempt.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use tracing::{debug, warn};

use crate::shared::Shared;

/// How long the directory must stay quiet before the file is read.
pub const SETTLE: Duration = Duration::from_millis(300);

/// What one file-system event says about the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Nothing that changes the file (an open or a read, another file).
    Ignore,
    /// Its content is being written: wait for the writer to close it.
    Writing,
    /// A version may be complete: closed after writing, renamed, linked or removed.
    Changed,
}

/// Classifies an event in the watched directory. `file_name` is the policy file's
/// name; names starting with `..` are Kubernetes' ConfigMap versions and the `..data`
/// symlink swapped between them.
pub fn signal(kind: &EventKind, paths: &[PathBuf], file_name: &OsStr) -> Signal {
    let ours = paths.iter().any(|p| p.file_name() == Some(file_name));
    let configmap = paths.iter().any(|p| {
        p.file_name()
            .and_then(OsStr::to_str)
            .is_some_and(|n| n.starts_with(".."))
    });
    if !ours && !configmap {
        return Signal::Ignore;
    }
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Signal::Changed,
        EventKind::Access(_) => Signal::Ignore,
        // chmod, touch: the content is the same.
        EventKind::Modify(ModifyKind::Metadata(_)) => Signal::Ignore,
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) if ours => Signal::Writing,
        _ => Signal::Changed,
    }
}

/// Folds the signals of a burst: is a writer still busy with the file?
#[derive(Debug, Default, Clone, Copy)]
pub struct Burst {
    pub changed: bool,
    pub writing: bool,
}

impl Burst {
    pub fn note(&mut self, s: Signal) {
        match s {
            Signal::Ignore => {}
            Signal::Writing => {
                self.changed = true;
                self.writing = true;
            }
            Signal::Changed => {
                self.changed = true;
                self.writing = false;
            }
        }
    }
}

/// Starts watching `path`'s directory; reloads through `reload` (which gets the
/// bytes that were read, so the policy applied is exactly the stable content).
pub fn watch(
    path: PathBuf,
    shared: Arc<Shared>,
    reload: fn(&Shared, &str, &Path, &[u8]),
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name()?.to_os_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Signal>();
    let callback = move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            let s = signal(&ev.kind, &ev.paths, &file_name);
            if s != Signal::Ignore {
                let _ = tx.send(s);
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(callback) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "cannot watch the policy file; reload with SIGHUP or POST /reload");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        warn!(error = %e, dir = %dir.display(), "cannot watch the policy directory; reload with SIGHUP or POST /reload");
        return None;
    }
    tokio::spawn(async move {
        // The content last tried (the policy in force at start): a broken version is
        // reported once, not on every later event.
        let mut last_tried = shared.policy().sha256().to_string();
        while let Some(first) = rx.recv().await {
            let mut burst = Burst::default();
            burst.note(first);
            loop {
                let next = if burst.writing {
                    // A writer has the file open: however long it pauses, what is
                    // there now is not a finished policy.
                    rx.recv().await
                } else {
                    match tokio::time::timeout(SETTLE, rx.recv()).await {
                        Ok(s) => s,
                        Err(_) => break,
                    }
                };
                match next {
                    Some(s) => burst.note(s),
                    None => return,
                }
            }
            let Ok(text) = std::fs::read(&path) else {
                debug!(path = %path.display(), "policy file not readable after a change");
                continue;
            };
            let sha = {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(&text))
            };
            if sha == last_tried {
                continue;
            }
            last_tried = sha;
            if last_tried != shared.policy().sha256() {
                reload(&shared, "file", &path, &text);
            }
        }
    });
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};

    fn sig(kind: EventKind, name: &str) -> Signal {
        signal(
            &kind,
            &[PathBuf::from("/etc/pgwarden").join(name)],
            OsStr::new("policy.toml"),
        )
    }

    #[test]
    fn signals() {
        use Signal::*;
        let cases: [(&str, EventKind, &str, Signal); 11] = [
            (
                "our own read",
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "policy.toml",
                Ignore,
            ),
            (
                "closed after reading",
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                "policy.toml",
                Ignore,
            ),
            (
                "written in place",
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                "policy.toml",
                Writing,
            ),
            (
                "closed after writing",
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "policy.toml",
                Changed,
            ),
            (
                "renamed into place",
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                "policy.toml",
                Changed,
            ),
            (
                "created (symlink)",
                EventKind::Create(CreateKind::Any),
                "policy.toml",
                Changed,
            ),
            (
                "removed",
                EventKind::Remove(RemoveKind::File),
                "policy.toml",
                Changed,
            ),
            (
                "chmod",
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                "policy.toml",
                Ignore,
            ),
            (
                "ConfigMap swap",
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                "..data",
                Changed,
            ),
            (
                "audit log next to it",
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                "audit.jsonl",
                Ignore,
            ),
            (
                "another file closed",
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "policy.toml.swp",
                Ignore,
            ),
        ];
        for (name, kind, file, want) in cases {
            assert_eq!(sig(kind, file), want, "{name}");
        }
    }

    #[test]
    fn a_burst_ends_only_when_the_writer_has_closed_the_file() {
        let mut b = Burst::default();
        assert!(!b.changed);
        b.note(Signal::Writing);
        assert!(b.changed && b.writing);
        b.note(Signal::Ignore);
        assert!(b.writing);
        b.note(Signal::Changed);
        assert!(b.changed && !b.writing);
        b.note(Signal::Writing);
        assert!(b.writing);
    }
}
