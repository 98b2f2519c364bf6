//! Pure: from a [`TrashRequest`] to the catalog query about it, the reading of its
//! answer and the plan, whatever the statement kind (DROP of relations, TRUNCATE).
//! The proxy's relay and [`super::run`] both go through here, except for `DROP
//! DATABASE`: it cannot be tried in a transaction, and only the proxy carries it
//! out, through [`super::database`] (here it reads no facts and has no plan).

use super::facts::{self, TableFacts};
use super::plan::{self, Context, NotFaithful, Plan};
use super::schema::{self, SchemaFacts};
use super::statement::TrashRequest;
use super::truncate::{self, TruncateFacts};

const ONLY_THE_PROXY: &str = "DROP DATABASE is trashed by the proxy only";

/// What the catalog said about the statement's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Facts {
    Relations(TableFacts),
    Truncate(TruncateFacts),
    Schema(SchemaFacts),
}

/// The catalog query for `request` (one row, or none when nothing it names
/// exists).
pub fn facts_sql(request: &TrashRequest) -> String {
    let names: Vec<String> = request.names().iter().map(|n| n.text()).collect();
    match request {
        TrashRequest::DropRelations { kind, .. } => facts::sql(&names, kind.relkinds()),
        TrashRequest::Truncate { cascade, .. } => truncate::sql(&names, *cascade),
        TrashRequest::DropSchema { name, .. } => schema::sql(name),
        TrashRequest::DropDatabase { name, .. } => super::database::facts_sql(name, None),
    }
}

/// Reads the query's rows (`None`: nothing it names exists).
pub fn read_facts(
    request: &TrashRequest,
    rows: &[Vec<Option<&str>>],
) -> Result<Option<Facts>, String> {
    Ok(match request {
        TrashRequest::DropRelations { .. } => facts::read(rows)?.map(Facts::Relations),
        TrashRequest::Truncate { .. } => truncate::read(rows)?.map(Facts::Truncate),
        TrashRequest::DropSchema { .. } => schema::read(rows)?.map(Facts::Schema),
        TrashRequest::DropDatabase { .. } => return Err(ONLY_THE_PROXY.into()),
    })
}

/// Whether the statement has something to keep (and so needs the registry and an
/// item id); `false` runs it as written.
pub fn keeps_something(facts: Option<&Facts>) -> bool {
    match facts {
        None => false,
        Some(Facts::Relations(f)) => f.tables.iter().any(|t| t.persistence != "t"),
        Some(Facts::Truncate(f)) => f.named.iter().any(|t| t.persistence != "t"),
        Some(Facts::Schema(_)) => true,
    }
}

/// The plan for `request` as item `id`.
pub fn plan(
    request: &TrashRequest,
    facts: Option<&Facts>,
    id: i64,
    cx: &Context<'_>,
) -> Result<Plan, NotFaithful> {
    match (request, facts) {
        (TrashRequest::DropRelations { .. }, None) => plan::plan(request, None, id, cx),
        (TrashRequest::DropRelations { .. }, Some(Facts::Relations(f))) => {
            plan::plan(request, Some(f), id, cx)
        }
        (
            TrashRequest::Truncate {
                restart_identity,
                cascade,
                ..
            },
            Some(Facts::Truncate(f)),
        ) => {
            if !keeps_something(facts) {
                return Ok(Plan::AsWritten("a temporary table"));
            }
            truncate::plan(f, *restart_identity, *cascade, id, cx).map(Plan::Trash)
        }
        (TrashRequest::Truncate { .. }, None) => Err(NotFaithful("no table to empty".into())),
        // DROP SCHEMA IF EXISTS of a missing schema removes nothing.
        (TrashRequest::DropSchema { .. }, None) => Ok(Plan::AsWritten("the schema does not exist")),
        (TrashRequest::DropSchema { .. }, Some(Facts::Schema(f))) => {
            schema::plan(f, id, cx).map(Plan::Trash)
        }
        (TrashRequest::DropDatabase { .. }, _) => Err(NotFaithful(ONLY_THE_PROXY.into())),
        _ => Err(NotFaithful(
            "the catalog facts do not match the statement".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trash::statement::read;

    #[test]
    fn each_kind_gets_its_query() {
        let q = facts_sql(&read("TRUNCATE a, b CASCADE").expect("reads"));
        assert!(q.contains("'f' AND true"), "{q}");
        let q = facts_sql(&read("DROP MATERIALIZED VIEW m").expect("reads"));
        assert!(q.contains("relkind IN (E'm')"), "{q}");
        let req = read("TRUNCATE t").expect("reads");
        assert!(read_facts(&req, &[vec![Some("{}")]]).is_err());
        assert_eq!(read_facts(&req, &[]), Ok(None));
        let cx = Context {
            by: "a",
            statement: "TRUNCATE t",
            retention: None,
            truncate_max_bytes: 1,
        };
        assert!(plan(&req, None, 1, &cx).is_err());
    }
}
