//! Object names as the statement wrote them: schema-qualified when qualified, with
//! PostgreSQL's identifier folding (the parser lower-cases unquoted names already).

use super::tree::{Obj, G};

/// `catalog.schema.rel` of a RangeVar, omitting the parts not written.
pub fn range_var(o: &Obj) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(3);
    for f in ["catalogname", "schemaname", "relname"] {
        let t = o.text(f);
        if !t.is_empty() {
            parts.push(t);
        }
    }
    parts.join(".")
}

/// A dotted name from a list of `String` nodes (`["public", "users"]` → `public.users`).
pub fn name_list(items: &[G]) -> String {
    let parts: Vec<&str> = items
        .iter()
        .filter_map(|n| n.is("String").map(|s| s.text("sval")))
        .collect();
    parts.join(".")
}

/// The name of one object in a DROP/COMMENT/… object list, whatever node holds it.
pub fn any_name(g: &G) -> Option<String> {
    match g {
        G::List(items) => Some(name_list(items)).filter(|s| !s.is_empty()),
        G::Obj(o) => match o.name {
            "String" => Some(o.text("sval").to_string()),
            "List" => Some(name_list(o.list("items"))),
            "ObjectWithArgs" => Some(name_list(o.list("objname"))),
            "TypeName" => Some(name_list(o.list("names"))),
            "RangeVar" => Some(range_var(o)),
            "RoleSpec" => Some(o.text("rolename").to_string()).filter(|s| !s.is_empty()),
            _ => None,
        },
        _ => None,
    }
}

/// The function name of a FuncCall: (schema parts, last name).
pub fn func_name(o: &Obj) -> (Vec<&str>, &str) {
    let parts: Vec<&str> = o
        .list("funcname")
        .iter()
        .filter_map(|n| n.is("String").map(|s| s.text("sval")))
        .collect();
    match parts.split_last() {
        Some((last, rest)) => (rest.to_vec(), last),
        None => (Vec::new(), ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tree::to_tree;

    #[test]
    fn qualified_range_var() {
        let r = pg_query::parse("SELECT * FROM Public.\"Users\"", 0).expect("parses");
        let g = to_tree(r.protobuf.stmts[0].stmt.as_deref().expect("stmt"));
        let s = g.is("SelectStmt").expect("select");
        let rv = s.list("from_clause")[0].is("RangeVar").expect("rv");
        assert_eq!(range_var(rv), "public.Users");
    }
}
