//! Pure: the catalog query about a table to be trashed and the reading of its one
//! row (a JSON document built by the server, so the shape is checked in one place).
//!
//! The query follows `pg_inherits` (partitions, recursively), `pg_depend` +
//! `pg_rewrite` (views and materialized views over the table, recursively),
//! `pg_constraint` (foreign keys out of and into the set) and `pg_depend` again for
//! everything else a `DROP … CASCADE` would remove or that would refuse the DROP:
//! those objects are listed by `pg_describe_object` and make the plan "not
//! faithful", because pgwarden does not know how to keep them.

use serde::{Deserialize, Serialize};

/// One relation that moves into the trash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rel {
    pub schema: String,
    pub name: String,
    /// `pg_class.relkind`: r, p, v, m, f, …
    pub kind: String,
    /// `pg_class.relpersistence`: p, u, t.
    pub persistence: String,
}

/// A foreign key constraint, in parts, so that a restore can point it at a table
/// restored under another name (`pg_get_constraintdef` would name the referenced
/// table as the client's search_path sees it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// The referencing table.
    pub schema: String,
    pub table: String,
    pub name: String,
    /// Referencing columns, in order.
    pub columns: Vec<String>,
    /// The referenced table and columns.
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// MATCH, ON UPDATE/DELETE, DEFERRABLE and NOT VALID clauses, as SQL.
    pub tail: String,
}

impl ForeignKey {
    /// `FOREIGN KEY (…) REFERENCES schema.table(…) …`, referencing `ref_table`
    /// (or the name it is restored under).
    pub fn definition(&self, ref_table: &str) -> String {
        let cols = |v: &[String]| {
            v.iter()
                .map(|c| super::ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "FOREIGN KEY ({}) REFERENCES {}({}){}",
            cols(&self.columns),
            super::qualified(&self.ref_schema, ref_table),
            cols(&self.ref_columns),
            self.tail
        )
    }
}

/// What the catalog says about the relations a DROP names (as the client's session
/// resolves their names).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TableFacts {
    /// The relations the statement names, in its order (the ones that resolved).
    pub tables: Vec<Rel>,
    /// Whether one of them is a partition or an inheritance child of another table.
    pub is_child: bool,
    /// Whether one of the moved plain tables has inheritance (not partition)
    /// children.
    pub inherited: bool,
    /// Its partitions or inheritance children, recursively.
    pub children: Vec<Rel>,
    /// Views and materialized views that depend on the table or its partitions,
    /// recursively.
    pub views: Vec<Rel>,
    /// Foreign keys from the moved tables to tables that stay.
    pub fks_out: Vec<ForeignKey>,
    /// Foreign keys from tables that stay to the moved tables.
    pub fks_in: Vec<ForeignKey>,
    /// Anything else that depends on the moved set (descriptions).
    pub other_dependents: Vec<String>,
    /// Publications that include one of the moved tables.
    pub publications: Vec<String>,
    /// Extended statistics objects on the moved tables (they would not move).
    pub statistics: Vec<String>,
    /// `pg_total_relation_size` of the moved tables, in bytes.
    pub size: i64,
}

const CLASS: &str = "'pg_catalog.pg_class'::pg_catalog.regclass";
const REWRITE: &str = "'pg_catalog.pg_rewrite'::pg_catalog.regclass";

/// A foreign key `k` on table `c` (schema `n`) as a [`ForeignKey`] document.
const FK_JSON: &str = "pg_catalog.json_build_object('schema', n.nspname, 'table', c.relname, \
  'name', k.conname, \
  'columns', (SELECT pg_catalog.json_agg(a.attname ORDER BY o.n) \
     FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY o(att, n) \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = o.att), \
  'ref_schema', (SELECT rn.nspname FROM pg_catalog.pg_class rc \
     JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = k.confrelid), \
  'ref_table', (SELECT rc.relname FROM pg_catalog.pg_class rc WHERE rc.oid = k.confrelid), \
  'ref_columns', (SELECT pg_catalog.json_agg(a.attname ORDER BY o.n) \
     FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY o(att, n) \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = o.att), \
  'tail', CASE k.confmatchtype WHEN 'f' THEN ' MATCH FULL' ELSE '' END \
     || CASE k.confupdtype WHEN 'r' THEN ' ON UPDATE RESTRICT' WHEN 'c' THEN ' ON UPDATE CASCADE' \
          WHEN 'n' THEN ' ON UPDATE SET NULL' WHEN 'd' THEN ' ON UPDATE SET DEFAULT' ELSE '' END \
     || CASE k.confdeltype WHEN 'r' THEN ' ON DELETE RESTRICT' WHEN 'c' THEN ' ON DELETE CASCADE' \
          WHEN 'n' THEN ' ON DELETE SET NULL' WHEN 'd' THEN ' ON DELETE SET DEFAULT' ELSE '' END \
     || coalesce(' (' || (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY o.n) \
          FROM pg_catalog.unnest(k.confdelsetcols) WITH ORDINALITY o(att, n) \
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = o.att) || ')', '') \
     || CASE WHEN k.condeferrable THEN ' DEFERRABLE' ELSE '' END \
     || CASE WHEN k.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END \
     || CASE WHEN NOT k.convalidated THEN ' NOT VALID' ELSE '' END)";

/// `ARRAY[…]::text[]` of the names as literals.
fn name_array(names: &[String]) -> String {
    let lits: Vec<String> = names.iter().map(|n| super::literal(n)).collect();
    format!("ARRAY[{}]::pg_catalog.text[]", lits.join(", "))
}

/// `'a', 'b'` of relkinds.
fn kind_list(kinds: &[&str]) -> String {
    let lits: Vec<String> = kinds.iter().map(|k| super::literal(k)).collect();
    lits.join(", ")
}

const TYPE: &str = "'pg_catalog.pg_type'::pg_catalog.regclass";
const CONSTRAINT: &str = "'pg_catalog.pg_constraint'::pg_catalog.regclass";
const TRIGGER: &str = "'pg_catalog.pg_trigger'::pg_catalog.regclass";
const POLICY: &str = "'pg_catalog.pg_policy'::pg_catalog.regclass";
const ATTRDEF: &str = "'pg_catalog.pg_attrdef'::pg_catalog.regclass";

/// The query: no row when none of `names` (quoted, possibly schema-qualified
/// names) resolves to a relation of one of `relkinds`, else one row, one column, a
/// JSON document about the ones that do.
///
/// Every catalog is entered from the few oids of the moved set through its indexes
/// (`pg_depend` by `refclassid, refobjid`, the others by their relation or oid
/// columns; only `pg_constraint.confrelid` has no index, a scan of a small
/// catalog), and the objects that move with the set are one anti-joined list
/// rather than a correlated test per dependency. Both keep the planner's estimate
/// small: with per-row subplans the estimate passed `jit_above_cost`, and on a
/// regression-sized catalog PostgreSQL spent about 3 s compiling the query with
/// LLVM before running it for 20 ms (BENCHMARKS.md, pg_regress with the trash).
pub fn sql(names: &[String], relkinds: &[&str]) -> String {
    let arr = name_array(names);
    let kinds = kind_list(relkinds);
    format!(
        "WITH RECURSIVE named AS (
  SELECT c.oid, pg_catalog.min(u.n) AS n FROM pg_catalog.unnest({arr}) WITH ORDINALITY u(x, n)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(u.x)
  WHERE c.relkind IN ({kinds}) GROUP BY c.oid
), t AS (
  SELECT oid FROM named
), kids AS (
  SELECT i.inhrelid AS oid FROM t JOIN pg_catalog.pg_inherits i ON i.inhparent = t.oid
  UNION
  SELECT i.inhrelid FROM kids k JOIN pg_catalog.pg_inherits i ON i.inhparent = k.oid
), tabs AS (
  SELECT oid FROM t UNION SELECT oid FROM kids
), views AS (
  SELECT r.ev_class AS oid FROM tabs s
  JOIN pg_catalog.pg_depend d ON d.refclassid = {CLASS} AND d.refobjid = s.oid
  JOIN pg_catalog.pg_rewrite r ON d.classid = {REWRITE} AND r.oid = d.objid
  WHERE r.ev_class NOT IN (SELECT oid FROM tabs)
  UNION
  SELECT r.ev_class FROM views v
  JOIN pg_catalog.pg_depend d ON d.refclassid = {CLASS} AND d.refobjid = v.oid
  JOIN pg_catalog.pg_rewrite r ON d.classid = {REWRITE} AND r.oid = d.objid
  WHERE r.ev_class <> v.oid
), moved AS (
  SELECT oid FROM tabs UNION SELECT oid FROM views
), owned AS (
  SELECT d.objid AS oid FROM tabs s
  JOIN pg_catalog.pg_depend d ON d.refclassid = {CLASS} AND d.refobjid = s.oid
  JOIN pg_catalog.pg_class q ON q.oid = d.objid AND q.relkind = 'S'
  WHERE d.classid = {CLASS} AND d.deptype IN ('a', 'i')
), types AS (
  SELECT c.reltype AS oid FROM moved m JOIN pg_catalog.pg_class c ON c.oid = m.oid
  UNION
  SELECT y.typarray FROM moved m JOIN pg_catalog.pg_class c ON c.oid = m.oid
  JOIN pg_catalog.pg_type y ON y.oid = c.reltype
), deps AS (
  SELECT d.classid, d.objid, d.objsubid
  FROM (SELECT oid FROM moved UNION SELECT oid FROM owned) s
  JOIN pg_catalog.pg_depend d ON d.refclassid = {CLASS} AND d.refobjid = s.oid
  WHERE d.deptype = 'n'
  UNION ALL
  SELECT d.classid, d.objid, d.objsubid FROM types y
  JOIN pg_catalog.pg_depend d ON d.refclassid = {TYPE} AND d.refobjid = y.oid
  WHERE d.deptype = 'n'
), own AS (
  SELECT {REWRITE} AS classid, r.oid AS objid FROM moved m
  JOIN pg_catalog.pg_rewrite r ON r.ev_class = m.oid
  UNION ALL
  SELECT {CONSTRAINT}, k.oid FROM moved m JOIN pg_catalog.pg_constraint k ON k.conrelid = m.oid
  UNION ALL
  SELECT {CONSTRAINT}, k.oid FROM pg_catalog.pg_constraint k
  WHERE k.contype = 'f' AND k.confrelid IN (SELECT oid FROM tabs)
  UNION ALL
  SELECT {CLASS}, oid FROM moved
  UNION ALL
  SELECT {CLASS}, oid FROM owned
  UNION ALL
  SELECT {TRIGGER}, g.oid FROM moved m JOIN pg_catalog.pg_trigger g ON g.tgrelid = m.oid
  UNION ALL
  SELECT {POLICY}, p.oid FROM moved m JOIN pg_catalog.pg_policy p ON p.polrelid = m.oid
  UNION ALL
  SELECT {ATTRDEF}, a.oid FROM moved m JOIN pg_catalog.pg_attrdef a ON a.adrelid = m.oid
  UNION ALL
  SELECT {CLASS}, i.indexrelid FROM moved m JOIN pg_catalog.pg_index i ON i.indrelid = m.oid
)
SELECT pg_catalog.json_build_object(
  'tables', (SELECT pg_catalog.json_agg({rel_json} ORDER BY x.n) FROM named x
             JOIN pg_catalog.pg_class c ON c.oid = x.oid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace),
  'is_child', EXISTS (SELECT 1 FROM t JOIN pg_catalog.pg_inherits i ON i.inhrelid = t.oid),
  'inherited', EXISTS (SELECT 1 FROM tabs s JOIN pg_catalog.pg_inherits i ON i.inhparent = s.oid
             JOIN pg_catalog.pg_class p ON p.oid = i.inhparent WHERE p.relkind <> 'p'),
  'children', (SELECT coalesce(pg_catalog.json_agg({rel_json} ORDER BY c.oid), '[]')
               FROM (SELECT DISTINCT oid FROM kids) s JOIN pg_catalog.pg_class c ON c.oid = s.oid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace),
  'views', (SELECT coalesce(pg_catalog.json_agg({rel_json} ORDER BY c.oid), '[]')
            FROM (SELECT DISTINCT oid FROM views) s JOIN pg_catalog.pg_class c ON c.oid = s.oid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace),
  'fks_out', (SELECT coalesce(pg_catalog.json_agg({fk_json} ORDER BY k.oid), '[]')
              FROM tabs s JOIN pg_catalog.pg_constraint k ON k.conrelid = s.oid
              JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE k.contype = 'f' AND k.conparentid = 0
                AND k.confrelid NOT IN (SELECT oid FROM tabs)),
  'fks_in', (SELECT coalesce(pg_catalog.json_agg({fk_json} ORDER BY k.oid), '[]')
             FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE k.contype = 'f' AND k.conparentid = 0 AND k.confrelid IN (SELECT oid FROM tabs)
               AND k.conrelid NOT IN (SELECT oid FROM tabs)),
  'other_dependents', (SELECT coalesce(pg_catalog.json_agg(DISTINCT
        pg_catalog.pg_describe_object(x.classid, x.objid, x.objsubid)), '[]')
      FROM deps x
      WHERE NOT EXISTS (SELECT 1 FROM own o WHERE o.classid = x.classid AND o.objid = x.objid)),
  'publications', (SELECT coalesce(pg_catalog.json_agg(DISTINCT p.pubname), '[]')
                   FROM moved m JOIN pg_catalog.pg_publication_rel r ON r.prrelid = m.oid
                   JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid),
  'statistics', (SELECT coalesce(pg_catalog.json_agg(s.stxname), '[]')
                 FROM moved m JOIN pg_catalog.pg_statistic_ext s ON s.stxrelid = m.oid),
  'size', (SELECT coalesce(pg_catalog.sum(pg_catalog.pg_total_relation_size(oid)), 0)::int8
           FROM moved)
)::text WHERE EXISTS (SELECT 1 FROM t)",
        rel_json = "pg_catalog.json_build_object('schema', n.nspname, 'name', c.relname, \
                    'kind', c.relkind, 'persistence', c.relpersistence)",
        fk_json = FK_JSON,
    )
}

/// Reads the query's rows: `Ok(None)` when the name did not resolve to a table.
pub fn read(rows: &[Vec<Option<&str>>]) -> Result<Option<TableFacts>, String> {
    match rows {
        [] => Ok(None),
        [row] => {
            let text = row
                .first()
                .copied()
                .flatten()
                .ok_or("trash facts: empty row")?;
            serde_json::from_str(text)
                .map(Some)
                .map_err(|e| format!("trash facts: unexpected document: {e}"))
        }
        _ => Err("trash facts: more than one row".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_a_literal() {
        let q = sql(&["\"a'b\"".into(), "t".into()], &["r", "p"]);
        assert!(
            q.contains("ARRAY[E'\"a''b\"', E't']::pg_catalog.text[]"),
            "{q}"
        );
        assert!(q.contains("relkind IN (E'r', E'p')"), "{q}");
    }

    #[test]
    fn reads_the_document() {
        let doc = r#"{"tables":[{"schema":"public","name":"t","kind":"r","persistence":"p"}],
            "is_child":false,"inherited":false,"children":[],"views":[],"fks_out":[],"fks_in":[],
            "other_dependents":[],"publications":[],"statistics":[],"size":8192}"#;
        let facts = read(&[vec![Some(doc)]]).expect("reads").expect("some");
        assert_eq!(facts.tables[0].name, "t");
        assert_eq!(facts.size, 8192);
        assert_eq!(read(&[]), Ok(None));
        assert!(read(&[vec![Some("{}")]]).is_err());
        assert!(read(&[vec![None]]).is_err());
    }
}
