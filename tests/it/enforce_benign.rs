//! Daily production work (tests/data/benign.sql) replayed in one session through
//! pgwarden on a production target with the built-in policy, every hold turned into
//! a block so that a refusal shows at once: nothing may be refused. A guard that
//! stops routine work gets switched off.

use crate::enforce_adversarial::all_holds_block;
use crate::support::guarded::*;
use crate::support::*;

use futures_util::{pin_mut, TryStreamExt};

const SETUP: &str = "
CREATE TABLE customers (id serial PRIMARY KEY, name varchar(40) NOT NULL);
INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 20) g;
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers (id), qty int NOT NULL);
INSERT INTO orders (customer_id, qty) SELECT 1 + g % 20, g FROM generate_series(1, 50) g;
";

fn corpus() -> Vec<String> {
    include_str!("../data/benign.sql")
        .split("\n--@@\n")
        .map(|e| {
            e.lines()
                .filter(|l| !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| !s.trim().is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_production_work_is_never_refused() {
    let entries = corpus();
    assert!(entries.len() >= 50, "corpus has {} entries", entries.len());
    let cluster = PgCluster::start();
    su_exec(
        &cluster,
        &format!("GRANT ALL ON SCHEMA public TO {SCRAM_USER}; SET ROLE {SCRAM_USER}; {SETUP}"),
    )
    .await;
    let proxy = prod_builder(&cluster)
        .policy_toml(&all_holds_block())
        .start()
        .await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let mut refused = Vec::new();
    for sql in &entries {
        let r = if sql.starts_with("COPY") {
            match c.copy_out(sql.as_str()).await {
                Ok(stream) => {
                    pin_mut!(stream);
                    stream.try_collect::<Vec<_>>().await.map(|_| ())
                }
                Err(e) => Err(e),
            }
        } else {
            c.batch_execute(sql).await
        };
        if let Err(e) = r {
            refused.push(format!("{sql}\n    {e}"));
        }
    }
    println!(
        "benign: {} sent, {} refused or failed",
        entries.len(),
        refused.len()
    );
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    let name_type: String = cluster
        .superuser_client()
        .await
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'customers'::regclass AND attname = 'name'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name_type, "character varying(120)");
}
