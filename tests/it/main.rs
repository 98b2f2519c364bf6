//! The integration suite in one test binary: each module is one former test file
//! (real PostgreSQL clusters through the real proxy, plus CLI and file checks), so
//! `cargo test` links libpg_query and the TLS stack once instead of once per file.

#[macro_use]
mod support;
mod classify_support;

mod admin_https;
mod approver_page;
mod approver_trash;
mod audit_cli;
mod audit_full_disk;
mod audit_ops;
mod audit_proxy;
mod catalog_blast;
mod classify_adversarial;
mod classify_api;
mod classify_corpus;
mod classify_shapes;
mod classify_table;
mod cli_check;
mod cli_explain;
mod control_replicas;
mod control_tokens;
mod demo;
mod deploy_files;
mod deploy_manifests;
mod drain_signals;
mod enforce_adversarial;
mod enforce_approver;
mod enforce_benign;
mod enforce_blind_spots;
mod enforce_block;
mod enforce_confirm;
mod enforce_encodings;
mod enforce_lookup;
mod explain_report;
mod harness_smoke;
mod hold_blast;
mod hold_events;
mod impact_extended;
mod impact_probe;
mod impact_session;
mod metrics_reload;
mod notify_webhooks;
mod plans_alembic;
mod policy_check;
mod policy_engine;
mod policy_example;
mod policy_watch;
mod proxy_auth;
mod proxy_bounds;
mod proxy_bulk;
mod proxy_deep;
mod proxy_malformed;
mod proxy_queries;
mod proxy_routing;
mod proxy_sessions;
mod proxy_tls;
mod proxy_tools;
mod shutdown_cancel;
mod startup_guard;
mod startup_limit;
mod tools_migrations;
mod tools_production;
mod trash_proxy;
mod trash_table;
