//! Pure: which blast-radius questions ([`BlastQuery`]) one SQL statement asks —
//! `DROP TABLE/VIEW/MATERIALIZED VIEW/INDEX/SEQUENCE/FOREIGN TABLE/SCHEMA`,
//! `TRUNCATE` and `ALTER TABLE … DROP COLUMN` — read from its parse tree. Other
//! statements (and forms this does not read: DROP DATABASE, a name with a database
//! part) ask none.

use pg_query::protobuf::{AlterTableType, DropBehavior, ObjectType};
use pg_query::{protobuf, NodeEnum};

use super::blast::{BlastOp, BlastQuery, BlastTarget};

/// Why a statement's blast radius cannot be asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRead(pub String);

/// The questions of one statement: one per dropped or truncated object, one per
/// dropped column. `Ok(empty)`: the statement destroys nothing this reads.
pub fn queries(sql: &str) -> Result<Vec<BlastQuery>, NotRead> {
    let text = sql.to_string();
    crate::classify::deep::run(move || read_tree(&text))
        .unwrap_or_else(|| Err(NotRead("the statement could not be read".into())))
}

fn read_tree(sql: &str) -> Result<Vec<BlastQuery>, NotRead> {
    let parsed = pg_query::parse(sql, 0).map_err(|_| NotRead("unparsed".into()))?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return Err(NotRead("more than one statement".into()));
    };
    let Some(node) = stmt.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
        return Ok(Vec::new());
    };
    match node {
        NodeEnum::DropStmt(d) => drop(d),
        NodeEnum::TruncateStmt(t) => {
            let cascade = t.behavior == DropBehavior::DropCascade as i32;
            t.relations
                .iter()
                .map(|n| match n.node.as_ref() {
                    Some(NodeEnum::RangeVar(r)) => Ok(BlastQuery {
                        target: relation(r)?,
                        op: BlastOp::Truncate { cascade },
                    }),
                    _ => Err(NotRead("unexpected table name form".into())),
                })
                .collect()
        }
        NodeEnum::AlterTableStmt(a) => {
            let Some(rel) = a.relation.as_ref() else {
                return Err(NotRead("no table name".into()));
            };
            let BlastTarget::Relation { schema, name } = relation(rel)? else {
                return Err(NotRead("unexpected table name form".into()));
            };
            let mut out = Vec::new();
            for c in &a.cmds {
                let Some(NodeEnum::AlterTableCmd(cmd)) = c.node.as_ref() else {
                    continue;
                };
                if cmd.subtype == AlterTableType::AtDropColumn as i32 {
                    out.push(BlastQuery {
                        target: BlastTarget::Column {
                            schema: schema.clone(),
                            table: name.clone(),
                            column: cmd.name.clone(),
                        },
                        op: BlastOp::Drop {
                            cascade: cmd.behavior == DropBehavior::DropCascade as i32,
                        },
                    });
                }
            }
            Ok(out)
        }
        _ => Ok(Vec::new()),
    }
}

fn drop(d: &protobuf::DropStmt) -> Result<Vec<BlastQuery>, NotRead> {
    let op = BlastOp::Drop {
        cascade: d.behavior == DropBehavior::DropCascade as i32,
    };
    let kind = d.remove_type;
    let is = |t: ObjectType| kind == t as i32;
    let relation_kind = [
        ObjectType::ObjectTable,
        ObjectType::ObjectView,
        ObjectType::ObjectMatview,
        ObjectType::ObjectIndex,
        ObjectType::ObjectSequence,
        ObjectType::ObjectForeignTable,
    ]
    .into_iter()
    .any(is);
    if !relation_kind && !is(ObjectType::ObjectSchema) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for o in &d.objects {
        let target = match o.node.as_ref() {
            // DROP SCHEMA names are bare strings.
            Some(NodeEnum::String(s)) if is(ObjectType::ObjectSchema) => BlastTarget::Schema {
                name: s.sval.clone(),
            },
            Some(NodeEnum::List(list)) if relation_kind => {
                let mut parts = Vec::new();
                for item in &list.items {
                    match item.node.as_ref() {
                        Some(NodeEnum::String(s)) => parts.push(s.sval.clone()),
                        _ => return Err(NotRead("unexpected name form".into())),
                    }
                }
                match parts.as_slice() {
                    [n] => BlastTarget::Relation {
                        schema: None,
                        name: n.clone(),
                    },
                    [s, n] => BlastTarget::Relation {
                        schema: Some(s.clone()),
                        name: n.clone(),
                    },
                    _ => return Err(NotRead("a name with a database part".into())),
                }
            }
            _ => return Err(NotRead("unexpected name form".into())),
        };
        out.push(BlastQuery { target, op });
    }
    Ok(out)
}

fn relation(r: &protobuf::RangeVar) -> Result<BlastTarget, NotRead> {
    if !r.catalogname.is_empty() {
        return Err(NotRead("a name with a database part".into()));
    }
    Ok(BlastTarget::Relation {
        schema: (!r.schemaname.is_empty()).then(|| r.schemaname.clone()),
        name: r.relname.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(schema: Option<&str>, name: &str) -> BlastTarget {
        BlastTarget::Relation {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        }
    }

    fn q(target: BlastTarget, op: BlastOp) -> BlastQuery {
        BlastQuery { target, op }
    }

    const DROP: BlastOp = BlastOp::Drop { cascade: false };
    const DROP_CASCADE: BlastOp = BlastOp::Drop { cascade: true };

    #[test]
    fn statements_and_their_questions() {
        let col = |t: &str, c: &str, cascade: bool| {
            q(
                BlastTarget::Column {
                    schema: None,
                    table: t.into(),
                    column: c.into(),
                },
                BlastOp::Drop { cascade },
            )
        };
        let cases: Vec<(&str, Vec<BlastQuery>)> = vec![
            ("DROP TABLE t", vec![q(rel(None, "t"), DROP)]),
            (
                "drop table if exists Public.\"T x\", b cascade",
                vec![
                    q(rel(Some("public"), "T x"), DROP_CASCADE),
                    q(rel(None, "b"), DROP_CASCADE),
                ],
            ),
            ("DROP VIEW v", vec![q(rel(None, "v"), DROP)]),
            (
                "DROP MATERIALIZED VIEW s.m",
                vec![q(rel(Some("s"), "m"), DROP)],
            ),
            ("DROP INDEX CONCURRENTLY i", vec![q(rel(None, "i"), DROP)]),
            ("DROP SEQUENCE sq", vec![q(rel(None, "sq"), DROP)]),
            (
                "DROP SCHEMA a, b CASCADE",
                vec![
                    q(BlastTarget::Schema { name: "a".into() }, DROP_CASCADE),
                    q(BlastTarget::Schema { name: "b".into() }, DROP_CASCADE),
                ],
            ),
            (
                "TRUNCATE t",
                vec![q(rel(None, "t"), BlastOp::Truncate { cascade: false })],
            ),
            (
                "TRUNCATE TABLE ONLY a, s.b RESTART IDENTITY CASCADE",
                vec![
                    q(rel(None, "a"), BlastOp::Truncate { cascade: true }),
                    q(rel(Some("s"), "b"), BlastOp::Truncate { cascade: true }),
                ],
            ),
            (
                "ALTER TABLE t DROP COLUMN c, ADD COLUMN d int, DROP e CASCADE",
                vec![col("t", "c", false), col("t", "e", true)],
            ),
            ("ALTER TABLE t ADD COLUMN d int", vec![]),
            ("DROP FUNCTION f()", vec![]),
            ("DROP DATABASE d", vec![]),
            ("SELECT 1", vec![]),
        ];
        for (sql, want) in cases {
            assert_eq!(queries(sql), Ok(want), "{sql}");
        }
    }

    #[test]
    fn not_read() {
        for sql in [
            "DROP TABLE a; DROP TABLE b",
            "DROP TABLE db.s.t",
            "DROP TABLE (",
            "TRUNCATE db.s.t",
        ] {
            assert!(queries(sql).is_err(), "{sql}");
        }
    }
}
