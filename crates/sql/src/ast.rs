//! Rampart's statements: the streaming DDL sqlparser does not know (`CREATE SOURCE`,
//! `CREATE SINK`, `SHOW SOURCES`, ...) and the standard statements sqlparser parses.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{Expr, ObjectName, Query, SetExpr, Statement, TableAlias, TableFactor};
use rampart_repr::RelationDesc;

/// `FORMAT x ENCODE y` of a source or sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatSpec {
    /// `PLAIN`, `UPSERT` or `DEBEZIUM` (upper case).
    pub format: String,
    /// `JSON` (upper case).
    pub encode: String,
}

/// What a sink reads.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkFrom {
    /// `CREATE SINK s FROM relation`: the name as written (resolve it with [`object_name`]).
    Relation(ObjectName),
    /// `CREATE SINK s AS SELECT ...` or `CREATE SINK s FROM (SELECT ...)`.
    Query(Box<Query>),
}

/// Objects `SHOW` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowKind {
    /// `SHOW TABLES`.
    Tables,
    /// `SHOW SOURCES`.
    Sources,
    /// `SHOW MATERIALIZED VIEWS`.
    MaterializedViews,
    /// `SHOW VIEWS`.
    Views,
    /// `SHOW SINKS`.
    Sinks,
}

/// Kinds of catalog object a `DROP` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A table.
    Table,
    /// A source.
    Source,
    /// A materialized view.
    MaterializedView,
    /// A (non-materialized) view.
    View,
    /// A sink.
    Sink,
}

impl ObjectKind {
    /// The SQL words for this kind, e.g. `materialized view`.
    pub fn sql_name(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Source => "source",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::View => "view",
            ObjectKind::Sink => "sink",
        }
    }
}

/// One statement Rampart executes.
#[derive(Debug, Clone, PartialEq)]
pub enum RampartStatement {
    /// `CREATE SOURCE name (cols) WITH (...) FORMAT ... ENCODE ...`.
    CreateSource {
        /// Source name.
        name: String,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
        /// Declared columns.
        columns: RelationDesc,
        /// `WITH` options, keys lower-cased.
        options: BTreeMap<String, String>,
        /// `FORMAT ... ENCODE ...`, if given.
        format: Option<FormatSpec>,
        /// `WATERMARK FOR col AS col [- INTERVAL ...]`.
        watermark: Option<WatermarkSpec>,
        /// `INCLUDE key | partition | offset | timestamp [AS name]` clauses, in order: the
        /// metadata word and the column name if given.
        includes: Vec<(String, Option<String>)>,
    },
    /// `CREATE SINK name FROM rel | AS query WITH (...) [FORMAT ... ENCODE ...]`.
    CreateSink {
        /// Sink name.
        name: String,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
        /// What the sink reads.
        from: SinkFrom,
        /// `WITH` options, keys lower-cased.
        options: BTreeMap<String, String>,
        /// `FORMAT ... ENCODE ...`, if given.
        format: Option<FormatSpec>,
    },
    /// `DROP SOURCE|SINK|TABLE|VIEW|MATERIALIZED VIEW [IF EXISTS] names [CASCADE]`.
    Drop {
        /// What kind of object.
        kind: ObjectKind,
        /// Names to drop.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `SHOW TABLES | SOURCES | MATERIALIZED VIEWS | VIEWS | SINKS`.
    Show(ShowKind),
    /// Any statement sqlparser parsed (CREATE TABLE, CREATE [MATERIALIZED] VIEW, INSERT,
    /// DELETE, COPY, SELECT, EXPLAIN, DESCRIBE, SET, ...).
    Standard(Box<Statement>),
}

/// Joins the parts of an object name into Rampart's catalog name (lower case unless quoted;
/// a schema qualifier `public.` is dropped).
pub fn object_name(name: &ObjectName) -> String {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| {
            if i.quote_style.is_some() {
                i.value.clone()
            } else {
                i.value.to_lowercase()
            }
        })
        .collect();
    match parts.as_slice() {
        [schema, rest @ ..] if !rest.is_empty() && (schema == "public" || schema == "dev") => rest.join("."),
        _ => parts.join("."),
    }
}

/// `SELECT * FROM name [AS alias] [WHERE selection]` as a statement tree, with the name, the
/// alias and the predicate exactly as they were parsed: never formatted back to text and
/// parsed again, so a quoted, mixed-case name keeps resolving to the relation it named.
pub fn select_all_from(name: &ObjectName, alias: Option<TableAlias>, selection: Option<Expr>) -> Box<Query> {
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    let mut query = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .try_with_sql("SELECT * FROM t")
        .and_then(|mut p| p.parse_query())
        .expect("a constant query parses");
    let SetExpr::Select(select) = query.body.as_mut() else {
        unreachable!("a constant SELECT")
    };
    let TableFactor::Table {
        name: table,
        alias: table_alias,
        ..
    } = &mut select.from[0].relation
    else {
        unreachable!("a constant table reference")
    };
    *table = name.clone();
    *table_alias = alias;
    select.selection = selection;
    query
}

/// A source's `WATERMARK FOR column AS column [- INTERVAL 'delay']`: the watermark is the
/// largest `column` value seen minus `delay`; rows below it are late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkSpec {
    /// The event-time column.
    pub column: String,
    /// Allowed lateness in microseconds (0 for `AS column`).
    pub delay_us: i64,
}
