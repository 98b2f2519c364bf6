//! SQLSTATE codes pgwarden sends, as typed constants.

/// A five-character SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlState(pub &'static str);

impl SqlState {
    pub const SUCCESSFUL_COMPLETION: SqlState = SqlState("00000");
    pub const PROTOCOL_VIOLATION: SqlState = SqlState("08P01");
    pub const CONNECTION_FAILURE: SqlState = SqlState("08006");
    pub const CONNECTION_REJECTED: SqlState = SqlState("08004");
    pub const INVALID_AUTHORIZATION: SqlState = SqlState("28000");
    pub const INVALID_CATALOG_NAME: SqlState = SqlState("3D000");
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState("53300");
    pub const PROGRAM_LIMIT_EXCEEDED: SqlState = SqlState("54000");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState("0A000");
    pub const QUERY_CANCELED: SqlState = SqlState("57014");
    /// lock_not_available: a lock_timeout fired or NOWAIT found the row locked.
    pub const LOCK_NOT_AVAILABLE: SqlState = SqlState("55P03");
    pub const ADMIN_SHUTDOWN: SqlState = SqlState("57P01");
    pub const CANNOT_CONNECT_NOW: SqlState = SqlState("57P03");
    pub const INTERNAL_ERROR: SqlState = SqlState("XX000");
    /// pgwarden: held for self-confirmation.
    pub const PW_HELD_CONFIRM: SqlState = SqlState("PW001");
    /// pgwarden: blocked by policy.
    pub const PW_BLOCKED: SqlState = SqlState("PW002");
    /// pgwarden: confirmation token wrong, reused, expired or foreign.
    pub const PW_BAD_TOKEN: SqlState = SqlState("PW003");
    /// pgwarden: held statement denied.
    pub const PW_DENIED: SqlState = SqlState("PW004");
    /// pgwarden: held statement timed out (or pgwarden shut down while holding it).
    pub const PW_EXPIRED: SqlState = SqlState("PW005");
    /// pgwarden: a guarded statement was refused because the audit log cannot be written.
    pub const PW_AUDIT_UNAVAILABLE: SqlState = SqlState("PW006");
    /// pgwarden: a statement that needs an approver was refused because holds cannot
    /// be recorded (the control database is unreachable), or its hold was withdrawn.
    pub const PW_HOLD_UNAVAILABLE: SqlState = SqlState("PW007");
    /// pgwarden: the re-run of an approved statement would change more than the
    /// approved impact (or could not be measured again); it was rolled back.
    pub const PW_IMPACT_EXCEEDED: SqlState = SqlState("PW008");

    pub fn as_str(self) -> &'static str {
        self.0
    }
}
