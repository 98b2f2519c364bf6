//! Listing, restoring and purging trashed databases on a tokio-postgres
//! connection (to any database of the cluster: the record is in the shared
//! catalog, see [`super::database`]). [`super::run`] calls these alongside the
//! registry's items; the SQL comes from the pure module.

use tokio_postgres::Client;

use super::database::{self, Record};
use super::registry::{self, Item};
use super::run::{rows, TrashError};

fn failed(e: tokio_postgres::Error) -> TrashError {
    TrashError::Failed(match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    })
}

/// Every trashed database of the cluster, oldest OID first.
pub async fn list(c: &Client) -> Result<Vec<(Item, Record)>, TrashError> {
    let r = rows(c, &database::list_sql()).await.map_err(failed)?;
    Ok(r.iter()
        .filter_map(|row| {
            let refs: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
            database::read_item(&refs)
        })
        .collect())
}

/// The trashed database with id `id`, if there is one. An id that is also a
/// registry item's in the connection's database is refused as ambiguous (the
/// registry counts from 1, databases' OIDs from 16384: both only after that many
/// items).
pub async fn find(c: &Client, id: i64) -> Result<Option<(Item, Record)>, TrashError> {
    let Some(found) = list(c).await?.into_iter().find(|(i, _)| i.id == id) else {
        return Ok(None);
    };
    let exists = rows(c, registry::EXISTS_SQL).await.map_err(failed)?;
    if exists
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .as_deref()
        == Some("true")
    {
        let clash = rows(
            c,
            &format!(
                "SELECT 1 FROM {}.registry WHERE id = {id}",
                super::ident(super::REGISTRY_SCHEMA)
            ),
        )
        .await
        .map_err(failed)?;
        if !clash.is_empty() {
            return Err(TrashError::Failed(format!(
                "trash item {id} is ambiguous: both a trashed database and an item of this \
                 database's registry; restore or purge the database from another database"
            )));
        }
    }
    Ok(Some(found))
}

/// Renames the database back (or to `as_name`) and opens it again, in one
/// transaction. Refuses when a database has the name.
pub async fn restore(
    c: &Client,
    (item, rec): (Item, Record),
    as_name: Option<&str>,
) -> Result<Item, TrashError> {
    let name = as_name.unwrap_or(&rec.original_name).to_string();
    let plan = database::restore_sql(&item, &rec, &name).map_err(TrashError::Failed)?;
    c.batch_execute("BEGIN").await.map_err(failed)?;
    let result = async {
        let taken = rows(c, &database::taken_sql(&name)).await.map_err(failed)?;
        if !taken.is_empty() {
            return Err(TrashError::Taken(format!("database {name} already exists")));
        }
        for s in &plan {
            c.batch_execute(s).await.map_err(failed)?;
        }
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    c.batch_execute(end).await.map_err(failed)?;
    result.map(|()| item)
}

/// Really drops the database (outside a transaction: `DROP DATABASE` cannot run
/// in one); its record goes with it.
pub async fn purge(c: &Client, (item, _): (Item, Record)) -> Result<Item, TrashError> {
    c.batch_execute(&database::purge_sql(&item))
        .await
        .map_err(failed)?;
    Ok(item)
}
