//! The relay's side of measuring a simple Query message of several statements
//! (`guard/multi.rs` decides which): inside pgwarden's transaction (or, inside the
//! client's, its savepoint) the statements are sent one by one, each as its own
//! Query; pgwarden consumes the ReadyForQuery after each, and measures each
//! measured statement at its position (the counts just before and just after it).
//! Every reply is held back until the end. Then either the whole effect stands
//! (COMMIT or RELEASE, and the client gets every statement's replies and one
//! ReadyForQuery, as from the server), or it is rolled back: a refusal gives the
//! client the replies of the statements before the refused one and then
//! pgwarden's error, as the server gives the results before an error; a hold holds
//! the whole message, and its approval runs it all again.

use bytes::BytesMut;

use super::extended::Unit;
use super::probe::{
    as_refs, insert_before_ready, query_message, tag_rows, HELD_REPLIES_MAX, SERVER_GRACE,
};
use super::{End, Relay};
use crate::impact::{Measured, ProbePlan, SavedSettings, Snapshot, Unknown};
use crate::protocol::{backend, frame};
use crate::session::guard::{Decision, MultiEnd, ProbeOrder, ProbeResult};

impl Relay {
    /// Runs the message of several statements in the first `total` bytes of
    /// `cbuf` as `order` says and carries out the guard's decision on it.
    pub(super) async fn probe_multi(
        &mut self,
        mut order: Box<ProbeOrder>,
        total: usize,
    ) -> Result<(), End> {
        let unit = Unit::Query(total);
        if !self.wait_idle().await? {
            let why = "the server was still busy with this client's earlier requests";
            let d = self.guard.after_multi(order, MultiEnd::NotRun(why.into()));
            return self.unrun(d, &unit).await;
        }
        let status = self.core.state.tx_status;
        if let Err(why) = order.in_status(status) {
            let d = self.guard.after_multi(order, MultiEnd::NotRun(why));
            return self.unrun(d, &unit).await;
        }
        let (lead, tail) = order
            .multi
            .as_ref()
            .map(|m| (m.lead.clone(), m.tail.clone()))
            .unwrap_or_default();
        let plan = order.plan.clone();
        let timeout = plan.statement_timeout() + SERVER_GRACE;
        let mut pbuf = BytesMut::new();
        let mut held = BytesMut::new();
        // The client's BEGIN opened the transaction the message runs in: undoing
        // the message (for a hold, or to forward it as it is) rolls that back too.
        let opened = lead.is_some() && status == b'I';
        let scope = Scope {
            plan: plan.clone(),
            opened,
            timeout,
        };

        // 0. The client's BEGIN, exactly as it wrote it (inside its transaction
        //    the server warns, as it would in the message).
        if let Some((sql, offset)) = &lead {
            let mut ran = self
                .roundtrip(&query_message(sql), &mut pbuf, true, timeout)
                .await?;
            shift_positions(&mut ran.raw, *offset);
            if ran.error.is_some() {
                // Failed by itself: the server's error and status, and nothing
                // after it runs, as directly.
                let d = self.guard.after_multi(order, MultiEnd::Failed);
                return self
                    .deliver_failed(ran.raw, pbuf, true, d, total, timeout)
                    .await;
            }
            drop_ready(&mut ran.raw);
            held.extend_from_slice(&ran.raw);
        }

        // 1. pgwarden's transaction (or savepoint) and the probe's timeouts, for
        //    the whole message: its locks are held until it is judged.
        let open = self
            .roundtrip(
                &query_message(&plan.open_timed()),
                &mut pbuf,
                false,
                timeout,
            )
            .await?;
        let opened_probe = match (&open.error, open.results.as_slice()) {
            (None, [_, settings, ..]) => settings.first().and_then(|row| {
                let refs: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
                SavedSettings::from_row(&refs).map(|s| (s, row.get(2).cloned().flatten()))
            }),
            _ => None,
        };
        let Some((saved, track_counts)) = opened_probe else {
            self.undo_message(&scope, &mut pbuf).await?;
            let why = "pgwarden's probe could not start".to_string();
            let d = self.guard.after_multi(order, MultiEnd::NotRun(why));
            return self.unrun(d, &unit).await;
        };

        // 2. The statements, one by one.
        let parts: Vec<(String, usize, bool, usize)> = order
            .multi
            .as_ref()
            .map(|m| {
                m.parts
                    .iter()
                    .map(|p| (p.sql.clone(), p.offset, p.measured(), p.position))
                    .collect()
            })
            .unwrap_or_default();
        let count = order.multi.as_ref().map_or(0, |m| m.count());
        let mut impacts = Vec::new();
        for (i, (sql, offset, measured, position)) in parts.into_iter().enumerate() {
            let before = if measured {
                let r = self
                    .roundtrip(&query_message(&plan.counts()), &mut pbuf, false, timeout)
                    .await?;
                match (&r.error, r.results.first()) {
                    (None, Some(rows)) => Snapshot::from_rows(&as_refs(rows)).ok(),
                    _ => None,
                }
            } else {
                None
            };
            if measured && before.is_none() {
                self.undo_message(&scope, &mut pbuf).await?;
                let m = Measured::Unknown(Unknown::Unreadable("no counts".into()));
                let end = MultiEnd::Stopped(i, ProbeResult::Measured(m));
                let d = self.guard.after_multi(order, end);
                return self.unrun(d, &unit).await;
            }
            let started = std::time::Instant::now();
            let mut ran = self
                .roundtrip(&query_message(&sql), &mut pbuf, true, timeout)
                .await?;
            shift_positions(&mut ran.raw, offset);
            if let Some(code) = ran.error.clone() {
                if plan.own_timeout(&code, started.elapsed()) {
                    self.undo_message(&scope, &mut pbuf).await?;
                    let why = Unknown::from_sqlstate(&code).describe();
                    let m = Measured::Unknown(Unknown::from_sqlstate(&code));
                    let end = if measured {
                        MultiEnd::Stopped(i, ProbeResult::Measured(m))
                    } else {
                        MultiEnd::NotRun(format!("statement {} of {count}: {why}", position + 1))
                    };
                    let d = self.guard.after_multi(order, end);
                    return self.unrun(d, &unit).await;
                }
                // Failed by itself: what the server sent so far, then its error
                // (the later statements do not run, as directly). After the
                // client's BEGIN the transaction stays failed, as directly.
                held.extend_from_slice(&ran.raw);
                let d = self.guard.after_multi(order, MultiEnd::Failed);
                return self
                    .deliver_failed(held, pbuf, plan.in_transaction(), d, total, timeout)
                    .await;
            }
            if ran.overflow || held.len() + ran.raw.len() > HELD_REPLIES_MAX {
                self.undo_message(&scope, &mut pbuf).await?;
                let why = "the message's results are larger than pgwarden holds back";
                let d = self.guard.after_multi(order, MultiEnd::NotRun(why.into()));
                return self.unrun(d, &unit).await;
            }
            drop_ready(&mut ran.raw);
            let Some(before) = before else {
                held.extend_from_slice(&ran.raw);
                continue;
            };
            let after = self
                .roundtrip(&query_message(&plan.measure()), &mut pbuf, false, timeout)
                .await?;
            let m = match (&after.error, after.results.first()) {
                (None, Some(rows)) => Measured::from_rows(
                    &before,
                    &as_refs(rows),
                    track_counts.as_deref(),
                    ran.tag.as_deref().and_then(tag_rows),
                ),
                (Some(code), _) => Measured::Unknown(Unknown::Failed(code.clone())),
                (None, None) => Measured::Unknown(Unknown::Unreadable("no counts".into())),
            };
            if !self.guard.multi_stands(&order, i, &m) {
                self.undo(&plan, &mut pbuf, timeout).await?;
                let d = self
                    .guard
                    .after_multi(order, MultiEnd::Stopped(i, ProbeResult::Measured(m)));
                if matches!(d, Decision::Refuse(_)) {
                    // As after an error at this statement: the results before it
                    // (the client's BEGIN included, whose transaction the refusal
                    // leaves failed, as an error there would).
                    self.to_client.extend_from_slice(&held);
                } else {
                    self.undo_lead(&scope, &mut pbuf).await?;
                }
                self.leftover(pbuf);
                return self.unrun(d, &unit).await;
            }
            // It may stand: its replies (rows, RETURNING rows, tag) go with the
            // others; a refused statement's never reach the client.
            held.extend_from_slice(&ran.raw);
            if let Measured::Known(impact) = m {
                impacts.push((i, impact));
            }
        }

        // 3. Every statement may stand: keep it all.
        let d = self.guard.after_multi(order, MultiEnd::Kept(impacts));
        let d = self.audited(d, false).await;
        if let Decision::Forward(_) = d {
            let Some((sql, offset)) = &tail else {
                let kept = self
                    .roundtrip(&query_message(&plan.keep(&saved)), &mut pbuf, true, timeout)
                    .await?;
                if let Some(code) = &kept.error {
                    // COMMIT failed (a deferred constraint): the server commits a
                    // message's implicit transaction before its last command tag,
                    // and sends the error in that tag's place.
                    tracing::info!(sqlstate = %code, "measured message failed at commit");
                    drop_last_tag(&mut held);
                }
                held.extend_from_slice(&[backend::READY_FOR_QUERY, 0, 0, 0, 5, kept.status]);
                insert_before_ready(&mut held, &kept.raw);
                return self.deliver(held, pbuf, total);
            };
            // The client's own COMMIT ends it (pgwarden's savepoint and SET LOCALs
            // with it): its tag, or the error of a deferred constraint, and the
            // status are the server's.
            let mut kept = self
                .roundtrip(&query_message(sql), &mut pbuf, true, timeout)
                .await?;
            shift_positions(&mut kept.raw, *offset);
            if let Some(code) = &kept.error {
                tracing::info!(sqlstate = %code, "measured message failed at its COMMIT");
            }
            held.extend_from_slice(&kept.raw);
            return self.deliver(held, pbuf, total);
        }
        self.undo_message(&scope, &mut pbuf).await?;
        self.leftover(pbuf);
        self.carry_out(d, total)
    }

    /// Rolls back pgwarden's savepoint (or transaction) and, when the message's own
    /// BEGIN opened the transaction, that transaction: the session is as it was
    /// before the message.
    async fn undo_message(&mut self, scope: &Scope, pbuf: &mut BytesMut) -> Result<(), End> {
        self.undo(&scope.plan, pbuf, scope.timeout).await?;
        self.undo_lead(scope, pbuf).await
    }

    /// Rolls back the transaction the message's BEGIN opened, if it did.
    async fn undo_lead(&mut self, scope: &Scope, pbuf: &mut BytesMut) -> Result<(), End> {
        if !scope.opened {
            return Ok(());
        }
        // Outside a transaction the plan's undo is a plain ROLLBACK.
        let idle = scope.plan.with_transaction(false);
        self.undo(&idle, pbuf, scope.timeout).await
    }
}

/// Where a measured message runs: pgwarden's plan, whether the client's BEGIN of
/// the message opened the transaction, and how long pgwarden waits for replies.
struct Scope {
    plan: ProbePlan,
    opened: bool,
    timeout: std::time::Duration,
}

/// Removes the ReadyForQuery messages from `raw` (one statement's replies).
fn drop_ready(raw: &mut BytesMut) {
    let mut rest = std::mem::take(raw);
    while let Ok(Some(m)) = frame::split_next(&mut rest, usize::MAX) {
        if m.tag() != backend::READY_FOR_QUERY {
            raw.extend_from_slice(m.as_bytes());
        }
    }
}

/// Removes the last CommandComplete from `raw`.
fn drop_last_tag(raw: &mut BytesMut) {
    let mut rest = std::mem::take(raw);
    let mut msgs = Vec::new();
    while let Ok(Some(m)) = frame::split_next(&mut rest, usize::MAX) {
        msgs.push(m);
    }
    let last = msgs
        .iter()
        .rposition(|m| m.tag() == backend::COMMAND_COMPLETE);
    for (i, m) in msgs.iter().enumerate() {
        if Some(i) != last {
            raw.extend_from_slice(m.as_bytes());
        }
    }
}

/// Adds `offset` to the position (`P`) of each error and notice in `raw`: the
/// server counts it from the start of the Query message, and each statement went
/// in a message of its own.
fn shift_positions(raw: &mut BytesMut, offset: usize) {
    if offset == 0 {
        return;
    }
    let mut rest = std::mem::take(raw);
    while let Ok(Some(m)) = frame::split_next(&mut rest, usize::MAX) {
        let tag = m.tag();
        if !matches!(tag, backend::ERROR_RESPONSE | backend::NOTICE_RESPONSE) {
            raw.extend_from_slice(m.as_bytes());
            continue;
        }
        match shifted(m.body(), offset) {
            Some(body) => {
                raw.extend_from_slice(&[tag]);
                raw.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
                raw.extend_from_slice(&body);
            }
            None => raw.extend_from_slice(m.as_bytes()),
        }
    }
}

/// An error or notice body with its `P` field moved by `offset`; `None` if it has
/// none or is malformed.
fn shifted(body: &[u8], offset: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + 4);
    let mut at = 0;
    let mut changed = false;
    while let Some(&code) = body.get(at) {
        if code == 0 {
            out.push(0);
            return changed.then_some(out);
        }
        let end = at + 1 + body.get(at + 1..)?.iter().position(|&b| b == 0)?;
        let value = body.get(at + 1..end)?;
        out.push(code);
        if code == b'P' {
            let n: usize = std::str::from_utf8(value).ok()?.parse().ok()?;
            out.extend_from_slice((n + offset).to_string().as_bytes());
            changed = true;
        } else {
            out.extend_from_slice(value);
        }
        out.push(0);
        at = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn error_positions_count_from_the_start_of_the_message() {
        let err = msg(b'E', b"SERROR\0C42703\0Mno such column\0P8\0\0");
        let mut raw = BytesMut::from(&err[..]);
        raw.extend_from_slice(&msg(b'Z', b"I"));
        shift_positions(&mut raw, 30);
        let want = msg(b'E', b"SERROR\0C42703\0Mno such column\0P38\0\0");
        assert!(raw.starts_with(&want), "{raw:?}");
        assert!(raw.ends_with(&msg(b'Z', b"I")));
        // Without a position, or malformed: unchanged.
        let plain = msg(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0");
        let mut raw = BytesMut::from(&plain[..]);
        shift_positions(&mut raw, 30);
        assert_eq!(&raw[..], &plain[..]);
    }

    #[test]
    fn ready_and_last_tag_are_removed() {
        let mut raw = BytesMut::new();
        raw.extend_from_slice(&msg(b'C', b"DELETE 1\0"));
        raw.extend_from_slice(&msg(b'Z', b"T"));
        drop_ready(&mut raw);
        assert_eq!(&raw[..], &msg(b'C', b"DELETE 1\0")[..]);
        raw.extend_from_slice(&msg(b'C', b"UPDATE 2\0"));
        drop_last_tag(&mut raw);
        assert_eq!(&raw[..], &msg(b'C', b"DELETE 1\0")[..]);
    }
}
