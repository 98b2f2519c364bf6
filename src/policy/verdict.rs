//! Decisions: `Action`, `Confirm`, `Verdict` and the session facts a policy matches on.

use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Default hold timeout when neither the rule nor the defaults give one.
pub const DEFAULT_HOLD_TIMEOUT: Duration = Duration::from_secs(600);

/// What happens to a statement. Ordered by strictness (see [`Action::strictness`]):
/// `Allow < Audit < Hold < Block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Forward.
    Allow,
    /// Forward and always record in the audit log.
    Audit,
    /// Refuse with an error; the statement never reaches the server.
    Block,
    /// Wait for a confirmation (self or approver) before forwarding.
    Hold,
}

impl Action {
    /// Every action, least strict first.
    pub const ALL: [Action; 4] = [Action::Allow, Action::Audit, Action::Hold, Action::Block];

    /// 0 = allow, 1 = audit, 2 = hold, 3 = block.
    pub const fn strictness(self) -> u8 {
        match self {
            Action::Allow => 0,
            Action::Audit => 1,
            Action::Hold => 2,
            Action::Block => 3,
        }
    }

    /// The policy-file spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Audit => "audit",
            Action::Block => "block",
            Action::Hold => "hold",
        }
    }

    /// Parses the policy-file spelling.
    pub fn from_name(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// True for `allow` and `audit`: the statement may be forwarded without a confirmation.
    pub const fn forwards(self) -> bool {
        matches!(self, Action::Allow | Action::Audit)
    }
}

impl PartialOrd for Action {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Action {
    fn cmp(&self, other: &Self) -> Ordering {
        self.strictness().cmp(&other.strictness())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may release a held statement. Policy key: `confirm = "self" | "approver"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confirm {
    /// The client repeats the statement with a one-time token.
    SelfConfirm,
    /// Someone else approves it through the admin API or CLI.
    Approver,
}

impl Confirm {
    /// The policy-file spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Confirm::SelfConfirm => "self",
            Confirm::Approver => "approver",
        }
    }

    /// Parses the policy-file spelling.
    pub fn from_name(s: &str) -> Option<Confirm> {
        match s {
            "self" => Some(Confirm::SelfConfirm),
            "approver" => Some(Confirm::Approver),
            _ => None,
        }
    }
}

impl fmt::Display for Confirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy's decision for one statement or one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The deciding rule's name; `None` = the environment's default (or `on_unparsed`).
    pub rule: Option<Arc<str>>,
    /// Shown to the client.
    pub message: Option<Arc<str>>,
    /// Meaningful for `Hold`.
    pub confirm: Confirm,
    /// Hold timeout (default 10 minutes).
    pub timeout: Duration,
    /// Which statement of a multi-statement message decided (0 for a single statement).
    pub statement_index: usize,
}

impl Verdict {
    /// A plain allow by the environment default, used for an empty message.
    pub fn allow() -> Verdict {
        Verdict {
            action: Action::Allow,
            rule: None,
            message: None,
            confirm: Confirm::Approver,
            timeout: DEFAULT_HOLD_TIMEOUT,
            statement_index: 0,
        }
    }

    /// Strictness rank used to combine verdicts: the action first, then, between
    /// holds, an approver hold is stricter than a self-confirmed one.
    pub fn rank(&self) -> (u8, u8) {
        let confirm = match (self.action, self.confirm) {
            (Action::Hold, Confirm::Approver) => 1,
            _ => 0,
        };
        (self.action.strictness(), confirm)
    }

    /// True when `self` is strictly stricter than `other` (ties keep `other`).
    pub fn stricter_than(&self, other: &Verdict) -> bool {
        self.rank() > other.rank()
    }
}

/// The session facts a policy matches on.
#[derive(Debug, Clone, Copy)]
pub struct SessionContext<'a> {
    pub environment: &'a str,
    pub target: &'a str,
    pub database: &'a str,
    pub user: &'a str,
    /// `application_name` from the startup packet (may be empty).
    pub application: &'a str,
    /// `None` for Unix-socket clients; a rule with `clients` never matches them.
    pub client_addr: Option<IpAddr>,
    pub now: jiff::Timestamp,
}
