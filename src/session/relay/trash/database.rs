//! The relay's side of the trash for `DROP DATABASE` (`crate::trash::database`):
//! in a transaction of pgwarden's own, it reads the database's facts, renames it
//! into the trash (the check that stands in for trying the drop, which cannot run
//! in a transaction), closes it to connections and records it, then commits and
//! answers `DROP DATABASE` with a NOTICE. The client gets the drop's error where
//! the server would refuse it, and the rule's fallback where pgwarden cannot tell
//! or cannot be faithful; the statement itself is only ever forwarded where the
//! server refuses it whatever happens meanwhile (inside a transaction block, the
//! session's own database).

use bytes::BytesMut;

use super::super::probe::{as_refs, query_message, SERVER_GRACE};
use super::super::{End, Relay};
use super::{command_complete, pick, trashed_reply};
use crate::impact::ProbePlan;
use crate::protocol::{backend, originate, sqlstate::SqlState};
use crate::session::guard::{Decision, TrashOrder, TrashResult};
use crate::trash::database::{self, DbFacts, Request, Step};
use crate::trash::statement::TrashRequest;

impl Relay {
    /// Carries out `order` (a `DROP DATABASE`) for the simple Query in the first
    /// `total` bytes of `cbuf`.
    pub(super) async fn trash_database(
        &mut self,
        order: Box<TrashOrder>,
        total: usize,
    ) -> Result<(), End> {
        let TrashRequest::DropDatabase {
            name,
            missing_ok,
            force,
        } = order.request.clone()
        else {
            let why = "not a DROP DATABASE".to_string();
            return self.fallback(order, why, total).await;
        };
        let req = Request {
            name: &name,
            missing_ok,
            force,
        };
        if !self.wait_idle().await? {
            let why = "the server was still busy with this client's earlier requests";
            return self.fallback(order, why.to_string(), total).await;
        }
        match self.core.state.tx_status {
            b'I' => {}
            b'T' => {
                // DROP DATABASE refuses to run in a transaction block before it
                // looks at anything: the server's own error, nothing dropped.
                let why = "inside a transaction block, where the server refuses DROP DATABASE";
                let decision = self.guard.after_trash(order, TrashResult::AsWritten(why));
                return self.decided_unrun(decision, total).await;
            }
            _ => {
                let why = "the transaction has failed";
                return self.fallback(order, why.to_string(), total).await;
            }
        }
        let scope = order.plan(false);
        let ms = std::time::Duration::from_millis(database::RENAME_TIMEOUT_MS);
        let timeout = ms + SERVER_GRACE;
        let mut pbuf = BytesMut::new();

        // 1. pgwarden's transaction, with its timeouts.
        let open = self
            .roundtrip(
                &query_message(&scope.open_timed()),
                &mut pbuf,
                false,
                timeout,
            )
            .await?;
        if let Some(code) = open.error {
            let why = format!("pgwarden's transaction could not be opened (SQLSTATE {code})");
            return self.abandon(order, &scope, pbuf, why, total).await;
        }
        let retention = Some(order.retention.as_secs());

        // 2. The facts by the client's name.
        let before = match self.db_facts(&name, retention, &mut pbuf, timeout).await? {
            Ok(f) => f,
            Err(why) => return self.abandon(order, &scope, pbuf, why, total).await,
        };
        match database::judge_before(req, &before) {
            Step::Continue => {}
            Step::AsWritten(why) => {
                self.undo(&scope, &mut pbuf, timeout).await?;
                self.leftover(pbuf);
                let decision = self.guard.after_trash(order, TrashResult::AsWritten(why));
                return self.decided_unrun(decision, total).await;
            }
            Step::Fallback(why) => return self.abandon(order, &scope, pbuf, why, total).await,
            other => {
                let why = format!("unexpected step {other:?}");
                return self.abandon(order, &scope, pbuf, why, total).await;
            }
        }

        // 3. The rename: where it fails, what the drop would have said.
        let trash = database::trash_name(before.db.as_ref().map_or(0, |d| d.oid));
        let started = std::time::Instant::now();
        let renamed = self
            .roundtrip(
                &query_message(&database::rename_sql(&name, &trash)),
                &mut pbuf,
                true,
                timeout,
            )
            .await?;
        if let Some(code) = renamed.error.clone() {
            let own = (code == SqlState::QUERY_CANCELED.as_str() && started.elapsed() >= ms)
                || scope.own_timeout(&code, started.elapsed());
            let step = if own {
                Step::Fallback(format!(
                    "the rename did not finish within pgwarden's timeouts (SQLSTATE {code})"
                ))
            } else {
                database::judge_rename_error(req, &before, &code)
            };
            let error = pick(&renamed.raw, &[backend::ERROR_RESPONSE]);
            return self
                .db_answer(order, &scope, pbuf, step, error, &name, total, timeout)
                .await;
        }

        // 4. Under the rename's lock: what the rename does not check.
        let after = match self.db_facts(&trash, retention, &mut pbuf, timeout).await? {
            Ok(f) => f,
            Err(why) => return self.abandon(order, &scope, pbuf, why, total).await,
        };
        let step = database::judge_renamed(&after);
        if step != Step::Trash {
            return self
                .db_answer(
                    order,
                    &scope,
                    pbuf,
                    step,
                    BytesMut::new(),
                    &name,
                    total,
                    timeout,
                )
                .await;
        }

        // 5. Closed and recorded, then committed.
        let record = match database::record(&after, &name, &order.context()) {
            Ok(r) => r,
            Err(why) => return self.abandon(order, &scope, pbuf, why, total).await,
        };
        let sql = match database::trash_sql(&trash, &record) {
            Ok(s) => s,
            Err(why) => return self.abandon(order, &scope, pbuf, why, total).await,
        };
        let done = self
            .roundtrip(&query_message(&sql), &mut pbuf, false, timeout)
            .await?;
        if let Some(code) = done.error {
            let why = format!("a step of the trash failed (SQLSTATE {code})");
            return self.abandon(order, &scope, pbuf, why, total).await;
        }
        let p = crate::trash::plan::TrashPlan {
            id: after.db.as_ref().map_or(0, |d| d.oid),
            original: name.clone(),
            what: format!("database {}", crate::catalog::quote::ident(&name)),
            statements: Vec::new(),
            moved: Vec::new(),
            removed: Vec::new(),
            size: record.size_bytes,
            trash_name: trash,
        };
        let retention = order.retention;
        let decision = self.guard.after_trash(order, TrashResult::Trashed);
        let decision = self.audited(decision, false).await;
        if !matches!(decision, Decision::Forward(_)) {
            // The audit log could not take the record: nothing stands.
            self.undo(&scope, &mut pbuf, timeout).await?;
            self.leftover(pbuf);
            return self.carry_out(decision, total);
        }
        let kept = self
            .roundtrip(&query_message(&scope.release()), &mut pbuf, true, timeout)
            .await?;
        let reply = if kept.error.is_some() {
            // COMMIT failed: the client sees the error in place of the tag.
            let mut r = pick(
                &kept.raw,
                &[backend::NOTICE_RESPONSE, backend::ERROR_RESPONSE],
            );
            r.extend_from_slice(&originate::ready_for_query(kept.status));
            r
        } else {
            tracing::info!(item = p.id, database = %p.original, "trash: database moved to the trash");
            self.guard.record_trash(&p, retention);
            trashed_reply(&[], &p, "DROP DATABASE", kept.status)
        };
        self.deliver(reply, pbuf, total)
    }

    /// Reads [`DbFacts`] for `name` inside pgwarden's transaction; `Err` is the
    /// reason for the fallback.
    async fn db_facts(
        &mut self,
        name: &str,
        retention_s: Option<u64>,
        pbuf: &mut BytesMut,
        timeout: std::time::Duration,
    ) -> Result<Result<DbFacts, String>, End> {
        let r = self
            .roundtrip(
                &query_message(&database::facts_sql(name, retention_s)),
                pbuf,
                false,
                timeout,
            )
            .await?;
        if let Some(code) = &r.error {
            return Ok(Err(format!(
                "the database's catalog facts could not be read (SQLSTATE {code})"
            )));
        }
        let rows = r
            .results
            .first()
            .map(|rows| as_refs(rows))
            .unwrap_or_default();
        Ok(database::read_facts(&rows))
    }

    /// Ends pgwarden's transaction (nothing stands) and gives the client the
    /// answer `step` says: the server's `error` (the rename's, which is the drop's),
    /// the drop's template error, the drop's NOTICE for a missing database with
    /// `IF EXISTS`, or the rule's fallback.
    #[allow(clippy::too_many_arguments)]
    async fn db_answer(
        &mut self,
        order: Box<TrashOrder>,
        scope: &ProbePlan,
        mut pbuf: BytesMut,
        step: Step,
        error: BytesMut,
        name: &str,
        total: usize,
        timeout: std::time::Duration,
    ) -> Result<(), End> {
        let mut reply = match step {
            Step::ServerError if !error.is_empty() => error,
            Step::TemplateError => BytesMut::from(
                &originate::report(&originate::Report::new(
                    originate::Severity::Error,
                    SqlState(database::TEMPLATE_CODE),
                    database::TEMPLATE_MESSAGE,
                ))[..],
            ),
            Step::Skipped => {
                let message = format!("database \"{name}\" does not exist, skipping");
                let mut r = BytesMut::from(
                    &originate::report(&originate::Report::new(
                        originate::Severity::Notice,
                        SqlState::SUCCESSFUL_COMPLETION,
                        &message,
                    ))[..],
                );
                r.extend_from_slice(&command_complete("DROP DATABASE"));
                r
            }
            Step::Fallback(why) => return self.abandon(order, scope, pbuf, why, total).await,
            other => {
                let why = format!("unexpected step {other:?}");
                return self.abandon(order, scope, pbuf, why, total).await;
            }
        };
        self.undo(scope, &mut pbuf, timeout).await?;
        // Outside a transaction, as the drop leaves the session.
        reply.extend_from_slice(&originate::ready_for_query(b'I'));
        let decision = self.guard.after_trash(order, TrashResult::Refused);
        // The decision forwards nothing (the answer is built); audited for the record.
        let _ = self.audited(decision, false).await;
        self.deliver(reply, pbuf, total)
    }
}
