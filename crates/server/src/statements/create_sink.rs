//! `CREATE SINK`: validate the target and format, plan, persist, install, and for a sink over
//! retained views wait until it has read past its snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::Query;
use rampart_connectors::sink::{JsonSink, SinkFormat, SinkTarget};
use rampart_dataflow::{Command, ViewSpec, WatchedSink};
use rampart_sql::ast::{object_name, select_all_from, ObjectKind};
use rampart_sql::lower::NowMode;
use rampart_sql::{FormatSpec, ParsedStatement, PlanError, SinkFrom};

use super::*;
use crate::catalog::CatalogEntry;
use crate::coordinator::{Executed, State};

impl State {
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
        let target = SinkTarget::from_options(options).map_err(rampart_repr::Error::from)?;
        let sink_format = SinkFormat::parse(format.map(|f| f.format.as_str()))?;
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
            SinkTarget::Kafka { .. } => Arc::new(rampart_connectors::kafka_sink::KafkaSink::open(
                name,
                &target,
                plan.desc.clone(),
                sink_format,
            )?),
            _ => Arc::new(JsonSink::open(&target, plan.desc.clone(), sink_format, output_len)?),
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
            sink: Some(writer.clone()),
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
}
