//! The phase of a session after authentication: what the core does with the next
//! whole client message.

use std::time::Instant;

/// One explicit phase instead of flags: each says whether client messages are
/// framed and decided on, dropped, or left waiting unframed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every whole client message gets a decision.
    Ready,
    /// After a refusal in the extended protocol the server skips to Sync; so does
    /// the core: client messages are dropped until Sync (or Terminate).
    SkipToSync,
    /// A statement waits for an approver (or for the control database): later client
    /// messages wait unframed in the driver's buffer until the hold ends.
    Holding(Hold),
    /// The impact probe (`relay/probe.rs`) or the trash (`relay/trash.rs`) runs the
    /// client's statement inside pgwarden's savepoint: nothing else is framed
    /// meanwhile.
    Probing,
    /// The session is ending: nothing more is framed or forwarded.
    Closed,
}

/// A held statement, as the core knows it (the ticket itself stays with the driver,
/// which waits on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// The hold's id in the hold queue (0: a token or plan being checked).
    pub id: u64,
    /// Whether the held message was an extended-protocol Parse.
    pub extended: bool,
    /// The held message's type.
    pub tag: u8,
    /// When it was held (for the hold-time histogram).
    pub since: Instant,
}

impl Phase {
    /// Whether the next whole client message is framed at all.
    pub fn frames(&self) -> bool {
        matches!(self, Phase::Ready | Phase::SkipToSync)
    }
}
