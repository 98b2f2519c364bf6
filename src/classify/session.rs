//! Session settings that change how later text is read or enforced: client encoding,
//! standard_conforming_strings, replication role, search_path, role.

use super::bounded::parse_bool;
use super::statement::{Class, SessionFacts};

/// PostgreSQL's encoding-name cleaning: lower-case, alphanumerics only.
fn clean(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Client encodings in which every byte < 0x80 of a multibyte character is impossible,
/// so quotes and backslashes always mean what they look like. The client-only
/// encodings SJIS, BIG5, GBK, UHC, GB18030 and JOHAB are not here, nor is any name
/// the classifier does not know.
pub fn encoding_is_safe(name: &str) -> bool {
    let n = clean(name);
    if let Some(d) = n.strip_prefix("latin") {
        return matches!(
            d,
            "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "10"
        );
    }
    if let Some(d) = n.strip_prefix("iso8859") {
        return matches!(
            d,
            "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "10" | "13" | "14" | "15" | "16"
        );
    }
    if let Some(d) = n.strip_prefix("windows").or_else(|| n.strip_prefix("win")) {
        return matches!(
            d,
            "866"
                | "874"
                | "1250"
                | "1251"
                | "1252"
                | "1253"
                | "1254"
                | "1255"
                | "1256"
                | "1257"
                | "1258"
        );
    }
    matches!(
        n.as_str(),
        "utf8"
            | "unicode"
            | "sqlascii"
            | "eucjp"
            | "euccn"
            | "euckr"
            | "euctw"
            | "eucjis2004"
            | "koi8"
            | "koi8r"
            | "koi8u"
            | "mule"
            | "muleinternal"
            | "alt"
            | "tcvn"
            | "tcvn5712"
            | "vscii"
            | "abc"
            | "win"
    )
}

/// Whether these session facts make the text unreliable to read.
pub fn unreadable(facts: &SessionFacts) -> bool {
    !facts.standard_conforming_strings || !encoding_is_safe(&facts.client_encoding)
}

/// Classes for setting (or resetting, `value` None) the parameter `name`.
pub fn setting_classes(name: &str, value: Option<&str>) -> Vec<Class> {
    let n = name.to_ascii_lowercase();
    let mut out = vec![Class::Session];
    match n.as_str() {
        "client_encoding" | "names" => out.extend(
            value
                .filter(|v| !encoding_is_safe(v))
                .map(|_| Class::SessionEncoding),
        ),
        "standard_conforming_strings" => {
            if let Some(v) = value {
                if parse_bool(v) != Some(true) {
                    out.push(Class::SessionStringLiterals);
                }
            }
        }
        "backslash_quote" => {
            if let Some(v) = value {
                if parse_bool(v) != Some(false) && !v.eq_ignore_ascii_case("safe_encoding") {
                    out.push(Class::SessionStringLiterals);
                }
            }
        }
        "session_replication_role" => out.push(Class::SessionReplicationRole),
        "search_path" => out.push(Class::SessionSearchPath),
        "role" | "session_authorization" => out.push(Class::SessionRole),
        "transaction"
        | "transaction_isolation"
        | "transaction_read_only"
        | "transaction_deferrable" => out = vec![Class::Transaction],
        _ => {}
    }
    out
}

/// Every specific session class: for `set_config` with a name that cannot be read.
pub const ALL_SPECIFIC: &[Class] = &[
    Class::Session,
    Class::SessionEncoding,
    Class::SessionStringLiterals,
    Class::SessionReplicationRole,
    Class::SessionSearchPath,
    Class::SessionRole,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_encodings() {
        for e in [
            "UTF8",
            "utf-8",
            "SQL_ASCII",
            "LATIN1",
            "latin10",
            "WIN1252",
            "EUC_JP",
            "KOI8R",
            "ISO_8859_5",
        ] {
            assert!(encoding_is_safe(e), "{e}");
        }
        for e in [
            "SJIS",
            "Shift_JIS",
            "BIG5",
            "GBK",
            "GB18030",
            "UHC",
            "JOHAB",
            "WIN932",
            "latin11",
            "SHIFT_JIS_2004",
            "klingon",
            "",
        ] {
            assert!(!encoding_is_safe(e), "{e}");
        }
    }

    #[test]
    fn settings() {
        assert!(setting_classes("client_encoding", Some("sjis")).contains(&Class::SessionEncoding));
        assert!(!setting_classes("client_encoding", Some("UTF8")).contains(&Class::SessionEncoding));
        assert!(setting_classes("standard_conforming_strings", Some("off"))
            .contains(&Class::SessionStringLiterals));
        assert!(!setting_classes("standard_conforming_strings", Some("on"))
            .contains(&Class::SessionStringLiterals));
        assert_eq!(
            setting_classes("work_mem", Some("64MB")),
            vec![Class::Session]
        );
    }

    #[test]
    fn facts() {
        assert!(!unreadable(&SessionFacts::default()));
        let f = SessionFacts {
            standard_conforming_strings: false,
            ..SessionFacts::default()
        };
        assert!(unreadable(&f));
        let f = SessionFacts {
            client_encoding: "SJIS".into(),
            ..SessionFacts::default()
        };
        assert!(unreadable(&f));
    }
}
