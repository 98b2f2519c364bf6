//! The trash on the admin API (approver token): `GET /trash` lists the items of the
//! `[trash]` target, `POST /trash/{id}/restore` (optional body `{"as": "NAME"}`)
//! puts one back, `POST /trash/{id}/purge` really drops it. Each runs with the
//! `[trash]` credential; restore and purge write an audit event naming the approver.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tracing::info;

use super::{unauthorized, AdminState};
use crate::trash::run::{self, TrashError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    #[serde(rename = "as")]
    as_name: Option<String>,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn trash_error(e: TrashError) -> Response {
    let status = match &e {
        TrashError::NotFound(_) => StatusCode::NOT_FOUND,
        TrashError::Taken(_) => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    error(status, e.to_string())
}

/// The approver and a connection to the `[trash]` target, or the response that
/// refuses the request.
async fn open(
    st: &AdminState,
    headers: &HeaderMap,
) -> Result<(String, String, tokio_postgres::Client), Response> {
    let approver = st.approver(headers).ok_or_else(unauthorized)?;
    let Some(cfg) = st.shared.config.trash.as_ref() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "no [trash] section in the proxy's configuration".into(),
        ));
    };
    let c = crate::trash::connect::connect(
        &cfg.url,
        cfg.password.as_ref(),
        cfg.tls_mode,
        cfg.tls_ca.as_deref(),
    )
    .await
    .map_err(|e| error(StatusCode::BAD_GATEWAY, format!("the trash target: {e}")))?;
    Ok((approver, cfg.target.clone(), c))
}

pub(super) async fn list(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    let (_, target, c) = match open(&st, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match run::list(&c).await {
        Ok(items) => Json(json!({ "target": target, "items": items })).into_response(),
        Err(e) => trash_error(e),
    }
}

pub(super) async fn restore(
    State(st): State<AdminState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let as_name = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<RestoreBody>(&body) {
            Ok(b) => b.as_name,
            Err(e) => {
                return error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"));
            }
        }
    };
    let (approver, target, c) = match open(&st, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match run::restore(&c, id, as_name.as_deref()).await {
        Ok(item) => {
            let name = match (&item.original_schema, &as_name) {
                (Some(s), Some(n)) => format!("{s}.{n}"),
                _ => item.original(),
            };
            info!(item = id, %approver, table = %name, "trash item restored");
            st.shared
                .audit
                .record(crate::audit::Event::Restore(crate::audit::RestoreEvent {
                    target,
                    item: id,
                    original: item.original(),
                    restored_as: name.clone(),
                    approver: approver.clone(),
                    cli: None,
                }));
            Json(json!({"id": id, "status": "restored", "as": name, "approver": approver}))
                .into_response()
        }
        Err(e) => trash_error(e),
    }
}

pub(super) async fn purge(
    State(st): State<AdminState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let (approver, target, c) = match open(&st, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match run::purge(&c, id).await {
        Ok(item) => {
            info!(item = id, %approver, table = %item.original(), "trash item purged");
            st.shared
                .audit
                .record(crate::audit::Event::Purge(crate::audit::PurgeEvent {
                    target,
                    item: id,
                    original: item.original(),
                    size_bytes: item.size_bytes,
                    reason: "requested".to_string(),
                    approver: Some(approver.clone()),
                    cli: None,
                }));
            Json(json!({"id": id, "status": "purged", "approver": approver})).into_response()
        }
        Err(e) => trash_error(e),
    }
}
