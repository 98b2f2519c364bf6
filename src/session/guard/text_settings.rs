//! Settings that change how SQL text reads, in flight: from the moment pgwarden lets
//! one through (`SET client_encoding`/`NAMES` to an unsafe encoding,
//! `standard_conforming_strings`, `set_config` of those, a write to `pg_settings` or
//! another catalog) until the server has answered it, the session's facts are not
//! known, so the statements pipelined after it are read as `unreadable`. A switch
//! between two safe encodings counts too: the server reads each later message in
//! the new encoding, and pgwarden would read it in the old one (the same quotes and
//! boundaries, but other names) until ParameterStatus tells it.

use crate::classify::{Class, Statement};
use crate::protocol::frontend;

/// Classes whose statement may change how the session's later text reads.
const CHANGES_TEXT: &[Class] = &[
    Class::SessionEncoding,
    Class::SessionStringLiterals,
    Class::SystemCatalog,
];

/// Whether statements change how later text reads.
pub fn changes_text(stmts: &[Statement]) -> bool {
    stmts.iter().any(|s| {
        s.classes.iter().any(|c| CHANGES_TEXT.contains(c))
            || (s.has(Class::Session) && may_set_encoding(&s.sql))
    })
}

/// Whether a routine setting statement may set or reset the client encoding, to a
/// safe one (`SET client_encoding`, `SET NAMES`, `RESET ALL`, `set_config`…). Read
/// from the text, erring towards yes: a yes only makes what is pipelined behind it
/// wait for the server's answer to be read.
fn may_set_encoding(sql: &str) -> bool {
    ["encoding", "names", "reset", "discard"]
        .iter()
        .any(|w| contains_ignore_case(sql.as_bytes(), w.as_bytes()))
}

/// Whether `hay` contains the lower-case ASCII word `needle`, in any case (no copy).
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The in-flight state: a change was let through and the server has not answered it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TextSettings {
    pending: bool,
    /// The change's batch has been closed (its Query, or a Sync after its Parse), so
    /// no ReadyForQuery owed means the server has answered it.
    synced: bool,
}

impl TextSettings {
    /// Called for every client message before its decision, with the number of
    /// ReadyForQuery messages the server still owes.
    pub fn on_message(&mut self, tag: u8, pending_ready: usize) {
        if !self.pending {
            return;
        }
        if self.synced && pending_ready == 0 {
            *self = TextSettings::default();
        } else if tag == frontend::SYNC {
            self.synced = true;
        }
    }

    /// A statement that changes how text reads is let through (or held).
    pub fn changed(&mut self, extended: bool) {
        self.pending = true;
        self.synced = !extended;
    }

    /// Whether the session's facts may be stale for the next statement.
    pub fn pending(&self) -> bool {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_switches_count_whatever_the_encoding() {
        let facts = crate::classify::SessionFacts::default();
        for (sql, want) in [
            ("SET client_encoding = 'LATIN1'", true),
            ("SET NAMES 'WIN1252'", true),
            ("RESET client_encoding", true),
            ("RESET ALL", true),
            ("DISCARD ALL", true),
            (
                "SELECT pg_catalog.set_config('client_encoding', 'EUC_JP', false)",
                true,
            ),
            ("SET client_encoding = 'SJIS'", true),
            ("SET statement_timeout = '5s'", false),
            ("SELECT encoding FROM pg_database", false),
            ("SET application_name = 'app'", false),
        ] {
            let stmts = crate::classify::classify(sql, &facts);
            assert_eq!(changes_text(&stmts), want, "{sql}");
        }
    }

    #[test]
    fn simple_query_until_its_ready_for_query() {
        let mut t = TextSettings::default();
        t.changed(false);
        t.on_message(frontend::QUERY, 1);
        assert!(t.pending());
        t.on_message(frontend::QUERY, 0);
        assert!(!t.pending());
    }

    #[test]
    fn extended_until_sync_and_its_answer() {
        let mut t = TextSettings::default();
        t.changed(true);
        // Bind/Execute/Parse of the same batch: nothing owed yet, still pending.
        t.on_message(frontend::PARSE, 0);
        assert!(t.pending());
        t.on_message(frontend::SYNC, 0);
        assert!(t.pending());
        t.on_message(frontend::PARSE, 1);
        assert!(t.pending());
        t.on_message(frontend::PARSE, 0);
        assert!(!t.pending());
    }
}
