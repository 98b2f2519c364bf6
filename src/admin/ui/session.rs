//! The approver page's sign-in, as pure functions: session cookies signed with the
//! approver's own token (any replica with the same token accepts them, rotating the
//! token ends every session), the CSRF token bound to the cookie, and the
//! Set-Cookie header with its flags.

use crate::sign::{constant_time_eq, hmac_sha256};

/// The cookie's name.
pub const COOKIE: &str = "pgwarden_ui";

/// How long a sign-in lasts.
pub const SESSION_SECONDS: u64 = 8 * 3600;

const SESSION_LABEL: &[u8] = b"pgwarden-ui-session-v1\0";
const CSRF_LABEL: &[u8] = b"pgwarden-ui-csrf-v1\0";

/// The cookie value for `approver` (whose bearer token is `token`), valid until
/// `expires` (Unix seconds): `v1.<hex name>.<expires>.<hex signature>`.
pub fn issue(approver: &str, token: &str, expires: u64) -> String {
    let name = hex::encode(approver.as_bytes());
    let exp = expires.to_string();
    let sig = hmac_sha256(
        token.as_bytes(),
        &[SESSION_LABEL, name.as_bytes(), b".", exp.as_bytes()],
    );
    format!("v1.{name}.{exp}.{}", hex::encode(sig))
}

/// The approver a cookie value claims to be, before its signature is checked.
pub fn claimed_approver(value: &str) -> Option<String> {
    let mut parts = value.split('.');
    if parts.next()? != "v1" {
        return None;
    }
    let name = hex::decode(parts.next()?).ok()?;
    String::from_utf8(name).ok()
}

/// Whether `value` is a cookie for `approver` signed with `token` and not expired at `now`.
pub fn verify(value: &str, approver: &str, token: &str, now: u64) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    let [_, _, exp, _] = parts[..] else {
        return false;
    };
    let Ok(expires) = exp.parse::<u64>() else {
        return false;
    };
    if expires <= now || expires > now + SESSION_SECONDS {
        return false;
    }
    constant_time_eq(issue(approver, token, expires).as_bytes(), value.as_bytes())
}

/// The CSRF token for a signed-in page: tied to the cookie, so another session's
/// (or a forged) token does not work.
pub fn csrf_token(cookie_value: &str, token: &str) -> String {
    hex::encode(hmac_sha256(
        token.as_bytes(),
        &[CSRF_LABEL, cookie_value.as_bytes()],
    ))
}

pub fn csrf_ok(presented: &str, cookie_value: &str, token: &str) -> bool {
    constant_time_eq(
        presented.as_bytes(),
        csrf_token(cookie_value, token).as_bytes(),
    )
}

/// The Set-Cookie header value. HttpOnly (scripts never see it), SameSite=Strict
/// (other sites' requests never carry it), Secure when the page is served over TLS.
pub fn set_cookie(value: &str, max_age: u64, secure: bool) -> String {
    let mut c = format!("{COOKIE}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The Set-Cookie header value that signs out.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

/// The session cookie's value from a Cookie request header.
pub fn cookie_from_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_cookie_verifies_for_its_approver_and_token_only() {
        let c = issue("alice", "tok-a", NOW + 60);
        assert_eq!(claimed_approver(&c).as_deref(), Some("alice"));
        assert!(verify(&c, "alice", "tok-a", NOW));
        assert!(
            !verify(&c, "alice", "rotated", NOW),
            "a new token ends old sessions"
        );
        assert!(!verify(&c, "bob", "tok-a", NOW));
        assert!(!verify(&c, "alice", "tok-a", NOW + 60), "expired");
    }

    #[test]
    fn tampered_cookies_fail() {
        let c = issue("alice", "tok-a", NOW + 60);
        let later = c.replace(&format!(".{}.", NOW + 60), &format!(".{}.", NOW + 120));
        assert!(!verify(&later, "alice", "tok-a", NOW));
        let renamed = format!("v1.{}{}", hex::encode("bob"), &c[2 + 10..]);
        assert!(!verify(&renamed, "bob", "tok-a", NOW));
        let far = issue("alice", "tok-a", NOW + SESSION_SECONDS + 10);
        assert!(
            !verify(&far, "alice", "tok-a", NOW),
            "longer than a session may last"
        );
        for bad in [
            "",
            "v1",
            "v1.zz.1.2",
            "v2.616c696365.1.00",
            "v1.616c696365.x.00",
        ] {
            assert!(!verify(bad, "alice", "tok-a", NOW), "{bad:?}");
        }
        assert_eq!(claimed_approver("v1.zz"), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let c1 = issue("alice", "tok-a", NOW + 60);
        let c2 = issue("alice", "tok-a", NOW + 61);
        let t1 = csrf_token(&c1, "tok-a");
        assert!(csrf_ok(&t1, &c1, "tok-a"));
        assert!(!csrf_ok(&t1, &c2, "tok-a"));
        assert!(!csrf_ok("", &c1, "tok-a"));
        assert!(!csrf_ok(&t1, &c1, "other"));
    }

    #[test]
    fn cookie_flags() {
        assert_eq!(
            set_cookie("v", 5, false),
            "pgwarden_ui=v; Path=/ui; Max-Age=5; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie("v", 5, true).ends_with("; Secure"));
        assert!(clear_cookie(false).starts_with("pgwarden_ui=; Path=/ui; Max-Age=0;"));
    }

    #[test]
    fn cookie_header_parsing() {
        assert_eq!(cookie_from_header("a=1; pgwarden_ui=xyz; b=2"), Some("xyz"));
        assert_eq!(cookie_from_header("pgwarden_ui="), None);
        assert_eq!(cookie_from_header("other=1"), None);
    }
}
