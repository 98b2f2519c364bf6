//! The classifier reads the parse tree by name: node types (`is("DeleteStmt")`,
//! `name == "RangeVar"`) and fields (`list("from_clause")`). A misspelt name matches
//! nothing and the statement silently falls through, so this test checks every such
//! name in the classifier's source against pg_query's protobuf definition.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// Names in the source that are not whole node-type names: prefixes and suffixes
/// matched with `starts_with`/`ends_with` in walk.rs.
const AFFIXES: &[&str] = &["Create", "Drop", "Import", "Stmt"];

/// The pg_query.proto that the pg_query crate in use was built from: its version
/// from Cargo.lock, its source where cargo unpacked it.
fn proto() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("read Cargo.lock");
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"pg_query\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .expect("pg_query in Cargo.lock");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registries = cargo_home.join("registry/src");
    let found = std::fs::read_dir(&registries)
        .unwrap_or_else(|e| panic!("read {}: {e}", registries.display()))
        .filter_map(Result::ok)
        .map(|r| {
            r.path().join(format!(
                "pg_query-{version}/libpg_query/protobuf/pg_query.proto"
            ))
        })
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "pg_query-{version}'s pg_query.proto not under {}",
                registries.display()
            )
        });
    std::fs::read_to_string(&found).unwrap_or_else(|e| panic!("read {}: {e}", found.display()))
}

/// The Rust type name prost gives a message (its serde name): words split at
/// underscores and case changes, each capitalised (`A_Const` → `AConst`,
/// `PLAssignStmt` → `PlAssignStmt`).
fn rust_name(proto: &str) -> String {
    let c: Vec<char> = proto.chars().collect();
    let mut words: Vec<String> = vec![String::new()];
    for i in 0..c.len() {
        if c[i] == '_' {
            words.push(String::new());
            continue;
        }
        let prev = i.checked_sub(1).map(|p| c[p]);
        let next = c.get(i + 1);
        let boundary = c[i].is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
            });
        if boundary {
            words.push(String::new());
        }
        if let Some(w) = words.last_mut() {
            w.push(c[i]);
        }
    }
    words
        .iter()
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            let first = cs.next().map(|f| f.to_ascii_uppercase());
            first
                .into_iter()
                .chain(cs.map(|x| x.to_ascii_lowercase()))
                .collect::<String>()
        })
        .collect()
}

/// Message names (as Rust names) and field names declared in the proto.
fn declared(proto: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut messages = BTreeSet::new();
    let mut fields = BTreeSet::new();
    for line in proto.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("message ") {
            if let Some(name) = rest.split_whitespace().next() {
                messages.insert(rust_name(name));
            }
        } else if let Some((lhs, _)) = line.split_once('=') {
            // `repeated Node items = 1 [json_name="items"];` or `string name = 2;`
            if let Some(name) = lhs.split_whitespace().last() {
                fields.insert(name.to_string());
            }
        }
    }
    (messages, fields)
}

/// Quoted literals in `src` (escapes and the `'"'` character skipped), each with the
/// dozen bytes before it.
fn literals(src: &str) -> Vec<(&str, &str)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' if b.get(i + 1) == Some(&b'"') && b.get(i + 2) == Some(&b'\'') => i += 3,
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(b.len());
                let mut from = i.saturating_sub(12);
                while !src.is_char_boundary(from) {
                    from += 1;
                }
                out.push((&src[from..i], &src[start..end]));
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn is_type_name(s: &str) -> bool {
    s.len() > 1
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
        && s.chars().any(|c| c.is_ascii_lowercase())
}

#[test]
fn every_node_type_and_field_name_exists_in_pg_query() {
    let (messages, fields) = declared(&proto());
    assert!(messages.contains("DeleteStmt") && fields.contains("where_clause"));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/classify");
    let accessors = ["get(", "int(", "flag(", "text(", "list(", "child("];
    let (mut types, mut field_uses) = (0, 0);
    for entry in std::fs::read_dir(&dir).expect("src/classify") {
        let path = entry.expect("dir entry").path();
        // plpgsql.rs reads libpg_query's PL/pgSQL JSON, not the protobuf tree.
        if path
            .file_name()
            .is_some_and(|n| n == "node_names.rs" || n == "plpgsql.rs")
        {
            continue;
        }
        let whole = std::fs::read_to_string(&path).expect("read source");
        // Not the tests at the end: their strings are SQL, settings and data.
        let src = whole.split("#[cfg(test)]").next().unwrap_or_default();
        for (before, lit) in literals(src) {
            // A constant or binding (`= "..."`, not `== "..."`) is data, not a name.
            let assigned = before.ends_with("= ") && !before.ends_with("== ");
            if is_type_name(lit) && !AFFIXES.contains(&lit) && !assigned {
                types += 1;
                assert!(
                    messages.contains(lit),
                    "{}: node type \"{lit}\" is not a pg_query protobuf message",
                    path.display()
                );
            } else if accessors.iter().any(|a| before.ends_with(a)) {
                field_uses += 1;
                assert!(
                    fields.contains(lit),
                    "{}: field \"{lit}\" is not a field of any pg_query protobuf message",
                    path.display()
                );
            }
        }
    }
    // The scan found what the classifier matches (so the test can fail).
    assert!(
        types > 80 && field_uses > 50,
        "{types} type names, {field_uses} field names"
    );
}

#[test]
fn proto_names_become_prost_names() {
    for (proto, rust) in [
        ("A_Const", "AConst"),
        ("PLAssignStmt", "PlAssignStmt"),
        ("CreatePLangStmt", "CreatePLangStmt"),
        ("CTECycleClause", "CteCycleClause"),
        ("RangeVar", "RangeVar"),
        ("String", "String"),
    ] {
        assert_eq!(rust_name(proto), rust, "{proto}");
    }
}

#[test]
fn a_misspelt_name_is_caught() {
    let (messages, fields) = declared("message DeleteStmt {\n  Node where_clause = 1;\n}\n");
    assert!(messages.contains("DeleteStmt") && !messages.contains("DeleteStatement"));
    assert!(fields.contains("where_clause") && !fields.contains("whereClause"));
    let lits = literals(r#"x.is("DeleteStatment") && x.list("form_clause")"#);
    assert_eq!(
        lits,
        vec![("x.is(", "DeleteStatment"), (") && x.list(", "form_clause")]
    );
}
