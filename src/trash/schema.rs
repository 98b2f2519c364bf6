//! Pure: the trash for `DROP SCHEMA`. The schema is renamed into the trash
//! (`pgwarden_trash_<id>`), so its name is free at once and every object in it
//! stays as it was; restore renames it back.
//!
//! Faithful or not at all: when objects outside the schema depend on objects in it
//! (a `CASCADE` would remove them: a view, a foreign key, a column of its type, an
//! extension, a publication, …), or objects in it depend on relations outside it
//! (a view over a table elsewhere, a foreign key to one, a partition of a table
//! elsewhere), the plan is [`NotFaithful`] and the rule's fallback applies.

use serde::Deserialize;

use super::plan::{Context, NotFaithful, TrashPlan};
use super::{ident, item_schema, literal, ITEM_SCHEMA_PREFIX, REGISTRY_SCHEMA};

/// What the catalog says about a schema to be dropped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SchemaFacts {
    pub name: String,
    /// Objects outside the schema that depend on objects in it (descriptions).
    pub outside_dependents: Vec<String>,
    /// Objects in the schema that depend on relations outside it.
    pub depends_outside: Vec<String>,
    /// `pg_total_relation_size` of its tables and materialized views.
    pub size: i64,
}

/// The catalog entries that live in the schema, as `(class, id)`: its relations,
/// types, functions, constraints, operators and the like, and the rules,
/// triggers, policies and defaults of its relations. An entry of a catalog not
/// listed counts as outside (fail closed).
fn inside() -> String {
    let own = [
        ("pg_type", "typnamespace"),
        ("pg_proc", "pronamespace"),
        ("pg_constraint", "connamespace"),
        ("pg_collation", "collnamespace"),
        ("pg_operator", "oprnamespace"),
        ("pg_opclass", "opcnamespace"),
        ("pg_opfamily", "opfnamespace"),
        ("pg_conversion", "connamespace"),
        ("pg_statistic_ext", "stxnamespace"),
        ("pg_ts_config", "cfgnamespace"),
        ("pg_ts_dict", "dictnamespace"),
    ];
    let via_rel = [
        ("pg_rewrite", "ev_class"),
        ("pg_trigger", "tgrelid"),
        ("pg_policy", "polrelid"),
        ("pg_attrdef", "adrelid"),
    ];
    let cls = |cat: &str| format!("'pg_catalog.{cat}'::pg_catalog.regclass::pg_catalog.oid");
    let mut arms = vec![
        format!("SELECT {}, oid FROM rels", cls("pg_class")),
        format!("SELECT {}, oid FROM s", cls("pg_namespace")),
    ];
    for (cat, col) in own {
        arms.push(format!(
            "SELECT {}, x.oid FROM pg_catalog.{cat} x WHERE x.{col} = (SELECT oid FROM s)",
            cls(cat)
        ));
    }
    for (cat, col) in via_rel {
        arms.push(format!(
            "SELECT {}, x.oid FROM pg_catalog.{cat} x WHERE x.{col} IN (SELECT oid FROM rels)",
            cls(cat)
        ));
    }
    arms.join("\n  UNION ALL ")
}

/// The query: no row when the schema does not exist, else one JSON document.
pub fn sql(name: &str) -> String {
    format!(
        "WITH s AS (SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE nspname = {name}),
rels AS (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = (SELECT oid FROM s)),
inside(cls, id) AS (
  {inside}
)
SELECT pg_catalog.json_build_object(
  'name', s.nspname,
  'outside_dependents', (SELECT coalesce(pg_catalog.json_agg(DISTINCT
        pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)), '[]')
      FROM pg_catalog.pg_depend d JOIN inside i ON i.cls = d.refclassid AND i.id = d.refobjid
      WHERE d.deptype <> 'i' AND NOT EXISTS (SELECT 1 FROM inside j
        WHERE j.cls = d.classid AND j.id = d.objid)),
  'depends_outside', (SELECT coalesce(pg_catalog.json_agg(DISTINCT
        pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) || ' on '
        || pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)), '[]')
      FROM pg_catalog.pg_depend d JOIN inside i ON i.cls = d.classid AND i.id = d.objid
      WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
        AND d.refobjid NOT IN (SELECT oid FROM rels)),
  'size', (SELECT coalesce(pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::int8
           FROM pg_catalog.pg_class c WHERE c.relnamespace = s.oid AND c.relkind IN ('r', 'm'))
)::text FROM s",
        name = literal(name),
        inside = inside(),
    )
}

/// Reads the query's rows: `Ok(None)` when the schema does not exist.
pub fn read(rows: &[Vec<Option<&str>>]) -> Result<Option<SchemaFacts>, String> {
    match rows {
        [] => Ok(None),
        [row] => {
            let text = row
                .first()
                .copied()
                .flatten()
                .ok_or("schema facts: empty row")?;
            serde_json::from_str(text)
                .map(Some)
                .map_err(|e| format!("schema facts: unexpected document: {e}"))
        }
        _ => Err("schema facts: more than one row".into()),
    }
}

/// Plans the trash of `DROP SCHEMA` as item `id`: the schema is renamed.
pub fn plan(f: &SchemaFacts, id: i64, cx: &Context<'_>) -> Result<TrashPlan, NotFaithful> {
    let nf = |why: String| Err(NotFaithful(why));
    if f.name == REGISTRY_SCHEMA || f.name.starts_with(ITEM_SCHEMA_PREFIX) {
        return nf("it is pgwarden's trash (use `pgwarden trash purge`)".into());
    }
    if f.name.starts_with("pg_") || f.name == "information_schema" {
        return nf("a system or temporary schema".into());
    }
    if !f.outside_dependents.is_empty() {
        return nf(format!(
            "objects outside the schema depend on it: {}",
            f.outside_dependents.join(", ")
        ));
    }
    if !f.depends_outside.is_empty() {
        return nf(format!(
            "objects in the schema depend on relations outside it: {}",
            f.depends_outside.join(", ")
        ));
    }
    let schema = item_schema(id);
    let statements = vec![
        format!(
            "ALTER SCHEMA {} RENAME TO {}",
            ident(&f.name),
            ident(&schema)
        ),
        super::plan::registry_insert(id, "schema", None, &f.name, &schema, cx, &[], &[], f.size),
    ];
    Ok(TrashPlan {
        id,
        original: ident(&f.name),
        what: format!("schema {}", ident(&f.name)),
        statements,
        moved: Vec::new(),
        removed: Vec::new(),
        size: f.size,
        trash_name: schema,
    })
}

/// A query whose row names the schema a restore needs when it exists.
pub fn taken_sql(name: &str) -> String {
    format!(
        "SELECT {} WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = {})",
        literal(&format!("schema {name}")),
        literal(name)
    )
}

/// The rename back (to `name`).
pub fn restore_sql(trash_schema: &str, name: &str) -> String {
    format!(
        "ALTER SCHEMA {} RENAME TO {}",
        ident(trash_schema),
        ident(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> SchemaFacts {
        SchemaFacts {
            name: "side".into(),
            outside_dependents: vec![],
            depends_outside: vec![],
            size: 8192,
        }
    }

    const CX: Context<'static> = Context {
        by: "alice",
        statement: "DROP SCHEMA side CASCADE",
        retention: None,
        truncate_max_bytes: 0,
    };

    #[test]
    fn renamed_into_the_trash() {
        let p = plan(&facts(), 9, &CX).expect("plan");
        assert_eq!(
            p.statements[0],
            "ALTER SCHEMA \"side\" RENAME TO \"pgwarden_trash_9\""
        );
        assert!(
            p.statements[1].contains("E'schema', NULL, E'side'"),
            "{}",
            p.statements[1]
        );
        assert!(
            p.notice().contains("schema \"side\" was moved"),
            "{}",
            p.notice()
        );
        assert_eq!(
            restore_sql("pgwarden_trash_9", "side"),
            "ALTER SCHEMA \"pgwarden_trash_9\" RENAME TO \"side\""
        );
        assert!(taken_sql("side").contains("nspname = E'side'"));
        assert!(sql("side").contains("nspname = E'side'"));
    }

    #[test]
    fn not_faithful() {
        let cases = [
            SchemaFacts {
                outside_dependents: vec!["view public.v".into()],
                ..facts()
            },
            SchemaFacts {
                depends_outside: vec!["view side.v on table public.t".into()],
                ..facts()
            },
            SchemaFacts {
                name: "pgwarden_trash_3".into(),
                ..facts()
            },
            SchemaFacts {
                name: "pg_temp_3".into(),
                ..facts()
            },
        ];
        for f in cases {
            assert!(plan(&f, 1, &CX).is_err(), "{f:?}");
        }
    }
}
