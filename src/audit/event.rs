//! Typed audit events and their one-line JSON form (`{"seq":…,"ts":…,"event":…,…,"prev":…,"hash":…}`).
//!
//! The writer adds `seq`, `ts` (when the event was submitted), `prev` and `hash`; the
//! event itself serialises as the remaining fields with `"event"` naming its kind.
//! Every optional field is written as `null` rather than left out, so each kind has a
//! fixed set of keys. See docs/audit.md for the field reference.

use serde::{Deserialize, Serialize};

use crate::classify::Class;
use crate::policy::Action;

/// One audit event. Serialised with `"event": "<kind>"` and the kind's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    SessionStart(SessionStart),
    SessionEnd(SessionEnd),
    Statement(Box<StatementEvent>),
    Outcome(OutcomeEvent),
    Hold(Held),
    Approve(Approve),
    Deny(Deny),
    Expire(Expire),
    Withdraw(Withdraw),
    PlanApprove(Box<PlanApprove>),
    PlanRevoke(PlanRevoke),
    PolicyReload(PolicyReload),
    /// A dropped table was moved to the trash instead of being destroyed.
    Trash(TrashEvent),
    /// pgwarden purged a trash item whose retention had passed.
    Purge(PurgeEvent),
    /// An approver restored a trash item through the admin API.
    Restore(RestoreEvent),
    /// Written by the writer itself, first thing after it recovers from a failure:
    /// what was lost while the log could not be written.
    AuditGap(AuditGap),
    /// The server sent a reply no forwarded request accounts for: the session was
    /// closed (FATAL 08P01 to the client) rather than guess whose reply it was.
    OutOfSync(OutOfSync),
}

impl Event {
    /// The `"event"` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::SessionStart(_) => "session_start",
            Event::SessionEnd(_) => "session_end",
            Event::Statement(_) => "statement",
            Event::Outcome(_) => "outcome",
            Event::Hold(_) => "hold",
            Event::Approve(_) => "approve",
            Event::Deny(_) => "deny",
            Event::Expire(_) => "expire",
            Event::Withdraw(_) => "withdraw",
            Event::PlanApprove(_) => "plan_approve",
            Event::PlanRevoke(_) => "plan_revoke",
            Event::PolicyReload(_) => "policy_reload",
            Event::Trash(_) => "trash",
            Event::Purge(_) => "purge",
            Event::Restore(_) => "restore",
            Event::AuditGap(_) => "audit_gap",
            Event::OutOfSync(_) => "out_of_sync",
        }
    }
}

impl From<StatementEvent> for Event {
    fn from(s: StatementEvent) -> Event {
        Event::Statement(Box::new(s))
    }
}

/// A session closed because the server's replies no longer matched its requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfSync {
    pub session: u64,
    /// The server message's type (one character, e.g. `C`).
    pub message_type: String,
    /// The request whose reply was due (`Parse`, `Sync`, …), `null` when none was.
    pub expected: Option<String>,
}

/// A client connection was accepted and routed (after authentication).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStart {
    pub session: u64,
    /// `ip:port` of the client, or `unix` for a Unix socket.
    pub client: Option<String>,
    pub user: String,
    pub database: String,
    pub application: String,
    pub target: String,
    pub environment: String,
    /// The client connection uses TLS.
    pub tls: bool,
    /// The target runs in shadow mode (decisions are only recorded).
    pub shadow: bool,
}

/// A client connection ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEnd {
    pub session: u64,
    /// Statements the session sent (recorded or not).
    pub statements: u64,
    pub duration_ms: f64,
    /// `client closed`, `server closed`, `shutdown`, `error: …`.
    pub reason: Option<String>,
}

/// What was decided about a statement. `decision` in a statement event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Forwarded by a plain allow.
    Allow,
    /// Forwarded, and always recorded (`action = "audit"`).
    Audit,
    /// Refused with PW002.
    Block,
    /// Held: waiting for a self-confirmation (refused with PW001 and a token) or an approver.
    Hold,
    /// Forwarded after the client repeated it with a valid self-confirm token.
    Confirmed,
    /// Forwarded after an approver approved the hold (`approver` names them).
    Approved,
    /// Refused after an approver denied the hold (PW004).
    Denied,
    /// Refused because the hold timed out (PW005).
    Expired,
    /// Never run: the client went away or the proxy shut down while it was held.
    Withdrawn,
    /// Carried out by a trash rule: the table was moved to the trash (or the
    /// statement ran as written when there was nothing to keep, or the server
    /// refused it: the outcome says which).
    Trash,
}

impl Disposition {
    /// The policy action as a statement decision.
    pub fn from_action(a: Action) -> Disposition {
        match a {
            Action::Allow => Disposition::Allow,
            Action::Audit => Disposition::Audit,
            Action::Block => Disposition::Block,
            Action::Hold => Disposition::Hold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Allow => "allow",
            Disposition::Audit => "audit",
            Disposition::Block => "block",
            Disposition::Hold => "hold",
            Disposition::Confirmed => "confirmed",
            Disposition::Approved => "approved",
            Disposition::Denied => "denied",
            Disposition::Expired => "expired",
            Disposition::Withdrawn => "withdrawn",
            Disposition::Trash => "trash",
        }
    }
}

/// One statement and what was decided about it. Its result follows in an
/// [`OutcomeEvent`] with the same `session` and `statement_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementEvent {
    pub session: u64,
    /// Numbers the statements of one session from 1; `(session, statement_id)` links
    /// the statement to its outcome and hold events.
    pub statement_id: u64,
    pub client: Option<String>,
    pub user: String,
    pub database: String,
    pub application: String,
    pub target: String,
    pub environment: String,
    /// The statement text, or its normalised form (`$n` placeholders) when
    /// `audit.redact` is on (see [`super::redact`]).
    pub sql: String,
    pub fingerprint: String,
    /// Dotted class names (`drop.table`, `read`…).
    pub classes: Vec<String>,
    pub objects: Vec<String>,
    /// In shadow mode: the would-be decision (the statement was forwarded anyway).
    pub decision: Disposition,
    /// The deciding rule; `null` = the environment's default.
    pub rule: Option<String>,
    pub hold_id: Option<u64>,
    pub approver: Option<String>,
    pub shadow: bool,
    /// The approved plan that let it run without waiting (its id).
    #[serde(default)]
    pub plan: Option<String>,
    /// The measured impact that decided it (a probed statement), e.g. "would
    /// delete 5 of 5 rows of public.t (100 %)"; absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<String>,
    /// What a DROP, TRUNCATE or DROP COLUMN would destroy, read from the catalog
    /// before it was held ("would drop public.t (5 rows) …"), or "blast radius
    /// unknown: …"; absent when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast: Option<String>,
}

/// The dotted names of classes, for [`StatementEvent::classes`].
pub fn class_names(classes: &[Class]) -> Vec<String> {
    classes.iter().map(|c| c.as_str().to_string()).collect()
}

/// How a recorded statement ended. Exactly one per statement event that the
/// session finished (forwarded, refused, or abandoned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeEvent {
    pub session: u64,
    pub statement_id: u64,
    /// Command tag without the row count (`SELECT`, `DELETE`, `INSERT`…); `null` when
    /// the statement failed or was not run.
    pub tag: Option<String>,
    /// Rows from the command tag, when it has a count.
    pub rows: Option<u64>,
    /// SQLSTATE of the error the client received (the server's, or pgwarden's PWxxx).
    pub sqlstate: Option<String>,
    /// From forwarding to the server's reply (0 when not forwarded).
    pub duration_ms: f64,
    /// Not run for another reason (`client disconnected`, `audit log unavailable`…).
    pub error: Option<String>,
}

/// A statement was held for an approver (`confirm = "approver"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub hold_id: u64,
    pub session: u64,
    pub statement_id: u64,
    pub user: String,
    pub target: String,
    pub rule: Option<String>,
    /// `approver` or `self`.
    pub confirm: String,
    pub timeout_s: u64,
    pub fingerprint: String,
    /// What the held DROP, TRUNCATE or DROP COLUMN would destroy (or why that is
    /// unknown), as in [`StatementEvent::blast`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast: Option<String>,
}

/// An approver approved a hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approve {
    pub hold_id: u64,
    pub session: u64,
    pub statement_id: u64,
    pub approver: String,
}

/// An approver denied a hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deny {
    pub hold_id: u64,
    pub session: u64,
    pub statement_id: u64,
    pub approver: String,
    pub reason: Option<String>,
}

/// A hold timed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expire {
    pub hold_id: u64,
    pub session: u64,
    pub statement_id: u64,
}

/// A hold ended without a decision and its statement never runs: the client left
/// or cancelled, pgwarden shut down, or the hold's replica was taken for gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdraw {
    pub hold_id: u64,
    pub session: u64,
    pub statement_id: u64,
    pub reason: String,
}

/// A DROP carried out by a trash rule: the table is trash item `item` on `target`,
/// in schema `trash_schema`, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrashEvent {
    pub session: u64,
    pub statement_id: u64,
    pub target: String,
    pub user: String,
    pub item: i64,
    /// `schema.name` of the dropped table.
    pub original: String,
    pub trash_schema: String,
    pub size_bytes: i64,
    /// The retention, in seconds.
    pub retention_s: u64,
}

/// A trash item really dropped by pgwarden (`[trash]`): its retention purge, or an
/// approver through the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgeEvent {
    pub target: String,
    pub item: i64,
    /// `schema.name` of the table as it was dropped.
    pub original: String,
    pub size_bytes: i64,
    /// `expired`: its retention had passed (the proxy's purge run); `requested`:
    /// an approver purged it through the admin API.
    pub reason: String,
    /// Who purged it (`null` for the retention purge).
    pub approver: Option<String>,
    /// Set when `pgwarden trash purge` did it from the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli: Option<Box<CliActor>>,
}

/// A trash item put back through the admin API or `pgwarden trash restore`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreEvent {
    pub target: String,
    pub item: i64,
    /// `schema.name` of the table as it was dropped.
    pub original: String,
    /// `schema.name` it is back under.
    pub restored_as: String,
    pub approver: String,
    /// Set when `pgwarden trash restore` did it from the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli: Option<Box<CliActor>>,
}

/// Who ran a `pgwarden trash` command: what the machine vouches for (the account
/// and host that ran it, the database role it logged in as), beside the
/// self-declared `approver` of the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CliActor {
    /// The operating-system account that ran the command (from the process's uid).
    pub os_user: String,
    pub os_uid: u32,
    pub host: String,
    /// The database role the command logged in as (`session_user`).
    pub db_user: String,
}

/// An approver approved a plan: its statements that would be held run without
/// waiting, for this target, user and/or application, in this window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanApprove {
    pub plan: String,
    pub approver: String,
    pub target: String,
    pub user: Option<String>,
    pub application: Option<String>,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    /// Distinct statements it releases, and how many runs in all.
    pub statements: u64,
    pub runs: u64,
}

/// An approver revoked an approved plan before its window ended: from now on its
/// statements are decided by the policy as usual.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRevoke {
    pub plan: String,
    pub approver: String,
}

/// A policy (re)load was attempted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyReload {
    /// `startup`, `sighup`, `file`, `api`.
    pub trigger: String,
    /// `ok` or `error` (the old policy stays in force).
    pub result: String,
    pub path: Option<String>,
    /// SHA-256 (hex) of the policy now in force.
    pub sha256: Option<String>,
    pub rules: Option<u64>,
    pub error: Option<String>,
}

/// Events lost while the log could not be written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditGap {
    /// When the first failure happened (RFC 3339).
    pub since: String,
    /// Buffered events (`record`) that were dropped.
    pub lost: u64,
    /// Durable events (`record_durable`) that were refused; their statements did not run.
    pub refused: u64,
    /// The first error.
    pub error: String,
}

/// One line of the log as read back: the envelope fields and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub ts: String,
    #[serde(flatten)]
    pub event: Event,
    pub prev: String,
    pub hash: String,
}

impl Record {
    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Result<Record, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// The serialised line without `hash`: `{"seq":…,"ts":…,"event":…,…,"prev":…}`.
#[derive(Serialize)]
pub(crate) struct Unsealed<'a> {
    pub seq: u64,
    pub ts: &'a str,
    #[serde(flatten)]
    pub event: &'a Event,
    pub prev: &'a str,
}
