//! Startup-packet parameters read as the SET statements they are: every setting key
//! (`search_path`, `session_replication_role`, …) and every switch of `options`
//! (`-c name=value`, `--name=value`, and the short switches PostgreSQL maps to
//! settings) gets the classes of the equivalent `SET`.

use super::parse::text_hash;
use super::session::{self, ALL_SPECIFIC};
use super::statement::{Class, Statement};

/// Startup keys PostgreSQL reads itself rather than as settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

/// PostgreSQL's `pg_split_opts`: arguments separated by whitespace, a backslash
/// takes the next character literally.
pub fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            if c.is_ascii_whitespace() {
                break;
            }
            if c == '\\' {
                if let Some(n) = chars.next() {
                    arg.push(n);
                }
                continue;
            }
            arg.push(c);
        }
        out.push(arg);
    }
}

/// One setting read from `options`: `Ok((name, value))`, or `Err(text)` for a switch
/// pgwarden cannot map to a setting (judged as any setting at all).
type Switch = Result<(String, String), String>;

/// Short switches of the postgres command line that take an argument.
const WITH_ARG: &str = "BCDdfhkNprSTtvW";

/// The setting a short switch stands for (PostgreSQL's `process_postgres_switches`).
fn short_switch(c: char, arg: &str) -> Switch {
    let set = |n: &str, v: &str| Ok((n.to_string(), v.to_string()));
    match c {
        'B' => set("shared_buffers", arg),
        'd' => set("log_min_messages", arg),
        'e' => set("datestyle", "euro"),
        'F' => set("fsync", "off"),
        'h' => set("listen_addresses", arg),
        'i' => set("listen_addresses", "*"),
        'k' => set("unix_socket_directories", arg),
        'l' => set("ssl", "on"),
        'N' => set("max_connections", arg),
        'O' => set("allow_system_table_mods", "on"),
        'P' => set("ignore_system_indexes", "on"),
        'p' => set("port", arg),
        'S' => set("work_mem", arg),
        's' => set("log_statement_stats", "on"),
        'W' => set("post_auth_delay", arg),
        'f' => match arg.chars().next() {
            Some('s') => set("enable_seqscan", "off"),
            Some('i') => set("enable_indexscan", "off"),
            Some('o') => set("enable_indexonlyscan", "off"),
            Some('b') => set("enable_bitmapscan", "off"),
            Some('t') => set("enable_tidscan", "off"),
            Some('n') => set("enable_nestloop", "off"),
            Some('m') => set("enable_mergejoin", "off"),
            Some('h') => set("enable_hashjoin", "off"),
            _ => Err(format!("-f{arg}")),
        },
        't' => set("log_statement_stats", "on"),
        other => Err(format!("-{other}{arg}")),
    }
}

/// `name=value` of `-c`/`--`, with `-` in the name read as `_` as PostgreSQL does.
fn long_option(s: &str) -> Switch {
    match s.split_once('=') {
        Some((n, v)) => Ok((n.replace('-', "_"), v.to_string())),
        None => Err(format!("--{s}")),
    }
}

/// The settings an `options` value makes, in order.
pub fn option_switches(options: &str) -> Vec<Switch> {
    let args = split_options(options);
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            // PostgreSQL refuses a stray argument; judged as unreadable here.
            out.push(Err(a.clone()));
            continue;
        };
        for (at, c) in flags.char_indices() {
            if c == '-' || c == 'c' || WITH_ARG.contains(c) {
                let rest = &flags[at + c.len_utf8()..];
                let arg = if rest.is_empty() {
                    let next = args.get(i).cloned().unwrap_or_default();
                    i += 1;
                    next
                } else {
                    rest.to_string()
                };
                out.push(match c {
                    '-' | 'c' => long_option(&arg),
                    _ => short_switch(c, &arg),
                });
                break;
            }
            out.push(short_switch(c, ""));
        }
    }
    out
}

fn statement(text: String, classes: Vec<Class>) -> Statement {
    let mut classes = classes;
    classes.sort();
    classes.dedup();
    Statement {
        fingerprint: text_hash(&text),
        sql: text,
        classes,
        objects: Vec::new(),
        prepares: None,
        executes: None,
        deallocates: None,
        asks: Vec::new(),
    }
}

/// One statement per setting the startup packet makes (keys other than user,
/// database, replication and `_pq_.*`, and each switch in `options`), with the classes
/// of the equivalent `SET`. The policy judges them before the packet is forwarded.
pub fn startup_settings(params: &[(String, String)]) -> Vec<Statement> {
    let mut out = Vec::new();
    for (k, v) in params {
        if k == "options" {
            for sw in option_switches(v) {
                out.push(match sw {
                    Ok((n, val)) => statement(
                        format!("startup options: SET {n} = '{val}'"),
                        session::setting_classes(&n, Some(&val)),
                    ),
                    Err(raw) => statement(format!("startup options: {raw}"), ALL_SPECIFIC.to_vec()),
                });
            }
            continue;
        }
        if NOT_SETTINGS.contains(&k.as_str()) || k.starts_with("_pq_.") {
            continue;
        }
        out.push(statement(
            format!("startup parameter: SET {k} = '{v}'"),
            session::setting_classes(k, Some(v)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes_of(params: &[(&str, &str)]) -> Vec<Vec<&'static str>> {
        let p: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        startup_settings(&p)
            .iter()
            .map(|s| s.classes.iter().map(|c| c.as_str()).collect())
            .collect()
    }

    #[test]
    fn splits_like_postgres() {
        assert_eq!(
            split_options("  -c  a=b\\ c --x-y=1\t-O "),
            vec!["-c", "a=b c", "--x-y=1", "-O"]
        );
        assert!(split_options("   ").is_empty());
    }

    #[test]
    fn switches_become_settings() {
        let got: Vec<Switch> = option_switches("-c search_path=evil -csession_replication_role=replica --transform-null-equals=on -O -Pe -f s -S 64MB");
        let want: Vec<Switch> = vec![
            Ok(("search_path".into(), "evil".into())),
            Ok(("session_replication_role".into(), "replica".into())),
            Ok(("transform_null_equals".into(), "on".into())),
            Ok(("allow_system_table_mods".into(), "on".into())),
            Ok(("ignore_system_indexes".into(), "on".into())),
            Ok(("datestyle".into(), "euro".into())),
            Ok(("enable_seqscan".into(), "off".into())),
            Ok(("work_mem".into(), "64MB".into())),
        ];
        assert_eq!(got, want);
        assert!(option_switches("-X").iter().all(|s| s.is_err()));
        assert!(option_switches("--nothing").iter().all(|s| s.is_err()));
        assert!(option_switches("stray").iter().all(|s| s.is_err()));
    }

    #[test]
    fn startup_keys_are_judged_like_set() {
        let c = classes_of(&[
            ("user", "u"),
            ("database", "d"),
            ("application_name", "psql"),
            ("session_replication_role", "replica"),
            ("options", "-c search_path=x -c statement_timeout=5s"),
            ("client_encoding", "SJIS"),
        ]);
        assert_eq!(
            c,
            vec![
                vec!["session"],
                vec!["session", "session.replication_role"],
                vec!["session", "session.search_path"],
                vec!["session"],
                vec!["session", "session.encoding"],
            ]
        );
        // An unknown switch gets every session class (fails closed).
        assert!(classes_of(&[("options", "-b")])[0].contains(&"session.encoding"));
    }
}
