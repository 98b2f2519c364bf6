//! Pure: which statements the trash can stand in for, read from the parse tree.

use pg_query::protobuf::{DropBehavior, ObjectType};
use pg_query::NodeEnum;

/// A relation as the client named it (schema optional: the client's search_path
/// resolves it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelName {
    pub schema: Option<String>,
    pub name: String,
}

impl RelName {
    /// `schema.name` as written (quoted), for `to_regclass` in the client's
    /// search_path.
    pub fn text(&self) -> String {
        match &self.schema {
            Some(s) => super::qualified(s, &self.name),
            None => super::ident(&self.name),
        }
    }
}

/// What kind of relation a DROP names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    Table,
    View,
    MaterializedView,
}

impl RelKind {
    /// The `pg_class.relkind` values a name of this kind resolves to.
    pub fn relkinds(self) -> &'static [&'static str] {
        match self {
            RelKind::Table => &["r", "p"],
            RelKind::View => &["v"],
            RelKind::MaterializedView => &["m"],
        }
    }

    /// The command tag of the DROP.
    pub fn drop_tag(self) -> &'static str {
        match self {
            RelKind::Table => "DROP TABLE",
            RelKind::View => "DROP VIEW",
            RelKind::MaterializedView => "DROP MATERIALIZED VIEW",
        }
    }

    /// The registry's `kind` for an item of this DROP.
    pub fn item_kind(self) -> &'static str {
        match self {
            RelKind::Table => "table",
            RelKind::View => "view",
            RelKind::MaterializedView => "materialized_view",
        }
    }
}

/// A statement the trash may replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrashRequest {
    /// `DROP TABLE|VIEW|MATERIALIZED VIEW [IF EXISTS] name [, …] [CASCADE]`.
    DropRelations {
        kind: RelKind,
        names: Vec<RelName>,
        cascade: bool,
        missing_ok: bool,
    },
    /// `DROP SCHEMA [IF EXISTS] name [CASCADE]` (one schema).
    DropSchema {
        name: String,
        cascade: bool,
        missing_ok: bool,
    },
    /// `DROP DATABASE [IF EXISTS] name [WITH (FORCE)]` (carried out by the proxy
    /// only: it cannot run in the transaction the other kinds are tried in).
    DropDatabase {
        name: String,
        missing_ok: bool,
        force: bool,
    },
    /// `TRUNCATE [TABLE] name [, …] [RESTART IDENTITY] [CASCADE]` (no `ONLY`).
    Truncate {
        names: Vec<RelName>,
        restart_identity: bool,
        cascade: bool,
    },
}

impl TrashRequest {
    /// The names the statement gives.
    pub fn names(&self) -> &[RelName] {
        match self {
            TrashRequest::DropRelations { names, .. } | TrashRequest::Truncate { names, .. } => {
                names
            }
            TrashRequest::DropSchema { .. } | TrashRequest::DropDatabase { .. } => &[],
        }
    }

    pub fn cascade(&self) -> bool {
        match self {
            TrashRequest::DropRelations { cascade, .. }
            | TrashRequest::Truncate { cascade, .. }
            | TrashRequest::DropSchema { cascade, .. } => *cascade,
            TrashRequest::DropDatabase { .. } => false,
        }
    }

    /// The command tag the client gets when the trash stands in for it.
    pub fn tag(&self) -> &'static str {
        match self {
            TrashRequest::DropRelations { kind, .. } => kind.drop_tag(),
            TrashRequest::Truncate { .. } => "TRUNCATE TABLE",
            TrashRequest::DropSchema { .. } => "DROP SCHEMA",
            TrashRequest::DropDatabase { .. } => "DROP DATABASE",
        }
    }

    /// The classifier's class the statement has (the guard checks that the
    /// classifier agrees before carrying it out).
    pub fn class(&self) -> crate::classify::Class {
        use crate::classify::Class;
        match self {
            TrashRequest::DropRelations {
                kind: RelKind::Table,
                ..
            } => Class::DropTable,
            TrashRequest::DropRelations { .. } => Class::DropView,
            TrashRequest::Truncate { .. } => Class::Truncate,
            TrashRequest::DropSchema { .. } => Class::DropSchema,
            TrashRequest::DropDatabase { .. } => Class::DropDatabase,
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
    match node {
        NodeEnum::DropStmt(d) => read_drop(d),
        NodeEnum::TruncateStmt(t) => read_truncate(t),
        NodeEnum::DropdbStmt(d) => read_drop_database(d),
        _ => Err(Unsupported(
            "not a DROP TABLE, VIEW, MATERIALIZED VIEW, SCHEMA, DATABASE or TRUNCATE".into(),
        )),
    }
}

fn read_drop(d: &pg_query::protobuf::DropStmt) -> Result<TrashRequest, Unsupported> {
    let kind = match ObjectType::try_from(d.remove_type) {
        Ok(ObjectType::ObjectTable) => RelKind::Table,
        Ok(ObjectType::ObjectView) => RelKind::View,
        Ok(ObjectType::ObjectMatview) => RelKind::MaterializedView,
        Ok(ObjectType::ObjectSchema) => return read_drop_schema(d),
        _ => {
            return Err(Unsupported(
                "not a DROP TABLE, VIEW, MATERIALIZED VIEW or SCHEMA".into(),
            ))
        }
    };
    if d.concurrent {
        return Err(Unsupported("DROP … CONCURRENTLY".into()));
    }
    let mut names = Vec::new();
    for o in &d.objects {
        let Some(NodeEnum::List(list)) = o.node.as_ref() else {
            return Err(Unsupported("unexpected name form".into()));
        };
        let mut parts = Vec::new();
        for item in &list.items {
            match item.node.as_ref() {
                Some(NodeEnum::String(s)) => parts.push(s.sval.clone()),
                _ => return Err(Unsupported("unexpected name form".into())),
            }
        }
        names.push(rel_name(&parts)?);
    }
    if names.is_empty() {
        return Err(Unsupported("no name".into()));
    }
    Ok(TrashRequest::DropRelations {
        kind,
        names,
        cascade: d.behavior == DropBehavior::DropCascade as i32,
        missing_ok: d.missing_ok,
    })
}

fn read_drop_schema(d: &pg_query::protobuf::DropStmt) -> Result<TrashRequest, Unsupported> {
    let [o] = d.objects.as_slice() else {
        return Err(Unsupported("DROP SCHEMA of several schemas".into()));
    };
    let Some(NodeEnum::String(s)) = o.node.as_ref() else {
        return Err(Unsupported("unexpected schema name form".into()));
    };
    Ok(TrashRequest::DropSchema {
        name: s.sval.clone(),
        cascade: d.behavior == DropBehavior::DropCascade as i32,
        missing_ok: d.missing_ok,
    })
}

fn read_drop_database(d: &pg_query::protobuf::DropdbStmt) -> Result<TrashRequest, Unsupported> {
    let mut force = false;
    for o in &d.options {
        match o.node.as_ref() {
            Some(NodeEnum::DefElem(e)) if e.defname == "force" && e.arg.is_none() => force = true,
            _ => {
                return Err(Unsupported(
                    "a DROP DATABASE option other than FORCE".into(),
                ))
            }
        }
    }
    if d.dbname.is_empty() {
        return Err(Unsupported("no database name".into()));
    }
    Ok(TrashRequest::DropDatabase {
        name: d.dbname.clone(),
        missing_ok: d.missing_ok,
        force,
    })
}

fn rel_name(parts: &[String]) -> Result<RelName, Unsupported> {
    match parts {
        [n] => Ok(RelName {
            schema: None,
            name: n.clone(),
        }),
        [s, n] => Ok(RelName {
            schema: Some(s.clone()),
            name: n.clone(),
        }),
        _ => Err(Unsupported("a name with a database part".into())),
    }
}

fn read_truncate(t: &pg_query::protobuf::TruncateStmt) -> Result<TrashRequest, Unsupported> {
    let mut names = Vec::new();
    for r in &t.relations {
        let Some(NodeEnum::RangeVar(rv)) = r.node.as_ref() else {
            return Err(Unsupported("unexpected table name form".into()));
        };
        if !rv.catalogname.is_empty() {
            return Err(Unsupported("a name with a database part".into()));
        }
        if !rv.inh {
            return Err(Unsupported("TRUNCATE ONLY".into()));
        }
        names.push(RelName {
            schema: (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
            name: rv.relname.clone(),
        });
    }
    if names.is_empty() {
        return Err(Unsupported("no table name".into()));
    }
    Ok(TrashRequest::Truncate {
        names,
        restart_identity: t.restart_seqs,
        cascade: t.behavior == DropBehavior::DropCascade as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(schema: Option<&str>, name: &str) -> RelName {
        RelName {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        }
    }

    fn drop(kind: RelKind, names: Vec<RelName>, cascade: bool, missing_ok: bool) -> TrashRequest {
        TrashRequest::DropRelations {
            kind,
            names,
            cascade,
            missing_ok,
        }
    }

    #[test]
    fn drop_forms() {
        use RelKind::*;
        let cases: &[(&str, TrashRequest)] = &[
            (
                "DROP TABLE t",
                drop(Table, vec![n(None, "t")], false, false),
            ),
            (
                "drop table Public.\"T x\"",
                drop(Table, vec![n(Some("public"), "T x")], false, false),
            ),
            (
                "DROP TABLE IF EXISTS t CASCADE",
                drop(Table, vec![n(None, "t")], true, true),
            ),
            (
                "DROP TABLE t RESTRICT;",
                drop(Table, vec![n(None, "t")], false, false),
            ),
            (
                "DROP TABLE a, s.b CASCADE",
                drop(Table, vec![n(None, "a"), n(Some("s"), "b")], true, false),
            ),
            (
                "DROP MATERIALIZED VIEW IF EXISTS m",
                drop(MaterializedView, vec![n(None, "m")], false, true),
            ),
            (
                "DROP VIEW v, w",
                drop(View, vec![n(None, "v"), n(None, "w")], false, false),
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(read(sql).as_ref(), Ok(want), "{sql}");
        }
        assert_eq!(n(Some("a\"b"), "t").text(), "\"a\"\"b\".\"t\"");
        assert_eq!(
            read("DROP MATERIALIZED VIEW m").map(|r| r.tag()),
            Ok("DROP MATERIALIZED VIEW")
        );
    }

    #[test]
    fn truncate_forms() {
        let cases: &[(&str, TrashRequest)] = &[
            (
                "TRUNCATE t",
                TrashRequest::Truncate {
                    names: vec![n(None, "t")],
                    restart_identity: false,
                    cascade: false,
                },
            ),
            (
                "truncate table a, s.b restart identity cascade",
                TrashRequest::Truncate {
                    names: vec![n(None, "a"), n(Some("s"), "b")],
                    restart_identity: true,
                    cascade: true,
                },
            ),
            (
                "TRUNCATE t CONTINUE IDENTITY RESTRICT",
                TrashRequest::Truncate {
                    names: vec![n(None, "t")],
                    restart_identity: false,
                    cascade: false,
                },
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(read(sql).as_ref(), Ok(want), "{sql}");
        }
        assert_eq!(read("TRUNCATE t").map(|r| r.tag()), Ok("TRUNCATE TABLE"));
    }

    #[test]
    fn drop_database_forms() {
        let db = |name: &str, missing_ok, force| TrashRequest::DropDatabase {
            name: name.into(),
            missing_ok,
            force,
        };
        assert_eq!(read("DROP DATABASE d"), Ok(db("d", false, false)));
        assert_eq!(
            read("drop database if exists \"D x\" with (force)"),
            Ok(db("D x", true, true))
        );
        assert_eq!(read("DROP DATABASE d (FORCE)"), Ok(db("d", false, true)));
        assert_eq!(
            read("DROP DATABASE d").map(|r| r.tag()),
            Ok("DROP DATABASE")
        );
        assert!(read("DROP DATABASE d; SELECT 1").is_err());
    }

    #[test]
    fn not_covered() {
        assert_eq!(
            read("DROP SCHEMA IF EXISTS \"S x\" CASCADE"),
            Ok(TrashRequest::DropSchema {
                name: "S x".into(),
                cascade: true,
                missing_ok: true
            })
        );
        for sql in [
            "DROP SCHEMA a, b",
            "DROP INDEX i",
            "DROP INDEX CONCURRENTLY i",
            "TRUNCATE ONLY t",
            "DROP TABLE t; DROP TABLE u",
            "DROP TABLE db.s.t",
            "TRUNCATE db.s.t",
            "SELEC",
        ] {
            assert!(read(sql).is_err(), "{sql}");
        }
    }
}
