//! Reachability: warns about rules that an earlier rule always decides first.
//!
//! Rule B is shadowed by an earlier rule A when, for every condition, A matches at
//! least everything B matches: A has no condition on that key, or its patterns cover
//! B's (same pattern, `*`, or a literal of B that A's globs match), its CIDRs contain
//! B's, its time windows are the same text, and its classes are a superset of B's.
//! The test is conservative: it may miss a shadowed rule, it never warns wrongly.

use super::compile::Rule;
use super::matchers::{ClientMatcher, NameMatcher, ObjectMatcher};

fn names_cover(a: &Option<NameMatcher>, b: &Option<NameMatcher>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a.covers(b),
    }
}

fn objects_cover(a: &Option<ObjectMatcher>, b: &Option<ObjectMatcher>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a.covers(b),
    }
}

fn clients_cover(a: &Option<ClientMatcher>, b: &Option<ClientMatcher>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a.covers(b),
    }
}

fn hours_cover(
    a: &Option<Vec<super::window::Window>>,
    b: &Option<Vec<super::window::Window>>,
) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => b.iter().all(|wb| a.iter().any(|wa| wa.text() == wb.text())),
    }
}

/// True when every session and object that `b` matches is matched by `a`
/// (classes aside: those are compared as masks by the caller).
pub(crate) fn covers_conditions(a: &Rule, b: &Rule) -> bool {
    names_cover(&a.environments, &b.environments)
        && names_cover(&a.targets, &b.targets)
        && names_cover(&a.databases, &b.databases)
        && names_cover(&a.users, &b.users)
        && names_cover(&a.applications, &b.applications)
        && clients_cover(&a.clients, &b.clients)
        && objects_cover(&a.objects, &b.objects)
        && hours_cover(&a.hours, &b.hours)
}

/// One warning per shadowed rule. Because each class of a statement is decided
/// separately, several earlier rules can shadow a later one together (one takes
/// `drop.*`, another `truncate`); the warning names them all.
pub(crate) fn shadow_warnings(origin: &str, rules: &[Rule]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, b) in rules.iter().enumerate() {
        let mut taken = 0;
        let mut by: Vec<&Rule> = Vec::new();
        // A rule with impact limits lets statements within them fall through, and
        // one with `empty` applies only to some: neither shadows a later rule.
        for a in rules[..i].iter().filter(|a| a.impact.is_none() && !a.empty) {
            if a.classes & b.classes & !taken != 0 && covers_conditions(a, b) {
                taken |= a.classes & b.classes;
                by.push(a);
                if b.classes & !taken == 0 {
                    break;
                }
            }
        }
        if !by.is_empty() && b.classes & !taken == 0 {
            let names: Vec<String> = by
                .iter()
                .map(|a| format!("'{}' (line {})", a.name, a.line))
                .collect();
            let (noun, list) = if names.len() == 1 {
                ("rule", names[0].clone())
            } else {
                ("rules", names.join(" and "))
            };
            out.push(format!(
                "{origin}:{}: rule '{}' is shadowed by {noun} {list}",
                b.line, b.name
            ));
        }
    }
    out
}
