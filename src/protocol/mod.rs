//! Sans-IO PostgreSQL v3 wire protocol: framing, message views, startup packets and
//! the few messages pgwarden originates. No tokio here: everything works on buffers.

pub mod backend;
pub mod frame;
pub mod frontend;
pub mod originate;
pub mod sqlstate;
pub mod startup;

pub use frame::{Frame, FrameError, Header, Message};

/// Default cap on one regular message's declared length (256 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// PostgreSQL's own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP_PACKET: usize = 10_000;

/// Cap on one message of the authentication exchange, either side (declared length).
/// PostgreSQL reads a password or SASL reply with a limit of PG_MAX_AUTH_TOKEN_LENGTH
/// (65535 bytes), so nothing it would accept is refused, and a client that has not
/// authenticated cannot make pgwarden buffer `max_message_size` bytes.
pub const MAX_AUTH_MESSAGE: usize = 65_535 + 4;

/// Reads a NUL-terminated string at the start of `buf`; returns it and the rest.
pub(crate) fn cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = buf.iter().position(|&b| b == 0)?;
    Some((&buf[..end], &buf[end + 1..]))
}

pub(crate) fn be_i32(buf: &[u8]) -> Option<i32> {
    let b: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(b))
}

pub(crate) fn be_i16(buf: &[u8]) -> Option<i16> {
    let b: [u8; 2] = buf.get(..2)?.try_into().ok()?;
    Some(i16::from_be_bytes(b))
}
