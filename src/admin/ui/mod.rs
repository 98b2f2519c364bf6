//! The approver web page at `/ui`: sign-in with the approver token through a login
//! form, the page (HTML, CSS and JavaScript shipped inside the binary), and the JSON
//! it polls and posts to. Approving goes through the hold queue, so the API's rule
//! holds here too: nobody approves their own statement.

mod session;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::AdminState;

const PAGE: &str = include_str!("page.html");
const LOGIN: &str = include_str!("login.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// The header the page's script sends its CSRF token in.
const CSRF_HEADER: &str = "x-csrf-token";

/// A denial's reason is cut to this many characters.
const MAX_REASON: usize = 500;

/// The page's routes, merged into the admin router.
pub fn router() -> Router<AdminState> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(style))
        .route("/ui/api/holds", get(holds))
        .route("/ui/api/holds/{id}/approve", post(approve))
        .route("/ui/api/holds/{id}/deny", post(deny))
        .route("/ui/api/plans", post(approve_plan))
        .route("/ui/api/plans/{id}/revoke", post(revoke_plan))
        .route("/ui/api/trash", get(trash_list))
        .route("/ui/api/trash/{id}/restore", post(trash_restore))
        .route("/ui/api/trash/{id}/purge", post(trash_purge))
}

/// A request that carries a valid session cookie.
struct SignedIn {
    approver: String,
    cookie: String,
    token: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl AdminState {
    /// The bearer token of the approver called `name`, if they can sign in.
    fn token_of(&self, name: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(t, _)| t.as_str())
    }

    /// The approver a presented token belongs to (compared in constant time).
    fn approver_for_token(&self, token: &str) -> Option<(String, String)> {
        let mut found = None;
        for (t, name) in self.tokens.iter() {
            if crate::sign::constant_time_eq(t.as_bytes(), token.as_bytes()) {
                found = Some((name.clone(), t.clone()));
            }
        }
        found
    }

    fn signed_in(&self, headers: &HeaderMap) -> Option<SignedIn> {
        let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
        let value = session::cookie_from_header(cookies)?;
        let approver = session::claimed_approver(value)?;
        let token = self.token_of(&approver)?;
        if !session::verify(value, &approver, token, now()) {
            return None;
        }
        Some(SignedIn {
            approver,
            cookie: value.to_string(),
            token: token.to_string(),
        })
    }
}

/// Whether the cookie gets the Secure flag: the admin listener serves HTTPS, or a
/// TLS-terminating proxy in front says the page was reached over TLS.
fn secure(st: &AdminState, headers: &HeaderMap) -> bool {
    st.tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Refuses POSTs that a browser says come from another site. SameSite=Strict already
/// keeps the cookie off them; this also covers the login form (no cookie yet).
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
                return false;
            };
            let origin = origin.to_str().unwrap_or("");
            origin == format!("http://{host}") || origin == format!("https://{host}")
        }
    }
}

/// Headers every page response carries: nothing from other hosts, no framing, no
/// caching, no referrer to other sites. (Not `no-referrer`: with it, browsers send
/// `Origin: null` on the page's own form posts, which the same-origin check refuses.)
fn hardened(mut r: Response) -> Response {
    let h = r.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (k, v) in fixed {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn html(code: StatusCode, body: String) -> Response {
    hardened(
        (
            code,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn login_page(code: StatusCode, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    html(code, LOGIN.replace("{{ERROR}}", &error))
}

async fn page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    match st.signed_in(&headers) {
        None => login_page(StatusCode::OK, None),
        Some(s) => {
            let csrf = session::csrf_token(&s.cookie, &s.token);
            let body = PAGE
                .replace("{{APPROVER}}", &escape(&s.approver))
                .replace("{{CSRF}}", &escape(&csrf));
            html(StatusCode::OK, body)
        }
    }
}

fn forbidden(why: &str) -> Response {
    hardened((StatusCode::FORBIDDEN, Json(json!({"error": why}))).into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(st): State<AdminState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return forbidden("cross-site request refused");
    }
    let token = form.map(|f| f.0.token).unwrap_or_default();
    let Some((approver, token)) = st.approver_for_token(token.trim()) else {
        warn!("approver page: sign-in with an unknown token");
        return login_page(StatusCode::UNAUTHORIZED, Some("Unknown approver token."));
    };
    let value = session::issue(&approver, &token, now() + session::SESSION_SECONDS);
    info!(%approver, "approver page: signed in");
    let cookie = session::set_cookie(&value, session::SESSION_SECONDS, secure(&st, &headers));
    hardened(
        (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/ui".to_string()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response(),
    )
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(st): State<AdminState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return forbidden("cross-site request refused");
    }
    // Signing out of a session that is gone already is fine; signing someone else out
    // needs their CSRF token.
    if let Some(s) = st.signed_in(&headers) {
        let presented = form.map(|f| f.0.csrf).unwrap_or_default();
        if !session::csrf_ok(&presented, &s.cookie, &s.token) {
            return forbidden("missing or wrong CSRF token");
        }
    }
    hardened(
        (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/ui".to_string()),
                (
                    header::SET_COOKIE,
                    session::clear_cookie(secure(&st, &headers)),
                ),
            ],
        )
            .into_response(),
    )
}

async fn script() -> Response {
    hardened(
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            SCRIPT,
        )
            .into_response(),
    )
}

async fn style() -> Response {
    hardened(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response())
}

fn signed_out() -> Response {
    hardened(
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "not signed in"})),
        )
            .into_response(),
    )
}

async fn holds(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    let Some(s) = st.signed_in(&headers) else {
        return signed_out();
    };
    let pending = match st.shared.holds.list().await {
        Ok(p) => p,
        Err(e) => return hardened(super::hold_error(e)),
    };
    let recent = match st.shared.holds.decided().await {
        Ok(r) => r,
        Err(e) => return hardened(super::hold_error(e)),
    };
    let plans = match st.shared.holds.plans().await {
        Ok(p) => p,
        Err(e) => return hardened(super::hold_error(e)),
    };
    hardened(
        Json(json!({
            "approver": s.approver,
            "pending": pending,
            "recent": recent,
            "plans": plans,
            "now": now(),
        }))
        .into_response(),
    )
}

/// The session of a state-changing request: signed in, same origin, right CSRF token.
fn authorised(st: &AdminState, headers: &HeaderMap) -> Result<SignedIn, Box<Response>> {
    let s = st
        .signed_in(headers)
        .ok_or_else(|| Box::new(signed_out()))?;
    if !same_origin(headers) {
        return Err(Box::new(forbidden("cross-site request refused")));
    }
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !session::csrf_ok(presented, &s.cookie, &s.token) {
        return Err(Box::new(forbidden("missing or wrong CSRF token")));
    }
    Ok(s)
}

async fn approve(
    State(st): State<AdminState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let s = match authorised(&st, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match st.shared.holds.approve(id, &s.approver).await {
        Ok(h) => {
            info!(hold = id, approver = %s.approver, user = %h.user, target = %h.target, via = "ui", "held statement approved");
            hardened(
                Json(json!({"id": id, "status": "approved", "approver": s.approver}))
                    .into_response(),
            )
        }
        Err(e) => hardened(super::hold_error(e)),
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
    body: Result<Json<DenyBody>, JsonRejection>,
) -> Response {
    let s = match authorised(&st, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    // No body (or not JSON) is a denial without a reason.
    let reason = body
        .ok()
        .and_then(|b| b.0.reason)
        .map(|r| r.trim().chars().take(MAX_REASON).collect::<String>())
        .filter(|r| !r.is_empty());
    match st.shared.holds.deny(id, &s.approver, reason.clone()).await {
        Ok(h) => {
            info!(hold = id, approver = %s.approver, user = %h.user, target = %h.target, via = "ui", "held statement denied");
            hardened(
                Json(
                    json!({"id": id, "status": "denied", "approver": s.approver, "reason": reason}),
                )
                .into_response(),
            )
        }
        Err(e) => hardened(super::hold_error(e)),
    }
}

/// Approves a plan pasted or uploaded on the page: the API's rules (the same
/// handler), behind the page's sign-in, same-origin and CSRF checks.
async fn approve_plan(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let s = match authorised(&st, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    hardened(super::approve_plan_as(&st, s.approver, &body, "ui").await)
}

/// Revokes a plan from the page (sign-in, same origin, CSRF).
async fn revoke_plan(
    State(st): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let s = match authorised(&st, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    hardened(super::revoke_plan_as(&st, &id, &s.approver, "ui").await)
}

/// The trash of the `[trash]` target, for the page's Trash section.
async fn trash_list(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if st.signed_in(&headers).is_none() {
        return signed_out();
    }
    hardened(super::trash::list_all(&st).await)
}

/// Restores a trash item from the page (sign-in, same origin, CSRF); the body may
/// carry a new name (`{"as": "NAME"}`).
async fn trash_restore(
    State(st): State<AdminState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let s = match authorised(&st, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let as_name = match super::trash::restore_name(&body) {
        Ok(n) => n,
        Err(r) => return hardened(*r),
    };
    hardened(super::trash::restore_as(&st, &s.approver, id, as_name, "ui").await)
}

/// Purges a trash item from the page (sign-in, same origin, CSRF).
async fn trash_purge(
    State(st): State<AdminState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let s = match authorised(&st, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    hardened(super::trash::purge_as(&st, &s.approver, id, "ui").await)
}

#[cfg(test)]
mod tests;
