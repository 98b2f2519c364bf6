//! One client connection: startup (TLS, cancel, protocol negotiation), routing,
//! authentication relayed to the target, then the relay with its per-message guard.

mod cancel;
pub mod core;
pub(crate) mod guard;
mod io;
mod recent;
mod relay;
pub mod replies;
pub mod state;
mod stream;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use crate::shared::Shared;
pub use cancel::CancelRegistry;
use io::{read_message, read_startup, send, ReadError};
use relay::{End, Hooks, Relay};
use state::SessionState;
pub use stream::Stream;

use crate::config::Target;
use crate::protocol::backend::{self, Auth};
use crate::protocol::sqlstate::SqlState;
use crate::protocol::startup::{self, StartupMessage, StartupPacket};
use crate::protocol::{frontend, originate};

/// Why the startup phase ended without a session.
#[derive(Debug, thiserror::Error)]
enum StartupError {
    #[error("client: {0}")]
    Read(#[from] ReadError),
    #[error("client i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Already answered with an error message to the client.
    #[error("refused: {0}")]
    Refused(String),
}

/// Serves one accepted client connection to its end; `startup` is its slot among
/// the connections still starting up.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    startup: crate::startup_gate::Permit,
) {
    let cfg = &shared.config;
    let timeout = cfg.server.startup_timeout;
    let mut cbuf = BytesMut::with_capacity(1024);
    let opened = tokio::time::timeout(timeout, open(tcp, peer, &mut cbuf, &shared)).await;
    // Startup is over (authenticated, refused or timed out): free its slot.
    drop(startup);
    let (client, startup, raw, target, server, sbuf) = match opened {
        Err(_) => {
            debug!(%peer, "startup timed out");
            return;
        }
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "startup ended");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Ok(Some(s))) => s,
    };
    let _ = raw;
    let user = startup.user().unwrap_or_default().to_string();
    let database = startup.database().unwrap_or_default().to_string();
    let session_id = shared
        .next_session
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    info!(%peer, %user, %database, target = %target.name, session = session_id, "session authenticated");
    let guard = guard::Guard::new(
        Arc::clone(&shared),
        target.clone(),
        user.clone(),
        database,
        startup
            .get("application_name")
            .unwrap_or_default()
            .to_string(),
        Some(peer.ip()),
        session_id,
    );
    let started = std::time::Instant::now();
    shared.audit.record(crate::audit::Event::SessionStart(
        crate::audit::SessionStart {
            session: session_id,
            client: Some(peer.to_string()),
            user: user.clone(),
            database: guard.database.clone(),
            application: guard.application.clone(),
            target: target.name.clone(),
            environment: target.environment.clone(),
            tls: client.is_tls(),
            shadow: target.mode == crate::config::TargetMode::Shadow,
        },
    ));
    let mut relay = Relay::new(client, server, cbuf, cfg.server.max_message_size, guard);
    relay.sbuf = sbuf;
    let mut hooks = SessionHooks {
        shared: &shared,
        target: &target,
        registration: None,
    };
    let end = relay.run(&mut hooks, shutdown).await;
    shared
        .audit
        .record(crate::audit::Event::SessionEnd(crate::audit::SessionEnd {
            session: session_id,
            statements: relay.guard.statement_id(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            reason: Some(format!("{end:?}")),
        }));
    match end {
        End::ClientClosed | End::ClientTerminated | End::ServerClosed | End::Drained => {
            info!(%peer, %user, target = %target.name, reason = ?end, "session ended")
        }
        other => {
            warn!(%peer, %user, target = %target.name, reason = ?other, "session ended with an error")
        }
    }
}

struct SessionHooks<'a> {
    shared: &'a Shared,
    target: &'a Target,
    registration: Option<cancel::Registration>,
}

impl Hooks for SessionHooks<'_> {
    fn backend_key(&mut self, state: &SessionState, cancel: &Arc<cancel::CancelSignal>) {
        if let Some((pid, key)) = &state.backend_key {
            self.registration = Some(self.shared.cancels.register(
                *pid,
                key.clone(),
                &self.target.name,
                Arc::clone(cancel),
            ));
        }
    }
}

type Opened = (Stream, StartupMessage, BytesMut, Target, Stream, BytesMut);

/// Startup and authentication. `Ok(None)`: the connection was a cancel request or
/// ended cleanly before a session began.
async fn open(
    tcp: TcpStream,
    peer: SocketAddr,
    cbuf: &mut BytesMut,
    shared: &Shared,
) -> Result<Option<Opened>, StartupError> {
    let cfg = &shared.config;
    let mut client = Stream::Plain(tcp);
    let (startup_msg, raw) = loop {
        let packet = match read_startup(&mut client, cbuf).await {
            // PostgreSQL closes without a word on an impossible length (e.g. a
            // Terminate sent before any startup packet); clients expect exactly that.
            Err(ReadError::Protocol(e @ crate::protocol::FrameError::StartupLength(_))) => {
                return Err(StartupError::Refused(e.to_string()))
            }
            Err(ReadError::Protocol(e)) => {
                return Err(refuse(&mut client, SqlState::PROTOCOL_VIOLATION, &e.to_string()).await)
            }
            other => other?,
        };
        match startup::parse(&packet) {
            Err(e) => {
                return Err(
                    refuse(&mut client, SqlState::PROTOCOL_VIOLATION, &e.to_string()).await,
                );
            }
            Ok(StartupPacket::SslRequest) => {
                let Some(acceptor) = shared.client_tls.as_ref().filter(|_| !client.is_tls()) else {
                    send(&mut client, b"N").await?;
                    continue;
                };
                send(&mut client, b"S").await?;
                if !cbuf.is_empty() {
                    // Bytes sent before the handshake could be injected by anyone on
                    // the path; PostgreSQL refuses them the same way.
                    return Err(refuse(
                        &mut client,
                        SqlState::PROTOCOL_VIOLATION,
                        "received unencrypted data after SSL request",
                    )
                    .await);
                }
                let Stream::Plain(tcp) = client else {
                    return Err(StartupError::Refused("TLS requested twice".into()));
                };
                client = Stream::Accepted(Box::new(acceptor.accept(tcp).await?));
            }
            Ok(StartupPacket::GssEncRequest) => {
                send(&mut client, b"N").await?;
            }
            Ok(StartupPacket::Cancel { pid, key }) => {
                forward_cancel(shared, pid, &key).await;
                return Ok(None);
            }
            Ok(StartupPacket::Startup(m)) => break (m, packet),
        }
    };
    if let Some(key) = startup_msg.repeated_key() {
        let msg = format!(
            "pgwarden refuses a startup packet that gives parameter \"{key}\" more than once"
        );
        return Err(refuse(&mut client, SqlState::PROTOCOL_VIOLATION, &msg).await);
    }
    if startup_msg.major != 3 {
        let msg = format!(
            "unsupported frontend protocol {}.{}: pgwarden supports 3.0",
            startup_msg.major, startup_msg.minor
        );
        return Err(refuse(&mut client, SqlState::FEATURE_NOT_SUPPORTED, &msg).await);
    }
    if shared.tls_required && !client.is_tls() {
        return Err(refuse(
            &mut client,
            SqlState::INVALID_AUTHORIZATION,
            "pgwarden requires TLS: connect with sslmode=require or stronger",
        )
        .await);
    }
    let Some(user) = startup_msg.user() else {
        return Err(refuse(
            &mut client,
            SqlState::INVALID_AUTHORIZATION,
            "no PostgreSQL user name specified in startup packet",
        )
        .await);
    };
    if startup_msg
        .get("replication")
        .is_some_and(|v| v != "false" && v != "off" && v != "0" && v != "no")
    {
        return Err(refuse(
            &mut client,
            SqlState::FEATURE_NOT_SUPPORTED,
            "replication connections are not supported through pgwarden",
        )
        .await);
    }
    let database = startup_msg.database().unwrap_or(user).to_string();
    let Some(target) = cfg.route(&database).cloned() else {
        let msg = format!(
            "database \"{database}\" is not routed by pgwarden: no target lists it and there is no default target"
        );
        return Err(refuse(&mut client, SqlState::INVALID_CATALOG_NAME, &msg).await);
    };

    if let Some(msg) = judge_startup_settings(shared, &target, &startup_msg, &database, peer) {
        return Err(refuse(&mut client, SqlState::PW_BLOCKED, &msg).await);
    }

    let tls = shared
        .upstream_tls
        .get(&target.name)
        .and_then(Option::as_ref);
    let mut server = match upstream::connect(&target, tls, cfg.server.tcp_keepalive).await {
        Ok(s) => s,
        Err(e) => {
            warn!(target = %target.name, error = %e, "upstream connection failed");
            shared
                .metrics
                .upstream_connect_errors
                .get_or_create(&crate::metrics::TargetLabels {
                    target: target.name.clone(),
                })
                .inc();
            let msg = format!(
                "pgwarden could not connect to the server of target \"{}\"",
                target.name
            );
            return Err(refuse(&mut client, SqlState::CONNECTION_FAILURE, &msg).await);
        }
    };

    // Startup parameters go through verbatim unless the protocol must be negotiated
    // down, which pgwarden does itself (it relays only 3.0).
    let unsupported = startup_msg.protocol_options();
    if startup_msg.minor > 0 || !unsupported.is_empty() {
        send(&mut server, &startup_msg.encode_v3_0()).await?;
        send(
            &mut client,
            &originate::negotiate_protocol_version(startup::PROTOCOL_3_0, &unsupported),
        )
        .await?;
    } else {
        send(&mut server, &raw).await?;
    }
    let mut sbuf = BytesMut::with_capacity(4096);
    authenticate(&mut client, cbuf, &mut server, &mut sbuf).await?;
    Ok(Some((client, startup_msg, raw, target, server, sbuf)))
}

/// Startup parameters and `options` switches are settings made before the first
/// statement: the policy judges them as the equivalent SET statements. Anything it
/// would not simply allow refuses the connection (a startup packet cannot wait for
/// a confirmation); the text says what to do instead.
fn judge_startup_settings(
    shared: &Shared,
    target: &Target,
    startup: &StartupMessage,
    database: &str,
    peer: SocketAddr,
) -> Option<String> {
    let stmts = crate::classify::startup_settings(&startup.params);
    if stmts.is_empty() || target.mode == crate::config::TargetMode::Shadow {
        return None;
    }
    let ctx = crate::policy::SessionContext {
        environment: &target.environment,
        target: &target.name,
        database,
        user: startup.user().unwrap_or_default(),
        application: startup.get("application_name").unwrap_or_default(),
        client_addr: Some(peer.ip()),
        now: jiff::Timestamp::now(),
    };
    let verdict = shared.policy().evaluate_all(&stmts, &ctx);
    if verdict.action.forwards() {
        return None;
    }
    let stmt = stmts.get(verdict.statement_index)?;
    let classes: Vec<&str> = stmt.classes.iter().map(|c| c.as_str()).collect();
    let rule = verdict
        .rule
        .as_deref()
        .map(|r| format!("rule \"{r}\""))
        .unwrap_or_else(|| format!("the {} default", target.environment));
    warn!(%peer, target = %target.name, setting = %stmt.sql, "startup setting refused");
    Some(format!(
        "pgwarden refused the connection: {} ({}) would be {} by {rule} on target \"{}\"; \
         a startup setting cannot be confirmed, set it with SET after connecting",
        stmt.sql,
        classes.join(", "),
        if verdict.action == crate::policy::Action::Block {
            "blocked"
        } else {
            "held"
        },
        target.name
    ))
}

/// Sends a FATAL error and ends the startup phase.
async fn refuse(client: &mut Stream, code: SqlState, message: &str) -> StartupError {
    let _ = send(client, &originate::fatal(code, message)).await;
    StartupError::Refused(message.to_string())
}

/// Relays authentication until AuthenticationOk. Only password messages from the
/// client reach the server before that. Every message of the exchange, from either
/// side, is capped at `MAX_AUTH_MESSAGE`.
async fn authenticate(
    client: &mut Stream,
    cbuf: &mut BytesMut,
    server: &mut Stream,
    sbuf: &mut BytesMut,
) -> Result<(), StartupError> {
    let max = crate::protocol::MAX_AUTH_MESSAGE;
    loop {
        let msg = match read_message(server, sbuf, max).await {
            Ok(m) => m,
            Err(ReadError::Protocol(e)) => {
                warn!(error = %e, "invalid message from the server during authentication");
                let text =
                    "pgwarden received an invalid message from the server during authentication";
                return Err(refuse(client, SqlState::CONNECTION_FAILURE, text).await);
            }
            Err(e) => {
                let text = "pgwarden lost the server connection during authentication";
                warn!(error = %e, "{text}");
                return Err(refuse(client, SqlState::CONNECTION_FAILURE, text).await);
            }
        };
        let body = msg.body();
        let expects_reply = match msg.tag() {
            backend::AUTHENTICATION => match backend::auth(body) {
                Some(Auth::Ok) => {
                    send(client, msg.as_bytes()).await?;
                    return Ok(());
                }
                Some(Auth::Sasl(mechs)) => {
                    // TLS ends at pgwarden, so channel binding cannot pass through.
                    let kept: Vec<&[u8]> = mechs
                        .into_iter()
                        .filter(|m| !m.ends_with(b"-PLUS"))
                        .collect();
                    send(client, &originate::auth_sasl(&kept)).await?;
                    true
                }
                Some(Auth::CleartextPassword | Auth::Md5Password | Auth::SaslContinue) => {
                    send(client, msg.as_bytes()).await?;
                    true
                }
                Some(Auth::SaslFinal) => {
                    send(client, msg.as_bytes()).await?;
                    false
                }
                Some(Auth::Unsupported(code)) => {
                    let text = format!("authentication method {code} requested by the server is not supported by pgwarden");
                    return Err(refuse(client, SqlState::FEATURE_NOT_SUPPORTED, &text).await);
                }
                None => {
                    return Err(refuse(
                        client,
                        SqlState::CONNECTION_FAILURE,
                        "invalid authentication request from the server",
                    )
                    .await);
                }
            },
            backend::ERROR_RESPONSE => {
                // The server's own error (wrong password, no such database…), unchanged.
                let _ = send(client, msg.as_bytes()).await;
                return Err(StartupError::Refused(
                    "server refused authentication".into(),
                ));
            }
            backend::NOTICE_RESPONSE | backend::NEGOTIATE_PROTOCOL_VERSION => {
                send(client, msg.as_bytes()).await?;
                false
            }
            _ => {
                return Err(refuse(
                    client,
                    SqlState::CONNECTION_FAILURE,
                    "unexpected message from the server during authentication",
                )
                .await);
            }
        };
        if expects_reply {
            let reply = match read_message(client, cbuf, max).await {
                Ok(r) => r,
                Err(ReadError::Protocol(e)) => {
                    return Err(refuse(client, SqlState::PROTOCOL_VIOLATION, &e.to_string()).await);
                }
                Err(e) => return Err(e.into()),
            };
            if reply.tag() != frontend::PASSWORD {
                return Err(refuse(
                    client,
                    SqlState::PROTOCOL_VIOLATION,
                    &format!(
                        "expected password response, got message type {}",
                        reply.tag()
                    ),
                )
                .await);
            }
            send(server, reply.as_bytes()).await?;
        }
    }
}

/// Cancels every live session's running statement on its server (when the drain's
/// grace period is over): each then ends with 57014, its outcome is recorded, and
/// the now idle session closes with 57P01 as the drain does.
pub async fn cancel_all(shared: &Arc<Shared>) {
    let mut cancels = tokio::task::JoinSet::new();
    for (pid, key) in shared.cancels.keys() {
        let shared = Arc::clone(shared);
        cancels.spawn(async move { forward_cancel(&shared, pid, &key).await });
    }
    while cancels.join_next().await.is_some() {}
}

/// Sends a cancel request to the server that issued the key; silent, as PostgreSQL is.
async fn forward_cancel(shared: &Shared, pid: i32, key: &[u8]) {
    let Some(entry) = shared.cancels.lookup(pid, key) else {
        debug!(pid, "cancel request for an unknown key ignored");
        return;
    };
    // A held statement is not on the server: the session withdraws it itself, and
    // the server must not see the cancel (it would hit the client's next statement).
    if entry.signal.cancel() {
        return;
    }
    let Some(target) = shared.config.target(&entry.target) else {
        return;
    };
    let tls = shared
        .upstream_tls
        .get(&target.name)
        .and_then(Option::as_ref);
    match upstream::connect(target, tls, None).await {
        Ok(mut s) => {
            let _ = send(&mut s, &startup::encode_cancel(pid, key)).await;
            // Wait for the server to close, so the cancel is delivered before we return.
            let mut b = BytesMut::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio::io::AsyncReadExt::read_buf(&mut s, &mut b),
            )
            .await;
        }
        Err(e) => warn!(target = %target.name, error = %e, "could not forward cancel request"),
    }
}
