//! Framing of tagged messages: check the header, then hand out whole messages.
//!
//! The declared length is validated before anything is allocated for the body: a
//! length below 4 or above the configured cap is an error, never a panic.

use thiserror::Error;

/// A protocol framing error; the session answers it with FATAL 08P01 and closes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("invalid message length {len} for message type '{}'", char::from(*.tag))]
    LengthTooSmall { tag: u8, len: i32 },
    #[error("message type '{}' of {len} bytes exceeds the limit of {max} bytes", char::from(*.tag))]
    TooLarge { tag: u8, len: usize, max: usize },
    #[error("invalid startup packet length {0}")]
    StartupLength(i32),
    #[error("malformed {0} message")]
    Malformed(&'static str),
}

/// The five-byte header of a tagged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub tag: u8,
    /// Total length on the wire, tag byte included (declared length + 1).
    pub total: usize,
}

impl Header {
    /// Length of the body (after tag and length word).
    pub fn body_len(&self) -> usize {
        self.total - 5
    }
}

/// One whole tagged message, borrowed from the buffer it was framed in. Only the
/// framer makes one, after checking the declared length against the cap and the
/// bytes at hand, so its body is always all there: nothing downstream slices a
/// buffer on the promise that something upstream checked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    tag: u8,
    body: &'a [u8],
}

impl<'a> Frame<'a> {
    pub fn tag(&self) -> u8 {
        self.tag
    }

    /// The bytes after tag and length word.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Length on the wire: tag, length word and body.
    pub fn total(&self) -> usize {
        5 + self.body.len()
    }
}

/// The whole message at the start of `buf`, if all of it is there.
pub fn next(buf: &[u8], max: usize) -> Result<Option<Frame<'_>>, FrameError> {
    let Some(h) = header(buf, max)? else {
        return Ok(None);
    };
    Ok(buf.get(5..h.total).map(|body| Frame { tag: h.tag, body }))
}

/// The start of a message that is not all there yet: its header and the part of its
/// body at hand (at most `upto` bytes), for reading a message while streaming it.
pub fn partial(buf: &[u8], max: usize, upto: usize) -> Result<Option<(Header, &[u8])>, FrameError> {
    let Some(h) = header(buf, max)? else {
        return Ok(None);
    };
    let end = buf.len().min(h.total).min(5 + upto);
    Ok(Some((h, buf.get(5..end).unwrap_or_default())))
}

/// A whole tagged message split off a read buffer (tag and length word included).
/// Made only by [`split_next`], so `tag` and `body` need no checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message(bytes::BytesMut);

impl Message {
    pub fn tag(&self) -> u8 {
        self.0.first().copied().unwrap_or_default()
    }

    pub fn body(&self) -> &[u8] {
        self.0.get(5..).unwrap_or_default()
    }

    /// The message as it came, to forward unchanged.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Splits the whole message at the start of `buf` off it, if all of it is there.
pub fn split_next(buf: &mut bytes::BytesMut, max: usize) -> Result<Option<Message>, FrameError> {
    match complete(buf, max)? {
        Some(h) => Ok(Some(Message(buf.split_to(h.total)))),
        None => Ok(None),
    }
}

/// Reads the header at the start of `buf`. `Ok(None)` means fewer than 5 bytes.
pub fn header(buf: &[u8], max: usize) -> Result<Option<Header>, FrameError> {
    let Some(head) = buf.get(..5) else {
        return Ok(None);
    };
    let tag = head[0];
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len < 4 {
        return Err(FrameError::LengthTooSmall { tag, len });
    }
    let len = len as usize;
    if len > max {
        return Err(FrameError::TooLarge { tag, len, max });
    }
    Ok(Some(Header {
        tag,
        total: len + 1,
    }))
}

/// If `buf` starts with a whole message, returns its header.
pub fn complete(buf: &[u8], max: usize) -> Result<Option<Header>, FrameError> {
    match header(buf, max)? {
        Some(h) if buf.len() >= h.total => Ok(Some(h)),
        _ => Ok(None),
    }
}

/// Length of an untagged startup-phase packet at the start of `buf`, validated
/// against PostgreSQL's own bounds. `Ok(None)` means fewer than 4 bytes so far.
pub fn startup_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(b) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if !(8..=super::MAX_STARTUP_PACKET as i32).contains(&len) {
        return Err(FrameError::StartupLength(len));
    }
    Ok(Some(len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn every_prefix_is_incomplete_until_the_end() {
        let m = msg(b'Q', b"SELECT 1\0");
        for i in 0..m.len() {
            assert_eq!(complete(&m[..i], 1024), Ok(None), "prefix {i}");
        }
        assert_eq!(
            complete(&m, 1024),
            Ok(Some(Header {
                tag: b'Q',
                total: m.len()
            }))
        );
    }

    #[test]
    fn lengths_below_four_are_errors() {
        for len in [-1i32, 0, 3, i32::MIN] {
            let mut m = vec![b'Q'];
            m.extend_from_slice(&len.to_be_bytes());
            assert!(matches!(
                header(&m, 1024),
                Err(FrameError::LengthTooSmall { .. })
            ));
        }
    }

    #[test]
    fn lengths_above_the_cap_are_errors_before_any_body_arrives() {
        let mut m = vec![b'D'];
        m.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            header(&m, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn frames_carry_exactly_their_body() {
        let mut m = msg(b'Q', b"SELECT 1\0");
        m.extend_from_slice(&msg(b'S', b""));
        let f = next(&m, 1024).unwrap().unwrap();
        assert_eq!(
            (f.tag(), f.body(), f.total()),
            (b'Q', &b"SELECT 1\0"[..], 14)
        );
        let g = next(&m[f.total()..], 1024).unwrap().unwrap();
        assert_eq!((g.tag(), g.body()), (b'S', &b""[..]));
        for i in 0..f.total() {
            assert_eq!(next(&m[..i], 1024), Ok(None), "prefix {i}");
        }
        let (h, part) = partial(&m[..8], 1024, 2).unwrap().unwrap();
        assert_eq!((h.total, part), (14, &b"SE"[..]));
        let mut b = bytes::BytesMut::from(&m[..]);
        let whole = split_next(&mut b, 1024).unwrap().unwrap();
        assert_eq!(
            (whole.tag(), whole.body(), whole.as_bytes().len()),
            (b'Q', &b"SELECT 1\0"[..], 14)
        );
        assert_eq!(&b[..], &msg(b'S', b"")[..]);
    }

    #[test]
    fn minimal_message_has_an_empty_body() {
        let m = msg(b'S', b"");
        let h = complete(&m, 16).unwrap().unwrap();
        assert_eq!(h.body_len(), 0);
    }

    #[test]
    fn startup_lengths_are_bounded() {
        assert_eq!(startup_len(&[0, 0, 0]), Ok(None));
        assert!(startup_len(&[0, 0, 0, 7]).is_err());
        assert!(startup_len(&10_001i32.to_be_bytes()).is_err());
        assert!(startup_len(&(-8i32).to_be_bytes()).is_err());
        assert_eq!(startup_len(&8i32.to_be_bytes()), Ok(Some(8)));
    }
}
