//! Reading the probe's replies: counts before and after → [`Measured`].

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::protocol::sqlstate::SqlState;

/// Per-table counts of the transaction before the statement (`open`'s third result).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    counts: HashMap<u32, [u64; 3]>,
}

/// Why the impact is not known. The policy's `on_unknown` decides these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// The probe's `statement_timeout` cancelled the statement.
    Timeout,
    /// The probe's `lock_timeout` expired waiting for a lock.
    LockTimeout,
    /// The statement or a probe statement failed (SQLSTATE), e.g. a read-only
    /// standby or missing privileges.
    Failed(String),
    /// `track_counts` is off: the counts stay zero and would read as "no rows".
    CountsOff,
    /// A reply did not have the expected shape.
    Unreadable(String),
}

impl Unknown {
    /// The reason for a failed probed statement's SQLSTATE.
    pub fn from_sqlstate(code: &str) -> Unknown {
        if code == SqlState::QUERY_CANCELED.as_str() {
            Unknown::Timeout
        } else if code == SqlState::LOCK_NOT_AVAILABLE.as_str() {
            Unknown::LockTimeout
        } else {
            Unknown::Failed(code.to_string())
        }
    }

    /// For messages: "the probe timed out", ….
    pub fn describe(&self) -> String {
        match self {
            Unknown::Timeout => "impact unknown: the probe hit its statement_timeout".into(),
            Unknown::LockTimeout => "impact unknown: the probe hit its lock_timeout".into(),
            Unknown::Failed(code) => format!("impact unknown: the probe failed (SQLSTATE {code})"),
            Unknown::CountsOff => {
                "impact unknown: track_counts is off on the server, rows cannot be counted".into()
            }
            Unknown::Unreadable(what) => format!("impact unknown: unexpected probe reply ({what})"),
        }
    }
}

/// The outcome of a probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    Known(Impact),
    Unknown(Unknown),
}

/// What one statement changed, per table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Impact {
    /// Tables with at least one changed row, ordered by schema and name.
    pub tables: Vec<TableImpact>,
    /// The row count of the statement's command tag (`DELETE 5`), when it has one:
    /// a lower bound for changes the counters cannot see (foreign tables).
    pub command_rows: Option<u64>,
}

/// Rows one statement changed in one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableImpact {
    pub relid: u32,
    pub schema: String,
    pub name: String,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Rows the table had before, as estimated by the statistics.
    pub estimate: u64,
}

impl TableImpact {
    /// `schema.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Inserted + updated + deleted rows.
    pub fn rows(&self) -> u64 {
        self.inserted
            .saturating_add(self.updated)
            .saturating_add(self.deleted)
    }

    /// Rows that existed before and were changed or removed.
    pub fn existing_rows_changed(&self) -> u64 {
        self.updated.saturating_add(self.deleted)
    }

    /// The fraction of the table's existing rows that were updated or deleted, in
    /// 0..=1. The estimate may be stale: never less than what was changed, so a
    /// table estimated empty whose rows were all deleted has share 1.
    pub fn share(&self) -> f64 {
        let changed = self.existing_rows_changed();
        if changed == 0 {
            return 0.0;
        }
        changed as f64 / self.estimate.max(changed) as f64
    }
}

fn count(v: Option<&str>, what: &str) -> Result<u64, Unknown> {
    v.and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Unknown::Unreadable(format!("{what} is not a count")))
}

fn relid(v: Option<&str>) -> Result<u32, Unknown> {
    v.and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| Unknown::Unreadable("relid is not an oid".into()))
}

fn field<'a>(row: &[Option<&'a str>], i: usize) -> Option<&'a str> {
    row.get(i).copied().flatten()
}

impl Snapshot {
    /// Rows `relid, n_tup_ins, n_tup_upd, n_tup_del` (text format).
    pub fn from_rows(rows: &[Vec<Option<&str>>]) -> Result<Snapshot, Unknown> {
        let mut counts = HashMap::with_capacity(rows.len());
        for row in rows {
            let id = relid(field(row, 0))?;
            let c = [
                count(field(row, 1), "n_tup_ins")?,
                count(field(row, 2), "n_tup_upd")?,
                count(field(row, 3), "n_tup_del")?,
            ];
            counts.insert(id, c);
        }
        Ok(Snapshot { counts })
    }
}

impl Measured {
    /// The impact from `measure`'s rows (relid, schema, name, ins, upd, del,
    /// estimate) minus the counts `before`. `track_counts` is the third value of
    /// `open`'s settings row; `command_rows` the statement's tag count.
    pub fn from_rows(
        before: &Snapshot,
        after: &[Vec<Option<&str>>],
        track_counts: Option<&str>,
        command_rows: Option<u64>,
    ) -> Measured {
        if track_counts != Some("on") {
            return Measured::Unknown(Unknown::CountsOff);
        }
        match Self::tables(before, after) {
            Ok(tables) => Measured::Known(Impact {
                tables,
                command_rows,
            }),
            Err(u) => Measured::Unknown(u),
        }
    }

    fn tables(before: &Snapshot, after: &[Vec<Option<&str>>]) -> Result<Vec<TableImpact>, Unknown> {
        let mut out = Vec::new();
        for row in after {
            let id = relid(field(row, 0))?;
            let name = |i: usize, what: &str| {
                field(row, i)
                    .map(str::to_string)
                    .ok_or_else(|| Unknown::Unreadable(format!("{what} missing")))
            };
            let now = [
                count(field(row, 3), "n_tup_ins")?,
                count(field(row, 4), "n_tup_upd")?,
                count(field(row, 5), "n_tup_del")?,
            ];
            let was = before.counts.get(&id).copied().unwrap_or([0; 3]);
            let d = |i: usize| now[i].saturating_sub(was[i]);
            let t = TableImpact {
                relid: id,
                schema: name(1, "schemaname")?,
                name: name(2, "relname")?,
                inserted: d(0),
                updated: d(1),
                deleted: d(2),
                estimate: count(field(row, 6), "estimate")?,
            };
            if t.rows() > 0 {
                out.push(t);
            }
        }
        out.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        Ok(out)
    }
}

impl Impact {
    /// Rows changed in all tables together; never less than the command tag says.
    pub fn total_rows(&self) -> u64 {
        let counted = self
            .tables
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(t.rows()));
        counted.max(self.command_rows.unwrap_or(0))
    }

    /// The table named `schema.name`, if it changed.
    pub fn table(&self, qualified: &str) -> Option<&TableImpact> {
        self.tables.iter().find(|t| t.qualified() == qualified)
    }

    /// A sentence for the client, the approver and the audit log, e.g. "would delete
    /// 5 of 5 rows of public.t (100 %); also delete 5 rows of public.orders (cascade
    /// or trigger)". `primary` lists the statement's own target tables (schema-
    /// qualified); other tables are reported as changed through cascades or triggers.
    pub fn sentence(&self, primary: &[String]) -> String {
        if self.tables.is_empty() {
            return match self.command_rows {
                Some(n) if n > 0 => format!(
                    "would change {n} row{} the counters cannot attribute to a table",
                    plural(n)
                ),
                _ => "would change no rows".to_string(),
            };
        }
        let mut own = Vec::new();
        let mut other = Vec::new();
        for t in &self.tables {
            let part = describe_table(t);
            // The statement names its tables with or without a schema.
            let named = |p: &String| *p == t.qualified() || (!p.contains('.') && *p == t.name);
            if primary.iter().any(named) {
                own.push(part);
            } else {
                other.push(part);
            }
        }
        let mut s = String::from("would ");
        if own.is_empty() {
            let _ = write!(s, "{} (cascade or trigger)", other.join(", "));
        } else {
            s.push_str(&own.join(", "));
            if !other.is_empty() {
                let _ = write!(s, "; also {} (cascade or trigger)", other.join(", "));
            }
        }
        s
    }
}

impl Impact {
    /// Why this impact is more than `approved` (a re-run of an approved statement
    /// must change no more rows in all, and no more in any table, than were shown to
    /// the approver), or `None` when it is not.
    pub fn exceeds(&self, approved: &Impact) -> Option<String> {
        if self.total_rows() > approved.total_rows() {
            return Some(format!(
                "{} rows changed now, {} approved",
                self.total_rows(),
                approved.total_rows()
            ));
        }
        for t in &self.tables {
            let was = approved
                .tables
                .iter()
                .find(|a| a.relid == t.relid)
                .map_or(0, TableImpact::rows);
            if t.rows() > was {
                return Some(format!(
                    "{} rows of {} changed now, {was} approved",
                    t.rows(),
                    t.qualified()
                ));
            }
        }
        None
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn describe_table(t: &TableImpact) -> String {
    let mut parts = Vec::new();
    for (verb, n) in [("delete", t.deleted), ("update", t.updated)] {
        if n > 0 {
            parts.push(format!(
                "{verb} {n} of {} row{} of {} ({:.0} %)",
                t.estimate.max(t.existing_rows_changed()),
                plural(t.estimate.max(t.existing_rows_changed())),
                t.qualified(),
                t.share() * 100.0
            ));
        }
    }
    if t.inserted > 0 {
        parts.push(format!(
            "insert {} row{} into {}",
            t.inserted,
            plural(t.inserted),
            t.qualified()
        ));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: &[&'static str]) -> Vec<Option<&'static str>> {
        v.iter().map(|s| Some(*s)).collect()
    }

    fn table(relid: u32, name: &str, upd: u64, del: u64) -> TableImpact {
        TableImpact {
            relid,
            schema: "public".into(),
            name: name.into(),
            inserted: 0,
            updated: upd,
            deleted: del,
            estimate: 100,
        }
    }

    #[test]
    fn a_rerun_may_not_exceed_what_was_approved() {
        let approved = Impact {
            tables: vec![table(1, "t", 0, 10), table(2, "c", 0, 5)],
            command_rows: Some(10),
        };
        let same = approved.clone();
        assert_eq!(same.exceeds(&approved), None);
        let fewer = Impact {
            tables: vec![table(1, "t", 0, 9)],
            command_rows: Some(9),
        };
        assert_eq!(fewer.exceeds(&approved), None);
        let more = Impact {
            tables: vec![table(1, "t", 0, 11), table(2, "c", 0, 5)],
            command_rows: Some(11),
        };
        assert_eq!(
            more.exceeds(&approved).as_deref(),
            Some("16 rows changed now, 15 approved")
        );
        // As many rows in all, but in a table the approver did not see.
        let elsewhere = Impact {
            tables: vec![table(1, "t", 0, 10), table(3, "other", 5, 0)],
            command_rows: Some(10),
        };
        assert_eq!(
            elsewhere.exceeds(&approved).as_deref(),
            Some("5 rows of public.other changed now, 0 approved")
        );
    }

    #[test]
    fn the_statement_names_its_table_with_or_without_schema() {
        let i = Impact {
            tables: vec![table(1, "t", 0, 2)],
            command_rows: Some(2),
        };
        assert_eq!(
            i.sentence(&["t".into()]),
            "would delete 2 of 100 rows of public.t (2 %)"
        );
        assert!(i
            .sentence(&["other.t".into()])
            .ends_with("(cascade or trigger)"));
    }

    #[test]
    fn deltas_against_the_counts_before() {
        let before = Snapshot::from_rows(&[row(&["16384", "3", "0", "1"])]).unwrap();
        let after = [
            row(&["16384", "public", "t", "3", "0", "6", "5"]),
            row(&["16390", "public", "orders", "0", "0", "5", "5"]),
            row(&["16400", "public", "audit_log", "2", "0", "0", "9"]),
        ];
        let m = Measured::from_rows(&before, &after, Some("on"), Some(5));
        let Measured::Known(i) = m else {
            panic!("{m:?}")
        };
        let t = i.table("public.t").unwrap();
        assert_eq!((t.inserted, t.updated, t.deleted), (0, 0, 5));
        assert_eq!(t.share(), 1.0);
        assert_eq!(i.table("public.orders").unwrap().deleted, 5);
        assert_eq!(i.table("public.audit_log").unwrap().inserted, 2);
        assert_eq!(i.total_rows(), 12);
        assert_eq!(
            i.sentence(&["public.t".into()]),
            "would delete 5 of 5 rows of public.t (100 %); also insert 2 rows into \
             public.audit_log, delete 5 of 5 rows of public.orders (100 %) (cascade or trigger)"
        );
    }

    #[test]
    fn unchanged_tables_are_left_out() {
        let before = Snapshot::from_rows(&[row(&["1", "4", "0", "0"])]).unwrap();
        let m = Measured::from_rows(
            &before,
            &[row(&["1", "s", "x", "4", "0", "0", "10"])],
            Some("on"),
            Some(0),
        );
        assert_eq!(
            m,
            Measured::Known(Impact {
                tables: vec![],
                command_rows: Some(0)
            })
        );
        let Measured::Known(i) = m else {
            unreachable!()
        };
        assert_eq!(i.sentence(&[]), "would change no rows");
    }

    #[test]
    fn share_is_against_the_estimate_and_never_above_one() {
        let t = |upd, del, estimate| TableImpact {
            relid: 1,
            schema: "public".into(),
            name: "t".into(),
            inserted: 1000,
            updated: upd,
            deleted: del,
            estimate,
        };
        assert_eq!(t(0, 0, 0).share(), 0.0);
        assert_eq!(t(5, 5, 100).share(), 0.1);
        assert_eq!(t(0, 50, 0).share(), 1.0);
        assert_eq!(t(0, 50, 10).share(), 1.0);
    }

    #[test]
    fn the_command_tag_is_a_lower_bound() {
        let m = Measured::from_rows(&Snapshot::default(), &[], Some("on"), Some(7));
        let Measured::Known(i) = m else { panic!() };
        assert_eq!(i.total_rows(), 7);
        assert!(i
            .sentence(&[])
            .contains("7 rows the counters cannot attribute"));
    }

    #[test]
    fn counts_off_or_bad_rows_are_unknown() {
        assert_eq!(
            Measured::from_rows(&Snapshot::default(), &[], Some("off"), None),
            Measured::Unknown(Unknown::CountsOff)
        );
        assert_eq!(
            Measured::from_rows(&Snapshot::default(), &[], None, None),
            Measured::Unknown(Unknown::CountsOff)
        );
        for bad in [
            row(&["x", "public", "t", "0", "0", "1", "1"]),
            row(&["1", "public", "t", "-1", "0", "1", "1"]),
            row(&["1", "public"]),
            vec![
                Some("1"),
                None,
                Some("t"),
                Some("0"),
                Some("0"),
                Some("1"),
                Some("1"),
            ],
        ] {
            assert!(
                matches!(
                    Measured::from_rows(
                        &Snapshot::default(),
                        std::slice::from_ref(&bad),
                        Some("on"),
                        None
                    ),
                    Measured::Unknown(Unknown::Unreadable(_))
                ),
                "{bad:?}"
            );
        }
        assert!(Snapshot::from_rows(&[row(&["1", "a", "0", "0"])]).is_err());
    }

    #[test]
    fn sqlstates_of_a_failed_probe() {
        assert_eq!(Unknown::from_sqlstate("57014"), Unknown::Timeout);
        assert_eq!(Unknown::from_sqlstate("55P03"), Unknown::LockTimeout);
        assert_eq!(
            Unknown::from_sqlstate("25006"),
            Unknown::Failed("25006".into())
        );
        assert!(Unknown::Timeout.describe().contains("statement_timeout"));
    }
}
