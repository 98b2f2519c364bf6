//! pgwarden: a guarded PostgreSQL proxy.
//!
//! The data path is one-way: bytes from a client are framed (`protocol`), the
//! statements they carry are classified (`classify`), the policy decides (`policy`),
//! the session carries out the decision (`session`), the audit log records it.
//! Only `session` and `app` do I/O on the data path. Held statements wait in `hold`,
//! which keeps them in memory or, with `[control]`, in a PostgreSQL database shared
//! by replicas (`control`, its own connection, off the data path).

pub mod admin;
pub mod app;
pub mod audit;
pub mod classify;
pub mod config;
pub mod control;
pub mod demo;
pub mod explain;
pub mod hold;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod policy_watch;
pub mod protocol;
pub mod session;
pub mod sign;
pub mod tls;
