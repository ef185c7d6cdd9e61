//! What the coordinator writes to the data directory and how it restores from it: the
//! catalog log (statements of live objects), table change logs, and resumable sinks.
//! Without a data directory, nothing is written and nothing survives a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rampart_dataflow::snapshot::RestoredRows;
use rampart_dataflow::{now_ms, Diff, FeedProgress, SinkWriter, SnapshotCapture, SourceFeed};
use rampart_repr::Row;
use rampart_sql::PlanError;
use rampart_storage::{
    describe_io, is_disk_full, CatalogLog, DataDir, ResumableSink, SinkCheckpoint, SinkStateLog, StoredObject,
    TableLog, ViewCheckpoint, ViewLog,
};

use crate::checkpoint::{Checkpointer, Expiry, SnapshottedView, WatermarkAt};
use crate::coordinator::{Coordinator, State};

/// The open data directory of a server.
pub(crate) struct Storage {
    pub(crate) dir: DataDir,
    pub(crate) catalog: CatalogLog,
    pub(crate) tables: Mutex<HashMap<String, TableLog>>,
    /// How often sinks make their output and progress durable, and views write
    /// checkpoints.
    pub(crate) sync_every: Duration,
    /// Writes the checkpoints of snapshotted views.
    pub(crate) checkpointer: Arc<Checkpointer>,
}

/// A sink's log and checkpoint, opened before its connector (which may cut its output back
/// to the checkpoint).
pub(crate) struct SinkResume {
    pub(crate) log: SinkStateLog,
    pub(crate) checkpoint: SinkCheckpoint,
}

fn io_error(what: &str, e: std::io::Error) -> PlanError {
    let code = if is_disk_full(&e) { "53100" } else { "58030" };
    PlanError::new(code, format!("{what}: {}", describe_io(&e)))
}

impl State {
    /// When the object being created was first created: the stored time while restoring,
    /// else now.
    pub(crate) fn creation_ms(&self) -> i64 {
        self.restoring.unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
    }

    /// Records a new object's statement, unless it is being restored from the log.
    pub(crate) fn persist_created(&mut self, name: &str, sql: &str, created_ms: i64) -> Result<(), PlanError> {
        self.persist_created_at(name, sql, created_ms, None)
    }

    /// Records a new source's statement with where its readers start.
    pub(crate) fn persist_created_at(
        &mut self,
        name: &str,
        sql: &str,
        created_ms: i64,
        start_positions: Option<rampart_repr::Positions>,
    ) -> Result<(), PlanError> {
        if self.restoring.is_some() {
            return Ok(());
        }
        let Some(storage) = self.storage.as_mut() else {
            return Ok(());
        };
        storage
            .catalog
            .created(&StoredObject {
                name: name.to_string(),
                sql: sql.to_string(),
                created_ms,
                start_positions,
                expiry_floors: Default::default(),
            })
            .map_err(|e| io_error(&format!("cannot record {name} in the catalog"), e))
    }

    /// Records the expiry floors a new view or sink reported (see
    /// `rampart_dataflow::ExpiryFloors`), once it has caught up: it has then seen the whole
    /// snapshot it imported, so they are final. One that lagged, or whose record cannot be
    /// written, restores as before floors existed (a NOTICE says so in the second case);
    /// the object exists either way.
    pub(crate) fn record_expiry_floors(
        &mut self,
        name: &str,
        report: &rampart_dataflow::ExpiryFloors,
        caught_up: bool,
    ) -> Option<String> {
        let floors = report.lock().clone();
        if self.restoring.is_some() || !caught_up || floors.is_empty() {
            return None;
        }
        let storage = self.storage.as_mut()?;
        let e = storage.catalog.expiry_floors(name, &floors).err()?;
        let e = io_error(&format!("cannot record the expiry floors of {name} in the catalog"), e);
        Some(format!(
            "{}; after a restart {name} will also hold what it derives from rows that had expired before it was created",
            e.message
        ))
    }

    /// Records that an object is gone and deletes its table or sink log.
    pub(crate) fn persist_dropped(&mut self, name: &str) -> Result<(), PlanError> {
        let Some(storage) = self.storage.as_mut() else {
            return Ok(());
        };
        storage
            .catalog
            .dropped(name)
            .map_err(|e| io_error(&format!("cannot record the drop of {name} in the catalog"), e))?;
        if let Some(log) = storage.tables.lock().remove(name) {
            let _ = log.remove();
        }
        let sink = storage.dir.sink_path(name);
        if sink.exists() {
            let _ = std::fs::remove_file(sink);
        }
        storage.checkpointer.unregister(name);
        let view = storage.dir.view_path(name);
        if view.exists() {
            let _ = std::fs::remove_file(view);
        }
        Ok(())
    }

    /// Keeps every restore exact before a view or sink with `plan` is recorded (`retained`:
    /// the new view has a retention). A snapshotted view with a retention restores only
    /// the rows it holds, so an object over it comes back exactly only if what it holds is a
    /// function of those rows: it has a retention itself (it sees the expiries) and its
    /// plan [`rampart_plan::Plan::is_function_of_inputs`]. Otherwise (an alert view without
    /// retention, keeping what it derived from expired rows; a window) the retained views
    /// it derives from stop being snapshotted and their logs are deleted, so a restart
    /// replays their sources from the start, as it did before snapshots.
    pub(crate) fn keep_restores_exact(
        &self,
        name: &str,
        plan: &rampart_plan::Plan,
        retained: bool,
    ) -> Result<(), PlanError> {
        let Some(storage) = self.storage.as_ref() else {
            return Ok(());
        };
        if retained && plan.is_function_of_inputs() {
            return Ok(());
        }
        let mut stack = plan.dependencies();
        let mut seen = std::collections::HashSet::new();
        while let Some(dep) = stack.pop() {
            if !seen.insert(dep.clone()) {
                continue;
            }
            let Some(entry) = self.catalog.get(&dep) else { continue };
            if entry.retention.is_some() && storage.checkpointer.is_registered(&dep) {
                storage.checkpointer.unregister(&dep);
                let path = storage.dir.view_path(&dep);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&format!("cannot stop snapshotting {dep}"), e)),
                }
                tracing::info!(
                    view = %dep,
                    by = %name,
                    "no longer snapshotted: {name} keeps what it derived from rows {dep} has expired, which a checkpoint of {dep} does not hold; a restart replays {dep}'s sources from their start"
                );
            }
            stack.extend(entry.depends_on.iter().cloned());
        }
        Ok(())
    }

    /// Whether a view with this plan is snapshotted at checkpoints: it reads only sources,
    /// through maps, filters and unions, so its rows and its readers' positions are all a
    /// restart needs (`rampart_dataflow::snapshot`). For a source with a `WATERMARK` the
    /// positions carry each stream's largest event time, so the resumed reader's watermark
    /// and its late rows are those of the reader before the restart.
    pub(crate) fn snapshottable(&self, plan: &rampart_plan::Plan) -> bool {
        let deps = plan.dependencies();
        plan.keeps_only_retained_rows()
            && !deps.is_empty()
            && deps
                .iter()
                .all(|d| self.catalog.get(d).is_some_and(|e| e.connector.is_some()))
    }

    /// The snapshot log of a new snapshottable view (created empty), or while restoring
    /// its existing one with its last checkpoint. `None` without a data directory or for a
    /// view that is not snapshotted.
    pub(crate) fn open_view_log(
        &self,
        name: &str,
        plan: &rampart_plan::Plan,
    ) -> Result<Option<(ViewLog, Option<ViewCheckpoint>)>, PlanError> {
        let Some(storage) = self.storage.as_ref() else {
            return Ok(None);
        };
        if !self.snapshottable(plan) {
            return Ok(None);
        }
        let path = storage.dir.view_path(name);
        if self.restoring.is_some() {
            let (log, checkpoint) = match ViewLog::open(&path, storage.checkpointer.restored_round()) {
                Ok(opened) => opened,
                // Whole records that do not decode (written by another version): the view
                // replays its sources instead, and the file is kept aside.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    let aside = path.with_extension("undecodable");
                    tracing::warn!(
                        view = name,
                        "{e}: the view replays its sources from their start; the log is kept at {}",
                        aside.display()
                    );
                    std::fs::rename(&path, &aside)
                        .and_then(|()| ViewLog::create(&path))
                        .map(|log| (log, None))
                        .map_err(|e| io_error(&format!("cannot replace the checkpoint log of {name}"), e))?
                }
                Err(e) => return Err(io_error(&format!("cannot read the checkpoint of {name}"), e)),
            };
            if let Some(cp) = &checkpoint {
                tracing::info!(view = name, rows = cp.rows.len(), "restoring from its last checkpoint");
            }
            Ok(Some((log, checkpoint)))
        } else {
            let log = ViewLog::create(&path).map_err(|e| io_error(&format!("cannot create the log of {name}"), e))?;
            Ok(Some((log, None)))
        }
    }

    /// Registers a snapshotted view with the checkpointer: the capture its dataflow
    /// writes to, and the rows of its checkpoint to start from.
    pub(crate) fn snapshot_view(
        &self,
        name: &str,
        plan: &rampart_plan::Plan,
        snapshot: Option<(ViewLog, Option<ViewCheckpoint>)>,
        feeds: &std::collections::BTreeMap<String, SourceFeed>,
    ) -> (Option<Arc<SnapshotCapture>>, Option<RestoredRows>) {
        let (Some(storage), Some((log, checkpoint))) = (self.storage.as_ref(), snapshot) else {
            return (None, None);
        };
        let capture = SnapshotCapture::new(self.engine.workers());
        let (last, rows) = match checkpoint {
            // The restored checkpoint's time is the old process's clock: only its
            // positions matter from here on.
            Some(cp) => (Some(cp.positions), Some(Arc::new(cp.rows))),
            None => (None, None),
        };
        storage.checkpointer.register(
            name,
            SnapshottedView {
                capture: capture.clone(),
                log,
                feeds: feeds.iter().map(|(s, f)| (s.clone(), f.progress.clone())).collect(),
                last,
                expiry: self.expiry_of(plan, feeds),
            },
        );
        (Some(capture), rows)
    }

    /// How the log of a snapshotted view with a retention drops expired rows: its
    /// watermark at a checkpoint is its watermarked sources' lowest resumed watermark.
    fn expiry_of(
        &self,
        plan: &rampart_plan::Plan,
        feeds: &std::collections::BTreeMap<String, SourceFeed>,
    ) -> Option<Expiry> {
        let rampart_plan::Plan::Retain { retention, .. } = plan else {
            return None;
        };
        let specs: Vec<(String, rampart_connectors::late::Watermark)> = feeds
            .keys()
            .filter_map(|s| Some((s.clone(), self.catalog.get(s)?.watermark?)))
            .collect();
        let watermark_at: WatermarkAt = Box::new(move |positions| {
            specs
                .iter()
                .map(|(source, spec)| rampart_connectors::late::resumed_watermark(Some(*spec), positions.get(source)?))
                .min()
                .flatten()
        });
        Some(Expiry {
            retention: *retention,
            watermark_at,
        })
    }

    /// Opens a new table's change log (empty) or, while restoring, the existing one and
    /// returns its contents.
    pub(crate) fn open_table_log(&mut self, name: &str) -> Result<Vec<(Row, Diff)>, PlanError> {
        let restoring = self.restoring.is_some();
        let Some(storage) = self.storage.as_mut() else {
            return Ok(vec![]);
        };
        let path = storage.dir.table_path(name);
        let (log, rows) = if restoring {
            TableLog::open(&path).map_err(|e| io_error(&format!("cannot read table {name}"), e))?
        } else {
            (
                TableLog::create(&path).map_err(|e| io_error(&format!("cannot create table {name}"), e))?,
                vec![],
            )
        };
        storage.tables.lock().insert(name.to_string(), log);
        Ok(rows)
    }

    /// Makes a table's changes durable before they are applied.
    pub(crate) fn log_table_changes(&self, name: &str, changes: &[(Row, Diff)]) -> Result<(), PlanError> {
        let Some(storage) = self.storage.as_ref() else {
            return Ok(());
        };
        let mut tables = storage.tables.lock();
        let Some(log) = tables.get_mut(name) else { return Ok(()) };
        log.append(changes)
            .map_err(|e| io_error(&format!("cannot write table {name}; the change was not applied"), e))
    }

    /// Opens a sink's state: a fresh log for a new sink, the existing one while restoring.
    pub(crate) fn open_sink_state(&self, name: &str) -> Result<Option<SinkResume>, PlanError> {
        let Some(storage) = self.storage.as_ref() else {
            return Ok(None);
        };
        let path = storage.dir.sink_path(name);
        let (log, checkpoint) = if self.restoring.is_some() {
            SinkStateLog::open(&path).map_err(|e| io_error(&format!("cannot read the state of sink {name}"), e))?
        } else {
            (
                SinkStateLog::create(&path).map_err(|e| io_error(&format!("cannot create sink {name}"), e))?,
                SinkCheckpoint::default(),
            )
        };
        Ok(Some(SinkResume { log, checkpoint }))
    }

    /// Wraps a sink connector so that it resumes after a restart (with a data directory);
    /// `emit_time_columns` are the output columns computed from `NOW()`.
    pub(crate) fn resumable_sink(
        &self,
        name: &str,
        inner: Arc<dyn SinkWriter>,
        resume: Option<SinkResume>,
        upstream: Vec<(String, FeedProgress)>,
        emit_time_columns: Vec<usize>,
    ) -> Arc<dyn SinkWriter> {
        match (resume, self.storage.as_ref()) {
            (Some(r), Some(storage)) => Arc::new(ResumableSink::new(
                name,
                inner,
                r.log,
                r.checkpoint,
                upstream,
                storage.sync_every,
                emit_time_columns,
            )),
            _ => inner,
        }
    }
}

impl Coordinator {
    /// Re-executes the statements of the objects in the catalog log, in creation order.
    /// Returns one message per object that could not be restored (it stays in the log, so a
    /// later restart retries it once the cause is fixed).
    pub async fn restore(&self, objects: Vec<StoredObject>) -> Vec<String> {
        let mut failures = Vec::new();
        let mut state = self.state.lock().await;
        for object in objects {
            state.restoring = Some(object.created_ms);
            state.restoring_positions = object.start_positions.clone();
            state.restoring_floors = object.expiry_floors.clone();
            let result = match rampart_sql::parse_statements(&object.sql) {
                Ok(stmts) if stmts.len() == 1 => state.execute_one(&stmts[0]).await.map(|_| ()),
                Ok(_) => Err(PlanError::invalid("stored statement is not a single statement")),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                failures.push(format!(
                    "cannot restore {}: {} ({})",
                    object.name, e.message, e.sqlstate
                ));
            }
        }
        state.restoring = None;
        state.restoring_positions = None;
        state.restoring_floors.clear();
        state
            .restored_tables_ms
            .store(now_ms() as i64 + 1, std::sync::atomic::Ordering::Release);
        failures
    }
}
