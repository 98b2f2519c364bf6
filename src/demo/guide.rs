//! Pure parts of the demo: the sample schema, the demo's `proxy.toml`, the
//! statements it suggests (and what the example policy does with each), and the
//! text and JSON it prints.

use std::path::Path;

use serde_json::{json, Value};

/// The PostgreSQL role the demo user logs in as (through pgwarden, with a password).
pub const DB_USER: &str = "alice";
/// The database holding the sample schema.
pub const DATABASE: &str = "app";
/// The admin-API identity that approves held statements (not a database role).
pub const APPROVER: &str = "bob";
/// The environment variable holding the approver's bearer token.
pub const APPROVER_TOKEN_ENV: &str = "PGWARDEN_TOKEN_BOB";
/// The target name in the demo's `proxy.toml`.
pub const TARGET: &str = "prod";

/// Allowed: a read.
pub const ALLOWED: &str = "SELECT count(*) FROM orders;";
/// Blocked: `delete.unbounded` (rule `no-unbounded-writes`).
pub const BLOCKED: &str = "DELETE FROM orders;";
/// Also blocked: `drop.database` (rule `no-drop-database`).
pub const BLOCKED_TOO: &str = "DROP DATABASE app;";
/// Held until the author confirms: `alter.rename` (rule `schema-changes-confirm`).
pub const SELF_CONFIRM: &str = "ALTER TABLE customers RENAME COLUMN email TO contact_email;";
/// Dropped but kept: `drop.table` (rule `drops-go-to-the-trash`); the table moves to
/// the trash and `pgwarden trash restore ID` brings it back.
pub const TRASHED: &str = "DROP TABLE invoices;";
/// What shows the restored table (it counts [`INVOICES`] rows again).
pub const TRASHED_CHECK: &str = "SELECT count(*) FROM invoices;";
/// Held until an approver approves: `truncate` (rule `drops-need-a-second-person`).
pub const APPROVER_HOLD: &str = "TRUNCATE billing.refunds;";

/// Rows in the sample tables (the demo's test checks them).
pub const CUSTOMERS: u32 = 50;
pub const ORDERS: u32 = 200;
pub const INVOICES: u32 = 150;

/// Single-user-mode setup: (database, statements). Each statement is one line.
pub fn setup_sql(password: &str) -> Vec<(&'static str, Vec<String>)> {
    let role = vec![
        format!(
            "CREATE ROLE {DB_USER} LOGIN PASSWORD '{}';",
            password.replace('\'', "''")
        ),
        format!("CREATE DATABASE {DATABASE} OWNER {DB_USER};"),
    ];
    let schema: Vec<String> = [
        // Objects belong to alice, so she can rename and drop them once pgwarden lets her.
        "SET ROLE alice;".to_string(),
        "CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now());".into(),
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers, total numeric(10,2) NOT NULL, status text NOT NULL, ordered_at timestamptz NOT NULL);".into(),
        "CREATE TABLE invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders, amount numeric(10,2) NOT NULL, issued_on date NOT NULL, paid boolean NOT NULL);".into(),
        "CREATE SCHEMA billing;".into(),
        "CREATE TABLE billing.payments (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, invoice_no bigint NOT NULL, amount numeric(10,2) NOT NULL, paid_at timestamptz NOT NULL, method text NOT NULL);".into(),
        "CREATE TABLE billing.refunds (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payment_id bigint NOT NULL REFERENCES billing.payments, amount numeric(10,2) NOT NULL, reason text);".into(),
        format!("INSERT INTO customers (name, email) SELECT 'Customer ' || i, 'customer' || i || '@example.com' FROM generate_series(1, {CUSTOMERS}) AS i;"),
        format!("INSERT INTO orders (customer_id, total, status, ordered_at) SELECT 1 + i % {CUSTOMERS}, 10 + (i * 37) % 490 + 0.99, (ARRAY['open','paid','shipped'])[1 + i % 3], timestamptz '2025-01-01' + i * interval '7 hours' FROM generate_series(1, {ORDERS}) AS i;"),
        format!("INSERT INTO invoices (order_id, amount, issued_on, paid) SELECT o.id, o.total, o.ordered_at::date, o.status <> 'open' FROM orders o ORDER BY o.id LIMIT {INVOICES};"),
        "INSERT INTO billing.payments (invoice_no, amount, paid_at, method) SELECT i.id, i.amount, i.issued_on + 3, (ARRAY['card','transfer'])[1 + (i.id % 2)::int] FROM invoices i WHERE i.paid;".into(),
        "INSERT INTO billing.refunds (payment_id, amount, reason) SELECT p.id, p.amount, 'damaged in transit' FROM billing.payments p WHERE p.id % 20 = 0;".into(),
        "ANALYZE;".into(),
    ]
    .into();
    vec![("template1", role), (DATABASE, schema)]
}

/// Where things are, once everything runs.
#[derive(Debug, Clone)]
pub struct Endpoints<'a> {
    pub dir: &'a Path,
    pub config: &'a Path,
    pub policy: &'a Path,
    pub audit: &'a Path,
    pub pg_version: &'a str,
    pub pg_port: u16,
    pub proxy_port: u16,
    pub admin_port: u16,
    /// False until this build serves the admin API (approvals, /metrics).
    pub admin_served: bool,
    pub password: &'a str,
    pub token: &'a str,
    /// How to invoke this binary from the user's shell.
    pub exe: &'a str,
    /// `psql` found on this machine.
    pub have_psql: bool,
}

impl Endpoints<'_> {
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    pub fn psql_url(&self) -> String {
        format!(
            "postgresql://{DB_USER}:{}@127.0.0.1:{}/{DATABASE}",
            self.password, self.proxy_port
        )
    }
}

/// The demo's `proxy.toml`. Paths are absolute (the file lives in the temp dir).
pub fn proxy_toml(
    proxy_listen: &str,
    admin_port: u16,
    pg_port: u16,
    policy: &Path,
    audit: &Path,
) -> String {
    format!(
        r#"# Written by `pgwarden demo`; removed when the demo stops.

[server]
listen = "{proxy_listen}"
shutdown_grace = "2s"

[admin]
listen = "127.0.0.1:{admin_port}"
approvers = {{ {APPROVER} = {{ token_env = "{APPROVER_TOKEN_ENV}" }} }}

[audit]
path = {audit}
statements = "all"
durability = "before-execute"

[policy]
path = {policy}

[targets.{TARGET}]
host = "127.0.0.1"
port = {pg_port}
environment = "production"
tls = {{ mode = "disable" }}
"#,
        audit = toml_string(&audit.display().to_string()),
        policy = toml_string(&policy.display().to_string()),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the demo prints for a person at a terminal.
pub fn instructions(e: &Endpoints<'_>) -> String {
    let admin = e.admin_url();
    let exe = e.exe;
    let version = e
        .pg_version
        .strip_prefix("postgres (PostgreSQL) ")
        .unwrap_or(e.pg_version);
    let mut s = format!(
        r#"
pgwarden demo is running.

  PostgreSQL  {version}: a throwaway cluster on 127.0.0.1:{pg_port}, database `{DATABASE}`
              with customers, orders, invoices, billing.payments, billing.refunds
  pgwarden    127.0.0.1:{proxy_port} -> target `{TARGET}` (environment production)
  policy      {policy} (a copy of policy.example.toml)

1. Connect through pgwarden (the password is in the URL):

     psql "{url}"

   Tip: `\set VERBOSITY verbose` in psql shows the SQLSTATE of each error.
"#,
        pg_port = e.pg_port,
        proxy_port = e.proxy_port,
        policy = e.policy.display(),
        url = e.psql_url(),
    );
    if !e.have_psql {
        s.push_str(
            "   (psql is not installed here: `apt-get install postgresql-client`, or use any\n   \
             PostgreSQL client with the URL above.)\n",
        );
    }
    s.push_str(&format!(
        r#"
2. Allowed: reads and ordinary writes pass through untouched.

     {ALLOWED}

3. Blocked: a DELETE without WHERE would empty the table (rule no-unbounded-writes).

     {BLOCKED}

   You get ERROR PW002 naming the class, the rule and the target; the table is unchanged
   and the session stays usable. `{BLOCKED_TOO}` is blocked the same way.

4. Held until you confirm: a rename can break running applications
   (rule schema-changes-confirm).

     {SELF_CONFIRM}

   You get ERROR PW001 with a one-time TOKEN. Within 5 minutes, run the same statement
   again with the token in front:

     /* pgwarden:confirm=TOKEN */ {SELF_CONFIRM}

5. Dropped, and back again: a plain DROP TABLE runs at once but keeps the data
   (rule drops-go-to-the-trash).

     {TRASHED}

   psql prints DROP TABLE and NOTICE "... was moved to the trash as item ID ...";
   the table is gone. In a second terminal, bring it back (the command talks to
   PostgreSQL directly and writes an audit record of the restore):

     export PGWARDEN_TRASH_URL="host=127.0.0.1 port={pg_port} dbname={DATABASE} user={DB_USER}"
     export PGWARDEN_TRASH_PASSWORD={password}
     {exe} trash list --password-env PGWARDEN_TRASH_PASSWORD
     {exe} trash restore ID --password-env PGWARDEN_TRASH_PASSWORD --audit {trash_audit}

   Back in psql, `{TRASHED_CHECK}` counts {INVOICES} again.

6. Held for a second person: emptying a table needs an approver
   (rule drops-need-a-second-person).

     {APPROVER_HOLD}

   psql shows NOTICE "held as #ID, waiting for approval" and waits. In a second
   terminal, approve it as `{APPROVER}`:

     export PGWARDEN_ADMIN={admin}
     export PGWARDEN_TOKEN={token}
     {exe} holds list
     {exe} holds approve ID
     # or: {exe} holds deny ID --reason "not today"

   The first terminal then prints TRUNCATE TABLE (ERROR PW004 when denied, PW005 when
   nobody decides within 10 minutes).
"#,
        token = e.token,
        pg_port = e.pg_port,
        password = e.password,
        trash_audit = e.dir.join("trash-audit.jsonl").display(),
    ));
    if !e.admin_served {
        s.push_str(
            "   (This build does not serve the admin API yet: the hold waits until it times out.)\n",
        );
    }
    s.push_str(&format!(
        r#"
7. See what happened:

     audit log   tail -f {audit}
                 {exe} audit verify {audit}
     metrics     curl {admin}/metrics
     dry run     {exe} explain --config {config} --target {TARGET} "TRUNCATE orders"

Ctrl-C stops pgwarden and PostgreSQL and deletes {dir}.
"#,
        audit = e.audit.display(),
        config = e.config.display(),
        dir = e.dir.display(),
    ));
    s
}

/// The one-line JSON the demo prints last with `--non-interactive`.
pub fn ready_json(e: &Endpoints<'_>) -> Value {
    json!({
        "host": "127.0.0.1",
        "port": e.proxy_port,
        "user": DB_USER,
        "password": e.password,
        "database": DATABASE,
        "target": TARGET,
        "admin": e.admin_url(),
        "admin_served": e.admin_served,
        "approver": APPROVER,
        "token": e.token,
        "audit": e.audit.display().to_string(),
        "config": e.config.display().to_string(),
        "dir": e.dir.display().to_string(),
        "postgres_port": e.pg_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{classify, SessionFacts};
    use crate::explain::{explain, Mode, RunsOn, Who};
    use crate::policy::{Action, Confirm, Policy};

    fn decide(sql: &str) -> (Action, Option<Confirm>, Option<String>) {
        let policy = Policy::parse(crate::shared::BUILTIN_POLICY, "policy.example.toml").unwrap();
        let statements = classify(sql, &SessionFacts::default());
        let report = explain(
            &policy,
            &RunsOn {
                name: TARGET,
                environment: "production",
                mode: Mode::Enforce,
            },
            &Who {
                user: DB_USER,
                application: "psql",
                database: DATABASE,
                client_addr: None,
                now: jiff::Timestamp::now(),
            },
            &statements,
        );
        assert_eq!(report.entries.len(), 1, "{sql}");
        let e = &report.entries[0];
        (e.action, e.confirm, e.rule.clone())
    }

    #[test]
    fn suggested_statements_get_the_decisions_the_demo_promises() {
        assert!(decide(ALLOWED).0.forwards());
        assert_eq!(
            decide(BLOCKED),
            (Action::Block, None, Some("no-unbounded-writes".into()))
        );
        assert_eq!(decide(BLOCKED_TOO).0, Action::Block);
        let (a, c, r) = decide(SELF_CONFIRM);
        assert_eq!(
            (a, c, r.as_deref()),
            (
                Action::Hold,
                Some(Confirm::SelfConfirm),
                Some("schema-changes-confirm")
            )
        );
        let (a, c, r) = decide(APPROVER_HOLD);
        assert_eq!(
            (a, c, r.as_deref()),
            (
                Action::Hold,
                Some(Confirm::Approver),
                Some("drops-need-a-second-person")
            )
        );
        let policy = Policy::parse(crate::shared::BUILTIN_POLICY, "policy.example.toml").unwrap();
        let rule = decide(TRASHED).2.expect("a rule decides the drop");
        assert_eq!(rule, "drops-go-to-the-trash");
        assert!(policy.trash_rule(&rule).is_some(), "{rule} is a trash rule");
    }

    #[test]
    fn setup_statements_are_one_line_each() {
        for (_, statements) in setup_sql("pw'x") {
            for s in statements {
                assert!(!s.contains('\n') && s.ends_with(';'), "{s}");
            }
        }
        assert!(setup_sql("pw'x")[0].1[0].contains("'pw''x'"));
    }

    #[test]
    fn demo_config_validates() {
        let text = proxy_toml(
            "127.0.0.1:6432",
            9187,
            5432,
            Path::new("/tmp/d \"x\"/policy.toml"),
            Path::new("/tmp/d/audit.jsonl"),
        );
        let cfg = crate::config::Config::from_toml_str(&text, "demo proxy.toml").unwrap();
        assert_eq!(cfg.targets[0].name, TARGET);
        assert_eq!(cfg.targets[0].environment, "production");
        let admin = cfg.admin.expect("admin section");
        assert_eq!(admin.approvers[APPROVER], APPROVER_TOKEN_ENV);
        assert_eq!(
            cfg.policy_path.as_deref(),
            Some(Path::new("/tmp/d \"x\"/policy.toml"))
        );
    }

    #[test]
    fn instructions_name_every_step() {
        let dir = Path::new("/tmp/pgwarden-demo-x");
        let e = Endpoints {
            dir,
            config: &dir.join("proxy.toml"),
            policy: &dir.join("policy.toml"),
            audit: &dir.join("audit.jsonl"),
            pg_version: "postgres (PostgreSQL) 16.4",
            pg_port: 5555,
            proxy_port: 6432,
            admin_port: 9187,
            admin_served: true,
            password: "pw",
            token: "tok",
            exe: "pgwarden",
            have_psql: true,
        };
        let text = instructions(&e);
        for needle in [
            "psql \"postgresql://alice:pw@127.0.0.1:6432/app\"",
            ALLOWED,
            BLOCKED,
            SELF_CONFIRM,
            "/* pgwarden:confirm=TOKEN */",
            APPROVER_HOLD,
            TRASHED,
            TRASHED_CHECK,
            "PGWARDEN_TRASH_URL=\"host=127.0.0.1 port=5555 dbname=app user=alice\"",
            "     pgwarden trash restore ID --password-env PGWARDEN_TRASH_PASSWORD --audit /tmp/pgwarden-demo-x/trash-audit.jsonl\n",
            "PGWARDEN_ADMIN=http://127.0.0.1:9187",
            "PGWARDEN_TOKEN=tok",
            "     pgwarden holds approve ID\n",
            "     psql \"postgresql://",
            "PostgreSQL  16.4:",
            "/tmp/pgwarden-demo-x/audit.jsonl",
            "http://127.0.0.1:9187/metrics",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("does not serve the admin API"));
        let j = ready_json(&e);
        assert_eq!(j["port"], 6432);
        assert_eq!(j["user"], DB_USER);
        assert_eq!(j["admin"], "http://127.0.0.1:9187");
    }
}
