//! Pure: which statements the trash can stand in for, read from the parse tree.

use pg_query::protobuf::{DropBehavior, ObjectType};
use pg_query::NodeEnum;

/// A statement the trash may replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrashRequest {
    /// `DROP TABLE [IF EXISTS] name [CASCADE]` with one table.
    DropTable {
        schema: Option<String>,
        name: String,
        cascade: bool,
        missing_ok: bool,
    },
}

impl TrashRequest {
    /// `schema.name` as written (quoted), for `to_regclass` in the client's
    /// search_path.
    pub fn relation_text(&self) -> String {
        match self {
            TrashRequest::DropTable { schema, name, .. } => match schema {
                Some(s) => super::qualified(s, name),
                None => super::ident(name),
            },
        }
    }

    pub fn cascade(&self) -> bool {
        match self {
            TrashRequest::DropTable { cascade, .. } => *cascade,
        }
    }
}

/// Why the trash cannot stand in for a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// Reads one SQL statement. `Err` names what is not covered (the rule's fallback
/// then applies). Parsed on the classifier's big-stack threads, like every parse of
/// client text: the tree may nest as deep as the parser allows.
pub fn read(sql: &str) -> Result<TrashRequest, Unsupported> {
    let text = sql.to_string();
    crate::classify::deep::run(move || read_tree(&text))
        .unwrap_or_else(|| Err(Unsupported("could not be read".into())))
}

fn read_tree(sql: &str) -> Result<TrashRequest, Unsupported> {
    let parsed = pg_query::parse(sql, 0).map_err(|_| Unsupported("unparsed".into()))?;
    let stmts = &parsed.protobuf.stmts;
    if stmts.len() != 1 {
        return Err(Unsupported("more than one statement".into()));
    }
    let node = stmts[0]
        .stmt
        .as_ref()
        .and_then(|s| s.node.as_ref())
        .ok_or_else(|| Unsupported("empty statement".into()))?;
    let NodeEnum::DropStmt(d) = node else {
        return Err(Unsupported("not a DROP statement".into()));
    };
    if d.remove_type != ObjectType::ObjectTable as i32 {
        return Err(Unsupported(
            "only DROP TABLE is trashed so far (DROP SCHEMA, DATABASE, MATERIALIZED VIEW and TRUNCATE are not)".into(),
        ));
    }
    if d.objects.len() != 1 {
        return Err(Unsupported("DROP TABLE of several tables".into()));
    }
    let NodeEnum::List(list) = d.objects[0]
        .node
        .as_ref()
        .ok_or_else(|| Unsupported("no table name".into()))?
    else {
        return Err(Unsupported("unexpected table name form".into()));
    };
    let mut parts = Vec::new();
    for item in &list.items {
        match item.node.as_ref() {
            Some(NodeEnum::String(s)) => parts.push(s.sval.clone()),
            _ => return Err(Unsupported("unexpected table name form".into())),
        }
    }
    let (schema, name) = match parts.as_slice() {
        [n] => (None, n.clone()),
        [s, n] => (Some(s.clone()), n.clone()),
        _ => return Err(Unsupported("a table name with a database part".into())),
    };
    Ok(TrashRequest::DropTable {
        schema,
        name,
        cascade: d.behavior == DropBehavior::DropCascade as i32,
        missing_ok: d.missing_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(schema: Option<&str>, name: &str, cascade: bool, missing_ok: bool) -> TrashRequest {
        TrashRequest::DropTable {
            schema: schema.map(str::to_string),
            name: name.to_string(),
            cascade,
            missing_ok,
        }
    }

    #[test]
    fn drop_table_forms() {
        let cases: &[(&str, TrashRequest)] = &[
            ("DROP TABLE t", table(None, "t", false, false)),
            (
                "drop table Public.\"T x\"",
                table(Some("public"), "T x", false, false),
            ),
            (
                "DROP TABLE IF EXISTS t CASCADE",
                table(None, "t", true, true),
            ),
            ("DROP TABLE t RESTRICT;", table(None, "t", false, false)),
        ];
        for (sql, want) in cases {
            assert_eq!(read(sql).as_ref(), Ok(want), "{sql}");
        }
        assert_eq!(
            table(Some("a\"b"), "t", false, false).relation_text(),
            "\"a\"\"b\".\"t\""
        );
    }

    #[test]
    fn not_covered() {
        for sql in [
            "DROP TABLE a, b",
            "DROP VIEW v",
            "DROP SCHEMA s",
            "TRUNCATE t",
            "DROP TABLE t; DROP TABLE u",
            "DROP TABLE db.s.t",
            "SELEC",
        ] {
            assert!(read(sql).is_err(), "{sql}");
        }
    }
}
