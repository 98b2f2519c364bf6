//! Where parse trees are decoded and walked: a small, fixed pool of threads with
//! large stacks. pg_query's protobuf decode, the generic tree, the walk and dropping
//! the trees each recurse once per nesting level, and a statement may nest as deep as
//! PostgreSQL's own parser allows (its C code stops itself at a fixed stack budget),
//! far deeper than a session thread's stack holds. prost's recursion limit (100
//! levels, which made ~50 nested `||` unreadable) is therefore off, and the depth
//! is bounded by the parser's own check plus [`MAX_TREE_DEPTH`] in `parse`.

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

    #[test]
    fn runs_on_the_pool_and_inline_when_nested() {
        assert_eq!(run(|| 1 + 1), Some(2));
        assert_eq!(run(|| run(|| 3)), Some(Some(3)));
        assert_eq!(run(|| -> u8 { panic!("caught") }), None);
        assert_eq!(run(|| 4), Some(4), "the pool survives a panic");
    }
}
