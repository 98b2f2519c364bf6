//! The trash on the admin API (approver token) and the approver page: `GET /trash`
//! lists the items of the `[trash]` target, `POST /trash/{id}/restore` (optional body
//! `{"as": "NAME"}`) puts one back, `POST /trash/{id}/purge` really drops it. Each
//! runs with the `[trash]` credential; restore and purge write an audit event naming
//! the approver. The page's routes (src/admin/ui) call the `*_as` functions after
//! their own sign-in and CSRF checks.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;

use super::{unauthorized, AdminState};
use crate::trash::registry::Item;
use crate::trash::run::{self, TrashError};

/// Rows are counted exactly up to this many per item; more shows as "more than".
pub(super) const ROW_CAP: i64 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    #[serde(rename = "as")]
    as_name: Option<String>,
}

/// A listed item: the registry's generic fields, and its rows counted now.
#[derive(Serialize)]
pub(super) struct Listed {
    #[serde(flatten)]
    item: Item,
    /// `schema.name` it had.
    original: String,
    /// Rows in the item's tables (up to [`ROW_CAP`] each), when they could be counted.
    rows: Option<i64>,
    /// Whether `rows` reached the cap of at least one table.
    rows_capped: bool,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The message an approver sees for each way a restore or purge can fail.
pub(super) fn trash_message(e: &TrashError) -> (StatusCode, String) {
    match e {
        TrashError::NotFound(id) => (
            StatusCode::NOT_FOUND,
            format!("trash item {id} is not in the trash: it was already restored or purged"),
        ),
        TrashError::Taken(what) => (
            StatusCode::CONFLICT,
            format!("cannot restore: {what}; restore it under another name"),
        ),
        TrashError::NotEmpty(what) => (StatusCode::CONFLICT, format!("cannot restore: {what}")),
        TrashError::Failed(m) | TrashError::Unsupported(m) | TrashError::NotFaithful(m) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the target refused: {m}; nothing was changed"),
        ),
        TrashError::Refused(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the target refused: {e}; nothing was changed"),
        ),
    }
}

fn trash_error(e: TrashError) -> Response {
    let (status, message) = trash_message(&e);
    error(status, message)
}

/// A connection to the `[trash]` target and its name, or the response that refuses
/// the request (`None` inside: the proxy has no `[trash]` section).
async fn connect(st: &AdminState) -> Result<Option<(String, tokio_postgres::Client)>, Response> {
    let Some(cfg) = st.shared.config.trash.as_ref() else {
        return Ok(None);
    };
    let c = crate::trash::connect::connect(
        &cfg.url,
        cfg.password.as_ref(),
        cfg.tls_mode,
        cfg.tls_ca.as_deref(),
    )
    .await
    .map_err(|e| {
        error(
            StatusCode::BAD_GATEWAY,
            format!("cannot reach the trash target {}: {e}", cfg.target),
        )
    })?;
    Ok(Some((cfg.target.clone(), c)))
}

fn not_configured() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no [trash] section in the proxy's configuration".into(),
    )
}

/// One query whose single row is the rows of `item`'s tables, each counted up to
/// [`ROW_CAP`] (`ONLY`, so a partitioned table's rows are counted once, in its
/// partitions), then whether any count reached the cap. `None` when the item has
/// no tables.
pub(super) fn rows_sql(item: &Item) -> Option<String> {
    use crate::catalog::quote::ident;
    let counts: Vec<String> = item
        .moved
        .iter()
        .filter(|m| matches!(m.kind.as_str(), "r" | "m"))
        .map(|m| {
            format!(
                "(SELECT pg_catalog.count(*) FROM (SELECT 1 FROM ONLY {}.{} LIMIT {ROW_CAP}) s)",
                ident(&item.trash_schema),
                // A TRUNCATE item's rows are in a copy of their own.
                ident(m.rows.as_ref().map_or(m.name.as_str(), |r| r.copy.as_str()))
            )
        })
        .collect();
    if counts.is_empty() {
        return None;
    }
    Some(format!(
        "SELECT ({})::text, (GREATEST({}) >= {ROW_CAP})::text",
        counts.join(" + "),
        counts.join(", ")
    ))
}

/// Counts the rows of each item with short timeouts (a lock on a trashed table
/// must not stall the page); an item whose count fails shows no rows.
async fn with_rows(c: &tokio_postgres::Client, items: Vec<Item>) -> Vec<Listed> {
    let _ = c
        .batch_execute("SET statement_timeout = '2s'; SET lock_timeout = '200ms'")
        .await;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let (mut rows, mut rows_capped) = (None, false);
        if let Some(sql) = rows_sql(&item) {
            if let Ok(r) = run::rows(c, &sql).await {
                if let Some(row) = r.first() {
                    rows = row.first().cloned().flatten().and_then(|v| v.parse().ok());
                    rows_capped = row.get(1).cloned().flatten().as_deref() == Some("true");
                }
            }
        }
        out.push(Listed {
            original: item.original(),
            item,
            rows,
            rows_capped,
        });
    }
    out
}

/// The items of every trash target this proxy reaches: `{"configured": false}`
/// without a `[trash]` section, else `{"configured": true, "targets": [{"target",
/// "items"}]}`.
pub(super) async fn list_all(st: &AdminState) -> Response {
    let (target, c) = match connect(st).await {
        Ok(Some(v)) => v,
        Ok(None) => return Json(json!({"configured": false, "targets": []})).into_response(),
        Err(r) => return r,
    };
    match run::list(&c).await {
        Ok(items) => Json(json!({
            "configured": true,
            "targets": [{"target": target, "items": with_rows(&c, items).await}],
        }))
        .into_response(),
        Err(e) => trash_error(e),
    }
}

pub(super) async fn list(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if st.approver(&headers).is_none() {
        return unauthorized();
    }
    let (target, c) = match connect(&st).await {
        Ok(Some(v)) => v,
        Ok(None) => return not_configured(),
        Err(r) => return r,
    };
    match run::list(&c).await {
        Ok(items) => {
            Json(json!({ "target": target, "items": with_rows(&c, items).await })).into_response()
        }
        Err(e) => trash_error(e),
    }
}

/// The new name in a restore's body (none when the body is empty or the name
/// blank), or the 400 response for a body that is not `{"as": NAME}`.
pub(super) fn restore_name(body: &[u8]) -> Result<Option<String>, Box<Response>> {
    if body.is_empty() {
        return Ok(None);
    }
    match serde_json::from_slice::<RestoreBody>(body) {
        Ok(b) => Ok(b
            .as_name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())),
        Err(e) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {e}"),
        ))),
    }
}

/// Restores item `id` (under `as_name`) as `approver`, audited.
pub(super) async fn restore_as(
    st: &AdminState,
    approver: &str,
    id: i64,
    as_name: Option<String>,
    via: &str,
) -> Response {
    let (target, c) = match connect(st).await {
        Ok(Some(v)) => v,
        Ok(None) => return not_configured(),
        Err(r) => return r,
    };
    match run::restore(&c, id, as_name.as_deref()).await {
        Ok(item) => {
            let name = match (&item.original_schema, &as_name) {
                (Some(s), Some(n)) => format!("{s}.{n}"),
                (None, Some(n)) => n.clone(),
                _ => item.original(),
            };
            info!(item = id, %approver, table = %name, via, "trash item restored");
            st.shared
                .audit
                .record(crate::audit::Event::Restore(crate::audit::RestoreEvent {
                    target,
                    item: id,
                    original: item.original(),
                    restored_as: name.clone(),
                    approver: approver.to_string(),
                    cli: None,
                }));
            Json(json!({"id": id, "status": "restored", "as": name, "approver": approver}))
                .into_response()
        }
        Err(e) => trash_error(e),
    }
}

/// Purges item `id` as `approver`, audited.
pub(super) async fn purge_as(st: &AdminState, approver: &str, id: i64, via: &str) -> Response {
    let (target, c) = match connect(st).await {
        Ok(Some(v)) => v,
        Ok(None) => return not_configured(),
        Err(r) => return r,
    };
    match run::purge(&c, id).await {
        Ok(item) => {
            info!(item = id, %approver, table = %item.original(), via, "trash item purged");
            st.shared
                .audit
                .record(crate::audit::Event::Purge(crate::audit::PurgeEvent {
                    target,
                    item: id,
                    original: item.original(),
                    size_bytes: item.size_bytes,
                    reason: "requested".to_string(),
                    approver: Some(approver.to_string()),
                    cli: None,
                }));
            Json(json!({"id": id, "status": "purged", "approver": approver})).into_response()
        }
        Err(e) => trash_error(e),
    }
}

pub(super) async fn restore(
    State(st): State<AdminState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(approver) = st.approver(&headers) else {
        return unauthorized();
    };
    let as_name = match restore_name(&body) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    restore_as(&st, &approver, id, as_name, "api").await
}

pub(super) async fn purge(
    State(st): State<AdminState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let Some(approver) = st.approver(&headers) else {
        return unauthorized();
    };
    purge_as(&st, &approver, id, "api").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trash::plan::Moved;

    fn item(moved: &[(&str, &str, &str)]) -> Item {
        Item {
            id: 7,
            kind: "table".into(),
            original_schema: Some("public".into()),
            original_name: "orders".into(),
            trash_schema: "pgwarden_trash_7".into(),
            trashed_at: "2026-01-01T00:00:00Z".into(),
            trashed_by: "app".into(),
            statement: "DROP TABLE orders CASCADE".into(),
            moved: moved
                .iter()
                .map(|(role, kind, name)| Moved {
                    role: role.to_string(),
                    kind: kind.to_string(),
                    schema: "public".into(),
                    name: name.to_string(),
                    rows: None,
                })
                .collect(),
            removed: Vec::new(),
            size_bytes: 8192,
            expires_at: None,
            expired: false,
        }
    }

    #[test]
    fn rows_are_counted_in_each_table_of_the_item_once() {
        let it = item(&[
            ("table", "p", "orders"),
            ("partition", "r", "orders_2026"),
            ("partition", "r", "Orders \"x\""),
            ("view", "v", "orders_view"),
            ("view", "m", "orders_mv"),
        ]);
        let sql = rows_sql(&it).expect("tables");
        let one = |name: &str| {
            format!(
                "(SELECT pg_catalog.count(*) FROM (SELECT 1 FROM ONLY \"pgwarden_trash_7\".{name} LIMIT 10000) s)"
            )
        };
        let counts = [
            one("\"orders_2026\""),
            one("\"Orders \"\"x\"\"\""),
            one("\"orders_mv\""),
        ];
        assert_eq!(
            sql,
            format!(
                "SELECT ({})::text, (GREATEST({}) >= 10000)::text",
                counts.join(" + "),
                counts.join(", ")
            )
        );
        assert_eq!(rows_sql(&item(&[("view", "v", "v")])), None);
    }

    #[test]
    fn each_failure_has_a_message_for_the_approver() {
        let cases = [
            (
                TrashError::NotFound(12),
                404,
                "trash item 12 is not in the trash: it was already restored or purged",
            ),
            (
                TrashError::Taken("public.orders already exists".into()),
                409,
                "cannot restore: public.orders already exists; restore it under another name",
            ),
            (
                TrashError::Failed("23503: insert or update violates foreign key".into()),
                422,
                "the target refused: 23503: insert or update violates foreign key; nothing was changed",
            ),
        ];
        for (e, status, text) in cases {
            let (s, m) = trash_message(&e);
            assert_eq!((s.as_u16(), m.as_str()), (status, text));
        }
    }

    #[test]
    fn a_blank_new_name_is_no_new_name() {
        let name = |b: &str| restore_name(b.as_bytes()).ok().flatten();
        assert_eq!(name(""), None);
        assert_eq!(name(r#"{"as": "  "}"#), None);
        assert_eq!(name(r#"{"as": null}"#), None);
        assert_eq!(name(r#"{"as": " kept "}"#).as_deref(), Some("kept"));
        assert!(restore_name(br#"{"other": 1}"#).is_err());
    }
}
