//! Which statements are recorded (`audit.statements`) and whether durably
//! (`audit.durability`). Pure.
//!
//! | scope | recorded | synced before execution (with `before-execute`) |
//! |---|---|---|
//! | `guarded` | guarded statements | guarded statements |
//! | `writes` | guarded + every statement that is not read-only | guarded statements only |
//! | `all` | everything | everything |
//!
//! "Guarded" = any decision other than a plain `allow` (audit, block, hold,
//! confirmed, approved, …; in shadow mode the would-be decision counts).
//! With `buffered`, nothing is synced before execution.

use super::event::Disposition;
use crate::classify::Class;
use crate::config::{AuditScope, Durability};

/// Classes that do not change data or schema. A statement with only these is not a
/// "write" for `audit.statements = "writes"`. Security-relevant session settings
/// (role, search_path, encoding…) have classes of their own and count as writes.
const READ_ONLY: &[Class] = &[
    Class::Read,
    Class::Transaction,
    Class::Session,
    Class::CopyOut,
];

/// True when the decision is anything but a plain allow.
pub fn is_guarded(decision: Disposition) -> bool {
    decision != Disposition::Allow
}

/// True when some class changes something (not in the read-only set).
pub fn is_write(classes: &[Class]) -> bool {
    classes.is_empty() || classes.iter().any(|c| !READ_ONLY.contains(c))
}

/// `None`: not recorded. `Some(BeforeExecute)`: record with `record_durable` and wait
/// before forwarding. `Some(Buffered)`: record with `record`.
pub fn should_record(
    scope: AuditScope,
    durability: Durability,
    decision: Disposition,
    classes: &[Class],
) -> Option<Durability> {
    let guarded = is_guarded(decision);
    let recorded = match scope {
        AuditScope::Guarded => guarded,
        AuditScope::Writes => guarded || is_write(classes),
        AuditScope::All => true,
    };
    if !recorded {
        return None;
    }
    let synced = durability == Durability::BeforeExecute && (guarded || scope == AuditScope::All);
    Some(if synced {
        Durability::BeforeExecute
    } else {
        Durability::Buffered
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuditScope::*;
    use Disposition as D;
    use Durability::*;

    type Row = (
        &'static str,
        AuditScope,
        Durability,
        Disposition,
        &'static [Class],
        Option<Durability>,
    );

    #[test]
    fn table() {
        let read: &'static [Class] = &[Class::Read];
        let set: &'static [Class] = &[Class::Session];
        let begin: &'static [Class] = &[Class::Transaction];
        let write: &'static [Class] = &[Class::Write];
        let drop: &'static [Class] = &[Class::DropTable];
        let role: &'static [Class] = &[Class::SessionRole];
        let cte: &'static [Class] = &[Class::DeleteUnbounded, Class::Read];
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("guarded: plain read not recorded", Guarded, BeforeExecute, D::Allow, read, None),
            ("guarded: plain write not recorded", Guarded, BeforeExecute, D::Allow, write, None),
            ("guarded: audit synced", Guarded, BeforeExecute, D::Audit, read, Some(BeforeExecute)),
            ("guarded: block synced", Guarded, BeforeExecute, D::Block, drop, Some(BeforeExecute)),
            ("guarded: hold synced", Guarded, BeforeExecute, D::Hold, drop, Some(BeforeExecute)),
            ("guarded: confirmed synced", Guarded, BeforeExecute, D::Confirmed, drop, Some(BeforeExecute)),
            ("guarded: approved synced", Guarded, BeforeExecute, D::Approved, drop, Some(BeforeExecute)),
            ("guarded buffered: block buffered", Guarded, Buffered, D::Block, drop, Some(Buffered)),
            ("writes: read not recorded", Writes, BeforeExecute, D::Allow, read, None),
            ("writes: SET not recorded", Writes, BeforeExecute, D::Allow, set, None),
            ("writes: BEGIN not recorded", Writes, BeforeExecute, D::Allow, begin, None),
            ("writes: SET ROLE recorded", Writes, BeforeExecute, D::Allow, role, Some(Buffered)),
            ("writes: insert buffered", Writes, BeforeExecute, D::Allow, write, Some(Buffered)),
            ("writes: destructive CTE in select", Writes, BeforeExecute, D::Allow, cte, Some(Buffered)),
            ("writes: guarded still synced", Writes, BeforeExecute, D::Hold, drop, Some(BeforeExecute)),
            ("writes: guarded read synced", Writes, BeforeExecute, D::Audit, read, Some(BeforeExecute)),
            ("all: read synced", All, BeforeExecute, D::Allow, read, Some(BeforeExecute)),
            ("all buffered: read buffered", All, Buffered, D::Allow, read, Some(Buffered)),
            ("all buffered: block buffered", All, Buffered, D::Block, drop, Some(Buffered)),
        ];
        for (name, scope, dur, dec, classes, want) in rows {
            assert_eq!(should_record(*scope, *dur, *dec, classes), *want, "{name}");
        }
    }
}
