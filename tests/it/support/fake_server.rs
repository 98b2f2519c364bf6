//! A scripted PostgreSQL server on 127.0.0.1: it refuses TLS, reads the startup packet
//! and hands each connection to a script, for tests of what a broken or hostile
//! server can make pgwarden do. Only what a script writes is sent.

use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::raw::message;

const SSL_REQUEST_CODE: u32 = 80_877_103;

/// A listening fake server; stops accepting when dropped.
pub struct FakeServer {
    pub port: u16,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Accepts connections on a free port of 127.0.0.1; each runs `script` in its own
    /// task once its startup packet has been read (SSLRequests answered `N`).
    pub async fn start<F, Fut>(script: F) -> FakeServer
    where
        F: Fn(FakeConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake server");
        let port = listener.local_addr().expect("fake server address").port();
        let script = Arc::new(script);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let mut conn = FakeConn {
                        stream,
                        buf: Vec::new(),
                        startup: Vec::new(),
                    };
                    if conn.read_startup().await {
                        script(conn).await;
                    }
                });
            }
        });
        FakeServer { port, task }
    }
}

/// One connection to the fake server.
pub struct FakeConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// The startup packet (length word included).
    pub startup: Vec<u8>,
}

impl FakeConn {
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn read_startup(&mut self) -> bool {
        loop {
            while self.buf.len() < 8 {
                if !self.fill().await {
                    return false;
                }
            }
            let len =
                u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            let code = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
            while self.buf.len() < len {
                if !self.fill().await {
                    return false;
                }
            }
            let packet: Vec<u8> = self.buf.drain(..len).collect();
            if code == SSL_REQUEST_CODE && len == 8 {
                if self.send(b"N").await.is_err() {
                    return false;
                }
                continue;
            }
            self.startup = packet;
            return true;
        }
    }

    /// Reads one frontend message (tag, body); `None` once the peer has closed.
    pub async fn read_message(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if len >= 4 && self.buf.len() > len {
                    let m: Vec<u8> = self.buf.drain(..1 + len).collect();
                    return Some((m[0], m[5..].to_vec()));
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// AuthenticationOk, the usual parameters, BackendKeyData and ReadyForQuery.
    pub async fn accept_login(&mut self) -> std::io::Result<()> {
        let mut out = message(b'R', &0i32.to_be_bytes());
        for (k, v) in [
            ("client_encoding", "UTF8"),
            ("standard_conforming_strings", "on"),
            ("server_version", "15.0"),
        ] {
            out.extend(message(b'S', format!("{k}\0{v}\0").as_bytes()));
        }
        let mut key = 4242i32.to_be_bytes().to_vec();
        key.extend_from_slice(&7i32.to_be_bytes());
        out.extend(message(b'K', &key));
        out.extend(ready());
        self.send(&out).await
    }

    /// Sends a header declaring a `declared`-byte body of message `tag`, then `sent`
    /// bytes of it in 1 MiB pieces; stops early (Err) once the peer stops taking them.
    pub async fn send_oversized(
        &mut self,
        tag: u8,
        declared: u32,
        sent: usize,
    ) -> std::io::Result<()> {
        let mut head = vec![tag];
        head.extend_from_slice(&(declared + 4).to_be_bytes());
        self.send(&head).await?;
        send_filler(&mut self.stream, sent).await
    }
}

/// `n` bytes of `x` in 1 MiB writes.
pub async fn send_filler(stream: &mut TcpStream, n: usize) -> std::io::Result<()> {
    let chunk = vec![b'x'; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        stream.write_all(&chunk[..k]).await?;
        left -= k;
    }
    Ok(())
}

/// ReadyForQuery, idle.
pub fn ready() -> Vec<u8> {
    message(b'Z', b"I")
}

/// CommandComplete with `tag`.
pub fn complete(tag: &str) -> Vec<u8> {
    message(b'C', format!("{tag}\0").as_bytes())
}
