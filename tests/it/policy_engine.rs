//! Table-driven tests of the policy engine: one named case per row.

use std::net::IpAddr;

use pgwarden::classify::{Class, Statement};
use pgwarden::policy::{Action, Confirm, Policy, SessionContext};

// ---------------------------------------------------------------- helpers

fn st(classes: &[&str], objects: &[&str]) -> Statement {
    Statement {
        sql: String::new(),
        classes: classes
            .iter()
            .map(|c| Class::from_name(c).unwrap_or_else(|| panic!("no class {c}")))
            .collect(),
        objects: objects.iter().map(|o| o.to_string()).collect(),
        fingerprint: String::new(),
        prepares: None,
        executes: None,
        deallocates: None,
        asks: Vec::new(),
    }
}

#[derive(Clone)]
struct C {
    env: &'static str,
    target: &'static str,
    db: &'static str,
    user: &'static str,
    app: &'static str,
    ip: Option<IpAddr>,
    now: jiff::Timestamp,
}

/// production, target prod, db app, user alice, psql, 10.1.2.3, Wed 2025-06-11 10:00Z.
fn prod() -> C {
    C {
        env: "production",
        target: "prod",
        db: "app",
        user: "alice",
        app: "psql",
        ip: Some("10.1.2.3".parse().unwrap()),
        now: "2025-06-11T10:00:00Z".parse().unwrap(),
    }
}

impl C {
    fn env(mut self, v: &'static str) -> C {
        self.env = v;
        self
    }
    fn target(mut self, v: &'static str) -> C {
        self.target = v;
        self
    }
    fn db(mut self, v: &'static str) -> C {
        self.db = v;
        self
    }
    fn user(mut self, v: &'static str) -> C {
        self.user = v;
        self
    }
    fn app(mut self, v: &'static str) -> C {
        self.app = v;
        self
    }
    fn ip(mut self, v: &str) -> C {
        self.ip = Some(v.parse().unwrap());
        self
    }
    fn no_ip(mut self) -> C {
        self.ip = None;
        self
    }
    fn at(mut self, v: &str) -> C {
        self.now = v.parse().unwrap();
        self
    }
    fn ctx(&self) -> SessionContext<'_> {
        SessionContext {
            environment: self.env,
            target: self.target,
            database: self.db,
            user: self.user,
            application: self.app,
            client_addr: self.ip,
            now: self.now,
        }
    }
}

const DEFAULTS: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "hold", confirm = "self", timeout = "5m" }
staging = { action = "allow" }
development = { action = "audit", on_unparsed = "block" }
"#;

/// The standard defaults plus `rules`.
fn pol(rules: &str) -> Policy {
    let text = format!("{DEFAULTS}\n{rules}");
    Policy::parse(&text, "policy.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// One rule named `r` with `action = "block"` and the given conditions.
fn block_if(conditions: &str) -> Policy {
    pol(&format!(
        "[[rule]]\nname = \"r\"\naction = \"block\"\n{conditions}\n"
    ))
}

// The policy sketched in PRODUCT.md (with a read rule to exercise per-class decisions).
const PRODUCT: &str = r#"
[[rule]]
name = "no-unbounded-writes"
environment = "production"
classes = ["delete.unbounded", "update.unbounded"]
action = "block"
message = "Add a WHERE clause."

[[rule]]
name = "release-window"
environment = "production"
applications = ["flyway"]
users = ["deploy_*"]
hours = "Tue-Thu 09:00-16:00 Europe/Berlin"
action = "allow"

[[rule]]
name = "drops-need-a-second-person"
environment = "production"
classes = ["drop.*", "truncate", "alter.drop_column"]
objects = ["public.*", "billing.*"]
action = "hold"
confirm = "approver"
timeout = "10m"

[[rule]]
name = "reads-are-fine"
classes = ["read"]
action = "allow"

[[rule]]
name = "other-drops"
environment = "production"
classes = ["drop.*"]
action = "hold"
confirm = "self"
"#;

fn product() -> Policy {
    pol(PRODUCT)
}

macro_rules! verdicts {
    ($($name:ident: $pol:expr, $stmt:expr, $ctx:expr => $action:ident $(, $rule:literal)?;)*) => {$(
        #[test]
        fn $name() {
            let p = $pol;
            let s = $stmt;
            let c = $ctx;
            let v = p.evaluate(&s, &c.ctx());
            assert_eq!(v.action, Action::$action, "{v:?}");
            let want: Option<&str> = None $(.or(Some($rule)))?;
            assert_eq!(v.rule.as_deref(), want, "{v:?}");
        }
    )*};
}

// ---------------------------------------------------------------- rule order, defaults

verdicts! {
    order_unbounded_delete_blocked: product(), st(&["delete.unbounded"], &["public.t"]), prod() => Block, "no-unbounded-writes";
    order_bounded_delete_default: product(), st(&["delete.bounded"], &["public.t"]), prod() => Allow;
    order_drop_public_held: product(), st(&["drop.table"], &["public.users"]), prod() => Hold, "drops-need-a-second-person";
    order_drop_unqualified_is_public: product(), st(&["drop.table"], &["users"]), prod() => Hold, "drops-need-a-second-person";
    order_drop_billing_held: product(), st(&["drop.index"], &["billing.invoices_idx"]), prod() => Hold, "drops-need-a-second-person";
    order_drop_other_schema_falls_through: product(), st(&["drop.table"], &["audit.log"]), prod() => Hold, "other-drops";
    order_drop_no_objects_falls_through: product(), st(&["drop.owned"], &[]), prod() => Hold, "other-drops";
    order_truncate_held: product(), st(&["truncate"], &["public.a", "audit.b"]), prod() => Hold, "drops-need-a-second-person";
    order_truncate_other_schema_default: product(), st(&["truncate"], &["audit.b"]), prod() => Allow;
    order_release_window_allows_drop: product(), st(&["drop.table"], &["public.users"]), prod().user("deploy_ci").app("flyway").at("2025-06-11T08:00:00Z") => Allow, "release-window";
    order_release_window_still_blocks_unbounded: product(), st(&["delete.unbounded"], &["public.t"]), prod().user("deploy_ci").app("flyway").at("2025-06-11T08:00:00Z") => Block, "no-unbounded-writes";
    order_release_window_closed_monday: product(), st(&["drop.table"], &["public.users"]), prod().user("deploy_ci").app("flyway").at("2025-06-09T08:00:00Z") => Hold, "drops-need-a-second-person";
    order_release_window_wrong_app: product(), st(&["drop.table"], &["public.users"]), prod().user("deploy_ci").app("psql").at("2025-06-11T08:00:00Z") => Hold, "drops-need-a-second-person";
    order_release_window_wrong_user: product(), st(&["drop.table"], &["public.users"]), prod().user("alice").app("flyway").at("2025-06-11T08:00:00Z") => Hold, "drops-need-a-second-person";
    order_staging_drop_default: product(), st(&["drop.table"], &["public.users"]), prod().env("staging") => Allow;
    order_staging_unbounded_default: product(), st(&["delete.unbounded"], &[]), prod().env("staging") => Allow;
    first_match_wins_allow_before_block: pol("[[rule]]\nname = \"a\"\nusers = [\"dba\"]\naction = \"allow\"\n\n[[rule]]\nname = \"b\"\nclasses = [\"drop.*\"]\naction = \"block\"\n"), st(&["drop.table"], &["t"]), prod().user("dba") => Allow, "a";
    first_match_wins_second_rule_for_others: pol("[[rule]]\nname = \"a\"\nusers = [\"dba\"]\naction = \"allow\"\n\n[[rule]]\nname = \"b\"\nclasses = [\"drop.*\"]\naction = \"block\"\n"), st(&["drop.table"], &["t"]), prod().user("bob") => Block, "b";
    first_match_wins_hold_before_block: pol("[[rule]]\nname = \"a\"\nclasses = [\"drop.table\"]\naction = \"hold\"\n\n[[rule]]\nname = \"b\"\nclasses = [\"drop.*\"]\naction = \"block\"\n"), st(&["drop.table"], &["t"]), prod() => Hold, "a";
    default_production_allow: product(), st(&["read"], &["t"]), prod().env("production") => Allow, "reads-are-fine";
    default_production_write: product(), st(&["write"], &["t"]), prod() => Allow;
    default_development_audit: product(), st(&["write"], &["t"]), prod().env("development") => Audit;
    default_unknown_env_blocks: product(), st(&["write"], &["t"]), prod().env("qa") => Block;
    default_unknown_env_rule_still_applies: product(), st(&["read"], &["t"]), prod().env("qa") => Allow, "reads-are-fine";
    default_star_fallback: Policy::parse("[defaults]\n\"*\" = { action = \"audit\" }\nproduction = { action = \"allow\" }\n", "p.toml").unwrap(), st(&["write"], &[]), prod().env("qa") => Audit;
    default_star_not_used_when_listed: Policy::parse("[defaults]\n\"*\" = { action = \"audit\" }\nproduction = { action = \"allow\" }\n", "p.toml").unwrap(), st(&["write"], &[]), prod() => Allow;
    default_empty_policy_blocks: Policy::parse("", "p.toml").unwrap(), st(&["read"], &[]), prod() => Block;
    default_block_action: Policy::parse("[defaults]\nproduction = { action = \"block\" }\n", "p.toml").unwrap(), st(&["read"], &[]), prod() => Block;
}

// ---------------------------------------------------------------- on_unparsed

verdicts! {
    unparsed_production_holds: product(), st(&["unparsed"], &[]), prod() => Hold;
    unreadable_production_holds: product(), st(&["unreadable"], &[]), prod() => Hold;
    unparsed_empty_classes_fail_closed: product(), st(&[], &[]), prod() => Hold;
    unparsed_staging_follows_action: product(), st(&["unparsed"], &[]), prod().env("staging") => Allow;
    unparsed_development_explicit_block: product(), st(&["unparsed"], &[]), prod().env("development") => Block;
    unparsed_rule_decides_first: pol("[[rule]]\nname = \"u\"\nclasses = [\"unparsed\"]\naction = \"block\"\n"), st(&["unparsed"], &[]), prod() => Block, "u";
    unparsed_production_default_is_hold: Policy::parse("[defaults]\nproduction = { action = \"allow\" }\n", "p.toml").unwrap(), st(&["unparsed"], &[]), prod() => Hold;
    unparsed_non_production_default_is_action: Policy::parse("[defaults]\nqa = { action = \"audit\" }\n", "p.toml").unwrap(), st(&["unparsed"], &[]), prod().env("qa") => Audit;
    unparsed_read_rule_does_not_cover_unreadable: pol("[[rule]]\nname = \"reads\"\nclasses = [\"read\"]\naction = \"allow\"\n"), st(&["read", "unreadable"], &[]), prod() => Hold;
    unparsed_catch_all_rule_covers_it: pol("[[rule]]\nname = \"all\"\nusers = [\"dba\"]\naction = \"allow\"\n"), st(&["unparsed"], &[]), prod().user("dba") => Allow, "all";
}

// ---------------------------------------------------------------- per-class decisions

verdicts! {
    per_class_hidden_delete_in_read: product(), st(&["read", "delete.unbounded"], &["public.t"]), prod() => Block, "no-unbounded-writes";
    per_class_read_and_drop: product(), st(&["drop.table", "read"], &["public.t"]), prod() => Hold, "drops-need-a-second-person";
    per_class_allow_rule_only_for_its_class: pol("[[rule]]\nname = \"reads\"\nclasses = [\"read\"]\naction = \"allow\"\n\n[[rule]]\nname = \"writes\"\nclasses = [\"write\"]\naction = \"audit\"\n"), st(&["read", "write"], &[]), prod() => Audit, "writes";
    per_class_strictest_of_rules: pol("[[rule]]\nname = \"h\"\nclasses = [\"truncate\"]\naction = \"hold\"\n\n[[rule]]\nname = \"b\"\nclasses = [\"drop.table\"]\naction = \"block\"\n"), st(&["drop.table", "truncate"], &[]), prod() => Block, "b";
    per_class_default_stricter_than_rule: Policy::parse("[defaults]\nproduction = { action = \"block\" }\n[[rule]]\nname = \"reads\"\nclasses = [\"read\"]\naction = \"allow\"\n", "p.toml").unwrap(), st(&["read", "write"], &[]), prod() => Block;
}

// ---------------------------------------------------------------- matchers

verdicts! {
    env_glob_matches: block_if("environments = [\"prod*\"]"), st(&["read"], &[]), prod() => Block, "r";
    env_glob_other: block_if("environments = [\"prod*\"]"), st(&["read"], &[]), prod().env("staging") => Allow;
    env_string_form: block_if("environment = \"staging\""), st(&["read"], &[]), prod().env("staging") => Block, "r";
    env_list_second: block_if("environment = [\"development\", \"staging\"]"), st(&["read"], &[]), prod().env("staging") => Block, "r";
    target_glob_matches: block_if("targets = [\"prod-eu-*\"]"), st(&["read"], &[]), prod().target("prod-eu-1") => Block, "r";
    target_glob_other: block_if("targets = [\"prod-eu-*\"]"), st(&["read"], &[]), prod().target("prod-us-1") => Allow;
    target_question_mark: block_if("targets = [\"db?\"]"), st(&["read"], &[]), prod().target("db7") => Block, "r";
    target_question_mark_one_char_only: block_if("targets = [\"db?\"]"), st(&["read"], &[]), prod().target("db17") => Allow;
    database_literal: block_if("databases = [\"app\"]"), st(&["read"], &[]), prod().db("app") => Block, "r";
    database_literal_no_prefix_match: block_if("databases = [\"app\"]"), st(&["read"], &[]), prod().db("app2") => Allow;
    database_alternatives: block_if("databases = [\"billing_{a,b}\"]"), st(&["read"], &[]), prod().db("billing_b") => Block, "r";
    database_alternatives_other: block_if("databases = [\"billing_{a,b}\"]"), st(&["read"], &[]), prod().db("billing_c") => Allow;
    database_char_class: block_if("databases = [\"shard[0-3]\"]"), st(&["read"], &[]), prod().db("shard2") => Block, "r";
    database_char_class_other: block_if("databases = [\"shard[0-3]\"]"), st(&["read"], &[]), prod().db("shard4") => Allow;
    user_glob: block_if("users = [\"deploy_*\"]"), st(&["read"], &[]), prod().user("deploy_ci") => Block, "r";
    user_glob_other: block_if("users = [\"deploy_*\"]"), st(&["read"], &[]), prod().user("alice") => Allow;
    user_case_sensitive: block_if("users = [\"deploy_*\"]"), st(&["read"], &[]), prod().user("DEPLOY_ci") => Allow;
    user_star_matches_all: block_if("users = [\"*\"]"), st(&["read"], &[]), prod().user("anyone") => Block, "r";
    user_escaped_star_literal: block_if("users = [\"we\\\\*ird\"]"), st(&["read"], &[]), prod().user("we*ird") => Block, "r";
    user_escaped_star_not_glob: block_if("users = [\"we\\\\*ird\"]"), st(&["read"], &[]), prod().user("wexird") => Allow;
    app_glob_with_space: block_if("applications = [\"psql\", \"pgAdmin*\"]"), st(&["read"], &[]), prod().app("pgAdmin 4") => Block, "r";
    app_empty_name_no_match: block_if("applications = [\"psql\", \"pgAdmin*\"]"), st(&["read"], &[]), prod().app("") => Allow;
    app_slash_matched_by_star: block_if("applications = [\"tools/*\"]"), st(&["read"], &[]), prod().app("tools/a/b") => Block, "r";
    client_cidr_v4: block_if("clients = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7\"]"), st(&["read"], &[]), prod().ip("10.200.3.4") => Block, "r";
    client_cidr_v4_outside: block_if("clients = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7\"]"), st(&["read"], &[]), prod().ip("11.0.0.1") => Allow;
    client_cidr_v6: block_if("clients = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7\"]"), st(&["read"], &[]), prod().ip("fd12::1") => Block, "r";
    client_cidr_v6_outside: block_if("clients = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7\"]"), st(&["read"], &[]), prod().ip("2001:db8::1") => Allow;
    client_v4_mapped_v6: block_if("clients = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7\"]"), st(&["read"], &[]), prod().ip("::ffff:10.1.1.1") => Block, "r";
    client_bare_address: block_if("clients = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7\"]"), st(&["read"], &[]), prod().ip("192.168.1.7") => Block, "r";
    client_bare_address_neighbour: block_if("clients = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7\"]"), st(&["read"], &[]), prod().ip("192.168.1.8") => Allow;
    client_unix_socket_never_matches: block_if("clients = [\"0.0.0.0/0\", \"::/0\"]"), st(&["read"], &[]), prod().no_ip() => Allow;
    client_slash_zero_matches_all: block_if("clients = [\"0.0.0.0/0\"]"), st(&["read"], &[]), prod().ip("8.8.8.8") => Block, "r";
    class_family_glob: block_if("classes = [\"drop.*\"]"), st(&["drop.extension"], &[]), prod() => Block, "r";
    class_family_glob_not_other_family: block_if("classes = [\"drop.*\"]"), st(&["truncate"], &[]), prod() => Allow;
    class_suffix_glob: block_if("classes = [\"*.unbounded\"]"), st(&["update.unbounded"], &[]), prod() => Block, "r";
    class_suffix_glob_not_bounded: block_if("classes = [\"*.unbounded\"]"), st(&["update.bounded"], &[]), prod() => Allow;
    class_alternatives: block_if("classes = [\"alter.{rename,drop_column}\"]"), st(&["alter.rename"], &[]), prod() => Block, "r";
    class_alternatives_other: block_if("classes = [\"alter.{rename,drop_column}\"]"), st(&["alter.other"], &[]), prod() => Allow;
    class_exact: block_if("classes = \"truncate\""), st(&["truncate"], &[]), prod() => Block, "r";
    class_maybe_unbounded_glob: block_if("classes = [\"*.*unbounded\"]"), st(&["delete.maybe_unbounded"], &[]), prod() => Block, "r";
    class_session_family: block_if("classes = [\"session.*\"]"), st(&["session.role"], &[]), prod() => Block, "r";
    class_session_family_not_plain_session: block_if("classes = [\"session.*\"]"), st(&["session"], &[]), prod() => Allow;
    class_session_prefix_star: block_if("classes = [\"session*\"]"), st(&["session"], &[]), prod() => Block, "r";
    class_create_other: block_if("classes = [\"create.other\"]"), st(&["create.other"], &[]), prod() => Block, "r";
    objects_schema_glob: block_if("objects = [\"public.*\", \"billing.*\"]"), st(&["write"], &["public.users"]), prod() => Block, "r";
    objects_unqualified_is_public: block_if("objects = [\"public.*\", \"billing.*\"]"), st(&["write"], &["users"]), prod() => Block, "r";
    objects_unqualified_not_billing: block_if("objects = [\"billing.*\"]"), st(&["write"], &["invoices"]), prod() => Allow;
    objects_other_schema: block_if("objects = [\"public.*\", \"billing.*\"]"), st(&["write"], &["audit.log"]), prod() => Allow;
    objects_any_of_several: block_if("objects = [\"public.*\", \"billing.*\"]"), st(&["write"], &["audit.log", "billing.x"]), prod() => Block, "r";
    objects_none_never_matches: block_if("objects = [\"*\"]"), st(&["write"], &[]), prod() => Allow;
    objects_star_matches_any: block_if("objects = [\"*\"]"), st(&["write"], &["x.y"]), prod() => Block, "r";
    objects_literal_qualified_matches_unqualified: block_if("objects = [\"public.users\"]"), st(&["write"], &["users"]), prod() => Block, "r";
    objects_literal_unqualified_exact_only: block_if("objects = [\"users\"]"), st(&["write"], &["public.users"]), prod() => Allow;
    objects_literal_unqualified_as_written: block_if("objects = [\"users\"]"), st(&["write"], &["users"]), prod() => Block, "r";
    objects_table_suffix: block_if("objects = [\"*.users\"]"), st(&["write"], &["users"]), prod() => Block, "r";
    objects_function_with_args_qualified: block_if("objects = [\"public.*\"]"), st(&["drop.function"], &["app.f(a.b)"]), prod() => Allow;
    objects_function_unqualified: block_if("objects = [\"public.f*\"]"), st(&["drop.function"], &["f(integer)"]), prod() => Block, "r";
    all_conditions_must_hold: block_if("users = [\"bob\"]\ndatabases = [\"app\"]\nclasses = [\"drop.*\"]"), st(&["drop.table"], &[]), prod().user("bob").db("other") => Allow;
    all_conditions_hold: block_if("users = [\"bob\"]\ndatabases = [\"app\"]\nclasses = [\"drop.*\"]"), st(&["drop.table"], &[]), prod().user("bob") => Block, "r";
}

// ---------------------------------------------------------------- time windows
// A rule blocks inside the window; outside, the default allows.

fn window(h: &str) -> Policy {
    block_if(&format!("hours = {h:?}"))
}

macro_rules! windows {
    ($($name:ident: $hours:expr, $at:expr => $inside:expr;)*) => {$(
        #[test]
        fn $name() {
            let p = window($hours);
            let c = prod().at($at);
            let v = p.evaluate(&st(&["read"], &[]), &c.ctx());
            let inside = v.action == Action::Block;
            assert_eq!(inside, $inside, "{} at {}", $hours, $at);
        }
    )*};
}

windows! {
    // Europe/Berlin business hours, summer (CEST = UTC+2) and winter (CET = UTC+1).
    win_berlin_start_inclusive: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-06-11T07:00:00Z" => true;
    win_berlin_before_start: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-06-11T06:59:59Z" => false;
    win_berlin_end_exclusive: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-06-11T14:00:00Z" => false;
    win_berlin_just_before_end: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-06-11T13:59:59Z" => true;
    win_berlin_wrong_day_monday: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-06-09T10:00:00Z" => false;
    win_berlin_wrong_day_friday: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-06-13T10:00:00Z" => false;
    win_berlin_winter_offset_inside: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-01-15T08:00:00Z" => true;
    win_berlin_winter_offset_outside: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-01-15T07:30:00Z" => false;
    win_berlin_summer_same_utc_inside: "Tue-Thu 09:00-16:00 Europe/Berlin", "2025-06-11T07:30:00Z" => true;
    win_berlin_utc_day_differs_from_local: "Wed 00:00-01:00 Europe/Berlin", "2025-06-10T22:30:00Z" => true;
    // Crossing midnight: the window belongs to the day it starts on.
    win_night_friday_evening: "Mon-Fri 22:00-06:00 UTC", "2025-06-13T23:00:00Z" => true;
    win_night_saturday_morning: "Mon-Fri 22:00-06:00 UTC", "2025-06-14T03:00:00Z" => true;
    win_night_saturday_evening: "Mon-Fri 22:00-06:00 UTC", "2025-06-14T23:00:00Z" => false;
    win_night_monday_morning: "Mon-Fri 22:00-06:00 UTC", "2025-06-16T03:00:00Z" => false;
    win_night_tuesday_0559: "Mon-Fri 22:00-06:00 UTC", "2025-06-17T05:59:59Z" => true;
    win_night_tuesday_0600: "Mon-Fri 22:00-06:00 UTC", "2025-06-17T06:00:00Z" => false;
    win_night_monday_2159: "Mon-Fri 22:00-06:00 UTC", "2025-06-16T21:59:59Z" => false;
    win_night_monday_2200: "Mon-Fri 22:00-06:00 UTC", "2025-06-16T22:00:00Z" => true;
    win_night_midnight_exact: "Mon-Fri 22:00-06:00 UTC", "2025-06-17T00:00:00Z" => true;
    // Across midnight on DST change nights, Europe/Berlin (2025-03-30, 2025-10-26).
    win_berlin_spring_night_inside: "Sat 23:00-04:00 Europe/Berlin", "2025-03-30T01:30:00Z" => true;
    win_berlin_spring_night_end_is_local: "Sat 23:00-04:00 Europe/Berlin", "2025-03-30T02:00:00Z" => false;
    win_berlin_spring_night_start: "Sat 23:00-04:00 Europe/Berlin", "2025-03-29T22:00:00Z" => true;
    win_berlin_spring_night_before_start: "Sat 23:00-04:00 Europe/Berlin", "2025-03-29T21:59:00Z" => false;
    win_berlin_autumn_night_inside_late: "Sat 23:00-04:00 Europe/Berlin", "2025-10-26T02:30:00Z" => true;
    win_berlin_autumn_night_end: "Sat 23:00-04:00 Europe/Berlin", "2025-10-26T03:00:00Z" => false;
    win_berlin_autumn_night_start_cest: "Sat 23:00-04:00 Europe/Berlin", "2025-10-25T21:00:00Z" => true;
    // Wall-clock hours skipped or repeated by the change.
    win_berlin_skipped_hour_before: "Sun 02:00-03:00 Europe/Berlin", "2025-03-30T00:59:59Z" => false;
    win_berlin_skipped_hour_after: "Sun 02:00-03:00 Europe/Berlin", "2025-03-30T01:00:00Z" => false;
    win_berlin_repeated_hour_first: "Sun 02:00-03:00 Europe/Berlin", "2025-10-26T00:30:00Z" => true;
    win_berlin_repeated_hour_second: "Sun 02:00-03:00 Europe/Berlin", "2025-10-26T01:30:00Z" => true;
    win_berlin_repeated_hour_after: "Sun 02:00-03:00 Europe/Berlin", "2025-10-26T02:00:00Z" => false;
    // America/New_York (2025-03-09, 2025-11-02).
    win_ny_winter_start: "Mon-Fri 09:00-17:00 America/New_York", "2025-03-07T14:00:00Z" => true;
    win_ny_winter_before: "Mon-Fri 09:00-17:00 America/New_York", "2025-03-07T13:30:00Z" => false;
    win_ny_summer_same_utc_inside: "Mon-Fri 09:00-17:00 America/New_York", "2025-03-10T13:30:00Z" => true;
    win_ny_summer_end: "Mon-Fri 09:00-17:00 America/New_York", "2025-03-10T21:00:00Z" => false;
    win_ny_summer_before_end: "Mon-Fri 09:00-17:00 America/New_York", "2025-03-10T20:59:00Z" => true;
    win_ny_spring_night_start_est: "Sat 22:00-06:00 America/New_York", "2025-03-09T03:00:00Z" => true;
    win_ny_spring_night_inside_edt: "Sat 22:00-06:00 America/New_York", "2025-03-09T09:30:00Z" => true;
    win_ny_spring_night_end_edt: "Sat 22:00-06:00 America/New_York", "2025-03-09T10:00:00Z" => false;
    win_ny_autumn_night_inside_est: "Sat 22:00-06:00 America/New_York", "2025-11-02T10:30:00Z" => true;
    win_ny_autumn_night_end_est: "Sat 22:00-06:00 America/New_York", "2025-11-02T11:00:00Z" => false;
    win_ny_autumn_repeated_0130_edt: "Sat 22:00-06:00 America/New_York", "2025-11-02T05:30:00Z" => true;
    win_ny_autumn_repeated_0130_est: "Sat 22:00-06:00 America/New_York", "2025-11-02T06:30:00Z" => true;
    win_ny_autumn_sunday_evening: "Sat 22:00-06:00 America/New_York", "2025-11-03T03:00:00Z" => false;
    // Day lists and forms.
    win_every_day_no_days: "09:00-17:00 UTC", "2025-06-15T10:00:00Z" => true;
    win_every_day_outside: "09:00-17:00 UTC", "2025-06-15T18:00:00Z" => false;
    win_daily_whole_day: "daily 00:00-24:00 UTC", "2025-06-15T23:59:59Z" => true;
    win_star_days: "* 12:00-13:00 UTC", "2025-06-14T12:30:00Z" => true;
    win_wrapping_days_sunday: "Fri-Mon 10:00-11:00 UTC", "2025-06-15T10:30:00Z" => true;
    win_wrapping_days_wednesday: "Fri-Mon 10:00-11:00 UTC", "2025-06-11T10:30:00Z" => false;
    win_comma_days: "Mon,Wed,Fri 10:00-11:00 UTC", "2025-06-11T10:30:00Z" => true;
    win_comma_days_tuesday: "Mon,Wed,Fri 10:00-11:00 UTC", "2025-06-10T10:30:00Z" => false;
    win_full_day_names_any_case: "monday-FRIDAY 10:00-11:00 UTC", "2025-06-13T10:30:00Z" => true;
    win_fixed_offset_zone: "Mon-Sun 10:00-11:00 Etc/GMT-3", "2025-06-13T07:30:00Z" => true;
}

#[test]
fn win_list_any_window_matches() {
    let p = block_if("hours = [\"Mon 09:00-10:00 UTC\", \"Fri 15:00-16:00 UTC\"]");
    let hit = |t: &str| p.evaluate(&st(&["read"], &[]), &prod().at(t).ctx()).action;
    assert_eq!(hit("2025-06-09T09:30:00Z"), Action::Block);
    assert_eq!(hit("2025-06-13T15:30:00Z"), Action::Block);
    assert_eq!(hit("2025-06-13T09:30:00Z"), Action::Allow);
}

// ---------------------------------------------------------------- verdict details, many statements

#[test]
fn verdict_carries_message_confirm_timeout() {
    let v = product().evaluate(&st(&["drop.table"], &["public.t"]), &prod().ctx());
    assert_eq!(v.confirm, Confirm::Approver);
    assert_eq!(v.timeout, std::time::Duration::from_secs(600));
    let v = product().evaluate(&st(&["delete.unbounded"], &[]), &prod().ctx());
    assert_eq!(v.message.as_deref(), Some("Add a WHERE clause."));
}

#[test]
fn verdict_default_hold_uses_defaults_confirm_and_timeout() {
    let v = product().evaluate(&st(&["unparsed"], &[]), &prod().ctx());
    assert_eq!((v.action, v.confirm), (Action::Hold, Confirm::SelfConfirm));
    assert_eq!(v.timeout, std::time::Duration::from_secs(300));
    assert!(v.message.is_some());
}

#[test]
fn verdict_rule_hold_default_confirm_is_approver() {
    let p = pol("[[rule]]\nname = \"h\"\naction = \"hold\"\n");
    let v = p.evaluate(&st(&["read"], &[]), &prod().ctx());
    assert_eq!(v.confirm, Confirm::Approver);
    assert_eq!(v.timeout, std::time::Duration::from_secs(600));
}

#[test]
fn verdict_unknown_environment_message_names_it() {
    let v = product().evaluate(&st(&["write"], &[]), &prod().env("qa").ctx());
    assert!(v.message.as_deref().unwrap_or("").contains("'qa'"), "{v:?}");
}

macro_rules! many {
    ($($name:ident: [$($s:expr),*] => $action:ident, $index:expr $(, $rule:literal)?;)*) => {$(
        #[test]
        fn $name() {
            let stmts: Vec<Statement> = vec![$($s),*];
            let v = product().evaluate_all(&stmts, &prod().ctx());
            assert_eq!(v.action, Action::$action, "{v:?}");
            assert_eq!(v.statement_index, $index, "{v:?}");
            let want: Option<&str> = None $(.or(Some($rule)))?;
            assert_eq!(v.rule.as_deref(), want, "{v:?}");
        }
    )*};
}

many! {
    many_empty_allows: [] => Allow, 0;
    many_single_read: [st(&["read"], &[])] => Allow, 0, "reads-are-fine";
    many_read_then_drop: [st(&["read"], &[]), st(&["drop.table"], &["public.t"])] => Hold, 1, "drops-need-a-second-person";
    many_drop_then_unbounded: [st(&["drop.table"], &["public.t"]), st(&["delete.unbounded"], &[])] => Block, 1, "no-unbounded-writes";
    many_block_first_wins_ties: [st(&["delete.unbounded"], &[]), st(&["update.unbounded"], &[])] => Block, 0, "no-unbounded-writes";
    many_approver_beats_self: [st(&["drop.table"], &["audit.x"]), st(&["drop.table"], &["public.x"])] => Hold, 1, "drops-need-a-second-person";
    many_self_after_approver_keeps_approver: [st(&["drop.table"], &["public.x"]), st(&["drop.table"], &["audit.x"])] => Hold, 0, "drops-need-a-second-person";
    many_unparsed_among_reads: [st(&["read"], &[]), st(&["unparsed"], &[]), st(&["write"], &[])] => Hold, 1;
    many_writes_default: [st(&["write"], &[]), st(&["write"], &[])] => Allow, 0;
}

#[test]
fn policy_is_send_sync_and_hashes_text() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    let p = Policy::parse("", "p.toml").unwrap();
    // SHA-256 of the empty string.
    assert_eq!(
        p.sha256(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(product().rule_count(), 5);
    assert!(product().has_defaults_for("staging"));
    assert!(!product().has_defaults_for("qa"));
}

#[test]
fn action_order_is_strictness() {
    assert!(Action::Allow < Action::Audit);
    assert!(Action::Audit < Action::Hold);
    assert!(Action::Hold < Action::Block);
}

#[test]
fn load_reads_file_and_reports_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, DEFAULTS).unwrap();
    assert_eq!(Policy::load(&path).unwrap().rule_count(), 0);
    let missing = dir.path().join("nope.toml");
    let e = Policy::load(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.toml: (file): cannot read"), "{e}");
}
