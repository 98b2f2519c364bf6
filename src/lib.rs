//! pgwarden: a guarded PostgreSQL proxy.
//!
//! The data path is one-way: bytes from a client are framed (`protocol`), the
//! statements they carry are classified (`classify`), the policy decides (`policy`),
//! the session carries out the decision (`session`), the audit log records it.
//! Only `session` and `app` do I/O on the data path. Held statements wait in `hold`,
//! which keeps them in memory or, with `[control]`, in a PostgreSQL database shared
//! by replicas (`control`, its own connection, off the data path).
//!
//! # Module map
//!
//! ```text
//! main.rs            the command line (clap); exit codes; the only anyhow
//! app                wiring: listeners, one task per connection, signals, drain
//! shared             what every session shares (Shared); policy load, swap, reload
//! config/            proxy.toml: raw serde structs → validated Config (file:line: key)
//!   units            the one duration grammar (proxy.toml and policy) and sizes
//! protocol/          sans-IO wire protocol, no tokio
//!   frame            framing: Frame/Message, made only after the length is checked
//!   startup          StartupMessage, SSLRequest, GSSENCRequest, CancelRequest
//!   frontend/backend views of the client's and the server's messages
//!   originate        messages pgwarden sends itself (errors, notices, …)
//!   sqlstate         SQLSTATE constants
//! session/           one client connection
//!   mod              startup, routing, authentication relay (capped messages)
//!   relay            the async driver after authentication: moves bytes, bounded
//!   core/            the pure core: one Phase, reply queue, facts; messages in, steps out
//!   guard            the decision on each client message; the only Permit maker
//!     holds, metrics holds and tokens; the guard's metrics (probe, trash: theirs)
//!   replies          the queue of expected server replies; out-of-sync detection
//!   state            facts the server reported (application_name, encoding, key)
//!   cancel           routing CancelRequests to the server that issued the key
//!   upstream/stream  connecting to a target (TCP, TLS)
//! classify/          pure: SQL text → classified statements (pg_query's parser)
//! policy/            pure: compiled rules; evaluate(statement, session) → Verdict
//! policy_watch       when a changed policy file may be reloaded
//! catalog/           pure: a target's keys, row estimates and blast radius
//! impact/            pure: the impact probe's statements and the reading of replies
//! hold/              held statements: the hold store, one-time tokens, events
//! control/           holds in a PostgreSQL database shared by replicas ([control])
//! audit/             typed events, hash chain, JSON-lines writer, verify
//! admin/             the admin HTTP API (axum) and the `pgwarden holds` client
//! metrics            Prometheus metrics with bounded label sets
//! explain            `pgwarden explain`, pure part
//! trash/             drops kept recoverable: plans, registry, restore, purge
//! demo/              `pgwarden demo`
//! tls, sign          rustls configurations; HMAC for cookies and webhooks
//! fuzz               the checks behind the cargo-fuzz targets in fuzz/
//! ```

pub mod admin;
pub mod app;
pub mod audit;
pub mod catalog;
pub mod classify;
pub mod config;
pub mod control;
pub mod demo;
pub mod explain;
#[doc(hidden)]
pub mod fuzz;
pub mod hold;
pub mod impact;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod policy_watch;
pub mod protocol;
pub mod session;
pub mod shared;
pub mod sign;
pub mod startup_gate;
pub mod tls;
pub mod trash;
