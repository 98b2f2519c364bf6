//! The control task of one replica: keeps the connection (reconnecting without a
//! restart), migrates the schema, writes new holds, carries out decisions made on
//! any replica as soon as their NOTIFY arrives (with a poll as the fallback for
//! missed notifications and after reconnects), refreshes this replica's heartbeat
//! and withdraws the holds of replicas that stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::Client;
use tracing::{debug, info, warn};

use super::connect::connect;
use super::schema;
use super::store::{
    load_plans, refuse_redemption, row_to_record, ControlStore, Write, COLUMNS, ID_BLOCK,
};
use crate::hold::{HoldQueue, HoldStatus, HoldStore as _, Resolution, TokenError, TokenUse};

/// Runs until the store is dropped.
pub async fn run(store: Arc<ControlStore>, queue: HoldQueue) {
    let taken = store
        .writes_rx
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some(mut writes) = taken else {
        return;
    };
    let max_backoff = store.cfg.poll_interval.max(Duration::from_millis(500));
    let mut backoff = Duration::from_millis(100);
    loop {
        match serve(&store, &queue, &mut writes, &mut backoff).await {
            Ok(()) => return,
            Err(e) => {
                if store.health().is_ok() {
                    warn!(error = %e, "control database lost; holds are refused until it is back");
                } else {
                    debug!(error = %e, "control database still unreachable");
                }
                store.set_down(e);
                // Holds whose row was never written exist nowhere else: they end here.
                drain_unwritten(&queue, &mut writes);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// Writes queued while no connection is up: new holds cannot be recorded, so their
/// statements are refused; withdrawals are redone by the reconciliation on connect.
fn drain_unwritten(queue: &HoldQueue, writes: &mut mpsc::UnboundedReceiver<Write>) {
    while let Ok(w) = writes.try_recv() {
        match w {
            Write::Insert { info, .. } => queue.settle_with(
                info.id,
                Resolution::Withdrawn {
                    reason: "the control database could not record the hold".into(),
                },
            ),
            Write::Claim { reply, .. } => {
                let _ = reply.send(Resolution::Withdrawn {
                    reason: "the control database could not count the plan's use".into(),
                });
            }
            w @ (Write::RedeemToken { .. } | Write::IssueToken { .. }) => {
                refuse_redemption(w, "the control database is unreachable")
            }
            Write::Withdraw { .. } => {}
        }
    }
}

/// One connection's life. Ok: the store is gone; Err: the connection failed.
async fn serve(
    store: &ControlStore,
    queue: &HoldQueue,
    writes: &mut mpsc::UnboundedReceiver<Write>,
    backoff: &mut Duration,
) -> Result<(), String> {
    let (mut client, mut notes) = connect(&store.cfg, store.tls.as_ref()).await?;
    let version = schema::migrate(&mut client)
        .await
        .map_err(|e| e.to_string())?;
    client
        .execute(
            "INSERT INTO pgwarden.replicas (id, name) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
            &[&store.replica, &store.name],
        )
        .await
        .map_err(db)?;
    client
        .batch_execute("LISTEN pgwarden_holds; LISTEN pgwarden_plans")
        .await
        .map_err(db)?;
    let client = Arc::new(client);
    // A restarted replica under the same name: its earlier holds never run.
    withdraw_where(
        &client,
        queue,
        "h.replica IN (SELECT id FROM pgwarden.replicas WHERE name = $1 AND id <> $2)",
        &[&store.name, &store.replica],
        "its replica restarted",
    )
    .await?;
    while store.ids_left() < ID_BLOCK {
        reserve(&client, store).await?;
    }
    reconcile(&client, store, queue).await?;
    store.set_plans(load_plans(&client).await?);
    store.set_up(Arc::clone(&client));
    *backoff = Duration::from_millis(100);
    info!(replica = %store.replica, schema = version, "control database connected");
    let mut tick = tokio::time::interval(store.cfg.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            n = notes.recv() => match n {
                None => return Err("connection closed".into()),
                Some((channel, _)) if channel == "pgwarden_plans" => {
                    store.set_plans(load_plans(&client).await?);
                }
                Some((_, payload)) => on_notification(&client, store, queue, &payload).await?,
            },
            w = writes.recv() => match w {
                None => return Ok(()),
                Some(w) => write(&client, store, queue, w).await?,
            },
            () = store.need_ids.notified() => {
                while store.ids_left() < ID_BLOCK {
                    reserve(&client, store).await?;
                }
            }
            _ = tick.tick() => {
                heartbeat(&client, store).await?;
                withdraw_where(
                    &client,
                    queue,
                    "h.replica <> $1 AND NOT EXISTS (SELECT 1 FROM pgwarden.replicas r \
                       WHERE r.id = h.replica AND r.heartbeat_at > now() - make_interval(secs => $2))",
                    &[&store.replica, &store.replica_timeout_secs()],
                    "its replica stopped answering",
                )
                .await?;
                reconcile(&client, store, queue).await?;
                store.set_plans(load_plans(&client).await?);
                // Tokens are kept a day past their expiry (to tell "expired" from
                // "unknown"), then go.
                client
                    .execute(
                        "DELETE FROM pgwarden.tokens WHERE expires_at < now() - interval '1 day'",
                        &[],
                    )
                    .await
                    .map_err(db)?;
            }
        }
    }
}

fn db(e: tokio_postgres::Error) -> String {
    e.to_string()
}

async fn reserve(client: &Client, store: &ControlStore) -> Result<(), String> {
    let block: i64 = client
        .query_one("SELECT nextval('pgwarden.hold_blocks')", &[])
        .await
        .map_err(db)?
        .get(0);
    store.add_block(u64::try_from(block).map_err(|_| "negative hold block".to_string())?);
    Ok(())
}

async fn heartbeat(client: &Client, store: &ControlStore) -> Result<(), String> {
    client
        .execute(
            "INSERT INTO pgwarden.replicas (id, name) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
            &[&store.replica, &store.name],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// Withdraws pending holds matching `filter` and records a `withdraw` event for each
/// (the UPDATE gives each row to exactly one replica).
async fn withdraw_where(
    client: &Client,
    queue: &HoldQueue,
    filter: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    reason: &str,
) -> Result<(), String> {
    let n = params.len() + 1;
    let sql = format!(
        "UPDATE pgwarden.holds h SET status = 'withdrawn', reason = ${n}, decided_at = now() \
         WHERE h.status = 'pending' AND {filter} RETURNING {COLUMNS}"
    );
    let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params.to_vec();
    all.push(&reason);
    let rows = client.query(&sql, &all).await.map_err(db)?;
    for rec in rows.iter().filter_map(row_to_record) {
        info!(hold = rec.info.id, replica = ?rec.info.replica, reason, "hold withdrawn");
        queue.audit_withdraw(&rec.info, reason);
        queue.settle(&rec);
    }
    Ok(())
}

/// After a (re)connect: this replica's rows that no statement waits for any more
/// (their withdrawal was lost with the connection) are withdrawn; decisions made
/// meanwhile are carried out.
async fn reconcile(client: &Client, store: &ControlStore, queue: &HoldQueue) -> Result<(), String> {
    let waiting: Vec<i64> = queue.waiting_ids().into_iter().map(|i| i as i64).collect();
    withdraw_where(
        client,
        queue,
        "h.replica = $1 AND NOT (h.id = ANY($2))",
        &[&store.replica, &waiting],
        "the client went away or cancelled",
    )
    .await?;
    poll(client, queue).await
}

/// Carries out decisions on this replica's waiting statements (the fallback for
/// notifications missed).
async fn poll(client: &Client, queue: &HoldQueue) -> Result<(), String> {
    let waiting: Vec<i64> = queue.waiting_ids().into_iter().map(|i| i as i64).collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let sql =
        format!("SELECT {COLUMNS} FROM pgwarden.holds WHERE id = ANY($1) AND status <> 'pending'");
    let rows = client.query(&sql, &[&waiting]).await.map_err(db)?;
    for rec in rows.iter().filter_map(row_to_record) {
        queue.settle(&rec);
    }
    Ok(())
}

async fn on_notification(
    client: &Client,
    store: &ControlStore,
    queue: &HoldQueue,
    payload: &str,
) -> Result<(), String> {
    let mut parts = payload.splitn(3, ' ');
    let (Some(id), Some(status), Some(replica)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(());
    };
    let Ok(id) = id.parse::<u64>() else {
        return Ok(());
    };
    if replica != store.replica
        || HoldStatus::parse(status).is_none_or(|s| s == HoldStatus::Pending)
        || queue.get(id).is_none()
    {
        return Ok(());
    }
    let sql = format!("SELECT {COLUMNS} FROM pgwarden.holds WHERE id = $1");
    if let Some(row) = client.query_opt(&sql, &[&(id as i64)]).await.map_err(db)? {
        if let Some(rec) = row_to_record(&row) {
            queue.settle(&rec);
        }
    }
    Ok(())
}

async fn write(
    client: &Client,
    store: &ControlStore,
    queue: &HoldQueue,
    w: Write,
) -> Result<(), String> {
    let replica = store.replica();
    match w {
        Write::Insert { info, timeout } => {
            // The client may have left before its row was written.
            if queue.get(info.id).is_none() {
                return Ok(());
            }
            let r = client
                .execute(
                    "INSERT INTO pgwarden.holds (id, replica, session, statement_id, requester, \
                       database, application, client, target, sql, fingerprint, classes, rule, \
                       expires_at, impact, blast) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                       now() + make_interval(secs => $14), $15, $16)",
                    &[
                        &(info.id as i64),
                        &info.replica,
                        &(info.session as i64),
                        &(info.statement_id as i64),
                        &info.user,
                        &info.database,
                        &info.application,
                        &info.client,
                        &info.target,
                        &info.sql,
                        &info.fingerprint,
                        &info.classes,
                        &info.rule,
                        &timeout.as_secs_f64(),
                        &info.impact,
                        &info.blast,
                    ],
                )
                .await;
            if let Err(e) = r {
                // It exists nowhere: its statement is refused.
                queue.settle_with(
                    info.id,
                    Resolution::Withdrawn {
                        reason: "the control database could not record the hold".into(),
                    },
                );
                if e.is_closed() {
                    return Err(e.to_string());
                }
                warn!(hold = info.id, error = %e, "could not record a hold");
            }
        }
        Write::Claim {
            plan,
            fingerprint,
            approver,
            reply,
        } => {
            // Used at most as many times as the plan has the statement, whichever
            // replicas ask: the database counts.
            let r = client
                .query_opt(
                    "UPDATE pgwarden.plan_statements s SET used = s.used + 1 \
                     FROM pgwarden.plans p \
                     WHERE s.plan = $1 AND s.fingerprint = $2 AND s.used < s.allowed \
                       AND p.id = s.plan AND now() >= p.not_before AND now() < p.not_after \
                     RETURNING s.used",
                    &[&plan, &fingerprint],
                )
                .await;
            let resolution = match &r {
                Ok(Some(_)) => Resolution::Approved {
                    approver: approver.clone(),
                },
                Ok(None) => Resolution::Withdrawn {
                    reason: format!("plan {plan} has no run of this statement left"),
                },
                Err(e) => Resolution::Withdrawn {
                    reason: format!("the control database could not count the plan's use: {e}"),
                },
            };
            let _ = reply.send(resolution);
            if let Err(e) = r {
                if e.is_closed() {
                    return Err(e.to_string());
                }
            }
        }
        Write::IssueToken {
            token,
            user,
            target,
            fingerprint,
            ttl,
            reply,
        } => {
            let r = client
                .execute(
                    "INSERT INTO pgwarden.tokens (token, replica, db_user, target, fingerprint, \
                       expires_at) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
                    &[
                        &token,
                        &replica,
                        &user,
                        &target,
                        &fingerprint,
                        &ttl.as_secs_f64(),
                    ],
                )
                .await;
            let _ = reply.send(match &r {
                Ok(_) => Resolution::Approved { approver: user },
                Err(e) => Resolution::Withdrawn {
                    reason: format!("the confirmation token could not be recorded: {e}"),
                },
            });
            if let Err(e) = r {
                warn!(error = %e, "could not record a confirmation token");
                if e.is_closed() {
                    return Err(e.to_string());
                }
            }
        }
        Write::RedeemToken {
            token,
            user,
            target,
            fingerprint,
            reply,
        } => {
            // Used once, whichever replica asks: the first UPDATE takes it, any
            // other finds used_at set (and the trigger refuses a second use).
            let r = client
                .query_opt(
                    "UPDATE pgwarden.tokens SET used_at = now(), used_by = $2 \
                     WHERE token = $1 AND used_at IS NULL \
                     RETURNING db_user, target, fingerprint, expires_at <= now()",
                    &[&token, &replica],
                )
                .await;
            let presented = TokenUse {
                token: &token,
                user: &user,
                target: &target,
                fingerprint: &fingerprint,
            };
            let verdict = match &r {
                Ok(Some(row)) => {
                    let issued: Result<(String, String, String, bool), _> = (|| {
                        Ok::<_, tokio_postgres::Error>((
                            row.try_get(0)?,
                            row.try_get(1)?,
                            row.try_get(2)?,
                            row.try_get(3)?,
                        ))
                    })(
                    );
                    match issued {
                        Ok((u, t, f, expired)) => presented
                            .check(&u, &t, &f, expired)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(format!("confirmation token {token} cannot be read: {e}")),
                    }
                }
                Ok(None) => Err(TokenError::Unknown(token.clone()).to_string()),
                Err(e) => Err(format!(
                    "confirmation token {token} cannot be checked now: {e}"
                )),
            };
            let _ = reply.send(match verdict {
                Ok(()) => Resolution::Approved { approver: user },
                Err(reason) => Resolution::Withdrawn { reason },
            });
            if let Err(e) = r {
                if e.is_closed() {
                    return Err(e.to_string());
                }
            }
        }
        Write::Withdraw { id, reason } => {
            client
                .execute(
                    "UPDATE pgwarden.holds SET status = 'withdrawn', reason = $2, \
                       decided_at = now() WHERE id = $1 AND status = 'pending'",
                    &[&(id as i64), &reason],
                )
                .await
                .map_err(db)?;
        }
    }
    Ok(())
}
