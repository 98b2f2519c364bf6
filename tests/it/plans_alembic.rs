//! Plans approved ahead, with a real migration tool from PyPI (Alembic, through
//! psycopg2) against a production target whose policy holds drops for an approver:
//! `alembic upgrade head --sql` gives the migration's SQL, `pgwarden explain --plan`
//! makes the plan, `pgwarden plans approve` approves it for the deploy user and
//! application, and `alembic upgrade head` then runs through pgwarden without
//! waiting. Each released statement runs at most as often as the plan has it;
//! statements not in the plan, and the same user outside the application, are held
//! as usual. Audited: `plan_approve`, and each released statement names the plan.
//! Once with holds in memory and once with a control database.

use crate::support;

use std::path::Path;
use std::time::Duration;

use support::audit_file;
use support::guarded::*;
use support::http;
use support::*;

const TOKEN: &str = "plans-alice-token";
const TOKEN_ENV: &str = "PGWARDEN_TEST_TOKEN_PLANS_ALICE";
const CONTROL_PW_ENV: &str = "PGWARDEN_TEST_PLANS_CONTROL_PASSWORD";

const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "drops-need-an-approver"
environment = "production"
classes = ["drop.*", "alter.drop_column"]
action = "hold"
confirm = "approver"
timeout = "3s"
"#;

const ENV_PY: &str = r#"
import os
from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

def url():
    return URL.create(
        "postgresql+psycopg2",
        username=os.environ["PLAN_USER"],
        password=os.environ["PLAN_PASSWORD"],
        host="127.0.0.1",
        port=int(os.environ["PLAN_PORT"]),
        database=os.environ["PLAN_DB"],
        query={"application_name": "alembic"},
    )

if context.is_offline_mode():
    context.configure(url=url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url())
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
"#;

const REVISION: &str = r#"
from alembic import op

revision = "0001"
down_revision = None

def upgrade():
    op.drop_table("legacy")
    op.drop_column("accounts", "v")

def downgrade():
    pass
"#;

/// Fails with an install hint when Alembic or psycopg2 is missing.
fn require_alembic() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import alembic, psycopg2"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs Alembic and psycopg2 from PyPI: python3 -m pip install alembic psycopg2-binary (.ci/run installs them)"
    );
}

fn alembic_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("versions")).unwrap();
    std::fs::write(
        dir.join("alembic.ini"),
        format!("[alembic]\nscript_location = {}\n", dir.display()),
    )
    .unwrap();
    std::fs::write(dir.join("env.py"), ENV_PY).unwrap();
    std::fs::write(dir.join("script.py.mako"), "").unwrap();
    std::fs::write(dir.join("versions").join("0001_drops.py"), REVISION).unwrap();
}

fn alembic(dir: &Path, port: u16, args: &[&str]) -> std::process::Output {
    std::process::Command::new("python3")
        .args(["-m", "alembic", "-c"])
        .arg(dir.join("alembic.ini"))
        .args(args)
        .env("PLAN_USER", SCRAM_USER)
        .env("PLAN_PASSWORD", SCRAM_PASSWORD)
        .env("PLAN_PORT", port.to_string())
        .env("PLAN_DB", APP_DB)
        .output()
        .expect("run python3 -m alembic")
}

fn pgwarden(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .args(args)
        .output()
        .expect("run pgwarden")
}

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

async fn scenario(with_control: bool) {
    require_alembic();
    std::env::set_var(TOKEN_ENV, TOKEN);
    std::env::set_var(CONTROL_PW_ENV, SUPERUSER_PASSWORD);
    let cluster = PgCluster::start();
    let control = with_control.then(PgCluster::start);
    victim_table(&cluster, "legacy", 3, SCRAM_USER).await;
    victim_table(&cluster, "accounts", 3, SCRAM_USER).await;
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("audit.jsonl");
    let admin_port = free_port();
    let mut extra = format!(
        "\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\napprovers = {{ alice = {{ token_env = \"{TOKEN_ENV}\" }} }}\n{}",
        audit_file::audit_toml(&log, "guarded")
    );
    if let Some(c) = &control {
        extra.push_str(&format!(
            "\n[control]\nurl = \"host=127.0.0.1 port={} user={SUPERUSER} dbname={APP_DB}\"\n\
             password_env = \"{CONTROL_PW_ENV}\"\npoll_interval = \"250ms\"\nreplica_timeout = \"2s\"\n",
            c.port()
        ));
    }
    let proxy = prod_builder(&cluster)
        .policy_toml(POLICY)
        .extra_toml(&extra)
        .spawn_binary()
        .await;
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
    eventually(
        "holds can be recorded",
        Duration::from_secs(20),
        || async move { http::get(admin, "/readyz", None).await.json()["control"] == "ok" },
    )
    .await;
    let project = work.path().join("migrations");
    alembic_project(&project);

    // CI: the migration's SQL, and its plan.
    let offline = alembic(&project, proxy.port(), &["upgrade", "head", "--sql"]);
    assert!(
        offline.status.success(),
        "alembic --sql: {}",
        text(&offline)
    );
    let sql_file = work.path().join("upgrade.sql");
    std::fs::write(&sql_file, &offline.stdout).unwrap();
    let plan_file = work.path().join("plan.json");
    let config = proxy.dir().join("proxy.toml");
    let explained = pgwarden(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--target",
        PROD,
        "--user",
        SCRAM_USER,
        "--application",
        "alembic",
        "--file",
        sql_file.to_str().unwrap(),
        "--plan",
        plan_file.to_str().unwrap(),
    ]);
    assert_eq!(explained.status.code(), Some(2), "{}", text(&explained));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let held: Vec<&serde_json::Value> = plan["statements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "hold")
        .collect();
    assert_eq!(held.len(), 2, "{plan:#}");

    // Without an approved plan the migration's drops wait for an approver (and
    // time out here): nothing is dropped.
    let refused = alembic(&project, proxy.port(), &["upgrade", "head"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("not approved in time"),
        "{}",
        text(&refused)
    );
    assert!(server_table_exists(&cluster, "legacy").await);

    // The approver approves the plan for the deploy user and application.
    let admin_url = format!("http://127.0.0.1:{admin_port}");
    let approved = pgwarden(&[
        "plans",
        "approve",
        plan_file.to_str().unwrap(),
        "--window",
        "10m",
        "--admin",
        &admin_url,
        "--token",
        TOKEN,
    ]);
    assert!(approved.status.success(), "{}", text(&approved));
    let listed = http::get(admin, "/plans", Some(TOKEN)).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let plan_id = listed.json()[0]["id"].as_str().unwrap().to_string();

    // Deploy: the migration runs through pgwarden without waiting.
    let deployed = alembic(&project, proxy.port(), &["upgrade", "head"]);
    if !deployed.status.success() {
        let held: Vec<String> = audit_file::records(&log)
            .iter()
            .filter(|e| e["event"] == "statement")
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    e["fingerprint"], e["application"], e["decision"], e["sql"]
                )
            })
            .collect();
        panic!(
            "the migration did not run under the plan: {}\nplans: {}\nstatements:\n{}",
            text(&deployed).lines().last().unwrap_or_default(),
            listed.body,
            held.join("\n")
        );
    }
    assert!(!server_table_exists(&cluster, "legacy").await);
    let client = cluster.superuser_client().await;
    let version: String = client
        .query_one("SELECT version_num FROM alembic_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, "0001");
    let cols: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'v'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cols, 0, "accounts.v dropped");

    // Used up: the same drop again is held as usual; so is one not in the plan, and
    // the plan's statement from another application.
    su_exec(
        &cluster,
        "CREATE TABLE legacy (id int); CREATE TABLE other (id int)",
    )
    .await;
    su_exec(
        &cluster,
        &format!(
            "ALTER TABLE legacy OWNER TO {SCRAM_USER}; ALTER TABLE other OWNER TO {SCRAM_USER}"
        ),
    )
    .await;
    let ep = proxy.endpoint();
    for (sql, app) in [
        ("DROP TABLE legacy", "alembic"),
        ("DROP TABLE other", "alembic"),
        ("ALTER TABLE other DROP COLUMN id", "psql"),
    ] {
        let mut cfg = ep.config(SCRAM_USER, SCRAM_PASSWORD, APP_DB);
        cfg.application_name(app);
        let client = ep.connect_config(&cfg).await.expect("connect");
        let e = client.batch_execute(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e).as_deref(), Some("PW005"), "{sql}: {e:?}");
    }
    assert!(server_table_exists(&cluster, "legacy").await);
    assert!(server_table_exists(&cluster, "other").await);

    // Audited: the approval, and each released statement names the plan.
    let records = audit_file::wait_for(&log, "the plan's records", |r| {
        r.iter().any(|e| e["event"] == "plan_approve")
            && r.iter()
                .filter(|e| e["event"] == "statement" && e["plan"] == plan_id.as_str())
                .count()
                >= 2
    })
    .await;
    let approval = records
        .iter()
        .find(|e| e["event"] == "plan_approve")
        .unwrap();
    assert_eq!(approval["plan"], plan_id.as_str());
    assert_eq!(approval["approver"], "alice");
    assert_eq!(approval["user"], SCRAM_USER);
    assert_eq!(approval["application"], "alembic");
    for e in records
        .iter()
        .filter(|e| e["event"] == "statement" && e["plan"] == plan_id.as_str())
    {
        assert_eq!(e["approver"], "alice", "{e}");
        assert_eq!(e["decision"], "approved", "{e}");
    }
    let (ok, out) = audit_file::verify(&[&log]);
    assert!(ok, "{out}");
    drop(control);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alembic_migration_runs_under_an_approved_plan() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alembic_migration_runs_under_a_plan_kept_in_the_control_database() {
    scenario(true).await;
}
