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

/// The query: no row when none of `names` (quoted, possibly schema-qualified
/// names) resolves to a relation of one of `relkinds`, else one row, one column, a
/// JSON document about the ones that do.
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
  SELECT i.inhrelid AS oid FROM pg_catalog.pg_inherits i JOIN t ON i.inhparent = t.oid
  UNION
  SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN kids k ON i.inhparent = k.oid
), tabs AS (
  SELECT oid FROM t UNION SELECT oid FROM kids
), views AS (
  SELECT r.ev_class AS oid FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_rewrite r ON d.classid = {REWRITE} AND d.objid = r.oid
  WHERE d.refclassid = {CLASS} AND d.refobjid IN (SELECT oid FROM tabs)
    AND r.ev_class NOT IN (SELECT oid FROM tabs)
  UNION
  SELECT r.ev_class FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_rewrite r ON d.classid = {REWRITE} AND d.objid = r.oid
  JOIN views v ON d.refclassid = {CLASS} AND d.refobjid = v.oid
  WHERE r.ev_class <> v.oid
), moved AS (
  SELECT oid FROM tabs UNION SELECT oid FROM views
), owned AS (
  SELECT d.objid AS oid FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  WHERE d.classid = {CLASS} AND d.refclassid = {CLASS}
    AND d.refobjid IN (SELECT oid FROM tabs) AND d.deptype IN ('a', 'i')
), types AS (
  SELECT c.reltype AS oid FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM moved)
  UNION
  SELECT y.typarray FROM pg_catalog.pg_class c JOIN pg_catalog.pg_type y ON y.oid = c.reltype
  WHERE c.oid IN (SELECT oid FROM moved)
), deps AS (
  SELECT d.classid, d.objid, d.objsubid FROM pg_catalog.pg_depend d
  WHERE d.deptype = 'n' AND (
    (d.refclassid = {CLASS} AND d.refobjid IN (SELECT oid FROM moved UNION SELECT oid FROM owned))
    OR (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.refobjid IN (SELECT oid FROM types)))
)
SELECT pg_catalog.json_build_object(
  'tables', (SELECT pg_catalog.json_agg({rel_json} ORDER BY x.n) FROM named x
             JOIN pg_catalog.pg_class c ON c.oid = x.oid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace),
  'is_child', EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid IN (SELECT oid FROM t)),
  'inherited', EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p
             ON p.oid = i.inhparent WHERE i.inhparent IN (SELECT oid FROM tabs) AND p.relkind <> 'p'),
  'children', (SELECT coalesce(pg_catalog.json_agg({rel_json} ORDER BY c.oid), '[]')
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE c.oid IN (SELECT oid FROM kids)),
  'views', (SELECT coalesce(pg_catalog.json_agg({rel_json} ORDER BY c.oid), '[]')
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid IN (SELECT oid FROM views)),
  'fks_out', (SELECT coalesce(pg_catalog.json_agg({fk_json} ORDER BY k.oid), '[]')
              FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE k.contype = 'f' AND k.conparentid = 0 AND k.conrelid IN (SELECT oid FROM tabs)
                AND k.confrelid NOT IN (SELECT oid FROM tabs)),
  'fks_in', (SELECT coalesce(pg_catalog.json_agg({fk_json} ORDER BY k.oid), '[]')
             FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE k.contype = 'f' AND k.conparentid = 0 AND k.confrelid IN (SELECT oid FROM tabs)
               AND k.conrelid NOT IN (SELECT oid FROM tabs)),
  'other_dependents', (SELECT coalesce(pg_catalog.json_agg(DISTINCT
        pg_catalog.pg_describe_object(x.classid, x.objid, x.objsubid)), '[]')
      FROM deps x
      WHERE NOT (x.classid = {REWRITE} AND EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r
                   WHERE r.oid = x.objid AND r.ev_class IN (SELECT oid FROM moved)))
        AND NOT (x.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND EXISTS (
                   SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.oid = x.objid
                   AND (k.conrelid IN (SELECT oid FROM moved)
                        OR (k.contype = 'f' AND k.confrelid IN (SELECT oid FROM tabs)))))
        AND NOT (x.classid = {CLASS} AND x.objid IN (SELECT oid FROM moved UNION SELECT oid FROM owned))
        AND NOT (x.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND EXISTS (
                   SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.oid = x.objid
                   AND g.tgrelid IN (SELECT oid FROM moved)))
        AND NOT (x.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND EXISTS (
                   SELECT 1 FROM pg_catalog.pg_policy p WHERE p.oid = x.objid
                   AND p.polrelid IN (SELECT oid FROM moved)))
        AND NOT (x.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND EXISTS (
                   SELECT 1 FROM pg_catalog.pg_attrdef a WHERE a.oid = x.objid
                   AND a.adrelid IN (SELECT oid FROM moved)))
        AND NOT (x.classid = {CLASS} AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                   WHERE i.indexrelid = x.objid AND i.indrelid IN (SELECT oid FROM moved)))),
  'publications', (SELECT coalesce(pg_catalog.json_agg(DISTINCT p.pubname), '[]')
                   FROM pg_catalog.pg_publication_rel r
                   JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid
                   WHERE r.prrelid IN (SELECT oid FROM moved)),
  'statistics', (SELECT coalesce(pg_catalog.json_agg(s.stxname), '[]')
                 FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid IN (SELECT oid FROM moved)),
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
