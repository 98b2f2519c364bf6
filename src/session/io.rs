//! Small async helpers for the startup phase: read whole packets into a buffer the
//! session owns (so a cancelled read loses nothing), write and flush.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::{frame, FrameError, Message};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed")]
    Eof,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Protocol(#[from] FrameError),
}

async fn fill<S: AsyncRead + Unpin>(s: &mut S, buf: &mut BytesMut) -> Result<(), ReadError> {
    buf.reserve(8192);
    if s.read_buf(buf).await? == 0 {
        return Err(ReadError::Eof);
    }
    Ok(())
}

/// Reads one untagged startup-phase packet (length word included).
pub async fn read_startup<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
) -> Result<BytesMut, ReadError> {
    loop {
        if let Some(len) = frame::startup_len(buf)? {
            if buf.len() >= len {
                return Ok(buf.split_to(len));
            }
        }
        fill(s, buf).await?;
    }
}

/// Reads one tagged message.
pub async fn read_message<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Message, ReadError> {
    loop {
        if let Some(m) = frame::split_next(buf, max)? {
            return Ok(m);
        }
        fill(s, buf).await?;
    }
}

pub async fn send<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}
