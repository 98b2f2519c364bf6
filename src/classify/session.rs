//! Session settings that change how later text is read or enforced: client encoding,
//! standard_conforming_strings, replication role, search_path, role; and the list of
//! routine settings (everything else is `session.other`).

use super::bounded::parse_bool;
use super::statement::{Class, SessionFacts};

/// PostgreSQL's encoding-name cleaning: lower-case, alphanumerics only.
fn clean(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Client encodings in which every byte < 0x80 of a multibyte character is impossible,
/// so quotes and backslashes always mean what they look like. The client-only
/// encodings SJIS, BIG5, GBK, UHC, GB18030 and JOHAB are not here, nor is any name
/// the classifier does not know.
pub fn encoding_is_safe(name: &str) -> bool {
    let n = clean(name);
    if let Some(d) = n.strip_prefix("latin") {
        return matches!(
            d,
            "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "10"
        );
    }
    if let Some(d) = n.strip_prefix("iso8859") {
        return matches!(
            d,
            "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "10" | "13" | "14" | "15" | "16"
        );
    }
    if let Some(d) = n.strip_prefix("windows").or_else(|| n.strip_prefix("win")) {
        return matches!(
            d,
            "866"
                | "874"
                | "1250"
                | "1251"
                | "1252"
                | "1253"
                | "1254"
                | "1255"
                | "1256"
                | "1257"
                | "1258"
        );
    }
    matches!(
        n.as_str(),
        "utf8"
            | "unicode"
            | "sqlascii"
            | "eucjp"
            | "euccn"
            | "euckr"
            | "euctw"
            | "eucjis2004"
            | "koi8"
            | "koi8r"
            | "koi8u"
            | "mule"
            | "muleinternal"
            | "alt"
            | "tcvn"
            | "tcvn5712"
            | "vscii"
            | "abc"
            | "win"
    )
}

/// Whether these session facts make the text unreliable to read.
pub fn unreadable(facts: &SessionFacts) -> bool {
    !facts.standard_conforming_strings || !encoding_is_safe(&facts.client_encoding)
}

/// Settings a client routinely changes for its own session and that change neither
/// how pgwarden reads later text nor what the server enforces: timeouts, memory,
/// output formats, planner knobs, locale formatting. Lower-case names. A setting
/// not here (and not one of the specific classes below) is `session.other`.
const ROUTINE: &[&str] = &[
    "application_name",
    "array_nulls",
    "bytea_output",
    "check_function_bodies",
    "client_min_messages",
    "commit_delay",
    "constraint_exclusion",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "cpu_tuple_cost",
    "cursor_tuple_fraction",
    "datestyle",
    "deadlock_timeout",
    "default_statistics_target",
    "default_table_access_method",
    "default_tablespace",
    "default_text_search_config",
    "default_toast_compression",
    "default_transaction_deferrable",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "default_with_oids",
    "effective_cache_size",
    "effective_io_concurrency",
    "escape_string_warning",
    "extra_float_digits",
    "from_collapse_limit",
    "geqo",
    "geqo_threshold",
    "gin_pending_list_limit",
    "gin_fuzzy_search_limit",
    "hash_mem_multiplier",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "intervalstyle",
    "jit",
    "join_collapse_limit",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "lock_timeout",
    "maintenance_io_concurrency",
    "maintenance_work_mem",
    "max_parallel_maintenance_workers",
    "max_parallel_workers",
    "max_parallel_workers_per_gather",
    "parallel_leader_participation",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "password_encryption",
    "plan_cache_mode",
    "quote_all_identifiers",
    "random_page_cost",
    "restrict_nonsystem_relation_kind",
    "row_security",
    "seq_page_cost",
    "statement_timeout",
    "synchronize_seqscans",
    "synchronous_commit",
    "tcp_keepalives_count",
    "tcp_keepalives_idle",
    "tcp_keepalives_interval",
    "tcp_user_timeout",
    "temp_buffers",
    "temp_tablespaces",
    "timezone",
    "transaction_timeout",
    "timezone_abbreviations",
    "trace_sort",
    "vacuum_cost_delay",
    "vacuum_cost_limit",
    "work_mem",
    "xmlbinary",
    "xmloption",
];

/// Prefixes of extension settings that switch off auditing or statistics; other
/// dotted (custom) settings are an application's own variables (`app.tenant`).
const GUARDED_PREFIXES: &[&str] = &["pgaudit.", "pg_stat_statements.", "auto_explain.", "anon."];

/// Whether `name` (any case) is a routine setting ([`ROUTINE`], planner `enable_*`
/// switches, or an application's own dotted variable).
fn is_routine(n: &str) -> bool {
    if ROUTINE.contains(&n) || n.starts_with("enable_") {
        return true;
    }
    n.contains('.') && !GUARDED_PREFIXES.iter().any(|p| n.starts_with(p))
}

/// Classes for setting (or resetting, `value` None) the parameter `name`.
///
/// Resetting goes back to the value the session started with (judged at startup),
/// so a RESET is `session` except for the settings that change how text reads.
pub fn setting_classes(name: &str, value: Option<&str>) -> Vec<Class> {
    let n = name.to_ascii_lowercase();
    let mut out = vec![Class::Session];
    match n.as_str() {
        "client_encoding" | "names" => out.extend(
            value
                .filter(|v| !encoding_is_safe(v))
                .map(|_| Class::SessionEncoding),
        ),
        "standard_conforming_strings" => {
            if let Some(v) = value {
                if parse_bool(v) != Some(true) {
                    out.push(Class::SessionStringLiterals);
                }
            }
        }
        "backslash_quote" => {
            if let Some(v) = value {
                if parse_bool(v) != Some(false) && !v.eq_ignore_ascii_case("safe_encoding") {
                    out.push(Class::SessionStringLiterals);
                }
            }
        }
        "session_replication_role" => {
            if value.is_some_and(|v| !v.trim().eq_ignore_ascii_case("origin")) {
                out.push(Class::SessionReplicationRole)
            }
        }
        "search_path" => {
            if value.is_some() {
                out.push(Class::SessionSearchPath)
            }
        }
        // Back to the role the session logged in with: nothing it could not do
        // by reconnecting. `SET ROLE NONE` is the same.
        "role" | "session_authorization" => {
            if value.is_some_and(|v| !v.trim().eq_ignore_ascii_case("none")) {
                out.push(Class::SessionRole)
            }
        }
        "transaction"
        | "transaction_isolation"
        | "transaction_read_only"
        | "transaction_deferrable" => out = vec![Class::Transaction],
        _ if value.is_none() || is_routine(&n) => {}
        _ => out.push(Class::SessionOther),
    }
    out
}

/// Every specific session class: for `set_config` with a name that cannot be read.
pub const ALL_SPECIFIC: &[Class] = &[
    Class::Session,
    Class::SessionEncoding,
    Class::SessionStringLiterals,
    Class::SessionReplicationRole,
    Class::SessionSearchPath,
    Class::SessionRole,
    Class::SessionOther,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_encodings() {
        for e in [
            "UTF8",
            "utf-8",
            "SQL_ASCII",
            "LATIN1",
            "latin10",
            "WIN1252",
            "EUC_JP",
            "KOI8R",
            "ISO_8859_5",
        ] {
            assert!(encoding_is_safe(e), "{e}");
        }
        for e in [
            "SJIS",
            "Shift_JIS",
            "BIG5",
            "GBK",
            "GB18030",
            "UHC",
            "JOHAB",
            "WIN932",
            "latin11",
            "SHIFT_JIS_2004",
            "klingon",
            "",
        ] {
            assert!(!encoding_is_safe(e), "{e}");
        }
    }

    #[test]
    fn settings() {
        assert!(setting_classes("client_encoding", Some("sjis")).contains(&Class::SessionEncoding));
        assert!(!setting_classes("client_encoding", Some("UTF8")).contains(&Class::SessionEncoding));
        assert!(setting_classes("standard_conforming_strings", Some("off"))
            .contains(&Class::SessionStringLiterals));
        assert!(!setting_classes("standard_conforming_strings", Some("on"))
            .contains(&Class::SessionStringLiterals));
        assert_eq!(
            setting_classes("work_mem", Some("64MB")),
            vec![Class::Session]
        );
        assert_eq!(
            setting_classes("TimeZone", Some("UTC")),
            vec![Class::Session]
        );
        assert_eq!(
            setting_classes("myapp.tenant", Some("7")),
            vec![Class::Session]
        );
        for (name, value) in [
            ("allow_system_table_mods", "on"),
            ("transform_null_equals", "on"),
            ("pgaudit.log", "none"),
            ("zero_damaged_pages", "on"),
            ("ignore_system_indexes", "on"),
        ] {
            assert!(
                setting_classes(name, Some(value)).contains(&Class::SessionOther),
                "{name}"
            );
        }
        assert_eq!(setting_classes("role", None), vec![Class::Session]);
        assert_eq!(setting_classes("role", Some("none")), vec![Class::Session]);
        assert!(setting_classes("role", Some("admin")).contains(&Class::SessionRole));
        assert_eq!(
            setting_classes("session_replication_role", Some("origin")),
            vec![Class::Session]
        );
    }

    #[test]
    fn facts() {
        assert!(!unreadable(&SessionFacts::default()));
        let f = SessionFacts {
            standard_conforming_strings: false,
            ..SessionFacts::default()
        };
        assert!(unreadable(&f));
        let f = SessionFacts {
            client_encoding: "SJIS".into(),
            ..SessionFacts::default()
        };
        assert!(unreadable(&f));
    }
}
