//! One-time self-confirmation tokens, bound to user, target and statement
//! fingerprint, and the `/* pgwarden:confirm=TOKEN */` prefix that redeems them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("confirmation token {0} is unknown or was already used")]
    Unknown(String),
    #[error("confirmation token {0} has expired")]
    Expired(String),
    #[error("confirmation token {0} was issued for another user, target or statement")]
    Mismatch(String),
}

struct Issued {
    user: String,
    target: String,
    fingerprint: String,
    expires: Instant,
}

/// Outstanding tokens of one proxy.
#[derive(Default)]
pub struct Tokens {
    issued: Mutex<IssuedSet>,
}

/// The tokens by value, and their expiries in order: issuing prunes only what has
/// expired (from the front of the ordered set) instead of rescanning every token,
/// so many pending holds cost O(log n) per hold, not O(n).
#[derive(Default)]
struct IssuedSet {
    by_token: HashMap<String, Issued>,
    expiries: BTreeSet<(Instant, String)>,
}

impl IssuedSet {
    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.expiries.first() {
            if *at > now {
                break;
            }
            if let Some((_, token)) = self.expiries.pop_first() {
                self.by_token.remove(&token);
            }
        }
    }

    fn take(&mut self, token: &str) -> Option<Issued> {
        let t = self.by_token.remove(token)?;
        self.expiries.remove(&(t.expires, token.to_string()));
        Some(t)
    }
}

const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A fresh random token (10 characters of a 32-letter alphabet without 0/O, 1/I).
pub fn new_token() -> String {
    let mut rng = rand::rng();
    (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What a token is issued for, or presented for: it is accepted only when all three
/// match what it was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse<'a> {
    pub token: &'a str,
    pub user: &'a str,
    pub target: &'a str,
    pub fingerprint: &'a str,
}

impl TokenUse<'_> {
    /// Why a token issued for `(user, target, fingerprint)` and still unused is
    /// refused for this use, if it is; `expired`: its time is up.
    pub fn check(
        &self,
        user: &str,
        target: &str,
        fingerprint: &str,
        expired: bool,
    ) -> Result<(), TokenError> {
        if expired {
            return Err(TokenError::Expired(self.token.to_string()));
        }
        if user != self.user || target != self.target || fingerprint != self.fingerprint {
            return Err(TokenError::Mismatch(self.token.to_string()));
        }
        Ok(())
    }
}

impl Tokens {
    /// Issues a token for this user, target and statement, valid for `ttl`.
    pub fn issue(&self, user: &str, target: &str, fingerprint: &str, ttl: Duration) -> String {
        let token = new_token();
        let now = Instant::now();
        let expires = now + ttl;
        let mut map = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        map.prune(now);
        // A repeated random token (32^10 values) would replace the older one; its
        // expiry entry goes with it so the two structures stay in step.
        let _ = map.take(&token);
        map.expiries.insert((expires, token.clone()));
        map.by_token.insert(
            token.clone(),
            Issued {
                user: user.to_string(),
                target: target.to_string(),
                fingerprint: fingerprint.to_string(),
                expires,
            },
        );
        token
    }

    /// Redeems a token: it works once, before it expires, for what it was issued for.
    /// Any attempt, right or wrong, uses the token up.
    pub fn redeem(
        &self,
        token: &str,
        user: &str,
        target: &str,
        fingerprint: &str,
    ) -> Result<(), TokenError> {
        let mut map = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let t = map
            .take(token)
            .ok_or_else(|| TokenError::Unknown(token.to_string()))?;
        TokenUse {
            token,
            user,
            target,
            fingerprint,
        }
        .check(
            &t.user,
            &t.target,
            &t.fingerprint,
            t.expires <= Instant::now(),
        )
    }
}

impl Tokens {
    /// Outstanding tokens (issued, not yet used, pruned as they expire).
    pub fn len(&self) -> usize {
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_token
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The token of a leading `/* pgwarden:confirm=TOKEN */` comment, if any.
pub fn extract_confirm_token(sql: &str) -> Option<&str> {
    let rest = sql.trim_start().strip_prefix("/*")?;
    let end = rest.find("*/")?;
    let inner = rest[..end].trim();
    let token = inner.strip_prefix("pgwarden:confirm=")?.trim();
    (!token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric())).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_once_for_what_it_was_issued_for() {
        let t = Tokens::default();
        let a = t.issue("bob", "prod", "f1", Duration::from_secs(60));
        assert_eq!(t.redeem(&a, "bob", "prod", "f1"), Ok(()));
        assert_eq!(
            t.redeem(&a, "bob", "prod", "f1"),
            Err(TokenError::Unknown(a.clone()))
        );
        let b = t.issue("bob", "prod", "f1", Duration::from_secs(60));
        assert!(matches!(
            t.redeem(&b, "eve", "prod", "f1"),
            Err(TokenError::Mismatch(_))
        ));
        let c = t.issue("bob", "prod", "f1", Duration::from_secs(60));
        assert!(matches!(
            t.redeem(&c, "bob", "prod", "f2"),
            Err(TokenError::Mismatch(_))
        ));
        let d = t.issue("bob", "prod", "f1", Duration::ZERO);
        assert!(matches!(
            t.redeem(&d, "bob", "prod", "f1"),
            Err(TokenError::Expired(_))
        ));
    }

    #[test]
    fn expired_tokens_are_pruned_without_a_rescan() {
        let t = Tokens::default();
        for _ in 0..100 {
            t.issue("bob", "prod", "f", Duration::ZERO);
        }
        let live = t.issue("bob", "prod", "f", Duration::from_secs(60));
        // The 100 expired ones went when the live one was issued.
        assert_eq!(t.len(), 1);
        assert_eq!(t.redeem(&live, "bob", "prod", "f"), Ok(()));
        assert!(t.is_empty());
    }

    #[test]
    fn many_pending_tokens_stay_indexed_by_expiry() {
        // 50 000 outstanding tokens: issuing prunes from the front of the expiry
        // order (O(log n) each), so the two indexes must stay in step; what it costs
        // is a benchmark's business, not a timed test's.
        let t = Tokens::default();
        for _ in 0..50_000 {
            t.issue("bob", "prod", "f", Duration::from_secs(600));
        }
        assert_eq!(t.len(), 50_000);
        {
            let set = t.issued.lock().unwrap_or_else(|e| e.into_inner());
            assert_eq!(set.by_token.len(), set.expiries.len());
        }
        // One that expires at once is pruned by the next issue; the others stay.
        t.issue("bob", "prod", "f", Duration::ZERO);
        t.issue("bob", "prod", "f", Duration::from_secs(600));
        assert_eq!(t.len(), 50_001);
        let set = t.issued.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(set.by_token.len(), set.expiries.len());
    }

    #[test]
    fn extracts_the_confirm_comment() {
        assert_eq!(
            extract_confirm_token("/* pgwarden:confirm=AB12 */ DROP TABLE t"),
            Some("AB12")
        );
        assert_eq!(
            extract_confirm_token("  /*pgwarden:confirm=AB12*/DROP TABLE t"),
            Some("AB12")
        );
        assert_eq!(
            extract_confirm_token("DROP TABLE t /* pgwarden:confirm=AB12 */"),
            None
        );
        assert_eq!(extract_confirm_token("/* pgwarden:confirm= */ x"), None);
        assert_eq!(extract_confirm_token("/* pgwarden:confirm=A'B */ x"), None);
    }
}
