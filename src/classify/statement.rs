//! The classifier's output types: statement classes and the per-statement record.

use std::fmt;

/// One statement class. The dotted names are the user-facing contract (PRODUCT.md);
/// policies match them with globs, metrics use them as a bounded label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    DropDatabase,
    DropSchema,
    DropTable,
    DropView,
    DropIndex,
    DropFunction,
    DropType,
    DropExtension,
    DropRole,
    DropOwned,
    DropOther,
    Truncate,
    DeleteUnbounded,
    /// DELETE whose WHERE the classifier could not prove bounded or unbounded
    /// (e.g. it depends on a parameter or a function result).
    DeleteMaybeUnbounded,
    DeleteBounded,
    UpdateUnbounded,
    UpdateMaybeUnbounded,
    UpdateBounded,
    MergeDelete,
    /// MERGE with a `WHEN … THEN UPDATE` branch: may overwrite every row it joins.
    MergeUpdate,
    /// `INSERT … ON CONFLICT DO UPDATE`: may overwrite every row it conflicts with.
    InsertUpsert,
    AlterDropColumn,
    AlterColumnType,
    /// A column type change the target's catalog shows to be metadata-only (a
    /// varchar, numeric or varbit widened, varchar to text): no rewrite, nothing lost.
    AlterColumnWiden,
    AlterRename,
    AlterSetSchema,
    AlterDetachPartition,
    AlterOther,
    /// ALTER ROLE/USER/GROUP: login, password, validity, limits, attributes, membership, stored settings.
    AlterRole,
    /// ALTER DATABASE: connection limit, allow_connections, stored settings, rename, owner.
    AlterDatabase,
    /// `OWNER TO`: the object changes owner (the old owner may lose access).
    AlterOwner,
    /// Triggers, rules or row security switched off or on (`DISABLE TRIGGER`, `ENABLE REPLICA TRIGGER`, `NO FORCE ROW LEVEL SECURITY`…).
    AlterTrigger,
    /// `SET UNLOGGED`/`LOGGED`, `SET TABLESPACE`, `SET ACCESS METHOD`: rewrites or moves the table (unlogged data is lost on a crash).
    AlterStorage,
    /// A column added with a default together with a foreign key that cascades: a later one-row delete of the parent can change every row.
    AlterCascade,
    /// `COMMIT PREPARED`/`ROLLBACK PREPARED`: finishes a transaction some other session prepared.
    TransactionPrepared,
    /// A write to a table or view in `pg_catalog` (including `pg_settings`).
    SystemCatalog,
    /// DDL or a utility statement that is not on pgwarden's list of routine, non-destructive ones.
    DdlUnlisted,
    ReassignOwned,
    CreateCode,
    CodeDo,
    /// A DO block or function body whose effect cannot be seen statically
    /// (dynamic EXECUTE, or a language the classifier cannot read).
    CodeOpaque,
    CodeCall,
    /// `lo_unlink`: deletes a large object.
    LargeObjectDelete,
    /// `lowrite`, `lo_put`, `lo_truncate`, `lo_import`, `lo_export`: overwrite a large
    /// object (or move one between it and a server file).
    LargeObjectWrite,
    /// A sequence moved or changed so that inserts may collide or break: `setval`,
    /// `ALTER SEQUENCE … RESTART/INCREMENT/MAXVALUE…`, identity changes.
    AlterSequence,
    CopyProgram,
    CopyIn,
    CopyOut,
    Grant,
    Revoke,
    System,
    Maintenance,
    Transaction,
    Session,
    /// SET client_encoding / SET NAMES to an encoding outside the safe set.
    SessionEncoding,
    /// SET standard_conforming_strings = off (changes how string literals read).
    SessionStringLiterals,
    SessionReplicationRole,
    SessionSearchPath,
    SessionRole,
    /// A setting that is not on the classifier's list of routine session settings
    /// (e.g. `allow_system_table_mods`, `transform_null_equals`, `pgaudit.log`).
    SessionOther,
    /// Session facts say the text cannot be read reliably (unsafe client encoding,
    /// standard_conforming_strings off): a production policy holds this by default.
    Unreadable,
    Read,
    Write,
    /// Any other DDL that creates objects (tables, indexes, views, schemas…).
    Create,
    Unparsed,
}

impl Class {
    /// Every class, in declaration order.
    pub const ALL: &'static [Class] = &[
        Class::DropDatabase,
        Class::DropSchema,
        Class::DropTable,
        Class::DropView,
        Class::DropIndex,
        Class::DropFunction,
        Class::DropType,
        Class::DropExtension,
        Class::DropRole,
        Class::DropOwned,
        Class::DropOther,
        Class::Truncate,
        Class::DeleteUnbounded,
        Class::DeleteMaybeUnbounded,
        Class::DeleteBounded,
        Class::UpdateUnbounded,
        Class::UpdateMaybeUnbounded,
        Class::UpdateBounded,
        Class::MergeDelete,
        Class::MergeUpdate,
        Class::InsertUpsert,
        Class::AlterDropColumn,
        Class::AlterColumnType,
        Class::AlterColumnWiden,
        Class::AlterRename,
        Class::AlterSetSchema,
        Class::AlterDetachPartition,
        Class::AlterOther,
        Class::AlterRole,
        Class::AlterDatabase,
        Class::AlterOwner,
        Class::AlterTrigger,
        Class::AlterStorage,
        Class::AlterCascade,
        Class::TransactionPrepared,
        Class::SystemCatalog,
        Class::DdlUnlisted,
        Class::ReassignOwned,
        Class::CreateCode,
        Class::CodeDo,
        Class::CodeOpaque,
        Class::CodeCall,
        Class::LargeObjectDelete,
        Class::LargeObjectWrite,
        Class::AlterSequence,
        Class::CopyProgram,
        Class::CopyIn,
        Class::CopyOut,
        Class::Grant,
        Class::Revoke,
        Class::System,
        Class::Maintenance,
        Class::Transaction,
        Class::Session,
        Class::SessionEncoding,
        Class::SessionStringLiterals,
        Class::SessionReplicationRole,
        Class::SessionSearchPath,
        Class::SessionRole,
        Class::SessionOther,
        Class::Unreadable,
        Class::Read,
        Class::Write,
        Class::Create,
        Class::Unparsed,
    ];

    /// The dotted, user-facing name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::DropDatabase => "drop.database",
            Class::DropSchema => "drop.schema",
            Class::DropTable => "drop.table",
            Class::DropView => "drop.view",
            Class::DropIndex => "drop.index",
            Class::DropFunction => "drop.function",
            Class::DropType => "drop.type",
            Class::DropExtension => "drop.extension",
            Class::DropRole => "drop.role",
            Class::DropOwned => "drop.owned",
            Class::DropOther => "drop.other",
            Class::Truncate => "truncate",
            Class::DeleteUnbounded => "delete.unbounded",
            Class::DeleteMaybeUnbounded => "delete.maybe_unbounded",
            Class::DeleteBounded => "delete.bounded",
            Class::UpdateUnbounded => "update.unbounded",
            Class::UpdateMaybeUnbounded => "update.maybe_unbounded",
            Class::UpdateBounded => "update.bounded",
            Class::MergeDelete => "merge.delete",
            Class::MergeUpdate => "merge.update",
            Class::InsertUpsert => "insert.upsert",
            Class::AlterDropColumn => "alter.drop_column",
            Class::AlterColumnType => "alter.column_type",
            Class::AlterColumnWiden => "alter.column_widen",
            Class::AlterRename => "alter.rename",
            Class::AlterSetSchema => "alter.set_schema",
            Class::AlterDetachPartition => "alter.detach_partition",
            Class::AlterOther => "alter.other",
            Class::AlterRole => "alter.role",
            Class::AlterDatabase => "alter.database",
            Class::AlterOwner => "alter.owner",
            Class::AlterTrigger => "alter.trigger",
            Class::AlterStorage => "alter.storage",
            Class::AlterCascade => "alter.cascade",
            Class::TransactionPrepared => "transaction.prepared",
            Class::SystemCatalog => "system.catalog",
            Class::DdlUnlisted => "ddl.unlisted",
            Class::ReassignOwned => "reassign_owned",
            Class::CreateCode => "create.code",
            Class::CodeDo => "code.do",
            Class::CodeOpaque => "code.opaque",
            Class::CodeCall => "code.call",
            Class::LargeObjectDelete => "large_object.delete",
            Class::LargeObjectWrite => "large_object.write",
            Class::AlterSequence => "alter.sequence",
            Class::CopyProgram => "copy.program",
            Class::CopyIn => "copy.in",
            Class::CopyOut => "copy.out",
            Class::Grant => "grant",
            Class::Revoke => "revoke",
            Class::System => "system",
            Class::Maintenance => "maintenance",
            Class::Transaction => "transaction",
            Class::Session => "session",
            Class::SessionEncoding => "session.encoding",
            Class::SessionStringLiterals => "session.string_literals",
            Class::SessionReplicationRole => "session.replication_role",
            Class::SessionSearchPath => "session.search_path",
            Class::SessionRole => "session.role",
            Class::SessionOther => "session.other",
            Class::Unreadable => "unreadable",
            Class::Read => "read",
            Class::Write => "write",
            Class::Create => "create.other",
            Class::Unparsed => "unparsed",
        }
    }

    /// Looks a class up by its dotted name.
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The part before the first dot, a small bounded set for metrics labels.
    pub fn family(self) -> &'static str {
        let s = self.as_str();
        match s.find('.') {
            Some(i) => &s[..i],
            None => s,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about the session that change how SQL text must be read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionFacts {
    /// Server-reported `standard_conforming_strings` (true unless the server says "off").
    pub standard_conforming_strings: bool,
    /// Server-reported `client_encoding`, upper-case as the server reports it (e.g. "UTF8").
    pub client_encoding: String,
}

impl SessionFacts {
    /// These facts with an encoding no text is read in: every statement classified
    /// with them is `unreadable` (text that did not decode exactly, or that follows
    /// a change of how text reads the server has not confirmed yet).
    pub fn unreadable(&self) -> SessionFacts {
        SessionFacts {
            client_encoding: "(not read exactly)".to_string(),
            ..self.clone()
        }
    }
}

impl Default for SessionFacts {
    fn default() -> Self {
        SessionFacts {
            standard_conforming_strings: true,
            client_encoding: "UTF8".to_string(),
        }
    }
}

/// What the classifier knows about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// This statement's own text, as it appeared in the input (trimmed).
    pub sql: String,
    /// Classes, sorted and deduplicated; never empty (at least `read`, `write`,
    /// `session`… or `unparsed`).
    pub classes: Vec<Class>,
    /// Objects the statement touches, schema-qualified when the text qualified them,
    /// otherwise as written (resolution depends on the server's search_path).
    /// Sorted and deduplicated.
    pub objects: Vec<String>,
    /// pg_query fingerprint as 16 hex digits; for unparsed text a SHA-256-based
    /// hash of the text so the value is still stable.
    pub fingerprint: String,
    /// `PREPARE name AS …`: the name, so `EXECUTE name` can be resolved later.
    /// The classes above are those of the prepared body.
    pub prepares: Option<String>,
    /// `EXECUTE name`: the prepared statement it runs (the session resolves it).
    pub executes: Option<String>,
    /// `DEALLOCATE name` (`Some("")` never; `DEALLOCATE ALL` gives `Some("*")`).
    pub deallocates: Option<String>,
    /// Facts only the target's catalog settles; when every one is proven, the
    /// session refines the classes (see [`CatalogAsk`]). Empty for most statements.
    pub asks: Vec<CatalogAsk>,
}

/// A question about one statement that the classifier cannot answer from the text
/// and the session asks the target's catalog before deciding. Recorded only when
/// answering every ask of the statement "yes" would make the refinement sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogAsk {
    /// `ALTER TABLE … ALTER COLUMN … TYPE` without USING or COLLATE: proven when
    /// the change is metadata-only. When every type change of the statement is,
    /// `alter.column_type` becomes `alter.column_widen`.
    Widen {
        schema: Option<String>,
        table: String,
        column: String,
        /// The new type's name as written (`["pg_catalog", "varchar"]`, `["text"]`).
        type_name: Vec<String>,
        /// Its type modifiers (`varchar(40)` → `[40]`).
        typmods: Vec<i64>,
    },
    /// `TRUNCATE name`, unqualified: proven when `name` resolves to the session's
    /// own temporary table. When every table of the TRUNCATE is one, `truncate`
    /// becomes `write`.
    TempTable { name: String },
}

impl Statement {
    pub fn has(&self, class: Class) -> bool {
        self.classes.contains(&class)
    }
}
