//! Table-driven tests of policy-file errors (`file:line: key: …`) and `check` warnings.

use pgwarden::policy::Policy;

const D: &str = "[defaults]\nproduction = { action = \"allow\" }\n";

/// Asserts that `text` fails with a message starting `policy.toml:LINE: KEY: ` and
/// containing `what`.
macro_rules! errors {
    ($($name:ident: $text:expr => $line:expr, $key:expr, $what:expr;)*) => {$(
        #[test]
        fn $name() {
            let text: String = $text.to_string();
            let e = match Policy::parse(&text, "policy.toml") {
                Ok(_) => panic!("expected an error for:\n{text}"),
                Err(e) => e,
            };
            let shown = e.to_string();
            let prefix = format!("policy.toml:{}: {}: ", $line, $key);
            assert!(shown.starts_with(&prefix), "got {shown:?}, want prefix {prefix:?}");
            assert!(shown.contains($what), "got {shown:?}, want it to contain {:?}", $what);
            assert_eq!(e.line, Some($line));
            assert_eq!(e.key, $key);
        }
    )*};
}

fn rule(body: &str) -> String {
    // Defaults take lines 1-2, a blank line 3, [[rule]] line 4, name line 5, body from line 6.
    format!("{D}\n[[rule]]\nname = \"r\"\n{body}\n")
}

errors! {
    err_unknown_top_level_key: "bogus = 1\n" => 1, "bogus", "unknown field `bogus`";
    err_unknown_default_key: "[defaults]\nproduction = { action = \"allow\", bogus = 1 }\n" => 2, "defaults.production.bogus", "unknown field";
    err_unknown_default_key_table_form: "[defaults.production]\naction = \"allow\"\nonunparsed = \"hold\"\n" => 3, "defaults.production.onunparsed", "unknown field";
    err_unknown_rule_key: rule("action = \"block\"\nactoin = \"block\"") => 7, "rule[1].actoin", "unknown field `actoin`";
    err_singular_user_is_unknown: rule("action = \"block\"\nuser = \"bob\"") => 7, "rule[1].user", "unknown field `user`";
    err_unknown_key_in_second_rule: format!("{}[[rule]]\nname = \"s\"\naction = \"allow\"\ncolour = \"red\"\n", rule("action = \"block\"")) => 10, "rule[2].colour", "unknown field";
    err_missing_action: rule("users = [\"a\"]") => 4, "rule[1].action", "missing field `action`";
    err_missing_default_action: "[defaults]\nproduction = { on_unparsed = \"hold\" }\n" => 2, "defaults.production.action", "missing field `action`";
    err_wrong_type: rule("action = \"block\"\nusers = 3") => 7, "rule[1].users", "a string or a list of strings";
    err_bad_action: rule("action = \"deny\"") => 6, "rule[1].action", "unknown action 'deny'";
    err_bad_default_action: "[defaults]\nproduction = { action = \"permit\" }\n" => 2, "defaults.production.action", "unknown action 'permit'";
    err_bad_on_unparsed: "[defaults]\nproduction = { action = \"allow\", on_unparsed = \"ask\" }\n" => 2, "defaults.production.on_unparsed", "unknown action 'ask'";
    err_bad_confirm: rule("action = \"hold\"\nconfirm = \"manager\"") => 7, "rule[1].confirm", "unknown confirm 'manager'";
    err_bad_glob: rule("action = \"block\"\nusers = [\"deploy_[\"]") => 7, "rule[1].users", "bad glob 'deploy_['";
    err_bad_glob_objects: rule("action = \"block\"\nobjects = [\"public.{a,b\"]") => 7, "rule[1].objects", "bad glob";
    err_bad_glob_classes: rule("action = \"block\"\nclasses = [\"drop.[\"]") => 7, "rule[1].classes", "bad glob";
    err_empty_list: rule("action = \"block\"\ndatabases = []") => 7, "rule[1].databases", "empty list matches nothing";
    err_empty_pattern: rule("action = \"block\"\ntargets = [\"\"]") => 7, "rule[1].targets", "empty pattern";
    err_bad_class_name: rule("action = \"block\"\nclasses = [\"drop.tabel\"]") => 7, "rule[1].classes", "'drop.tabel' matches no statement class (did you mean one of drop.database";
    err_bad_class_family: rule("action = \"block\"\nclasses = [\"destroy.*\"]") => 7, "rule[1].classes", "families:";
    err_bad_class_second_in_list: rule("action = \"block\"\nclasses = [\"truncate\", \"delete\"]") => 7, "rule[1].classes", "'delete' matches no statement class";
    err_bad_class_multiline_list: rule("action = \"block\"\nclasses = [\n  \"truncate\",\n  \"trunkate\",\n]") => 7, "rule[1].classes", "'trunkate'";
    err_bad_cidr: rule("action = \"block\"\nclients = [\"10.0.0.0/33\"]") => 7, "rule[1].clients", "not a CIDR";
    err_bad_ip: rule("action = \"block\"\nclients = [\"10.0.0\"]") => 7, "rule[1].clients", "not an IP address";
    err_cidr_host_bits: rule("action = \"block\"\nclients = [\"10.1.2.3/8\"]") => 7, "rule[1].clients", "did you mean 10.0.0.0/8";
    err_window_bad_day: rule("action = \"block\"\nhours = \"Tus-Thu 09:00-16:00 UTC\"") => 7, "rule[1].hours", "unknown day 'Tus'";
    err_window_bad_time: rule("action = \"block\"\nhours = \"Mon 9-16 UTC\"") => 7, "rule[1].hours", "not a time of day";
    err_window_hour_25: rule("action = \"block\"\nhours = \"Mon 09:00-25:00 UTC\"") => 7, "rule[1].hours", "'25:00' is not a time of day";
    err_window_bad_zone: rule("action = \"block\"\nhours = \"Mon 09:00-16:00 Europe/Berln\"") => 7, "rule[1].hours", "unknown time zone 'Europe/Berln'";
    err_window_no_zone: rule("action = \"block\"\nhours = \"Mon 09:00-16:00\"") => 7, "rule[1].hours", "'Mon 09:00-16:00' is not a time window";
    err_window_empty_range: rule("action = \"block\"\nhours = \"Mon 09:00-09:00 UTC\"") => 7, "rule[1].hours", "is empty";
    err_window_garbage: rule("action = \"block\"\nhours = \"whenever\"") => 7, "rule[1].hours", "is not a time window";
    err_window_in_list: rule("action = \"block\"\nhours = [\"Mon 09:00-10:00 UTC\", \"Fri 15:00-16:00 Mars/Olympus\"]") => 7, "rule[1].hours", "Mars/Olympus";
    err_bad_duration_unit: rule("action = \"hold\"\ntimeout = \"10 minutes\"") => 7, "rule[1].timeout", "is not a duration";
    err_bad_duration_no_unit: rule("action = \"hold\"\ntimeout = \"600\"") => 7, "rule[1].timeout", "a unit is required";
    err_bad_duration_zero: rule("action = \"hold\"\ntimeout = \"0s\"") => 7, "rule[1].timeout", "is zero";
    err_bad_duration_too_long: rule("action = \"hold\"\ntimeout = \"25h\"") => 7, "rule[1].timeout", "24h maximum";
    err_bad_duration_overflow: rule("action = \"hold\"\ntimeout = \"99999999999999999999h\"") => 7, "rule[1].timeout", "is not a duration";
    err_bad_default_timeout: "[defaults]\nproduction = { action = \"hold\", timeout = \"soon\" }\n" => 2, "defaults.production.timeout", "not a duration";
    err_duplicate_rule_name: format!("{}[[rule]]\nname = \"r\"\naction = \"allow\"\n", rule("action = \"block\"")) => 8, "rule[2].name", "duplicate rule name 'r' (first used at line 5)";
    err_empty_rule_name: format!("{D}[[rule]]\nname = \"  \"\naction = \"allow\"\n") => 4, "rule[1].name", "empty rule name";
    err_environment_and_environments: rule("action = \"block\"\nenvironment = \"production\"\nenvironments = [\"staging\"]") => 8, "rule[1].environments", "either environment or environments";
    err_toml_syntax: "[defaults\nproduction = 1\n" => 1, "defaults", "invalid table header; expected";
    err_toml_syntax_value: format!("{D}[[rule]]\nname = r\n") => 4, "rule[1].name", "invalid string";
}

#[test]
fn err_display_has_no_line_for_io() {
    let e = Policy::load(std::path::Path::new("/nonexistent/policy.toml")).unwrap_err();
    assert_eq!(e.line, None);
    assert!(e
        .to_string()
        .starts_with("/nonexistent/policy.toml: (file): cannot read"));
}

/// Asserts the exact warning list.
macro_rules! warnings {
    ($($name:ident: $text:expr => [$($w:expr),* $(,)?];)*) => {$(
        #[test]
        fn $name() {
            let text: String = $text.to_string();
            let p = Policy::parse(&text, "policy.toml").unwrap_or_else(|e| panic!("{e}"));
            let want: Vec<String> = vec![$($w.to_string()),*];
            assert_eq!(p.warnings(), want.as_slice());
        }
    )*};
}

/// The warning for a production default that lets these destructive classes through.
fn lets_through(classes: &[&str]) -> String {
    format!(
        "policy.toml:2: production lets destructive statements through by default: no rule \
         holds or blocks {} and defaults.production.action is \"allow\"",
        classes.join(", ")
    )
}

const ALL: [&str; 5] = [
    "drop.*",
    "truncate",
    "delete.unbounded",
    "update.unbounded",
    "alter.drop_column",
];

const NOT_DROPS: [&str; 4] = [
    "truncate",
    "delete.unbounded",
    "update.unbounded",
    "alter.drop_column",
];

fn rules(bodies: &[&str]) -> String {
    // Rule i's [[rule]] header follows the previous rule's body and a blank line.
    let mut s = format!("{D}\n");
    for (i, b) in bodies.iter().enumerate() {
        s.push_str(&format!("[[rule]]\nname = \"r{}\"\n{b}\n\n", i + 1));
    }
    s
}

warnings! {
    warn_none_for_distinct_rules: rules(&["action = \"block\"\nclasses = [\"drop.*\"]", "action = \"hold\"\nclasses = [\"truncate\"]"]) => [lets_through(&NOT_DROPS[1..])];
    warn_catch_all_shadows_everything: rules(&["action = \"block\"", "action = \"hold\"\nclasses = [\"truncate\"]"]) => ["policy.toml:9: rule 'r2' is shadowed by rule 'r1' (line 5)"];
    warn_class_superset: rules(&["action = \"block\"\nclasses = [\"drop.*\"]", "action = \"hold\"\nclasses = [\"drop.table\"]"]) => [lets_through(&NOT_DROPS), "policy.toml:10: rule 'r2' is shadowed by rule 'r1' (line 5)"];
    warn_class_subset_is_fine: rules(&["action = \"block\"\nclasses = [\"drop.table\"]", "action = \"hold\"\nclasses = [\"drop.*\"]"]) => [lets_through(&NOT_DROPS)];
    warn_union_of_two_rules: rules(&["action = \"block\"\nclasses = [\"drop.*\"]", "action = \"block\"\nclasses = [\"truncate\"]", "action = \"hold\"\nclasses = [\"drop.table\", \"truncate\"]"]) => [lets_through(&NOT_DROPS[1..]), "policy.toml:15: rule 'r3' is shadowed by rules 'r1' (line 5) and 'r2' (line 10)"];
    warn_user_glob_covers_literal: rules(&["action = \"allow\"\nusers = [\"deploy_*\"]", "action = \"block\"\nusers = [\"deploy_ci\"]"]) => ["policy.toml:10: rule 'r2' is shadowed by rule 'r1' (line 5)"];
    warn_user_literal_does_not_cover_glob: rules(&["action = \"allow\"\nusers = [\"deploy_ci\"]", "action = \"block\"\nusers = [\"deploy_*\"]"]) => [];
    warn_narrower_earlier_condition_is_fine: rules(&["action = \"allow\"\nusers = [\"bob\"]\nclasses = [\"drop.*\"]", "action = \"block\"\nclasses = [\"drop.*\"]"]) => [lets_through(&NOT_DROPS)];
    warn_same_glob_text: rules(&["action = \"allow\"\ndatabases = [\"shard*\"]", "action = \"block\"\ndatabases = [\"shard*\"]\nusers = [\"x\"]"]) => ["policy.toml:10: rule 'r2' is shadowed by rule 'r1' (line 5)"];
    warn_cidr_containment: rules(&["action = \"allow\"\nclients = [\"10.0.0.0/8\"]", "action = \"block\"\nclients = [\"10.1.0.0/16\"]"]) => ["policy.toml:10: rule 'r2' is shadowed by rule 'r1' (line 5)"];
    warn_cidr_not_contained: rules(&["action = \"allow\"\nclients = [\"10.1.0.0/16\"]", "action = \"block\"\nclients = [\"10.0.0.0/8\"]"]) => [];
    warn_objects_public_covers_unqualified: rules(&["action = \"hold\"\nobjects = [\"public.*\"]", "action = \"block\"\nobjects = [\"users\", \"public.orders\"]"]) => ["policy.toml:10: rule 'r2' is shadowed by rule 'r1' (line 5)"];
    warn_objects_not_covered: rules(&["action = \"hold\"\nobjects = [\"public.*\"]", "action = \"block\"\nobjects = [\"billing.*\"]"]) => [];
    warn_hours_restrict_earlier_rule: rules(&["action = \"allow\"\nhours = \"Mon 09:00-10:00 UTC\"", "action = \"block\""]) => [];
    warn_same_hours_text: rules(&["action = \"allow\"\nhours = \"Mon 09:00-10:00 UTC\"", "action = \"block\"\nhours = \"Mon  09:00-10:00 UTC\"\nusers = [\"x\"]"]) => ["policy.toml:10: rule 'r2' is shadowed by rule 'r1' (line 5)"];
    warn_env_star_covers: rules(&["action = \"audit\"\nenvironment = \"*\"", "action = \"block\"\nenvironment = \"production\""]) => ["policy.toml:10: rule 'r2' is shadowed by rule 'r1' (line 5)"];
    warn_confirm_without_hold: rules(&["action = \"block\"\nconfirm = \"self\""]) => ["policy.toml:7: rule 'r1': confirm/timeout have no effect unless action = \"hold\""];
    warn_unknown_environment_in_rule: rules(&["action = \"block\"\nenvironment = \"prodution\""]) => ["policy.toml:7: rule 'r1' names environment 'prodution', which has no [defaults] entry", lets_through(&ALL)];
    warn_production_on_unparsed_allow: "[defaults]\nproduction = { action = \"allow\", on_unparsed = \"allow\" }\n" => ["policy.toml:2: defaults.production.on_unparsed = \"allow\" forwards statements pgwarden could not read", lets_through(&ALL)];
    warn_default_timeout_without_hold: "[defaults]\nstaging = { action = \"allow\", timeout = \"5m\" }\n" => ["policy.toml:2: defaults.staging: confirm/timeout have no effect unless an action is hold"];
}
