//! `PolicyError`: every policy-file problem, located as `file:line: key: what is wrong`.

use std::ops::Range;

/// A policy-file error. Displays as `file:line: key: what is wrong` (`file: key: …`
/// when no line applies, e.g. the file cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {key}: {message}")]
pub struct PolicyError {
    /// `file:line`, or just `file`.
    pub location: String,
    /// The file name as given to `Policy::parse` / `Policy::load`.
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The offending key, as a dotted path (`defaults.production.action`, `rule[2].hours`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl PolicyError {
    pub(crate) fn new(origin: &str, line: Option<usize>, key: &str, message: String) -> Self {
        let location = match line {
            Some(l) => format!("{origin}:{l}"),
            None => origin.to_string(),
        };
        PolicyError {
            location,
            origin: origin.to_string(),
            line,
            key: key.to_string(),
            message,
        }
    }
}

/// 1-based line number of byte `offset` in `text` (clamped to the text).
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Turns a TOML/serde error into a located `PolicyError`, recovering the key path from
/// the error's span and the surrounding text.
pub(crate) fn from_toml(text: &str, origin: &str, err: &toml::de::Error) -> PolicyError {
    let message = err
        .message()
        .trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(span) = err.span() else {
        return PolicyError::new(origin, None, "(file)", message);
    };
    let line = line_of(text, span.start);
    let key = key_path_at(text, &span, &message);
    PolicyError::new(origin, Some(line), &key, message)
}

/// The dotted key path a TOML/serde error is about (`server.bogus`,
/// `targets.prod.host`), recovered from its span; also used by the proxy config.
pub(crate) fn toml_key_path(text: &str, err: &toml::de::Error) -> Option<String> {
    let span = err.span()?;
    let key = key_path_at(text, &span, err.message());
    (key != "(file)").then_some(key)
}

/// Best-effort dotted key path for the value or key at `span`.
fn key_path_at(text: &str, span: &Range<usize>, message: &str) -> String {
    let start = span.start.min(text.len());
    let mut parts: Vec<String> = Vec::new();
    if let Some(table) = enclosing_table(text, start) {
        parts.push(table);
    }
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..start];
    let at_span = text.get(start..span.end.min(text.len())).unwrap_or("");
    // An inline table on this line: `production = { action = "x" }`.
    if before.contains('{') || at_span.starts_with('{') {
        if let Some(outer) = leading_key(before) {
            parts.push(outer);
        }
    }
    let inner = named_in_message(message)
        .or_else(|| key_before_equals(before))
        .or_else(|| {
            let k = at_span.trim();
            is_bare_key(k).then(|| k.to_string())
        });
    match inner {
        Some(k) if parts.last() != Some(&k) => parts.push(k),
        Some(_) => {}
        None if parts.is_empty() => parts.push("(file)".to_string()),
        None => {}
    }
    parts.join(".")
}

/// `unknown field `x``, `missing field `x``, `duplicate key `x`` → `x`.
fn named_in_message(message: &str) -> Option<String> {
    for prefix in [
        "unknown field `",
        "missing field `",
        "duplicate key `",
        "duplicate field `",
    ] {
        if let Some(i) = message.find(prefix) {
            let rest = &message[i + prefix.len()..];
            if let Some(j) = rest.find('`') {
                return Some(rest[..j].to_string());
            }
        }
    }
    None
}

/// The key of the last `key =` before the end of `before` (same line).
fn key_before_equals(before: &str) -> Option<String> {
    let eq = before.rfind('=')?;
    let head = before[..eq].trim_end();
    let start = head
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '"'))
        .map_or(0, |i| i + 1);
    let k = head[start..].trim_matches('"');
    is_bare_key(k).then(|| k.to_string())
}

/// The first `key =` on a line.
fn leading_key(line: &str) -> Option<String> {
    let eq = line.find('=')?;
    let k = line[..eq].trim().trim_matches('"');
    is_bare_key(k).then(|| k.to_string())
}

fn is_bare_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '*')
}

/// The table header in force at `offset`: `defaults`, `rule[3]` (1-based), …
fn enclosing_table(text: &str, offset: usize) -> Option<String> {
    let mut current: Option<String> = None;
    let mut rule_count = 0usize;
    let mut pos = 0usize;
    for line in text.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        let t = line.trim();
        if let Some(inner) = t.strip_prefix("[[") {
            if let Some(name) = inner.split("]]").next() {
                let name = name.trim();
                if name == "rule" {
                    rule_count += 1;
                    current = Some(format!("rule[{rule_count}]"));
                } else {
                    current = Some(name.to_string());
                }
            }
        } else if let Some(inner) = t.strip_prefix('[') {
            if let Some(name) = inner.split(']').next() {
                let name = name.trim();
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.\"* ".contains(c))
                {
                    current = Some(name.replace('"', ""));
                }
            }
        }
        pos += line.len();
    }
    current
}
