//! The admin HTTP API: health, readiness, held statements (list, approve, deny),
//! policy reload and the trash (`trash.rs`). Mutating endpoints are POST and need an approver's bearer token.

pub mod client;
pub mod https;
mod trash;
mod ui;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use crate::hold::HoldError;
use crate::shared::Shared;

/// State the admin endpoints share.
#[derive(Clone)]
pub struct AdminState {
    pub shared: Arc<Shared>,
    /// Bearer token → approver name.
    tokens: Arc<HashMap<String, String>>,
    /// The admin listener serves HTTPS (`[admin] tls`).
    tls: bool,
}

impl AdminState {
    /// Resolves approver tokens from their environment variables. An approver whose
    /// variable is unset or empty cannot log in (logged).
    pub fn new(shared: Arc<Shared>) -> Self {
        let mut tokens = HashMap::new();
        if let Some(admin) = &shared.config.admin {
            for (name, var) in &admin.approvers {
                match std::env::var(var) {
                    Ok(t) if !t.is_empty() => {
                        tokens.insert(t, name.clone());
                    }
                    _ => {
                        warn!(approver = %name, variable = %var, "approver token variable is not set; this approver cannot log in")
                    }
                }
            }
        }
        let tls = shared
            .config
            .admin
            .as_ref()
            .is_some_and(|a| a.tls.is_some());
        AdminState {
            shared,
            tokens: Arc::new(tokens),
            tls,
        }
    }

    /// The approver a request's bearer token belongs to.
    fn approver(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = value.strip_prefix("Bearer ")?.trim();
        // Compare every configured token in full so timing does not reveal a prefix.
        let mut found = None;
        for (t, name) in self.tokens.iter() {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) {
                found = Some(name.clone());
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin router; tested without a socket.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/holds", get(list_holds))
        .route("/holds/recent", get(recent_holds))
        .route("/holds/{id}", get(show_hold))
        .route("/plans", get(list_plans).post(approve_plan))
        .route("/plans/{id}/revoke", post(revoke_plan))
        .route("/holds/{id}/approve", post(approve))
        .route("/holds/{id}/deny", post(deny))
        .route("/reload", post(reload))
        .route("/trash", get(trash::list))
        .route("/trash/{id}/restore", post(trash::restore))
        .route("/trash/{id}/purge", post(trash::purge))
        .merge(ui::router())
        .with_state(state)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({"error": "missing or unknown bearer token"})),
    )
        .into_response()
}

async fn metrics(State(st): State<AdminState>) -> Response {
    let s = &st.shared;
    let text = s.metrics.render(
        s.classifier.cache_stats(),
        s.audit.write_errors(),
        s.audit.healthy(),
        s.holds.len(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn readyz(State(st): State<AdminState>) -> Response {
    let mut targets = serde_json::Map::new();
    let mut all_up = true;
    for t in &st.shared.config.targets {
        let addr = format!("{}:{}", t.host, t.port);
        let up = matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(&addr)
            )
            .await,
            Ok(Ok(_))
        );
        all_up &= up;
        targets.insert(t.name.clone(), json!(up));
    }
    let audit_ok = st.shared.audit.healthy();
    let all_up = all_up && audit_ok;
    // Reported, but not a reason to take the replica out of service: allowed
    // statements do not need the control database, and every replica shares it.
    let control = match st.shared.holds.store().health() {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let body = json!({
        "ready": all_up,
        "audit": if audit_ok { json!("ok") } else { json!(st.shared.audit.last_error()) },
        "control": control,
        "policy": st.shared.policy().origin(),
        "targets": targets,
    });
    let code = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn list_holds(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if st.approver(&headers).is_none() {
        return unauthorized();
    }
    match st.shared.holds.list().await {
        Ok(holds) => Json(holds).into_response(),
        Err(e) => hold_error(e),
    }
}

/// Recently decided holds, newest first (with a control database: of every
/// replica, with who decided, when, and why).
async fn recent_holds(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if st.approver(&headers).is_none() {
        return unauthorized();
    }
    match st.shared.holds.decided().await {
        Ok(list) => Json(list).into_response(),
        Err(e) => hold_error(e),
    }
}

/// One hold, pending or decided (with a control database: of any replica).
async fn show_hold(
    State(st): State<AdminState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if st.approver(&headers).is_none() {
        return unauthorized();
    }
    match st.shared.holds.record(id).await {
        Ok(rec) => Json(rec).into_response(),
        Err(e) => hold_error(e),
    }
}

/// Approved plans whose window has not ended.
async fn list_plans(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if st.approver(&headers).is_none() {
        return unauthorized();
    }
    match st.shared.holds.plans().await {
        Ok(p) => Json(p).into_response(),
        Err(e) => hold_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanApproval {
    plan: crate::hold::Plan,
    /// How long from now the plan can be used ("2h").
    window: String,
    /// Database user (default: the plan's; "*": any).
    user: Option<String>,
    /// application_name (default: the plan's, if any; "*": any).
    application: Option<String>,
}

/// The longest window a plan can be approved for.
const MAX_PLAN_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// Approves a plan for a target, user and/or application and a time window.
async fn approve_plan(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(approver) = st.approver(&headers) else {
        return unauthorized();
    };
    approve_plan_as(&st, approver, &body, "api").await
}

/// Approves the plan in `body` (a `PlanApproval`) as `approver`, for the API and
/// the approver page alike: nobody approves a plan for their own user or for any user.
async fn approve_plan_as(st: &AdminState, approver: String, body: &[u8], via: &str) -> Response {
    let bad = |m: String| (StatusCode::BAD_REQUEST, Json(json!({"error": m}))).into_response();
    let a: PlanApproval = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => return bad(format!("invalid plan approval: {e}")),
    };
    if a.plan.version != crate::hold::plans::PLAN_VERSION {
        return bad(format!("unknown plan version {}", a.plan.version));
    }
    if st.shared.config.target(&a.plan.target).is_none() {
        return bad(format!(
            "no target {:?} in this proxy's config",
            a.plan.target
        ));
    }
    let window = match crate::config::units::duration(&a.window) {
        Ok(w) if !w.is_zero() && w <= MAX_PLAN_WINDOW => w,
        Ok(_) => return bad("window must be more than 0 and at most 7 days".into()),
        Err(e) => return bad(format!("window: {e}")),
    };
    let scope = |given: Option<String>, planned: &str| match given.as_deref() {
        Some("*") => None,
        Some(v) => Some(v.to_string()),
        None if planned.is_empty() => None,
        None => Some(planned.to_string()),
    };
    let user = scope(a.user, &a.plan.user);
    let application = scope(a.application, &a.plan.application);
    // The same rule as for holds: nobody approves their own statements.
    if user.as_deref().is_none_or(|u| u == approver) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": format!("approver {approver} cannot approve a plan for their own user (or for any user)")})),
        )
            .into_response();
    }
    let releases = a.plan.releases();
    if releases.is_empty() {
        return bad("the plan has no statement the policy would hold: nothing to approve".into());
    }
    let now = jiff::Timestamp::now().as_second();
    let plan = crate::hold::ApprovedPlan {
        id: a.plan.id(),
        target: a.plan.target.clone(),
        user,
        application,
        not_before: now,
        not_after: now + window.as_secs() as i64,
        approver: approver.clone(),
        statements: releases.into_iter().map(|(f, n)| (f, (n, 0))).collect(),
    };
    match st.shared.holds.approve_plan(plan.clone()).await {
        Ok(()) => {
            info!(plan = %plan.id, %approver, target = %plan.target, user = ?plan.user, via, "plan approved");
            Json(json!({
                "id": plan.id,
                "status": "approved",
                "approver": approver,
                "statements": plan.statements.len(),
                "not_after": plan.not_after,
            }))
            .into_response()
        }
        Err(e) => hold_error(e),
    }
}

/// Ends an approved plan's window now.
async fn revoke_plan(
    State(st): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(approver) = st.approver(&headers) else {
        return unauthorized();
    };
    revoke_plan_as(&st, &id, &approver, "api").await
}

/// Revokes plan `id` as `approver` (the API and the approver page).
async fn revoke_plan_as(st: &AdminState, id: &str, approver: &str, via: &str) -> Response {
    match st.shared.holds.revoke_plan(id, approver).await {
        Ok(true) => {
            info!(plan = %id, %approver, via, "plan revoked");
            Json(json!({"id": id, "status": "revoked", "approver": approver})).into_response()
        }
        Ok(false) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no approved plan {id} is in force")})),
        )
            .into_response(),
        Err(e) => hold_error(e),
    }
}

fn hold_error(e: HoldError) -> Response {
    let code = match e {
        HoldError::NotFound(_) => StatusCode::NOT_FOUND,
        HoldError::OwnStatement { .. } => StatusCode::FORBIDDEN,
        HoldError::Decided { .. } => StatusCode::CONFLICT,
        HoldError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(json!({"error": e.to_string()}))).into_response()
}

async fn approve(
    State(st): State<AdminState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let Some(approver) = st.approver(&headers) else {
        return unauthorized();
    };
    match st.shared.holds.approve(id, &approver).await {
        Ok(h) => {
            info!(hold = id, %approver, user = %h.user, target = %h.target, "held statement approved");
            Json(json!({"id": id, "status": "approved", "approver": approver})).into_response()
        }
        Err(e) => hold_error(e),
    }
}

#[derive(Deserialize, Default)]
struct DenyBody {
    reason: Option<String>,
}

async fn deny(
    State(st): State<AdminState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(approver) = st.approver(&headers) else {
        return unauthorized();
    };
    let reason = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<DenyBody>(&body) {
            Ok(b) => b.reason,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": format!("invalid JSON body: {e}")})),
                )
                    .into_response()
            }
        }
    };
    match st.shared.holds.deny(id, &approver, reason.clone()).await {
        Ok(h) => {
            info!(hold = id, %approver, user = %h.user, target = %h.target, "held statement denied");
            Json(json!({"id": id, "status": "denied", "approver": approver, "reason": reason}))
                .into_response()
        }
        Err(e) => hold_error(e),
    }
}

async fn reload(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if st.approver(&headers).is_none() {
        return unauthorized();
    }
    match crate::shared::reload_policy(&st.shared, "api") {
        Ok(sha) => Json(json!({"status": "reloaded", "sha256": sha})).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"status": "rejected", "error": e.to_string()})),
        )
            .into_response(),
    }
}
