//! A generic, complete view of a pg_query parse tree, built through its `serde::Serialize`
//! impls so that no node type or field can be overlooked by the walker.
//!
//! Every protobuf message becomes an [`Obj`] named after its type (`DeleteStmt`,
//! `RangeVar`, `FuncCall`…); the `Node` wrapper and oneof variants collapse to the
//! message inside. Fields holding their protobuf default (0, false, "", empty list,
//! absent) and `location` fields are dropped, so the accessors return defaults for
//! them and two trees compare equal when they differ only in source positions.

use serde::ser::{self, Serialize};
use std::fmt;

/// One value of the generic tree.
#[derive(Debug, Clone, PartialEq)]
pub enum G {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<G>),
    Obj(Obj),
}

/// A protobuf message: its type name and its non-default fields in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Obj {
    pub name: &'static str,
    pub fields: Vec<(&'static str, G)>,
}

static NULL: G = G::Null;

impl G {
    /// The message, if this value is one.
    pub fn obj(&self) -> Option<&Obj> {
        match self {
            G::Obj(o) => Some(o),
            _ => None,
        }
    }

    /// The message if it has type `name`.
    pub fn is(&self, name: &str) -> Option<&Obj> {
        self.obj().filter(|o| o.name == name)
    }

    /// List items (an absent list reads as empty; a lone value as a list of one).
    pub fn items(&self) -> &[G] {
        match self {
            G::List(v) => v,
            G::Null => &[],
            other => std::slice::from_ref(other),
        }
    }

    /// Items of a list, whether a bare list or a `List` node.
    pub fn elems(&self) -> &[G] {
        match self {
            G::Obj(o) if o.name == "List" => o.list("items"),
            other => other.items(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            G::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl Obj {
    /// A field's value (`Null` when absent, i.e. at its default).
    pub fn get(&self, field: &str) -> &G {
        self.fields
            .iter()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| v)
            .unwrap_or(&NULL)
    }

    pub fn int(&self, field: &str) -> i64 {
        match self.get(field) {
            G::Int(i) => *i,
            _ => 0,
        }
    }

    pub fn flag(&self, field: &str) -> bool {
        matches!(self.get(field), G::Bool(true))
    }

    pub fn text(&self, field: &str) -> &str {
        self.get(field).as_str().unwrap_or("")
    }

    /// The items of a list field.
    pub fn list(&self, field: &str) -> &[G] {
        self.get(field).items()
    }

    /// A message-valued field.
    pub fn child(&self, field: &str) -> Option<&Obj> {
        self.get(field).obj()
    }
}

/// Builds the generic tree of any pg_query protobuf value.
pub fn to_tree<T: Serialize + ?Sized>(value: &T) -> G {
    value.serialize(Builder).unwrap_or(G::Null)
}

/// The builder's error type (the builder itself never fails).
#[derive(Debug)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

impl ser::Error for BuildError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        BuildError(msg.to_string())
    }
}

fn is_default(v: &G) -> bool {
    match v {
        G::Null => true,
        G::Bool(b) => !b,
        G::Int(i) => *i == 0,
        G::Float(f) => *f == 0.0,
        G::Str(s) => s.is_empty(),
        G::List(l) => l.is_empty(),
        G::Obj(_) => false,
    }
}

struct Builder;

type R = Result<G, BuildError>;

impl ser::Serializer for Builder {
    type Ok = G;
    type Error = BuildError;
    type SerializeSeq = SeqB;
    type SerializeTuple = SeqB;
    type SerializeTupleStruct = SeqB;
    type SerializeTupleVariant = SeqB;
    type SerializeMap = MapB;
    type SerializeStruct = StructB;
    type SerializeStructVariant = StructB;

    fn serialize_bool(self, v: bool) -> R {
        Ok(G::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> R {
        Ok(G::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> R {
        Ok(G::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> R {
        Ok(G::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> R {
        Ok(G::Int(v))
    }
    fn serialize_u8(self, v: u8) -> R {
        Ok(G::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> R {
        Ok(G::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> R {
        Ok(G::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> R {
        Ok(G::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn serialize_f32(self, v: f32) -> R {
        Ok(G::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> R {
        Ok(G::Float(v))
    }
    fn serialize_char(self, v: char) -> R {
        Ok(G::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> R {
        Ok(G::Str(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> R {
        Ok(G::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn serialize_none(self) -> R {
        Ok(G::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> R {
        value.serialize(Builder)
    }
    fn serialize_unit(self) -> R {
        Ok(G::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> R {
        Ok(G::Null)
    }
    fn serialize_unit_variant(self, _name: &'static str, _i: u32, variant: &'static str) -> R {
        Ok(G::Str(variant.to_string()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> R {
        value.serialize(Builder)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _i: u32,
        _variant: &'static str,
        value: &T,
    ) -> R {
        value.serialize(Builder)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqB, BuildError> {
        Ok(SeqB(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqB, BuildError> {
        Ok(SeqB(Vec::with_capacity(len)))
    }
    fn serialize_tuple_struct(self, _n: &'static str, len: usize) -> Result<SeqB, BuildError> {
        Ok(SeqB(Vec::with_capacity(len)))
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        len: usize,
    ) -> Result<SeqB, BuildError> {
        Ok(SeqB(Vec::with_capacity(len)))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapB, BuildError> {
        Ok(MapB(Vec::new(), None))
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<StructB, BuildError> {
        Ok(StructB(Obj {
            name,
            fields: Vec::with_capacity(len.min(8)),
        }))
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<StructB, BuildError> {
        self.serialize_struct(variant, len)
    }
}

struct SeqB(Vec<G>);

impl ser::SerializeSeq for SeqB {
    type Ok = G;
    type Error = BuildError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BuildError> {
        self.0.push(value.serialize(Builder)?);
        Ok(())
    }
    fn end(self) -> R {
        Ok(G::List(self.0))
    }
}

impl ser::SerializeTuple for SeqB {
    type Ok = G;
    type Error = BuildError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BuildError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R {
        Ok(G::List(self.0))
    }
}

impl ser::SerializeTupleStruct for SeqB {
    type Ok = G;
    type Error = BuildError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BuildError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R {
        Ok(G::List(self.0))
    }
}

impl ser::SerializeTupleVariant for SeqB {
    type Ok = G;
    type Error = BuildError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BuildError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R {
        Ok(G::List(self.0))
    }
}

/// Maps do not occur in pg_query trees; kept as a list of values for completeness.
struct MapB(Vec<G>, Option<G>);

impl ser::SerializeMap for MapB {
    type Ok = G;
    type Error = BuildError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), BuildError> {
        self.1 = Some(key.serialize(Builder)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BuildError> {
        if let Some(k) = self.1.take() {
            self.0.push(k);
        }
        self.0.push(value.serialize(Builder)?);
        Ok(())
    }
    fn end(self) -> R {
        Ok(G::List(self.0))
    }
}

struct StructB(Obj);

impl ser::SerializeStruct for StructB {
    type Ok = G;
    type Error = BuildError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BuildError> {
        if key == "location" {
            return Ok(());
        }
        let v = value.serialize(Builder)?;
        if !is_default(&v) {
            self.0.fields.push((key, v));
        }
        Ok(())
    }
    fn end(self) -> R {
        // The protobuf `Node` wrapper holds one oneof field: collapse to what it holds.
        if self.0.name == "Node" {
            let mut fields = self.0.fields;
            return Ok(fields.pop().map(|(_, v)| v).unwrap_or(G::Null));
        }
        Ok(G::Obj(self.0))
    }
}

impl ser::SerializeStructVariant for StructB {
    type Ok = G;
    type Error = BuildError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BuildError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> R {
        ser::SerializeStruct::end(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(sql: &str) -> G {
        let r = pg_query::parse(sql, 0).expect("parses");
        let stmt = r.protobuf.stmts[0].stmt.as_ref().expect("stmt");
        to_tree(stmt.as_ref())
    }

    #[test]
    fn node_wrapper_collapses() {
        let g = tree("DELETE FROM a.t WHERE id = 1");
        let o = g.is("DeleteStmt").expect("DeleteStmt");
        let rel = o.child("relation").expect("relation");
        assert_eq!(rel.name, "RangeVar");
        assert_eq!(rel.text("schemaname"), "a");
        assert_eq!(rel.text("relname"), "t");
        assert_eq!(o.child("where_clause").map(|w| w.name), Some("AExpr"));
    }

    #[test]
    fn locations_do_not_matter() {
        let a = tree("SELECT 1 WHERE lower(x) = lower(x)");
        let o = a.is("SelectStmt").expect("select");
        let w = o.child("where_clause").expect("where");
        assert_eq!(w.get("lexpr"), w.get("rexpr"));
    }

    #[test]
    fn defaults_are_dropped() {
        let g = tree("SELECT 0");
        let s = format!("{g:?}");
        assert!(!s.contains("location"));
    }
}
