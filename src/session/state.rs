//! What the server has told a session (transaction status, parameters, key, owed
//! ReadyForQuery messages, COPY IN): part of the session core (`core/`), which
//! feeds it every whole server message and every forwarded client message.

use crate::classify::SessionFacts;
use crate::protocol::{backend, frontend};

/// Server-reported facts and the reply bookkeeping of one session.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    /// The server's last reported `application_name` (policies match on it). No other
    /// parameter is kept: a server that reports millions of distinct names costs
    /// nothing.
    pub application_name: Option<String>,
    /// BackendKeyData (pid, secret), for routing cancel requests.
    pub backend_key: Option<(i32, Vec<u8>)>,
    /// ReadyForQuery messages still owed by the server (one per Query or Sync sent).
    pub pending_ready: usize,
    /// True between CopyInResponse and the client's CopyDone/CopyFail.
    pub copy_in: bool,
    /// Session facts the classifier needs, recomputed when a parameter changes.
    pub facts: SessionFacts,
    /// ParameterStatus messages seen so far: whoever reads `params` can tell
    /// whether anything changed since it last looked.
    pub params_seen: u64,
    /// The transaction status of the last ReadyForQuery (`I`, `T` or `E`; `I` before
    /// the first): the impact probe opens a savepoint inside a transaction and a
    /// transaction outside one.
    pub tx_status: u8,
}

/// What the driver must do after the server sent a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    None,
    /// The server handed out its cancel key: register it.
    BackendKey,
}

impl SessionState {
    /// True when no statement is in flight: safe to close during a drain.
    pub fn is_idle(&self) -> bool {
        self.pending_ready == 0 && !self.copy_in
    }

    /// Records a whole server message (tag and body).
    pub fn observe_server(&mut self, tag: u8, body: &[u8]) -> ServerEvent {
        match tag {
            backend::READY_FOR_QUERY => {
                self.pending_ready = self.pending_ready.saturating_sub(1);
                self.copy_in = false;
                if let Some(status) = backend::ready_status(body) {
                    self.tx_status = status;
                }
            }
            backend::PARAMETER_STATUS => {
                if let Some((k, v)) = backend::parameter_status(body) {
                    self.set_param(k, v);
                }
            }
            backend::BACKEND_KEY_DATA => {
                if let Some((pid, key)) = backend::backend_key(body) {
                    self.backend_key = Some((pid, key.to_vec()));
                    return ServerEvent::BackendKey;
                }
            }
            backend::COPY_IN_RESPONSE | backend::COPY_BOTH_RESPONSE => self.copy_in = true,
            _ => {}
        }
        ServerEvent::None
    }

    /// Records a client message that the driver forwarded.
    pub fn observe_client(&mut self, tag: u8) {
        match tag {
            frontend::QUERY | frontend::SYNC | frontend::FUNCTION_CALL => self.pending_ready += 1,
            frontend::COPY_DONE | frontend::COPY_FAIL => self.copy_in = false,
            _ => {}
        }
    }

    fn set_param(&mut self, key: &str, value: &str) {
        match key {
            "client_encoding" => self.facts.client_encoding = value.to_ascii_uppercase(),
            "standard_conforming_strings" => {
                self.facts.standard_conforming_strings = !value.eq_ignore_ascii_case("off")
            }
            "application_name" => self.application_name = Some(value.to_string()),
            _ => return,
        }
        self.params_seen += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_owed_ready_for_query() {
        let mut s = SessionState::default();
        s.observe_client(b'Q');
        s.observe_client(b'P');
        s.observe_client(b'S');
        assert_eq!(s.pending_ready, 2);
        assert!(!s.is_idle());
        s.observe_server(b'Z', b"T");
        assert_eq!(s.pending_ready, 1);
        s.observe_server(b'Z', b"E");
        assert_eq!(s.pending_ready, 0);
        assert!(s.is_idle());
    }

    #[test]
    fn keeps_only_the_parameters_it_reads() {
        let mut s = SessionState::default();
        for i in 0..10_000 {
            s.observe_server(b'S', format!("x{i}\0v\0").as_bytes());
        }
        assert_eq!((s.params_seen, s.application_name.as_deref()), (0, None));
        s.observe_server(b'S', b"application_name\0psql\0");
        assert_eq!(
            (s.params_seen, s.application_name.as_deref()),
            (1, Some("psql"))
        );
    }

    #[test]
    fn tracks_facts_and_keys() {
        let mut s = SessionState::default();
        s.observe_server(b'S', b"standard_conforming_strings\0off\0");
        s.observe_server(b'S', b"client_encoding\0sjis\0");
        assert!(!s.facts.standard_conforming_strings);
        assert_eq!(s.facts.client_encoding, "SJIS");
        assert_eq!(
            s.observe_server(b'K', b"\0\0\0\x05abcd"),
            ServerEvent::BackendKey
        );
        assert_eq!(s.backend_key, Some((5, b"abcd".to_vec())));
    }

    #[test]
    fn copy_in_is_not_idle() {
        let mut s = SessionState::default();
        s.observe_client(b'Q');
        s.observe_server(b'G', b"\0\0\0");
        assert!(s.copy_in);
        s.observe_client(b'c');
        assert!(!s.copy_in);
        s.observe_server(b'Z', b"I");
        assert!(s.is_idle());
    }
}
