//! The relay's side of the impact probe: it sends pgwarden's own Query messages
//! around the client's statement (`impact::ProbePlan`), reads their replies itself
//! (none reaches the client), holds back the statement's replies until the guard
//! has decided on what it changed, and then either lets the effect stand and
//! passes the replies on (with the ReadyForQuery the client would have seen) or
//! rolls it back and carries out the guard's hold or refusal.
//!
//! The probe starts once the server owes the session nothing (replies to earlier
//! requests are relayed first): pgwarden's messages then cannot interleave with
//! the client's.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use std::task::Poll;

use super::extended::Unit;
use super::{End, Hooks, Relay, Side, Wake};
use crate::catalog::load;
use crate::impact::{Measured, ProbePlan, SavedSettings, Snapshot, Unknown};
use crate::protocol::{backend, frontend, originate, sqlstate::SqlState};
use crate::session::cancel::CancelSignal;
use crate::session::guard::{Decision, ProbeOrder, ProbeResult};
use crate::session::state::SessionState;

/// The most of a probed statement's replies pgwarden holds back; a statement whose
/// replies are larger is rolled back as "impact unknown".
pub(super) const HELD_REPLIES_MAX: usize = 16 * 1024 * 1024;
/// The most pgwarden reads of its own probe queries' replies.
const OWN_REPLIES_MAX: usize = 4 * 1024 * 1024;
/// How long past the probe's own statement_timeout pgwarden waits for the server
/// before it gives up on it (a server that stops answering).
pub(super) const SERVER_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The replies to one Query message, read up to its ReadyForQuery.
#[derive(Default)]
pub(super) struct Replies {
    /// Rows of each result, one entry per CommandComplete.
    pub(super) results: Vec<Vec<Vec<Option<String>>>>,
    rows: Vec<Vec<Option<String>>>,
    /// The last CommandComplete's tag.
    pub(super) tag: Option<String>,
    /// SQLSTATE of an ErrorResponse.
    pub(super) error: Option<String>,
    pub(super) status: u8,
    /// The messages as they came (when kept), and whether they outgrew the limit.
    pub(super) raw: BytesMut,
    pub(super) overflow: bool,
}

/// No hooks: the replies passed on after a probe carry no BackendKeyData.
pub(super) struct NoHooks;

impl Hooks for NoHooks {
    fn backend_key(&mut self, _: &SessionState, _: &std::sync::Arc<CancelSignal>) {}
}

pub(super) fn query_message(sql: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(sql.len() + 6);
    m.push(frontend::QUERY);
    m.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
    m.extend_from_slice(sql.as_bytes());
    m.push(0);
    m
}

/// A DataRow's columns as text (`None` for NULL); `None` when malformed.
fn data_row(body: &[u8]) -> Option<Vec<Option<String>>> {
    let n = i16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let mut at = 2usize;
    let mut out = Vec::with_capacity(usize::try_from(n).ok()?);
    for _ in 0..n {
        let len = i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = usize::try_from(len).ok()?;
        let v = body.get(at..at + len)?;
        at += len;
        out.push(Some(String::from_utf8_lossy(v).into_owned()));
    }
    Some(out)
}

/// The row count at the end of a command tag ("DELETE 5", "INSERT 0 5").
pub(super) fn tag_rows(tag: &str) -> Option<u64> {
    tag.rsplit(' ').next()?.parse().ok()
}

pub(super) fn as_refs(rows: &[Vec<Option<String>>]) -> Vec<Vec<Option<&str>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.as_deref()).collect())
        .collect()
}

impl Relay {
    /// Runs the impact probe for the simple Query in the first `total` bytes of
    /// `cbuf` and carries out the guard's decision on it.
    /// For an extended-protocol batch (`order.batch`), `total` is its first
    /// message's length; the batch is at the front of `cbuf`.
    pub(super) async fn probe(
        &mut self,
        mut order: Box<ProbeOrder>,
        total: usize,
    ) -> Result<(), End> {
        if order.multi.is_some() {
            return self.probe_multi(order, total).await;
        }
        let unit = match &order.batch {
            None => Unit::Query(total),
            Some(b) if self.cbuf.starts_with(&b.bytes) => Unit::Batch {
                total: b.bytes.len(),
                first: b.first_len,
                parsed: b.parse_name.clone(),
            },
            Some(_) => {
                // Not the batch that was measured (never expected): fail closed.
                let d = self.guard.ext_not_the_batch();
                return self.carry_out(d, total);
            }
        };
        if !self.wait_idle().await? {
            let why = "the server was still busy with this client's earlier requests";
            let decision = self
                .guard
                .after_probe(order, ProbeResult::NotRun(why.to_string()));
            return self.unrun(decision, &unit).await;
        }
        // Requests relayed meanwhile (a pipelined BEGIN) may have changed the
        // transaction status the plan was made for.
        if let Err(why) = order.in_status(self.core.state.tx_status) {
            let decision = self.guard.after_probe(order, ProbeResult::NotRun(why));
            return self.unrun(decision, &unit).await;
        }
        let mut pbuf = BytesMut::new();
        let timeout = order.plan.statement_timeout() + SERVER_GRACE;
        let order = if let Some(names) = &order.wants_catalog {
            // Keys and estimates: a statement bounded by a key needs no probe.
            let sql = format!(
                "{}; {}",
                load::tables_sql(Some(names)),
                load::keys_sql(Some(names))
            );
            let plan = order.plan.clone();
            let sets = self
                .read_catalog(&sql, 2, &plan, &mut pbuf, timeout)
                .await?;
            let refs = sets.as_ref().and_then(|s| match s.as_slice() {
                [tables, keys] => Some((as_refs(tables), as_refs(keys))),
                _ => None,
            });
            let rows = refs.as_ref().map(|(t, k)| (t.as_slice(), k.as_slice()));
            match self.guard.catalog_loaded(order, rows) {
                Ok(decision) => {
                    self.leftover(pbuf);
                    return self.unrun(decision, &unit).await;
                }
                Err(order) => order,
            }
        } else {
            order
        };
        let plan = order.plan.clone();

        // 1. Open pgwarden's savepoint (or transaction), read the counts before.
        let open = self
            .roundtrip(&query_message(&plan.open()), &mut pbuf, false, timeout)
            .await?;
        let opened = match (&open.error, open.results.as_slice()) {
            (None, [_, settings, counts, ..]) => settings
                .first()
                .and_then(|row| {
                    let refs: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
                    SavedSettings::from_row(&refs).map(|s| (s, row.get(2).cloned().flatten()))
                })
                .and_then(|(saved, track)| {
                    Snapshot::from_rows(&as_refs(counts))
                        .ok()
                        .map(|snap| (saved, track, snap))
                }),
            _ => None,
        };
        let Some((saved, track_counts, before)) = opened else {
            self.undo(&plan, &mut pbuf, timeout).await?;
            let why = match &open.error {
                Some(code) => format!("pgwarden's probe could not start (SQLSTATE {code})"),
                None => "pgwarden's probe could not read the server's counters".to_string(),
            };
            let decision = self.guard.after_probe(order, ProbeResult::NotRun(why));
            return self.unrun(decision, &unit).await;
        };

        // 2. The client's statement, its replies held back.
        let stmt = match &order.batch {
            Some(b) => b.bytes.clone(),
            None => self.cbuf[..total].to_vec(),
        };
        let started = std::time::Instant::now();
        let mut ran = self.roundtrip(&stmt, &mut pbuf, true, timeout).await?;
        if let Some(code) = ran.error.clone() {
            // The client's own statement_timeout cannot fire: the probe's SET LOCAL
            // replaces it.
            if plan.own_timeout(&code, started.elapsed()) {
                // The probe's own timeouts: rolled back, impact unknown.
                self.undo_unit(&plan, &unit, &mut pbuf, timeout).await?;
                let m = Measured::Unknown(Unknown::from_sqlstate(&code));
                let decision = self.guard.after_probe(order, ProbeResult::Measured(m));
                return self.unrun(decision, &unit).await;
            }
            // The statement failed by itself: the client gets the server's error.
            let decision = self.guard.after_probe(order, ProbeResult::Failed);
            return self
                .failed_unit(
                    ran.raw,
                    pbuf,
                    plan.in_transaction(),
                    decision,
                    &unit,
                    timeout,
                )
                .await;
        }
        if ran.overflow {
            self.undo_unit(&plan, &unit, &mut pbuf, timeout).await?;
            let m = Measured::Unknown(Unknown::Unreadable(
                "the statement's result is larger than pgwarden holds back".to_string(),
            ));
            let decision = self.guard.after_probe(order, ProbeResult::Measured(m));
            return self.unrun(decision, &unit).await;
        }

        // 3. What it changed.
        let after = self
            .roundtrip(&query_message(&plan.measure()), &mut pbuf, false, timeout)
            .await?;
        let measured = match (&after.error, after.results.first()) {
            (None, Some(rows)) => Measured::from_rows(
                &before,
                &as_refs(rows),
                track_counts.as_deref(),
                ran.tag.as_deref().and_then(tag_rows),
            ),
            (Some(code), _) => Measured::Unknown(Unknown::Failed(code.clone())),
            (None, None) => Measured::Unknown(Unknown::Unreadable("no counts".to_string())),
        };
        if let Measured::Unknown(_) = measured {
            self.undo_unit(&plan, &unit, &mut pbuf, timeout).await?;
            let decision = self
                .guard
                .after_probe(order, ProbeResult::Measured(measured));
            return self.unrun(decision, &unit).await;
        }

        // 4. Decide; keep it or undo it.
        let decision = self
            .guard
            .after_probe(order, ProbeResult::Measured(measured));
        let extended = matches!(unit, Unit::Batch { .. });
        let decision = self.audited(decision, extended).await;
        if let Decision::Forward(_) = decision {
            let kept = self
                .roundtrip(&query_message(&plan.keep(&saved)), &mut pbuf, true, timeout)
                .await?;
            if let Some(code) = &kept.error {
                // COMMIT failed (a deferred constraint): as directly, the client
                // sees the commit's error in place of the command tag (PostgreSQL
                // commits an implicit transaction before reporting the command).
                tracing::info!(sqlstate = %code, "probed statement failed at commit");
                drop_command_tags(&mut ran.raw);
            }
            // Notices of deferred triggers, and the error, before ReadyForQuery.
            insert_before_ready(&mut ran.raw, &kept.raw);
            set_status(&mut ran.raw, kept.status);
            return self.deliver_unit(ran.raw, pbuf, &unit);
        }
        self.undo_unit(&plan, &unit, &mut pbuf, timeout).await?;
        self.leftover(pbuf);
        self.carry_unit(decision, &unit)
    }

    /// Whether the server owes this session nothing, so pgwarden's own messages
    /// cannot interleave with replies to the client's.
    fn server_idle(&self) -> bool {
        self.core.server_owes_nothing()
            && self.to_server.is_empty()
            && self.sbuf.is_empty()
            && self.server_skip == 0
            && self.server_discard == 0
    }

    /// Relays the replies to requests already in flight (clients send their next
    /// Query as soon as they have read an error, before its ReadyForQuery) until the
    /// server owes nothing; `false` if that takes longer than pgwarden waits.
    pub(super) async fn wait_idle(&mut self) -> Result<bool, End> {
        let work = async {
            while !self.server_idle() {
                let wake = std::future::poll_fn(|cx| {
                    if let Err(e) = super::drain(
                        &mut self.server,
                        cx,
                        &mut self.to_server,
                        &mut self.server_dirty,
                        &mut self.server_spill,
                    ) {
                        return Poll::Ready(Err(End::ServerError(e)));
                    }
                    if let Err(e) = super::drain(
                        &mut self.client,
                        cx,
                        &mut self.to_client,
                        &mut self.client_dirty,
                        &mut self.client_spill,
                    ) {
                        return Poll::Ready(Err(End::ClientError(e)));
                    }
                    self.poll_read(Side::Server, cx)
                })
                .await?;
                match wake {
                    Wake::Server => self.process_server(&mut NoHooks)?,
                    Wake::ServerEof => return Err(End::ServerClosed),
                    Wake::Client | Wake::ClientEof => {}
                }
            }
            Ok(())
        };
        match tokio::time::timeout(SERVER_GRACE, work).await {
            Ok(r) => r.map(|()| true),
            Err(_) => Ok(false),
        }
    }

    /// The statement did not run (or was rolled back): carry out the decision as
    /// for any statement, `Forward` sending it to the server as it is.
    pub(super) async fn decided_unrun(
        &mut self,
        decision: Decision,
        total: usize,
    ) -> Result<(), End> {
        let decision = self.audited(decision, false).await;
        self.carry_out(decision, total)
    }

    /// Rolls back to pgwarden's savepoint (or its transaction). If that fails the
    /// client's transaction is in a state pgwarden cannot vouch for: the session ends.
    pub(super) async fn undo(
        &mut self,
        plan: &ProbePlan,
        pbuf: &mut BytesMut,
        timeout: std::time::Duration,
    ) -> Result<(), End> {
        let r = self
            .roundtrip(&query_message(&plan.undo()), pbuf, false, timeout)
            .await?;
        match r.error {
            None => Ok(()),
            Some(code) => {
                tracing::error!(sqlstate = %code, "impact probe: rollback failed; closing the session");
                self.to_client.extend_from_slice(&originate::fatal(
                    SqlState::INTERNAL_ERROR,
                    "pgwarden could not roll back its impact probe and closed the session",
                ));
                self.terminate_server();
                Err(End::ServerProtocol(format!(
                    "probe rollback failed: {code}"
                )))
            }
        }
    }

    /// The statement pgwarden ran failed by itself (the probe's or the trash's):
    /// the client gets the server's error, and its session is where the server
    /// would leave it. Outside a transaction pgwarden's own is ended (status I, as
    /// for a failed autocommit statement); inside one the transaction stays failed
    /// (E), pgwarden's savepoint with it, as a client savepoint would be.
    pub(super) async fn deliver_failed(
        &mut self,
        mut raw: BytesMut,
        mut pbuf: BytesMut,
        in_transaction: bool,
        decision: Decision,
        total: usize,
        timeout: std::time::Duration,
    ) -> Result<(), End> {
        if !in_transaction {
            let end = self
                .roundtrip(&query_message("ROLLBACK"), &mut pbuf, false, timeout)
                .await?;
            set_status(&mut raw, end.status);
        }
        // The decision forwards nothing (the server's error is what the client
        // gets); it is audited for the record only.
        let _ = self.audited(decision, false).await;
        self.deliver(raw, pbuf, total)
    }

    /// Hands the held replies of the statement to the normal server path, as if
    /// the server had just sent them in answer to the client's Query.
    pub(super) fn deliver(
        &mut self,
        raw: BytesMut,
        pbuf: BytesMut,
        total: usize,
    ) -> Result<(), End> {
        bytes::Buf::advance(&mut self.cbuf, total);
        self.core.probed_delivered(std::time::Instant::now());
        let mut front = raw;
        front.extend_from_slice(&pbuf);
        front.extend_from_slice(&self.sbuf);
        self.sbuf = front;
        self.process_server(&mut NoHooks)
    }

    /// Whatever the server sent after pgwarden's last reply (asynchronous notices)
    /// goes the normal way.
    pub(super) fn leftover(&mut self, pbuf: BytesMut) {
        if !pbuf.is_empty() {
            let mut front = pbuf;
            front.extend_from_slice(&self.sbuf);
            self.sbuf = front;
        }
    }

    /// Sends one Query message of pgwarden's and reads its replies up to
    /// ReadyForQuery; with `keep`, the messages are kept as they came.
    pub(super) async fn roundtrip(
        &mut self,
        msg: &[u8],
        pbuf: &mut BytesMut,
        keep: bool,
        timeout: std::time::Duration,
    ) -> Result<Replies, End> {
        let work = async {
            self.server.write_all(msg).await.map_err(End::ServerError)?;
            self.server.flush().await.map_err(End::ServerError)?;
            let mut r = Replies::default();
            let mut size = 0usize;
            loop {
                let m = match crate::protocol::frame::split_next(pbuf, super::SERVER_MAX_MESSAGE) {
                    Ok(Some(m)) => m,
                    Ok(None) => {
                        pbuf.reserve(super::READ_CHUNK);
                        let n = self.server.read_buf(pbuf).await.map_err(End::ServerError)?;
                        if n == 0 {
                            return Err(End::ServerClosed);
                        }
                        self.bytes_out.inc_by(n as u64);
                        continue;
                    }
                    Err(e) => return Err(End::ServerProtocol(e.to_string())),
                };
                size = size.saturating_add(m.as_bytes().len());
                match m.tag() {
                    backend::DATA_ROW if !keep => {
                        if size > OWN_REPLIES_MAX {
                            return Err(End::ServerProtocol("probe reply too large".into()));
                        }
                        match data_row(m.body()) {
                            Some(row) => r.rows.push(row),
                            None => return Err(End::ServerProtocol("malformed DataRow".into())),
                        }
                    }
                    backend::COMMAND_COMPLETE => {
                        r.tag = Some(
                            String::from_utf8_lossy(m.body())
                                .trim_end_matches('\0')
                                .to_string(),
                        );
                        r.results.push(std::mem::take(&mut r.rows));
                    }
                    backend::ERROR_RESPONSE => {
                        r.error = Some(
                            backend::sqlstate(m.body())
                                .unwrap_or_else(|| SqlState::INTERNAL_ERROR.as_str().to_string()),
                        );
                    }
                    backend::COPY_IN_RESPONSE
                    | backend::COPY_OUT_RESPONSE
                    | backend::COPY_BOTH_RESPONSE => {
                        return Err(End::ServerProtocol("COPY inside a probed statement".into()));
                    }
                    _ => {}
                }
                if keep {
                    if size <= HELD_REPLIES_MAX {
                        r.raw.extend_from_slice(m.as_bytes());
                    } else {
                        r.overflow = true;
                    }
                }
                if m.tag() == backend::READY_FOR_QUERY {
                    r.status = backend::ready_status(m.body()).unwrap_or(b'E');
                    if keep && r.overflow {
                        r.raw.clear();
                    }
                    return Ok(r);
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => {
                self.to_client.extend_from_slice(&originate::fatal(
                    SqlState::CONNECTION_FAILURE,
                    "the server did not answer pgwarden's impact probe in time",
                ));
                Err(End::ServerProtocol(
                    "probe: no answer from the server".into(),
                ))
            }
        }
    }
}

/// Sets the status byte of the ReadyForQuery that ends `raw`.
pub(super) fn set_status(raw: &mut BytesMut, status: u8) {
    if raw.len() >= 6 && raw[raw.len() - 6] == backend::READY_FOR_QUERY {
        let last = raw.len() - 1;
        raw[last] = status;
    }
}

/// Removes the CommandComplete messages from `raw`.
fn drop_command_tags(raw: &mut BytesMut) {
    let mut rest = std::mem::take(raw);
    while let Ok(Some(m)) = crate::protocol::frame::split_next(&mut rest, usize::MAX) {
        if m.tag() != backend::COMMAND_COMPLETE {
            raw.extend_from_slice(m.as_bytes());
        }
    }
}

/// Puts the messages of `extra` before `raw`'s final ReadyForQuery (only its
/// ErrorResponse and notices: not its own ReadyForQuery or command tags).
pub(super) fn insert_before_ready(raw: &mut BytesMut, extra: &[u8]) {
    let mut picked = Vec::new();
    let mut rest = BytesMut::from(extra);
    while let Ok(Some(m)) = crate::protocol::frame::split_next(&mut rest, usize::MAX) {
        if matches!(m.tag(), backend::ERROR_RESPONSE | backend::NOTICE_RESPONSE) {
            picked.extend_from_slice(m.as_bytes());
        }
    }
    if raw.len() >= 6 {
        let ready = raw.split_off(raw.len() - 6);
        raw.extend_from_slice(&picked);
        raw.extend_from_slice(&ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_rows_and_tags_are_read() {
        let mut body = vec![0, 2];
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"42");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(data_row(&body), Some(vec![Some("42".into()), None]));
        assert_eq!(data_row(&body[..5]), None);
        assert_eq!(tag_rows("DELETE 5"), Some(5));
        assert_eq!(tag_rows("INSERT 0 7"), Some(7));
        assert_eq!(tag_rows("MERGE 3"), Some(3));
        assert_eq!(tag_rows("SELECT"), None);
    }

    #[test]
    fn the_final_ready_for_query_is_rewritten() {
        let mut raw = BytesMut::from(&b"C\0\0\0\x0dDELETE 5\0Z\0\0\0\x05T"[..]);
        set_status(&mut raw, b'I');
        assert_eq!(raw.last(), Some(&b'I'));
        let err = originate::report(&originate::Report::new(
            originate::Severity::Error,
            SqlState::INTERNAL_ERROR,
            "x",
        ));
        let mut extra = BytesMut::from(&err[..]);
        extra.extend_from_slice(b"Z\0\0\0\x05I");
        insert_before_ready(&mut raw, &extra);
        assert!(raw.ends_with(b"Z\0\0\0\x05I"));
        assert_eq!(raw.len(), 14 + err.len() + 6);
    }
}
