//! ORM migrations are routine work: Django and Alembic (both from PyPI, through
//! psycopg2) migrate a production target through pgwarden with the example
//! (built-in) policy. Creating tables, adding columns with defaults, indexes
//! (also CONCURRENTLY), foreign keys, nullability changes and a key-bounded data
//! migration run with zero refusals, including Django's connection setup
//! (`set_config('TimeZone', 'UTC', false)`). A column type change is held for
//! self-confirmation with the rule's reason, and does not run.

use crate::support::guarded::{prod_builder, su_exec};
use crate::support::*;

use std::path::Path;

/// Fails with an install hint when a Python package is missing.
fn require_python(modules: &str, packages: &str) {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs {packages} from PyPI: python3 -m pip install {packages} (.ci/run installs them)"
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn python(dir: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("python3")
        .args(args)
        .current_dir(dir)
        .env("DJANGO_SETTINGS_MODULE", "settings")
        .env("M_USER", SCRAM_USER)
        .env("M_PASSWORD", SCRAM_PASSWORD)
        .env("M_PORT", port.to_string())
        .env("M_DB", APP_DB)
        .output()
        .expect("run python3");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// No statement refused: pgwarden's words and SQLSTATEs never appear.
fn no_refusals(ok: bool, out: &str, what: &str) {
    assert!(ok, "{what} failed:\n{out}");
    for word in ["PW001", "PW002", "PW003", "PW004", "PW005", "pgwarden"] {
        assert!(!out.contains(word), "{what}: {word} in output:\n{out}");
    }
}

async fn grant_schema(cluster: &PgCluster) {
    su_exec(
        cluster,
        &format!("GRANT ALL ON SCHEMA public TO {SCRAM_USER}"),
    )
    .await;
}

async fn strings(cluster: &PgCluster, sql: &str) -> Vec<String> {
    let c = cluster.superuser_client().await;
    c.query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

const DJANGO_SETTINGS: &str = r#"
import os
SECRET_KEY = "pgwarden-test"
USE_TZ = True
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ["M_DB"], "USER": os.environ["M_USER"],
    "PASSWORD": os.environ["M_PASSWORD"], "HOST": "127.0.0.1", "PORT": os.environ["M_PORT"],
}}
"#;

const DJANGO_0001: &str = r#"
from django.db import migrations, models
class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Customer", [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.CharField(max_length=40)),
        ]),
        migrations.CreateModel("Order", [
            ("id", models.BigAutoField(primary_key=True)),
            ("qty", models.IntegerField()),
        ]),
    ]
"#;

const DJANGO_0002: &str = r#"
from django.db import migrations, models
import django.db.models.deletion
class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("customer", "active", models.BooleanField(default=True)),
        migrations.AddField("order", "note", models.CharField(max_length=20, default="")),
        migrations.AddIndex("order", models.Index(fields=["qty"], name="order_qty_idx")),
        migrations.AddField("order", "customer", models.ForeignKey(
            null=True, on_delete=django.db.models.deletion.CASCADE, to="shop.customer")),
        migrations.AlterField("order", "note", models.CharField(
            max_length=20, default="", blank=True, null=True)),
    ]
"#;

const DJANGO_0003: &str = r#"
from django.db import migrations
def seed(apps, schema_editor):
    Customer = apps.get_model("shop", "Customer")
    c = Customer.objects.create(name="first")
    Customer.objects.filter(pk=c.pk).update(name="First")
class Migration(migrations.Migration):
    dependencies = [("shop", "0002_more")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
"#;

const DJANGO_0004: &str = r#"
from django.db import migrations, models
class Migration(migrations.Migration):
    dependencies = [("shop", "0003_data")]
    operations = [migrations.AlterField("customer", "name", models.CharField(max_length=120))]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_migrations_run_on_production() {
    require_python("django, psycopg2", "django psycopg2-binary");
    let cluster = PgCluster::start();
    grant_schema(&cluster).await;
    let proxy = prod_builder(&cluster).start().await;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(p, "settings.py", DJANGO_SETTINGS);
    write(p, "shop/__init__.py", "");
    write(p, "shop/models.py", "");
    write(p, "shop/migrations/__init__.py", "");
    write(p, "shop/migrations/0001_initial.py", DJANGO_0001);
    write(p, "shop/migrations/0002_more.py", DJANGO_0002);
    write(p, "shop/migrations/0003_data.py", DJANGO_0003);
    write(p, "shop/migrations/0004_widen.py", DJANGO_0004);

    let (ok, out) = python(
        p,
        proxy.port(),
        &["-m", "django", "migrate", "shop", "0003"],
    );
    no_refusals(ok, &out, "django migrate shop 0003 through pgwarden");
    assert_eq!(
        strings(&cluster, "SELECT name FROM shop_customer").await,
        ["First"]
    );
    assert_eq!(
        strings(
            &cluster,
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'shop_order' ORDER BY 1"
        )
        .await,
        [
            "order_qty_idx",
            "shop_order_customer_id_f638df20",
            "shop_order_pkey"
        ]
    );

    // Widening varchar(40) to varchar(120) is metadata-only (the catalog, read in
    // the migration's own transaction, shows it): it runs at once.
    let (ok, out) = python(
        p,
        proxy.port(),
        &["-m", "django", "migrate", "shop", "0004"],
    );
    no_refusals(ok, &out, "django migrate shop 0004 (varchar widened)");
    assert_eq!(name_length(&cluster).await, ["120"]);

    // Narrowing it again checks every value: held with the rule's reason, not run.
    write(p, "shop/migrations/0005_narrow.py", DJANGO_0005);
    let (ok, out) = python(p, proxy.port(), &["-m", "django", "migrate", "shop"]);
    assert!(!ok, "the type change ran unconfirmed:\n{out}");
    assert!(
        out.contains("pgwarden is holding this statement (alter.column_type")
            && out.contains("schema-changes-confirm")
            && out.contains("pgwarden:confirm="),
        "no clear hold reason:\n{out}"
    );
    assert_eq!(
        strings(
            &cluster,
            "SELECT name::text FROM django_migrations WHERE app = 'shop' ORDER BY 1"
        )
        .await,
        ["0001_initial", "0002_more", "0003_data", "0004_widen"]
    );
    assert_eq!(name_length(&cluster).await, ["120"]);
}

const DJANGO_0005: &str = r#"
from django.db import migrations, models
class Migration(migrations.Migration):
    dependencies = [("shop", "0004_widen")]
    operations = [migrations.AlterField("customer", "name", models.CharField(max_length=10))]
"#;

async fn name_length(cluster: &PgCluster) -> Vec<String> {
    strings(
        cluster,
        "SELECT character_maximum_length::text FROM information_schema.columns \
         WHERE table_name = 'shop_customer' AND column_name = 'name'",
    )
    .await
}

const ALEMBIC_ENV: &str = r#"
import os
from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
url = URL.create("postgresql+psycopg2", username=os.environ["M_USER"],
                 password=os.environ["M_PASSWORD"], host="127.0.0.1",
                 port=int(os.environ["M_PORT"]), database=os.environ["M_DB"])
with create_engine(url).connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
"#;

const ALEMBIC_A1: &str = r#"
import sqlalchemy as sa
from alembic import op
revision = "a1"
down_revision = None
def upgrade():
    op.create_table("author", sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                    sa.Column("name", sa.String(40), nullable=False))
    op.create_table("book", sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                    sa.Column("title", sa.Text, nullable=False))
"#;

const ALEMBIC_A2: &str = r#"
import sqlalchemy as sa
from alembic import op
revision = "a2"
down_revision = "a1"
def upgrade():
    op.add_column("book", sa.Column("pages", sa.Integer, nullable=False, server_default="0"))
    op.add_column("book", sa.Column("author_id", sa.BigInteger, nullable=True))
    op.create_foreign_key("book_author_fk", "book", "author", ["author_id"], ["id"])
    op.create_index("book_title_idx", "book", ["title"])
    op.alter_column("book", "pages", server_default=None)
    op.alter_column("author", "name", nullable=True)
    with op.get_context().autocommit_block():
        op.create_index("book_pages_idx", "book", ["pages"], postgresql_concurrently=True)
"#;

const ALEMBIC_A3: &str = r#"
import sqlalchemy as sa
from alembic import op
revision = "a3"
down_revision = "a2"
def upgrade():
    author = sa.table("author", sa.column("id", sa.BigInteger), sa.column("name", sa.String))
    op.bulk_insert(author, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    op.execute(author.update().where(author.c.id == 1).values(name="A"))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alembic_migrations_run_on_production() {
    require_python("alembic, psycopg2", "alembic psycopg2-binary");
    let cluster = PgCluster::start();
    grant_schema(&cluster).await;
    let proxy = prod_builder(&cluster).start().await;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(
        p,
        "alembic.ini",
        &format!("[alembic]\nscript_location = {}\n", p.display()),
    );
    write(p, "env.py", ALEMBIC_ENV);
    write(p, "script.py.mako", "");
    write(p, "versions/a1.py", ALEMBIC_A1);
    write(p, "versions/a2.py", ALEMBIC_A2);
    write(p, "versions/a3.py", ALEMBIC_A3);

    let (ok, out) = python(
        p,
        proxy.port(),
        &["-m", "alembic", "-c", "alembic.ini", "upgrade", "head"],
    );
    no_refusals(ok, &out, "alembic upgrade head through pgwarden");
    assert_eq!(
        strings(&cluster, "SELECT version_num::text FROM alembic_version").await,
        ["a3"]
    );
    assert_eq!(
        strings(&cluster, "SELECT name FROM author ORDER BY id").await,
        ["A", "b"]
    );
    assert_eq!(
        strings(
            &cluster,
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'book' ORDER BY 1"
        )
        .await,
        ["book_pages_idx", "book_pkey", "book_title_idx"]
    );
}
