//! SQL text decoded exactly as the server reads it, in the session's client encoding.
//!
//! The classifier parses UTF-8. Text in another client encoding is decoded with that
//! encoding's table (LATIN1 byte for byte, the others with `encoding_rs`), never
//! lossily: a lossy decoding turns distinct non-ASCII dollar-quote tags into the same
//! tag and pgwarden would pair quotes differently from the server. Text that does not
//! decode exactly (invalid bytes, an encoding without a table here) is `None`, which
//! the caller classes `unreadable`. Pure ASCII reads the same in every encoding the
//! classifier accepts (`encoding_is_safe`), so it is taken as it is.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// PostgreSQL's encoding-name cleaning: lower-case, alphanumerics only.
fn clean(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The `encoding_rs` table for a PostgreSQL client encoding whose characters it maps
/// as PostgreSQL's conversion to UTF-8 does.
fn table(name: &str) -> Option<&'static Encoding> {
    use encoding_rs::*;
    Some(match name {
        "latin2" | "iso88592" => ISO_8859_2,
        "latin3" | "iso88593" => ISO_8859_3,
        "latin4" | "iso88594" => ISO_8859_4,
        "iso88595" => ISO_8859_5,
        "iso88596" => ISO_8859_6,
        "iso88597" => ISO_8859_7,
        "iso88598" => ISO_8859_8,
        "latin6" | "iso885910" => ISO_8859_10,
        "latin7" | "iso885913" => ISO_8859_13,
        "latin8" | "iso885914" => ISO_8859_14,
        "latin9" | "iso885915" => ISO_8859_15,
        "latin10" | "iso885916" => ISO_8859_16,
        "win866" | "windows866" | "alt" => IBM866,
        "win874" | "windows874" => WINDOWS_874,
        "win1250" | "windows1250" => WINDOWS_1250,
        "win1251" | "windows1251" | "win" => WINDOWS_1251,
        "win1252" | "windows1252" => WINDOWS_1252,
        "win1253" | "windows1253" => WINDOWS_1253,
        "win1254" | "windows1254" => WINDOWS_1254,
        "win1255" | "windows1255" => WINDOWS_1255,
        "win1256" | "windows1256" => WINDOWS_1256,
        "win1257" | "windows1257" => WINDOWS_1257,
        "win1258" | "windows1258" | "abc" | "tcvn" | "tcvn5712" => WINDOWS_1258,
        "koi8" | "koi8r" => KOI8_R,
        "koi8u" => KOI8_U,
        "eucjp" => EUC_JP,
        _ => return None,
    })
}

/// Strict two-byte EUC: every non-ASCII character is two bytes in 0xA1-0xFE.
fn euc_pairs(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii() {
            i += 1;
            continue;
        }
        let pair = (0xa1..=0xfe).contains(&bytes[i])
            && bytes.get(i + 1).is_some_and(|b| (0xa1..=0xfe).contains(b));
        if !pair {
            return false;
        }
        i += 2;
    }
    true
}

/// `bytes` as the server reads them in `client_encoding`, or `None` if they cannot be
/// decoded exactly here.
pub fn decode<'a>(bytes: &'a [u8], client_encoding: &str) -> Option<Cow<'a, str>> {
    if bytes.is_ascii() {
        return std::str::from_utf8(bytes).ok().map(Cow::Borrowed);
    }
    let name = clean(client_encoding);
    match name.as_str() {
        "utf8" | "unicode" => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        // ISO 8859-1 is the first 256 code points: one character per byte.
        "latin1" | "iso88591" => Some(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())),
        // LATIN5 is ISO 8859-9; encoding_rs reads that label as windows-1254, which
        // differs in 0x80-0x9F: exact for the other bytes only.
        "latin5" | "iso88599" => {
            if bytes.iter().any(|b| (0x80..0xa0).contains(b)) {
                return None;
            }
            encoding_rs::WINDOWS_1254.decode_without_bom_handling_and_without_replacement(bytes)
        }
        // SQL_ASCII converts nothing: UTF-8 if it is, else each byte as itself.
        "sqlascii" => Some(match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
        }),
        // encoding_rs reads EUC-KR as windows-949 and EUC-CN as GBK, supersets whose
        // second bytes may be ASCII: only text that is strict EUC is decoded.
        "euckr" if euc_pairs(bytes) => {
            encoding_rs::EUC_KR.decode_without_bom_handling_and_without_replacement(bytes)
        }
        "euccn" if euc_pairs(bytes) => {
            encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(bytes)
        }
        other => table(other)?.decode_without_bom_handling_and_without_replacement(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_itself_everywhere() {
        for enc in ["UTF8", "LATIN1", "EUC_JP", "SJIS", "whatever"] {
            assert_eq!(decode(b"SELECT 1", enc).as_deref(), Some("SELECT 1"));
        }
    }

    #[test]
    fn utf8_is_strict() {
        assert_eq!(decode("é".as_bytes(), "UTF8").as_deref(), Some("é"));
        assert_eq!(decode(b"\xe9", "UTF8"), None);
    }

    #[test]
    fn single_byte_encodings_keep_distinct_bytes_distinct() {
        assert_eq!(
            decode(b"$\xe9$ $\xfc$", "LATIN1").as_deref(),
            Some("$é$ $ü$")
        );
        assert_eq!(decode(b"\x80", "WIN1252").as_deref(), Some("€"));
        assert_eq!(decode(b"\xe9", "KOI8R").as_deref(), Some("И"));
        let a = decode(b"\x9a", "WIN1252");
        let b = decode(b"\x9e", "WIN1252");
        assert!(a.is_some() && b.is_some() && a != b);
    }

    #[test]
    fn multibyte_encodings_reject_broken_sequences() {
        assert_eq!(decode(b"\xa4\xa2", "EUC_JP").as_deref(), Some("あ"));
        // A lead byte followed by an ASCII quote: not a character.
        assert_eq!(decode(b"\xa4'", "EUC_JP"), None);
        assert_eq!(decode(b"\xa4", "EUC_JP"), None);
        assert_eq!(decode(b"\xb0\xa1", "EUC_KR").as_deref(), Some("가"));
        assert_eq!(decode(b"\xb0A", "EUC_KR"), None);
        assert_eq!(decode(b"\xb0\xa1", "EUC_CN").as_deref(), Some("啊"));
        assert_eq!(decode(b"\x81\x40", "EUC_CN"), None);
    }

    #[test]
    fn encodings_without_a_table_are_not_guessed() {
        assert_eq!(decode(b"\xa4\xa2", "EUC_TW"), None);
        assert_eq!(decode(b"\xa4\xa2", "MULE_INTERNAL"), None);
        assert_eq!(decode(b"\x81", "LATIN5"), None);
        assert_eq!(decode(b"\xfd", "LATIN5").as_deref(), Some("ı"));
    }
}
