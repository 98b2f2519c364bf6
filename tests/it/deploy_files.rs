//! Static checks of the Dockerfile (no container engine is needed), `.dockerignore`,
//! and the systemd unit: stages, non-root user, ports, entrypoint, and build steps
//! that stay the same as `.ci/run`'s so CI exercises them.

use std::fs;
use std::path::Path;

fn read(rel: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One Dockerfile instruction: keyword (upper case) and its arguments.
#[derive(Debug)]
struct Instr {
    op: String,
    args: String,
}

/// Joins `\` continuations, drops comments and blank lines.
fn instructions(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if t.starts_with('#') {
            continue; // comment inside a continued instruction
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (op, args) = cur.split_once(char::is_whitespace).unwrap_or((&cur, ""));
        out.push(Instr {
            op: op.to_ascii_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        });
        cur.clear();
    }
    assert!(cur.is_empty(), "unterminated continuation at the end");
    out
}

/// Instructions grouped by stage: (FROM arguments with ARGs substituted, body).
fn stages(instrs: &[Instr]) -> Vec<(String, Vec<&Instr>)> {
    let mut args: Vec<(String, String)> = Vec::new();
    let mut stages: Vec<(String, Vec<&Instr>)> = Vec::new();
    for i in instrs {
        match i.op.as_str() {
            "ARG" if stages.is_empty() => {
                if let Some((k, v)) = i.args.split_once('=') {
                    args.push((k.to_string(), v.to_string()));
                }
            }
            "FROM" => {
                let mut from = i.args.clone();
                for (k, v) in &args {
                    from = from.replace(&format!("${{{k}}}"), v);
                }
                stages.push((from, Vec::new()));
            }
            _ => stages
                .last_mut()
                .expect("an instruction before the first FROM")
                .1
                .push(i),
        }
    }
    stages
}

fn all<'a>(body: &[&'a Instr], op: &str) -> Vec<&'a str> {
    body.iter()
        .filter(|i| i.op == op)
        .map(|i| i.args.as_str())
        .collect()
}

/// Packages named by `apt-get install` commands in `text`.
fn apt_packages(text: &str) -> Vec<String> {
    let mut pkgs = Vec::new();
    for cmd in text.split("&&") {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        if let Some(i) = words.windows(2).position(|w| w == ["apt-get", "install"]) {
            pkgs.extend(
                words[i + 2..]
                    .iter()
                    .filter(|w| !w.starts_with('-') && !w.starts_with('"'))
                    .map(|w| w.to_string()),
            );
        }
    }
    pkgs
}

#[test]
fn dockerfile_is_multi_stage_small_and_unprivileged() {
    let text = read("Dockerfile");
    let instrs = instructions(&text);
    let stages = stages(&instrs);
    assert!(stages.len() >= 2, "multi-stage build expected: {stages:?}");

    // Build stage: a Debian-based Rust image and nothing else (pg_query's bindings are
    // pregenerated: no libclang), the optimised build.
    let (from, build) = &stages[0];
    assert!(
        from.starts_with("rust:") && from.contains("bookworm") && from.ends_with(" AS build"),
        "build stage: {from}"
    );
    let build_runs = all(build, "RUN").join("\n");
    assert!(
        apt_packages(&build_runs).is_empty(),
        "the build stage needs no packages beyond the Rust image: {build_runs}"
    );
    assert!(
        build_runs.contains("cargo build --profile dist --locked"),
        "{build_runs}"
    );
    assert!(
        build_runs.contains("target/dist/pgwarden /usr/local/bin/pgwarden"),
        "{build_runs}"
    );

    // Runtime stage: debian slim with CA certificates only, the binary from the build.
    let (from, run) = stages.last().unwrap();
    assert!(
        from.starts_with("debian:bookworm-slim"),
        "runtime stage: {from}"
    );
    let run_runs = all(run, "RUN").join("\n");
    assert_eq!(apt_packages(&run_runs), ["ca-certificates"], "{run_runs}");
    assert!(
        all(run, "COPY")
            .iter()
            .any(|c| c.starts_with("--from=build ") && c.contains("pgwarden /usr/local/bin/")),
        "the runtime copies the binary from the build stage"
    );
    assert!(
        all(run, "COPY")
            .iter()
            .any(|c| c.contains("policy.example.toml") && c.ends_with("/etc/pgwarden/")),
        "the example policy is in /etc/pgwarden/"
    );

    // Non-root, numerically (so Kubernetes runAsNonRoot can verify it).
    let users = all(run, "USER");
    let user = users.last().expect("USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert_eq!(uid, "10001", "USER {user}");
    assert!(
        run_runs.contains("--uid 10001"),
        "the user exists in /etc/passwd"
    );

    let exposed: Vec<&str> = all(run, "EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .collect();
    for port in ["6432", "9187"] {
        assert!(exposed.contains(&port), "EXPOSE {port}: {exposed:?}");
    }
    assert_eq!(all(run, "ENTRYPOINT"), [r#"["pgwarden"]"#]);
    let cmd: Vec<String> = serde_json::from_str(all(run, "CMD").last().expect("CMD")).unwrap();
    assert_eq!(cmd, ["serve", "--config", "/etc/pgwarden/proxy.toml"]);
}

#[test]
fn the_build_needs_no_libclang() {
    // bindgen (which loads libclang) is replaced by the pregenerated pg_query
    // bindings: nothing in the dependency graph may load libclang again.
    let lock = read("Cargo.lock");
    for name in ["clang-sys", "bindgen"] {
        let entry = lock
            .split("[[package]]")
            .find(|p| p.contains(&format!("name = \"{name}\"\n")));
        if name == "clang-sys" {
            assert!(entry.is_none(), "Cargo.lock has clang-sys again: {entry:?}");
        } else {
            let entry = entry.expect("pg_query's build script depends on bindgen");
            assert!(
                !entry.contains("source ="),
                "bindgen comes from a registry, not tools/pg_query-bindings: {entry}"
            );
        }
    }
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains("bindgen = { path = \"tools/pg_query-bindings\" }"),
        "Cargo.toml patches bindgen"
    );
}

#[test]
fn dockerfile_build_steps_match_ci() {
    let ci = read(".ci/run");
    let docker = read("Dockerfile");
    let docker_runs: String = stages(&instructions(&docker))[0]
        .1
        .iter()
        .filter(|i| i.op == "RUN")
        .map(|i| i.args.clone())
        .collect::<Vec<_>>()
        .join("\n");
    // Same build command.
    assert!(
        ci.lines()
            .any(|l| l.trim() == "cargo build --profile dist --locked"),
        ".ci/run runs the Dockerfile's build command"
    );
    // Same build-time system packages: .ci/run installs each one the Dockerfile does.
    for pkg in apt_packages(&docker_runs) {
        assert!(ci.contains(&pkg), ".ci/run does not install {pkg}");
    }
}

#[test]
fn dockerignore_keeps_the_context_small_but_complete() {
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for p in ["target/", ".git/"] {
        assert!(patterns.contains(&p), ".dockerignore lacks {p}");
    }
    // What the build reads must stay in the context.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "benches",
        "tools",
        "policy.example.toml",
        "proxy.toml.example",
    ] {
        assert!(
            !patterns
                .iter()
                .any(|p| p.trim_matches('/') == needed || *p == "*"),
            ".dockerignore excludes {needed}, which the build needs"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(needed).exists(),
            "{needed} missing"
        );
    }
}

#[test]
fn systemd_unit_runs_serve_unprivileged_and_hardened() {
    let unit = read("deploy/systemd/pgwarden.service");
    let keys: Vec<(&str, &str)> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| keys.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let exec = get("ExecStart").expect("ExecStart");
    assert!(
        exec.contains("pgwarden serve --config /etc/pgwarden/proxy.toml"),
        "{exec}"
    );
    let user = get("User").expect("User");
    assert!(user != "root" && user != "0", "User={user}");
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("StateDirectory", "pgwarden"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(get(k), Some(v), "{k}");
    }
    assert!(get("ExecReload").is_some_and(|r| r.contains("-HUP")));
}
