//! The catalog: every source, table, view and sink, its columns, its definition and what
//! it depends on.

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_connectors::source::SourceConnector;
use rampart_dataflow::{FeedProgress, ViewStore};
use rampart_repr::RelationDesc;
use rampart_sql::ast::ObjectKind;

/// One catalog object.
#[derive(Clone)]
pub struct CatalogEntry {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ObjectKind,
    /// Columns (sinks: the columns they emit).
    pub desc: RelationDesc,
    /// The statement that created it.
    pub sql: String,
    /// Objects it reads.
    pub depends_on: Vec<String>,
    /// Contents, for tables and materialized views.
    pub store: Option<Arc<ViewStore>>,
    /// Connector, for sources.
    pub connector: Option<SourceConnector>,
    /// The source's `WATERMARK`, if declared.
    pub watermark: Option<rampart_connectors::late::Watermark>,
    /// Event-time lags of its columns for streams (sources and the views that read them;
    /// all `None` without a `WATERMARK` upstream), `None` for tables and views of tables
    /// only; see `rampart_plan::event_time`.
    pub event_time: Option<rampart_plan::event_time::Lags>,
    /// For (non-materialized) views: the query, planned again against each query's
    /// snapshot.
    pub view_query: Option<Box<datafusion::sql::sqlparser::ast::Query>>,
    /// Readers feeding its dataflow, directly or through the views it reads, as
    /// `view/source` (materialized views and sinks).
    pub upstream: Vec<(String, FeedProgress)>,
    /// Creation order.
    pub seq: u64,
    /// A materialized view's retention (the column it expires rows by, and how long after
    /// their event time), if it has one.
    pub retention: Option<rampart_plan::Retention>,
    /// A sink's writer, which knows how far the sink has written (`rampart_frontiers`).
    pub sink: Option<Arc<rampart_dataflow::WatchedSink>>,
}

/// All objects by name.
#[derive(Default)]
pub struct Catalog {
    entries: BTreeMap<String, CatalogEntry>,
    next_seq: u64,
}

impl Catalog {
    /// The object with this name.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.get(name)
    }

    /// Adds an object (the caller checked the name is free).
    pub fn insert(&mut self, mut entry: CatalogEntry) {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(entry.name.clone(), entry);
    }

    /// Removes an object.
    pub fn remove(&mut self, name: &str) -> Option<CatalogEntry> {
        self.entries.remove(name)
    }

    /// Objects that read `name` directly.
    pub fn dependents(&self, name: &str) -> Vec<String> {
        self.entries
            .values()
            .filter(|e| e.depends_on.iter().any(|d| d == name))
            .map(|e| e.name.clone())
            .collect()
    }

    /// `name` and everything that depends on it, transitively, dependents first.
    pub fn drop_order(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_dependents(name, &mut out);
        out
    }

    fn collect_dependents(&self, name: &str, out: &mut Vec<String>) {
        for d in self.dependents(name) {
            self.collect_dependents(&d, out);
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }

    /// Objects of a kind, by name.
    pub fn of_kind(&self, kind: ObjectKind) -> Vec<&CatalogEntry> {
        self.entries.values().filter(|e| e.kind == kind).collect()
    }

    /// All objects in creation order.
    pub fn in_creation_order(&self) -> Vec<&CatalogEntry> {
        let mut v: Vec<&CatalogEntry> = self.entries.values().collect();
        v.sort_by_key(|e| e.seq);
        v
    }
}
