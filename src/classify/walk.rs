//! The walk over one statement's tree: every node is visited (the generic tree cannot
//! skip a field), statement nodes add their classes wherever they appear (CTEs,
//! subqueries, EXPLAIN ANALYZE, PREPARE bodies, rule actions, function bodies…).

use super::asks::{temp_asks, widen_asks};
use super::bounded::{self, Bound, ModifiedTable, Val};
use super::functions;
use super::objects::{any_name, func_name, name_list, range_var};
use super::plpgsql;
use super::session;
use super::statement::{CatalogAsk, Class};
use super::tree::{to_tree, Obj, G};
use pg_query::protobuf::{CmdType, ObjectType, OnConflictAction};

/// How deep SQL found inside SQL (function bodies, DO blocks, dynamic strings) is followed.
const MAX_DEPTH: u32 = 6;

/// What the walk found in one statement.
#[derive(Debug, Default)]
pub struct Found {
    pub classes: Vec<Class>,
    pub objects: Vec<String>,
    pub prepares: Option<String>,
    pub executes: Option<String>,
    pub deallocates: Option<String>,
    pub asks: Vec<CatalogAsk>,
}

pub struct Walker<'a> {
    dangerous: &'a [String],
    /// pg_query parser option bits for SQL found inside SQL (string-literal handling).
    parse_flags: i32,
    depth: u32,
    /// Inside a plain EXPLAIN: nothing runs, only objects are collected.
    inert: bool,
    /// The statement's own text (for reading a PL/pgSQL function body).
    top_text: &'a str,
    /// Inside ALTER SYSTEM/ROLE/DATABASE/FUNCTION … SET: settings stored, not applied.
    stored_settings: bool,
    found: Found,
    ctes: Vec<String>,
    /// Inside `SELECT … FROM pg_settings WHERE name = 'x'`: the setting `x`, which a
    /// `set_config(name, …)` there changes (pg_dump's restrict_nonsystem_relation_kind).
    settings_row: Option<String>,
    /// PL/pgSQL variables and function parameters in scope (lower-case): unqualified,
    /// they are values in a WHERE clause, not columns.
    vars: Vec<String>,
}

fn k<T: Into<i32>>(v: T) -> i64 {
    i64::from(v.into())
}

impl<'a> Walker<'a> {
    pub fn new(dangerous: &'a [String], parse_flags: i32, top_text: &'a str) -> Self {
        Walker {
            dangerous,
            parse_flags,
            depth: 0,
            inert: false,
            top_text,
            stored_settings: false,
            found: Found::default(),
            ctes: Vec::new(),
            settings_row: None,
            vars: Vec::new(),
        }
    }

    /// Walks one top-level statement.
    pub fn statement(&mut self, g: &G) {
        self.visit(g);
    }

    /// Sorted, deduplicated results; an empty class list means a plain read.
    pub fn finish(mut self) -> Found {
        let f = &mut self.found;
        if f.classes.is_empty() {
            f.classes.push(Class::Read);
        }
        f.classes.sort();
        f.classes.dedup();
        let ctes = &self.ctes;
        f.objects
            .retain(|o| !o.is_empty() && (o.contains('.') || !ctes.contains(o)));
        f.objects.sort();
        f.objects.dedup();
        self.found
    }

    fn add(&mut self, c: Class) {
        if !self.inert && !self.found.classes.contains(&c) {
            self.found.classes.push(c);
        }
    }

    fn object(&mut self, name: String) {
        if !name.is_empty() {
            self.found.objects.push(name);
        }
    }

    fn visit(&mut self, g: &G) {
        match g {
            G::List(l) => l.iter().for_each(|x| self.visit(x)),
            G::Obj(o) => self.visit_obj(o),
            _ => {}
        }
    }

    fn visit_obj(&mut self, o: &Obj) {
        let outer_vars = (o.name == "CreateFunctionStmt").then(|| {
            let params = o.list("parameters").iter().filter_map(|p| {
                p.is("FunctionParameter")
                    .map(|p| p.text("name").to_ascii_lowercase())
                    .filter(|n| !n.is_empty())
            });
            let mut vars = self.vars.clone();
            vars.extend(params);
            std::mem::replace(&mut self.vars, vars)
        });
        self.visit_fields(o);
        if let Some(v) = outer_vars {
            self.vars = v;
        }
    }

    fn visit_fields(&mut self, o: &Obj) {
        if self.on(o) {
            let row = if o.name == "SelectStmt" {
                Some(std::mem::replace(
                    &mut self.settings_row,
                    pg_settings_row(o),
                ))
            } else {
                None
            };
            for (_, v) in &o.fields {
                self.visit(v);
            }
            if let Some(prev) = row {
                self.settings_row = prev;
            }
        }
    }

    /// SQL text found inside SQL (function bodies, DO blocks, constant dynamic SQL).
    fn sql_text(&mut self, sql: &str, mode: i32) {
        if self.depth >= MAX_DEPTH {
            self.add(Class::CodeOpaque);
            return;
        }
        match pg_query::parse(sql, mode | self.parse_flags) {
            Ok(r) => {
                self.depth += 1;
                for raw in &r.protobuf.stmts {
                    if let Some(s) = raw.stmt.as_deref() {
                        let g = to_tree(s);
                        self.visit(&g);
                    }
                }
                self.depth -= 1;
            }
            Err(_) => self.add(Class::CodeOpaque),
        }
    }

    /// A PL/pgSQL body: its static SQL is classified; dynamic SQL is classified when
    /// it is a constant string and is otherwise opaque.
    fn plpgsql(&mut self, candidates: &[String]) {
        if self.depth >= MAX_DEPTH {
            self.add(Class::CodeOpaque);
            return;
        }
        let Some(body) = candidates.iter().find_map(|t| plpgsql::read_functions(t)) else {
            self.add(Class::CodeOpaque);
            return;
        };
        let mut vars = self.vars.clone();
        vars.extend(body.vars.iter().cloned());
        let outer_vars = std::mem::replace(&mut self.vars, vars);
        for e in &body.exprs {
            self.sql_text(&e.query, e.mode);
            if e.dynamic {
                match constant_string(&e.query, e.mode | self.parse_flags) {
                    Some(s) => {
                        // Run later as plain SQL: no variable is in scope there.
                        let vars = std::mem::take(&mut self.vars);
                        self.sql_text(&s, 0);
                        self.vars = vars;
                    }
                    None => self.add(Class::CodeOpaque),
                }
            }
        }
        self.vars = outer_vars;
    }

    /// Handles one node; returns whether to descend into its fields.
    fn on(&mut self, o: &Obj) -> bool {
        if self.inert {
            match o.name {
                "RangeVar" => self.object(range_var(o)),
                "CommonTableExpr" => self.ctes.push(o.text("ctename").to_string()),
                _ => {}
            }
            return true;
        }
        match o.name {
            "RangeVar" => self.object(range_var(o)),
            "CommonTableExpr" => self.ctes.push(o.text("ctename").to_string()),
            "FuncCall" => self.func_call(o),
            "A_Indirection" | "AIndirection" | "ColumnRef" => self.attribute_call(o),
            "SelectStmt" => self.add_if(o.get("into_clause") != &G::Null, Class::Create),
            "InsertStmt" => {
                self.add(Class::Write);
                self.catalog_target(o);
                let upsert = o
                    .get("on_conflict_clause")
                    .is("OnConflictClause")
                    .is_some_and(|c| c.int("action") == k(OnConflictAction::OnconflictUpdate));
                self.add_if(upsert, Class::InsertUpsert);
            }
            "DeleteStmt" | "UpdateStmt" => {
                self.dml(o);
                self.catalog_target(o);
            }
            "MergeStmt" => {
                self.add(Class::Write);
                self.catalog_target(o);
                let deletes = o.list("merge_when_clauses").iter().any(|w| {
                    w.is("MergeWhenClause")
                        .is_some_and(|w| w.int("command_type") == k(CmdType::CmdDelete))
                });
                if deletes {
                    self.add(Class::MergeDelete);
                }
                let updates = o.list("merge_when_clauses").iter().any(|w| {
                    w.is("MergeWhenClause")
                        .is_some_and(|w| w.int("command_type") == k(CmdType::CmdUpdate))
                });
                self.add_if(updates, Class::MergeUpdate);
            }
            "ExplainStmt" => {
                if explain_analyze(o) {
                    return true;
                }
                self.add(Class::Read);
                self.inert = true;
                self.visit(o.get("query"));
                self.inert = false;
                return false;
            }
            "PrepareStmt" => self.prepare(o),
            "ExecuteStmt" => {
                if self.depth == 0 && self.found.executes.is_none() {
                    self.found.executes = Some(o.text("name").to_string());
                }
                self.add(Class::CodeOpaque);
            }
            "DeallocateStmt" => {
                self.add(Class::Session);
                if self.depth == 0 {
                    let name = if o.flag("isall") || o.text("name").is_empty() {
                        "*".to_string()
                    } else {
                        o.text("name").to_string()
                    };
                    self.found.deallocates = Some(name);
                }
            }
            "DropStmt" => {
                self.drop(o);
                return false;
            }
            "TruncateStmt" => {
                let rels = o.list("relations");
                // The session's own temporary tables (written `pg_temp.x`) only: a write.
                // A permanent table cannot reference or inherit from them, so even
                // CASCADE stays among them.
                let temporary = !rels.is_empty()
                    && rels.iter().all(|r| {
                        r.is("RangeVar").is_some_and(|r| {
                            r.text("schemaname") == "pg_temp" && r.text("catalogname").is_empty()
                        })
                    });
                self.add(if temporary {
                    Class::Write
                } else {
                    Class::Truncate
                });
                if !temporary && self.depth == 0 && !self.inert {
                    self.found.asks.extend(temp_asks(rels));
                }
                for r in rels {
                    if let Some(r) = r.is("RangeVar") {
                        self.add_if(is_catalog(r), Class::SystemCatalog);
                    }
                }
            }
            "DropdbStmt" => {
                self.add(Class::DropDatabase);
                self.object(o.text("dbname").to_string());
            }
            "DropRoleStmt" => {
                self.add(Class::DropRole);
                self.names(o.list("roles"));
            }
            "DropOwnedStmt" => {
                self.add(Class::DropOwned);
                self.names(o.list("roles"));
            }
            "ReassignOwnedStmt" => {
                self.add(Class::ReassignOwned);
                self.names(o.list("roles"));
            }
            "DropTableSpaceStmt" => {
                self.add(Class::DropOther);
                self.object(o.text("tablespacename").to_string());
            }
            "DropSubscriptionStmt" => {
                self.add(Class::DropOther);
                self.object(o.text("subname").to_string());
            }
            "DropUserMappingStmt" => self.add(Class::DropOther),
            "AlterTableStmt" => self.alter_table(o),
            "RenameStmt" => {
                self.add(Class::AlterRename);
                let t = o.int("rename_type");
                if t == k(ObjectType::ObjectDatabase) {
                    self.add(Class::AlterDatabase);
                } else if t == k(ObjectType::ObjectRole) {
                    self.add(Class::AlterRole);
                }
                if let Some(n) = any_name(o.get("object")) {
                    self.object(n);
                } else if o.get("relation") == &G::Null {
                    // ALTER SCHEMA/DATABASE/ROLE … RENAME: the old name is `subname`.
                    self.object(o.text("subname").to_string());
                }
            }
            "AlterObjectSchemaStmt" => {
                self.add(Class::AlterSetSchema);
                if let Some(n) = any_name(o.get("object")) {
                    self.object(n);
                }
            }
            "AlterSystemStmt"
            | "AlterRoleSetStmt"
            | "AlterDatabaseSetStmt"
            | "AlterFunctionStmt" => {
                // Their SET clauses are stored settings, not this session's.
                self.add(match o.name {
                    "AlterSystemStmt" => Class::System,
                    "AlterRoleSetStmt" => Class::AlterRole,
                    "AlterDatabaseSetStmt" => Class::AlterDatabase,
                    _ => Class::AlterOther,
                });
                if o.name == "AlterDatabaseSetStmt" {
                    self.object(o.text("dbname").to_string());
                }
                let prev = self.stored_settings;
                self.stored_settings = true;
                for (_, v) in &o.fields {
                    self.visit(v);
                }
                self.stored_settings = prev;
                return false;
            }
            "LoadStmt" => self.add(Class::System),
            "GrantStmt" | "GrantRoleStmt" => {
                self.add(if o.flag("is_grant") {
                    Class::Grant
                } else {
                    Class::Revoke
                });
                if o.name == "GrantStmt" {
                    for obj in o.list("objects") {
                        if obj.is("RangeVar").is_none() {
                            if let Some(n) = any_name(obj) {
                                self.object(n);
                            }
                        }
                    }
                }
            }
            "CreateFunctionStmt" => {
                self.create_function(o);
                // `SET search_path = …` on a function is stored with it, not applied now.
                let prev = self.stored_settings;
                self.stored_settings = true;
                for (_, v) in &o.fields {
                    self.visit(v);
                }
                self.stored_settings = prev;
                return false;
            }
            "CreateTrigStmt" => {
                self.add(Class::CreateCode);
                self.object(name_list(o.list("funcname")));
            }
            "CreateEventTrigStmt" => {
                self.add(Class::CreateCode);
                self.object(name_list(o.list("funcname")));
            }
            "RuleStmt" | "CreateCastStmt" | "CreateTransformStmt" | "CreatePLangStmt" => {
                self.add(Class::CreateCode)
            }
            "DefineStmt" => {
                let kind = o.int("kind");
                if kind == k(ObjectType::ObjectAggregate) && builtin_aggregate(o) {
                    // Built from built-in functions only: no new code runs.
                    self.add(Class::Create);
                } else if kind == k(ObjectType::ObjectOperator)
                    || kind == k(ObjectType::ObjectAggregate)
                {
                    self.add(Class::CreateCode);
                } else {
                    self.add(Class::Create);
                }
                self.object(name_list(o.list("defnames")));
            }
            "DoStmt" => self.do_block(o),
            "CallStmt" => {
                self.add(Class::CodeCall);
                if let Some(f) = o.child("funccall") {
                    let (schema, name) = func_name(f);
                    let mut full = schema.join(".");
                    if !full.is_empty() {
                        full.push('.');
                    }
                    full.push_str(name);
                    self.object(full);
                }
            }
            "CopyStmt" => {
                let file = !o.text("filename").is_empty();
                if o.flag("is_program") {
                    self.add(Class::CopyProgram);
                } else if o.flag("is_from") {
                    self.add(Class::CopyIn);
                } else {
                    self.add(Class::CopyOut);
                }
                if file && !o.flag("is_program") {
                    // Server-side files: read or written as the server's OS user.
                    self.add(Class::System);
                }
            }
            "VacuumStmt" => {
                let full = o.list("options").iter().any(|d| {
                    d.is("DefElem")
                        .is_some_and(|d| d.text("defname") == "full" && def_truthy(d.get("arg")))
                });
                self.add(if full {
                    Class::Maintenance
                } else {
                    Class::Read
                });
            }
            // WITH NO DATA empties the view and makes it unreadable until refreshed.
            "RefreshMatViewStmt" if o.flag("skip_data") => self.add(Class::Truncate),
            "ClusterStmt" | "ReindexStmt" | "RefreshMatViewStmt" | "CheckPointStmt" => {
                self.add(Class::Maintenance)
            }
            "TransactionStmt" => {
                use pg_query::protobuf::TransactionStmtKind as T;
                let kind = o.int("kind");
                if kind == k(T::TransStmtCommitPrepared) || kind == k(T::TransStmtRollbackPrepared)
                {
                    self.add(Class::TransactionPrepared);
                } else {
                    self.add(Class::Transaction);
                }
            }
            "ConstraintsSetStmt" | "LockStmt" => self.add(Class::Transaction),
            "VariableSetStmt" => self.variable_set(o),
            "VariableShowStmt" | "DiscardStmt" | "ListenStmt" | "UnlistenStmt" => {
                self.add(Class::Session)
            }
            "NotifyStmt" => self.add(Class::Write),
            "DeclareCursorStmt" | "FetchStmt" | "ClosePortalStmt" => self.add(Class::Read),
            "ViewStmt" | "CompositeTypeStmt" => self.add(Class::Create),
            "CreateSchemaStmt" => {
                self.add(Class::Create);
                self.object(o.text("schemaname").to_string());
            }
            "IndexStmt" => {
                self.add(Class::Create);
                self.object(o.text("idxname").to_string());
            }
            "CreateExtensionStmt" => {
                self.add(Class::Create);
                self.object(o.text("extname").to_string());
            }
            "CreatedbStmt" => {
                self.add(Class::Create);
                self.object(o.text("dbname").to_string());
            }
            "CreateRoleStmt" => {
                self.add(Class::Create);
                self.object(o.text("role").to_string());
            }
            "AlterDatabaseStmt" | "AlterDatabaseRefreshCollStmt" => {
                self.add(Class::AlterDatabase);
                self.object(o.text("dbname").to_string());
            }
            "AlterRoleStmt" => {
                self.add(Class::AlterRole);
                if let Some(n) = any_name(o.get("role")) {
                    self.object(n);
                }
            }
            "AlterOwnerStmt" => {
                self.add(Class::AlterOwner);
                if let Some(n) = any_name(o.get("object")) {
                    self.object(n);
                }
            }
            "AlterEnumStmt" => {
                if o.text("old_val").is_empty() {
                    self.add(Class::AlterOther);
                } else {
                    // RENAME VALUE: stored values read back under the new label.
                    self.add(Class::AlterRename);
                }
                self.object(name_list(o.list("type_name")));
            }
            "AlterSeqStmt" => {
                let moves = o.list("options").iter().any(|d| {
                    d.is("DefElem").is_some_and(|d| {
                        matches!(
                            d.text("defname"),
                            "restart"
                                | "increment"
                                | "maxvalue"
                                | "minvalue"
                                | "start"
                                | "cycle"
                                | "as"
                        )
                    })
                });
                self.add(if moves {
                    Class::AlterSequence
                } else {
                    Class::AlterOther
                });
            }
            "AlterEventTrigStmt" => self.add(Class::AlterTrigger),
            "CreateForeignServerStmt"
            | "AlterForeignServerStmt"
            | "CreateForeignTableStmt"
            | "CreateFdwStmt"
            | "AlterFdwStmt"
            | "CreateUserMappingStmt"
            | "AlterUserMappingStmt"
            | "ImportForeignSchemaStmt" => {
                self.add(
                    if o.name.starts_with("Create") || o.name.starts_with("Import") {
                        Class::Create
                    } else {
                        Class::AlterOther
                    },
                );
                self.foreign_options(o);
            }
            "CommentStmt" => self.add(Class::AlterOther),
            "AlterDefaultPrivilegesStmt" => {}
            "PlAssignStmt" | "ReturnStmt" | "SetOperationStmt" | "RawStmt" => {}
            "CreateStmt"
            | "CreateSeqStmt"
            | "CreateEnumStmt"
            | "CreateDomainStmt"
            | "CreateRangeStmt"
            | "CreateTableAsStmt"
            | "CreateStatsStmt"
            | "CreatePolicyStmt"
            | "CreateTableSpaceStmt"
            | "CreateConversionStmt"
            | "CreateOpClassStmt"
            | "CreateOpFamilyStmt"
            | "CreateAmStmt"
            | "CreatePublicationStmt" => self.add(Class::Create),
            "AlterDomainStmt"
            | "AlterPolicyStmt"
            | "AlterStatsStmt"
            | "AlterCollationStmt"
            | "AlterTsDictionaryStmt"
            | "AlterTsConfigurationStmt"
            | "AlterOpFamilyStmt"
            | "AlterOperatorStmt"
            | "AlterTypeStmt"
            | "AlterTableMoveAllStmt" => self.add(Class::AlterOther),
            name if name.ends_with("Stmt") => {
                if name.starts_with("Drop") {
                    self.add(Class::DropOther);
                } else {
                    // Not on the routine list above: fail closed.
                    self.add(Class::DdlUnlisted);
                }
            }
            _ => {}
        }
        true
    }

    fn add_if(&mut self, cond: bool, c: Class) {
        if cond {
            self.add(c);
        }
    }

    fn prepare(&mut self, o: &Obj) {
        if self.depth == 0 {
            self.found.prepares = Some(o.text("name").to_string());
        }
    }

    fn names(&mut self, items: &[G]) {
        for it in items {
            if let Some(n) = any_name(it) {
                self.object(n);
            }
        }
    }

    fn dml(&mut self, o: &Obj) {
        let rel = o.child("relation");
        let target = ModifiedTable {
            relname: rel.map(|r| r.text("relname")).unwrap_or(""),
            alias: rel
                .and_then(|r| r.child("alias"))
                .map(|a| a.text("aliasname"))
                .filter(|a| !a.is_empty()),
            vars: &self.vars,
        };
        let w = match o.get("where_clause") {
            G::Null => None,
            w => Some(w),
        };
        let b = bounded::judge(w, target);
        let c = match (o.name == "DeleteStmt", b) {
            (true, Bound::Unbounded) => Class::DeleteUnbounded,
            (true, Bound::Maybe) => Class::DeleteMaybeUnbounded,
            (true, Bound::Bounded) => Class::DeleteBounded,
            (false, Bound::Unbounded) => Class::UpdateUnbounded,
            (false, Bound::Maybe) => Class::UpdateMaybeUnbounded,
            (false, Bound::Bounded) => Class::UpdateBounded,
        };
        self.add(c);
    }

    fn drop(&mut self, o: &Obj) {
        let t = o.int("remove_type");
        let is = |ot: ObjectType| t == k(ot);
        let class = if is(ObjectType::ObjectTable) || is(ObjectType::ObjectForeignTable) {
            Class::DropTable
        } else if is(ObjectType::ObjectView) || is(ObjectType::ObjectMatview) {
            Class::DropView
        } else if is(ObjectType::ObjectIndex) {
            Class::DropIndex
        } else if is(ObjectType::ObjectFunction)
            || is(ObjectType::ObjectProcedure)
            || is(ObjectType::ObjectRoutine)
            || is(ObjectType::ObjectAggregate)
        {
            Class::DropFunction
        } else if is(ObjectType::ObjectType) || is(ObjectType::ObjectDomain) {
            Class::DropType
        } else if is(ObjectType::ObjectExtension) {
            Class::DropExtension
        } else if is(ObjectType::ObjectSchema) {
            Class::DropSchema
        } else {
            Class::DropOther
        };
        self.add(class);
        let on_table = is(ObjectType::ObjectTrigger)
            || is(ObjectType::ObjectRule)
            || is(ObjectType::ObjectPolicy);
        for obj in o.list("objects") {
            if on_table {
                // [schema.]table.name: the table is the object that matters.
                let items = match obj {
                    G::Obj(l) if l.name == "List" => l.list("items"),
                    other => other.items(),
                };
                if let Some((_, table)) = items.split_last() {
                    self.object(name_list(table));
                }
            } else if let Some(n) = any_name(obj) {
                self.object(n);
            }
        }
    }

    fn alter_table(&mut self, o: &Obj) {
        use pg_query::protobuf::AlterTableType as A;
        if self.depth == 0 && !self.inert {
            self.found.asks.extend(widen_asks(o));
        }
        let mut any = false;
        let (mut adds_default, mut cascades) = (false, false);
        for cmd in o.list("cmds") {
            let Some(c) = cmd.is("AlterTableCmd") else {
                continue;
            };
            let st = c.int("subtype");
            any = true;
            let is = |t: A| st == k(t);
            if is(A::AtAddColumn) {
                let def = c.child("def");
                adds_default |= def.is_some_and(column_has_default);
                cascades |= def.is_some_and(|d| d.list("constraints").iter().any(cascading_fk));
            }
            if is(A::AtAddConstraint) {
                cascades |= cascading_fk(c.get("def"));
            }
            let class = if is(A::AtDropColumn) {
                Class::AlterDropColumn
            } else if is(A::AtAlterColumnType) {
                Class::AlterColumnType
            } else if is(A::AtDetachPartition)
                || is(A::AtDetachPartitionFinalize)
                || is(A::AtDropInherit)
            {
                Class::AlterDetachPartition
            } else if is(A::AtChangeOwner) {
                Class::AlterOwner
            } else if (st >= k(A::AtEnableTrig) && st <= k(A::AtDisableRule))
                || is(A::AtDisableRowSecurity)
                || is(A::AtNoForceRowSecurity)
            {
                Class::AlterTrigger
            } else if is(A::AtSetUnLogged)
                || is(A::AtSetLogged)
                || is(A::AtSetTableSpace)
                || is(A::AtSetAccessMethod)
            {
                Class::AlterStorage
            } else if is(A::AtSetIdentity) || is(A::AtDropIdentity) {
                Class::AlterSequence
            } else if is(A::AtGenericOptions) || is(A::AtAlterColumnGenericOptions) {
                self.foreign_options(c);
                Class::AlterOther
            } else if ROUTINE_ALTER_TABLE.iter().any(|t| is(*t)) {
                Class::AlterOther
            } else {
                Class::DdlUnlisted
            };
            self.add(class);
        }
        if adds_default && cascades {
            self.add(Class::AlterCascade);
        }
        if !any {
            self.add(Class::AlterOther);
        }
    }

    /// file_fdw's `filename`/`program` options read server files or run programs.
    fn foreign_options(&mut self, o: &Obj) {
        let risky = o.list("options").iter().any(|d| {
            d.is("DefElem")
                .is_some_and(|d| matches!(d.text("defname"), "program" | "filename"))
        });
        self.add_if(risky, Class::System);
    }

    /// A write whose target is a catalog table or view (`pg_settings`, `pg_authid`…).
    fn catalog_target(&mut self, o: &Obj) {
        if o.child("relation").is_some_and(is_catalog) {
            self.add(Class::SystemCatalog);
        }
    }

    /// A function called by name: default-deny (see `functions::call_classes`). A name
    /// qualified with a schema other than `pg_catalog` is never the built-in.
    fn called(&mut self, schema: &[&str], name: &str, by_attribute: bool) {
        let builtin = schema.is_empty() || schema == ["pg_catalog"];
        let mut classes = if builtin {
            functions::call_classes(self.dangerous, name)
        } else {
            vec![Class::CodeCall]
        };
        if functions::is_listed(self.dangerous, name) && !classes.contains(&Class::System) {
            classes.push(Class::System);
        }
        if by_attribute {
            // `(x).name` may be a field of a composite value: only names of functions
            // known to change something count.
            classes.retain(|c| *c != Class::CodeCall);
        }
        if classes.is_empty() {
            return;
        }
        for c in classes {
            self.add(c);
        }
        let mut full = schema.join(".");
        if !full.is_empty() {
            full.push('.');
        }
        full.push_str(name);
        self.object(full);
    }

    /// Attribute notation: `(arg).f` and `t.f` call `f(arg)` when no column `f` exists.
    fn attribute_call(&mut self, o: &Obj) {
        match o.name {
            "A_Indirection" | "AIndirection" => {
                for i in o.list("indirection") {
                    if let Some(s) = i.is("String") {
                        self.called(&[], s.text("sval"), true);
                    }
                }
            }
            "ColumnRef" => {
                let fields = o.list("fields");
                if fields.len() >= 2 {
                    if let Some(s) = fields.last().and_then(|f| f.is("String")) {
                        self.called(&[], s.text("sval"), true);
                    }
                }
            }
            _ => {}
        }
    }

    fn func_call(&mut self, o: &Obj) {
        let (schema, name) = func_name(o);
        self.called(&schema, name, false);
        let lname = name.to_ascii_lowercase();
        let args = o.list("args");
        if lname == "set_config" {
            let setting = args.first().and_then(|a| {
                bounded::fold(a).or_else(|| {
                    let row = self.settings_row.clone()?;
                    is_column(a, "name").then_some(Val::Str(row))
                })
            });
            let value = args.get(1).and_then(bounded::fold);
            match setting {
                Some(Val::Str(n)) => {
                    let v = match value {
                        Some(Val::Str(s)) => Some(s),
                        Some(Val::Int(i)) => Some(i.to_string()),
                        Some(Val::Bool(b)) => Some(b.to_string()),
                        // A value the folder cannot read: assume the worst.
                        _ => Some("\u{1}unknown".to_string()),
                    };
                    for c in session::setting_classes(&n, v.as_deref()) {
                        self.add(c);
                    }
                }
                _ => {
                    for c in session::ALL_SPECIFIC {
                        self.add(*c);
                    }
                }
            }
        }
        if functions::runs_sql(&lname) {
            let texts: Vec<Val> = args.iter().filter_map(bounded::fold).collect();
            let sql = if lname.starts_with("dblink") {
                texts.iter().rev().find_map(|v| match v {
                    Val::Str(s) => Some(s.clone()),
                    _ => None,
                })
            } else {
                match texts.first() {
                    Some(Val::Str(s)) if args.first().and_then(bounded::fold).is_some() => {
                        Some(s.clone())
                    }
                    _ => None,
                }
            };
            match sql {
                Some(s) => self.sql_text(&s, 0),
                None => self.add(Class::CodeOpaque),
            }
        }
    }

    fn variable_set(&mut self, o: &Obj) {
        use pg_query::protobuf::VariableSetKind as V;
        if self.stored_settings {
            return;
        }
        let kind = o.int("kind");
        if kind == k(V::VarSetMulti) {
            // SET TRANSACTION … / SET SESSION CHARACTERISTICS …
            if o.text("name").eq_ignore_ascii_case("transaction") {
                self.add(Class::Transaction);
            } else {
                self.add(Class::Session);
            }
            return;
        }
        if kind == k(V::VarResetAll) {
            self.add(Class::Session);
            return;
        }
        let value: Option<String> = if kind == k(V::VarSetValue) {
            match o.list("args").first().and_then(bounded::fold) {
                Some(Val::Str(s)) => Some(s),
                Some(Val::Int(i)) => Some(i.to_string()),
                Some(Val::Num(f)) => Some(f),
                Some(Val::Bool(b)) => Some(b.to_string()),
                _ => Some("\u{1}unknown".to_string()),
            }
        } else {
            None
        };
        for c in session::setting_classes(o.text("name"), value.as_deref()) {
            self.add(c);
        }
    }

    fn create_function(&mut self, o: &Obj) {
        self.add(Class::CreateCode);
        self.object(name_list(o.list("funcname")));
        let mut language = String::new();
        let mut body: Vec<&str> = Vec::new();
        for opt in o.list("options") {
            let Some(d) = opt.is("DefElem") else { continue };
            match d.text("defname") {
                "language" => {
                    language = d
                        .get("arg")
                        .is("String")
                        .map(|s| s.text("sval").to_ascii_lowercase())
                        .unwrap_or_default()
                }
                "as" => {
                    body = d
                        .get("arg")
                        .items()
                        .iter()
                        .flat_map(|x| match x {
                            G::Obj(l) if l.name == "List" => l.list("items").iter().collect(),
                            other => vec![other],
                        })
                        .filter_map(|s| s.is("String").map(|s| s.text("sval")))
                        .collect()
                }
                _ => {}
            }
        }
        if o.get("sql_body") != &G::Null {
            // BEGIN ATOMIC … END / RETURN expr: already a parsed tree, walked below.
            return;
        }
        match language.as_str() {
            "sql" | "" => {
                for b in body {
                    self.sql_text(b, 0);
                }
            }
            "plpgsql" => {
                let mut candidates = Vec::new();
                if self.depth == 0 {
                    candidates.push(self.top_text.to_string());
                }
                if let Some(b) = body.first() {
                    candidates.extend(plpgsql::body_as_functions(b));
                }
                self.plpgsql(&candidates);
            }
            _ => self.add(Class::CodeOpaque),
        }
    }

    fn do_block(&mut self, o: &Obj) {
        self.add(Class::CodeDo);
        let mut language = "plpgsql".to_string();
        let mut body = None;
        for a in o.list("args") {
            let Some(d) = a.is("DefElem") else { continue };
            let val = d.get("arg").is("String").map(|s| s.text("sval"));
            match d.text("defname") {
                "language" => language = val.unwrap_or("").to_ascii_lowercase(),
                "as" => body = val,
                _ => {}
            }
        }
        match (language.as_str(), body) {
            ("plpgsql", Some(b)) => {
                let f = plpgsql::do_block_as_function(b);
                self.plpgsql(&[f]);
            }
            _ => self.add(Class::CodeOpaque),
        }
    }
}

/// ALTER TABLE actions that change no data and lock out nobody: adding columns,
/// defaults, constraints and indexes, statistics and storage options, attaching.
const ROUTINE_ALTER_TABLE: &[pg_query::protobuf::AlterTableType] = {
    use pg_query::protobuf::AlterTableType as A;
    &[
        A::AtAddColumn,
        A::AtAddColumnToView,
        A::AtColumnDefault,
        A::AtCookedColumnDefault,
        A::AtDropNotNull,
        A::AtSetNotNull,
        A::AtSetStatistics,
        A::AtSetOptions,
        A::AtResetOptions,
        A::AtSetStorage,
        A::AtSetCompression,
        A::AtAddIndex,
        A::AtReAddIndex,
        A::AtAddConstraint,
        A::AtReAddConstraint,
        A::AtAlterConstraint,
        A::AtValidateConstraint,
        A::AtAddIndexConstraint,
        A::AtDropConstraint,
        A::AtReAddComment,
        A::AtClusterOn,
        A::AtDropCluster,
        A::AtSetRelOptions,
        A::AtResetRelOptions,
        A::AtReplaceRelOptions,
        A::AtAddInherit,
        A::AtAddOf,
        A::AtReplicaIdentity,
        A::AtEnableRowSecurity,
        A::AtForceRowSecurity,
        A::AtAttachPartition,
        A::AtAddIdentity,
        A::AtReAddStatistics,
    ]
};

/// CREATE AGGREGATE whose support functions are all read-only built-ins (by name, in
/// `pg_catalog` or unqualified), e.g. `sfunc = array_append`.
fn builtin_aggregate(o: &Obj) -> bool {
    const FUNCS: &[&str] = &[
        "sfunc",
        "finalfunc",
        "combinefunc",
        "serialfunc",
        "deserialfunc",
        "msfunc",
        "minvfunc",
        "mfinalfunc",
    ];
    const BUILTIN_SUFFIXES: &[&str] = &[
        "pl",
        "mi",
        "_accum",
        "larger",
        "smaller",
        "_avg",
        "_sum",
        "inc",
        "_combine",
        "_serialize",
        "_deserialize",
        "_accum_inv",
        "and",
        "or",
        "_append",
    ];
    o.list("definition").iter().all(|d| {
        let Some(d) = d.is("DefElem") else {
            return true;
        };
        if !FUNCS.contains(&d.text("defname")) {
            return true;
        }
        let names: Vec<&str> = match d.get("arg") {
            G::Obj(t) if t.name == "TypeName" => t
                .list("names")
                .iter()
                .filter_map(|n| n.is("String").map(|s| s.text("sval")))
                .collect(),
            G::Obj(l) if l.name == "List" => l
                .list("items")
                .iter()
                .filter_map(|n| n.is("String").map(|s| s.text("sval")))
                .collect(),
            _ => return false,
        };
        match names.as_slice() {
            [name] | ["pg_catalog", name] => {
                let n = name.to_ascii_lowercase();
                functions::is_read_only(&n) || BUILTIN_SUFFIXES.iter().any(|s| n.ends_with(s))
            }
            _ => false,
        }
    })
}

/// A ColumnDef with a default (`DEFAULT x` as raw default or as a constraint).
fn column_has_default(d: &Obj) -> bool {
    use pg_query::protobuf::ConstrType;
    d.get("raw_default") != &G::Null
        || d.list("constraints").iter().any(|c| {
            c.is("Constraint")
                .is_some_and(|c| c.int("contype") == k(ConstrType::ConstrDefault))
        })
}

/// A foreign key whose ON DELETE cascades, sets null or sets the default.
fn cascading_fk(g: &G) -> bool {
    use pg_query::protobuf::ConstrType;
    g.is("Constraint").is_some_and(|c| {
        c.int("contype") == k(ConstrType::ConstrForeign)
            && matches!(c.text("fk_del_action"), "c" | "n" | "d")
    })
}

/// A relation in `pg_catalog`, written so or unqualified with a `pg_` name (the
/// catalog schema is searched first unless a search_path says otherwise).
fn is_catalog(r: &Obj) -> bool {
    match r.text("schemaname") {
        "pg_catalog" => true,
        "" => r.text("relname").starts_with("pg_"),
        _ => false,
    }
}

/// Whether `g` is a reference to the column `name` (unqualified or `pg_settings.name`).
fn is_column(g: &G, name: &str) -> bool {
    let Some(c) = g.is("ColumnRef") else {
        return false;
    };
    let fields = c.list("fields");
    let last = fields
        .last()
        .and_then(|f| f.is("String"))
        .map(|s| s.text("sval"));
    last == Some(name)
        && fields.len() <= 2
        && fields[..fields.len() - 1].iter().all(|f| {
            f.is("String")
                .is_some_and(|s| s.text("sval") == "pg_settings")
        })
}

/// `SELECT … FROM [pg_catalog.]pg_settings WHERE name = 'x'`: `x`.
fn pg_settings_row(o: &Obj) -> Option<String> {
    let from = o.list("from_clause");
    let rv = from.first()?.is("RangeVar")?;
    if from.len() != 1
        || rv.text("relname") != "pg_settings"
        || !matches!(rv.text("schemaname"), "" | "pg_catalog")
        || rv.child("alias").is_some()
    {
        return None;
    }
    let w = o.child("where_clause")?;
    if w.name != "AExpr" || w.int("kind") != k(pg_query::protobuf::AExprKind::AexprOp) {
        return None;
    }
    let op = w.list("name").last()?.is("String")?.text("sval");
    if op != "=" || !is_column(w.get("lexpr"), "name") {
        return None;
    }
    match bounded::fold(w.get("rexpr"))? {
        Val::Str(s) => Some(s),
        _ => None,
    }
}

/// `EXPLAIN ANALYZE` (or `(ANALYZE [true|on|1…])`): the statement really runs.
fn explain_analyze(o: &Obj) -> bool {
    o.list("options").iter().any(|d| {
        d.is("DefElem")
            .is_some_and(|d| d.text("defname") == "analyze" && def_truthy(d.get("arg")))
    })
}

/// A DefElem argument read as a boolean option; absent means true, unreadable means true.
fn def_truthy(arg: &G) -> bool {
    match arg {
        G::Null => true,
        g => match g.obj() {
            Some(o) if o.name == "String" => bounded::parse_bool(o.text("sval")).unwrap_or(true),
            Some(o) if o.name == "Integer" => o.int("ival") != 0,
            Some(o) if o.name == "Boolean" => o.flag("boolval"),
            _ => bounded::fold(g)
                .map(|v| !matches!(v, Val::Bool(false) | Val::Int(0)))
                .unwrap_or(true),
        },
    }
}

/// The value of a PL/pgSQL expression if it is one constant string (`'DROP TABLE x'`).
fn constant_string(expr: &str, flags: i32) -> Option<String> {
    let r = pg_query::parse(expr, flags).ok()?;
    let raw = r.protobuf.stmts.first()?;
    let g = to_tree(raw.stmt.as_deref()?);
    let s = g.is("SelectStmt")?;
    let t = s.list("target_list").first()?.is("ResTarget")?;
    if s.list("target_list").len() != 1 || !s.list("from_clause").is_empty() {
        return None;
    }
    match bounded::fold(t.get("val"))? {
        Val::Str(s) => Some(s),
        _ => None,
    }
}
