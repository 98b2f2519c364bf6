//! The seam where every client message gets a decision before it may reach the
//! server. Only this module can make a `Permit`, and the relay's only way to queue
//! bytes for the server takes one.

use crate::protocol::frontend;

/// Proof that a message was decided on and may be forwarded.
#[derive(Debug)]
pub struct Permit(());

/// The decision for one client message.
#[derive(Debug)]
pub enum Decision {
    Forward(Permit),
    /// Refuse the message: send these bytes to the client instead and close.
    Reject(Vec<u8>),
}

/// Decides on a whole client message after authentication.
pub fn decide(tag: u8, _body: &[u8]) -> Decision {
    if frontend::is_known(tag) {
        // Policy enforcement plugs in here; until then every known message passes.
        Decision::Forward(Permit(()))
    } else {
        Decision::Reject(crate::protocol::originate::fatal(
            crate::protocol::sqlstate::SqlState::PROTOCOL_VIOLATION,
            &format!("invalid frontend message type {}", tag),
        ))
    }
}

/// A permit for pgwarden's own protocol bookkeeping (Terminate on close).
pub(crate) fn internal() -> Permit {
    Permit(())
}
