//! Compiled matchers: name globs, object globs, client CIDRs and class masks.

use std::net::IpAddr;

use globset::{Glob, GlobSet, GlobSetBuilder};
use ipnet::IpNet;

use crate::classify::Class;

/// Set of classes as a bit mask over `Class as usize`.
pub type ClassMask = u128;

const _: () = assert!(Class::ALL.len() <= 128, "ClassMask must hold every class");

/// The bit for one class.
pub fn class_bit(c: Class) -> ClassMask {
    1u128 << (c as u32)
}

/// Every class.
pub fn all_classes() -> ClassMask {
    Class::ALL.iter().fold(0, |m, c| m | class_bit(*c))
}

/// Classes that `on_unparsed` covers: `unparsed` and `unreadable`.
pub fn unparsed_classes() -> ClassMask {
    class_bit(Class::Unparsed) | class_bit(Class::Unreadable)
}

/// The mask of a statement's classes; an empty list counts as `unparsed` (fail closed).
pub fn mask_of(classes: &[Class]) -> ClassMask {
    let m = classes.iter().fold(0, |m, c| m | class_bit(*c));
    if m == 0 {
        class_bit(Class::Unparsed)
    } else {
        m
    }
}

/// Compiles one glob the way every policy matcher reads it: `*` and `?` also match
/// `.` and `/`, `[abc]` classes, `{a,b}` alternatives, `\` escapes; case-sensitive.
pub fn compile_glob(pattern: &str) -> Result<Glob, String> {
    if pattern.is_empty() {
        return Err("empty pattern".to_string());
    }
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("bad glob '{pattern}': {}", e.kind()))
}

/// True when the pattern has no glob metacharacters.
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// A list of name globs (environments, targets, databases, users, applications).
#[derive(Debug, Clone)]
pub struct NameMatcher {
    patterns: Vec<String>,
    /// Set when every pattern is a literal: exact comparison, no regex.
    literals: Option<Vec<String>>,
    set: GlobSet,
    any: bool,
}

impl NameMatcher {
    pub fn new(patterns: &[String]) -> Result<NameMatcher, String> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            b.add(compile_glob(p)?);
        }
        let set = b.build().map_err(|e| e.to_string())?;
        let all_literal = patterns.iter().all(|p| is_literal(p));
        Ok(NameMatcher {
            patterns: patterns.to_vec(),
            literals: all_literal.then(|| patterns.to_vec()),
            set,
            any: patterns.iter().any(|p| p == "*" || p == "**"),
        })
    }

    pub fn is_match(&self, name: &str) -> bool {
        if self.any {
            return true;
        }
        match &self.literals {
            Some(l) => l.iter().any(|p| p == name),
            None => self.set.is_match(name),
        }
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Conservative superset test: true only when every name `other` matches is
    /// certainly matched by `self`.
    pub fn covers(&self, other: &NameMatcher) -> bool {
        self.any
            || other
                .patterns
                .iter()
                .all(|p| self.patterns.contains(p) || (is_literal(p) && self.is_match(p)))
    }
}

/// Object globs (`public.*`, `billing.invoices`). An unqualified object (no `.`
/// before any `(`) is tried both as written and as `public.<name>`, because the
/// default search_path resolves it to `public`.
#[derive(Debug, Clone)]
pub struct ObjectMatcher {
    names: NameMatcher,
}

/// True when the object name carries a schema (a `.` outside any argument list).
pub fn is_qualified(object: &str) -> bool {
    let head = object.split('(').next().unwrap_or(object);
    head.contains('.')
}

impl ObjectMatcher {
    pub fn new(patterns: &[String]) -> Result<ObjectMatcher, String> {
        Ok(ObjectMatcher {
            names: NameMatcher::new(patterns)?,
        })
    }

    /// True when this object (as written, or as `public.<name>` if unqualified) matches.
    pub fn matches_object(&self, object: &str) -> bool {
        if self.names.is_match(object) {
            return true;
        }
        if is_qualified(object) {
            return false;
        }
        let mut q = String::with_capacity(object.len() + 7);
        q.push_str("public.");
        q.push_str(object);
        self.names.is_match(&q)
    }

    /// True when any of the statement's objects matches; none never matches.
    pub fn matches_any(&self, objects: &[String]) -> bool {
        objects.iter().any(|o| self.matches_object(o))
    }

    /// Conservative superset test (see `NameMatcher::covers`).
    pub fn covers(&self, other: &ObjectMatcher) -> bool {
        self.names.any
            || other.names.patterns.iter().all(|p| {
                self.names.patterns.contains(p) || (is_literal(p) && self.matches_object(p))
            })
    }
}

/// Client address CIDRs (`10.0.0.0/8`, `::1`, bare addresses = single host).
#[derive(Debug, Clone)]
pub struct ClientMatcher {
    nets: Vec<IpNet>,
}

impl ClientMatcher {
    pub fn new(specs: &[String]) -> Result<ClientMatcher, String> {
        let mut nets = Vec::with_capacity(specs.len());
        for s in specs {
            let net = if s.contains('/') {
                s.parse::<IpNet>()
                    .map_err(|_| format!("'{s}' is not a CIDR (e.g. 10.0.0.0/8, fd00::/8)"))?
            } else {
                let ip: IpAddr = s
                    .parse()
                    .map_err(|_| format!("'{s}' is not an IP address or CIDR"))?;
                IpNet::from(ip)
            };
            if net.trunc() != net {
                return Err(format!(
                    "'{s}' has host bits set; did you mean {}?",
                    net.trunc()
                ));
            }
            nets.push(net);
        }
        Ok(ClientMatcher { nets })
    }

    /// True when `addr` is inside any CIDR; IPv4-mapped IPv6 addresses are read as IPv4.
    pub fn is_match(&self, addr: Option<IpAddr>) -> bool {
        let Some(addr) = addr else { return false };
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&addr))
    }

    /// Conservative superset test.
    pub fn covers(&self, other: &ClientMatcher) -> bool {
        other
            .nets
            .iter()
            .all(|o| self.nets.iter().any(|n| n.contains(o)))
    }
}

/// Compiles class globs into a mask; a glob matching no class is an error.
pub fn class_mask(patterns: &[String]) -> Result<ClassMask, String> {
    let mut mask = 0;
    for p in patterns {
        let g = compile_glob(p)?.compile_matcher();
        let m = Class::ALL
            .iter()
            .filter(|c| g.is_match(c.as_str()))
            .fold(0, |m, c| m | class_bit(*c));
        if m == 0 {
            return Err(unknown_class_message(p));
        }
        mask |= m;
    }
    Ok(mask)
}

fn unknown_class_message(p: &str) -> String {
    let family = p.split('.').next().unwrap_or(p);
    let same: Vec<&str> = Class::ALL
        .iter()
        .filter(|c| c.family() == family)
        .map(|c| c.as_str())
        .collect();
    if same.is_empty() {
        let mut families: Vec<&str> = Class::ALL.iter().map(|c| c.family()).collect();
        families.sort_unstable();
        families.dedup();
        format!(
            "'{p}' matches no statement class (families: {})",
            families.join(", ")
        )
    } else {
        format!(
            "'{p}' matches no statement class (did you mean one of {}?)",
            same.join(", ")
        )
    }
}
