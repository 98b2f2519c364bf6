//! `ProbePlan`: the exact SQL pgwarden sends around a probed statement.
//!
//! Inside a client transaction (status `T` in ReadyForQuery):
//! 1. [`ProbePlan::open`]: `SAVEPOINT pgwarden_probe_N`, one row of the settings the
//!    probe changes (to restore them), the counts before, `SET LOCAL` timeouts;
//! 2. the client's statement, unchanged;
//! 3. [`ProbePlan::measure`]: the counts after, with a row estimate per table;
//! 4. within limits: [`ProbePlan::keep`] (RELEASE, then the timeouts back, because
//!    RELEASE keeps a subtransaction's `SET LOCAL`); over limits or unknown:
//!    [`ProbePlan::undo`] (`ROLLBACK TO` undoes the rows and the `SET LOCAL`s, then
//!    RELEASE drops the savepoint).
//!
//! Outside a transaction (status `I`) the same steps run inside `BEGIN` … `COMMIT`
//! (keep) or `ROLLBACK` (undo); nothing needs restoring.
//!
//! A client's savepoint with the same name cannot be confused with pgwarden's:
//! savepoints stack, `ROLLBACK TO`/`RELEASE` name the innermost one of that name, and
//! pgwarden's is always innermost while the probe runs (a DML statement cannot open
//! or close savepoints). The prefix and a per-session counter keep the names apart
//! for readers of the server log.
//!
//! The trash uses the same scope for its own statements: the proxy with
//! [`ProbePlan::open_timed`] (the timeouts, no counts) and `keep`, the `pgwarden
//! trash` commands with [`ProbePlan::begin`] and [`ProbePlan::release`] (no
//! settings changed).
//!
//! A probe is not started in a failed transaction (status `E`): the statement would
//! fail there anyway, so it is forwarded as the server would see it.

use std::time::Duration;

use crate::protocol::sqlstate::SqlState;

/// Every savepoint pgwarden creates starts with this.
pub const PROBE_SAVEPOINT_PREFIX: &str = "pgwarden_probe_";

/// The probe's own limits (configurable; small defaults so a probe never waits long
/// on production).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    /// `statement_timeout` for the probed statement.
    pub statement_timeout: Duration,
    /// `lock_timeout` for the probed statement.
    pub lock_timeout: Duration,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_millis(500),
        }
    }
}

/// The client's values of the settings the probe overrides, read by [`ProbePlan::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSettings {
    pub statement_timeout: String,
    pub lock_timeout: String,
}

impl SavedSettings {
    /// Parses the first row of `open`'s settings result: statement_timeout,
    /// lock_timeout. `None` when a value is missing or is not a plain duration
    /// (digits, letters, spaces, dots): pgwarden never splices other text into SQL.
    pub fn from_row(row: &[Option<&str>]) -> Option<SavedSettings> {
        let value = |i: usize| -> Option<String> {
            let v = (*row.get(i)?)?;
            let plain = !v.is_empty()
                && v.len() <= 32
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'.');
            plain.then(|| v.to_string())
        };
        Some(SavedSettings {
            statement_timeout: value(0)?,
            lock_timeout: value(1)?,
        })
    }
}

/// The SQL texts of one probe. Each text is one simple-protocol Query message
/// (several statements where noted); the session core sends them and consumes the
/// replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    savepoint: String,
    in_transaction: bool,
    settings: ProbeSettings,
}

/// The client's values of the settings the probe changes (and `track_counts`).
const SETTINGS: &str = "SELECT pg_catalog.current_setting('statement_timeout'), \
     pg_catalog.current_setting('lock_timeout'), \
     pg_catalog.current_setting('track_counts')";

/// The tables whose rows count (those of `pg_stat_xact_user_tables`: tables,
/// materialized views and partitioned tables outside `pg_catalog` and
/// `information_schema`; TOAST tables have their own relkind) with this
/// transaction's counts so far. Read from `pg_class` and the counting functions
/// directly: the views aggregate over every index of the database and cost about
/// three times as much per probe on the server.
const COUNTED: &str = "FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     CROSS JOIN LATERAL (SELECT \
       pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid) AS ins, \
       pg_catalog.pg_stat_get_xact_tuples_updated(c.oid) AS upd, \
       pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid) AS del) x \
     WHERE c.relkind IN ('r', 'm', 'p') \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND x.ins + x.upd + x.del > 0";

impl ProbePlan {
    /// A plan for the `seq`-th probe of a session; `in_transaction` is true when the
    /// client's last ReadyForQuery said `T`.
    pub fn new(seq: u64, in_transaction: bool, settings: ProbeSettings) -> ProbePlan {
        ProbePlan {
            savepoint: format!("{PROBE_SAVEPOINT_PREFIX}{seq}"),
            in_transaction,
            settings,
        }
    }

    /// The same plan for a session inside a transaction (`in_transaction`) or not.
    pub fn with_transaction(&self, in_transaction: bool) -> ProbePlan {
        ProbePlan {
            in_transaction,
            ..self.clone()
        }
    }

    /// The savepoint's name (inside a transaction).
    pub fn savepoint(&self) -> &str {
        &self.savepoint
    }

    /// The probe's `statement_timeout`.
    pub fn statement_timeout(&self) -> Duration {
        self.settings.statement_timeout
    }

    /// The probe's `lock_timeout`.
    pub fn lock_timeout(&self) -> Duration {
        self.settings.lock_timeout
    }

    /// Whether an error after `waited` is one of pgwarden's own timeouts. A cancel
    /// sooner than the statement_timeout came from a cancel request (the client's,
    /// or pg_cancel_backend), and a lock error sooner than the lock_timeout from
    /// NOWAIT: those are the statement's own errors, for the client as directly.
    pub fn own_timeout(&self, sqlstate: &str, waited: Duration) -> bool {
        (sqlstate == SqlState::QUERY_CANCELED.as_str() && waited >= self.statement_timeout())
            || (sqlstate == SqlState::LOCK_NOT_AVAILABLE.as_str() && waited >= self.lock_timeout())
    }

    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// `SAVEPOINT` (inside a transaction) or `BEGIN`: the scope of pgwarden's steps,
    /// with no settings changed. Reply: the command.
    pub fn begin(&self) -> String {
        if self.in_transaction {
            format!("SAVEPOINT {}", self.savepoint)
        } else {
            "BEGIN".to_string()
        }
    }

    /// Before the statement. Replies: the savepoint/BEGIN command, a one-row result
    /// (statement_timeout, lock_timeout, track_counts), the counts before
    /// ([`Snapshot::from_rows`]), then two SETs.
    pub fn open(&self) -> String {
        format!(
            "{}; {SETTINGS}; {}; {}",
            self.begin(),
            self.counts(),
            self.timeouts()
        )
    }

    /// [`ProbePlan::open`] without the counts, for pgwarden's own statements (the
    /// trash). Replies: the savepoint/BEGIN command, the one-row settings result,
    /// then two SETs.
    pub fn open_timed(&self) -> String {
        format!("{}; {SETTINGS}; {}", self.begin(), self.timeouts())
    }

    /// The counts so far, alone (before each measured statement of a message of
    /// several, `session/relay/multi.rs`). Reply: rows for [`Snapshot::from_rows`].
    pub fn counts(&self) -> String {
        format!("SELECT c.oid::int8, x.ins, x.upd, x.del {COUNTED}")
    }

    fn timeouts(&self) -> String {
        format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
            millis(self.settings.statement_timeout),
            millis(self.settings.lock_timeout),
        )
    }

    /// After the statement: the counts so far with each table's name and a current
    /// row estimate (the larger of the statistics' live rows and `reltuples`; both
    /// describe the table before this transaction). Reply: rows for
    /// [`Measured::from_rows`].
    pub fn measure(&self) -> String {
        format!(
            "SELECT c.oid::int8, n.nspname::text, c.relname::text, x.ins, x.upd, x.del, \
             GREATEST(pg_catalog.pg_stat_get_live_tuples(c.oid), c.reltuples::int8, 0) \
             {COUNTED} ORDER BY 2, 3"
        )
    }

    /// Ends the scope and lets its effect stand, changing no setting: `RELEASE`
    /// inside a transaction (a `SET LOCAL` made inside it stays), `COMMIT` outside.
    pub fn release(&self) -> String {
        if self.in_transaction {
            format!("RELEASE SAVEPOINT {}", self.savepoint)
        } else {
            "COMMIT".to_string()
        }
    }

    /// Let the statement's effect stand. Inside a transaction this restores the
    /// client's timeouts (`saved`, from `open`); outside it commits.
    pub fn keep(&self, saved: &SavedSettings) -> String {
        if self.in_transaction {
            format!(
                "{}; \
                 SELECT pg_catalog.set_config('statement_timeout', '{}', true), \
                 pg_catalog.set_config('lock_timeout', '{}', true)",
                self.release(),
                saved.statement_timeout,
                saved.lock_timeout
            )
        } else {
            self.release()
        }
    }

    /// Undo the statement (over the limits, unknown impact, or the probe failed).
    /// Valid also after the statement failed: the savepoint (or transaction) is
    /// still there to roll back to.
    pub fn undo(&self) -> String {
        if self.in_transaction {
            format!(
                "ROLLBACK TO SAVEPOINT {sp}; RELEASE SAVEPOINT {sp}",
                sp = self.savepoint
            )
        } else {
            "ROLLBACK".to_string()
        }
    }
}

/// A duration as an integer number of milliseconds (at least 1: 0 would mean "no
/// timeout" to PostgreSQL).
fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(in_tx: bool) -> ProbePlan {
        ProbePlan::new(7, in_tx, ProbeSettings::default())
    }

    #[test]
    fn only_errors_after_the_own_timeouts_are_pgwardens() {
        let p = plan(false); // 5 s statement_timeout, 500 ms lock_timeout
        let ms = Duration::from_millis;
        for (code, waited, own) in [
            ("57014", ms(5000), true),  // pgwarden's statement_timeout
            ("57014", ms(1200), false), // a cancel request, the client's to see
            ("55P03", ms(500), true),   // pgwarden's lock_timeout
            ("55P03", ms(3), false),    // NOWAIT
            ("23505", ms(9000), false), // any other error is the statement's own
        ] {
            assert_eq!(p.own_timeout(code, waited), own, "{code} after {waited:?}");
        }
    }

    #[test]
    fn inside_a_transaction_uses_a_prefixed_savepoint() {
        let p = plan(true);
        assert_eq!(p.savepoint(), "pgwarden_probe_7");
        assert!(p.open().starts_with("SAVEPOINT pgwarden_probe_7; SELECT"));
        assert!(p
            .open()
            .ends_with("SET LOCAL statement_timeout = 5000; SET LOCAL lock_timeout = 500"));
        assert_eq!(
            p.undo(),
            "ROLLBACK TO SAVEPOINT pgwarden_probe_7; RELEASE SAVEPOINT pgwarden_probe_7"
        );
        let saved = SavedSettings {
            statement_timeout: "0".into(),
            lock_timeout: "1min".into(),
        };
        let keep = p.keep(&saved);
        assert!(keep.starts_with("RELEASE SAVEPOINT pgwarden_probe_7; SELECT"));
        assert!(keep.contains("set_config('statement_timeout', '0', true)"));
        assert!(keep.contains("set_config('lock_timeout', '1min', true)"));
    }

    #[test]
    fn the_bare_scope_changes_no_setting() {
        let p = plan(true);
        assert_eq!(p.begin(), "SAVEPOINT pgwarden_probe_7");
        assert_eq!(p.release(), "RELEASE SAVEPOINT pgwarden_probe_7");
        let timed = p.open_timed();
        assert!(timed.starts_with("SAVEPOINT pgwarden_probe_7; SELECT"));
        assert!(!timed.contains("pg_stat_get_xact_tuples"));
        assert!(timed.ends_with("SET LOCAL lock_timeout = 500"));
        let p = plan(false);
        assert_eq!(
            (p.begin().as_str(), p.release().as_str()),
            ("BEGIN", "COMMIT")
        );
    }

    #[test]
    fn outside_a_transaction_opens_and_ends_one() {
        let p = plan(false);
        assert!(p.open().starts_with("BEGIN; SELECT"));
        assert_eq!(p.undo(), "ROLLBACK");
        let saved = SavedSettings {
            statement_timeout: "0".into(),
            lock_timeout: "0".into(),
        };
        assert_eq!(p.keep(&saved), "COMMIT");
    }

    #[test]
    fn a_zero_timeout_is_never_sent() {
        let p = ProbePlan::new(
            1,
            false,
            ProbeSettings {
                statement_timeout: Duration::ZERO,
                lock_timeout: Duration::from_micros(10),
            },
        );
        assert!(p.open().contains("statement_timeout = 1;"));
        assert!(p.open().ends_with("lock_timeout = 1"));
    }

    #[test]
    fn saved_settings_accept_only_plain_values() {
        let ok = SavedSettings::from_row(&[Some("30s"), Some("0"), Some("on")]);
        assert_eq!(
            ok,
            Some(SavedSettings {
                statement_timeout: "30s".into(),
                lock_timeout: "0".into()
            })
        );
        for bad in [
            vec![Some("1s'; DROP TABLE t; --"), Some("0")],
            vec![Some("0"), None],
            vec![Some("")],
            vec![],
        ] {
            assert_eq!(SavedSettings::from_row(&bad), None, "{bad:?}");
        }
    }
}
