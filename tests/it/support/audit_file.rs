//! Reading a pgwarden audit log in tests: its records, waiting for an event to be
//! written, `pgwarden audit verify`, and the `[audit]` config section.

use std::path::Path;
use std::time::Duration;

/// Every record of the file, parsed (a missing file has none).
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect()
}

/// Waits (up to 5 s) until the audit file satisfies `pred`; `what` names it in the panic.
pub async fn wait_for(
    path: &Path,
    what: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let r = records(path);
        if pred(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "audit log {} never showed {what}:\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// `pgwarden audit verify FILES…`: success and everything it printed.
pub fn verify(files: &[&Path]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .args(["audit", "verify"])
        .args(files)
        .output()
        .expect("run pgwarden audit verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// An `[audit]` section writing to `path` with the given scope.
pub fn audit_toml(path: &Path, statements: &str) -> String {
    format!(
        "\n[audit]\npath = {}\nstatements = \"{statements}\"\n",
        toml::Value::String(path.display().to_string())
    )
}
