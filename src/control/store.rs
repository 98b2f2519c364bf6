//! `ControlStore`: holds kept in the control database, shared by every replica.
//! Creating a hold never waits on the database (the id comes from a block this
//! replica reserved, the row is written by the background task); deciding is one
//! `UPDATE … WHERE status = 'pending' AND expires_at > now() AND requester <> approver
//! RETURNING …`, so a hold is decided once whichever replica asks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio_postgres::{Client, Row};

use crate::config::ControlConfig;
use crate::hold::plans::{ApprovedPlan, PlanRequest};
use crate::hold::TokenUse;
use crate::hold::{
    HoldError, HoldEvent, HoldInfo, HoldRecord, HoldStatus, HoldStore, PlanClaim, Resolution,
    Ruling, StoreFuture,
};

/// Ids per reserved block (`pgwarden.hold_blocks` numbers the blocks).
pub const ID_BLOCK: u64 = 100;

/// Columns every hold query returns, in `row_to_record`'s order ([`COLUMN_COUNT`]
/// of them: a query may add its own after them).
pub const COLUMNS: &str = "id, replica, session, statement_id, requester, database, application, \
     client, target, sql, fingerprint, classes, rule, \
     extract(epoch FROM now() - created_at)::float8, \
     extract(epoch FROM expires_at - created_at)::float8, status, decided_by, reason, impact, blast";

/// How many columns [`COLUMNS`] has.
pub const COLUMN_COUNT: usize = 20;

/// A write the background task carries out in order.
#[derive(Debug)]
pub enum Write {
    Insert {
        info: Box<HoldInfo>,
        timeout: Duration,
    },
    Withdraw {
        id: u64,
        reason: String,
    },
    /// Records a confirmation token this replica issued.
    IssueToken {
        token: String,
        user: String,
        target: String,
        fingerprint: String,
        ttl: Duration,
        reply: tokio::sync::oneshot::Sender<Resolution>,
    },
    /// Uses a confirmation token up, whichever replica issued it.
    RedeemToken {
        token: String,
        user: String,
        target: String,
        fingerprint: String,
        reply: tokio::sync::oneshot::Sender<Resolution>,
    },
    /// Uses one run of a plan's statement, if one is left.
    Claim {
        plan: String,
        fingerprint: String,
        approver: String,
        reply: tokio::sync::oneshot::Sender<Resolution>,
    },
}

pub struct ControlStore {
    pub(super) cfg: ControlConfig,
    /// This process in the control database: its name, and an incarnation suffix
    /// so that a restarted replica's old holds are told apart from its new ones.
    pub(super) replica: String,
    pub(super) name: String,
    client: RwLock<Option<Arc<Client>>>,
    health: Mutex<Result<(), String>>,
    ids: Mutex<VecDeque<(u64, u64)>>,
    pub(super) need_ids: Notify,
    writes: mpsc::UnboundedSender<Write>,
    pub(super) writes_rx: Mutex<Option<mpsc::UnboundedReceiver<Write>>>,
    pub(super) up: prometheus_client::metrics::gauge::Gauge,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// Approved plans as last read (refreshed on their NOTIFY and every poll), so a
    /// statement no plan covers is decided without asking the database.
    plans: RwLock<Vec<ApprovedPlan>>,
}

impl ControlStore {
    /// The store for `cfg`; `up` is the gauge that says whether it is connected.
    pub fn new(
        cfg: ControlConfig,
        up: prometheus_client::metrics::gauge::Gauge,
    ) -> Result<Arc<Self>, crate::tls::TlsError> {
        let tls = crate::tls::upstream_config(cfg.tls_mode, cfg.tls_ca.as_deref())?;
        let name = cfg.replica.clone().unwrap_or_else(default_name);
        let suffix: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..6)
                .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.random_range(0..32)]))
                .collect()
        };
        let (tx, rx) = mpsc::unbounded_channel();
        up.set(0);
        Ok(Arc::new(ControlStore {
            tls,
            replica: format!("{name}/{suffix}"),
            name,
            cfg,
            client: RwLock::new(None),
            health: Mutex::new(Err("not connected yet".into())),
            ids: Mutex::new(VecDeque::new()),
            plans: RwLock::new(Vec::new()),
            need_ids: Notify::new(),
            writes: tx,
            writes_rx: Mutex::new(Some(rx)),
            up,
        }))
    }

    /// This replica's key in the control database.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub(super) fn client(&self) -> Result<Arc<Client>, HoldError> {
        self.client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| HoldError::Unavailable(self.down_reason()))
    }

    fn down_reason(&self) -> String {
        match &*self.health.lock().unwrap_or_else(|e| e.into_inner()) {
            Ok(()) => "the control database connection is being re-established".into(),
            Err(e) => format!("the control database is unreachable ({e})"),
        }
    }

    pub(super) fn set_up(&self, client: Arc<Client>) {
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = Some(client);
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = Ok(());
        self.up.set(1);
    }

    pub(super) fn set_down(&self, why: String) {
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = None;
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = Err(why);
        self.up.set(0);
    }

    /// Ids still reserved.
    pub(super) fn ids_left(&self) -> u64 {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.iter().map(|(next, end)| end - next).sum()
    }

    pub(super) fn add_block(&self, block: u64) {
        let start = block * ID_BLOCK + 1;
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((start, start + ID_BLOCK));
    }

    fn take_id(&self) -> Option<u64> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        let id = loop {
            let (next, end) = ids.front_mut()?;
            if *next < *end {
                let id = *next;
                *next += 1;
                break id;
            }
            ids.pop_front();
        };
        let left: u64 = ids.iter().map(|(n, e)| e - n).sum();
        drop(ids);
        if left < ID_BLOCK {
            self.need_ids.notify_one();
        }
        Some(id)
    }

    /// Replaces the plans mirror.
    pub(super) fn set_plans(&self, p: Vec<ApprovedPlan>) {
        *self.plans.write().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// Seconds after which a silent replica is taken for gone.
    pub(super) fn replica_timeout_secs(&self) -> f64 {
        self.cfg.replica_timeout.as_secs_f64()
    }

    async fn explain_miss(&self, client: &Client, id: u64, ruling: &Ruling) -> HoldError {
        let sql = format!("SELECT {COLUMNS} FROM pgwarden.holds WHERE id = $1");
        let row = match client.query_opt(&sql, &[&(id as i64)]).await {
            Ok(Some(r)) => r,
            Ok(None) => return HoldError::NotFound(id),
            Err(e) => return HoldError::Unavailable(e.to_string()),
        };
        let Some(rec) = row_to_record(&row) else {
            return HoldError::NotFound(id);
        };
        match rec.status {
            HoldStatus::Pending => {
                if matches!(ruling, Ruling::Approve { .. }) && rec.info.user == ruling.approver() {
                    HoldError::OwnStatement {
                        id,
                        approver: ruling.approver().to_string(),
                    }
                } else if rec.info.age_seconds >= rec.info.timeout_seconds {
                    HoldError::Decided {
                        id,
                        status: "expired",
                    }
                } else {
                    HoldError::Unavailable(format!(
                        "hold #{id} belongs to replica {}, which has stopped answering",
                        rec.info.replica.as_deref().unwrap_or("?")
                    ))
                }
            }
            s => HoldError::Decided {
                id,
                status: s.as_str(),
            },
        }
    }
}

fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "pgwarden".into());
    format!("{host}-{}", std::process::id())
}

/// A hold row (`COLUMNS`) as a record; None if a value is out of range.
pub fn row_to_record(row: &Row) -> Option<HoldRecord> {
    let id: i64 = row.try_get(0).ok()?;
    let session: i64 = row.try_get(2).ok()?;
    let statement_id: i64 = row.try_get(3).ok()?;
    let age: f64 = row.try_get(13).ok()?;
    let timeout: f64 = row.try_get(14).ok()?;
    let status: String = row.try_get(15).ok()?;
    Some(HoldRecord {
        info: HoldInfo {
            id: u64::try_from(id).ok()?,
            replica: row.try_get(1).ok()?,
            session: u64::try_from(session).ok()?,
            statement_id: u64::try_from(statement_id).ok()?,
            user: row.try_get(4).ok()?,
            database: row.try_get(5).ok()?,
            application: row.try_get(6).ok()?,
            client: row.try_get(7).ok()?,
            target: row.try_get(8).ok()?,
            sql: row.try_get(9).ok()?,
            fingerprint: row.try_get(10).ok()?,
            classes: row.try_get(11).ok()?,
            rule: row.try_get(12).ok()?,
            age_seconds: age.max(0.0) as u64,
            timeout_seconds: timeout.max(0.0).round() as u64,
            impact: row.try_get(18).ok()?,
            blast: row.try_get(19).ok()?,
        },
        status: HoldStatus::parse(&status)?,
        decided_by: row.try_get(16).ok()?,
        reason: row.try_get(17).ok()?,
    })
}

impl HoldStore for ControlStore {
    fn create(&self, info: &HoldInfo, timeout: Duration) -> Result<u64, HoldError> {
        // Refuse at once while the database is unreachable, rather than hold a
        // statement no other replica can see.
        self.client()?;
        let id = self.take_id().ok_or_else(|| {
            HoldError::Unavailable("no hold id is reserved yet (control database busy)".into())
        })?;
        let mut info = info.clone();
        info.id = id;
        info.replica = Some(self.replica.clone());
        self.writes
            .send(Write::Insert {
                info: Box::new(info),
                timeout,
            })
            .map_err(|_| HoldError::Unavailable("the control task has stopped".into()))?;
        Ok(id)
    }

    fn pending(&self) -> StoreFuture<'_, Result<Vec<HoldInfo>, HoldError>> {
        Box::pin(async move {
            let client = self.client()?;
            let sql = format!(
                "SELECT {COLUMNS} FROM pgwarden.holds \
                 WHERE status = 'pending' AND expires_at > now() ORDER BY created_at, id"
            );
            let rows = client
                .query(&sql, &[])
                .await
                .map_err(|e| HoldError::Unavailable(e.to_string()))?;
            Ok(rows
                .iter()
                .filter_map(row_to_record)
                .map(|r| r.info)
                .collect())
        })
    }

    fn record(&self, id: u64) -> StoreFuture<'_, Result<HoldRecord, HoldError>> {
        Box::pin(async move {
            let client = self.client()?;
            let sql = format!("SELECT {COLUMNS} FROM pgwarden.holds WHERE id = $1");
            let row = client
                .query_opt(&sql, &[&(id as i64)])
                .await
                .map_err(|e| HoldError::Unavailable(e.to_string()))?;
            row.as_ref()
                .and_then(row_to_record)
                .ok_or(HoldError::NotFound(id))
        })
    }

    fn decide(&self, id: u64, ruling: Ruling) -> StoreFuture<'_, Result<HoldRecord, HoldError>> {
        Box::pin(async move {
            let client = self.client()?;
            let (status, by, reason) = match &ruling {
                Ruling::Approve { approver } => ("approved", approver.as_str(), None),
                Ruling::Deny { approver, reason } => ("denied", approver.as_str(), reason.clone()),
            };
            // Decided once, before it expires, never by its own requester, and only
            // while its replica is alive to run it.
            let sql = format!(
                "UPDATE pgwarden.holds h \
                 SET status = $2, decided_by = $3, reason = $4, decided_at = now() \
                 WHERE h.id = $1 AND h.status = 'pending' AND h.expires_at > now() \
                   AND ($2 <> 'approved' OR h.requester <> $3) \
                   AND EXISTS (SELECT 1 FROM pgwarden.replicas r WHERE r.id = h.replica \
                               AND r.heartbeat_at > now() - make_interval(secs => $5)) \
                 RETURNING {COLUMNS}"
            );
            let row = client
                .query_opt(
                    &sql,
                    &[
                        &(id as i64),
                        &status,
                        &by,
                        &reason,
                        &self.replica_timeout_secs(),
                    ],
                )
                .await
                .map_err(|e| HoldError::Unavailable(e.to_string()))?;
            match row.as_ref().and_then(row_to_record) {
                Some(rec) => Ok(rec),
                None => Err(self.explain_miss(&client, id, &ruling).await),
            }
        })
    }

    fn expire(&self, id: u64) -> StoreFuture<'_, Result<HoldRecord, HoldError>> {
        Box::pin(async move {
            let client = self.client()?;
            let sql = format!(
                "UPDATE pgwarden.holds SET status = 'expired', decided_at = now() \
                 WHERE id = $1 AND status = 'pending' RETURNING {COLUMNS}"
            );
            let row = client
                .query_opt(&sql, &[&(id as i64)])
                .await
                .map_err(|e| HoldError::Unavailable(e.to_string()))?;
            match row.as_ref().and_then(row_to_record) {
                Some(rec) => Ok(rec),
                // Decided just before: that decision stands.
                None => self.record(id).await,
            }
        })
    }

    fn withdraw(&self, id: u64, reason: &str) {
        let _ = self.writes.send(Write::Withdraw {
            id,
            reason: reason.to_string(),
        });
    }

    fn health(&self) -> Result<(), String> {
        self.client().map(|_| ()).map_err(|e| e.to_string())
    }

    fn decided(&self, limit: usize) -> StoreFuture<'_, Option<Result<Vec<HoldEvent>, HoldError>>> {
        Box::pin(async move {
            Some(
                async {
                    let client = self.client()?;
                    let sql = format!(
                        "SELECT {COLUMNS}, extract(epoch FROM decided_at)::float8 \
                         FROM pgwarden.holds WHERE status <> 'pending' \
                         ORDER BY decided_at DESC, id DESC LIMIT $1"
                    );
                    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                    let rows = client
                        .query(&sql, &[&limit])
                        .await
                        .map_err(|e| HoldError::Unavailable(e.to_string()))?;
                    Ok(rows
                        .iter()
                        .filter_map(|row| {
                            let at: f64 = row.try_get(COLUMN_COUNT).ok()?;
                            HoldEvent::from_record(row_to_record(row)?, at.max(0.0) as u64)
                        })
                        .collect())
                }
                .await,
            )
        })
    }

    fn approve_plan(&self, plan: ApprovedPlan) -> StoreFuture<'_, Result<(), HoldError>> {
        Box::pin(async move {
            let client = self.client()?;
            let (fps, counts): (Vec<String>, Vec<i32>) = plan
                .statements
                .iter()
                .map(|(f, (n, _))| (f.clone(), i32::try_from(*n).unwrap_or(i32::MAX)))
                .unzip();
            // One statement: the plan and its statements, a re-approval resetting
            // the counts.
            client
                .execute(
                    "WITH p AS ( \
                       INSERT INTO pgwarden.plans (id, target, db_user, application, \
                         not_before, not_after, approver) \
                       VALUES ($1, $2, $3, $4, to_timestamp($5), to_timestamp($6), $7) \
                       ON CONFLICT (id) DO UPDATE SET target = EXCLUDED.target, \
                         db_user = EXCLUDED.db_user, application = EXCLUDED.application, \
                         not_before = EXCLUDED.not_before, not_after = EXCLUDED.not_after, \
                         approver = EXCLUDED.approver, approved_at = now() \
                       RETURNING id) \
                     INSERT INTO pgwarden.plan_statements (plan, fingerprint, allowed) \
                     SELECT p.id, u.f, u.n FROM p, unnest($8::text[], $9::int4[]) AS u(f, n) \
                     ON CONFLICT (plan, fingerprint) DO UPDATE \
                       SET allowed = EXCLUDED.allowed, used = 0",
                    &[
                        &plan.id,
                        &plan.target,
                        &plan.user,
                        &plan.application,
                        &(plan.not_before as f64),
                        &(plan.not_after as f64),
                        &plan.approver,
                        &fps,
                        &counts,
                    ],
                )
                .await
                .map_err(|e| HoldError::Unavailable(e.to_string()))?;
            // This replica sees it at once (the others on the notification).
            let fresh = load_plans(&client).await.map_err(HoldError::Unavailable)?;
            self.set_plans(fresh);
            Ok(())
        })
    }

    fn revoke_plan(&self, id: &str) -> StoreFuture<'_, Result<bool, HoldError>> {
        let id = id.to_string();
        Box::pin(async move {
            let client = self.client()?;
            // The window ends now (the check keeps it after its start); claims
            // check the window in the database, and every replica's mirror reloads
            // on the notification.
            let n = client
                .execute(
                    "UPDATE pgwarden.plans \
                     SET not_after = greatest(now(), not_before + interval '1 millisecond') \
                     WHERE id = $1 AND not_after > now()",
                    &[&id],
                )
                .await
                .map_err(|e| HoldError::Unavailable(e.to_string()))?;
            let fresh = load_plans(&client).await.map_err(HoldError::Unavailable)?;
            self.set_plans(fresh);
            Ok(n > 0)
        })
    }

    fn plans(&self) -> StoreFuture<'_, Result<Vec<ApprovedPlan>, HoldError>> {
        Box::pin(async move {
            let client = self.client()?;
            load_plans(&client).await.map_err(HoldError::Unavailable)
        })
    }

    fn claim_plan(&self, request: &PlanRequest<'_>) -> PlanClaim {
        if self.client().is_err() {
            return PlanClaim::None;
        }
        let plan = {
            let mut mirror = self.plans.write().unwrap_or_else(|e| e.into_inner());
            let Some(p) = mirror.iter_mut().find(|p| p.covers(request)) else {
                return PlanClaim::None;
            };
            // Counted here too, so this replica does not ask for more runs than the
            // plan has before the database's count comes back.
            if let Some((_, used)) = p.statements.get_mut(request.fingerprint) {
                *used += 1;
            }
            p.clone()
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.writes.send(Write::Claim {
            plan: plan.id.clone(),
            fingerprint: request.fingerprint.to_string(),
            approver: plan.approver.clone(),
            reply: tx,
        });
        if sent.is_err() {
            return PlanClaim::None;
        }
        PlanClaim::Pending { plan, rx }
    }

    fn issue_token(
        &self,
        t: &TokenUse<'_>,
        ttl: Duration,
    ) -> Option<Result<tokio::sync::oneshot::Receiver<Resolution>, HoldError>> {
        // A token only this replica knew could be used on it and on no other: refuse
        // while the database cannot record it.
        if let Err(e) = self.client() {
            return Some(Err(e));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.writes.send(Write::IssueToken {
            token: t.token.to_string(),
            user: t.user.to_string(),
            target: t.target.to_string(),
            fingerprint: t.fingerprint.to_string(),
            ttl,
            reply: tx,
        });
        Some(
            sent.map(|()| rx)
                .map_err(|_| HoldError::Unavailable("the control task has stopped".into())),
        )
    }

    fn redeem_token(&self, t: &TokenUse<'_>) -> Option<tokio::sync::oneshot::Receiver<Resolution>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let w = Write::RedeemToken {
            token: t.token.to_string(),
            user: t.user.to_string(),
            target: t.target.to_string(),
            fingerprint: t.fingerprint.to_string(),
            reply: tx,
        };
        if self.client().is_err() {
            refuse_redemption(w, "the control database is unreachable");
        } else if let Err(mpsc::error::SendError(w)) = self.writes.send(w) {
            refuse_redemption(w, "the control task has stopped");
        }
        Some(rx)
    }

    fn start(self: Arc<Self>, queue: crate::hold::HoldQueue) {
        tokio::spawn(super::replica::run(self, queue));
    }
}

/// Answers a redemption that cannot be carried out: the token is refused.
pub fn refuse_redemption(w: Write, why: &str) {
    match w {
        Write::RedeemToken { token, reply, .. } => {
            let _ = reply.send(Resolution::Withdrawn {
                reason: format!("confirmation token {token} cannot be checked now: {why}"),
            });
        }
        Write::IssueToken { reply, .. } => {
            let _ = reply.send(Resolution::Withdrawn {
                reason: format!("the confirmation token could not be recorded: {why}"),
            });
        }
        _ => {}
    }
}

/// Approved plans whose window has not ended, with their counts.
pub async fn load_plans(client: &Client) -> Result<Vec<ApprovedPlan>, String> {
    let rows = client
        .query(
            "SELECT p.id, p.target, p.db_user, p.application, \
               extract(epoch FROM p.not_before)::int8, extract(epoch FROM p.not_after)::int8, \
               p.approver, s.fingerprint, s.allowed, s.used \
             FROM pgwarden.plans p JOIN pgwarden.plan_statements s ON s.plan = p.id \
             WHERE p.not_after > now() ORDER BY p.approved_at, p.id",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut out: Vec<ApprovedPlan> = Vec::new();
    for r in &rows {
        let id: String = r.get(0);
        let allowed: i32 = r.get(8);
        let used: i32 = r.get(9);
        let counts = (
            u32::try_from(allowed).unwrap_or(0),
            u32::try_from(used).unwrap_or(u32::MAX),
        );
        let fingerprint: String = r.get(7);
        if let Some(p) = out.last_mut().filter(|p| p.id == id) {
            p.statements.insert(fingerprint, counts);
            continue;
        }
        out.push(ApprovedPlan {
            id,
            target: r.get(1),
            user: r.get(2),
            application: r.get(3),
            not_before: r.get(4),
            not_after: r.get(5),
            approver: r.get(6),
            statements: [(fingerprint, counts)].into_iter().collect(),
        });
    }
    Ok(out)
}
