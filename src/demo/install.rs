//! Offering to install PostgreSQL when the demo finds none: on a terminal, on a
//! system with apt-get, it asks once and runs the installation (through sudo when
//! not root); elsewhere the error names the package to install.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::Command;

/// Debian/Ubuntu packages with the server binaries (initdb, pg_ctl, postgres) and
/// psql; installing them also creates the `postgres` system user.
pub const PACKAGES: [&str; 1] = ["postgresql"];

/// The commands that install `PACKAGES`, or `None` when this system cannot
/// (no apt-get, or not root and no sudo).
pub fn commands(is_root: bool, have_apt: bool, have_sudo: bool) -> Option<Vec<Vec<String>>> {
    if !have_apt || (!is_root && !have_sudo) {
        return None;
    }
    let prefix: Vec<String> = if is_root {
        Vec::new()
    } else {
        vec!["sudo".into()]
    };
    let mut update = prefix.clone();
    update.extend(["apt-get", "update", "-qq"].map(String::from));
    let mut install = prefix;
    install.extend(["apt-get", "install", "-y", "-qq"].map(String::from));
    install.extend(PACKAGES.map(String::from));
    Some(vec![update, install])
}

/// True for an empty answer or one starting with `y` (the question's default is yes).
pub fn is_yes(answer: &str) -> bool {
    let a = answer.trim().to_ascii_lowercase();
    a.is_empty() || a.starts_with('y')
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Asks on the terminal whether to install PostgreSQL and does so. Returns true
/// when the installation ran successfully; false when not asked (no terminal, no
/// apt-get), declined, or failed (the reason is printed).
pub fn offer(is_root: bool) -> bool {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    let Some(cmds) = commands(is_root, on_path("apt-get"), on_path("sudo")) else {
        return false;
    };
    let shown: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
    eprint!(
        "pgwarden demo: PostgreSQL is not installed. Install it now with\n  {}\n? [Y/n] ",
        shown.join(" && ")
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() || !is_yes(&answer) {
        return false;
    }
    for cmd in &cmds {
        let status = Command::new(&cmd[0])
            .args(&cmd[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("pgwarden demo: `{}` failed ({s})", cmd.join(" "));
                return false;
            }
            Err(e) => {
                eprintln!("pgwarden demo: cannot run `{}`: {e}", cmd.join(" "));
                return false;
            }
        }
    }
    Path::new("/usr/lib/postgresql").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_commands() {
        let root = commands(true, true, false).unwrap();
        assert_eq!(root[0].join(" "), "apt-get update -qq");
        assert_eq!(root[1].join(" "), "apt-get install -y -qq postgresql");
        let user = commands(false, true, true).unwrap();
        assert_eq!(user[1].join(" "), "sudo apt-get install -y -qq postgresql");
        assert!(commands(false, true, false).is_none(), "no sudo");
        assert!(commands(true, false, true).is_none(), "no apt-get");
    }

    #[test]
    fn answers() {
        for (a, yes) in [
            ("", true),
            ("\n", true),
            ("y\n", true),
            ("Yes", true),
            ("n\n", false),
            ("no", false),
            ("q", false),
        ] {
            assert_eq!(is_yes(a), yes, "{a:?}");
        }
    }
}
