//! Holds and confirmation tokens: a statement that needs a confirmation token or an
//! approver (in memory or in the control database), an approved plan that releases
//! it, the decision once a hold is resolved, and its withdrawal.

use super::*;

impl Guard {
    pub(super) fn self_confirm(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        extended: bool,
    ) -> (Outcome, Decision) {
        let fingerprint = Self::fingerprint(stmts);
        let tokens = &self.shared.tokens;
        if let Some(token) = extract_confirm_token(text) {
            let presented = TokenUse {
                token,
                user: &self.user,
                target: &self.target.name,
                fingerprint: &fingerprint,
            };
            // Kept in the control database: it is used up there (once, on any
            // replica), and the statement waits for the answer like a hold.
            if let Some(rx) = self.shared.holds.redeem_token(&presented) {
                self.token_wait = Some(TokenWait::Redeem);
                return (
                    Outcome::Confirmed,
                    Decision::Hold {
                        notice: Vec::new(),
                        ticket: Ticket {
                            id: 0,
                            rx,
                            extended,
                        },
                    },
                );
            }
            return match tokens.redeem(token, &self.user, &self.target.name, &fingerprint) {
                Ok(()) => (Outcome::Confirmed, Decision::Forward(Permit(()))),
                Err(e) => (
                    Outcome::BadToken,
                    refuse(
                        SqlState::PW_BAD_TOKEN,
                        &format!("pgwarden refused the confirmation: {e}"),
                        None,
                        Some("Send the statement again without the comment to get a new token."),
                        extended,
                    ),
                ),
            };
        }
        let (what, rule) = self.describe(stmts, verdict);
        let token = new_token();
        let issued = TokenUse {
            token: &token,
            user: &self.user,
            target: &self.target.name,
            fingerprint: &fingerprint,
        };
        let recording = match self.shared.holds.issue_token(&issued, verdict.timeout) {
            None => None,
            Some(Ok(rx)) => Some(rx),
            // Fail closed, as for a hold: no token anyone could not check.
            Some(Err(e)) => {
                return (
                    Outcome::HoldSelf,
                    refuse(
                        SqlState::PW_HOLD_UNAVAILABLE,
                        &format!("pgwarden refused this statement ({what}, {rule}): it needs a confirmation token, and {e}"),
                        Some("Statements that need no confirmation are still served."),
                        Some("Try again once the control database is reachable (pgwarden's /readyz and logs say what failed)."),
                        extended,
                    ),
                )
            }
        };
        let token = match recording {
            Some(_) => token,
            None => tokens.issue(&self.user, &self.target.name, &fingerprint, verdict.timeout),
        };
        let message = format!(
            "pgwarden is holding this statement ({what}) by {rule} on target \"{}\": confirm with token {token}",
            self.target.name
        );
        let hint = format!(
            "To run it, send the same statement again within {} prefixed with /* pgwarden:confirm={token} */",
            crate::config::units::format_duration(verdict.timeout)
        );
        // Kept in the control database: the client is told the token once it is
        // recorded there, so any replica finds it.
        if let Some(rx) = recording {
            self.token_wait = Some(TokenWait::Issue {
                message,
                detail: verdict.message.as_deref().map(str::to_string),
                hint,
            });
            return (
                Outcome::HoldSelf,
                Decision::Hold {
                    notice: Vec::new(),
                    ticket: Ticket {
                        id: 0,
                        rx,
                        extended,
                    },
                },
            );
        }
        (
            Outcome::HoldSelf,
            refuse(
                SqlState::PW_HELD_CONFIRM,
                &message,
                verdict.message.as_deref(),
                Some(&hint),
                extended,
            ),
        )
    }

    /// A statement the policy would hold, released by an approved plan that covers
    /// it (only a message of one statement: a plan counts statements one by one).
    pub(super) fn plan_release(
        &mut self,
        stmts: &[Statement],
        extended: bool,
    ) -> Option<(Outcome, Decision)> {
        let [stmt] = stmts else {
            return None;
        };
        let request = PlanRequest {
            target: &self.target.name,
            user: &self.user,
            application: &self.application,
            fingerprint: &stmt.fingerprint,
            now: jiff::Timestamp::now().as_second(),
        };
        match self.shared.holds.claim_plan(&request) {
            PlanClaim::None => None,
            PlanClaim::Granted(p) => {
                self.plan_used = Some((p.id, p.approver));
                Some((Outcome::Planned, Decision::Forward(Permit(()))))
            }
            // The use is being counted in the control database: wait for it as for
            // a hold, without a notice.
            PlanClaim::Pending { plan, rx } => {
                self.plan_used = Some((plan.id, plan.approver));
                Some((
                    Outcome::Planned,
                    Decision::Hold {
                        notice: Vec::new(),
                        ticket: Ticket {
                            id: 0,
                            rx,
                            extended,
                        },
                    },
                ))
            }
        }
    }

    pub(super) fn hold_for_approver(
        &self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        extended: bool,
    ) -> Decision {
        let (what, rule) = self.describe(stmts, verdict);
        let info = HoldInfo {
            session: self.session_id,
            // `conclude` numbers this statement next.
            statement_id: self.statements + 1,
            user: self.user.clone(),
            database: self.database.clone(),
            application: self.application.clone(),
            client: self.client.map(|c| c.to_string()).unwrap_or_default(),
            target: self.target.name.clone(),
            sql: text.to_string(),
            fingerprint: Self::fingerprint(stmts),
            classes: stmts
                .iter()
                .flat_map(|s| s.classes.iter().map(|c| c.as_str().to_string()))
                .collect(),
            rule: verdict.rule.as_deref().map(str::to_string),
            impact: self.probe_note.clone(),
            blast: self.blast_note.clone(),
            ..HoldInfo::default()
        };
        let (id, rx) = match self.shared.holds.try_submit(info, verdict.timeout) {
            Ok(t) => t,
            // Fail closed: a statement that needs a hold cannot run without one.
            Err(e) => {
                return refuse(
                    SqlState::PW_HOLD_UNAVAILABLE,
                    &format!("pgwarden refused this statement ({what}, {rule}): it needs an approver, and {e}"),
                    Some("Statements that need no approval are still served."),
                    Some("Try again once the control database is reachable (pgwarden's /readyz and logs say what failed)."),
                    extended,
                )
            }
        };
        let message = format!(
            "pgwarden: held as #{id}, waiting for approval ({what}, {rule}, target \"{}\", timeout {})",
            self.target.name,
            crate::config::units::format_duration(verdict.timeout)
        );
        let notice = originate::report(&Report {
            severity: Severity::Notice,
            code: SqlState::PW_HELD_CONFIRM,
            message: &message,
            detail: verdict.message.as_deref(),
            hint: Some(&format!("An approver runs: pgwarden holds approve {id}")),
        });
        Decision::Hold {
            notice,
            ticket: Ticket { id, rx, extended },
        }
    }

    /// The decision once a held statement is resolved.
    pub fn resolved(&mut self, r: &Resolution, extended: bool) -> Decision {
        if let Some((outcome, class)) = self.uncounted.take() {
            let counted = match (outcome, r) {
                (_, Resolution::Approved { .. }) => outcome,
                (Outcome::Confirmed, _) => Outcome::BadToken,
                // No run of the plan left, or it could not be counted: refused.
                _ => Outcome::Block,
            };
            self.count(counted, class);
        }
        if let Some(wait) = self.token_wait.take() {
            return self.token_resolved(wait, r, extended);
        }
        self.plan_resolution_audit(r);
        let rerun = self.approved_rerun();
        match r {
            Resolution::Approved { .. } => match rerun {
                Some(order) => Decision::Probe(order),
                None => Decision::Forward(Permit(())),
            },
            Resolution::Denied { approver, reason } => {
                let message = format!("pgwarden: the held statement was denied by {approver}");
                refuse(
                    SqlState::PW_DENIED,
                    &message,
                    reason.as_deref(),
                    None,
                    extended,
                )
            }
            Resolution::Expired => refuse(
                SqlState::PW_EXPIRED,
                "pgwarden: the held statement was not approved in time",
                None,
                None,
                extended,
            ),
            Resolution::Shutdown => refuse(
                SqlState::PW_EXPIRED,
                "pgwarden: the held statement was not run because pgwarden is shutting down",
                None,
                None,
                extended,
            ),
            Resolution::Withdrawn { reason } => refuse(
                SqlState::PW_HOLD_UNAVAILABLE,
                "pgwarden: the held statement was withdrawn and did not run",
                Some(reason),
                None,
                extended,
            ),
        }
    }

    /// The control database's answer on a confirmation token: accepted, or refused
    /// with the reason (recorded once, now that it is known).
    pub(super) fn token_resolved(
        &mut self,
        wait: TokenWait,
        r: &Resolution,
        extended: bool,
    ) -> Decision {
        let accepted = matches!(r, Resolution::Approved { .. });
        if let Some((mut ev, durability)) = self.token_audit.take() {
            if !accepted && matches!(wait, TokenWait::Redeem) {
                ev.decision = audit::Disposition::Block;
            }
            self.pending_audit = Some((audit::Event::Statement(Box::new(ev)), durability));
        }
        match (wait, r) {
            (
                TokenWait::Issue {
                    message,
                    detail,
                    hint,
                },
                Resolution::Approved { .. },
            ) => refuse(
                SqlState::PW_HELD_CONFIRM,
                &message,
                detail.as_deref(),
                Some(&hint),
                extended,
            ),
            (TokenWait::Issue { .. }, other) => {
                let reason = match other {
                    Resolution::Withdrawn { reason } => reason.as_str(),
                    _ => "the confirmation token could not be recorded",
                };
                refuse(
                    SqlState::PW_HOLD_UNAVAILABLE,
                    "pgwarden refused this statement: it needs a confirmation token, and none could be recorded",
                    Some(reason),
                    Some("Try again once the control database is reachable (pgwarden's /readyz and logs say what failed)."),
                    extended,
                )
            }
            (TokenWait::Redeem, Resolution::Approved { .. }) => Decision::Forward(Permit(())),
            (TokenWait::Redeem, other) => {
                let reason = match other {
                    Resolution::Withdrawn { reason } => reason.as_str(),
                    _ => "the confirmation token could not be checked",
                };
                refuse(
                    SqlState::PW_BAD_TOKEN,
                    &format!("pgwarden refused the confirmation: {reason}"),
                    None,
                    Some("Send the statement again without the comment to get a new token."),
                    extended,
                )
            }
        }
    }

    /// Withdraws a held statement (client gone or cancelled): it never runs.
    pub fn withdraw(&mut self, id: u64) {
        self.held_probe = None;
        self.token_wait = None;
        self.token_audit = None;
        self.uncounted = None;
        self.shared.holds.withdraw(id);
        if let Some(mut ev) = self.held_event.take() {
            ev.decision = audit::Disposition::Withdrawn;
            self.shared
                .audit
                .record(audit::Event::Statement(Box::new(ev)));
        }
    }
}
