//! `policy.example.toml` parses cleanly and gives the expected verdicts.

use std::sync::OnceLock;

use pgwarden::classify::{Class, Statement};
use pgwarden::policy::{Action, Confirm, Policy, SessionContext};

fn example() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml");
        Policy::load(&path).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn st(classes: &[&str], objects: &[&str]) -> Statement {
    Statement {
        sql: String::new(),
        classes: classes
            .iter()
            .map(|c| Class::from_name(c).unwrap())
            .collect(),
        objects: objects.iter().map(|o| o.to_string()).collect(),
        fingerprint: String::new(),
        prepares: None,
        executes: None,
        deallocates: None,
        asks: Vec::new(),
    }
}

fn ctx(env: &str) -> SessionContext<'_> {
    SessionContext {
        environment: env,
        target: "prod",
        database: "app",
        user: "alice",
        application: "psql",
        client_addr: None,
        now: "2025-06-11T10:00:00Z".parse().unwrap(),
    }
}

#[test]
fn example_parses_without_warnings() {
    let p = example();
    assert_eq!(p.warnings(), &[] as &[String]);
    assert!(p.rule_count() >= 10);
    for env in ["production", "staging", "development"] {
        assert!(p.has_defaults_for(env), "{env}");
    }
}

macro_rules! example_verdicts {
    ($($name:ident: $env:expr, [$($c:expr),*] => $action:ident $(/ $confirm:ident)?;)*) => {$(
        #[test]
        fn $name() {
            let v = example().evaluate(&st(&[$($c),*], &["public.t"]), &ctx($env));
            assert_eq!(v.action, Action::$action, "{v:?}");
            $(assert_eq!(v.confirm, Confirm::$confirm, "{v:?}");)?
        }
    )*};
}

example_verdicts! {
    ex_read_allowed: "production", ["read"] => Allow;
    ex_insert_allowed: "production", ["write"] => Allow;
    // Measured writes: unmeasured (impact unknown) they wait for an approver; what
    // a measurement leads to is `measured_writes_*` below.
    ex_bounded_delete_unmeasured_held: "production", ["delete.bounded"] => Hold / Approver;
    ex_bounded_update_unmeasured_held: "production", ["update.bounded"] => Hold / Approver;
    ex_transaction_allowed: "production", ["transaction"] => Allow;
    ex_session_allowed: "production", ["session"] => Allow;
    ex_copy_out_audited: "production", ["copy.out"] => Audit;
    ex_create_table_audited: "production", ["create.other"] => Audit;
    ex_alter_other_audited: "production", ["alter.other"] => Audit;
    ex_search_path_audited: "production", ["session.search_path"] => Audit;
    ex_drop_table_held_approver: "production", ["drop.table"] => Hold / Approver;
    ex_drop_schema_held_approver: "production", ["drop.schema"] => Hold / Approver;
    ex_drop_owned_held_approver: "production", ["drop.owned"] => Hold / Approver;
    ex_truncate_held_approver: "production", ["truncate"] => Hold / Approver;
    ex_drop_column_held_approver: "production", ["alter.drop_column"] => Hold / Approver;
    ex_reassign_owned_held: "production", ["reassign_owned"] => Hold / Approver;
    ex_grant_held: "production", ["grant"] => Hold / Approver;
    ex_revoke_held: "production", ["revoke"] => Hold / Approver;
    ex_system_held: "production", ["system"] => Hold / Approver;
    ex_code_opaque_held_approver: "production", ["code.do", "code.opaque"] => Hold / Approver;
    ex_code_do_held_self: "production", ["code.do"] => Hold / SelfConfirm;
    ex_create_code_held_self: "production", ["create.code"] => Hold / SelfConfirm;
    ex_column_type_held_self: "production", ["alter.column_type"] => Hold / SelfConfirm;
    ex_rename_held_self: "production", ["alter.rename"] => Hold / SelfConfirm;
    ex_detach_held_self: "production", ["alter.detach_partition"] => Hold / SelfConfirm;
    ex_maybe_unbounded_unmeasured_held: "production", ["delete.maybe_unbounded"] => Hold / Approver;
    ex_maybe_unbounded_update_unmeasured_held: "production", ["update.maybe_unbounded"] => Hold / Approver;
    ex_merge_delete_unmeasured_held: "production", ["merge.delete", "write"] => Hold / Approver;
    ex_set_role_held: "production", ["session.role"] => Hold / SelfConfirm;
    ex_unparsed_held: "production", ["unparsed"] => Hold / SelfConfirm;
    ex_unbounded_delete_blocked: "production", ["delete.unbounded"] => Block;
    ex_unbounded_update_blocked: "production", ["update.unbounded"] => Block;
    ex_cte_delete_in_select_blocked: "production", ["read", "delete.unbounded"] => Block;
    ex_drop_database_blocked: "production", ["drop.database"] => Block;
    ex_copy_program_blocked: "production", ["copy.program"] => Block;
    ex_encoding_blocked: "production", ["session.encoding"] => Block;
    ex_string_literals_blocked: "production", ["session.string_literals"] => Block;
    ex_replication_role_blocked: "production", ["session.replication_role"] => Block;
    ex_unreadable_blocked: "production", ["unreadable"] => Block;
    ex_staging_drop_allowed: "staging", ["drop.table"] => Allow;
    ex_staging_unparsed_audited: "staging", ["unparsed"] => Audit;
    ex_development_unbounded_allowed: "development", ["delete.unbounded"] => Allow;
    ex_unknown_environment_blocked: "qa", ["read"] => Block;
}

/// Every destructive class is held or blocked in production.
#[test]
fn example_guards_every_destructive_class() {
    let p = example();
    let guarded = [
        "drop.*",
        "truncate",
        "delete.unbounded",
        "delete.maybe_unbounded",
        "delete.bounded",
        "update.unbounded",
        "update.maybe_unbounded",
        "update.bounded",
        "merge.delete",
        "merge.update",
        "insert.upsert",
        "alter.drop_column",
        "alter.column_type",
        "alter.rename",
        "alter.set_schema",
        "alter.detach_partition",
        "reassign_owned",
        "create.code",
        "code.do",
        "code.opaque",
        "code.call",
        "alter.role",
        "alter.database",
        "alter.owner",
        "alter.trigger",
        "alter.storage",
        "alter.cascade",
        "transaction.prepared",
        "system.catalog",
        "ddl.unlisted",
        "large_object.delete",
        "large_object.write",
        "alter.sequence",
        "copy.program",
        "grant",
        "revoke",
        "system",
        "session.encoding",
        "session.string_literals",
        "session.replication_role",
        "session.role",
        "session.other",
        "unreadable",
        "unparsed",
    ];
    for c in Class::ALL {
        let name = c.as_str();
        let is_guarded = guarded
            .iter()
            .any(|g| *g == name || (g.ends_with(".*") && name.starts_with(&g[..g.len() - 1])));
        let v = p.evaluate(&st(&[name], &[]), &ctx("production"));
        if is_guarded {
            assert!(
                matches!(v.action, Action::Hold | Action::Block),
                "{name}: {v:?}"
            );
        } else {
            assert!(
                matches!(v.action, Action::Allow | Action::Audit),
                "{name}: {v:?}"
            );
        }
    }
}

/// The example policy measures every DELETE/UPDATE/MERGE … DELETE that is not plainly
/// unbounded: within 1,000 rows and 10 % of each table (floor 10 rows) the production
/// default allows it; over them, or with the impact unknown, an approver decides.
#[test]
fn measured_writes_are_allowed_within_the_limits_and_held_over_them() {
    use pgwarden::policy::ImpactStep;
    let p = example();
    for classes in [
        &["delete.bounded"][..],
        &["delete.maybe_unbounded"],
        &["update.bounded"],
        &["update.maybe_unbounded"],
        &["merge.delete", "write"],
        &["merge.update", "write"],
        &["insert.upsert", "write"],
    ] {
        let stmts = vec![st(classes, &["public.t"])];
        let v = p.evaluate_all(&stmts, &ctx("production"));
        let ImpactStep::Probe(call) = p.impact_step(&stmts, &ctx("production"), &v) else {
            panic!("{classes:?} is not measured: {v:?}");
        };
        assert_eq!(&*call.rule, "large-writes-need-a-second-person");
        assert_eq!(
            (
                call.limits.rows,
                call.limits.share,
                call.limits.share_min_rows
            ),
            (Some(1000), Some(0.1), 10),
            "{classes:?}"
        );
        assert_eq!(
            (call.within.action, call.within.rule.as_deref()),
            (Action::Allow, None)
        );
        for o in [&call.over, &call.unknown] {
            assert_eq!(
                (o.action, o.confirm),
                (Action::Hold, Confirm::Approver),
                "{classes:?}"
            );
        }
        // Not in other environments.
        let v = p.evaluate_all(&stmts, &ctx("staging"));
        assert_eq!(p.impact_step(&stmts, &ctx("staging"), &v), ImpactStep::None);
    }
    // Unbounded ones stay blocked, unmeasured.
    let stmts = vec![st(&["delete.unbounded"], &["public.t"])];
    let v = p.evaluate_all(&stmts, &ctx("production"));
    assert_eq!(v.action, Action::Block);
    assert_eq!(
        p.impact_step(&stmts, &ctx("production"), &v),
        ImpactStep::None
    );
}
