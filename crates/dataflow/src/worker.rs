//! The loop each worker thread runs: apply commands, move source batches into inputs,
//! advance every input to the wall clock, compact traces, and step the dataflows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::implementations::KeySpine;
use differential_dataflow::trace::TraceReader;
use rampart_plan::Retention;
use rampart_repr::Row;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::progress::frontier::AntichainRef;
use timely::worker::Worker;

use crate::capture::{StoreRegistry, ViewStore};
use crate::command::{Command, PeekReply, PeekRequest, SourceBatch, ViewSpec};
use crate::render::watermark::safe_watermark;
use crate::render::{render_view, ExpiryCut, ImportedView, RenderContext, Rendered, Rows};
use crate::row_log::RowLog;
use crate::stored::{retention_of, Stored, ViewStorage};
use crate::{now_ms, Diff, Time};
use rampart_repr::{Error, FeedProgress, SinkWriter, SqlState};

type WatermarkTrace = TraceAgent<KeySpine<i64, Time, Diff>>;

/// How many source batches one input takes per loop iteration, so that one busy source
/// does not starve the others or delay progress.
const BATCHES_PER_STEP: usize = 16;

/// How far (ms) the slowest view may lag behind the current epoch before workers stop
/// reading source batches until it catches up.
const MAX_INGEST_LAG_MS: Time = 1_000;

/// How long a worker parks between steps while busy.
const BUSY_PARK: Duration = Duration::from_millis(1);

/// How long an idle worker parks at most: the park doubles from [`BUSY_PARK`] while nothing
/// arrives. Commands and readers' batches wake it at once; this bounds how late an idle
/// worker advances time (temporal filters, consistent reads).
pub const MAX_IDLE_PARK: Duration = Duration::from_millis(16);

/// How much history traces keep behind the wall clock, or behind the registry's sealed
/// time when views lag (ms): enough for a dataflow being built to import a consistent
/// snapshot and for a query to peek at the sealed time it read.
const COMPACTION_LAG_MS: Time = 1_000;

struct SourceInput {
    session: InputSession<Time, Row, Diff>,
    /// `(seq, watermark)` of each batch, for sources with a `WATERMARK`.
    watermarks: Option<InputSession<Time, (u64, i64), Diff>>,
    receiver: Receiver<SourceBatch>,
    progress: FeedProgress,
    /// The feed's batches enter in order (a checkpointed feed: `FeedProgress::track_times`).
    ordered: bool,
    /// A batch taken from the channel whose turn has not come yet.
    held: Option<SourceBatch>,
    closed: bool,
    /// While restoring: the time from which batches may enter (`ViewSpec::ingest_gate`).
    gate: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl SourceInput {
    /// Whether batches may enter at `epoch`: no gate, or the restore is complete and its
    /// time has come.
    fn open_at(&self, epoch: Time) -> bool {
        self.gate
            .as_ref()
            .is_none_or(|g| epoch >= g.load(std::sync::atomic::Ordering::Acquire))
    }
}

struct Object {
    dataflow: usize,
    /// Its contents (none for a sink's dataflow).
    stored: Option<Stored>,
    /// The watermark of a materialized view whose rows have event-time columns.
    watermark: Option<WatermarkTrace>,
    /// The retention of a materialized view that has one.
    retention: Option<Retention>,
    table_input: Option<InputSession<Time, Row, Diff>>,
    sources: Vec<SourceInput>,
}

pub(crate) fn run(worker: &mut Worker, commands: Receiver<Command>, registry: Arc<StoreRegistry>) {
    let index = worker.index();
    let mut objects: HashMap<String, Object> = HashMap::new();
    let mut epoch: Time = now_ms();
    let mut last_compaction = Instant::now();
    let mut park = BUSY_PARK;
    let mut peeks: Vec<Arc<PeekRequest>> = Vec::new();
    loop {
        let mut busy = false;
        loop {
            match commands.try_recv() {
                Ok(Command::Peek(peek)) => peeks.push(peek),
                Ok(cmd) => {
                    busy = true;
                    apply(worker, cmd, &mut objects, epoch, &registry)
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    for (_, o) in objects.drain() {
                        worker.drop_dataflow(o.dataflow);
                    }
                    return;
                }
            }
        }
        // Backpressure: while the views lag more than `MAX_INGEST_LAG_MS` behind the
        // clock, read no more batches (they wait in the bounded channels, and the readers
        // wait on those), so a replay or a burst does not pile up inside the dataflow.
        let sealed = registry.sealed();
        let lagging = sealed > 0 && epoch.saturating_sub(sealed) > MAX_INGEST_LAG_MS;
        for o in objects.values_mut().filter(|_| !lagging) {
            for s in o.sources.iter_mut().filter(|s| !s.closed && s.open_at(epoch)) {
                for _ in 0..BATCHES_PER_STEP {
                    let batch = match s.held.take().map_or_else(|| s.receiver.try_recv(), Ok) {
                        Ok(batch) => batch,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            s.closed = true;
                            break;
                        }
                    };
                    // A checkpointed feed's batches enter in order, at times that never
                    // go back (`FeedProgress::ingest_time`); a batch whose turn has not
                    // come waits here for the other worker to enter the ones before it.
                    let at = match (batch.seq, s.ordered) {
                        (Some(seq), true) => match s.progress.ingest_time(seq, *s.session.time()) {
                            Some(at) => at,
                            None => {
                                s.held = Some(batch);
                                break;
                            }
                        },
                        _ => *s.session.time(),
                    };
                    busy = true;
                    for row in batch.rows {
                        s.session.update_at(row, at, 1);
                    }
                    // Counted before the input advances past this batch's time.
                    if let Some(seq) = batch.seq {
                        if let Some(w) = s.watermarks.as_mut() {
                            w.update_at((seq, batch.watermark.unwrap_or(i64::MIN)), at, 1);
                        }
                        s.progress.ingested(seq, &batch.positions, at);
                    }
                }
            }
        }
        let now = now_ms();
        if now > epoch {
            epoch = now;
            for o in objects.values_mut() {
                if let Some(t) = o.table_input.as_mut() {
                    t.advance_to(epoch);
                    t.flush();
                }
                for s in o.sources.iter_mut() {
                    s.session.advance_to(epoch);
                    s.session.flush();
                    if let Some(w) = s.watermarks.as_mut() {
                        w.advance_to(epoch);
                        w.flush();
                    }
                }
            }
        }
        peeks.retain(|p| !answer_peek(p, &mut objects));
        if last_compaction.elapsed() > Duration::from_millis(100) {
            last_compaction = Instant::now();
            let oldest_peek = peeks.iter().map(|p| p.at).min().unwrap_or(Time::MAX);
            let since = [epoch
                .min(registry.sealed())
                .saturating_sub(COMPACTION_LAG_MS)
                .min(oldest_peek)];
            for o in objects.values_mut() {
                if let Some(s) = o.stored.as_mut() {
                    s.compact(since[0]);
                }
                if let Some(t) = o.watermark.as_mut() {
                    t.set_logical_compaction(AntichainRef::new(&since));
                    t.set_physical_compaction(AntichainRef::new(&since));
                }
            }
        }
        if index == 0 {
            registry.reseal();
        }
        park = if busy || !peeks.is_empty() {
            BUSY_PARK
        } else {
            (park * 2).min(MAX_IDLE_PARK)
        };
        // A dataflow with pending work does not park at all.
        worker.step_or_park(Some(park));
    }
}

fn apply(
    worker: &mut Worker,
    cmd: Command,
    objects: &mut HashMap<String, Object>,
    epoch: Time,
    registry: &Arc<StoreRegistry>,
) {
    let index = worker.index();
    match cmd {
        Command::CreateTable { name, store } => {
            let dataflow = worker.next_dataflow_index();
            let (mut input, trace) = worker.dataflow::<Time, _, _>(|scope| {
                let (input, rows) = scope.new_collection::<Row, Diff>();
                let arranged = rows.arrange_by_self();
                capture_frontier(arranged.stream.clone(), store, index);
                (input, arranged.trace)
            });
            input.advance_to(epoch);
            input.flush();
            objects.insert(
                name,
                Object {
                    dataflow,
                    stored: Some(Stored::Arranged(trace)),
                    watermark: None,
                    retention: None,
                    table_input: Some(input),
                    sources: vec![],
                },
            );
        }
        Command::TableUpdates { name, updates, entered } => {
            if index == 0 {
                if let Some(input) = objects.get_mut(&name).and_then(|o| o.table_input.as_mut()) {
                    for (row, diff) in updates {
                        input.update(row, diff);
                    }
                    input.flush();
                    let _ = entered.send(*input.time());
                }
            }
        }
        Command::CreateView(spec) => {
            let dataflow = worker.next_dataflow_index();
            let built = build_view(worker, &spec, objects, epoch);
            match built {
                Ok((stored, watermark, sources)) => {
                    objects.insert(
                        spec.name.clone(),
                        Object {
                            dataflow,
                            stored,
                            watermark,
                            retention: retention_of(&spec.plan),
                            table_input: None,
                            sources,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(view = %spec.name, "could not build dataflow: {e}");
                    spec.errors.record(
                        &spec.name,
                        "dataflow",
                        None,
                        "",
                        format!("could not build dataflow: {e}"),
                    );
                }
            }
        }
        // Answered in the worker loop, once the arrangements are complete.
        Command::Peek(_) => {}
        Command::Drop { name } => {
            if let Some(o) = objects.remove(&name) {
                worker.drop_dataflow(o.dataflow);
            }
            registry.reseal();
        }
    }
}

type Built = (Option<Stored>, Option<WatermarkTrace>, Vec<SourceInput>);

/// Hands the rows a view takes in to its snapshot capture, if it is snapshotted, and adds
/// the rows of its restored snapshot, if any. A view rebuilt next to its restored rows
/// first drops what it produces before the restore is complete (`ViewSpec::mute_until_gate`).
fn snapshot_and_restore<'s>(rows: Rows<'s>, spec: &ViewSpec, worker: usize) -> Rows<'s> {
    let rows = match (&spec.ingest_gate, spec.mute_until_gate) {
        (Some(gate), true) => {
            use differential_dataflow::AsCollection;
            use timely::dataflow::operators::core::Filter;
            let gate = gate.clone();
            rows.inner
                .filter(move |(_, t, _)| *t >= gate.load(std::sync::atomic::Ordering::Acquire))
                .as_collection()
        }
        _ => rows,
    };
    if let Some(capture) = &spec.snapshot_capture {
        crate::snapshot::capture_snapshot(rows.clone(), capture.clone(), worker);
    }
    match &spec.restored_rows {
        Some(restored) => {
            let scope = rows.scope();
            let peers = scope.peers();
            rows.concat(crate::snapshot::restored_rows(
                scope,
                restored.clone(),
                worker,
                peers,
                spec.restore_start,
            ))
        }
        None => rows,
    }
}

/// A relation a new dataflow reads that has no running dataflow or stored contents (`55000`).
fn unavailable(dep: &str) -> Error {
    Error::new(
        SqlState::ObjectNotInPrerequisiteState,
        format!("relation {dep} is not available to the dataflow"),
    )
}

fn build_view(
    worker: &mut Worker,
    spec: &ViewSpec,
    objects: &mut HashMap<String, Object>,
    epoch: Time,
) -> Result<Built, Error> {
    let index = worker.index();
    worker.dataflow::<Time, _, _>(|scope| {
        // When the restored rows are all in, on every worker: restored watermarks wait
        // for it.
        let restored_by = crate::snapshot::restored_by(
            spec.restored_rows.as_ref().map_or(0, |r| r.len()),
            scope.peers(),
            spec.restore_start,
        );
        let mut inputs: HashMap<String, Rendered<'_>> = HashMap::new();
        let mut projected = std::collections::HashSet::new();
        let mut imported = HashMap::new();
        let mut sources = Vec::new();
        // The latest upper of the arrangements imported (not while restoring): what a sink
        // reads before it is their contents at creation, not changes.
        let mut snapshot: Time = Time::MIN;
        for dep in spec.plan.dependencies() {
            if let Some(feed) = spec.sources.get(&dep) {
                let (mut session, rows) = scope.new_collection::<Row, Diff>();
                session.advance_to(epoch);
                let (watermarks, watermark) = if feed.watermarked {
                    let (mut w, batches) = scope.new_collection::<(u64, i64), Diff>();
                    w.advance_to(epoch);
                    let resumed = feed.resumed_watermark.map(|w| (w, restored_by));
                    (Some(w), Some(safe_watermark(batches, resumed)))
                } else {
                    (None, None)
                };
                let receiver = feed
                    .take(index)
                    .ok_or_else(|| Error::internal(format!("feed for source {dep} already taken")))?;
                sources.push(SourceInput {
                    session,
                    watermarks,
                    receiver,
                    progress: feed.progress.clone(),
                    ordered: feed.progress.tracks_times(),
                    held: None,
                    closed: false,
                    gate: spec.ingest_gate.clone(),
                });
                if feed.projected {
                    projected.insert(dep.clone());
                }
                inputs.insert(dep, Rendered { rows, watermark });
            } else if let Some(o) = objects.get_mut(&dep) {
                let Some(stored) = o.stored.as_mut() else {
                    return Err(unavailable(&dep));
                };
                let snapshot_upper = if spec.restoring { Time::MIN } else { stored.upper() };
                // A closed trace (upper empty, read as `Time::MAX`) has no snapshot to cut.
                if snapshot_upper < Time::MAX {
                    snapshot = snapshot.max(snapshot_upper);
                }
                let source = stored.import(scope);
                let watermark = o
                    .watermark
                    .as_mut()
                    .map(|w| w.import(scope).as_collection(|k: &i64, _v: &()| *k));
                let expiry = match spec.expiry_floors.get(&dep) {
                    Some(floor) => ExpiryCut::Floor(*floor),
                    None if spec.restoring => ExpiryCut::Replay,
                    None => ExpiryCut::Snapshot {
                        report: spec.floor_report.clone(),
                        view: dep.clone(),
                    },
                };
                imported.insert(
                    dep,
                    ImportedView {
                        source,
                        watermark,
                        retention: o.retention,
                        snapshot_upper,
                        expiry,
                    },
                );
            } else {
                return Err(unavailable(&dep));
            }
        }
        let ctx = RenderContext {
            inputs,
            projected,
            imported,
            retained: retention_of(&spec.plan).is_some(),
            lags: spec.lags.clone(),
            scope,
            view: spec.name.clone(),
            errors: spec.errors.clone(),
            late: spec.late.clone(),
        };
        // A restored view's retention starts from its sources' restored watermark (the
        // slowest one's, as the view's watermark is).
        let resumed_watermark = spec
            .sources
            .values()
            .filter(|f| f.watermarked)
            .map(|f| f.resumed_watermark)
            .min()
            .flatten();
        // The rows the view takes in (before its retention, if it has one) are captured
        // before the restored rows join, so a checkpoint writes each row once; restored rows
        // join there so that they expire like the others.
        let entered = |rows| snapshot_and_restore(rows, spec, index);
        let Rendered { rows, watermark } = render_view(&spec.plan, &ctx, resumed_watermark, entered)?;
        // Views reading this one see its watermark only once its restored rows are all in:
        // a window downstream must not close before they arrive.
        let watermark = match (&spec.restored_rows, watermark) {
            (Some(_), Some(w)) => Some(w.delay(move |t| (*t).max(restored_by))),
            (_, w) => w,
        };
        if let Some(sink) = &spec.sink {
            capture_to_sink(rows.clone(), sink.clone(), index, snapshot);
        }
        // A view with a retention expires rows steadily: an arrangement spreads the work of
        // dropping them. Any other view appends to a log (see `crate::row_log`).
        let storage = ViewStorage::of(&spec.plan);
        let stored = match storage {
            _ if !spec.arrange => {
                if let Some(store) = &spec.store {
                    capture_frontier(rows.inner, store.clone(), index);
                }
                None
            }
            ViewStorage::Arranged => {
                let arranged = rows.clone().arrange_by_self();
                if let Some(store) = &spec.store {
                    // The arrangement's batches are shared: watching them copies no row.
                    capture_frontier(arranged.stream.clone(), store.clone(), index);
                }
                Some(Stored::Arranged(arranged.trace))
            }
            // A view whose plan retracts each row where it inserted it (`normalized_events`,
            // `enriched_events`) keeps its rows where they were produced (`Placement::InPlace`).
            ViewStorage::Log(placement) => {
                let log = RowLog::default();
                log.append_from(rows.clone(), spec.store.clone(), index, placement);
                Some(Stored::Log(log))
            }
        };
        let watermark = match watermark {
            Some(w) if spec.arrange => Some(w.arrange_by_self().trace),
            _ => None,
        };
        Ok((stored, watermark, sources))
    })
}

/// Reports how far the view is complete on this worker (its contents stay in the
/// arrangement, where queries peek), watching `stream`: the view's rows, or better the
/// batches of its arrangement, which are shared rather than copied.
fn capture_frontier<'s, D: Clone + 'static>(
    stream: timely::dataflow::Stream<'s, Time, Vec<D>>,
    store: Arc<ViewStore>,
    shard: usize,
) {
    stream.sink(Pipeline, "ViewFrontier", move |(input, frontier)| {
        input.for_each(|_cap, data| data.clear());
        let upper = frontier.frontier().first().copied().unwrap_or(Time::MAX);
        store.advance(shard, upper);
    });
}

/// Answers `peek` from this worker's tables and views if they are complete through its
/// time; returns whether it was answered (false: try again after more steps).
fn answer_peek(peek: &PeekRequest, objects: &mut HashMap<String, Object>) -> bool {
    for name in &peek.names {
        let Some(stored) = objects.get_mut(name).and_then(|o| o.stored.as_mut()) else {
            let _ = peek.reply.send(PeekReply::Missing(name.clone()));
            return true;
        };
        if stored.upper() <= peek.at {
            return false;
        }
        if !stored.readable_at(peek.at) {
            let _ = peek.reply.send(PeekReply::Retry);
            return true;
        }
    }
    let mut contents = Vec::with_capacity(peek.names.len());
    for name in &peek.names {
        match objects
            .get_mut(name)
            .and_then(|o| o.stored.as_mut())
            .map(|s| s.rows_at(peek.at))
        {
            Some(Some(rows)) => contents.push(rows),
            Some(None) => {
                let _ = peek.reply.send(PeekReply::Retry);
                return true;
            }
            None => {
                let _ = peek.reply.send(PeekReply::Missing(name.clone()));
                return true;
            }
        }
    }
    let _ = peek.reply.send(PeekReply::Rows(contents));
    true
}

/// Writes the changes of `rows` to `sink`. Updates before `snapshot` (the upper of the
/// arrangements imported at creation) are the imported views' contents then: they are
/// moved to one time and consolidated, so a row inserted and retracted before the sink was
/// created (an expired row, a replaced version) is not written.
fn capture_to_sink(rows: Rows<'_>, sink: Arc<dyn SinkWriter>, index: usize, snapshot: Time) {
    use timely::dataflow::operators::vec::Map;
    let rows = rows
        .inner
        .map(move |(r, t, d)| (r, t.max(snapshot.saturating_sub(1)), d));
    let mut pending: Vec<(Row, Time, Diff)> = Vec::new();
    let mut last_upper: Time = 0;
    // Every change goes to worker 0, so the versions of one row (which the view's
    // arrangement may have placed on different workers) are written in order.
    let to_worker_zero = Exchange::new(|_: &(Row, Time, Diff)| 0u64);
    rows.sink(to_worker_zero, "CaptureSink", move |(input, frontier)| {
        input.for_each(|_cap, data| pending.append(data));
        let upper = frontier.frontier().first().copied().unwrap_or(Time::MAX);
        if pending.iter().any(|(_, t, _)| *t < upper) {
            let (mut ready, keep): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(_, t, _)| *t < upper);
            pending = keep;
            differential_dataflow::consolidation::consolidate_updates(&mut ready);
            // Within one time, retractions first: an update reaches the sink as the old
            // version's delete followed by the new version.
            ready.sort_by_key(|(_, t, d)| (*t, *d));
            if !ready.is_empty() {
                sink.write(&ready);
            }
        }
        // Only worker 0 receives changes, so only it may report progress: another
        // worker can see the frontier pass before worker 0 has written the changes.
        if index == 0 && upper > last_upper {
            last_upper = upper;
            sink.progress(upper);
        }
    });
}
