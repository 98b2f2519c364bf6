//! Pure: the catalog questions a statement's text raises ([`CatalogAsk`]): a column
//! type change that may be metadata-only, a TRUNCATE of a name that may be the
//! session's own temporary table. A statement gets asks only when answering all of
//! them "yes" makes the refinement sound; otherwise none, and it keeps its class.

use super::statement::CatalogAsk;
use super::tree::{Obj, G};
use pg_query::protobuf::{AlterTableType, ObjectType};

fn k<T: Into<i32>>(v: T) -> i64 {
    i64::from(v.into())
}

/// The asks of an `ALTER TABLE`: one per `ALTER COLUMN … TYPE`, or none when one of
/// them has USING or COLLATE, an array or `%TYPE` type, a non-constant type
/// modifier, or the statement alters something other than a table.
pub(super) fn widen_asks(o: &Obj) -> Vec<CatalogAsk> {
    if o.int("objtype") != k(ObjectType::ObjectTable) {
        return Vec::new();
    }
    let Some(rel) = o.child("relation") else {
        return Vec::new();
    };
    if !rel.text("catalogname").is_empty() {
        return Vec::new();
    }
    let schema = Some(rel.text("schemaname"))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let table = rel.text("relname").to_string();
    let mut asks = Vec::new();
    for cmd in o.list("cmds") {
        let Some(c) = cmd.is("AlterTableCmd") else {
            continue;
        };
        if c.int("subtype") != k(AlterTableType::AtAlterColumnType) {
            continue;
        }
        match column_change(c) {
            Some((type_name, typmods)) => asks.push(CatalogAsk::Widen {
                schema: schema.clone(),
                table: table.clone(),
                column: c.text("name").to_string(),
                type_name,
                typmods,
            }),
            // One change that cannot be proven: the statement stays a type change.
            None => return Vec::new(),
        }
    }
    asks
}

/// The new type of a plain `ALTER COLUMN … TYPE name(n, …)`.
fn column_change(c: &Obj) -> Option<(Vec<String>, Vec<i64>)> {
    let def = c.child("def").filter(|d| d.name == "ColumnDef")?;
    if def.get("raw_default") != &G::Null
        || def.get("coll_clause") != &G::Null
        || def.get("cooked_default") != &G::Null
    {
        return None;
    }
    let t = def.child("type_name")?;
    if t.flag("setof") || t.flag("pct_type") || !t.list("array_bounds").is_empty() {
        return None;
    }
    let names = t
        .list("names")
        .iter()
        .map(|n| n.is("String").map(|s| s.text("sval").to_string()))
        .collect::<Option<Vec<_>>>()?;
    let typmods = t
        .list("typmods")
        .iter()
        .map(typmod)
        .collect::<Option<Vec<_>>>()?;
    (!names.is_empty() && !c.text("name").is_empty()).then_some((names, typmods))
}

/// An integer constant type modifier.
fn typmod(g: &G) -> Option<i64> {
    let c = g.is("AConst")?;
    if c.flag("isnull") {
        return None;
    }
    match c.child("val") {
        Some(v) if v.name == "Integer" => Some(v.int("ival")),
        Some(_) => None,
        // An integer 0 has all its fields at their defaults.
        None => Some(0),
    }
}

/// The asks of a `TRUNCATE` whose tables are each written `pg_temp.name` or
/// unqualified (one per unqualified name); none when any other schema is named.
pub(super) fn temp_asks(rels: &[G]) -> Vec<CatalogAsk> {
    let mut asks = Vec::new();
    for r in rels {
        let Some(r) = r.is("RangeVar") else {
            return Vec::new();
        };
        if !r.text("catalogname").is_empty() {
            return Vec::new();
        }
        match r.text("schemaname") {
            "" => asks.push(CatalogAsk::TempTable {
                name: r.text("relname").to_string(),
            }),
            "pg_temp" => {}
            _ => return Vec::new(),
        }
    }
    asks
}
