//! Carrying out trash plans on a tokio-postgres connection: the `pgwarden trash`
//! commands, retention purges, and the tests' check of every plan on a real server.
//! Only sequencing and error mapping live here; the SQL comes from the pure modules.

use tokio_postgres::{Client, SimpleQueryMessage};

use super::dispatch;
use super::plan::{Context, Plan, TrashPlan};
use super::registry::{self, Item};
use super::{as_written_open, as_written_undo, statement};
use crate::impact::{ProbePlan, ProbeSettings};

/// Why a trash operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TrashError {
    /// The server refused the statement as written: the client gets this error.
    #[error("{0}")]
    Refused(tokio_postgres::Error),
    /// The statement is not one the trash covers.
    #[error("not covered by the trash: {0}")]
    Unsupported(String),
    /// The trash cannot keep the data faithfully.
    #[error("not faithful: {0}")]
    NotFaithful(String),
    /// No item with this id.
    #[error("no trash item {0}")]
    NotFound(i64),
    /// Restoring would need names that are in use.
    #[error("cannot restore: {0} (restore under another name with --as NAME)")]
    Taken(String),
    /// Restoring a TRUNCATE's rows needs its tables empty; the message says which
    /// has rows again.
    #[error("cannot restore: {0}")]
    NotEmpty(String),
    /// A step failed (the server's message); nothing was changed.
    #[error("{0}")]
    Failed(String),
}

/// What happened to a DROP.
#[derive(Debug)]
pub enum TrashRun {
    /// Moved into the trash.
    Trashed(TrashPlan),
    /// Run as written (nothing to keep), with the reason.
    AsWritten(&'static str),
}

fn failed(e: tokio_postgres::Error) -> TrashError {
    TrashError::Failed(match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    })
}

/// Rows of a simple query as optional strings.
pub async fn rows(
    c: &Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    Ok(c.simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

fn borrowed(rows: &[Vec<Option<String>>]) -> Vec<Vec<Option<&str>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.as_deref()).collect())
        .collect()
}

async fn one(c: &Client, sql: &str) -> Result<Option<String>, TrashError> {
    let r = rows(c, sql).await.map_err(failed)?;
    Ok(r.into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .flatten())
}

/// Where pgwarden's steps run: a savepoint inside the caller's transaction, or a
/// transaction of their own. The SQL is the impact probe's scope
/// ([`ProbePlan::begin`], [`ProbePlan::release`], [`ProbePlan::undo`]) without its
/// timeouts: the commands run with the settings of the caller's connection.
struct Scope<'a> {
    c: &'a Client,
    plan: ProbePlan,
}

impl Scope<'_> {
    async fn open(&self) -> Result<(), TrashError> {
        self.c
            .batch_execute(&self.plan.begin())
            .await
            .map_err(failed)
    }

    async fn keep(&self) -> Result<(), TrashError> {
        self.c
            .batch_execute(&self.plan.release())
            .await
            .map_err(failed)
    }

    async fn undo(&self) -> Result<(), TrashError> {
        self.c
            .batch_execute(&self.plan.undo())
            .await
            .map_err(failed)
    }
}

/// Runs `sql` (a DROP the trash covers) faithfully or not at all: first as written
/// inside a savepoint that is rolled back (the server's refusal is returned as
/// [`TrashError::Refused`]), then the trash plan. `in_transaction` says whether
/// the connection is inside a transaction the caller owns; the trash then becomes
/// part of it.
pub async fn drop_into_trash(
    c: &Client,
    sql: &str,
    in_transaction: bool,
    cx: &Context<'_>,
) -> Result<TrashRun, TrashError> {
    let request = statement::read(sql).map_err(|u| TrashError::Unsupported(u.0))?;
    let scope = Scope {
        c,
        plan: ProbePlan::new(0, in_transaction, ProbeSettings::default()),
    };
    scope.open().await?;
    let result = trash_steps(c, sql, &request, cx).await;
    match result {
        Ok(outcome) => {
            scope.keep().await?;
            Ok(outcome)
        }
        Err(e) => {
            scope.undo().await?;
            Err(e)
        }
    }
}

async fn trash_steps(
    c: &Client,
    sql: &str,
    request: &statement::TrashRequest,
    cx: &Context<'_>,
) -> Result<TrashRun, TrashError> {
    c.batch_execute(&as_written_open()).await.map_err(failed)?;
    let as_written = c.batch_execute(sql).await;
    if as_written.is_ok() {
        c.batch_execute(&as_written_undo()).await.map_err(failed)?;
    }
    as_written.map_err(TrashError::Refused)?;

    let facts_rows = rows(c, &dispatch::facts_sql(request))
        .await
        .map_err(failed)?;
    let facts =
        dispatch::read_facts(request, &borrowed(&facts_rows)).map_err(TrashError::Failed)?;
    let keeps = dispatch::keeps_something(facts.as_ref());
    if keeps && one(c, registry::EXISTS_SQL).await?.as_deref() != Some("true") {
        c.batch_execute(&registry::bootstrap_sql())
            .await
            .map_err(failed)?;
    }
    let id = if keeps {
        one(c, registry::NEXT_ID_SQL)
            .await?
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| TrashError::Failed("no trash item id".into()))?
    } else {
        0
    };
    match dispatch::plan(request, facts.as_ref(), id, cx)
        .map_err(|n| TrashError::NotFaithful(n.0))?
    {
        Plan::AsWritten(why) => {
            c.batch_execute(sql).await.map_err(TrashError::Refused)?;
            Ok(TrashRun::AsWritten(why))
        }
        Plan::Trash(p) => {
            for s in &p.statements {
                c.batch_execute(s).await.map_err(failed)?;
            }
            Ok(TrashRun::Trashed(p))
        }
    }
}

/// Every trashed item: the registry's (none when it does not exist), then the
/// cluster's trashed databases.
pub async fn list(c: &Client) -> Result<Vec<Item>, TrashError> {
    let mut items = Vec::new();
    if one(c, registry::EXISTS_SQL).await?.as_deref() == Some("true") {
        let r = rows(c, &registry::list_sql()).await.map_err(failed)?;
        for row in borrowed(&r) {
            items.push(Item::from_row(&row).map_err(TrashError::Failed)?);
        }
    }
    let databases = super::database_run::list(c).await?;
    items.extend(databases.into_iter().map(|(item, _)| item));
    Ok(items)
}

/// Total bytes in the trash (trashed databases as recorded when trashed).
pub async fn size(c: &Client) -> Result<i64, TrashError> {
    let databases: i64 = super::database_run::list(c)
        .await?
        .iter()
        .map(|(item, _)| item.size_bytes)
        .sum();
    if one(c, registry::EXISTS_SQL).await?.as_deref() != Some("true") {
        return Ok(databases);
    }
    let registry: i64 = one(c, &registry::size_sql())
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(registry.saturating_add(databases))
}

async fn locked_item(c: &Client, id: i64) -> Result<Item, TrashError> {
    if one(c, registry::EXISTS_SQL).await?.as_deref() != Some("true") {
        return Err(TrashError::NotFound(id));
    }
    let r = rows(c, &registry::item_sql(id)).await.map_err(failed)?;
    let b = borrowed(&r);
    let row = b.first().ok_or(TrashError::NotFound(id))?;
    Item::from_row(row).map_err(TrashError::Failed)
}

/// In one transaction of its own: runs `steps` on the locked item, commits on
/// success, rolls back otherwise.
async fn in_transaction(
    c: &Client,
    id: i64,
    steps: fn(&Item) -> Vec<String>,
) -> Result<Item, TrashError> {
    c.batch_execute("BEGIN").await.map_err(failed)?;
    let result = async {
        let item = locked_item(c, id).await?;
        for s in steps(&item) {
            c.batch_execute(&s).await.map_err(failed)?;
        }
        Ok(item)
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    c.batch_execute(end).await.map_err(failed)?;
    result
}

/// Puts item `id` back under its name (or `as_name`), with the foreign keys and
/// views that were removed alongside. Refuses when a name is taken.
pub async fn restore(c: &Client, id: i64, as_name: Option<&str>) -> Result<Item, TrashError> {
    if let Some(db) = super::database_run::find(c, id).await? {
        return super::database_run::restore(c, db, as_name).await;
    }
    c.batch_execute("BEGIN").await.map_err(failed)?;
    let result = async {
        let item = locked_item(c, id).await?;
        let taken = rows(c, &item.taken_sql(as_name)).await.map_err(failed)?;
        let names: Vec<String> = taken
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        if !names.is_empty() {
            if item.kind == "truncate" {
                return Err(TrashError::NotEmpty(names.join("; ")));
            }
            let verb = if names.len() == 1 { "exists" } else { "exist" };
            return Err(TrashError::Taken(format!(
                "{} already {verb}",
                names.join(", ")
            )));
        }
        for s in item.restore_plan(as_name).map_err(TrashError::Failed)? {
            c.batch_execute(&s).await.map_err(failed)?;
        }
        Ok(item)
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    c.batch_execute(end).await.map_err(failed)?;
    result
}

/// Really drops item `id`.
pub async fn purge(c: &Client, id: i64) -> Result<Item, TrashError> {
    if let Some(db) = super::database_run::find(c, id).await? {
        return super::database_run::purge(c, db).await;
    }
    in_transaction(c, id, Item::purge_plan).await
}

/// Purges every item whose retention has passed; returns them.
pub async fn purge_expired(c: &Client) -> Result<Vec<Item>, TrashError> {
    let mut purged = Vec::new();
    if one(c, registry::EXISTS_SQL).await?.as_deref() == Some("true") {
        let ids: Vec<i64> = rows(c, &registry::expired_sql())
            .await
            .map_err(failed)?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten()?.parse().ok())
            .collect();
        for id in ids {
            purged.push(in_transaction(c, id, Item::purge_plan).await?);
        }
    }
    for db in super::database_run::list(c).await? {
        if db.0.expired {
            purged.push(super::database_run::purge(c, db).await?);
        }
    }
    Ok(purged)
}
