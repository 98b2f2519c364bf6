//! Function calls, default-deny: the configurable dangerous list (`system`),
//! large-object and sequence writers, functions that run SQL given as text
//! (`query_to_xml`, dblink…), a curated list of read-only built-ins, and `code.call`
//! for every other function (it may change state: pgwarden cannot see its body).

/// The default dangerous functions (class `system`).
pub const DEFAULT_DANGEROUS: &[&str] = &[
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
    "pg_stat_reset_single_table_counters",
    "pg_stat_reset_single_function_counters",
    "pg_stat_reset_slru",
    "pg_stat_reset_replication_slot",
    "pg_stat_reset_subscription_stats",
    "pg_replication_slot_advance",
    "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_logical_slot_get_changes",
    "pg_logical_slot_get_binary_changes",
    "pg_logical_emit_message",
    "pg_replication_origin_create",
    "pg_replication_origin_advance",
    "pg_replication_origin_session_setup",
    "pg_replication_origin_xact_setup",
    "pg_log_backend_memory_contexts",
    "pg_import_system_collations",
    "pg_nextoid",
    "pg_sync_replication_slots",
    "pg_truncate_visibility_map",
    "pg_wal_replay_wait",
    "binary_upgrade_set_next_pg_type_oid",
    "pg_logical_slot_peek_changes",
    "pg_stop_making_pinned_objects",
];

/// Built-in (and common extension) functions whose argument is SQL text they run.
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
    "dblink_fetch",
    "dblink_build_sql_insert",
    "dblink_build_sql_update",
    "dblink_build_sql_delete",
    "database_to_xml",
    "schema_to_xml",
    "table_to_xml",
    "xpath_table",
    "crosstab",
    "crosstab2",
    "crosstab3",
    "crosstab4",
    "connectby",
    "cron.schedule",
    "schedule",
    "schedule_in_database",
];

/// Large-object functions that delete one.
pub const LARGE_OBJECT_DELETE: &[&str] = &["lo_unlink"];

/// Large-object functions that overwrite or shorten one (or fill one from a server
/// file: `lo_import` is also `system`, as is `lo_export`, which writes a server file).
pub const LARGE_OBJECT_WRITE: &[&str] = &[
    "lowrite",
    "lo_put",
    "lo_truncate",
    "lo_truncate64",
    "lo_import",
    "lo_export",
];

/// Large-object functions that create one or only read: ordinary writes and reads.
pub const LARGE_OBJECT_CREATE: &[&str] = &["lo_create", "lo_creat", "lo_from_bytea"];

/// Functions that move a sequence (inserts then collide or skip).
pub const SEQUENCE_SETTERS: &[&str] = &["setval"];

/// Built-in functions that read, compute or take locks, and change no stored data,
/// no setting and nothing outside the session; their call is not `code.call`.
/// Lower-case. Together with [`READ_ONLY_PREFIXES`].
const READ_ONLY: &[&str] = &[
    // aggregates and window functions
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "bool_and",
    "bool_or",
    "every",
    "bit_and",
    "bit_or",
    "bit_xor",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "corr",
    "covar_pop",
    "covar_samp",
    "mode",
    "percentile_cont",
    "percentile_disc",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    "xmlagg",
    "range_agg",
    "range_intersect_agg",
    "grouping",
    // strings
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "lower",
    "upper",
    "initcap",
    "btrim",
    "ltrim",
    "rtrim",
    "trim",
    "lpad",
    "rpad",
    "repeat",
    "replace",
    "reverse",
    "translate",
    "concat",
    "concat_ws",
    "substr",
    "substring",
    "position",
    "strpos",
    "split_part",
    "left",
    "right",
    "format",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "md5",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "encode",
    "decode",
    "convert",
    "convert_from",
    "convert_to",
    "chr",
    "ascii",
    "starts_with",
    "overlay",
    "normalize",
    "unistr",
    "string_to_array",
    "string_to_table",
    "to_hex",
    "to_ascii",
    "like_escape",
    "similar_escape",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "regexp_count",
    "regexp_instr",
    "regexp_like",
    "regexp_substr",
    "casefold",
    "crc32",
    "crc32c",
    // numbers
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "trunc",
    "mod",
    "power",
    "pow",
    "sqrt",
    "cbrt",
    "exp",
    "ln",
    "log",
    "log10",
    "sign",
    "pi",
    "degrees",
    "radians",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "sinh",
    "cosh",
    "tanh",
    "cot",
    "sind",
    "cosd",
    "tand",
    "width_bucket",
    "div",
    "gcd",
    "lcm",
    "factorial",
    "scale",
    "trim_scale",
    "min_scale",
    "random",
    "random_normal",
    "setseed",
    "num_nonnulls",
    "num_nulls",
    // dates and times
    "now",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "timeofday",
    "age",
    "date_part",
    "date_trunc",
    "date_bin",
    "extract",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "isfinite",
    "timezone",
    "to_char",
    "to_date",
    "to_number",
    "to_timestamp",
    "date_add",
    "date_subtract",
    // sets, arrays, ranges
    "generate_series",
    "generate_subscripts",
    "unnest",
    "cardinality",
    "isempty",
    "lower_inc",
    "upper_inc",
    "lower_inf",
    "upper_inf",
    "range_merge",
    "multirange",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "tstzrange",
    "daterange",
    "int4multirange",
    "int8multirange",
    "nummultirange",
    "tsmultirange",
    "tstzmultirange",
    "datemultirange",
    "trim_array",
    // json and xml
    "to_json",
    "to_jsonb",
    "row_to_json",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "json_object",
    "jsonb_object",
    "json_typeof",
    "jsonb_typeof",
    "jsonb_set",
    "jsonb_set_lax",
    "jsonb_insert",
    "jsonb_pretty",
    "jsonb_strip_nulls",
    "json_strip_nulls",
    "json_populate_record",
    "jsonb_populate_record",
    "json_populate_recordset",
    "jsonb_populate_recordset",
    "json_to_record",
    "jsonb_to_record",
    "json_to_recordset",
    "jsonb_to_recordset",
    "json_scalar",
    "json_serialize",
    "xmlconcat",
    "xmlelement",
    "xmlforest",
    "xmlpi",
    "xmlroot",
    "xmlcomment",
    "xmlparse",
    "xmlserialize",
    "xmlexists",
    "xpath",
    "xpath_exists",
    "xml_is_well_formed",
    "xml_is_well_formed_document",
    "xml_is_well_formed_content",
    "xmltext",
    // text search
    "to_tsvector",
    "to_tsquery",
    "plainto_tsquery",
    "phraseto_tsquery",
    "websearch_to_tsquery",
    "ts_rank",
    "ts_rank_cd",
    "ts_headline",
    "setweight",
    "strip",
    "numnode",
    "querytree",
    "ts_rewrite",
    "tsvector_to_array",
    "array_to_tsvector",
    "ts_delete",
    "ts_filter",
    "get_current_ts_config",
    "ts_debug",
    "ts_lexize",
    "ts_parse",
    "ts_token_type",
    // network, uuid, misc values
    "host",
    "hostmask",
    "masklen",
    "network",
    "family",
    "broadcast",
    "netmask",
    "set_masklen",
    "abbrev",
    "inet_merge",
    "inet_same_family",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_extract_timestamp",
    "uuid_extract_version",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "gen_random_bytes",
    "crypt",
    "gen_salt",
    "digest",
    "hmac",
    // types named as functions (casts)
    "text",
    "varchar",
    "bpchar",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "bool",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "bytea",
    "oid",
    "regclass",
    "regtype",
    "regproc",
    "regprocedure",
    "regnamespace",
    "regrole",
    "uuid",
    "inet",
    "cidr",
    "json",
    "jsonb",
    "xml",
    "name",
    "char",
    "bit",
    "varbit",
    "money",
    "point",
    "tsvector",
    "tsquery",
    // catalog and session information
    "version",
    "current_setting",
    "current_schema",
    "current_schemas",
    "current_database",
    "current_query",
    "current_catalog",
    "current_user",
    "session_user",
    "current_role",
    "user",
    "inet_client_addr",
    "inet_client_port",
    "inet_server_addr",
    "inet_server_port",
    "format_type",
    "obj_description",
    "col_description",
    "shobj_description",
    "to_regclass",
    "to_regtype",
    "to_regtypemod",
    "to_regproc",
    "to_regprocedure",
    "to_regoper",
    "to_regoperator",
    "to_regnamespace",
    "to_regrole",
    "to_regcollation",
    "acldefault",
    "aclexplode",
    "makeaclitem",
    "aclcontains",
    "txid_current",
    "txid_current_if_assigned",
    "txid_current_snapshot",
    "txid_snapshot_xmin",
    "txid_snapshot_xmax",
    "txid_snapshot_xip",
    "txid_visible_in_snapshot",
    "txid_status",
    "nextval",
    "currval",
    "lastval",
    "array_ndims",
    "array_dims",
    "array_length",
    "array_lower",
    "array_upper",
    "array_position",
    "array_positions",
    "array_to_string",
    "array_append",
    "array_prepend",
    "array_cat",
    "array_remove",
    "array_replace",
    "array_fill",
    "array_to_json",
    "array_reverse",
    "array_sort",
    "array_shuffle",
    "array_sample",
    "unique_key_recheck",
    "suppress_redundant_updates_trigger",
    // large objects, reading
    "lo_get",
    "lo_open",
    "lo_close",
    "loread",
    "lo_lseek",
    "lo_lseek64",
    "lo_tell",
    "lo_tell64",
];

/// Prefixes of read-only built-in families (catalog helpers, statistics readers,
/// privilege checks, snapshots, advisory locks that end with the session or
/// transaction, `pg_sleep`, `pg_notify`).
const READ_ONLY_PREFIXES: &[&str] = &[
    "pg_get_",
    "pg_has_role",
    "has_",
    "pg_stat_get_",
    "pg_size_",
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_database_size",
    "pg_tablespace_size",
    "pg_column_size",
    "pg_column_compression",
    "pg_encoding_",
    "pg_char_to_encoding",
    "pg_is_",
    "pg_last_",
    "pg_current_",
    "pg_backend_pid",
    "pg_postmaster_start_time",
    "pg_conf_load_time",
    "pg_my_temp_schema",
    "pg_typeof",
    "pg_collation_for",
    "pg_describe_object",
    "pg_identify_object",
    "pg_options_to_table",
    "pg_sequence_parameters",
    "pg_sequence_last_value",
    "pg_tablespace_location",
    "pg_relation_filenode",
    "pg_relation_filepath",
    "pg_filenode_relation",
    "pg_partition_",
    "pg_input_",
    "pg_blocking_pids",
    "pg_safe_snapshot_blocking_pids",
    "pg_jit_available",
    "pg_listening_channels",
    "pg_notification_queue_usage",
    "pg_trigger_depth",
    "pg_xact_",
    "pg_snapshot_",
    "pg_visible_in_snapshot",
    "pg_export_snapshot",
    "pg_advisory_",
    "pg_try_advisory_",
    "pg_sleep",
    "pg_notify",
    "pg_show_all_settings",
    "pg_timezone_",
    "pg_get_keywords",
    "pg_available_extension",
    "pg_settings_get_flags",
    "pg_wal_lsn_diff",
    "pg_lsn",
    "pg_control_",
    "pg_walfile_name",
    "pg_event_trigger_",
    "pg_index_column_has_property",
    "pg_index_has_property",
    "pg_indexam_has_property",
    "pg_column_is_updatable",
    "pg_relation_is_updatable",
    "pg_relation_is_publishable",
    "pg_mcv_list_items",
    "pg_extension_config_dump",
    "pg_split_walfile_name",
    "pg_tablespace_databases",
    "pg_stat_statements_info",
    "pg_lock_status",
    "pg_prepared_statement",
    "pg_prepared_xact",
    "pg_cursor",
    "pg_show_replication_origin_status",
    "pg_get_replication_slots",
    "pg_ls_waldir",
    "pg_ls_logdir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_ls_logicalsnapdir",
    "pg_ls_logicalmapdir",
    "pg_ls_replslotdir",
    "json_",
    "jsonb_",
    "array_",
    "ts_",
    "xml",
    "to_",
    "date_",
    "txid_",
    "st_",
    "similarity",
    "word_similarity",
    "strict_word_similarity",
    "show_trgm",
    "earth_",
    "ll_to_earth",
    "levenshtein",
    "soundex",
    "metaphone",
    "dmetaphone",
    "difference",
    "hstore",
    "akeys",
    "avals",
    "skeys",
    "svals",
    "each",
    "exist",
    "defined",
    "isexists",
    "isdefined",
    "unaccent",
];

/// What calling the function `name` (lower-case) can do, as classes; empty when it
/// is read-only. `dangerous` is the configured `system` list.
pub fn call_classes(dangerous: &[String], name: &str) -> Vec<super::Class> {
    use super::Class;
    let n = name.to_ascii_lowercase();
    let mut out = Vec::new();
    if is_listed(dangerous, &n) {
        out.push(Class::System);
    }
    if LARGE_OBJECT_DELETE.contains(&n.as_str()) {
        out.push(Class::LargeObjectDelete);
    }
    if LARGE_OBJECT_WRITE.contains(&n.as_str()) {
        out.push(Class::LargeObjectWrite);
    }
    if SEQUENCE_SETTERS.contains(&n.as_str()) {
        out.push(Class::AlterSequence);
    }
    if LARGE_OBJECT_CREATE.contains(&n.as_str()) {
        out.push(Class::Write);
    }
    if out.is_empty() && n != "set_config" && !runs_sql(&n) && !is_read_only(&n) {
        out.push(Class::CodeCall);
    }
    out
}

/// Large-object functions by their built-in OID (stable across PostgreSQL versions),
/// as libpq's `lo_*` calls reach the server in FunctionCall messages.
const LARGE_OBJECT_OIDS: &[(u32, &str)] = &[
    (715, "lo_create"),
    (764, "lo_import"),
    (765, "lo_export"),
    (767, "lo_import"),
    (952, "lo_open"),
    (953, "lo_close"),
    (954, "loread"),
    (955, "lowrite"),
    (956, "lo_lseek"),
    (957, "lo_creat"),
    (958, "lo_tell"),
    (964, "lo_unlink"),
    (1004, "lo_truncate"),
    (3170, "lo_lseek64"),
    (3171, "lo_tell64"),
    (3172, "lo_truncate64"),
];

/// A FunctionCall message of the function `oid`: its name and classes, judged as a
/// call of that name. Only the large-object functions are known; any other OID is
/// `code.opaque` (pgwarden does not know what it runs).
pub fn function_call(dangerous: &[String], oid: u32) -> (Option<&'static str>, Vec<super::Class>) {
    match LARGE_OBJECT_OIDS.iter().find(|(o, _)| *o == oid) {
        Some((_, name)) => {
            let mut classes = call_classes(dangerous, name);
            if classes.is_empty() {
                classes.push(super::Class::Read);
            }
            (Some(name), classes)
        }
        None => (None, vec![super::Class::CodeOpaque]),
    }
}

/// Whether `name` (lower-case) is a read-only built-in.
pub fn is_read_only(n: &str) -> bool {
    READ_ONLY.contains(&n)
        || READ_ONLY_PREFIXES.iter().any(|p| n.starts_with(p))
        || (n.starts_with("pg_") && n.ends_with("_is_visible"))
}

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
        assert!(is_listed(&list, "LO_IMPORT"));
        assert!(is_listed(&list, "pg_terminate_backend"));
        assert!(!is_listed(&list, "now"));
        assert!(runs_sql("Query_To_Xml"));
        use crate::classify::Class;
        assert_eq!(call_classes(&list, "now"), vec![]);
        assert_eq!(
            function_call(&list, 954),
            (Some("loread"), vec![Class::Read])
        );
        assert_eq!(
            function_call(&list, 964),
            (Some("lo_unlink"), vec![Class::LargeObjectDelete])
        );
        assert_eq!(
            function_call(&list, 955),
            (Some("lowrite"), vec![Class::LargeObjectWrite])
        );
        assert_eq!(
            function_call(&list, 765),
            (
                Some("lo_export"),
                vec![Class::System, Class::LargeObjectWrite]
            )
        );
        assert_eq!(
            function_call(&list, 957),
            (Some("lo_creat"), vec![Class::Write])
        );
        assert_eq!(function_call(&list, 1), (None, vec![Class::CodeOpaque]));
        assert_eq!(call_classes(&list, "pg_get_indexdef"), vec![]);
        assert_eq!(
            call_classes(&list, "lo_unlink"),
            vec![Class::LargeObjectDelete]
        );
        assert_eq!(call_classes(&list, "setval"), vec![Class::AlterSequence]);
        assert_eq!(call_classes(&list, "archive_orders"), vec![Class::CodeCall]);
        assert_eq!(
            call_classes(&list, "lo_export"),
            vec![Class::System, Class::LargeObjectWrite]
        );
    }
}
