//! CREATE and DROP of sources, tables, views and sinks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::sql::sqlparser::ast::{CreateTable, CreateTableOptions, CreateView, Query};
use rampart_connectors::late::Watermark;
use rampart_connectors::sink::{JsonSink, SinkFormat, SinkTarget};
use rampart_connectors::source::{MetaColumn, SourceConnector, SourceContext};
use rampart_dataflow::{
    render::validate, Command, FeedProgress, SourceFeed, SourceProjection, ViewSpec, ViewStore, WatchedSink,
};
use rampart_plan::event_time::{plan_lags, reads_stream, Lags};
use rampart_plan::{Plan, ViewPlan};
use rampart_repr::RelationDesc;
use rampart_sql::ast::{object_name, select_all_from, ObjectKind};
use rampart_sql::lower::{lower_plan, NowMode};
use rampart_sql::parse::columns_to_desc;
use rampart_sql::planner::plan_streaming_query;
use rampart_sql::{FormatSpec, ParsedStatement, PlanError, RampartStatement, SinkFrom, WatermarkSpec};

use crate::catalog::CatalogEntry;
use crate::coordinator::{Executed, State};
use crate::durability::RestorePlan;

impl State {
    /// `CREATE SOURCE` (and Flink's connector `CREATE TABLE`): `stmt` is the parsed statement.
    pub(crate) fn create_source(&mut self, stmt: &RampartStatement, sql: &str) -> Result<Executed, PlanError> {
        let RampartStatement::CreateSource {
            name,
            if_not_exists,
            columns,
            options,
            format,
            watermark,
            includes,
        } = stmt
        else {
            return Err(PlanError::new("XX000", "create_source called with another statement"));
        };
        let (name, if_not_exists, format) = (name.as_str(), *if_not_exists, format.as_ref());
        if if_not_exists && self.catalog.get(name).is_some() {
            return Ok(notice_exists("source", name));
        }
        self.check_free(name)?;
        let mut connector = SourceConnector::from_options(options).map_err(PlanError::invalid)?;
        let mut columns = columns.clone();
        if !includes.is_empty() {
            let SourceConnector::Kafka { include, .. } = &mut connector else {
                return Err(PlanError::unsupported(
                    "INCLUDE columns are only available on kafka sources",
                ));
            };
            for (what, alias) in includes {
                let meta = MetaColumn::parse(what).map_err(PlanError::unsupported)?;
                let col = alias.clone().unwrap_or_else(|| meta.default_name().to_string());
                if columns.index_of(&col).is_some() {
                    return Err(PlanError::new(
                        "42701",
                        format!("column \"{col}\" specified more than once"),
                    ));
                }
                columns.columns.push(rampart_repr::Column {
                    name: col,
                    ty: meta.column_type(),
                });
                include.push(meta);
            }
        }
        let columns = &columns;
        connector.check_supported().map_err(PlanError::unsupported)?;
        if let Some(f) = format {
            if f.format != "PLAIN" {
                return Err(PlanError::unsupported(format!(
                    "sources support FORMAT PLAIN only, not {}",
                    f.format
                )));
            }
        }
        if columns.columns.is_empty() {
            return Err(PlanError::invalid(format!("source {name} declares no columns")));
        }
        let watermark = watermark.as_ref().map(|w| watermark_column(columns, w)).transpose()?;
        let created_ms = self.creation_ms();
        connector.pin_start(created_ms);
        let mut notices = Vec::new();
        let start_positions = match connector.pin_positions(self.restoring_positions.take()) {
            Ok(p) => p,
            Err(e) => {
                notices.push(format!(
                    "the start offsets of '{name}' could not be fixed now ({e}): each reader starts at the latest offsets when it starts, and after a restart messages that arrived while the server was down are skipped"
                ));
                None
            }
        };
        self.persist_created_at(name, sql, created_ms, start_positions)?;
        self.register_schema(name, columns.arrow_schema())?;
        self.catalog.insert(CatalogEntry {
            name: name.to_string(),
            kind: ObjectKind::Source,
            desc: columns.clone(),
            sql: sql.to_string(),
            depends_on: vec![],
            store: None,
            connector: Some(connector),
            // A source is a stream: it has lags even without a WATERMARK (all None), so
            // joins know it is not a table.
            event_time: Some({
                let mut lags = vec![None; columns.columns.len()];
                if let Some(w) = &watermark {
                    lags[w.column] = Some(0);
                }
                lags
            }),
            watermark,
            view_query: None,
            upstream: vec![],
            seq: 0,
            retention: None,
        });
        Ok(Executed {
            notices,
            ..Executed::command("CREATE_SOURCE")
        })
    }

    pub(crate) fn create_table(&mut self, ct: &CreateTable, sql: &str) -> Result<Executed, PlanError> {
        let name = object_name(&ct.name);
        if ct.if_not_exists && self.catalog.get(&name).is_some() {
            return Ok(notice_exists("table", &name));
        }
        self.check_free(&name)?;
        if ct.query.is_some() {
            return Err(PlanError::unsupported(
                "CREATE TABLE ... AS SELECT is not supported; use CREATE MATERIALIZED VIEW",
            ));
        }
        let desc = columns_to_desc(&ct.columns)?;
        if desc.columns.is_empty() {
            return Err(PlanError::invalid(format!("table {name} declares no columns")));
        }
        let created_ms = self.creation_ms();
        let contents = self.open_table_log(&name)?;
        self.persist_created(&name, sql, created_ms)?;
        self.register_schema(&name, desc.arrow_schema())?;
        let store = ViewStore::new(self.engine.workers(), self.engine.registry());
        self.engine.broadcast(Command::CreateTable {
            name: name.clone(),
            store: store.clone(),
        });
        if !contents.is_empty() {
            self.engine.broadcast(Command::TableUpdates {
                name: name.clone(),
                updates: contents,
            });
        }
        self.catalog.insert(CatalogEntry {
            name,
            kind: ObjectKind::Table,
            desc,
            sql: sql.to_string(),
            depends_on: vec![],
            store: Some(store),
            connector: None,
            watermark: None,
            event_time: None,
            view_query: None,
            upstream: vec![],
            seq: 0,
            retention: None,
        });
        Ok(Executed::command("CREATE_TABLE"))
    }

    /// Plans a streaming query into a view plan, checking every expression compiles.
    pub(crate) async fn plan_view(&self, query: &Query, now: NowMode) -> Result<ViewPlan, PlanError> {
        let state = self.schema_ctx.state();
        let logical = plan_streaming_query(&state, query).await?;
        let plan = lower_plan(&logical, now)?;
        validate(&plan.plan).map_err(|e| PlanError::new("42804", e))?;
        for dep in plan.plan.dependencies() {
            if crate::system_tables::is_system_table(&dep) {
                return Err(PlanError::unsupported(format!(
                    "views over the system table {dep} are not supported; query it directly"
                )));
            }
        }
        Ok(plan)
    }

    /// [`State::plan_view`], then `EMIT ON WINDOW CLOSE` when the statement `sql` asks
    /// for it.
    pub(crate) async fn plan_streaming_view(
        &self,
        query: &Query,
        now: NowMode,
        emit_on_window_close: bool,
    ) -> Result<ViewPlan, PlanError> {
        let mut plan = self.plan_view(query, now).await?;
        if emit_on_window_close {
            let mut tree = (*plan.plan).clone();
            tree.set_emit_on_window_close(&|name| self.event_time_of(name))
                .map_err(|e| PlanError::new("42P20", e))?;
            plan.plan = Arc::new(tree);
        }
        Ok(plan)
    }

    /// `plan` under the retention its view's `WITH` options ask for (unchanged without
    /// one). The retention column is the one named by `retention_column`, or the view's
    /// only column that follows a source watermark.
    pub(crate) fn with_retention(
        &self,
        plan: ViewPlan,
        options: &CreateTableOptions,
        sql: &str,
    ) -> Result<ViewPlan, PlanError> {
        // ASCII lowercasing keeps byte offsets, so `i` is a char boundary of `sql`.
        let at = sql
            .to_ascii_lowercase()
            .find("retention")
            .map(|i| sql[..i].chars().count() + 1);
        let Some(retention) = rampart_sql::retention::view_retention(options).map_err(|e| e.at(at))? else {
            return Ok(plan);
        };
        let lags = plan_lags(&plan.plan, &|name| self.event_time_of(name));
        let names: Vec<&str> = plan.desc.columns.iter().map(|c| c.name.as_str()).collect();
        let timed: Vec<usize> = (0..names.len())
            .filter(|i| lags.get(*i).copied().flatten().is_some())
            .collect();
        let column = match &retention.column {
            Some(name) => {
                let i = names
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        PlanError::new("42703", format!("retention_column {name} is not a column of the view")).at(at)
                    })?;
                if !timed.contains(&i) {
                    return Err(PlanError::invalid(format!(
                        "retention_column {name} does not follow a source WATERMARK, so its rows would never expire; {}",
                        timed_columns(&names, &timed)
                    ))
                    .at(at));
                }
                i
            }
            None => match timed.as_slice() {
                [one] => *one,
                [] => {
                    return Err(PlanError::invalid(
                        "a retention needs an event-time column that follows a source WATERMARK (WATERMARK FOR event_time AS event_time - INTERVAL '5 seconds' on the source); this view has none",
                    )
                    .at(at))
                }
                _ => {
                    return Err(PlanError::invalid(format!(
                        "the view has several event-time columns: name one with retention_column; {}",
                        timed_columns(&names, &timed)
                    ))
                    .at(at))
                }
            },
        };
        Ok(ViewPlan {
            plan: Arc::new(Plan::Retain {
                input: Box::new((*plan.plan).clone()),
                retention: rampart_plan::Retention {
                    column,
                    keep_us: retention.keep_us,
                },
            }),
            desc: plan.desc,
        })
    }

    /// The objects `plan` reads that are materialized views with a retention.
    fn retained_dependencies(&self, plan: &Plan) -> Vec<String> {
        plan.dependencies()
            .into_iter()
            .filter(|dep| self.catalog.get(dep).is_some_and(|e| e.retention.is_some()))
            .collect()
    }

    /// A retained view's retention, and a NOTICE for each retained view it reads that
    /// keeps rows for less time: rows leave this view when they leave that one, and that
    /// expiry is not recognised as such by views without a retention reading this one. For
    /// a view without a retention (not while restoring): a NOTICE for each retained view it
    /// reads, saying it starts from that view's current rows and keeps them.
    fn retention_chain(&self, name: &str, plan: &ViewPlan) -> (Option<rampart_plan::Retention>, Vec<String>) {
        let Plan::Retain { retention, input } = plan.plan.as_ref() else {
            // A view without a retention keeps what it derives from a retained view, but
            // starts from that view's current rows (after a restart too: see the expiry
            // floors recorded in `create_view`).
            if self.restoring.is_some() {
                return (None, vec![]);
            }
            let notices = self
                .retained_dependencies(&plan.plan)
                .into_iter()
                .map(|dep| {
                    format!(
                        "{name} reads {dep}, which has a retention: {name} starts from the rows {dep} holds now and keeps what it derives from them, also after they leave {dep}"
                    )
                })
                .collect();
            return (None, notices);
        };
        let notices = plan
            .plan
            .dependencies()
            .into_iter()
            .filter_map(|dep| {
                let up = self.catalog.get(&dep)?.retention?.keep_us;
                (up < retention.keep_us).then(|| {
                    format!(
                        "{name} keeps rows for {} s but reads {dep}, which keeps them for {} s: its rows leave when they leave {dep}, and views without a retention that read {name} may lose them then; give {name} a retention no longer than {dep}'s",
                        retention.keep_us as f64 / 1e6,
                        up as f64 / 1e6
                    )
                })
            })
            .chain(self.retention_column_notices(name, input, retention.column, &plan.desc))
            .collect();
        (Some(*retention), notices)
    }

    /// A NOTICE for each retained view whose rows a retained view's rows are made from
    /// when it expires them by another column: rows leave with that view's expiry as well
    /// as its own, so views without a retention that read it may lose them early.
    fn retention_column_notices(
        &self,
        name: &str,
        input: &Plan,
        column: usize,
        desc: &rampart_repr::RelationDesc,
    ) -> Vec<String> {
        let origin = rampart_plan::lineage::column_origin(input, column);
        let column_name = desc.columns.get(column).map(|c| c.name.as_str()).unwrap_or_default();
        input
            .dependencies()
            .into_iter()
            .filter_map(|dep| {
                let entry = self.catalog.get(&dep)?;
                let up_column = entry.retention?.column;
                if !rampart_plan::lineage::rows_come_from(input, &dep) || origin == Some((dep.clone(), up_column)) {
                    return None;
                }
                let up_name = entry.desc.columns.get(up_column).map(|c| c.name.as_str()).unwrap_or_default();
                Some(format!(
                    "{name} expires rows by {column_name} but reads {dep}, which expires them by {up_name}: its rows also leave when they leave {dep}, and views without a retention that read {name} may lose them then; expire {name} by the column {dep}.{up_name} is copied to"
                ))
            })
            .collect()
    }

    /// Event-time lags of a catalog object's columns, if it has event-time columns.
    pub(crate) fn event_time_of(&self, name: &str) -> Option<Lags> {
        self.catalog.get(name).and_then(|e| e.event_time.clone())
    }

    /// Event-time lags of the objects `plan` reads, for the dataflow, and of its output.
    fn plan_event_time(&self, plan: &ViewPlan) -> (BTreeMap<String, Lags>, Option<Lags>) {
        let inputs: BTreeMap<String, Lags> = plan
            .plan
            .dependencies()
            .into_iter()
            .filter_map(|d| self.event_time_of(&d).map(|l| (d, l)))
            .collect();
        let lookup = |name: &str| inputs.get(name).cloned();
        let out = plan_lags(&plan.plan, &lookup);
        let stream = reads_stream(&plan.plan, &lookup);
        (inputs.clone(), stream.then_some(out))
    }

    /// Every reader feeding a dataflow that reads `plan`: its own `feeds` (as
    /// `view/source`) and those of the materialized views it reads, transitively.
    fn upstream_feeds(
        &self,
        view: &str,
        feeds: &BTreeMap<String, SourceFeed>,
        plan: &ViewPlan,
    ) -> Vec<(String, FeedProgress)> {
        let mut out: Vec<(String, FeedProgress)> = feeds
            .iter()
            .map(|(source, f)| (format!("{view}/{source}"), f.progress.clone()))
            .collect();
        for dep in plan.plan.dependencies() {
            if let Some(e) = self.catalog.get(&dep) {
                for u in &e.upstream {
                    if !out.iter().any(|(id, _)| *id == u.0) {
                        out.push(u.clone());
                    }
                }
            }
        }
        out
    }

    /// Starts a reader for every source the plan reads.
    /// `resume` gives, per source, the positions to resume at (a view's checkpoint).
    fn source_feeds(
        &self,
        plan: &ViewPlan,
        resume: &BTreeMap<String, rampart_repr::Positions>,
    ) -> Result<BTreeMap<String, SourceFeed>, PlanError> {
        let mut feeds = BTreeMap::new();
        for dep in plan.plan.dependencies() {
            let Some(entry) = self.catalog.get(&dep) else {
                return Err(PlanError::undefined_table(&dep));
            };
            if let Some(connector) = &entry.connector {
                let projection = match plan.plan.projection_over(&dep) {
                    Some((exprs, schema)) => SourceProjection::compile(exprs, schema)
                        .map_err(PlanError::invalid)?
                        .map(Arc::new),
                    None => None,
                };
                let ctx = SourceContext {
                    name: dep.clone(),
                    desc: entry.desc.clone(),
                    errors: self.errors.clone(),
                    rows_read: Default::default(),
                    watermark: entry.watermark,
                    late: self.late.clone(),
                    wake: self.engine.worker_threads(),
                    projection: projection.clone(),
                    resume_at: resume.get(&dep).cloned(),
                };
                let mut feed = connector
                    .start(ctx, self.engine.workers())
                    .map_err(PlanError::invalid)?;
                feed.watermarked = entry.watermark.is_some();
                feed.projected = projection.is_some();
                feeds.insert(dep, feed);
            }
        }
        Ok(feeds)
    }

    pub(crate) async fn create_view(&mut self, cv: &CreateView, stmt: &ParsedStatement) -> Result<Executed, PlanError> {
        let sql = stmt.text.as_str();
        let name = object_name(&cv.name);
        let kind = if cv.materialized {
            ObjectKind::MaterializedView
        } else {
            ObjectKind::View
        };
        if cv.if_not_exists && self.catalog.get(&name).is_some() {
            return Ok(notice_exists(kind.sql_name(), &name));
        }
        if cv.or_replace {
            return Err(PlanError::unsupported(
                "CREATE OR REPLACE of views is not supported; DROP and CREATE",
            ));
        }
        self.check_free(&name)?;
        if !cv.columns.is_empty() {
            return Err(PlanError::unsupported(
                "column lists on CREATE VIEW are not supported; alias the columns in the query",
            ));
        }
        if !cv.materialized {
            if cv.options != CreateTableOptions::None {
                return Err(PlanError::unsupported(
                    "WITH options on a (non-materialized) view are not supported: a retention applies to CREATE MATERIALIZED VIEW",
                ));
            }
            return self.create_plain_view(&name, &cv.query, stmt).await;
        }
        let plan = self
            .plan_streaming_view(&cv.query, NowMode::TemporalFiltersOnly, stmt.emit_on_window_close)
            .await?;
        let plan = self.with_retention(plan, &cv.options, sql)?;
        let (retention, retention_notices) = self.retention_chain(&name, &plan);
        let (lags, event_time) = self.plan_event_time(&plan);
        // How it comes back after a restart: a view of single source events is snapshotted
        // (restored from its last checkpoint, its readers resume there); a view without a
        // retention over a retained snapshotted one is saved too and rebuilt beside it.
        let rebuilt = match self.restore_plan(&name, &plan.plan, retention.is_some(), false)? {
            RestorePlan::Rebuilt(roots) => Some(roots),
            RestorePlan::AsUsual => None,
        };
        let snapshot = self.open_view_log(&name, &plan.plan, rebuilt.as_ref())?;
        let checkpoint = snapshot.as_ref().and_then(|(_, cp)| cp.as_ref());
        let resume = checkpoint.map(|cp| cp.positions.clone()).unwrap_or_default();
        // Readers start before the statement is recorded: one that cannot start fails the
        // statement without leaving it in the catalog.
        let feeds = self.source_feeds(&plan, &resume)?;
        let created_ms = self.creation_ms();
        self.persist_created(&name, sql, created_ms)?;
        // Registered once the view exists, before its dataflow reads a batch.
        let (snapshot_capture, restored_rows) = self.snapshot_view(&name, &plan.plan, snapshot, &feeds);
        let restore_start = rampart_dataflow::now_ms();
        let ingest_gate = self.restore_gate(restored_rows.as_ref().map(|r| r.len()), restore_start);
        let is_rebuilt = rebuilt.is_some();
        if let Some(roots) = rebuilt {
            self.register_rebuilt(&name, roots);
        }
        let upstream = self.upstream_feeds(&name, &feeds, &plan);
        let store = ViewStore::new(self.engine.workers(), self.engine.registry());
        let floor_report = rampart_dataflow::ExpiryFloors::default();
        let spec = ViewSpec {
            name: name.clone(),
            plan: plan.plan.clone(),
            desc: plan.desc.clone(),
            arrange: true,
            store: Some(store.clone()),
            sink: None,
            sources: feeds,
            errors: self.errors.clone(),
            late: self.late.clone(),
            lags,
            restoring: self.restoring.is_some(),
            expiry_floors: self.restoring_floors.clone(),
            floor_report: floor_report.clone(),
            mute_until_gate: is_rebuilt && restored_rows.is_some(),
            snapshot_capture,
            restored_rows,
            restore_start,
            ingest_gate,
        };
        self.register_schema(&name, plan.desc.arrow_schema())?;
        self.engine.broadcast(Command::CreateView(Box::new(spec)));
        self.catalog.insert(CatalogEntry {
            name: name.clone(),
            kind,
            desc: plan.desc.clone(),
            sql: sql.to_string(),
            depends_on: self.dependencies_of(&plan, &cv.query),
            store: Some(store),
            connector: None,
            watermark: None,
            event_time,
            view_query: None,
            upstream,
            seq: 0,
            retention,
        });
        // While restoring, views replay their input in the background.
        let mut notices = if self.restoring.is_some() {
            vec![]
        } else {
            self.catch_up().await
        };
        let caught_up = notices.is_empty();
        notices.extend(self.record_expiry_floors(&name, &floor_report, caught_up));
        notices.extend(retention_notices);
        if is_rebuilt && self.restoring.is_none() {
            notices.extend(self.first_checkpoint(&name).await);
        }
        Ok(Executed {
            notices,
            ..Executed::command("CREATE_MATERIALIZED_VIEW")
        })
    }

    async fn create_plain_view(
        &mut self,
        name: &str,
        query: &Query,
        stmt: &ParsedStatement,
    ) -> Result<Executed, PlanError> {
        let sql = stmt.text.as_str();
        if stmt.emit_on_window_close {
            return Err(PlanError::unsupported(
                "EMIT ON WINDOW CLOSE applies to materialized views and sinks, not to CREATE VIEW",
            ));
        }
        // Check it plans as a streaming query, so views over it can be materialized.
        let plan = self.plan_view(query, NowMode::TemporalFiltersOnly).await?;
        State::register_view(&self.schema_ctx, name, query).await?;
        let deps = self.view_dependencies(query).await?;
        let created_ms = self.creation_ms();
        if let Err(e) = self.persist_created(name, sql, created_ms) {
            let _ = self.schema_ctx.deregister_table(TableReference::bare(name));
            return Err(e);
        }
        self.catalog.insert(CatalogEntry {
            name: name.to_string(),
            kind: ObjectKind::View,
            desc: plan.desc,
            sql: sql.to_string(),
            depends_on: deps,
            store: None,
            connector: None,
            watermark: None,
            event_time: None,
            view_query: Some(Box::new(query.clone())),
            upstream: vec![],
            seq: 0,
            retention: None,
        });
        Ok(Executed::command("CREATE_VIEW"))
    }

    pub(crate) async fn create_sink(
        &mut self,
        name: &str,
        if_not_exists: bool,
        from: &SinkFrom,
        options: &BTreeMap<String, String>,
        format: Option<&FormatSpec>,
        stmt: &ParsedStatement,
    ) -> Result<Executed, PlanError> {
        let sql = stmt.text.as_str();
        if if_not_exists && self.catalog.get(name).is_some() {
            return Ok(notice_exists("sink", name));
        }
        self.check_free(name)?;
        let target = SinkTarget::from_options(options).map_err(PlanError::invalid)?;
        let sink_format = SinkFormat::parse(format.map(|f| f.format.as_str())).map_err(PlanError::unsupported)?;
        let query: Box<Query> = match from {
            SinkFrom::Query(q) => q.clone(),
            SinkFrom::Relation(rel) => {
                let resolved = object_name(rel);
                if self.catalog.get(&resolved).is_none() {
                    return Err(PlanError::undefined_table(&resolved));
                }
                select_all_from(rel, None, None)
            }
        };
        let plan = self
            .plan_streaming_view(&query, NowMode::EmitTime, stmt.emit_on_window_close)
            .await?;
        let (lags, _) = self.plan_event_time(&plan);
        let resume = self.open_sink_state(name)?;
        let output_len = resume.as_ref().and_then(|r| r.checkpoint.output_len);
        let writer: Arc<dyn rampart_dataflow::SinkWriter> = match &target {
            SinkTarget::Kafka { .. } => Arc::new(
                rampart_connectors::kafka_sink::KafkaSink::open(name, &target, plan.desc.clone(), sink_format)
                    .map_err(PlanError::invalid)?,
            ),
            _ => Arc::new(
                JsonSink::open(&target, plan.desc.clone(), sink_format, output_len).map_err(PlanError::invalid)?,
            ),
        };
        let feeds = self.source_feeds(&plan, &BTreeMap::new())?;
        self.restore_plan(name, &plan.plan, false, true)?;
        let created_ms = self.creation_ms();
        self.persist_created(name, sql, created_ms)?;
        let upstream = self.upstream_feeds(name, &feeds, &plan);
        let floor_report = rampart_dataflow::ExpiryFloors::default();
        let emit_time_columns: Vec<usize> = rampart_plan::emit_time::emit_time_columns(&plan.plan)
            .iter()
            .enumerate()
            .filter_map(|(i, volatile)| volatile.then_some(i))
            .collect();
        let writer = Arc::new(WatchedSink::new(self.resumable_sink(
            name,
            writer,
            resume,
            upstream.clone(),
            emit_time_columns,
        )));
        let mut notices = Vec::new();
        if sink_format == SinkFormat::Plain {
            let forced = options
                .get("force_append_only")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            if !forced {
                notices.push(format!(
                    "sink {name} is append-only (FORMAT PLAIN): it emits inserted rows and the new version of updated rows; deletions are not emitted. Use FORMAT UPSERT or DEBEZIUM to receive them."
                ));
            }
        }
        let spec = ViewSpec {
            name: name.to_string(),
            plan: plan.plan.clone(),
            desc: plan.desc.clone(),
            arrange: false,
            store: None,
            sink: Some(writer.clone() as Arc<dyn rampart_dataflow::SinkWriter>),
            sources: feeds,
            errors: self.errors.clone(),
            late: self.late.clone(),
            lags,
            restoring: self.restoring.is_some(),
            expiry_floors: self.restoring_floors.clone(),
            floor_report: floor_report.clone(),
            snapshot_capture: None,
            restored_rows: None,
            restore_start: 0,
            ingest_gate: self.restore_gate(None, 0),
            mute_until_gate: false,
        };
        self.engine.broadcast(Command::CreateView(Box::new(spec)));
        self.catalog.insert(CatalogEntry {
            name: name.to_string(),
            kind: ObjectKind::Sink,
            desc: plan.desc.clone(),
            sql: sql.to_string(),
            depends_on: self.dependencies_of(&plan, &query),
            store: None,
            connector: None,
            watermark: None,
            event_time: None,
            view_query: None,
            upstream,
            seq: 0,
            retention: None,
        });
        // A sink over a retained view records its expiry floors as a view does (so a
        // restart does not emit rows that had expired before it was created): only then
        // does its creation wait for the views to catch up, and for the sink itself to take
        // in what they held then (a sink is not among the views that catch-up waits for,
        // and its floors are known once it has read past its snapshot).
        if self.restoring.is_none() && !self.retained_dependencies(&plan.plan).is_empty() {
            let target = rampart_dataflow::now_ms();
            let lagging = self.catch_up().await;
            let sink = writer.clone();
            let sink_caught_up =
                tokio::task::spawn_blocking(move || sink.wait_past(target, crate::coordinator::CATCH_UP_TIMEOUT))
                    .await
                    .unwrap_or(false);
            let caught_up = lagging.is_empty() && sink_caught_up;
            notices.extend(lagging);
            notices.extend(self.record_expiry_floors(name, &floor_report, caught_up));
        }
        Ok(Executed {
            notices,
            ..Executed::command("CREATE_SINK")
        })
    }

    pub(crate) fn drop_objects(
        &mut self,
        kind: ObjectKind,
        names: &[String],
        if_exists: bool,
        cascade: bool,
    ) -> Result<Executed, PlanError> {
        let mut notices = Vec::new();
        for name in names {
            let Some(entry) = self.catalog.get(name) else {
                if if_exists {
                    notices.push(format!("{} \"{name}\" does not exist, skipping", kind.sql_name()));
                    continue;
                }
                return Err(PlanError::new(
                    "42P01",
                    format!("{} \"{name}\" does not exist", kind.sql_name()),
                ));
            };
            if entry.kind != kind {
                return Err(PlanError::new(
                    "42809",
                    format!(
                        "\"{name}\" is a {}, not a {}; use DROP {}",
                        entry.kind.sql_name(),
                        kind.sql_name(),
                        entry.kind.sql_name().to_uppercase()
                    ),
                ));
            }
            let order = self.catalog.drop_order(name);
            if order.len() > 1 && !cascade {
                let deps: Vec<&String> = order.iter().filter(|n| *n != name).collect();
                return Err(PlanError::new(
                    "2BP01",
                    format!(
                        "cannot drop {} {name} because other objects depend on it: {}; use DROP ... CASCADE",
                        kind.sql_name(),
                        deps.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            for victim in order {
                self.persist_dropped(&victim)?;
                if let Some(e) = self.catalog.remove(&victim) {
                    let _ = self.schema_ctx.deregister_table(TableReference::bare(victim.as_str()));
                    if matches!(
                        e.kind,
                        ObjectKind::Table | ObjectKind::MaterializedView | ObjectKind::Sink
                    ) {
                        self.engine.broadcast(Command::Drop { name: victim.clone() });
                    }
                    if victim != *name {
                        notices.push(format!("drop cascades to {} {victim}", e.kind.sql_name()));
                    }
                }
            }
        }
        let tag = format!("DROP_{}", kind.sql_name().to_uppercase().replace(' ', "_"));
        Ok(Executed {
            notices,
            ..Executed::command(&tag)
        })
    }

    /// What a new view or sink reads: the objects its plan reads plus the plain views its
    /// query names (planning inlines those, so the plan alone does not show them).
    fn dependencies_of(&self, plan: &ViewPlan, query: &Query) -> Vec<String> {
        let mut deps = plan.plan.dependencies();
        for name in crate::query::named_relations(query) {
            if self.catalog.get(&name).is_some_and(|e| e.kind == ObjectKind::View) && !deps.contains(&name) {
                deps.push(name);
            }
        }
        deps
    }

    /// Catalog objects a (non-materialized) view's query names.
    async fn view_dependencies(&self, query: &Query) -> Result<Vec<String>, PlanError> {
        let state = self.schema_ctx.state();
        let plan = rampart_sql::planner::plan_batch_query(&state, query).await?;
        let mut deps = BTreeSet::new();
        crate::query::collect_scans(&plan, &mut deps);
        deps.extend(
            crate::query::named_relations(query)
                .into_iter()
                .filter(|n| self.catalog.get(n).is_some()),
        );
        Ok(deps.into_iter().collect())
    }
}

/// Resolves `WATERMARK FOR col` to the column's index; the column must be a timestamp.
fn watermark_column(columns: &RelationDesc, w: &WatermarkSpec) -> Result<Watermark, PlanError> {
    let Some(i) = columns.index_of(&w.column) else {
        return Err(PlanError::new(
            "42703",
            format!("WATERMARK FOR {}: the source has no such column", w.column),
        ));
    };
    if !matches!(
        columns.columns[i].ty,
        rampart_repr::ColumnType::Timestamp | rampart_repr::ColumnType::TimestampTz
    ) {
        return Err(PlanError::new(
            "42804",
            format!(
                "WATERMARK FOR {}: the column must be TIMESTAMP or TIMESTAMPTZ, not {:?}",
                w.column, columns.columns[i].ty
            ),
        ));
    }
    Ok(Watermark {
        column: i,
        delay_us: w.delay_us,
    })
}

fn notice_exists(kind: &str, name: &str) -> Executed {
    Executed {
        notices: vec![format!("{kind} \"{name}\" already exists, skipping")],
        ..Executed::command("CREATE")
    }
}

/// "the event-time columns are a, b" (or that there are none), for retention errors.
fn timed_columns(names: &[&str], timed: &[usize]) -> String {
    if timed.is_empty() {
        return "the view has no event-time column".into();
    }
    let list: Vec<&str> = timed.iter().map(|i| names[*i]).collect();
    format!("the event-time columns are {}", list.join(", "))
}
