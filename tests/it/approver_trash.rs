//! The approver page's Trash section in a real browser: psql drops tables through
//! pgwarden (a trash rule moves them to the trash), headless Chromium sees each item
//! with its facts, is told plainly when a name is taken or an item is already gone,
//! restores one under a new name by clicking (the rows are back: md5 on the server)
//! and purges another with a confirming second click. Restore and purge are audited
//! with the approver, and the audit log verifies. Screenshots as in approver_page.

use crate::support;
use crate::trash_table::md5;

use std::time::Duration;

use support::audit_file::{audit_toml, records, verify, wait_for};
use support::guarded::*;
use support::webdriver::Browser;
use support::*;

const ALICE_TOKEN: &str = "alice-trash-page-token";

/// Drops go to the trash on production; the fallback refuses (PW002).
const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "drops-to-trash"
environment = "production"
classes = ["drop.table"]
action = "trash"
retention = "7d"
fallback = "block"
"#;

/// Runs `sql` with psql as the application user through the proxy.
async fn psql(proxy: &TestProxy, sql: &str) -> CmdOutput {
    proxy
        .endpoint()
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &["-v", "ON_ERROR_STOP=1", "-c", sql],
        )
        .await
}

async fn sign_in(b: &Browser, base: &str) {
    b.sign_in(base, ALICE_TOKEN, "alice").await;
}

/// Items in the registry, counted by the superuser.
async fn registry_ids(cluster: &PgCluster) -> Vec<i64> {
    let c = cluster.superuser_client().await;
    c.query("SELECT id FROM pgwarden_trash.registry ORDER BY id", &[])
        .await
        .expect("registry")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn schema_exists(cluster: &PgCluster, name: &str) -> bool {
    let c = cluster.superuser_client().await;
    c.query_one(
        "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
        &[&name],
    )
    .await
    .expect("pg_namespace")
    .get::<_, i64>(0)
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trash_on_the_page_restores_and_purges_by_clicking() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "ui_invoices", 150, SCRAM_USER).await;
    victim_table(&cluster, "ui_notes", 3, SCRAM_USER).await;
    victim_table(&cluster, "ui_scratch", 2, SCRAM_USER).await;
    su_exec(
        &cluster,
        &format!(
            "GRANT CREATE ON DATABASE {APP_DB} TO {SCRAM_USER};
             CREATE INDEX ui_invoices_v ON ui_invoices (v);"
        ),
    )
    .await;
    let su = cluster.superuser_client().await;
    let before = md5(&su, "ui_invoices").await;

    let dir = tempfile::tempdir().expect("dir");
    let audit = dir.path().join("audit.jsonl");
    let pw_var = "PGWARDEN_TEST_TRASH_PAGE_PW";
    std::env::set_var(pw_var, SUPERUSER_PASSWORD);
    let token_var = "PGWARDEN_TEST_TOKEN_TRASH_PAGE_ALICE";
    std::env::set_var(token_var, ALICE_TOKEN);
    let proxy = prod_builder(&cluster)
        .policy_toml(POLICY)
        .admin(&[("alice", token_var)])
        .extra_toml(&format!(
            "{}\n[trash]\ntarget = \"{PROD}\"\nurl = \"host=127.0.0.1 port={} user={SUPERUSER} dbname={APP_DB}\"\n\
             password_env = \"{pw_var}\"\ntls = {{ mode = \"disable\" }}\n",
            audit_toml(&audit, "guarded"),
            cluster.port()
        ))
        .start()
        .await;
    let admin = proxy.admin_addr().expect("admin listener");
    let base = format!("http://{admin}");
    let b = Browser::start(1100, 900).await;
    sign_in(&b, &base).await;
    b.wait_for(
        "#trash-section",
        "Nothing is in the trash.",
        Duration::from_secs(30),
    )
    .await;

    // Dropped through pgwarden: psql sees DROP TABLE and the notice; the name is free.
    let out = psql(&proxy, "DROP TABLE ui_invoices").await;
    out.assert_ok("DROP TABLE ui_invoices");
    assert!(out.stdout.contains("DROP TABLE"), "{}", out.stdout);
    assert!(out.stderr.contains("moved to the trash"), "{}", out.stderr);
    assert!(!server_table_exists(&cluster, "ui_invoices").await);
    psql(&proxy, "DROP TABLE ui_notes")
        .await
        .assert_ok("DROP TABLE ui_notes");
    let ids = registry_ids(&cluster).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    let (invoices, notes) = (ids[0], ids[1]);

    let card = b
        .wait_for(
            "article.trash-item",
            "public.ui_invoices",
            Duration::from_secs(30),
        )
        .await;
    let text = b.text(&card).await;
    for fact in [
        &format!("#{invoices}"),
        "table",
        &format!("by {SCRAM_USER}"),
        "150 rows",
        "Expires",
        "(in 6 days 23 h)",
        "DROP TABLE ui_invoices",
        &format!("schema pgwarden_trash_{invoices}"),
    ] {
        assert!(text.contains(fact), "the item lacks {fact:?}:\n{text}");
    }
    let section = b
        .wait_for("#trash-section", "public.ui_notes", Duration::from_secs(30))
        .await;
    let shown = b.text(&section).await;
    assert!(
        shown.contains("target prod") && shown.contains("3 rows"),
        "{shown}"
    );
    assert_eq!(
        b.text(&b.find_in(&section, "#trash-count").await).await,
        "2"
    );
    b.save_screenshot("approver-page-trash.png").await;

    // The name is taken meanwhile: the restore is refused with a clear message and
    // nothing changes.
    su.batch_execute("CREATE TABLE ui_invoices (other int)")
        .await
        .expect("take the name");
    let restore = b.find_in(&card, "button.restore").await;
    b.click(&restore).await;
    let msg = b
        .wait_for(
            "article.trash-item .msg.error",
            "already exists",
            Duration::from_secs(30),
        )
        .await;
    let msg = b.text(&msg).await;
    assert_eq!(
        msg,
        "cannot restore: public.ui_invoices already exists; restore it under another name"
    );
    assert_eq!(registry_ids(&cluster).await.len(), 2, "nothing restored");

    // Restored under a new name by clicking: every row is back.
    let name = b.find_in(&card, "input.restore-as").await;
    b.type_into(&name, "ui_invoices_back").await;
    b.click(&restore).await;
    b.wait_for(
        "article.trash-item .msg",
        "Restored as public.ui_invoices_back.",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(md5(&su, "ui_invoices_back").await, before, "the same rows");
    assert_eq!(server_count(&cluster, "ui_invoices_back").await, 150);
    assert!(!schema_exists(&cluster, &format!("pgwarden_trash_{invoices}")).await);
    let recs = wait_for(&audit, "a restore event", |r| {
        r.iter().any(|e| e["event"] == "restore")
    })
    .await;
    let rec = recs
        .iter()
        .find(|e| e["event"] == "restore")
        .expect("restore");
    assert_eq!(rec["approver"], "alice");
    assert_eq!(rec["item"], invoices);
    assert_eq!(rec["original"], "public.ui_invoices");
    assert_eq!(rec["restored_as"], "public.ui_invoices_back");
    // The restored item leaves the list.
    b.wait_for("#trash-count", "1", Duration::from_secs(30))
        .await;

    // Purge: the first click asks, the second purges.
    let card = b
        .wait_for(
            "article.trash-item",
            "public.ui_notes",
            Duration::from_secs(30),
        )
        .await;
    let purge = b.find_in(&card, "button.purge").await;
    b.click(&purge).await;
    assert!(b.text(&purge).await.contains("cannot be undone"));
    assert_eq!(
        registry_ids(&cluster).await,
        [notes],
        "one click purges nothing"
    );
    b.click(&purge).await;
    b.wait_for(
        "article.trash-item .msg",
        "Purged: public.ui_notes is gone for good.",
        Duration::from_secs(30),
    )
    .await;
    assert!(registry_ids(&cluster).await.is_empty());
    assert!(!schema_exists(&cluster, &format!("pgwarden_trash_{notes}")).await);
    b.wait_for(
        "#trash-section",
        "Nothing is in the trash.",
        Duration::from_secs(30),
    )
    .await;

    // Another approver purged it first (here: the API): the page says so.
    psql(&proxy, "DROP TABLE ui_scratch")
        .await
        .assert_ok("DROP TABLE ui_scratch");
    let scratch = registry_ids(&cluster).await[0];
    let card = b
        .wait_for(
            "article.trash-item",
            "public.ui_scratch",
            Duration::from_secs(30),
        )
        .await;
    // The page has not polled since (its list requests are held back from here on,
    // so the card stays as an approver would still see it).
    b.script(
        "var f = window.fetch; window.fetch = function (u, o) { \
         return u === '/ui/api/trash' ? new Promise(function () {}) : f(u, o); }; return null",
    )
    .await;
    let r = support::http::post(
        admin,
        &format!("/trash/{scratch}/purge"),
        Some(ALICE_TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let purge = b.find_in(&card, "button.purge").await;
    b.click(&purge).await;
    b.click(&purge).await;
    let msg = b
        .wait_for(
            "article.trash-item .msg.error",
            "already",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        b.text(&msg).await,
        format!("trash item {scratch} is not in the trash: it was already restored or purged")
    );

    let recs = records(&audit);
    let purges: Vec<_> = recs.iter().filter(|e| e["event"] == "purge").collect();
    assert_eq!(purges.len(), 2, "{purges:?}");
    assert!(purges
        .iter()
        .all(|e| e["approver"] == "alice" && e["reason"] == "requested"));
    assert_eq!(purges[0]["item"], notes);
    let (ok, out) = verify(&[&audit]);
    assert!(ok, "{out}");
    proxy.shutdown().await;
}

/// The Trash section on a phone's screen: one column, no sideways scrolling, the
/// Restore and Purge buttons on the screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trash_on_a_phone_screen() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "ui_customer_addresses_2026", 40, SCRAM_USER).await;
    su_exec(
        &cluster,
        &format!("GRANT CREATE ON DATABASE {APP_DB} TO {SCRAM_USER}"),
    )
    .await;
    let pw_var = "PGWARDEN_TEST_TRASH_PHONE_PW";
    std::env::set_var(pw_var, SUPERUSER_PASSWORD);
    let token_var = "PGWARDEN_TEST_TOKEN_TRASH_PHONE_ALICE";
    std::env::set_var(token_var, ALICE_TOKEN);
    let proxy = prod_builder(&cluster)
        .policy_toml(POLICY)
        .admin(&[("alice", token_var)])
        .extra_toml(&format!(
            "\n[trash]\ntarget = \"{PROD}\"\nurl = \"host=127.0.0.1 port={} user={SUPERUSER} dbname={APP_DB}\"\n\
             password_env = \"{pw_var}\"\ntls = {{ mode = \"disable\" }}\n",
            cluster.port()
        ))
        .start()
        .await;
    psql(&proxy, "DROP TABLE ui_customer_addresses_2026")
        .await
        .assert_ok("DROP TABLE");
    let base = format!("http://{}", proxy.admin_addr().expect("admin listener"));
    let b = Browser::start(375, 812).await;
    sign_in(&b, &base).await;
    let card = b
        .wait_for(
            "article.trash-item",
            "public.ui_customer_addresses_2026",
            Duration::from_secs(30),
        )
        .await;
    assert!(b.text(&card).await.contains("40 rows"));
    let fits = b
        .script("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(
        fits,
        serde_json::json!(true),
        "no sideways scrolling on a phone"
    );
    let on_screen = b
        .script(
            "var r = document.querySelector('article.trash-item button.purge').getBoundingClientRect();\
             return r.right <= window.innerWidth && r.width > 0",
        )
        .await;
    assert_eq!(on_screen, serde_json::json!(true));
    b.script("document.getElementById('trash-section').scrollIntoView(); return null")
        .await;
    b.save_screenshot("approver-page-trash-phone.png").await;
    proxy.shutdown().await;
}
