//! The relay's side of the trash: inside the client's session it runs a DROP TABLE
//! that a trash rule matched as written in a savepoint that is rolled back (a
//! refusal reaches the client as the server's own error), then the trash plan
//! (`crate::trash::plan`) in the client's transaction or one of pgwarden's own, and
//! answers as a real DROP would (`DROP TABLE`, the ReadyForQuery status the client
//! would see) with a NOTICE saying where the table went. Every other ending rolls
//! back what pgwarden did and carries out the rule's fallback.
//!
//! pgwarden's own statements run with the impact probe's timeouts (`SET LOCAL`
//! inside its savepoint or transaction, the client's values restored after); a
//! timeout means the fallback. Like the probe, it starts once the server owes the
//! session nothing. `DROP DATABASE` has a path of its own (`trash/database.rs`):
//! it cannot be tried in a savepoint.

use bytes::BytesMut;

use super::probe::{as_refs, query_message, SERVER_GRACE};
use super::{End, Relay};
use crate::impact::{ProbePlan, SavedSettings};
use crate::protocol::{backend, originate, sqlstate::SqlState};
use crate::session::guard::{Decision, TrashOrder, TrashResult};
use crate::trash::plan::Plan;
use crate::trash::statement::TrashRequest;
use crate::trash::{as_written_open, as_written_undo, dispatch, registry};

mod database;

/// What the steps after the as-written check found.
enum Steps {
    Trashed(crate::trash::plan::TrashPlan),
    AsWritten(&'static str),
    Fallback(String),
}

/// A CommandComplete with `tag`.
fn command_complete(tag: &str) -> Vec<u8> {
    let mut m = vec![backend::COMMAND_COMPLETE];
    m.extend_from_slice(&((tag.len() + 5) as i32).to_be_bytes());
    m.extend_from_slice(tag.as_bytes());
    m.push(0);
    m
}

/// The messages of `raw` with one of `tags`, in order.
fn pick(raw: &[u8], tags: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    let mut rest = BytesMut::from(raw);
    while let Ok(Some(m)) = crate::protocol::frame::split_next(&mut rest, usize::MAX) {
        if tags.contains(&m.tag()) {
            out.extend_from_slice(m.as_bytes());
        }
    }
    out
}

/// The client's answer to a trashed DROP: the server's notices of the as-written
/// run (e.g. "drop cascades to view …"), pgwarden's NOTICE, the command tag, and
/// ReadyForQuery with `status`.
fn trashed_reply(
    notices: &[u8],
    p: &crate::trash::plan::TrashPlan,
    tag: &str,
    status: u8,
) -> BytesMut {
    let mut out = BytesMut::from(notices);
    let message = p.notice();
    let hint = format!(
        "To restore it: pgwarden trash restore {} (or --as NAME for another name)",
        p.id
    );
    out.extend_from_slice(&originate::report(&originate::Report {
        severity: originate::Severity::Notice,
        code: SqlState::SUCCESSFUL_COMPLETION,
        message: &message,
        detail: None,
        hint: Some(&hint),
    }));
    out.extend_from_slice(&command_complete(tag));
    out.extend_from_slice(&originate::ready_for_query(status));
    out
}

impl Relay {
    /// Carries out `order` for the simple Query in the first `total` bytes of
    /// `cbuf`.
    pub(super) async fn trash(&mut self, order: Box<TrashOrder>, total: usize) -> Result<(), End> {
        if matches!(order.request, TrashRequest::DropDatabase { .. }) {
            return self.trash_database(order, total).await;
        }
        if !self.wait_idle().await? {
            let why = "the server was still busy with this client's earlier requests";
            return self.fallback(order, why.to_string(), total).await;
        }
        // The status the statement really meets (the client may have pipelined a
        // BEGIN or ROLLBACK ahead of it).
        let in_transaction = match self.core.state.tx_status {
            b'I' => false,
            b'T' => true,
            _ => {
                let why = "the transaction has failed";
                return self.fallback(order, why.to_string(), total).await;
            }
        };
        let scope = order.plan(in_transaction);
        let timeout = scope.statement_timeout() + SERVER_GRACE;
        let mut pbuf = BytesMut::new();

        // 1. pgwarden's savepoint (or transaction), with its timeouts.
        let open = self
            .roundtrip(
                &query_message(&scope.open_timed()),
                &mut pbuf,
                false,
                timeout,
            )
            .await?;
        let saved = match (&open.error, open.results.as_slice()) {
            (None, [_, settings, ..]) => settings.first().and_then(|row| {
                let refs: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
                SavedSettings::from_row(&refs)
            }),
            _ => None,
        };
        let Some(saved) = saved else {
            self.undo(&scope, &mut pbuf, timeout).await?;
            self.leftover(pbuf);
            let why = match open.error {
                Some(code) => format!("pgwarden's savepoint could not be opened (SQLSTATE {code})"),
                None => "pgwarden could not read the session's timeouts".to_string(),
            };
            return self.fallback(order, why, total).await;
        };

        // 2. The DROP as written, in a savepoint of its own.
        let asis = self
            .roundtrip(
                &query_message(&as_written_open()),
                &mut pbuf,
                false,
                timeout,
            )
            .await?;
        if let Some(code) = asis.error {
            return self
                .abandon(order, &scope, pbuf, format!("SQLSTATE {code}"), total)
                .await;
        }
        let stmt = self.cbuf[..total].to_vec();
        let started = std::time::Instant::now();
        let ran = self.roundtrip(&stmt, &mut pbuf, true, timeout).await?;
        if let Some(code) = ran.error.clone() {
            if scope.own_timeout(&code, started.elapsed()) {
                let why =
                    format!("the DROP did not finish within pgwarden's timeouts (SQLSTATE {code})");
                return self.abandon(order, &scope, pbuf, why, total).await;
            }
            // Refused by the server: the client gets its error and the session is
            // where the server leaves it. Outside a transaction pgwarden's own is
            // ended (status I); inside one the transaction stays failed (E), with
            // pgwarden's savepoints, as a client savepoint would be.
            let decision = self.guard.after_trash(order, TrashResult::Refused);
            return self
                .deliver_failed(ran.raw, pbuf, in_transaction, decision, total, timeout)
                .await;
        }
        if ran.overflow {
            let why = "the DROP's replies are larger than pgwarden holds back".to_string();
            return self.abandon(order, &scope, pbuf, why, total).await;
        }
        let notices = pick(&ran.raw, &[backend::NOTICE_RESPONSE]);
        let back = self
            .roundtrip(
                &query_message(&as_written_undo()),
                &mut pbuf,
                false,
                timeout,
            )
            .await?;
        if let Some(code) = back.error {
            let why = format!("the DROP could not be rolled back (SQLSTATE {code})");
            return self.abandon(order, &scope, pbuf, why, total).await;
        }

        // 3. What the table is, and the plan that keeps it.
        let steps = self.trash_steps(&order, &mut pbuf, timeout).await?;
        let p = match steps {
            Steps::Trashed(p) => p,
            Steps::AsWritten(why) => {
                // Nothing to keep: the statement runs as the client sent it.
                self.undo(&scope, &mut pbuf, timeout).await?;
                self.leftover(pbuf);
                let decision = self.guard.after_trash(order, TrashResult::AsWritten(why));
                return self.decided_unrun(decision, total).await;
            }
            Steps::Fallback(why) => return self.abandon(order, &scope, pbuf, why, total).await,
        };

        // 4. Recorded (before it stands), then kept.
        let retention = order.retention;
        let tag = order.request.tag();
        let decision = self.guard.after_trash(order, TrashResult::Trashed);
        let decision = self.audited(decision, false).await;
        if !matches!(decision, Decision::Forward(_)) {
            // The audit log could not take the record: nothing stands.
            self.undo(&scope, &mut pbuf, timeout).await?;
            self.leftover(pbuf);
            return self.carry_out(decision, total);
        }
        let kept = self
            .roundtrip(
                &query_message(&scope.keep(&saved)),
                &mut pbuf,
                true,
                timeout,
            )
            .await?;
        let reply = if kept.error.is_some() {
            // COMMIT failed: as for a DROP whose commit fails, the client sees the
            // error in place of the command tag.
            let mut r = notices;
            r.extend_from_slice(&pick(
                &kept.raw,
                &[backend::NOTICE_RESPONSE, backend::ERROR_RESPONSE],
            ));
            r.extend_from_slice(&originate::ready_for_query(kept.status));
            r
        } else {
            tracing::info!(item = p.id, table = %p.original, "trash: table moved to the trash");
            self.guard.record_trash(&p, retention);
            trashed_reply(&notices, &p, tag, kept.status)
        };
        self.deliver(reply, pbuf, total)
    }

    /// Reads the table's facts, creates the registry if needed, takes an item id and
    /// runs the plan (all inside pgwarden's savepoint).
    async fn trash_steps(
        &mut self,
        order: &TrashOrder,
        pbuf: &mut BytesMut,
        timeout: std::time::Duration,
    ) -> Result<Steps, End> {
        let failed = |what: &str, code: &str| Steps::Fallback(format!("{what} (SQLSTATE {code})"));
        let sql = dispatch::facts_sql(&order.request);
        let r = self
            .roundtrip(&query_message(&sql), pbuf, false, timeout)
            .await?;
        if let Some(code) = &r.error {
            return Ok(failed("the table's catalog facts could not be read", code));
        }
        let rows = r
            .results
            .first()
            .map(|rows| as_refs(rows))
            .unwrap_or_default();
        let facts = match dispatch::read_facts(&order.request, &rows) {
            Ok(t) => t,
            Err(e) => return Ok(Steps::Fallback(format!("the table's facts: {e}"))),
        };
        let cx = order.context();
        if !dispatch::keeps_something(facts.as_ref()) {
            return Ok(
                match dispatch::plan(&order.request, facts.as_ref(), 0, &cx) {
                    Ok(Plan::AsWritten(why)) => Steps::AsWritten(why),
                    Ok(Plan::Trash(_)) => Steps::Fallback("nothing to move".into()),
                    Err(n) => Steps::Fallback(n.to_string()),
                },
            );
        }
        let exists = self
            .roundtrip(&query_message(registry::EXISTS_SQL), pbuf, false, timeout)
            .await?;
        let present = exists
            .results
            .first()
            .and_then(|rows| rows.first())
            .and_then(|row| row.first().cloned().flatten());
        if let Some(code) = &exists.error {
            return Ok(failed("the trash registry could not be looked up", code));
        }
        if present.as_deref() != Some("true") {
            let made = self
                .roundtrip(
                    &query_message(&registry::bootstrap_sql()),
                    pbuf,
                    false,
                    timeout,
                )
                .await?;
            if let Some(code) = &made.error {
                return Ok(failed("the trash registry could not be created", code));
            }
        }
        let next = self
            .roundtrip(&query_message(registry::NEXT_ID_SQL), pbuf, false, timeout)
            .await?;
        let id = next
            .results
            .first()
            .and_then(|rows| rows.first())
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|v| v.parse::<i64>().ok());
        let Some(id) = id.filter(|_| next.error.is_none()) else {
            return Ok(Steps::Fallback("no trash item id".into()));
        };
        let p = match dispatch::plan(&order.request, facts.as_ref(), id, &cx) {
            Ok(Plan::Trash(p)) => p,
            Ok(Plan::AsWritten(why)) => return Ok(Steps::AsWritten(why)),
            Err(n) => return Ok(Steps::Fallback(n.to_string())),
        };
        let done = self
            .roundtrip(
                &query_message(&p.statements.join(";\n")),
                pbuf,
                false,
                timeout,
            )
            .await?;
        if let Some(code) = &done.error {
            return Ok(failed("a step of the trash failed", code));
        }
        Ok(Steps::Trashed(p))
    }

    /// Rolls back pgwarden's savepoint (or transaction) and carries out the fallback.
    async fn abandon(
        &mut self,
        order: Box<TrashOrder>,
        scope: &ProbePlan,
        mut pbuf: BytesMut,
        why: String,
        total: usize,
    ) -> Result<(), End> {
        let timeout = scope.statement_timeout() + SERVER_GRACE;
        self.undo(scope, &mut pbuf, timeout).await?;
        self.leftover(pbuf);
        self.fallback(order, why, total).await
    }

    /// The statement has not run: the rule's fallback.
    async fn fallback(
        &mut self,
        order: Box<TrashOrder>,
        why: String,
        total: usize,
    ) -> Result<(), End> {
        let decision = self.guard.after_trash(order, TrashResult::Fallback(why));
        self.decided_unrun(decision, total).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_is_a_drop_tables() {
        let p = crate::trash::plan::TrashPlan {
            id: 4,
            original: "public.t".into(),
            what: "table \"public\".\"t\"".into(),
            statements: Vec::new(),
            moved: Vec::new(),
            removed: Vec::new(),
            size: 0,
            trash_name: "pgwarden_trash_4".into(),
        };
        let notice = pick(
            &originate::report(&originate::Report::new(
                originate::Severity::Notice,
                SqlState::SUCCESSFUL_COMPLETION,
                "drop cascades",
            )),
            &[backend::NOTICE_RESPONSE],
        );
        let r = trashed_reply(&notice, &p, "DROP TABLE", b'T');
        let mut rest = r.clone();
        let mut tags = Vec::new();
        while let Ok(Some(m)) = crate::protocol::frame::split_next(&mut rest, usize::MAX) {
            tags.push(m.tag());
        }
        assert_eq!(tags, b"NNCZ");
        assert!(r.ends_with(b"Z\0\0\0\x05T"));
        let tag = command_complete("DROP TABLE");
        assert_eq!(&tag[..], b"C\0\0\0\x0fDROP TABLE\0");
        let s = String::from_utf8_lossy(&r);
        assert!(s.contains("To restore it: pgwarden trash restore 4"), "{s}");
    }
}
