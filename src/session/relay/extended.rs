//! The relay's side of probing the extended protocol: at the start of a batch whose
//! first message is a Parse or Bind, it frames the whole batch (up to its Sync),
//! and if the guard measures it (`guard/extended.rs`) runs it as one unit inside
//! pgwarden's savepoint or transaction (`relay/probe.rs`): pgwarden's own Query
//! messages go before the batch, never between its messages, and the batch's
//! replies are held back until the guard has decided.

use bytes::BytesMut;

use super::{End, Relay};
use crate::protocol::{frame, frontend};
use crate::session::guard::{self, BatchPlan, Decision, Msg, Permit};

/// The most of a batch pgwarden waits for before deciding message by message.
const BATCH_MAX: usize = 1024 * 1024;

/// What `process_client` does with the message at the front of the client's buffer.
pub(super) enum BatchStep {
    /// Decide it on its own, as always.
    Each,
    /// The batch is not whole yet and may need measuring: read more first.
    Wait,
    /// The whole batch was carried out (or its first message refused or held).
    Done,
}

/// What a probe consumes of the client's buffer: one simple Query (`total` bytes)
/// or one extended-protocol batch.
#[derive(Debug, Clone)]
pub(super) enum Unit {
    Query(usize),
    Batch {
        total: usize,
        /// The first message's length: a refusal or hold applies to it.
        first: usize,
        /// The statement the batch's Parse created (closed again if rolled back).
        parsed: Option<String>,
    },
}

/// How the front of `buf` frames: a whole batch of `len` bytes ending in a Sync,
/// or not yet (`other`: a message came first that is no part of the measured
/// shape, e.g. a Flush, after which the client may wait for replies).
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    Whole(usize),
    Partial { other: bool },
    Bad,
}

fn scan(buf: &[u8], max: usize) -> Scan {
    let mut at = 0;
    let mut other = false;
    loop {
        match frame::next(&buf[at..], max) {
            Ok(Some(f)) => {
                at += f.total();
                match f.tag() {
                    frontend::SYNC => return Scan::Whole(at),
                    frontend::PARSE | frontend::BIND | frontend::DESCRIBE | frontend::EXECUTE => {}
                    _ => other = true,
                }
            }
            Ok(None) => return Scan::Partial { other },
            Err(_) => return Scan::Bad,
        }
    }
}

/// The messages of a whole batch.
fn messages(bytes: &[u8]) -> Vec<Msg<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(Some(f)) = frame::next(&bytes[at..], usize::MAX) {
        at += f.total();
        out.push((f.tag(), f.body()));
    }
    out
}

impl Relay {
    /// At the start of a batch (`tag` its first message's type): measure or decide
    /// the whole batch, wait for the rest of it, or let `process_client` decide
    /// message by message.
    pub(super) async fn extended_batch(&mut self, tag: u8) -> Result<BatchStep, End> {
        if !matches!(tag, frontend::PARSE | frontend::BIND) || !self.guard.ext_at_start() {
            return Ok(BatchStep::Each);
        }
        let len = match scan(&self.cbuf, self.max_message) {
            Scan::Whole(len) if len <= BATCH_MAX => len,
            Scan::Partial { other: false } if self.cbuf.len() < BATCH_MAX => {
                // A client sends no more than this without a Sync or Flush only if
                // it waits for nothing: the server would not answer either.
                let first = match frame::next(&self.cbuf, self.max_message) {
                    Ok(Some(f)) => (f.tag(), f.body()),
                    _ => return Ok(BatchStep::Each),
                };
                let wants = self.guard.ext_may_want(first, &self.core.state);
                return Ok(if wants {
                    BatchStep::Wait
                } else {
                    BatchStep::Each
                });
            }
            _ => return Ok(BatchStep::Each),
        };
        let bytes = self.cbuf[..len].to_vec();
        if !self.guard.ext_wants(&messages(&bytes), &self.core.state) {
            return Ok(BatchStep::Each);
        }
        // The transaction status must be current and pgwarden's messages must not
        // interleave with replies still due: the server owes nothing first.
        if !self.wait_idle().await? {
            return Ok(BatchStep::Each);
        }
        let msgs = messages(&bytes);
        let first = msgs.first().map_or(0, |(_, body)| body.len() + 5);
        match self.guard.ext_batch(&msgs, &bytes, &self.core.state) {
            BatchPlan::Each => Ok(BatchStep::Each),
            BatchPlan::Probe(order) => {
                self.run_probe(order, first).await?;
                Ok(BatchStep::Done)
            }
            BatchPlan::Decided(d) => {
                let d = self.audited(d, true).await;
                self.carry_unit(
                    d,
                    &Unit::Batch {
                        total: len,
                        first,
                        parsed: None,
                    },
                )?;
                Ok(BatchStep::Done)
            }
        }
    }

    /// Carries out a decision on what `unit` consumes: a batch is forwarded whole,
    /// or its first message refused or held (the rest follows as after any refusal
    /// or hold: skipped to Sync, or waiting behind the hold).
    pub(super) fn carry_unit(&mut self, decision: Decision, unit: &Unit) -> Result<(), End> {
        match (unit, decision) {
            (Unit::Query(total), d) => self.carry_out(d, *total),
            (Unit::Batch { total, .. }, Decision::Forward(permit)) => {
                self.forward_batch(permit, *total);
                Ok(())
            }
            (Unit::Batch { first, .. }, d) => {
                self.guard.ext_decided(&d);
                self.carry_out(d, *first)
            }
        }
    }

    /// [`Relay::decided_unrun`] for a unit.
    pub(super) async fn unrun(&mut self, decision: Decision, unit: &Unit) -> Result<(), End> {
        match unit {
            Unit::Query(total) => self.decided_unrun(decision, *total).await,
            Unit::Batch { .. } => {
                let decision = self.audited(decision, true).await;
                self.carry_unit(decision, unit)
            }
        }
    }

    /// Forwards the whole batch in the first `total` bytes of `cbuf`, decided as one.
    fn forward_batch(&mut self, permit: Permit, total: usize) {
        let batch = self.cbuf.split_to(total);
        self.book_batch(&batch);
        self.forward(permit, batch);
        self.guard.ext_forwarded();
    }

    /// The core's bookkeeping for each message of a batch that went (or goes) to
    /// the server as one decision: the replies it expects, the audited statement
    /// whose outcome the Sync reports.
    fn book_batch(&mut self, batch: &[u8]) {
        let id = self.core.audit.current.take();
        let now = std::time::Instant::now();
        for (tag, body) in messages(batch) {
            if tag == frontend::SYNC {
                if let Some(id) = id {
                    self.core.audit.segment.push(id);
                }
            }
            // The batch was decided as a whole; the permit only books the message.
            let _ = self
                .core
                .carry_out(Decision::Forward(guard::internal()), tag, body, now);
        }
    }

    /// [`Relay::deliver`] for a unit: a batch's held replies are passed on as the
    /// answer to its messages.
    pub(super) fn deliver_unit(
        &mut self,
        raw: BytesMut,
        pbuf: BytesMut,
        unit: &Unit,
    ) -> Result<(), End> {
        match unit {
            Unit::Query(total) => self.deliver(raw, pbuf, *total),
            Unit::Batch { total, .. } => {
                let batch = self.cbuf.split_to(*total);
                self.book_batch(&batch);
                self.guard.ext_forwarded();
                let mut front = raw;
                front.extend_from_slice(&pbuf);
                front.extend_from_slice(&self.sbuf);
                self.sbuf = front;
                self.process_server(&mut super::probe::NoHooks)
            }
        }
    }

    /// [`Relay::undo`], then, for a batch whose Parse created a prepared statement
    /// (those outlive a rollback), closes it: the client saw no ParseComplete.
    pub(super) async fn undo_unit(
        &mut self,
        plan: &crate::impact::ProbePlan,
        unit: &Unit,
        pbuf: &mut BytesMut,
        timeout: std::time::Duration,
    ) -> Result<(), End> {
        self.undo(plan, pbuf, timeout).await?;
        if let Unit::Batch {
            parsed: Some(name), ..
        } = unit
        {
            let mut msg = Vec::with_capacity(name.len() + 12);
            let len = 4 + 1 + name.len() + 1;
            msg.push(frontend::CLOSE);
            msg.extend_from_slice(&(len as i32).to_be_bytes());
            msg.push(b'S');
            msg.extend_from_slice(name.as_bytes());
            msg.push(0);
            msg.extend_from_slice(&[frontend::SYNC, 0, 0, 0, 4]);
            self.roundtrip(&msg, pbuf, false, timeout).await?;
        }
        Ok(())
    }

    /// [`Relay::deliver_failed`] for a unit.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn failed_unit(
        &mut self,
        mut raw: BytesMut,
        mut pbuf: BytesMut,
        in_transaction: bool,
        decision: Decision,
        unit: &Unit,
        timeout: std::time::Duration,
    ) -> Result<(), End> {
        match unit {
            Unit::Query(total) => {
                self.deliver_failed(raw, pbuf, in_transaction, decision, *total, timeout)
                    .await
            }
            Unit::Batch { .. } => {
                if !in_transaction {
                    let end = self
                        .roundtrip(
                            &super::probe::query_message("ROLLBACK"),
                            &mut pbuf,
                            false,
                            timeout,
                        )
                        .await?;
                    super::probe::set_status(&mut raw, end.status);
                }
                let _ = self.audited(decision, true).await;
                self.deliver_unit(raw, pbuf, unit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_whole_at_its_sync() {
        let bind = b"B\0\0\0\x0c\0\0\0\0\0\0\0\0";
        let exec = b"E\0\0\0\x09\0\0\0\0\0";
        let sync = b"S\0\0\0\x04";
        let flush = b"H\0\0\0\x04";
        let mut buf = Vec::new();
        buf.extend_from_slice(bind);
        assert_eq!(scan(&buf, 1 << 20), Scan::Partial { other: false });
        buf.extend_from_slice(exec);
        buf.extend_from_slice(flush);
        assert_eq!(scan(&buf, 1 << 20), Scan::Partial { other: true });
        buf.extend_from_slice(sync);
        let whole = buf.len();
        buf.extend_from_slice(bind);
        assert_eq!(scan(&buf, 1 << 20), Scan::Whole(whole));
        assert_eq!(messages(&buf[..whole]).len(), 4);
        assert_eq!(scan(b"B\0\0\0\x01", 1 << 20), Scan::Bad);
    }
}
