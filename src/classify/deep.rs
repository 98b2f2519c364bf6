//! Where parse trees are decoded and walked: a small, fixed pool of threads with
//! large stacks. pg_query's protobuf decode, the generic tree, the walk and dropping
//! the trees each recurse once per nesting level, and a statement may nest as deep as
//! PostgreSQL's own parser allows (its C code stops itself at a fixed stack budget),
//! far deeper than a session thread's stack holds. prost's recursion limit (100
//! levels, which made ~50 nested `||` unreadable) is therefore off, and the depth
//! is bounded by the parser's own check plus [`MAX_TREE_DEPTH`] in `parse`.
//!
//! Handing a statement to the pool costs two thread wake-ups, more than parsing a
//! typical OLTP statement. A short text of at most [`INLINE_TOKENS`] tokens cannot
//! nest deep enough to matter (each nesting level takes at least one token), so it
//! is read on the calling thread ([`read`]); other texts go to the pool.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// Stack of each pool thread. Reserved address space; only the pages a deep
/// statement touches are ever committed.
pub const STACK_BYTES: usize = 256 << 20;
/// Pool threads: classification is CPU-bound and sessions wait for it anyway, so a
/// pool about the size of the machine keeps the stacks' memory bounded.
const THREADS: usize = 2;

/// Longest text read on the calling thread.
pub const INLINE_BYTES: usize = 256;
/// Most tokens (words, numbers, and each operator or bracket character) in a text
/// read on the calling thread. A tree nests at most one level per token, and in a
/// debug build a level of `1+1+…` takes about 25 KiB of stack, so 24 levels stay
/// within 1 MiB (tested below on 1, 2 and 8 MiB stacks), which every thread that
/// classifies (a tokio worker or blocking thread, a test thread: 2 MiB; the main
/// thread: 8 MiB) has left. pgbench's statements and typical single-row OLTP
/// statements have 10-20.
pub const INLINE_TOKENS: usize = 24;

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    static ON_POOL: Cell<bool> = const { Cell::new(false) };
}

fn pool() -> Option<&'static mpsc::Sender<Job>> {
    static POOL: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..THREADS {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("pgwarden-parse-{i}"))
                .stack_size(STACK_BYTES)
                .spawn(move || {
                    ON_POOL.with(|p| p.set(true));
                    loop {
                        // A poisoned lock only means another pool thread panicked
                        // while taking a job; the receiver itself is intact.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        (started > 0).then_some(tx)
    })
    .as_ref()
}

/// Runs `f(text)`: on the calling thread when [`inline`] accepts `text` (or already
/// on a pool thread), on a pool thread otherwise. `None` when `f`
/// panicked or no pool thread could be started; callers treat `None` as "could not
/// read", never as harmless.
pub fn read<R: Send + 'static>(
    text: &str,
    f: impl FnOnce(&str) -> R + Send + 'static,
) -> Option<R> {
    if inline(text) {
        return catch_unwind(AssertUnwindSafe(|| f(text))).ok();
    }
    let owned = text.to_string();
    run(move || f(&owned))
}

/// Whether `text` is read on the calling thread.
pub fn inline(text: &str) -> bool {
    (text.len() <= INLINE_BYTES && tokens(text) <= INLINE_TOKENS) || ON_POOL.with(|p| p.get())
}

/// Words and numbers (runs of letters, digits, `_`, `$`, `.`, quotes and non-ASCII
/// bytes) plus every other byte but spaces, commas and semicolons (which separate,
/// never nest): at least the tree's depth.
fn tokens(text: &str) -> usize {
    let mut n = 0;
    let mut in_word = false;
    for b in text.bytes() {
        let word = b.is_ascii_alphanumeric()
            || matches!(b, b'_' | b'$' | b'.' | b'\'' | b'"')
            || b >= 0x80;
        if word {
            n += usize::from(!in_word);
        } else if !b.is_ascii_whitespace() && !matches!(b, b',' | b';') {
            n += 1;
        }
        in_word = word;
    }
    n
}

/// Runs `f` on the calling thread, with a panic caught (`None`). Only for texts
/// [`inline`] accepts.
pub fn here<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Runs `f` on a pool thread (inline when already on one) and returns its result;
/// `None` when `f` panicked or no pool thread could be started. Callers treat `None`
/// as "could not read", never as harmless.
pub fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    if ON_POOL.with(|p| p.get()) {
        return catch_unwind(AssertUnwindSafe(f)).ok();
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)).ok());
    });
    pool()?.send(job).ok()?;
    rx.recv().ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stack the inline path may use at most (see [`INLINE_BYTES`]).
    const INLINE_STACK_BUDGET: usize = 1 << 20;

    #[test]
    fn runs_on_the_pool_and_inline_when_nested() {
        assert_eq!(run(|| 1 + 1), Some(2));
        assert_eq!(run(|| run(|| 3)), Some(Some(3)));
        assert_eq!(run(|| -> u8 { panic!("caught") }), None);
        assert_eq!(run(|| 4), Some(4), "the pool survives a panic");
    }

    /// The deepest trees a text of [`INLINE_BYTES`] can hold, classified and read
    /// for a key shape on threads with [`INLINE_STACK_BUDGET`], 2 MiB (a tokio
    /// worker's) and 8 MiB (the main thread's) of stack: they must not overflow it.
    /// (The parser accepts deeper text on a larger stack, so each size is tried. An
    /// overflow aborts the test binary, which fails the run.)
    #[test]
    fn the_deepest_short_texts_fit_the_inline_stack_budget() {
        // `head`, nested `open`s around `unit`s, `end`, the matching `close`s: as
        // many as [`inline`] accepts.
        fn fill(head: &str, open: &str, close: &str, unit: &str, end: &str) -> String {
            let mut best = format!("{head}{end}");
            for opens in 0..=INLINE_TOKENS {
                for units in 0..=INLINE_TOKENS {
                    if (open.is_empty() && opens > 0) || (unit.is_empty() && units > 0) {
                        continue;
                    }
                    let t = format!(
                        "{head}{}{}{end}{}",
                        open.repeat(opens),
                        unit.repeat(units),
                        close.repeat(opens)
                    );
                    if inline(&t) && tokens(&t) >= tokens(&best) {
                        best = t;
                    }
                }
            }
            best
        }
        let mut texts = Vec::new();
        for (open, close) in [
            ("", ""),
            ("f(", ")"),
            ("(-", ")"),
            ("ARRAY[", "]"),
            ("row(", ")"),
            ("(SELECT ", ")"),
            ("a[", "]"),
        ] {
            for (unit, end) in [
                ("", "1"),
                ("- ", "1"),
                ("~", "1"),
                ("1+", "1"),
                ("a||", "a"),
                ("NOT ", "true"),
                ("::int", ""),
            ] {
                texts.push(fill("SELECT ", open, close, unit, end));
                texts.push(fill("DELETE FROM t WHERE id = ", open, close, unit, end));
            }
        }
        texts.push(format!("SELECT 1{}", "+1".repeat(INLINE_TOKENS / 2 - 1)));
        texts.push(format!("SELECT {}1", "- ".repeat(INLINE_TOKENS - 2)));
        for t in &texts {
            assert!(inline(t), "{t}");
        }
        // pgbench's TPC-B-like statements are read inline.
        for t in [
            "UPDATE pgbench_accounts SET abalance = abalance + -4999 WHERE aid = 9999999;",
            "SELECT abalance FROM pgbench_accounts WHERE aid = 9999999;",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
             VALUES (99, 9, 9999999, -4999, CURRENT_TIMESTAMP);",
        ] {
            assert!(inline(t), "{} tokens: {t}", tokens(t));
        }
        for stack in [INLINE_STACK_BUDGET, 2 << 20, 8 << 20] {
            let texts = texts.clone();
            let worker = std::thread::Builder::new()
                .stack_size(stack)
                .spawn(move || {
                    let facts = crate::classify::SessionFacts::default();
                    for t in &texts {
                        let stmts = crate::classify::classify(t, &facts);
                        assert!(!stmts.is_empty(), "{t}");
                        let _ = crate::catalog::key_shape(t);
                    }
                })
                .expect("thread");
            assert!(worker.join().is_ok(), "stack {stack}");
        }
    }
}
