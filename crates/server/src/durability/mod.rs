//! Durability on the server's side, in one folder: what the coordinator writes to the data
//! directory (the catalog log of live objects' statements, table change logs, resumable
//! sinks, which views are snapshotted and their logs) here; the checkpoint thread in
//! [`checkpoint`]; the restart in [`restore`]. The file formats are `rampart-storage`'s;
//! capturing a view's rows inside the dataflow is `rampart_dataflow::snapshot`. Without a
//! data directory, nothing is written and nothing survives a restart.

pub(crate) mod checkpoint;
mod restore;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rampart_dataflow::snapshot::RestoredRows;
use rampart_dataflow::{now_ms, Diff, FeedProgress, SinkWriter, SnapshotCapture, SourceFeed};
use rampart_repr::Row;
use rampart_sql::PlanError;
use rampart_storage::{
    CatalogLog, DataDir, ResumableSink, SinkCheckpoint, SinkStateLog, StoredObject, TableLog, ViewCheckpoint, ViewLog,
};

use crate::coordinator::{Coordinator, State};
use checkpoint::{Checkpointer, Expiry, SnapshottedView, WatermarkAt};

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
    /// Rebuilt views: views without a retention over retained snapshotted views, saved
    /// with their rows and rebuilt from the retained views' restored rows, with the
    /// retained views they derive from (see [`State::restore_plan`]).
    pub(crate) rebuilt: Mutex<HashMap<String, BTreeSet<String>>>,
    /// While the catalog is restored.
    pub(crate) restore: Mutex<Option<RestoreProgress>>,
}

impl Storage {
    /// Stops checkpointing `view` (dropped, or no longer restorable from its checkpoints)
    /// and deletes its log.
    fn stop_snapshotting(&self, view: &str) -> std::io::Result<()> {
        self.checkpointer.unregister(view);
        self.rebuilt.lock().remove(view);
        match std::fs::remove_file(self.dir.view_path(view)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// What a restore in progress has restored so far.
pub(crate) struct RestoreProgress {
    /// When readers may enter batches: `u64::MAX` until the restore is complete.
    pub(crate) gate: Arc<AtomicU64>,
    /// The latest dataflow time a restored row or watermark enters at.
    pub(crate) until: rampart_dataflow::Time,
    /// The views restored from a checkpoint.
    pub(crate) from_checkpoint: HashSet<String>,
}

/// How a new view comes back after a restart, as far as checkpoints go.
pub(crate) enum RestorePlan {
    /// Nothing to add: from its own checkpoint if it is snapshotted, else rebuilt from
    /// its inputs or replayed.
    AsUsual,
    /// Saved with its rows and, after a restart, rebuilt from the restored rows of the
    /// retained views it derives from (listed) with what that produces muted, next to its
    /// own restored rows.
    Rebuilt(BTreeSet<String>),
}

/// A sink's log and checkpoint, opened before its connector (which may cut its output back
/// to the checkpoint).
pub(crate) struct SinkResume {
    pub(crate) log: SinkStateLog,
    pub(crate) checkpoint: SinkCheckpoint,
}

/// A failed operation on the data directory as the client sees it: `58030`, or `53100`
/// when the disk is full ([`rampart_storage::io_error`]).
fn io_error(what: &str, e: std::io::Error) -> PlanError {
    rampart_storage::io_error(what, e).into()
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
        let _ = storage.stop_snapshotting(name);
        Ok(())
    }

    /// Decides how a new view or sink with `plan` comes back after a restart, keeping
    /// every restore exact (`retained`: the new view has a retention; `sink`: it is a
    /// sink). A snapshotted view with a retention restores only the rows it holds, so an
    /// object over it comes back exactly if:
    /// - it has a retention itself (it sees the expiries) and its plan
    ///   [`rampart_plan::Plan::is_function_of_inputs`]: rebuilt from those rows as usual;
    /// - or it is a view without a retention whose operators only need rows within the
    ///   retention ([`rampart_plan::Plan::restore_horizon`] below it, and the retained
    ///   input's only event-time column is its retention's): it is saved with its rows at
    ///   every checkpoint ([`RestorePlan::Rebuilt`]), and after a restart rebuilds its
    ///   operators' state from the restored rows with its output muted, next to its own.
    ///
    /// Otherwise (a `GROUP BY` over all time, a sink reading a retained view) the retained
    /// views it derives from stop being snapshotted, with the rebuilt views over them, and
    /// their logs are deleted, so a restart replays their sources from the start.
    pub(crate) fn restore_plan(
        &self,
        name: &str,
        plan: &rampart_plan::Plan,
        retained: bool,
        sink: bool,
    ) -> Result<RestorePlan, PlanError> {
        let Some(storage) = self.storage.as_ref() else {
            return Ok(RestorePlan::AsUsual);
        };
        let roots = self.retained_roots(plan);
        if roots.is_empty() || retained && plan.is_function_of_inputs() {
            return Ok(RestorePlan::AsUsual);
        }
        if !sink && self.rebuildable(plan) {
            return Ok(RestorePlan::Rebuilt(roots));
        }
        let mut stopped: Vec<String> = roots.into_iter().collect();
        let over: Vec<String> = storage
            .rebuilt
            .lock()
            .iter()
            .filter(|(_, r)| r.iter().any(|root| stopped.contains(root)))
            .map(|(v, _)| v.clone())
            .collect();
        stopped.extend(over);
        for view in stopped {
            storage
                .stop_snapshotting(&view)
                .map_err(|e| io_error(&format!("cannot stop snapshotting {view}"), e))?;
            tracing::info!(
                view = %view,
                by = %name,
                "no longer snapshotted: {name} needs rows {view} does not keep, which its checkpoint does not hold either; a restart replays the sources from their start"
            );
        }
        Ok(RestorePlan::AsUsual)
    }

    /// While restoring: the gate the new object's readers wait at, having counted its
    /// `restored` rows entering from `start` (so the gate opens after them).
    pub(crate) fn restore_gate(
        &self,
        restored: Option<usize>,
        start: rampart_dataflow::Time,
    ) -> Option<Arc<AtomicU64>> {
        let mut restore = self.storage.as_ref()?.restore.lock();
        let r = restore.as_mut()?;
        if let Some(rows) = restored {
            let by = rampart_dataflow::snapshot::restored_by(rows, self.engine.workers(), start);
            r.until = r.until.max(by);
        }
        Some(r.gate.clone())
    }

    /// Records a rebuilt view and the retained views it derives from.
    pub(crate) fn register_rebuilt(&self, name: &str, roots: BTreeSet<String>) {
        if let Some(storage) = self.storage.as_ref() {
            storage.rebuilt.lock().insert(name.to_string(), roots);
        }
    }

    /// Writes checkpoint rounds until a new rebuilt view has its first one, so a restart
    /// right after its creation finds its rows (a NOTICE if that takes too long).
    pub(crate) async fn first_checkpoint(&self, name: &str) -> Option<String> {
        let storage = self.storage.as_ref()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let checkpointer = storage.checkpointer.clone();
            let written = tokio::task::spawn_blocking(move || checkpointer.checkpoint_all())
                .await
                .is_ok();
            let done = storage
                .checkpointer
                .stats()
                .get(name)
                .is_some_and(|s| s.count > 0 && s.error.is_none());
            if written && done {
                return None;
            }
            if std::time::Instant::now() > deadline {
                return Some(format!(
                    "{name} has no checkpoint yet: if the server stops before its first one, it comes back from the retained rows alone"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The snapshotted retained views `plan` derives from, through views that rebuild
    /// from their rows (a rebuilt view's own rows stand for what is below it).
    fn retained_roots(&self, plan: &rampart_plan::Plan) -> BTreeSet<String> {
        let Some(storage) = self.storage.as_ref() else {
            return BTreeSet::new();
        };
        let rebuilt = storage.rebuilt.lock();
        let mut roots = BTreeSet::new();
        let mut stack = plan.dependencies();
        let mut seen = HashSet::new();
        while let Some(dep) = stack.pop() {
            if !seen.insert(dep.clone()) || rebuilt.contains_key(&dep) {
                continue;
            }
            let Some(entry) = self.catalog.get(&dep) else { continue };
            if entry.retention.is_some() && storage.checkpointer.is_registered(&dep) {
                roots.insert(dep.clone());
            }
            stack.extend(entry.depends_on.iter().cloned());
        }
        roots
    }

    /// Whether a view without a retention with `plan` can be rebuilt from the rows of the
    /// retained views it reads: its operators need rows no further behind the watermark
    /// than each retained input keeps, measured on that input's only event-time column.
    fn rebuildable(&self, plan: &rampart_plan::Plan) -> bool {
        let deps = plan.dependencies();
        // Read only through views (and tables): a source read directly replays.
        if deps
            .iter()
            .any(|d| self.catalog.get(d).is_none_or(|e| e.connector.is_some()))
        {
            return false;
        }
        let lookup = |name: &str| self.event_time_of(name);
        let Some(horizon) = plan.restore_horizon(&lookup) else {
            return false;
        };
        deps.iter().all(|d| {
            let Some(retention) = self.catalog.get(d).and_then(|e| e.retention) else {
                return true;
            };
            let timed: Vec<usize> = lookup(d)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .filter_map(|(i, lag)| lag.map(|_| i))
                .collect();
            timed == [retention.column] && horizon < retention.keep_us
        })
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
    /// view that is not snapshotted. `rebuilt`: the view is a rebuilt one, over these
    /// retained views; its checkpoint is used only if they were all restored from theirs.
    pub(crate) fn open_view_log(
        &self,
        name: &str,
        plan: &rampart_plan::Plan,
        rebuilt: Option<&BTreeSet<String>>,
    ) -> Result<Option<(ViewLog, Option<ViewCheckpoint>)>, PlanError> {
        let Some(storage) = self.storage.as_ref() else {
            return Ok(None);
        };
        if rebuilt.is_none() && !self.snapshottable(plan) {
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
            let mut restore = storage.restore.lock();
            let restored_below = |roots: &BTreeSet<String>| {
                restore
                    .as_ref()
                    .is_some_and(|r| roots.iter().all(|root| r.from_checkpoint.contains(root)))
            };
            let (log, checkpoint) = match (rebuilt, checkpoint) {
                // Its inputs replay from their start: the view rebuilds all it held.
                (Some(roots), Some(_)) if !restored_below(roots) => {
                    tracing::info!(
                        view = name,
                        "rebuilt by replay: a view it reads was not restored from a checkpoint"
                    );
                    let log =
                        ViewLog::create(&path).map_err(|e| io_error(&format!("cannot create the log of {name}"), e))?;
                    (log, None)
                }
                (Some(roots), None) if restored_below(roots) => {
                    tracing::warn!(
                        view = name,
                        "no checkpoint of its own (the server stopped right after it was created): rebuilt from the retained rows alone"
                    );
                    (log, None)
                }
                (_, checkpoint) => (log, checkpoint),
            };
            if let Some(cp) = &checkpoint {
                tracing::info!(view = name, rows = cp.rows.len(), "restoring from its last checkpoint");
                if let Some(r) = restore.as_mut() {
                    r.from_checkpoint.insert(name.to_string());
                }
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
            (Some(r), Some(storage)) => Arc::new(
                ResumableSink::new(
                    name,
                    inner,
                    r.log,
                    r.checkpoint,
                    upstream,
                    storage.sync_every,
                    emit_time_columns,
                )
                .with_restore_gate(self.restore_gate(None, 0)),
            ),
            _ => inner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_failure_reaches_the_client_as_58030_naming_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let e = TableLog::create(&plain.join("t.log")).err().unwrap();
        let err = io_error("cannot create table t", e);
        assert_eq!(err.sqlstate, "58030", "{err}");
        assert!(err.message.starts_with("cannot create table t: "), "{err}");
        let full = io_error("cannot write table t", std::io::Error::from_raw_os_error(28));
        assert_eq!(full.sqlstate, "53100");
        assert!(
            full.message.contains("the disk holding the data directory is full"),
            "{full}"
        );
    }
}
