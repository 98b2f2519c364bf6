//! The approver page in a real browser: headless Chromium, driven through
//! chromedriver's WebDriver protocol, signs in with the approver token, sees a hold
//! that a real psql session made through pgwarden, and approves it (the statement
//! runs: checked on the server as the superuser) or denies it with a reason (psql gets
//! the denial, the table is still there). Screenshots land in the test's temporary
//! directory, and with `PGWARDEN_SCREENSHOTS=docs` in docs/ for the README.

use crate::support;

use std::time::Duration;

use support::guarded::*;
use support::webdriver::Browser;
use support::*;

const ALICE_TOKEN: &str = "alice-browser-test-token";

async fn proxy_with_alice(cluster: &PgCluster, test: &str) -> TestProxy {
    let env = format!("PGWARDEN_TEST_TOKEN_{test}_ALICE");
    std::env::set_var(&env, ALICE_TOKEN);
    prod_builder(cluster)
        .policy_toml(&small_policy("1m", "5m"))
        .admin(&[("alice", &env)])
        .start()
        .await
}

/// Runs `sql` with psql as `scram_user` through the proxy in the background.
fn psql_in_background(proxy: &TestProxy, sql: &str) -> tokio::task::JoinHandle<CmdOutput> {
    let ep = proxy.endpoint();
    let sql = sql.to_string();
    tokio::spawn(async move {
        ep.psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &["-v", "ON_ERROR_STOP=1", "-c", &sql],
        )
        .await
    })
}

/// Opens the page, checks it asks for a sign-in, and signs in as alice.
async fn sign_in(b: &Browser, base: &str) {
    b.sign_in(base, ALICE_TOKEN, "alice").await;
    let url = b.script("return window.location.href").await;
    assert!(
        !url.as_str().unwrap_or_default().contains(ALICE_TOKEN),
        "the token must never be in a URL: {url}"
    );
    let cookie = b.script("return document.cookie").await;
    assert_eq!(
        cookie.as_str(),
        Some(""),
        "the session cookie must be HttpOnly (invisible to scripts)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_in_the_browser_runs_the_held_statement() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "ui_orders", 5, SCRAM_USER).await;
    let proxy = proxy_with_alice(&cluster, "UI_APPROVE").await;
    let base = format!("http://{}", proxy.admin_addr().expect("admin listener"));
    let b = Browser::start(1100, 760).await;
    sign_in(&b, &base).await;

    let psql = psql_in_background(&proxy, "DROP TABLE ui_orders");
    let card = b
        .wait_for(
            "article.hold",
            "DROP TABLE ui_orders",
            Duration::from_secs(30),
        )
        .await;
    let text = b.text(&card).await;
    for fact in [
        SCRAM_USER,
        "psql",
        "127.0.0.1",
        "target prod",
        "database app",
        "drops-approve",
        "drop.table",
    ] {
        assert!(text.contains(fact), "the card lacks {fact:?}:\n{text}");
    }
    assert!(
        server_table_exists(&cluster, "ui_orders").await,
        "held, not run yet"
    );
    b.save_screenshot("approver-page.png").await;

    // A notification's link (`/ui#hold-ID`) shows that hold.
    let id = b
        .script("return document.querySelector('article.hold').dataset.holdId")
        .await;
    let id = id.as_str().expect("hold id on the card").to_string();
    b.goto(&format!("{base}/ui#hold-{id}")).await;
    let card = b
        .wait_for(
            "article.hold.linked",
            "DROP TABLE ui_orders",
            Duration::from_secs(30),
        )
        .await;

    let approve = b.find_in(&card, "button.approve").await;
    b.click(&approve).await;
    let out = tokio::time::timeout(Duration::from_secs(30), psql)
        .await
        .expect("psql did not finish after the approval")
        .expect("psql task");
    out.assert_ok("the approved DROP TABLE");
    assert!(out.stdout.contains("DROP TABLE"), "{}", out.stdout);
    assert!(
        !server_table_exists(&cluster, "ui_orders").await,
        "the approved statement ran on the server"
    );
    let decided = b
        .wait_for("ol.recent li", "by alice", Duration::from_secs(30))
        .await;
    // The verdict is shown in capitals (CSS), which WebDriver's text reflects.
    let decided = b.text(&decided).await.to_lowercase();
    assert!(
        decided.contains("approved") && decided.contains("drop table ui_orders"),
        "{decided}"
    );
    assert!(b.all("article.hold").await.is_empty(), "no longer pending");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_in_the_browser_on_a_phone_screen() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "ui_ledger", 5, SCRAM_USER).await;
    let proxy = proxy_with_alice(&cluster, "UI_DENY").await;
    let base = format!("http://{}", proxy.admin_addr().expect("admin listener"));
    let b = Browser::start(375, 812).await;
    sign_in(&b, &base).await;

    // A long statement: the page folds it.
    let sql = "-- month-end cleanup, ticket OPS-4411\n-- the ledger is rebuilt from the \
               payments table afterwards\n-- (see runbook: ledger-rebuild)\n-- run by: \
               the on-call engineer\n-- expected downtime: none\n-- rollback: restore \
               from the nightly dump\nTRUNCATE TABLE ui_ledger";
    let psql = psql_in_background(&proxy, sql);
    let card = b
        .wait_for("article.hold", "month-end cleanup", Duration::from_secs(30))
        .await;
    let unfold = b.find_in(&card, "button.unfold").await;
    assert!(b.text(&unfold).await.starts_with("Show all (7 lines"));
    let fits = b
        .script("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(
        fits,
        serde_json::json!(true),
        "no sideways scrolling on a phone"
    );
    b.save_screenshot("approver-page-phone.png").await;

    let reason = b.find_in(&card, "input.reason").await;
    b.type_into(&reason, "not during the sale").await;
    let deny = b.find_in(&card, "button.deny").await;
    b.click(&deny).await;
    let out = tokio::time::timeout(Duration::from_secs(30), psql)
        .await
        .expect("psql did not finish after the denial")
        .expect("psql task");
    assert!(!out.status.success(), "a denied statement fails: {out:?}");
    assert!(
        out.stderr.contains("denied by alice") && out.stderr.contains("not during the sale"),
        "psql shows who denied it and why:\n{}",
        out.stderr
    );
    assert_eq!(
        server_count(&cluster, "ui_ledger").await,
        5,
        "nothing was truncated"
    );
    b.wait_for(
        "ol.recent li",
        "not during the sale",
        Duration::from_secs(30),
    )
    .await;
    proxy.shutdown().await;
}

/// A plan approved on the page: `pgwarden explain --plan` writes it (as in CI), the
/// approver chooses the file on the page, is refused approving it for any user, then
/// approves it for the plan's user and the deploy application; the plan's statements
/// then run at once through a real session on the production target (checked on the
/// server), and the page shows the runs used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_a_plan_in_the_browser_then_its_statements_run() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "plan_legacy", 3, SCRAM_USER).await;
    victim_table(&cluster, "plan_staging", 3, SCRAM_USER).await;
    let proxy = proxy_with_alice(&cluster, "UI_PLAN").await;
    let base = format!("http://{}", proxy.admin_addr().expect("admin listener"));
    let dir = proxy.dir().to_path_buf();

    // CI: the migration's statements and their plan.
    let config = dir.join("proxy.toml");
    std::fs::write(&config, proxy.config_toml()).expect("write proxy.toml");
    let sql = dir.join("migration.sql");
    let statements = [
        "DROP TABLE plan_legacy",
        "TRUNCATE TABLE plan_staging",
        "SELECT count(*) FROM plan_staging",
    ];
    std::fs::write(&sql, statements.join(";\n") + ";\n").expect("write migration");
    let plan_file = dir.join("plan.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .args(["explain", "--config"])
        .arg(&config)
        .args([
            "--target",
            PROD,
            "--user",
            SCRAM_USER,
            "--application",
            "deploy",
        ])
        .arg("--file")
        .arg(&sql)
        .arg("--plan")
        .arg(&plan_file)
        .output()
        .expect("pgwarden explain");
    assert_eq!(out.status.code(), Some(2), "explain finds holds: {out:?}");

    let b = Browser::start(1100, 900).await;
    sign_in(&b, &base).await;
    b.wait_for(
        "#plans-section",
        "No approved plan",
        Duration::from_secs(30),
    )
    .await;
    let details = b
        .wait_for(
            "details#approve-plan",
            "Approve a plan",
            Duration::from_secs(10),
        )
        .await;
    let summary = b.find_in(&details, "summary").await;
    b.click(&summary).await;
    let file = b.find_in(&details, "input#plan-file").await;
    b.type_into(&file, &plan_file.display().to_string()).await;
    let preview = b
        .wait_for(
            "#plan-preview",
            "DROP TABLE plan_legacy",
            Duration::from_secs(10),
        )
        .await;
    let shown = b.text(&preview).await.to_lowercase();
    assert!(
        shown.contains("released") && shown.contains("truncate table plan_staging"),
        "{shown}"
    );

    // For any user: refused, as in the API.
    let user = b.find_in(&details, "input#plan-user").await;
    b.type_into(&user, "*").await;
    let approve = b.find_in(&details, "button[type=submit]").await;
    b.click(&approve).await;
    b.wait_for(
        "#plan-msg.error",
        "cannot approve a plan",
        Duration::from_secs(10),
    )
    .await;
    b.script("document.getElementById('plan-user').value = ''; return null")
        .await;
    let app = b.find_in(&details, "input#plan-application").await;
    b.type_into(&app, "deploy").await;
    let window = b.find_in(&details, "input#plan-window").await;
    b.script("document.getElementById('plan-window').value = ''; return null")
        .await;
    b.type_into(&window, "15m").await;
    b.click(&approve).await;
    b.wait_for("#plan-msg", "Approved plan", Duration::from_secs(10))
        .await;
    let card = b
        .wait_for("article.plan", "Approved by", Duration::from_secs(10))
        .await;
    let text = b.text(&card).await;
    assert!(
        text.contains(&format!("user {SCRAM_USER}")) && text.contains("application deploy"),
        "{text}"
    );
    assert!(text.contains("used 0 of 1"), "{text}");
    b.save_screenshot("approver-page-plans.png").await;

    // Deploy: the plan's statements run without waiting.
    let ep = proxy.endpoint();
    let mut cfg = ep.config(SCRAM_USER, SCRAM_PASSWORD, APP_DB);
    cfg.application_name("deploy");
    let client = ep
        .connect_config(&cfg)
        .await
        .expect("connect as the deploy");
    for s in statements {
        tokio::time::timeout(Duration::from_secs(10), client.batch_execute(s))
            .await
            .unwrap_or_else(|_| panic!("{s} waited: the plan did not release it"))
            .unwrap_or_else(|e| panic!("{s}: {e:?}"));
    }
    assert!(!server_table_exists(&cluster, "plan_legacy").await);
    assert_eq!(server_count(&cluster, "plan_staging").await, 0);
    // Both released statements counted on the page (it polls every 2 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let card = b
            .wait_for("article.plan", "Approved by", Duration::from_secs(10))
            .await;
        let text = b.text(&card).await;
        if text.matches("used 1 of 1").count() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "runs not counted: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Revoked on the page: gone from the page and from the API.
    let card = b
        .wait_for("article.plan", "Approved by", Duration::from_secs(10))
        .await;
    let revoke = b.find_in(&card, "button.revoke").await;
    b.click(&revoke).await;
    b.wait_for(
        "#plans-section",
        "No approved plan",
        Duration::from_secs(10),
    )
    .await;
    let admin = proxy.admin_addr().expect("admin listener");
    let listed = crate::support::http::get(admin, "/plans", Some(ALICE_TOKEN)).await;
    assert_eq!(listed.json(), serde_json::json!([]), "{listed:?}");
    proxy.shutdown().await;
}

/// A hold made by the impact guard: the page shows what the statement was measured
/// to change, and so do the webhook bodies (pgwarden's JSON and Slack's) at a local
/// receiver; approved on the page, the statement runs (checked on the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_webhook_show_a_holds_measured_impact() {
    use crate::notify_webhooks::{Mode, Receiver};
    let receiver = Receiver::start(Mode::Ok).await;
    let cluster = PgCluster::start();
    victim_table(&cluster, "impact_orders", 20, SCRAM_USER).await;
    let env = "PGWARDEN_TEST_TOKEN_UI_IMPACT_ALICE";
    std::env::set_var(env, ALICE_TOKEN);
    let policy = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "held-impact"
environment = "production"
classes = ["delete.*", "update.*"]
objects = ["impact_orders"]
action = "hold"
timeout = "5m"
impact = { rows = 5, on_unknown = "hold" }
"#;
    let notify = format!(
        "\n[notify]\npage_url = \"http://127.0.0.1/ui\"\n\
         \n[notify.webhooks.generic]\nurl = \"{}\"\n\
         \n[notify.webhooks.chat]\nurl = \"{}\"\nformat = \"slack\"\n",
        receiver.url("/generic"),
        receiver.url("/slack")
    );
    let proxy = prod_builder(&cluster)
        .policy_toml(policy)
        .admin(&[("alice", env)])
        .extra_toml(&notify)
        .start()
        .await;
    let base = format!("http://{}", proxy.admin_addr().expect("admin listener"));
    let b = Browser::start(1100, 760).await;
    sign_in(&b, &base).await;

    let h = hold(
        &proxy.endpoint(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "DELETE FROM impact_orders WHERE id > 10",
    )
    .await;
    let measured = "would delete 10 of 20 rows of public.impact_orders (50 %)";
    let card = b
        .wait_for(
            "article.hold",
            "DELETE FROM impact_orders",
            Duration::from_secs(30),
        )
        .await;
    let text = b.text(&card).await;
    assert!(
        text.contains("Impact") && text.contains(measured),
        "the card shows the measured impact:\n{text}"
    );
    assert!(text.contains("held-impact"), "{text}");
    b.save_screenshot("approver-page-impact.png").await;

    let g = receiver.wait_event("/generic", "hold", h.id).await;
    let impact = g.json()["hold"]["impact"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(impact.starts_with(measured), "{}", g.json());
    let s = receiver.wait_event("/slack", "hold", h.id).await;
    let blocks = s.json()["blocks"].to_string();
    assert!(
        blocks.contains(&format!("*Impact:* {measured}")),
        "{blocks}"
    );
    assert_eq!(server_count(&cluster, "impact_orders").await, 20, "held");

    let approve = b.find_in(&card, "button.approve").await;
    b.click(&approve).await;
    tokio::time::timeout(Duration::from_secs(30), h.task)
        .await
        .expect("the approved DELETE finished")
        .expect("task")
        .expect("the approved DELETE ran");
    assert_eq!(server_count(&cluster, "impact_orders").await, 10);
    let g = receiver.wait_event("/generic", "approve", h.id).await;
    assert_eq!(g.json()["hold"]["impact"], impact.as_str());
    proxy.shutdown().await;
}
