//! The approver page's handlers, without a socket: sign-in, cookie flags, CSRF and
//! same-origin checks, the own-statement rule, approve and deny, and the trash actions.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use crate::hold::{HoldInfo, Resolution};
use crate::shared::Shared;

use super::super::{router, AdminState};

const ALICE: &str = "alice-ui-test-token";
const BOB: &str = "bob-ui-test-token";

fn shared() -> Arc<Shared> {
    shared_with("")
}

/// `admin_extra` is appended to the `[admin]` section.
fn shared_with(admin_extra: &str) -> Arc<Shared> {
    std::env::set_var("PGWARDEN_UI_TEST_ALICE", ALICE);
    std::env::set_var("PGWARDEN_UI_TEST_BOB", BOB);
    let toml = r#"
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
approvers = { alice = { token_env = "PGWARDEN_UI_TEST_ALICE" }, bob = { token_env = "PGWARDEN_UI_TEST_BOB" } }
{admin_extra}

[targets.prod]
host = "127.0.0.1"
port = 1
environment = "production"
"#;
    let toml = toml.replace("{admin_extra}", admin_extra);
    let config = crate::config::Config::from_toml_str(&toml, "test.toml").unwrap();
    Arc::new(crate::shared::build(Arc::new(config)).unwrap())
}

fn hold_of(user: &str) -> HoldInfo {
    HoldInfo {
        id: 0,
        session: 1,
        user: user.into(),
        database: "app".into(),
        application: "psql".into(),
        client: "127.0.0.1:5555".into(),
        target: "prod".into(),
        sql: "DROP TABLE orders".into(),
        classes: vec!["drop.table".into()],
        rule: Some("drops".into()),
        ..HoldInfo::default()
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(shared: &Arc<Shared>, req: Request<Body>) -> Reply {
    let app = router(AdminState::new(Arc::clone(shared)));
    let r = app.oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path).header("host", "admin.test");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Body::empty()).unwrap()
}

fn login_request(token: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post("/ui/login")
        .header("host", "admin.test")
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Body::from(format!("token={token}"))).unwrap()
}

/// Signs in; returns the `name=value` cookie pair and the page's CSRF token.
async fn sign_in(shared: &Arc<Shared>, token: &str) -> (String, String) {
    let r = send(shared, login_request(token, &[])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    let pair = set.split(';').next().unwrap().to_string();
    let page = send(shared, get("/ui", Some(&pair))).await;
    let marker = "name=\"csrf-token\" content=\"";
    let start = page.body.find(marker).expect("csrf meta") + marker.len();
    let csrf = page.body[start..start + 64].to_string();
    (pair, csrf)
}

fn action(
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> Request<Body> {
    let mut b = Request::post(path)
        .header("host", "admin.test")
        .header("cookie", cookie)
        .header("content-type", "application/json");
    if let Some(t) = csrf {
        b = b.header("x-csrf-token", t);
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn without_a_session_the_page_is_the_login_form() {
    let s = shared();
    let r = send(&s, get("/ui", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r
        .body
        .contains("<form method=\"post\" action=\"/ui/login\""));
    assert!(r.body.contains("type=\"password\""));
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(r.headers["x-frame-options"], "DENY");
    // A token in the URL is never a sign-in.
    let r = send(&s, get(&format!("/ui?token={ALICE}"), None)).await;
    assert!(r.headers.get("set-cookie").is_none());
    assert!(r.body.contains("action=\"/ui/login\""));
    let r = send(&s, get("/ui/api/holds", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Assets are served to everyone (they hold nothing secret).
    assert_eq!(
        send(&s, get("/ui/app.js", None)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&s, get("/ui/app.css", None)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie() {
    let s = shared();
    let r = send(&s, login_request("wrong", &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("set-cookie").is_none());
    assert!(r.body.contains("Unknown approver token."));

    let r = send(&s, login_request(ALICE, &[])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/ui");
    let c = r.headers["set-cookie"].to_str().unwrap();
    assert!(c.starts_with("pgwarden_ui=v1."), "{c}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(c.contains(flag), "{flag} missing: {c}");
    }
    assert!(!c.contains("Secure"), "plain HTTP: {c}");
    assert!(!c.contains(ALICE), "the token itself is never the cookie");

    let r = send(&s, login_request(ALICE, &[("x-forwarded-proto", "https")])).await;
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .ends_with("; Secure"));

    // A login form posted from another site is refused.
    let r = send(
        &s,
        login_request(ALICE, &[("origin", "https://evil.example")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &s,
        login_request(ALICE, &[("sec-fetch-site", "cross-site")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let (cookie, _) = sign_in(&s, ALICE).await;
    let page = send(&s, get("/ui", Some(&cookie))).await;
    assert!(page.body.contains("signed in as <b>alice</b>"));
    let forged = cookie.replace("v1.", "v1.00");
    let page = send(&s, get("/ui", Some(&forged))).await;
    assert!(page.body.contains("action=\"/ui/login\""));
}

#[tokio::test]
async fn approving_needs_the_session_csrf_token_and_the_same_origin() {
    let s = shared();
    let (id, rx) = s.holds.submit(hold_of("carol"), Duration::from_secs(60));
    let (cookie, csrf) = sign_in(&s, ALICE).await;
    let (_, bob_csrf) = sign_in(&s, BOB).await;
    let path = format!("/ui/api/holds/{id}/approve");

    let listed = send(&s, get("/ui/api/holds", Some(&cookie))).await;
    let v: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(v["approver"], "alice");
    assert_eq!(v["pending"][0]["id"], id);
    assert_eq!(v["pending"][0]["sql"], "DROP TABLE orders");

    for (csrf, extra, why) in [
        (None, vec![], "no CSRF token"),
        (Some("0".repeat(64)), vec![], "a wrong CSRF token"),
        (Some(bob_csrf.clone()), vec![], "another session's token"),
        (
            Some(csrf.clone()),
            vec![("origin", "https://evil.example")],
            "another origin",
        ),
        (
            Some(csrf.clone()),
            vec![("sec-fetch-site", "same-site")],
            "a sibling site",
        ),
    ] {
        let r = send(&s, action(&path, &cookie, csrf.as_deref(), &extra, "")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{why}: {}", r.body);
        assert!(
            s.holds.get(id).is_some(),
            "{why}: the hold must stay pending"
        );
    }
    let r = send(
        &s,
        action(&path, "pgwarden_ui=v1.x.1.y", Some(&csrf), &[], ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = send(
        &s,
        action(
            &path,
            &cookie,
            Some(&csrf),
            &[("origin", "http://admin.test")],
            "",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        rx.await.unwrap(),
        Resolution::Approved {
            approver: "alice".into()
        }
    );
    let r = send(&s, action(&path, &cookie, Some(&csrf), &[], "")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "decided once");
}

#[tokio::test]
async fn nobody_approves_their_own_statement() {
    let s = shared();
    let (id, _rx) = s.holds.submit(hold_of("alice"), Duration::from_secs(60));
    let (cookie, csrf) = sign_in(&s, ALICE).await;
    let r = send(
        &s,
        action(
            &format!("/ui/api/holds/{id}/approve"),
            &cookie,
            Some(&csrf),
            &[],
            "",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.body.contains("cannot approve their own statement"),
        "{}",
        r.body
    );
    assert!(s.holds.get(id).is_some());
}

#[tokio::test]
async fn deny_with_a_reason_shows_in_recent_decisions() {
    let s = shared();
    let (id, rx) = s.holds.submit(hold_of("carol"), Duration::from_secs(60));
    let (cookie, csrf) = sign_in(&s, BOB).await;
    let r = send(
        &s,
        action(
            &format!("/ui/api/holds/{id}/deny"),
            &cookie,
            Some(&csrf),
            &[],
            r#"{"reason":"  not during the sale  "}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        rx.await.unwrap(),
        Resolution::Denied {
            approver: "bob".into(),
            reason: Some("not during the sale".into())
        }
    );
    let listed = send(&s, get("/ui/api/holds", Some(&cookie))).await;
    let v: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(v["pending"].as_array().unwrap().len(), 0);
    assert_eq!(v["recent"][0]["kind"], "deny");
    assert_eq!(v["recent"][0]["approver"], "bob");
    assert_eq!(v["recent"][0]["reason"], "not during the sale");
    assert_eq!(v["recent"][0]["hold"]["id"], id);
}

#[tokio::test]
async fn sign_out_needs_the_csrf_token_and_clears_the_cookie() {
    let s = shared();
    let (cookie, csrf) = sign_in(&s, ALICE).await;
    let form = |csrf: &str| {
        Request::post("/ui/logout")
            .header("host", "admin.test")
            .header("cookie", cookie.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={csrf}")))
            .unwrap()
    };
    assert_eq!(send(&s, form("nope")).await.status, StatusCode::FORBIDDEN);
    let r = send(&s, form(&csrf)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("pgwarden_ui=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict"));
}

#[tokio::test]
async fn over_https_the_cookie_is_secure() {
    // The certificate files are read when the listener starts, not here.
    let s = shared_with("tls = { cert = \"admin.crt\", key = \"admin.key\" }");
    let r = send(&s, login_request(ALICE, &[])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let c = r.headers["set-cookie"].to_str().unwrap();
    assert!(c.ends_with("; HttpOnly; SameSite=Strict; Secure"), "{c}");
}

fn plan_body(user: Option<&str>) -> String {
    let plan = crate::hold::Plan::from_statements(
        "prod",
        "production",
        "deploy",
        "alembic",
        "sha",
        [(
            "f1".to_string(),
            vec!["drop.table".to_string()],
            "hold".to_string(),
            "DROP TABLE legacy".to_string(),
        )],
    );
    serde_json::json!({"plan": plan, "window": "1h", "user": user}).to_string()
}

#[tokio::test]
async fn plans_are_approved_on_the_page_with_the_api_rules() {
    let s = shared();
    let (cookie, csrf) = sign_in(&s, ALICE).await;
    // No CSRF token, or another site: refused, nothing approved.
    let r = send(
        &s,
        action("/ui/api/plans", &cookie, None, &[], &plan_body(None)),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = send(
        &s,
        action(
            "/ui/api/plans",
            &cookie,
            Some(&csrf),
            &[("origin", "https://evil.example")],
            &plan_body(None),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Not for one's own user, nor for any user.
    for user in ["alice", "*"] {
        let r = send(
            &s,
            action(
                "/ui/api/plans",
                &cookie,
                Some(&csrf),
                &[],
                &plan_body(Some(user)),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{user}: {}", r.body);
    }
    let v: serde_json::Value =
        serde_json::from_str(&send(&s, get("/ui/api/holds", Some(&cookie))).await.body).unwrap();
    assert_eq!(v["plans"], serde_json::json!([]));

    let r = send(
        &s,
        action("/ui/api/plans", &cookie, Some(&csrf), &[], &plan_body(None)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value =
        serde_json::from_str(&send(&s, get("/ui/api/holds", Some(&cookie))).await.body).unwrap();
    assert_eq!(v["plans"][0]["approver"], "alice");
    assert_eq!(v["plans"][0]["user"], "deploy");
    assert_eq!(v["plans"][0]["statements"]["f1"], serde_json::json!([1, 0]));

    // Revoked: only with the CSRF token; once.
    let id = v["plans"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/ui/api/plans/{id}/revoke");
    let r = send(&s, action(&path, &cookie, None, &[], "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = send(&s, action(&path, &cookie, Some(&csrf), &[], "")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&s, action(&path, &cookie, Some(&csrf), &[], "")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let v: serde_json::Value =
        serde_json::from_str(&send(&s, get("/ui/api/holds", Some(&cookie))).await.body).unwrap();
    assert_eq!(v["plans"], serde_json::json!([]));
}

#[tokio::test]
async fn trash_actions_need_the_session_csrf_token_and_the_same_origin() {
    let s = shared();
    let r = send(&s, get("/ui/api/trash", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let (cookie, csrf) = sign_in(&s, ALICE).await;
    let r = send(&s, get("/ui/api/trash", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["configured"], false, "no [trash] section: {v}");
    assert!(r.headers.contains_key("content-security-policy"));

    for path in ["/ui/api/trash/3/restore", "/ui/api/trash/3/purge"] {
        for (csrf, extra, why) in [
            (None, vec![], "no CSRF token"),
            (Some("0".repeat(64)), vec![], "a wrong CSRF token"),
            (
                Some(csrf.clone()),
                vec![("origin", "https://evil.example")],
                "another origin",
            ),
        ] {
            let r = send(&s, action(path, &cookie, csrf.as_deref(), &extra, "")).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}, {why}: {}", r.body);
        }
        let r = send(
            &s,
            action(path, "pgwarden_ui=v1.x.1.y", Some(&csrf), &[], ""),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        // Past the checks: this proxy has no trash to act on.
        let r = send(&s, action(path, &cookie, Some(&csrf), &[], "")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
        assert!(r.body.contains("no [trash] section"), "{}", r.body);
    }
    let r = send(
        &s,
        action(
            "/ui/api/trash/3/restore",
            &cookie,
            Some(&csrf),
            &[],
            "{\"as\": 5}",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}
