//! Table-driven classifier cases: one named #[test] per row.
//!
//! Row: `name: SQL => "must-have classes" [, "must-not classes" [, "objects"]];`
//! (`=` in the first list: exactly these; `#N`: N statements; `destructive` in the
//! second: every guarded class.)

use crate::classify_support;
use classify_support::check;

macro_rules! cases {
    ($($name:ident : $sql:expr => $has:expr $(, $rest:expr)* ;)*) => {
        $(
            #[test]
            fn $name() {
                let rest: &[&str] = &[$($rest),*];
                check(
                    $sql,
                    $has,
                    rest.first().copied().unwrap_or(""),
                    rest.get(1).copied().unwrap_or(""),
                );
            }
        )*
    };
}

// ---------------------------------------------------------------- reads
cases! {
    read_select_1: "SELECT 1" => "= read";
    read_select_star: "SELECT * FROM users" => "= read", "", "users";
    read_qualified: "SELECT * FROM public.users u" => "= read", "", "public.users";
    read_quoted_ident: r#"SELECT * FROM "MixedCase"."Users""# => "= read", "", "MixedCase.Users";
    read_upper_folds: "SELECT * FROM Public.USERS" => "= read", "", "public.users";
    read_join3: "SELECT o.id, u.email, p.name FROM orders o JOIN users u ON u.id = o.user_id JOIN products p ON p.id = o.product_id WHERE o.id = $1" => "= read", "", "orders users products";
    read_subquery: "SELECT * FROM (SELECT id FROM t) s" => "= read", "", "t";
    read_union: "SELECT 1 UNION ALL SELECT 2" => "= read";
    read_values: "VALUES (1), (2)" => "= read";
    read_table_cmd: "TABLE users" => "= read", "", "users";
    read_for_update: "SELECT * FROM jobs WHERE id = 1 FOR UPDATE SKIP LOCKED" => "= read", "", "jobs";
    read_cte_select: "WITH x AS (SELECT 1) SELECT * FROM x" => "= read";
    read_recursive_cte: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 10) SELECT * FROM r" => "= read";
    read_window: "SELECT id, row_number() OVER (PARTITION BY a ORDER BY b) FROM t" => "= read";
    read_lateral: "SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.a_id = a.id) x" => "= read", "", "a b";
    read_json: "SELECT data->>'name' FROM docs WHERE data @> '{\"a\":1}'" => "= read";
    read_now: "SELECT now(), current_user, version()" => "= read";
    read_count: "SELECT count(*) FROM orders" => "= read";
    read_exists: "SELECT EXISTS (SELECT 1 FROM users WHERE id = 1)" => "= read";
    read_generate_series: "SELECT * FROM generate_series(1, 10)" => "= read";
    read_pg_catalog: "SELECT * FROM pg_catalog.pg_stat_activity" => "= read", "", "pg_catalog.pg_stat_activity";
    read_declare_cursor: "DECLARE c CURSOR FOR SELECT * FROM users" => "= read", "", "users";
    read_fetch: "FETCH 10 FROM c" => "= read";
    read_move: "MOVE NEXT IN c" => "= read";
    read_close: "CLOSE c" => "= read";
    read_close_all: "CLOSE ALL" => "= read";
    read_plain_vacuum: "VACUUM users" => "= read";
    read_analyze: "ANALYZE users" => "= read";
    read_vacuum_analyze: "VACUUM (ANALYZE) users" => "= read";
    read_select_distinct_on: "SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b" => "= read";
    read_grouping_sets: "SELECT a, b, sum(c) FROM t GROUP BY GROUPING SETS ((a), (b))" => "= read";
    read_tablesample: "SELECT * FROM big TABLESAMPLE SYSTEM (1)" => "= read", "", "big";
    read_xmltable: "SELECT * FROM XMLTABLE('/r' PASSING '<r/>' COLUMNS a int PATH 'a')" => "= read";
    read_row_compare: "SELECT ROW(1,2) < ROW(1,3)" => "= read";
    read_array_sub: "SELECT ARRAY(SELECT id FROM t)" => "= read";
    read_case: "SELECT CASE WHEN a THEN 1 ELSE 2 END FROM t" => "= read";
    read_sleep_is_not_system: "SELECT pg_sleep(1)" => "= read";
    read_advisory_lock: "SELECT pg_advisory_lock(42)" => "= read";
    read_current_setting: "SELECT current_setting('search_path')" => "= read";
}

// ---------------------------------------------------------------- benign look-alikes
cases! {
    benign_string_drop: "SELECT 'DROP TABLE x'" => "= read", "destructive";
    benign_comment_drop: "-- DROP TABLE users\nSELECT 1" => "= read #1", "destructive";
    benign_block_comment: "SELECT /* DROP TABLE users; */ 1" => "= read", "destructive";
    benign_nested_comment: "SELECT /* a /* DROP TABLE x; */ b */ 1" => "= read", "destructive";
    benign_column_named_drop: r#"SELECT "drop", "delete" FROM t"# => "= read", "destructive";
    benign_column_drop_unquoted: "SELECT drop FROM t" => "= read", "destructive";
    benign_table_named_truncate: r#"SELECT * FROM "truncate""# => "= read", "destructive";
    benign_dollar_string: "SELECT $$DROP TABLE users$$" => "= read", "destructive";
    benign_tagged_dollar: "SELECT $x$; DELETE FROM users; $x$" => "= read #1", "destructive";
    benign_e_string: r"SELECT E'\'; DROP TABLE users; --'" => "= read #1", "destructive";
    benign_delete_by_id: "DELETE FROM t WHERE id = 1" => "= delete.bounded", "destructive", "t";
    benign_update_by_id: "UPDATE t SET a = 1 WHERE id = 1" => "= update.bounded", "destructive", "t";
    benign_explain_delete: "EXPLAIN DELETE FROM users" => "= read", "destructive", "users";
    benign_explain_drop_free: "EXPLAIN SELECT * FROM users" => "= read", "destructive";
    benign_explain_analyze_false: "EXPLAIN (ANALYZE false) DELETE FROM users" => "= read", "destructive";
    benign_explain_analyze_off: "EXPLAIN (ANALYZE off, COSTS off) UPDATE t SET a = 1" => "= read", "destructive";
    benign_explain_verbose: "EXPLAIN VERBOSE DELETE FROM t" => "= read", "destructive";
    benign_explain_select_fn: "EXPLAIN SELECT lo_unlink(1)" => "= read", "destructive";
    benign_insert: "INSERT INTO t (a) VALUES (1)" => "= write", "destructive", "t";
    benign_insert_select: "INSERT INTO t SELECT * FROM s" => "= write", "destructive", "t s";
    benign_upsert_nothing: "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING" => "= write", "destructive";
    benign_drop_word_in_ident: "SELECT * FROM drops WHERE dropped_at IS NULL" => "= read", "destructive";
    benign_function_named_like: "SELECT my_lo_unlink_wrapper_log(1)" => "= code.call", "large_object.delete system";
    benign_string_lo_unlink: "SELECT 'lo_unlink(1)'" => "= read", "destructive";
    benign_set_config_read: "SELECT current_setting('role')" => "= read", "destructive";
    benign_delete_where_in: "DELETE FROM sessions WHERE id IN (1, 2, 3)" => "= delete.bounded", "destructive";
    benign_delete_older: "DELETE FROM sessions WHERE created_at < now() - interval '30 days'" => "= delete.bounded", "destructive";
    benign_update_param: "UPDATE accounts SET balance = balance + $1 WHERE id = $2" => "= update.bounded", "destructive", "accounts";
    benign_delete_returning: "DELETE FROM q WHERE id = $1 RETURNING *" => "= delete.bounded", "destructive";
    benign_delete_current_of: "DELETE FROM t WHERE CURRENT OF c" => "= delete.bounded", "destructive";
    benign_update_current_of: "UPDATE t SET a = 1 WHERE CURRENT OF c" => "= update.bounded", "destructive";
    benign_delete_using_join: "DELETE FROM orders o USING users u WHERE o.user_id = u.id AND u.status = 'gone'" => "= delete.bounded", "destructive", "orders users";
    benign_update_from_join: "UPDATE orders o SET total = 0 FROM users u WHERE o.user_id = u.id AND u.id = 7" => "= update.bounded", "destructive";
    benign_delete_correlated: "DELETE FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.a_id = a.id)" => "= delete.bounded", "destructive";
    benign_delete_in_subquery: "DELETE FROM a WHERE b_id IN (SELECT id FROM b WHERE flag)" => "= delete.bounded", "destructive";
    benign_delete_is_null: "DELETE FROM t WHERE deleted_at IS NULL" => "= delete.bounded", "destructive";
    benign_delete_false: "DELETE FROM t WHERE false" => "= delete.bounded", "destructive";
    benign_delete_bool_col: "DELETE FROM t WHERE expired" => "= delete.bounded", "destructive";
    benign_delete_and: "DELETE FROM t WHERE a = 1 AND b = 2" => "= delete.bounded", "destructive";
    benign_delete_or_cols: "DELETE FROM t WHERE a = 1 OR b = 2" => "= delete.bounded", "destructive";
    benign_delete_between: "DELETE FROM t WHERE id BETWEEN 1 AND 10" => "= delete.bounded", "destructive";
    benign_delete_any: "DELETE FROM t WHERE id = ANY($1)" => "= delete.bounded", "destructive";
    benign_delete_like: "DELETE FROM t WHERE name LIKE 'tmp_%'" => "= delete.bounded", "destructive";
    benign_plpgsql_variable: "CREATE FUNCTION purge(p_id int) RETURNS void LANGUAGE plpgsql AS $$ DECLARE v_id int := p_id; BEGIN DELETE FROM t WHERE id = v_id; UPDATE t SET a = 1 WHERE id = p_id; END $$" => "create.code delete.bounded update.bounded", "delete.maybe_unbounded update.maybe_unbounded";
    benign_sql_function_parameter: "CREATE FUNCTION purge(p_id int) RETURNS void LANGUAGE sql AS 'DELETE FROM t WHERE id = p_id'" => "create.code delete.bounded", "delete.maybe_unbounded";
    blind_dynamic_sql_has_no_variables: "CREATE FUNCTION purge(v_id int) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DELETE FROM t WHERE id = v_id'; END $$" => "delete.maybe_unbounded";
    benign_truncate_temporary: "TRUNCATE pg_temp.scratch, pg_temp.scratch2 CASCADE" => "= write";
    blind_truncate_temp_and_real: "TRUNCATE pg_temp.scratch, users" => "= truncate";
    blind_truncate_unqualified: "TRUNCATE scratch" => "= truncate";
    blind_truncate_other_temp_schema: "TRUNCATE pg_temp_3.scratch" => "= truncate";
    benign_reset_role: "RESET ROLE" => "= session";
    benign_set_role_none: "SET ROLE NONE" => "= session";
    blind_two_columns: "DELETE FROM t WHERE a = b" => "= delete.maybe_unbounded";
    blind_not_equal: "DELETE FROM t WHERE status <> 'active'" => "= delete.maybe_unbounded";
    blind_float_sum: "DELETE FROM t WHERE 0.1 + 0.2 = 0.3" => "= delete.maybe_unbounded";
    blind_char_typmod: "UPDATE t SET a = 1 WHERE 'ab'::char(1) = 'a'" => "= update.maybe_unbounded";
    benign_select_pg_terminate_name: "SELECT 'pg_terminate_backend' AS f" => "= read", "destructive";
    benign_comment_on_drop: "COMMENT ON COLUMN t.drop IS 'DROP TABLE'" => "= alter.other", "destructive";
    benign_notify_payload: "NOTIFY ch, 'DROP TABLE users'" => "= write", "destructive";
    benign_set_utf8: "SET client_encoding TO 'UTF8'" => "= session", "destructive";
    benign_set_names_latin1: "SET NAMES 'LATIN1'" => "= session", "destructive";
    benign_scs_on: "SET standard_conforming_strings = on" => "= session", "destructive";
    benign_work_mem: "SET work_mem = '64MB'" => "= session", "destructive";
}

// ---------------------------------------------------------------- writes
cases! {
    write_insert_returning: "INSERT INTO t (a) VALUES (1) RETURNING id" => "= write";
    write_insert_default: "INSERT INTO t DEFAULT VALUES" => "= write";
    write_upsert_update: "INSERT INTO t (id, a) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a" => "= write insert.upsert", "", "t";
    write_upsert_where: "INSERT INTO t VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET a = 1 WHERE t.a < 5" => "= write insert.upsert";
    write_upsert_select: "INSERT INTO t SELECT * FROM t ON CONFLICT (id) DO UPDATE SET a = 0" => "write insert.upsert";
    write_upsert_in_cte: "WITH u AS (INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 0 RETURNING id) SELECT * FROM u" => "insert.upsert";
    write_insert_cte: "WITH s AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM s" => "= write", "", "t";
    write_merge_update: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)" => "= write merge.update", "merge.delete", "t s";
    write_merge_nothing: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DO NOTHING" => "= write";
    write_merge_insert_only: "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)" => "= write";
    write_merge_update_by_source: "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN UPDATE SET a = 0" => "merge.update", "merge.delete";
    write_notify: "NOTIFY jobs" => "= write";
    write_notify_fn: "SELECT pg_notify('jobs', 'x')" => "= read";
    write_insert_overriding: "INSERT INTO t OVERRIDING SYSTEM VALUE VALUES (1)" => "= write";
    write_insert_qualified: "INSERT INTO billing.invoices (id) VALUES (1)" => "= write", "", "billing.invoices";
}

// ---------------------------------------------------------------- unbounded / maybe DELETE
cases! {
    del_no_where: "DELETE FROM users" => "= delete.unbounded", "", "users";
    del_qualified: "DELETE FROM public.users" => "= delete.unbounded", "", "public.users";
    del_only: "DELETE FROM ONLY users" => "= delete.unbounded";
    del_alias: "DELETE FROM users AS u" => "= delete.unbounded";
    del_true: "DELETE FROM users WHERE true" => "= delete.unbounded";
    del_t_string: "DELETE FROM users WHERE 't'" => "= delete.unbounded";
    del_true_string: "DELETE FROM users WHERE 'true'" => "= delete.unbounded";
    del_yes_string: "DELETE FROM users WHERE 'yes'" => "= delete.unbounded";
    del_on_string: "DELETE FROM users WHERE 'on'" => "= delete.unbounded";
    del_1_string: "DELETE FROM users WHERE '1'" => "= delete.unbounded";
    del_1eq1: "DELETE FROM users WHERE 1=1" => "= delete.unbounded";
    del_1eq1_spaced: "DELETE FROM users WHERE 1 = 1" => "= delete.unbounded";
    del_aeqa: "DELETE FROM users WHERE 'a'='a'" => "= delete.unbounded";
    del_not_false: "DELETE FROM users WHERE NOT false" => "= delete.unbounded";
    del_not_not_true: "DELETE FROM users WHERE NOT NOT true" => "= delete.unbounded";
    del_or_true: "DELETE FROM users WHERE id = 5 OR true" => "= delete.unbounded";
    del_true_or: "DELETE FROM users WHERE true OR id = 5" => "= delete.unbounded";
    del_or_1eq1: "DELETE FROM users WHERE id = 5 OR 1=1" => "= delete.unbounded";
    del_id_eq_id: "DELETE FROM users WHERE id = id" => "= delete.unbounded";
    del_qid_eq_qid: "DELETE FROM users u WHERE u.id = u.id" => "= delete.unbounded";
    del_id_ge_id: "DELETE FROM users WHERE id >= id" => "= delete.unbounded";
    del_id_le_id: "DELETE FROM users WHERE id <= id" => "= delete.unbounded";
    del_not_distinct_self: "DELETE FROM users WHERE id IS NOT DISTINCT FROM id" => "= delete.unbounded";
    del_null_is_null: "DELETE FROM users WHERE NULL IS NULL" => "= delete.unbounded";
    del_1_is_not_null: "DELETE FROM users WHERE 1 IS NOT NULL" => "= delete.unbounded";
    del_coalesce: "DELETE FROM users WHERE coalesce(NULL, true)" => "= delete.unbounded";
    del_coalesce_upper: "DELETE FROM users WHERE COALESCE(NULL, NULL, 't')" => "= delete.unbounded";
    del_select_true: "DELETE FROM users WHERE (SELECT true)" => "= delete.unbounded";
    del_select_1eq1: "DELETE FROM users WHERE (SELECT 1 = 1)" => "= delete.unbounded";
    del_exists_1: "DELETE FROM users WHERE EXISTS (SELECT 1)" => "= delete.unbounded";
    del_exists_where_true: "DELETE FROM users WHERE EXISTS (SELECT 1 WHERE true)" => "= delete.unbounded";
    del_1lt2: "DELETE FROM users WHERE 1 < 2" => "= delete.unbounded";
    del_2gt1: "DELETE FROM users WHERE 2 > 1" => "= delete.unbounded";
    del_ne: "DELETE FROM users WHERE 1 <> 2" => "= delete.unbounded";
    del_bang_eq: "DELETE FROM users WHERE 1 != 2" => "= delete.unbounded";
    del_cast_bool: "DELETE FROM users WHERE 't'::boolean" => "= delete.unbounded";
    del_cast_fn: "DELETE FROM users WHERE CAST('yes' AS boolean)" => "= delete.unbounded";
    del_int_cast_bool: "DELETE FROM users WHERE 1::bool" => "= delete.unbounded";
    del_arith: "DELETE FROM users WHERE 2 + 2 = 4" => "= delete.unbounded";
    del_neg: "DELETE FROM users WHERE -1 < 0" => "= delete.unbounded";
    del_concat: "DELETE FROM users WHERE 'a' || 'b' = 'ab'" => "= delete.unbounded";
    del_in_const: "DELETE FROM users WHERE 1 IN (1, 2)" => "= delete.unbounded";
    del_between_const: "DELETE FROM users WHERE 5 BETWEEN 1 AND 10" => "= delete.unbounded";
    del_case_true: "DELETE FROM users WHERE CASE WHEN true THEN true END" => "= delete.unbounded";
    del_case_else: "DELETE FROM users WHERE CASE WHEN false THEN false ELSE true END" => "= delete.unbounded";
    del_is_true: "DELETE FROM users WHERE (1 = 1) IS TRUE" => "= delete.unbounded";
    del_is_not_false: "DELETE FROM users WHERE true IS NOT FALSE" => "= delete.unbounded";
    del_and_true: "DELETE FROM users WHERE true AND 'a' = 'a'" => "= delete.unbounded";
    del_nested_or: "DELETE FROM users WHERE (id = 1 AND name = 'x') OR (2 > 1)" => "= delete.unbounded";
    del_complement: "DELETE FROM users WHERE id = 1 OR id <> 1" => "= delete.unbounded";
    del_complement_lt: "DELETE FROM users WHERE id < 10 OR id >= 10" => "= delete.unbounded";
    del_null_or_not_null: "DELETE FROM users WHERE email IS NULL OR email IS NOT NULL" => "= delete.unbounded";
    del_using_true: "DELETE FROM users USING orders WHERE true" => "= delete.unbounded";
    del_using_no_where: "DELETE FROM users USING orders" => "= delete.unbounded";
    del_returning: "DELETE FROM users RETURNING *" => "= delete.unbounded";
    // Decimals and text order are not folded (not computed exactly as the server does):
    // maybe, which the example policy holds.
    del_float: "DELETE FROM users WHERE 1.5 > 1" => "= delete.maybe_unbounded";
    del_text_cmp: "DELETE FROM users WHERE 'b' > 'a'" => "= delete.maybe_unbounded";
    del_bool_eq: "DELETE FROM users WHERE true = true" => "= delete.unbounded";
    del_param_bool: "DELETE FROM users WHERE $1::bool" => "= delete.maybe_unbounded";
    del_param: "DELETE FROM users WHERE $1" => "= delete.maybe_unbounded";
    del_fn_bool: "DELETE FROM users WHERE should_delete()" => "= delete.maybe_unbounded code.call";
    del_or_param: "DELETE FROM users WHERE id = 1 OR $1" => "= delete.maybe_unbounded";
    del_not_null: "DELETE FROM users WHERE id IS NOT NULL" => "= delete.maybe_unbounded";
    del_uncorrelated_exists: "DELETE FROM users WHERE EXISTS (SELECT 1 FROM orders)" => "= delete.maybe_unbounded";
    del_in_self: "DELETE FROM users WHERE id IN (SELECT id FROM users)" => "= delete.maybe_unbounded";
    del_like_all: "DELETE FROM users WHERE email LIKE '%'" => "= delete.maybe_unbounded";
    del_regex_all: "DELETE FROM users WHERE email ~ '.*'" => "= delete.maybe_unbounded";
    del_id_plus_zero: "DELETE FROM users WHERE id = id + 0" => "= delete.maybe_unbounded";
    del_param_eq_const: "DELETE FROM users WHERE $1 = 1" => "= delete.maybe_unbounded";
    del_now_gt_const: "DELETE FROM users WHERE now() > '2000-01-01'" => "= delete.maybe_unbounded";
    del_random: "DELETE FROM users WHERE random() < 2" => "= delete.maybe_unbounded";
    del_not_is_null: "DELETE FROM users WHERE NOT (email IS NULL)" => "= delete.maybe_unbounded";
    del_select_from: "DELETE FROM users WHERE (SELECT flag FROM settings LIMIT 1)" => "= delete.maybe_unbounded";
}

// ---------------------------------------------------------------- UPDATE
cases! {
    upd_no_where: "UPDATE users SET active = false" => "= update.unbounded", "", "users";
    upd_true: "UPDATE users SET active = false WHERE true" => "= update.unbounded";
    upd_1eq1: "UPDATE users SET active = false WHERE 1 = 1" => "= update.unbounded";
    upd_or_true: "UPDATE users SET a = 1 WHERE id = 3 OR true" => "= update.unbounded";
    upd_id_eq_id: "UPDATE users SET a = 1 WHERE id = id" => "= update.unbounded";
    upd_from_true: "UPDATE users SET a = o.a FROM orders o WHERE true" => "= update.unbounded", "", "users orders";
    upd_from_no_where: "UPDATE users SET a = o.a FROM orders o" => "= update.unbounded";
    upd_exists: "UPDATE users SET a = 1 WHERE EXISTS (SELECT 1)" => "= update.unbounded";
    upd_select_true: "UPDATE users SET a = 1 WHERE (SELECT true)" => "= update.unbounded";
    upd_not_false: "UPDATE users SET a = 1 WHERE NOT false" => "= update.unbounded";
    upd_param: "UPDATE users SET a = 1 WHERE $1::boolean" => "= update.maybe_unbounded";
    upd_fn: "UPDATE users SET a = 1 WHERE is_stale(updated_at)" => "= update.maybe_unbounded code.call";
    upd_bounded_in: "UPDATE users SET a = 1 WHERE id IN (SELECT user_id FROM orders WHERE total > 100)" => "= update.bounded";
    upd_multi_col: "UPDATE users SET (a, b) = (1, 2) WHERE id = 1" => "= update.bounded";
    upd_returning: "UPDATE users SET a = 1 WHERE id = 1 RETURNING a" => "= update.bounded";
    upd_qualified: "UPDATE billing.invoices SET paid = true" => "= update.unbounded", "", "billing.invoices";
    upd_only: "UPDATE ONLY parent SET a = 1" => "= update.unbounded";
}

// ---------------------------------------------------------------- data-modifying CTEs
cases! {
    cte_delete_select: "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "delete.unbounded", "", "users";
    cte_delete_table: "WITH d AS (DELETE FROM users RETURNING *) TABLE d" => "delete.unbounded";
    cte_delete_bounded: "WITH d AS (DELETE FROM q WHERE id = 1 RETURNING *) SELECT * FROM d" => "delete.bounded", "delete.unbounded";
    cte_update: "WITH u AS (UPDATE users SET a = 1 RETURNING id) SELECT count(*) FROM u" => "update.unbounded";
    cte_insert: "WITH i AS (INSERT INTO log VALUES (1) RETURNING *) SELECT * FROM i" => "write";
    cte_nested: "WITH a AS (WITH b AS (DELETE FROM users RETURNING id) SELECT id FROM b) SELECT * FROM a" => "delete.unbounded";
    cte_in_subquery: "SELECT * FROM (WITH d AS (DELETE FROM users RETURNING 1) SELECT * FROM d) s" => "delete.unbounded";
    cte_in_scalar_subquery: "SELECT (WITH d AS (DELETE FROM users RETURNING 1) SELECT count(*) FROM d)" => "delete.unbounded";
    cte_in_insert: "WITH d AS (DELETE FROM users RETURNING *) INSERT INTO archive SELECT * FROM d" => "write delete.unbounded", "", "users archive";
    // `SELECT id FROM d` may be the outer `id` if d has no such column: maybe.
    cte_in_update: "WITH d AS (DELETE FROM a RETURNING id) UPDATE b SET x = 1 WHERE id IN (SELECT id FROM d)" => "delete.unbounded update.maybe_unbounded";
    cte_in_update_qualified: "WITH d AS (DELETE FROM a RETURNING id) UPDATE b SET x = 1 WHERE id IN (SELECT d.id FROM d)" => "delete.unbounded update.bounded";
    cte_in_delete: "WITH d AS (UPDATE a SET x = 0 RETURNING id) DELETE FROM b WHERE id = 1" => "update.unbounded delete.bounded";
    cte_ctas: "CREATE TABLE backup AS WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "create.other delete.unbounded", "", "backup users";
    cte_select_into: "WITH d AS (DELETE FROM users RETURNING *) SELECT * INTO backup FROM d" => "create.other delete.unbounded";
    cte_insert_select: "INSERT INTO archive WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "write delete.unbounded";
    cte_declare_cursor: "DECLARE c CURSOR FOR WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "read delete.unbounded";
    cte_view: "CREATE VIEW v AS WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "create.other delete.unbounded";
    cte_matview: "CREATE MATERIALIZED VIEW mv AS WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "create.other delete.unbounded";
    cte_truncate_free_name: "WITH users AS (SELECT 1) SELECT * FROM users" => "= read";
    cte_merge: "WITH m AS (SELECT 1 AS id) MERGE INTO t USING m ON t.id = m.id WHEN MATCHED THEN DELETE" => "merge.delete";
    cte_copy: "COPY (WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d) TO STDOUT" => "copy.out delete.unbounded";
    cte_copy_delete_returning: "COPY (DELETE FROM users RETURNING *) TO STDOUT" => "copy.out delete.unbounded";
    cte_union_arm: "SELECT 1 UNION SELECT * FROM (WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d) x" => "delete.unbounded";
    cte_lateral: "SELECT * FROM a, LATERAL (WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d) x" => "delete.unbounded";
    cte_exists: "SELECT EXISTS (WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d)" => "delete.unbounded";
    cte_in_where: "SELECT * FROM a WHERE id IN (WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d)" => "delete.unbounded";
    cte_materialized: "WITH d AS MATERIALIZED (DELETE FROM t RETURNING *) SELECT 1" => "delete.unbounded";
    cte_update_from: "WITH x AS (SELECT 1) UPDATE t SET a = 1 FROM x" => "update.unbounded";
}

// ---------------------------------------------------------------- EXPLAIN / PREPARE / EXECUTE
cases! {
    explain_analyze_delete: "EXPLAIN ANALYZE DELETE FROM users" => "delete.unbounded", "", "users";
    explain_analyse_spelling: "EXPLAIN ANALYSE DELETE FROM users" => "delete.unbounded";
    explain_analyze_opts: "EXPLAIN (ANALYZE, BUFFERS) UPDATE users SET a = 1" => "update.unbounded";
    explain_analyze_true: "EXPLAIN (ANALYZE true) DELETE FROM users" => "delete.unbounded";
    explain_analyze_on: "EXPLAIN (FORMAT JSON, ANALYZE on) DELETE FROM users" => "delete.unbounded";
    explain_analyze_one: "EXPLAIN (ANALYZE 1) DELETE FROM users" => "delete.unbounded";
    explain_analyze_ctas: "EXPLAIN ANALYZE CREATE TABLE x AS WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "delete.unbounded create.other";
    explain_analyze_execute: "EXPLAIN ANALYZE EXECUTE wipe" => "code.opaque";
    explain_analyze_select_fn: "EXPLAIN ANALYZE SELECT pg_terminate_backend(123)" => "system";
    explain_analyze_bounded: "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1" => "= delete.bounded";
    explain_plain_cte_delete: "EXPLAIN WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "= read", "destructive";
    prepare_delete: "PREPARE wipe AS DELETE FROM users" => "= delete.unbounded", "", "users";
    prepare_typed: "PREPARE p (int) AS DELETE FROM users WHERE id = $1" => "= delete.bounded";
    prepare_param_bool: "PREPARE p (bool) AS DELETE FROM users WHERE $1" => "= delete.maybe_unbounded";
    prepare_select: "PREPARE q AS SELECT * FROM users WHERE id = $1" => "= read";
    prepare_update: "PREPARE u AS UPDATE users SET a = 1" => "= update.unbounded";
    prepare_cte: "PREPARE p AS WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d" => "delete.unbounded";
    prepare_insert: "PREPARE ins AS INSERT INTO t VALUES ($1)" => "= write";
    execute_plain: "EXECUTE wipe" => "= code.opaque";
    execute_args: "EXECUTE p(1, 'x')" => "= code.opaque";
    deallocate_one: "DEALLOCATE wipe" => "= session";
    deallocate_prepare: "DEALLOCATE PREPARE wipe" => "= session";
    deallocate_all: "DEALLOCATE ALL" => "= session";
    ctas_execute: "CREATE TABLE x AS EXECUTE wipe" => "create.other code.opaque";
}

// ---------------------------------------------------------------- DROP
cases! {
    drop_table: "DROP TABLE users" => "= drop.table", "", "users";
    drop_table_qualified: "DROP TABLE public.users" => "= drop.table", "", "public.users";
    drop_table_if_exists: "DROP TABLE IF EXISTS users" => "= drop.table", "", "users";
    drop_table_multi: "DROP TABLE IF EXISTS a, b, billing.c CASCADE" => "= drop.table", "", "a b billing.c";
    drop_table_restrict: "DROP TABLE t RESTRICT" => "= drop.table";
    drop_table_quoted: r#"DROP TABLE "Users""# => "= drop.table", "", "Users";
    drop_table_upper: "DROP TABLE USERS" => "= drop.table", "", "users";
    drop_table_mixed_case_kw: "dRoP tAbLe users" => "= drop.table";
    drop_table_uescape: r#"DROP TABLE U&"\0075sers""# => "= drop.table", "", "users";
    drop_foreign_table: "DROP FOREIGN TABLE ft" => "= drop.table";
    drop_view: "DROP VIEW v" => "= drop.view", "", "v";
    drop_matview: "DROP MATERIALIZED VIEW IF EXISTS mv CASCADE" => "= drop.view", "", "mv";
    drop_index: "DROP INDEX idx_users_email" => "= drop.index", "", "idx_users_email";
    drop_index_concurrently: "DROP INDEX CONCURRENTLY IF EXISTS public.idx" => "= drop.index", "", "public.idx";
    drop_function: "DROP FUNCTION f(int)" => "= drop.function", "", "f";
    drop_function_qualified: "DROP FUNCTION IF EXISTS app.f(int, text), g" => "= drop.function", "", "app.f g";
    drop_procedure: "DROP PROCEDURE p()" => "= drop.function";
    drop_routine: "DROP ROUTINE r" => "= drop.function";
    drop_aggregate: "DROP AGGREGATE myavg(int)" => "= drop.function";
    drop_type: "DROP TYPE mood" => "= drop.type", "", "mood";
    drop_domain: "DROP DOMAIN email_address CASCADE" => "= drop.type";
    drop_extension: "DROP EXTENSION IF EXISTS pgcrypto" => "= drop.extension", "", "pgcrypto";
    drop_schema: "DROP SCHEMA billing CASCADE" => "= drop.schema", "", "billing";
    drop_schema_multi: "DROP SCHEMA IF EXISTS a, b" => "= drop.schema", "", "a b";
    drop_database: "DROP DATABASE app" => "= drop.database", "", "app";
    drop_database_force: "DROP DATABASE IF EXISTS app WITH (FORCE)" => "= drop.database", "", "app";
    drop_database_force_short: "DROP DATABASE app (FORCE)" => "= drop.database";
    drop_role: "DROP ROLE alice" => "= drop.role", "", "alice";
    drop_user: "DROP USER IF EXISTS alice, bob" => "= drop.role", "", "alice bob";
    drop_group: "DROP GROUP g" => "= drop.role";
    drop_owned: "DROP OWNED BY alice CASCADE" => "= drop.owned", "", "alice";
    drop_sequence: "DROP SEQUENCE s" => "= drop.other", "", "s";
    drop_trigger: "DROP TRIGGER trg ON public.users" => "= drop.other", "", "public.users";
    drop_rule: "DROP RULE r ON t" => "= drop.other", "", "t";
    drop_policy: "DROP POLICY p ON t" => "= drop.other";
    drop_tablespace: "DROP TABLESPACE ts" => "= drop.other";
    drop_publication: "DROP PUBLICATION pub" => "= drop.other";
    drop_subscription: "DROP SUBSCRIPTION sub" => "= drop.other";
    drop_server: "DROP SERVER s CASCADE" => "= drop.other";
    drop_collation: "DROP COLLATION c" => "= drop.other";
    drop_cast: "DROP CAST (text AS int)" => "= drop.other";
    drop_event_trigger: "DROP EVENT TRIGGER et" => "= drop.other";
    drop_language: "DROP LANGUAGE plperl" => "= drop.other";
    drop_operator: "DROP OPERATOR ## (int, int)" => "= drop.other";
    drop_statistics: "DROP STATISTICS s" => "= drop.other";
    drop_user_mapping: "DROP USER MAPPING FOR alice SERVER s" => "= drop.other";
    drop_fdw: "DROP FOREIGN DATA WRAPPER w" => "= drop.other";
    drop_conversion: "DROP CONVERSION c" => "= drop.other";
    drop_text_search: "DROP TEXT SEARCH CONFIGURATION c" => "= drop.other";
    drop_access_method: "DROP ACCESS METHOD am" => "= drop.other";
    drop_transform: "DROP TRANSFORM FOR int LANGUAGE plperl" => "= drop.other";
    truncate_one: "TRUNCATE users" => "= truncate", "", "users";
    truncate_table_kw: "TRUNCATE TABLE users" => "= truncate";
    truncate_many: "TRUNCATE a, public.b, billing.c RESTART IDENTITY CASCADE" => "= truncate", "", "a public.b billing.c";
    truncate_only: "TRUNCATE ONLY parent" => "= truncate";
}

// ---------------------------------------------------------------- ALTER
cases! {
    alter_drop_column: "ALTER TABLE users DROP COLUMN email" => "= alter.drop_column", "", "users";
    alter_drop_col_no_kw: "ALTER TABLE users DROP email" => "= alter.drop_column";
    alter_drop_col_if_exists: "ALTER TABLE IF EXISTS users DROP COLUMN IF EXISTS email CASCADE" => "= alter.drop_column";
    alter_drop_col_among: "ALTER TABLE users ADD COLUMN a int, DROP COLUMN b, ALTER COLUMN c SET DEFAULT 1" => "alter.drop_column alter.other";
    alter_drop_col_last: "ALTER TABLE users ADD COLUMN a int, ADD COLUMN b int, DROP COLUMN c" => "alter.drop_column";
    alter_drop_col_only: "ALTER TABLE ONLY public.users DROP COLUMN c" => "alter.drop_column", "", "public.users";
    alter_foreign_drop_col: "ALTER FOREIGN TABLE ft DROP COLUMN c" => "alter.drop_column";
    alter_column_type: "ALTER TABLE users ALTER COLUMN id TYPE bigint" => "= alter.column_type";
    alter_column_set_data_type: "ALTER TABLE users ALTER id SET DATA TYPE bigint" => "= alter.column_type";
    alter_column_type_using: "ALTER TABLE users ALTER COLUMN email TYPE int USING length(email)" => "= alter.column_type";
    alter_column_type_using_danger: "ALTER TABLE users ALTER COLUMN oid_col TYPE int USING lo_unlink(oid_col)" => "alter.column_type large_object.delete";
    alter_detach: "ALTER TABLE measurements DETACH PARTITION m2023" => "= alter.detach_partition", "", "measurements m2023";
    alter_detach_concurrently: "ALTER TABLE measurements DETACH PARTITION m2023 CONCURRENTLY" => "= alter.detach_partition";
    alter_detach_finalize: "ALTER TABLE measurements DETACH PARTITION m2023 FINALIZE" => "= alter.detach_partition";
    alter_attach: "ALTER TABLE m ATTACH PARTITION p FOR VALUES FROM (1) TO (2)" => "= alter.other";
    alter_rename_table: "ALTER TABLE users RENAME TO people" => "= alter.rename", "", "users";
    alter_rename_column: "ALTER TABLE users RENAME COLUMN email TO mail" => "= alter.rename";
    alter_rename_constraint: "ALTER TABLE users RENAME CONSTRAINT c TO d" => "= alter.rename";
    alter_rename_index: "ALTER INDEX idx RENAME TO idx2" => "= alter.rename";
    alter_rename_schema: "ALTER SCHEMA billing RENAME TO old_billing" => "= alter.rename", "", "billing";
    alter_rename_database: "ALTER DATABASE app RENAME TO app_old" => "= alter.rename alter.database";
    alter_rename_function: "ALTER FUNCTION f(int) RENAME TO g" => "= alter.rename";
    alter_rename_view: "ALTER VIEW v RENAME TO w" => "= alter.rename";
    alter_rename_role: "ALTER ROLE alice RENAME TO bob" => "= alter.rename alter.role";
    alter_set_schema: "ALTER TABLE users SET SCHEMA archive" => "= alter.set_schema", "", "users";
    alter_set_schema_fn: "ALTER FUNCTION f(int) SET SCHEMA archive" => "= alter.set_schema";
    alter_set_schema_type: "ALTER TYPE mood SET SCHEMA archive" => "= alter.set_schema";
    alter_add_column: "ALTER TABLE users ADD COLUMN last_login timestamptz" => "= alter.other";
    alter_add_constraint: "ALTER TABLE o ADD CONSTRAINT c CHECK (total >= 0) NOT VALID" => "= alter.other";
    alter_drop_constraint: "ALTER TABLE o DROP CONSTRAINT c" => "= alter.other";
    alter_set_not_null: "ALTER TABLE o ALTER COLUMN a SET NOT NULL" => "= alter.other";
    ddl_alter_user_password: "ALTER USER app PASSWORD 'x' VALID UNTIL '2000-01-01'" => "= alter.role";
    ddl_alter_group_drop_user: "ALTER GROUP admins DROP USER alice" => "= alter.role";
    ddl_alter_database_connlimit: "ALTER DATABASE app CONNECTION LIMIT 0" => "= alter.database";
    ddl_alter_database_allow: "ALTER DATABASE app WITH ALLOW_CONNECTIONS false" => "= alter.database";
    ddl_owner_to_function: "ALTER FUNCTION f() OWNER TO nobody" => "alter.owner";
    ddl_enum_rename_value: "ALTER TYPE mood RENAME VALUE 'ok' TO 'bad'" => "alter.rename";
    ddl_enum_add_value: "ALTER TYPE mood ADD VALUE 'great'" => "= alter.other";
    ddl_no_inherit: "ALTER TABLE child NO INHERIT parent" => "alter.detach_partition";
    ddl_enable_replica_trigger: "ALTER TABLE o ENABLE REPLICA TRIGGER t" => "= alter.trigger";
    ddl_enable_always_rule: "ALTER TABLE o ENABLE ALWAYS RULE r" => "= alter.trigger";
    ddl_no_force_rls: "ALTER TABLE o NO FORCE ROW LEVEL SECURITY" => "= alter.trigger";
    ddl_event_trigger_disable: "ALTER EVENT TRIGGER et DISABLE" => "= alter.trigger";
    ddl_refresh_no_data: "REFRESH MATERIALIZED VIEW mv WITH NO DATA" => "truncate";
    ddl_refresh: "REFRESH MATERIALIZED VIEW mv" => "= maintenance";
    ddl_set_unlogged: "ALTER TABLE o SET UNLOGGED" => "= alter.storage";
    ddl_identity_restart: "ALTER TABLE o ALTER COLUMN id RESTART WITH 1" => "alter.sequence";
    ddl_drop_identity: "ALTER TABLE o ALTER COLUMN id DROP IDENTITY" => "alter.sequence";
    ddl_sequence_maxvalue: "ALTER SEQUENCE s MAXVALUE 5" => "alter.sequence";
    ddl_sequence_owned_by: "ALTER SEQUENCE s OWNED BY t.id" => "= alter.other";
    ddl_cascade_default_fk: "ALTER TABLE orders ADD COLUMN owner_id int DEFAULT 1 REFERENCES users(id) ON DELETE CASCADE" => "alter.cascade";
    ddl_cascade_two_actions: "ALTER TABLE orders ADD COLUMN owner_id int NOT NULL DEFAULT 1, ADD FOREIGN KEY (owner_id) REFERENCES users(id) ON DELETE SET NULL" => "alter.cascade";
    ddl_add_column_default_routine: "ALTER TABLE orders ADD COLUMN note text DEFAULT ''" => "= alter.other";
    ddl_add_fk_routine: "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES users(id) ON DELETE CASCADE" => "= alter.other";
    ddl_foreign_program: "CREATE FOREIGN TABLE f (x text) SERVER s OPTIONS (program 'rm -rf /')" => "system";
    ddl_foreign_filename: "CREATE FOREIGN TABLE f (x text) SERVER s OPTIONS (filename '/etc/passwd')" => "system";
    ddl_foreign_plain: "CREATE FOREIGN TABLE f (x text) SERVER s OPTIONS (table_name 'x')" => "= create.other";
    ddl_update_pg_settings: "UPDATE pg_settings SET setting = 'evil' WHERE name = 'search_path'" => "system.catalog";
    ddl_insert_pg_catalog: "INSERT INTO pg_catalog.pg_authid (rolname) VALUES ('x')" => "system.catalog";
    ddl_delete_pg_class: "DELETE FROM pg_class WHERE relname = 't'" => "system.catalog";
    ddl_create_aggregate_builtin: "CREATE AGGREGATE array_accum (anycompatible) (sfunc = array_append, stype = anycompatiblearray, initcond = '{}')" => "= create.other";
    ddl_create_aggregate_user: "CREATE AGGREGATE agg (int) (sfunc = my_step, stype = int)" => "create.code";
    ddl_unlisted_subscription: "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p" => "ddl.unlisted";
    ddl_routine_create_table: "CREATE TABLE t (id int PRIMARY KEY)" => "= create.other";
    ddl_routine_index: "CREATE INDEX CONCURRENTLY i ON t (a)" => "= create.other";
    ddl_routine_comment: "COMMENT ON TABLE t IS 'x'" => "= alter.other";
    alter_owner: "ALTER TABLE o OWNER TO bob" => "= alter.owner";
    alter_rls: "ALTER TABLE o ENABLE ROW LEVEL SECURITY" => "= alter.other";
    alter_disable_trigger: "ALTER TABLE o DISABLE TRIGGER ALL" => "= alter.trigger";
    alter_index_set: "ALTER INDEX idx SET (fillfactor = 70)" => "= alter.other";
    alter_sequence: "ALTER SEQUENCE s RESTART WITH 1" => "= alter.sequence";
    alter_type_add_value: "ALTER TYPE mood ADD VALUE 'meh'" => "= alter.other";
    alter_domain: "ALTER DOMAIN d DROP CONSTRAINT c" => "= alter.other";
    alter_function_opts: "ALTER FUNCTION f() SECURITY DEFINER" => "= alter.other";
    alter_role_superuser: "ALTER ROLE alice SUPERUSER" => "= alter.role";
    alter_role_set: "ALTER ROLE alice SET search_path = evil" => "= alter.role";
    alter_database_set: "ALTER DATABASE app SET work_mem = '1GB'" => "= alter.database";
    alter_extension_update: "ALTER EXTENSION pgcrypto UPDATE" => "= ddl.unlisted";
    alter_default_privs: "ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO r" => "grant";
    alter_default_privs_revoke: "ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM PUBLIC" => "revoke";
    alter_system: "ALTER SYSTEM SET max_connections = 10" => "= system";
    alter_system_reset: "ALTER SYSTEM RESET ALL" => "= system";
    alter_publication: "ALTER PUBLICATION p ADD TABLE t" => "= ddl.unlisted";
    alter_table_all_in_tablespace: "ALTER TABLE ALL IN TABLESPACE a SET TABLESPACE b" => "= alter.other";
    reassign_owned: "REASSIGN OWNED BY alice TO bob" => "= reassign_owned", "", "alice";
    comment_on: "COMMENT ON TABLE users IS 'people'" => "= alter.other";
    security_label: "SECURITY LABEL ON TABLE t IS 'x'" => "= ddl.unlisted";
}

// ---------------------------------------------------------------- CREATE
cases! {
    create_table: "CREATE TABLE t (id int)" => "= create.other", "", "t";
    create_table_qualified: "CREATE TABLE billing.t (id int PRIMARY KEY)" => "= create.other", "", "billing.t";
    create_temp_table: "CREATE TEMP TABLE tmp (id int) ON COMMIT DROP" => "= create.other";
    create_table_like: "CREATE TABLE t2 (LIKE t INCLUDING ALL)" => "= create.other", "", "t2 t";
    create_table_partition: "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (1) TO (10)" => "= create.other";
    create_ctas: "CREATE TABLE active AS SELECT * FROM users WHERE status = 'a'" => "= create.other", "", "active users";
    create_select_into: "SELECT * INTO backup FROM users" => "= create.other", "", "backup users";
    create_index: "CREATE INDEX idx ON users (email)" => "= create.other", "", "idx users";
    create_index_concurrently: "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx ON users (lower(email))" => "= create.other";
    create_view: "CREATE VIEW v AS SELECT * FROM users" => "= create.other", "", "v users";
    create_or_replace_view: "CREATE OR REPLACE VIEW v AS SELECT 1" => "= create.other";
    create_matview: "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t WITH NO DATA" => "= create.other";
    create_schema: "CREATE SCHEMA billing" => "= create.other", "", "billing";
    create_schema_elements: "CREATE SCHEMA s CREATE TABLE t (id int) CREATE VIEW v AS SELECT 1" => "= create.other";
    create_sequence: "CREATE SEQUENCE s START 1" => "= create.other";
    create_type_enum: "CREATE TYPE mood AS ENUM ('sad', 'ok')" => "= create.other";
    create_type_composite: "CREATE TYPE pair AS (a int, b int)" => "= create.other";
    create_type_range: "CREATE TYPE fr AS RANGE (subtype = float8)" => "= create.other";
    create_domain: "CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%')" => "= create.other";
    create_extension: "CREATE EXTENSION IF NOT EXISTS pgcrypto" => "= create.other", "", "pgcrypto";
    create_role: "CREATE ROLE alice LOGIN" => "= create.other", "", "alice";
    create_user: "CREATE USER bob WITH PASSWORD 'x'" => "= create.other";
    create_database: "CREATE DATABASE app2" => "= create.other", "", "app2";
    create_policy: "CREATE POLICY p ON t USING (owner = current_user)" => "= create.other";
    create_statistics: "CREATE STATISTICS s ON a, b FROM t" => "= create.other";
    create_publication: "CREATE PUBLICATION p FOR TABLE t" => "= create.other";
    create_server: "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw" => "= create.other";
    create_foreign_table: "CREATE FOREIGN TABLE ft (a int) SERVER s" => "= create.other";
    create_user_mapping: "CREATE USER MAPPING FOR alice SERVER s" => "= create.other";
    create_collation: "CREATE COLLATION c (provider = icu, locale = 'de')" => "= create.other";
    create_tablespace: "CREATE TABLESPACE ts LOCATION '/data'" => "= create.other";
    create_text_search: "CREATE TEXT SEARCH CONFIGURATION c (COPY = english)" => "= create.other";
    import_foreign_schema: "IMPORT FOREIGN SCHEMA remote FROM SERVER s INTO local" => "= create.other";
    create_ts_dict: "CREATE TEXT SEARCH DICTIONARY d (TEMPLATE = simple)" => "= create.other";
    alter_ts_dict: "ALTER TEXT SEARCH DICTIONARY d (StopWords = english)" => "= alter.other";
    alter_ts_config: "ALTER TEXT SEARCH CONFIGURATION c ALTER MAPPING FOR word WITH simple" => "= alter.other";
    create_view_danger_fn: "CREATE VIEW killer AS SELECT pg_terminate_backend(pid) FROM pg_stat_activity" => "create.other system";
    create_table_default_danger: "CREATE TABLE t (a int DEFAULT pg_reload_conf()::int)" => "create.other system";
    create_conversion: "CREATE CONVERSION c FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8" => "create.other";
}

// ---------------------------------------------------------------- code
cases! {
    code_create_function_sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'" => "= create.code", "", "f";
    code_create_function_sql_delete: "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM users'" => "create.code delete.unbounded";
    code_create_function_atomic: "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM users; END" => "create.code delete.unbounded";
    code_create_function_return: "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql RETURN a + 1" => "= create.code";
    code_create_function_plpgsql: "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated_at := now(); RETURN NEW; END$$" => "= create.code";
    code_trigger_function_delete: "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN DELETE FROM audit; RETURN NEW; END$$" => "create.code delete.unbounded";
    code_event_trigger_function: "CREATE FUNCTION f() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE '%', tg_tag; END$$" => "= create.code";
    code_function_params: "CREATE FUNCTION f(p_id int) RETURNS void LANGUAGE plpgsql AS $$BEGIN DELETE FROM t WHERE id = p_id; END$$" => "= create.code delete.bounded";
    code_function_set_search_path: "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = pg_catalog AS 'SELECT 1'" => "= create.code";
    code_create_function_plpgsql_drop: "CREATE OR REPLACE FUNCTION f() RETURNS void AS $$BEGIN DROP TABLE users; END$$ LANGUAGE plpgsql" => "create.code drop.table";
    code_create_function_plpgsql_dynamic: "CREATE FUNCTION f(t text) RETURNS void LANGUAGE plpgsql AS $$BEGIN EXECUTE 'DROP TABLE ' || quote_ident(t); END$$" => "create.code code.opaque";
    code_create_function_plpython: "CREATE FUNCTION f() RETURNS void LANGUAGE plpython3u AS $$import os$$" => "create.code code.opaque";
    code_create_function_c: "CREATE FUNCTION f() RETURNS void AS 'mylib', 'f' LANGUAGE C" => "create.code code.opaque";
    code_create_procedure: "CREATE PROCEDURE p() LANGUAGE sql AS $$ TRUNCATE users $$" => "create.code truncate";
    code_create_trigger: "CREATE TRIGGER trg BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION f()" => "= create.code", "", "users f";
    code_create_constraint_trigger: "CREATE CONSTRAINT TRIGGER trg AFTER INSERT ON t DEFERRABLE FOR EACH ROW EXECUTE PROCEDURE f()" => "= create.code";
    code_create_event_trigger: "CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION f()" => "= create.code";
    code_create_rule_instead_delete: "CREATE RULE r AS ON INSERT TO log DO INSTEAD DELETE FROM users" => "create.code delete.unbounded", "", "log users";
    code_create_rule_also: "CREATE RULE r AS ON UPDATE TO t DO ALSO UPDATE audit SET n = n + 1" => "create.code update.unbounded";
    code_create_rule_multi: "CREATE RULE r AS ON DELETE TO t DO INSTEAD (INSERT INTO log VALUES (1); DELETE FROM t2 WHERE true)" => "create.code write delete.unbounded";
    code_create_rule_nothing: "CREATE RULE r AS ON DELETE TO t DO INSTEAD NOTHING" => "= create.code";
    code_create_rule_select: "CREATE RULE \"_RETURN\" AS ON SELECT TO v DO INSTEAD SELECT * FROM t" => "create.code";
    code_create_operator: "CREATE OPERATOR ## (LEFTARG = int, RIGHTARG = int, FUNCTION = f)" => "= create.code";
    code_create_aggregate: "CREATE AGGREGATE myavg(int) (SFUNC = f, STYPE = int)" => "= create.code";
    code_create_cast: "CREATE CAST (text AS int) WITH FUNCTION f(text)" => "= create.code";
    code_create_language: "CREATE LANGUAGE plsample HANDLER plsample_call_handler" => "= create.code";
    code_create_language_is_extension: "CREATE LANGUAGE plperl" => "= create.other";
    code_create_transform: "CREATE TRANSFORM FOR int LANGUAGE plperl (FROM SQL WITH FUNCTION f(internal), TO SQL WITH FUNCTION g(internal))" => "= create.code";
    code_do_plain: "DO $$BEGIN RAISE NOTICE 'hi'; END$$" => "= code.do";
    code_do_delete: "DO $$BEGIN DELETE FROM users; END$$" => "code.do delete.unbounded";
    code_do_drop: "DO $$ BEGIN DROP TABLE users; END $$" => "code.do drop.table";
    code_do_truncate_if: "DO $$BEGIN IF true THEN TRUNCATE users; END IF; END$$" => "code.do truncate";
    code_do_loop: "DO $$DECLARE r record; BEGIN FOR r IN SELECT id FROM t LOOP DELETE FROM u WHERE id = r.id; END LOOP; END$$" => "code.do delete.bounded";
    code_do_exec_dynamic: "DO $$DECLARE t text := 'users'; BEGIN EXECUTE 'DROP TABLE ' || t; END$$" => "code.do code.opaque";
    code_do_exec_const: "DO $$BEGIN EXECUTE 'DROP TABLE users'; END$$" => "code.do drop.table";
    code_do_exec_format: "DO $$BEGIN EXECUTE format('TRUNCATE %I', 'users'); END$$" => "code.do code.opaque";
    code_do_perform: "DO $$BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity; END$$" => "code.do system";
    code_do_assign_fn: "DO $$DECLARE x int; BEGIN x := lo_unlink(42); END$$" => "code.do large_object.delete";
    code_do_if_fn: "DO $$BEGIN IF pg_reload_conf() THEN RAISE NOTICE 'ok'; END IF; END$$" => "code.do system";
    code_do_language: "DO LANGUAGE plpgsql $$BEGIN DELETE FROM t; END$$" => "code.do delete.unbounded";
    code_do_other_language: "DO LANGUAGE plperlu $$ system('rm -rf /') $$" => "code.do code.opaque";
    code_do_nested_block: "DO $$BEGIN BEGIN UPDATE t SET a = 1; EXCEPTION WHEN others THEN NULL; END; END$$" => "code.do update.unbounded";
    code_do_open_execute: "DO $$DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE 'SELECT 1'; END$$" => "code.do";
    code_do_return_query_execute: "CREATE FUNCTION f() RETURNS SETOF int LANGUAGE plpgsql AS $$BEGIN RETURN QUERY EXECUTE $q$SELECT 1$q$; END$$" => "create.code";
    code_do_dynfors: "DO $$DECLARE r record; q text := 'DELETE FROM t RETURNING 1'; BEGIN FOR r IN EXECUTE q LOOP END LOOP; END$$" => "code.do code.opaque";
    code_do_commit: "DO $$BEGIN COMMIT; END$$" => "code.do";
    code_do_call: "DO $$BEGIN CALL p(); END$$" => "code.do code.call";
    code_do_nested_do: "DO $$BEGIN EXECUTE 'DO $x$BEGIN DROP TABLE users; END$x$'; END$$" => "code.do drop.table";
    code_do_bad_body: "DO $$ this is not plpgsql $$" => "code.do code.opaque";
    code_call: "CALL do_cleanup()" => "= code.call", "", "do_cleanup";
    code_call_qualified: "CALL maint.cleanup(1, 'x')" => "= code.call", "", "maint.cleanup";
    code_call_dangerous_arg: "CALL p(pg_terminate_backend(1))" => "code.call system";
}

// ---------------------------------------------------------------- COPY
cases! {
    copy_from_stdin: "COPY users FROM STDIN" => "= copy.in", "", "users";
    copy_from_stdin_csv: "COPY users (id, email) FROM STDIN WITH (FORMAT csv, HEADER true)" => "= copy.in";
    copy_to_stdout: "COPY users TO STDOUT" => "= copy.out", "", "users";
    copy_query_to_stdout: "COPY (SELECT * FROM users WHERE id < 10) TO STDOUT WITH CSV" => "= copy.out", "", "users";
    copy_to_program: "COPY users TO PROGRAM 'gzip > /tmp/u.gz'" => "copy.program";
    copy_from_program: "COPY users FROM PROGRAM 'curl http://x'" => "copy.program";
    copy_query_to_program: "COPY (SELECT 1) TO PROGRAM 'rm -rf /'" => "copy.program";
    copy_from_file: "COPY users FROM '/etc/passwd'" => "copy.in system";
    copy_to_file: "COPY users TO '/tmp/users.csv'" => "copy.out system";
    copy_binary: "COPY t FROM STDIN (FORMAT binary)" => "= copy.in";
    copy_where: "COPY t FROM STDIN WHERE a > 1" => "= copy.in";
    copy_query_danger: "COPY (SELECT lo_export(1, '/tmp/x')) TO STDOUT" => "copy.out system";
}

// ---------------------------------------------------------------- dangerous functions
cases! {
    fn_attribute_notation: "SELECT (12345::oid).lo_unlink" => "large_object.delete";
    fn_attribute_notation_setval: "SELECT ('users_id_seq'::regclass).setval" => "alter.sequence";
    fn_column_default_call: "CREATE TABLE x (a int DEFAULT pg_terminate_backend(1))" => "create.other system";
    fn_domain_check_call: "CREATE DOMAIN d AS int CHECK (lo_unlink(VALUE) = 1)" => "large_object.delete";
    fn_copy_where_call: "COPY t FROM STDIN WHERE lo_unlink(a) = 1" => "copy.in large_object.delete";
    fn_setval: "SELECT setval('users_id_seq', 1, false)" => "alter.sequence";
    fn_lo_put: "SELECT lo_put(42, 0, 'x')" => "large_object.write";
    fn_lo_export_writes: "SELECT lo_export(42, '/tmp/x')" => "large_object.write system";
    fn_user_function: "SELECT archive_everything()" => "= code.call", "", "archive_everything";
    fn_schema_shadow: "SELECT evil.now()" => "= code.call", "", "evil.now";
    fn_builtin_reads: "SELECT now(), lower('A'), count(*), pg_get_indexdef(1), format_type(23, NULL), nextval('s') FROM t" => "= read";
    fn_dblink_open: "SELECT dblink_open('c', 'DELETE FROM users RETURNING *')" => "delete.unbounded";
    fn_lo_unlink: "SELECT lo_unlink(42)" => "large_object.delete", "system", "lo_unlink";
    fn_lo_import: "SELECT lo_import('/etc/passwd')" => "system";
    fn_lo_export: "SELECT lo_export(1, '/tmp/x')" => "system";
    fn_terminate: "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'" => "system";
    fn_cancel: "SELECT pg_cancel_backend(123)" => "system";
    fn_reload: "SELECT pg_reload_conf()" => "system";
    fn_rotate: "SELECT pg_rotate_logfile()" => "system";
    fn_promote: "SELECT pg_promote()" => "system";
    fn_dblink_exec: "SELECT dblink_exec('host=x', 'DROP TABLE users')" => "system drop.table";
    fn_dblink: "SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)" => "system";
    fn_file_unlink: "SELECT pg_file_unlink('/tmp/x')" => "system";
    fn_file_write: "SELECT pg_file_write('/tmp/x', 'data', false)" => "system";
    fn_read_file: "SELECT pg_read_file('/etc/passwd')" => "system";
    fn_read_binary_file: "SELECT pg_read_binary_file('postgresql.conf')" => "system";
    fn_ls_dir: "SELECT pg_ls_dir('.')" => "system";
    fn_set_config: "SELECT set_config('work_mem', '1GB', false)" => "= session";
    fn_set_config_django_timezone: "SELECT set_config('TimeZone', 'UTC', false)" => "= session";
    fn_set_config_pg_dump_search_path: "SELECT pg_catalog.set_config('search_path', '', false)" => "= session session.search_path";
    fn_set_config_pg_dump_restrict: "SELECT pg_catalog.set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'" => "= session";
    fn_set_config_pg_settings_other: "SELECT set_config(name, 'on', false) FROM pg_settings WHERE name = 'allow_system_table_mods'" => "session.other";
    fn_set_config_pg_settings_any: "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name LIKE '%'" => "session.encoding session.replication_role session.other";
    fn_set_config_unknown_setting: "SELECT set_config('transform_null_equals', 'on', false)" => "session.other";
    fn_heap_force_kill: "SELECT heap_force_kill('t'::regclass, ARRAY['(0,1)']::tid[])" => "system";
    fn_heap_force_freeze: "SELECT heap_force_freeze('t'::regclass, ARRAY['(0,1)']::tid[])" => "system";
    fn_drop_slot: "SELECT pg_drop_replication_slot('s')" => "system";
    fn_switch_wal: "SELECT pg_switch_wal()" => "system";
    fn_restore_point: "SELECT pg_create_restore_point('x')" => "system";
    fn_qualified: "SELECT pg_catalog.pg_terminate_backend(1)" => "system", "", "pg_catalog.pg_terminate_backend";
    fn_quoted: r#"SELECT "pg_terminate_backend"(1)"# => "system";
    fn_quoted_upper: r#"SELECT "LO_UNLINK"(1)"# => "large_object.delete";
    fn_upper: "SELECT PG_TERMINATE_BACKEND(1)" => "system";
    fn_in_where: "SELECT 1 FROM t WHERE lo_unlink(oid_col) > 0" => "large_object.delete";
    fn_in_order_by: "SELECT * FROM t ORDER BY pg_cancel_backend(1)" => "system";
    fn_in_group_by: "SELECT count(*) FROM t GROUP BY pg_reload_conf()" => "system";
    fn_in_having: "SELECT 1 FROM t GROUP BY a HAVING pg_reload_conf()" => "system";
    fn_in_case: "SELECT CASE WHEN x THEN lo_unlink(1) END FROM t" => "large_object.delete";
    fn_in_coalesce: "SELECT coalesce(NULL, pg_terminate_backend(1))" => "system";
    fn_nested_call: "SELECT abs(lo_unlink(1))" => "large_object.delete";
    fn_in_from: "SELECT * FROM pg_terminate_backend(1)" => "system";
    fn_in_lateral: "SELECT * FROM a, LATERAL pg_cancel_backend(a.pid) x" => "system";
    fn_in_insert_values: "INSERT INTO t VALUES (lo_import('/etc/passwd'))" => "write system";
    fn_in_update_set: "UPDATE t SET a = pg_reload_conf() WHERE id = 1" => "update.bounded system";
    fn_in_delete_where: "DELETE FROM t WHERE id = lo_unlink(5)" => "delete.bounded large_object.delete";
    fn_in_cte: "WITH x AS (SELECT pg_terminate_backend(1)) SELECT 1" => "system";
    fn_in_subquery: "SELECT (SELECT pg_terminate_backend(1))" => "system";
    fn_in_array: "SELECT ARRAY[pg_cancel_backend(1)]" => "system";
    fn_in_filter: "SELECT count(*) FILTER (WHERE pg_reload_conf()) FROM t" => "system";
    fn_in_window: "SELECT sum(a) OVER (ORDER BY pg_reload_conf()) FROM t" => "system";
    fn_in_values: "VALUES (pg_reload_conf())" => "system";
    fn_in_returning: "DELETE FROM t WHERE id = 1 RETURNING lo_unlink(oid_col)" => "large_object.delete";
    fn_in_on_conflict: "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = pg_reload_conf()::int" => "system";
    fn_in_join_on: "SELECT * FROM a JOIN b ON pg_reload_conf()" => "system";
    fn_in_limit: "SELECT * FROM t LIMIT pg_cancel_backend(1)::int" => "system";
    fn_named_arg: "SELECT pg_terminate_backend(pid => 1)" => "system";
    fn_variadic_wrapper: "SELECT format('%s', pg_reload_conf())" => "system";
    fn_query_to_xml: "SELECT query_to_xml('DELETE FROM users RETURNING 1', true, true, '')" => "delete.unbounded";
    fn_query_to_xml_dynamic: "SELECT query_to_xml($1, true, true, '')" => "code.opaque";
    fn_ts_stat: "SELECT * FROM ts_stat('WITH d AS (DELETE FROM t RETURNING 1) SELECT to_tsvector(''x'')')" => "delete.unbounded";
}

// ---------------------------------------------------------------- session
cases! {
    session_set_encoding_sjis: "SET client_encoding TO 'SJIS'" => "session session.encoding";
    session_set_encoding_unquoted: "SET client_encoding = big5" => "session session.encoding";
    session_set_names_gbk: "SET NAMES 'GBK'" => "session session.encoding";
    session_set_names_gb18030: "SET NAMES 'gb18030'" => "session session.encoding";
    session_set_encoding_uhc: "SET client_encoding = 'UHC'" => "session.encoding";
    session_set_encoding_johab: "SET client_encoding = 'johab'" => "session.encoding";
    session_set_encoding_shift_jis: "SET client_encoding = 'Shift_JIS'" => "session.encoding";
    session_set_encoding_local: "SET LOCAL client_encoding = 'SJIS'" => "session.encoding";
    session_set_encoding_default: "SET client_encoding TO DEFAULT" => "= session";
    session_reset_encoding: "RESET client_encoding" => "= session";
    session_scs_off: "SET standard_conforming_strings = off" => "session session.string_literals";
    session_scs_false: "SET standard_conforming_strings TO false" => "session.string_literals";
    session_scs_0: "SET standard_conforming_strings = 0" => "session.string_literals";
    session_scs_local: "SET LOCAL standard_conforming_strings = 'off'" => "session.string_literals";
    session_replication_role: "SET session_replication_role = replica" => "session session.replication_role";
    session_replication_role_local: "SET LOCAL session_replication_role TO 'replica'" => "session.replication_role";
    session_search_path: "SET search_path TO evil, public" => "session session.search_path";
    session_set_schema: "SET SCHEMA 'evil'" => "session.search_path";
    session_search_path_local: "SET LOCAL search_path = pg_temp, public" => "session.search_path";
    session_reset_search_path: "RESET search_path" => "= session";
    session_set_role: "SET ROLE postgres" => "session session.role";
    session_set_role_none: "SET ROLE NONE" => "= session";
    session_reset_role: "RESET ROLE" => "= session";
    session_set_local_role: "SET LOCAL ROLE admin" => "session.role";
    session_session_authorization: "SET SESSION AUTHORIZATION postgres" => "session.role";
    session_reset_session_authorization: "RESET SESSION AUTHORIZATION" => "= session";
    session_set_config_search_path: "SELECT set_config('search_path', 'evil', false)" => "session.search_path", "system";
    session_set_config_role: "SELECT set_config('role', 'postgres', true)" => "session.role";
    session_set_config_encoding: "SELECT set_config('client_encoding', 'SJIS', false)" => "session.encoding";
    session_set_config_scs: "SELECT set_config('standard_conforming_strings', 'off', false)" => "session.string_literals";
    session_set_config_srr: "SELECT set_config('session_replication_role', 'replica', false)" => "session.replication_role";
    session_set_config_upper: "SELECT SET_CONFIG('SEARCH_PATH', 'evil', false)" => "session.search_path";
    session_set_config_dynamic: "SELECT set_config($1, $2, false)" => "session.search_path session.role session.encoding session.string_literals session.replication_role";
    session_set_config_concat: "SELECT set_config('search' || '_path', 'evil', false)" => "session.search_path";
    session_set_config_value_param: "SELECT set_config('client_encoding', $1, false)" => "session.encoding";
    session_show: "SHOW search_path" => "= session";
    session_show_all: "SHOW ALL" => "= session";
    session_reset_all: "RESET ALL" => "= session";
    session_discard_all: "DISCARD ALL" => "= session";
    session_discard_plans: "DISCARD PLANS" => "= session";
    session_listen: "LISTEN jobs" => "= session";
    session_unlisten: "UNLISTEN *" => "= session";
    session_set_timezone: "SET TIME ZONE 'UTC'" => "= session";
    session_set_statement_timeout: "SET statement_timeout = 5000" => "= session";
    session_set_app_name: "SET application_name = 'x'" => "= session";
    session_backslash_quote: "SET backslash_quote = on" => "session.string_literals";
}

// ---------------------------------------------------------------- transactions & maintenance & grants
cases! {
    tx_begin: "BEGIN" => "= transaction";
    tx_begin_iso: "BEGIN ISOLATION LEVEL SERIALIZABLE" => "= transaction";
    tx_start: "START TRANSACTION READ ONLY" => "= transaction";
    tx_commit: "COMMIT" => "= transaction";
    tx_end: "END" => "= transaction";
    tx_rollback: "ROLLBACK" => "= transaction";
    tx_abort: "ABORT" => "= transaction";
    tx_savepoint: "SAVEPOINT a" => "= transaction";
    tx_release: "RELEASE SAVEPOINT a" => "= transaction";
    tx_rollback_to: "ROLLBACK TO SAVEPOINT a" => "= transaction";
    tx_prepare_transaction: "PREPARE TRANSACTION 'x'" => "= transaction";
    tx_commit_prepared: "COMMIT PREPARED 'x'" => "= transaction.prepared";
    tx_rollback_prepared: "ROLLBACK PREPARED 'x'" => "= transaction.prepared";
    tx_set_transaction: "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ" => "= transaction";
    tx_set_constraints: "SET CONSTRAINTS ALL DEFERRED" => "= transaction";
    tx_lock: "LOCK TABLE users IN ACCESS EXCLUSIVE MODE" => "= transaction", "", "users";
    tx_commit_and_chain: "COMMIT AND CHAIN" => "= transaction";
    maint_vacuum_full: "VACUUM FULL users" => "= maintenance";
    maint_vacuum_full_opts: "VACUUM (FULL, ANALYZE) users" => "= maintenance";
    maint_vacuum_full_true: "VACUUM (FULL true) users" => "= maintenance";
    maint_vacuum_full_false: "VACUUM (FULL false) users" => "= read";
    maint_cluster: "CLUSTER users USING users_pkey" => "= maintenance";
    maint_cluster_all: "CLUSTER" => "= maintenance";
    maint_reindex_table: "REINDEX TABLE users" => "= maintenance";
    maint_reindex_database: "REINDEX DATABASE app" => "= maintenance";
    maint_reindex_concurrently: "REINDEX (VERBOSE) INDEX CONCURRENTLY idx" => "= maintenance";
    maint_refresh: "REFRESH MATERIALIZED VIEW CONCURRENTLY mv" => "= maintenance";
    maint_checkpoint: "CHECKPOINT" => "= maintenance";
    maint_load: "LOAD 'auto_explain'" => "= system";
    grant_select: "GRANT SELECT ON users TO reporting" => "= grant", "", "users";
    grant_all_schema: "GRANT ALL ON ALL TABLES IN SCHEMA public TO app" => "= grant";
    grant_role: "GRANT admin TO alice" => "= grant";
    grant_execute: "GRANT EXECUTE ON FUNCTION f(int) TO app" => "= grant";
    grant_usage_schema: "GRANT USAGE ON SCHEMA billing TO app" => "= grant";
    revoke_select: "REVOKE SELECT ON users FROM PUBLIC" => "= revoke";
    revoke_role: "REVOKE admin FROM alice" => "= revoke";
    revoke_all: "REVOKE ALL PRIVILEGES ON DATABASE app FROM bob CASCADE" => "= revoke";
    revoke_grant_option: "REVOKE GRANT OPTION FOR SELECT ON t FROM bob" => "= revoke";
}

// ---------------------------------------------------------------- MERGE
cases! {
    merge_delete: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE" => "merge.delete write", "", "t s";
    merge_delete_conditional: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.gone THEN DELETE WHEN MATCHED THEN UPDATE SET a = s.a" => "merge.delete";
    merge_not_matched_by_source: "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE" => "merge.delete";
    merge_insert_only: "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)" => "= write";
    merge_returning: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING merge_action(), t.*" => "merge.delete";
    merge_qualified: "MERGE INTO billing.t AS x USING (SELECT 1 AS id) s ON x.id = s.id WHEN MATCHED THEN DELETE" => "merge.delete", "", "billing.t";
    merge_in_cte: "WITH m AS (MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING t.id) SELECT * FROM m" => "merge.delete";
}

// ---------------------------------------------------------------- multi-statement strings
cases! {
    multi_select_then_drop: "SELECT 1; DROP TABLE users" => "#2 read drop.table";
    multi_comment_hides_nothing: "SELECT 1 /* ; */; DROP TABLE users; -- trailing" => "#2 drop.table";
    multi_string_semicolon: "SELECT ';'; TRUNCATE users" => "#2 truncate";
    multi_dollar_semicolon: "SELECT $$;$$; DELETE FROM users" => "#2 delete.unbounded";
    multi_e_string: r"SELECT E'\';'; DROP TABLE users" => "#2 drop.table";
    multi_quoted_ident_semicolon: r#"SELECT 1 AS "a;b"; DROP TABLE users"# => "#2 drop.table";
    multi_cr_whitespace: "SELECT 1;\rDROP\rTABLE\rusers" => "#2 drop.table";
    multi_form_feed: "SELECT 1;\x0cDROP\x0cTABLE\x0cusers" => "#2 drop.table";
    multi_tabs_newlines: "SELECT 1;\n\t\n  DELETE\n\tFROM\n users  ;\n" => "#2 delete.unbounded";
    multi_three: "BEGIN; DELETE FROM t WHERE id = 1; COMMIT" => "#3 transaction delete.bounded";
    multi_empty_statements: ";;SELECT 1;;;DROP TABLE t;;" => "#2 drop.table";
    multi_nested_comment: "SELECT 1 /* /* */ ; DROP TABLE fake; */ ; DROP TABLE users" => "#2 drop.table", "", "users";
    multi_line_comment_newline: "SELECT 1 -- comment ; DROP TABLE a\n; DROP TABLE users" => "#2 drop.table", "", "users";
    multi_many: "SELECT 1; SELECT 2; SELECT 3; SELECT 4; TRUNCATE users" => "#5 truncate";
    multi_uescape_string: r"SELECT U&'\0027'; DROP TABLE users" => "#2 drop.table";
    multi_prepare_execute: "PREPARE w AS DELETE FROM users; EXECUTE w" => "#2 delete.unbounded code.opaque";
    multi_set_then_drop: "SET search_path = evil; DROP TABLE users" => "#2 session.search_path drop.table";
}

// ---------------------------------------------------------------- unparsed / empty
cases! {
    unparsed_garbage: "this is not sql" => "= unparsed";
    unparsed_truncated: "DELETE FROM" => "= unparsed";
    unparsed_with_valid_prefix: "SELECT 1; DROP TABLE users; garbage here" => "= unparsed #1";
    unparsed_unterminated_string: "SELECT 'abc" => "= unparsed";
    unparsed_unterminated_comment: "SELECT 1 /* DROP TABLE x" => "= unparsed";
    unparsed_psql_meta: "\\dt" => "= unparsed";
    unparsed_nul_byte: "SELECT 1\0; DROP TABLE users" => "= unparsed";
    unparsed_mysql_syntax: "DELETE users FROM users" => "= unparsed";
    empty_text: "" => "#0";
    empty_whitespace: "  \n\t " => "#0";
    empty_comment_only: "-- DROP TABLE users" => "#0";
    empty_block_comment_only: "/* DROP TABLE users; */" => "#0";
    empty_semicolons: ";;;" => "#0";
}
