//! The control database's schema, created and migrated by pgwarden itself: numbered
//! migrations applied in order inside one transaction under an advisory lock, so
//! replicas starting together migrate once. The rules that matter are the
//! database's own (checks and triggers), not each replica's.

use tokio_postgres::Client;

/// Advisory lock key of schema changes ("pgwarden" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x7067_7761_7264_656e;

/// Migrations by version (index + 1). Append only: a released migration never
/// changes, a new version adds one.
pub const MIGRATIONS: &[&str] = &[
    // 1: replicas, holds with decide-once, id blocks, change notifications.
    r#"
CREATE TABLE pgwarden.replicas (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE pgwarden.hold_blocks MINVALUE 0 START 0;
CREATE TABLE pgwarden.holds (
    id           bigint PRIMARY KEY,
    replica      text NOT NULL,
    session      bigint NOT NULL,
    statement_id bigint NOT NULL,
    requester    text NOT NULL,
    database     text NOT NULL,
    application  text NOT NULL,
    client       text NOT NULL,
    target       text NOT NULL,
    sql          text NOT NULL,
    fingerprint  text NOT NULL,
    classes      text[] NOT NULL,
    rule         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'withdrawn')),
    decided_by   text,
    reason       text,
    decided_at   timestamptz,
    CONSTRAINT nobody_approves_their_own
        CHECK (status <> 'approved' OR decided_by IS DISTINCT FROM requester),
    CONSTRAINT decided_when_not_pending
        CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX holds_pending ON pgwarden.holds (created_at) WHERE status = 'pending';
CREATE INDEX holds_replica_pending ON pgwarden.holds (replica) WHERE status = 'pending';

CREATE FUNCTION pgwarden.hold_decided_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'hold % is already %', OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER holds_decided_once BEFORE UPDATE OF status ON pgwarden.holds
    FOR EACH ROW EXECUTE FUNCTION pgwarden.hold_decided_once();

CREATE FUNCTION pgwarden.hold_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgwarden_holds', NEW.id || ' ' || NEW.status || ' ' || NEW.replica);
    RETURN NULL;
END $$;
CREATE TRIGGER holds_notify AFTER INSERT OR UPDATE OF status ON pgwarden.holds
    FOR EACH ROW EXECUTE FUNCTION pgwarden.hold_notify();
"#,
    // 2: plans approved ahead, and how often each statement of one was used.
    r#"
CREATE TABLE pgwarden.plans (
    id          text PRIMARY KEY,
    target      text NOT NULL,
    db_user     text,
    application text,
    not_before  timestamptz NOT NULL,
    not_after   timestamptz NOT NULL,
    approver    text NOT NULL,
    approved_at timestamptz NOT NULL DEFAULT now(),
    CHECK (not_after > not_before),
    CONSTRAINT nobody_approves_their_own_plan CHECK (db_user IS DISTINCT FROM approver)
);
CREATE TABLE pgwarden.plan_statements (
    plan        text NOT NULL REFERENCES pgwarden.plans (id) ON DELETE CASCADE,
    fingerprint text NOT NULL,
    allowed     integer NOT NULL CHECK (allowed > 0),
    used        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (plan, fingerprint),
    CONSTRAINT used_at_most_as_allowed CHECK (used BETWEEN 0 AND allowed)
);
CREATE FUNCTION pgwarden.plan_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgwarden_plans', '');
    RETURN NULL;
END $$;
CREATE TRIGGER plans_notify AFTER INSERT OR UPDATE ON pgwarden.plans
    FOR EACH STATEMENT EXECUTE FUNCTION pgwarden.plan_notify();
CREATE TRIGGER plan_statements_notify AFTER INSERT OR UPDATE ON pgwarden.plan_statements
    FOR EACH STATEMENT EXECUTE FUNCTION pgwarden.plan_notify();
"#,
    // 3: self-confirmation tokens, redeemable once on any replica; a hold's
    // measured impact, shown on every replica.
    r#"
ALTER TABLE pgwarden.holds ADD COLUMN impact text;
CREATE TABLE pgwarden.tokens (
    token       text PRIMARY KEY,
    replica     text NOT NULL,
    db_user     text NOT NULL,
    target      text NOT NULL,
    fingerprint text NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_by     text,
    CONSTRAINT used_by_whom CHECK ((used_at IS NULL) = (used_by IS NULL))
);
CREATE INDEX tokens_expiry ON pgwarden.tokens (expires_at);

CREATE FUNCTION pgwarden.token_used_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.used_at IS NOT NULL THEN
        RAISE EXCEPTION 'confirmation token % was already used', OLD.token
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tokens_used_once BEFORE UPDATE ON pgwarden.tokens
    FOR EACH ROW EXECUTE FUNCTION pgwarden.token_used_once();
"#,
    // 4: recently decided holds of every replica, newest first (the approver page).
    r#"
CREATE INDEX holds_decided ON pgwarden.holds (decided_at DESC, id DESC)
    WHERE status <> 'pending';
"#,
    // 5: a held DROP's or TRUNCATE's blast radius, shown on every replica.
    r#"
ALTER TABLE pgwarden.holds ADD COLUMN blast text;
"#,
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("the control database's schema is version {found}, newer than this pgwarden knows ({known}): upgrade pgwarden")]
    Newer { found: i32, known: i32 },
}

/// Creates or migrates the schema; returns the version now in place.
pub async fn migrate(client: &mut Client) -> Result<i32, SchemaError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS pgwarden;
         CREATE TABLE IF NOT EXISTS pgwarden.schema_version (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM pgwarden.schema_version",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if found > known {
        return Err(SchemaError::Newer { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).await?;
        let version = i as i32 + 1;
        tx.execute(
            "INSERT INTO pgwarden.schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(known)
}
