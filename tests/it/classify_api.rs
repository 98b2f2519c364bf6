//! The classifier's API contract: statements, text slices, fingerprints, prepared
//! statements, session facts, cache.

use pgwarden::classify::{classify, Class, Classifier, ClassifierOptions, SessionFacts};
use std::sync::Arc;

fn facts() -> SessionFacts {
    SessionFacts::default()
}

#[test]
fn each_statement_gets_its_own_text() {
    let s = classify(
        "SELECT 1;\n  DELETE FROM t WHERE id = 1 ;\r\nDROP TABLE x",
        &facts(),
    );
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].sql, "SELECT 1");
    assert_eq!(s[1].sql, "DELETE FROM t WHERE id = 1");
    assert_eq!(s[2].sql, "DROP TABLE x");
    assert_eq!(s[2].classes, vec![Class::DropTable]);
    assert_eq!(s[2].objects, vec!["x".to_string()]);
}

#[test]
fn multibyte_text_slices_on_char_boundaries() {
    let s = classify("SELECT 'ä€😀'; DELETE FROM \"tä\"", &facts());
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].sql, "SELECT 'ä€😀'");
    assert_eq!(s[1].sql, "DELETE FROM \"tä\"");
    assert_eq!(s[1].objects, vec!["tä".to_string()]);
}

#[test]
fn fingerprints_ignore_literals() {
    let a = classify("DELETE FROM t WHERE id = 1", &facts());
    let b = classify("delete from t where id = 42", &facts());
    let c = classify("DELETE FROM u WHERE id = 1", &facts());
    assert_eq!(a[0].fingerprint, b[0].fingerprint);
    assert_ne!(a[0].fingerprint, c[0].fingerprint);
    assert_eq!(a[0].fingerprint.len(), 16);
}

#[test]
fn unparsed_is_one_statement_with_stable_fingerprint() {
    let a = classify("DROP TABLE users; nonsense", &facts());
    let b = classify("DROP TABLE users; nonsense", &facts());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].classes, vec![Class::Unparsed]);
    assert_eq!(a[0].fingerprint, b[0].fingerprint);
    assert_eq!(a[0].fingerprint.len(), 16);
}

#[test]
fn empty_text_gives_no_statements() {
    assert!(classify("", &facts()).is_empty());
    assert!(classify("  -- nothing\n/* at all */ ;", &facts()).is_empty());
}

#[test]
fn prepare_execute_deallocate() {
    let s = classify(
        "PREPARE wipe (int) AS DELETE FROM users; EXECUTE wipe(1); DEALLOCATE wipe; DEALLOCATE ALL",
        &facts(),
    );
    assert_eq!(s[0].prepares.as_deref(), Some("wipe"));
    assert_eq!(s[0].classes, vec![Class::DeleteUnbounded]);
    assert_eq!(s[1].executes.as_deref(), Some("wipe"));
    assert!(s[1].has(Class::CodeOpaque));
    assert_eq!(s[2].deallocates.as_deref(), Some("wipe"));
    assert_eq!(s[3].deallocates.as_deref(), Some("*"));
}

#[test]
fn explain_analyze_execute_reports_what_it_executes() {
    let s = classify("EXPLAIN ANALYZE EXECUTE wipe", &facts());
    assert_eq!(s[0].executes.as_deref(), Some("wipe"));
}

#[test]
fn unsafe_encoding_marks_every_statement_unreadable() {
    for enc in ["SJIS", "BIG5", "GBK", "GB18030", "UHC", "JOHAB"] {
        let f = SessionFacts {
            client_encoding: enc.into(),
            ..facts()
        };
        let s = classify("SELECT 1; DELETE FROM t WHERE id = 1", &f);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|s| s.has(Class::Unreadable)), "{enc}");
        assert!(s[1].has(Class::DeleteBounded));
    }
    for enc in ["UTF8", "SQL_ASCII", "LATIN1", "LATIN9", "WIN1252", "EUC_JP"] {
        let f = SessionFacts {
            client_encoding: enc.into(),
            ..facts()
        };
        assert!(!classify("SELECT 1", &f)[0].has(Class::Unreadable), "{enc}");
    }
}

#[test]
fn standard_conforming_strings_off_reads_backslashes_like_the_server() {
    let sql = r"SELECT 'a\'; DROP TABLE users; --'";
    let on = classify(sql, &facts());
    assert_eq!(
        on.len(),
        2,
        "with standard strings the backslash is literal"
    );
    assert!(on[1].has(Class::DropTable));
    let off_facts = SessionFacts {
        standard_conforming_strings: false,
        ..facts()
    };
    let off = classify(sql, &off_facts);
    assert_eq!(
        off.len(),
        1,
        "with escapes the quote is escaped: one SELECT"
    );
    assert!(off[0].has(Class::Unreadable));
    assert!(off[0].has(Class::Read));
    // And the reverse trick: harmless under standard strings, destructive under escapes.
    let sql2 = r"SELECT 'a\' ; DROP TABLE users; SELECT ''";
    let off2 = classify(sql2, &off_facts);
    assert!(off2.iter().all(|s| s.has(Class::Unreadable)));
}

#[test]
fn classes_and_objects_sorted_and_deduplicated() {
    let s = classify("WITH a AS (DELETE FROM t RETURNING 1), b AS (DELETE FROM t RETURNING 1) SELECT * FROM a, b, t", &facts());
    let mut c = s[0].classes.clone();
    c.sort();
    c.dedup();
    assert_eq!(c, s[0].classes);
    assert_eq!(s[0].objects, vec!["t".to_string()]);
}

#[test]
fn cache_counts_hits_and_misses_and_keys_by_facts() {
    let c = Classifier::new(ClassifierOptions::default());
    let f = facts();
    let a = c.classify("SELECT 1", &f);
    let b = c.classify("SELECT 1", &f);
    assert!(Arc::ptr_eq(&a, &b));
    let sjis = SessionFacts {
        client_encoding: "SJIS".into(),
        ..facts()
    };
    let d = c.classify("SELECT 1", &sjis);
    assert!(d[0].has(Class::Unreadable));
    assert!(!a[0].has(Class::Unreadable));
    assert_eq!(c.cache_stats(), (1, 2));
}

#[test]
fn cache_is_bounded_and_shared_across_threads() {
    let c = Arc::new(Classifier::new(ClassifierOptions {
        cache_capacity: 64,
        ..ClassifierOptions::default()
    }));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for i in 0..200 {
                    let sql = format!("DELETE FROM t{} WHERE id = {}", i % 50, t);
                    let s = c.classify(&sql, &SessionFacts::default());
                    assert_eq!(s[0].classes, vec![Class::DeleteBounded]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let (hits, misses) = c.cache_stats();
    assert_eq!(hits + misses, 800);
}

#[test]
fn default_options_have_the_documented_dangerous_functions() {
    let o = ClassifierOptions::default();
    for f in [
        "lo_import",
        "lo_export",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "dblink_exec",
        "dblink",
        "pg_file_unlink",
        "pg_file_write",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "heap_force_kill",
        "heap_force_freeze",
        "pg_drop_replication_slot",
        "pg_switch_wal",
        "pg_create_restore_point",
    ] {
        assert!(o.dangerous_functions.iter().any(|d| d == f), "{f}");
    }
}

#[test]
fn schema_qualified_configured_name_matches() {
    let c = Classifier::new(ClassifierOptions {
        dangerous_functions: vec!["pg_catalog.pg_sleep".into()],
        cache_capacity: 0,
    });
    assert!(c.classify("SELECT pg_sleep(10)", &facts())[0].has(Class::System));
    assert!(c.classify("SELECT pg_catalog.pg_sleep(10)", &facts())[0].has(Class::System));
    assert!(!c.classify("SELECT lo_unlink(1)", &facts())[0].has(Class::System));
}

#[test]
fn deep_nesting_does_not_crash() {
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let s = classify(&deep, &facts());
    assert_eq!(s.len(), 1);
    let long_or = format!("DELETE FROM t WHERE {}", vec!["id = 1"; 3000].join(" OR "));
    let s = classify(&long_or, &facts());
    assert_eq!(s.len(), 1);
    assert!(s[0].has(Class::DeleteBounded) || s[0].has(Class::Unparsed));
}
