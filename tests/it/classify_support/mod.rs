//! Shared helpers for the classifier's table-driven tests.
#![allow(dead_code)]

use pgwarden::classify::{classify, Class, SessionFacts, Statement};

/// Classes a production policy guards: none of these may appear on a benign look-alike.
pub const DESTRUCTIVE: &[&str] = &[
    "drop.database",
    "drop.schema",
    "drop.table",
    "drop.view",
    "drop.index",
    "drop.function",
    "drop.type",
    "drop.extension",
    "drop.role",
    "drop.owned",
    "drop.other",
    "truncate",
    "delete.unbounded",
    "delete.maybe_unbounded",
    "update.unbounded",
    "update.maybe_unbounded",
    "merge.delete",
    "alter.drop_column",
    "alter.column_type",
    "system",
    "code.do",
    "code.opaque",
    "copy.program",
    "unparsed",
    "unreadable",
    "session.encoding",
    "session.string_literals",
    "session.role",
    "session.replication_role",
    "reassign_owned",
];

fn expand(list: &str) -> Vec<String> {
    list.split_whitespace()
        .flat_map(|t| {
            if t == "destructive" {
                DESTRUCTIVE.iter().map(|s| s.to_string()).collect()
            } else {
                vec![t.to_string()]
            }
        })
        .collect()
}

pub fn union(stmts: &[Statement]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = stmts
        .iter()
        .flat_map(|s| s.classes.iter().map(|c| c.as_str()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// `has`: whitespace-separated classes that must appear (in the union over all
/// statements); a leading `=` token means "exactly these"; `#N` means N statements.
/// `not`: classes that must not appear (`destructive` expands to [`DESTRUCTIVE`]).
/// `objects`: objects that must appear.
pub fn check_with(sql: &str, facts: &SessionFacts, has: &str, not: &str, objects: &str) {
    let stmts = classify(sql, facts);
    let got = union(&stmts);
    let mut exact = false;
    let mut want: Vec<String> = Vec::new();
    for t in has.split_whitespace() {
        if t == "=" {
            exact = true;
        } else if let Some(n) = t.strip_prefix('#') {
            let n: usize = n.parse().expect("count");
            assert_eq!(stmts.len(), n, "statement count for {sql:?}: {stmts:#?}");
        } else {
            want.push(t.to_string());
        }
    }
    for w in &want {
        assert!(Class::from_name(w).is_some(), "unknown class {w} in test");
        assert!(
            got.contains(&w.as_str()),
            "{sql:?}: missing {w}, got {got:?}"
        );
    }
    if exact {
        let mut w: Vec<&str> = want.iter().map(|s| s.as_str()).collect();
        w.sort();
        w.dedup();
        assert_eq!(got, w, "{sql:?}: classes");
    }
    for n in expand(not) {
        if want.contains(&n) {
            continue;
        }
        assert!(
            !got.contains(&n.as_str()),
            "{sql:?}: must not be {n}, got {got:?}"
        );
    }
    let objs: Vec<&str> = stmts
        .iter()
        .flat_map(|s| s.objects.iter().map(|o| o.as_str()))
        .collect();
    for o in objects.split_whitespace() {
        assert!(
            objs.contains(&o),
            "{sql:?}: missing object {o}, got {objs:?}"
        );
    }
    for s in &stmts {
        assert!(!s.classes.is_empty(), "{sql:?}: empty class list");
        assert!(!s.fingerprint.is_empty(), "{sql:?}: no fingerprint");
    }
}

pub fn check(sql: &str, has: &str, not: &str, objects: &str) {
    check_with(sql, &SessionFacts::default(), has, not, objects)
}

/// Splits a `--@@`-separated corpus into entries.
pub fn entries(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim_end() == "--@@" {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    out.push(cur);
    out.into_iter().filter(|e| !e.trim().is_empty()).collect()
}
