//! Function calls that matter: the configurable dangerous list, `set_config`, and
//! built-ins that run SQL given as text (`query_to_xml`, `ts_stat`…).

/// The default dangerous functions (class `system`).
pub const DEFAULT_DANGEROUS: &[&str] = &[
    "lo_unlink",
    "lo_import",
    "lo_export",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "dblink_exec",
    "dblink",
    "dblink_send_query",
    "pg_file_unlink",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_sync",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "heap_force_kill",
    "heap_force_freeze",
    "pg_drop_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_replication_origin_drop",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_stat_reset",
    "pg_stat_reset_shared",
    "pg_stat_statements_reset",
];

/// Built-in functions whose argument is SQL text they run.
pub const SQL_RUNNERS: &[&str] = &[
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    "ts_stat",
    "dblink",
    "dblink_exec",
    "dblink_send_query",
    "dblink_open",
];

/// Lower-cases a configured or called name for comparison. Matching ignores case and
/// schema on purpose: `"LO_UNLINK"` or `ext.dblink_exec` may be a wrapper or the real
/// extension function, and a guard errs on the side of noticing.
pub fn norm(name: &str) -> String {
    name.trim().trim_matches('"').to_ascii_lowercase()
}

/// Whether the called `name` (last part of the function name) is in `list`
/// (already normalised with [`norm`]).
pub fn is_listed(list: &[String], name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    list.contains(&n)
}

pub fn runs_sql(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SQL_RUNNERS.contains(&n.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_ignores_case() {
        let list: Vec<String> = DEFAULT_DANGEROUS.iter().map(|s| norm(s)).collect();
        assert!(is_listed(&list, "LO_UNLINK"));
        assert!(is_listed(&list, "pg_terminate_backend"));
        assert!(!is_listed(&list, "now"));
        assert!(runs_sql("Query_To_Xml"));
    }
}
