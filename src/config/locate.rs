//! Finds the line that sets a dotted key in TOML text, so errors found after
//! deserialising can still name `file:line`.

/// Returns the 1-based line of `path` (e.g. ["targets", "prod", "port"]) in `text`.
/// Inline tables resolve to the line of their outermost key.
pub fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let mut table: Vec<String> = Vec::new();
    let mut best: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let inner = line.trim_start_matches('[');
            let inner = inner.split(']').next().unwrap_or("");
            table = inner.split('.').map(|s| unquote(s.trim())).collect();
            if path.starts_with(&table.iter().map(String::as_str).collect::<Vec<_>>())
                && table.len() == path.len()
            {
                best = Some(i + 1);
            }
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let mut full: Vec<String> = table.clone();
        full.extend(key.split('.').map(|s| unquote(s.trim())));
        let n = full.len().min(path.len());
        if n > table.len()
            && full[..n]
                .iter()
                .map(String::as_str)
                .eq(path[..n].iter().copied())
        {
            return Some(i + 1);
        }
    }
    best
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').trim_matches('\'').to_string()
}

/// 1-based line of a byte offset.
pub fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "[server]\nlisten = \"x\"\ntls = { mode = \"require\" }\n\n[targets.prod]\nhost = \"h\"\nport = 0\n[targets.\"b\"]\nport = 1\n";

    #[test]
    fn finds_keys() {
        assert_eq!(line_of(T, &["server", "listen"]), Some(2));
        assert_eq!(line_of(T, &["server", "tls", "mode"]), Some(3));
        assert_eq!(line_of(T, &["targets", "prod", "port"]), Some(7));
        assert_eq!(line_of(T, &["targets", "b", "port"]), Some(9));
        assert_eq!(line_of(T, &["targets", "prod"]), Some(5));
        assert_eq!(line_of(T, &["admin", "listen"]), None);
        assert_eq!(line_at(T, 0), 1);
        assert_eq!(line_at(T, 9), 2);
    }
}
